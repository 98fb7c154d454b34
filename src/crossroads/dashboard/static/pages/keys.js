// Keys: usage against limit, create (the secret shown once), edit, disable and delete — through the
// provisioning API. A session opened with an API key sees that key alone.

import {call, get} from "../api.js";
import {badge, fmt, h, message, table, usageBar} from "../ui.js";

const RESETS = {"": "Never (total)", daily: "Daily", weekly: "Weekly", monthly: "Monthly"};

export async function keysPage(main, {session}) {
  if (session.role !== "admin") return ownKey(main);
  const created = h("div", {"aria-live": "polite"});
  const list = h("div");
  const status = h("div", {"aria-live": "polite"});
  const editor = h("dialog", {"aria-label": "Edit key"});

  async function refresh() {
    const keys = (await get("/keys?include_disabled=true")).data;
    list.replaceChildren(table([
      {label: "Name", cell: (k) => h("strong", {text: k.name})},
      {label: "Key", cell: (k) => h("code", {text: k.label})},
      {label: "Usage", cell: (k) => usageBar(periodUsage(k), k.limit)},
      {label: "Reset", cell: (k) => RESETS[k.limit_reset || ""]},
      {label: "Rate limit", cell: (k) => rateLimit(k)},
      {label: "Status", cell: (k) => state(k)},
      {label: "Actions", cell: (k) => h("div", {class: "row"},
        h("button", {type: "button", text: "Edit", "aria-label": `Edit ${k.name}`, onclick: () => edit(k)}),
        h("button", {type: "button", text: k.disabled ? "Enable" : "Disable",
                     "aria-label": `${k.disabled ? "Enable" : "Disable"} ${k.name}`,
                     onclick: () => act(() => call("PATCH", `/keys/${k.hash}`, {disabled: !k.disabled}))}),
        h("button", {type: "button", class: "danger", text: "Delete", "aria-label": `Delete ${k.name}`,
                     onclick: () => confirm(`Delete the key "${k.name}"? Requests with it will be refused.`) &&
                       act(() => call("DELETE", `/keys/${k.hash}`))}))},
    ], keys, {empty: "No keys yet."}));
  }

  async function act(change) {
    status.replaceChildren();
    try {
      await change();
      await refresh();
    } catch (error) {
      status.replaceChildren(message(error));
    }
  }

  function edit(key) {
    const form = keyForm(key, async (fields) => {
      await call("PATCH", `/keys/${key.hash}`, fields);
      editor.close();
      await refresh();
    }, "Save", () => editor.close());
    editor.replaceChildren(h("h2", {text: `Edit ${key.name}`}), form);
    editor.showModal();
  }

  const createForm = keyForm(null, async (fields) => {
    const answer = await call("POST", "/keys", fields);
    const secret = h("code", {class: "new-secret", text: answer.key});
    const copied = h("span", {class: "muted", "aria-live": "polite"});
    created.replaceChildren(h("div", {class: "panel"},
      h("p", {}, h("strong", {text: `Key "${answer.data.name}" created. `}),
        "Copy it now: it is shown only once."),
      h("div", {class: "secret"}, secret,
        h("button", {type: "button", class: "primary copy", text: "Copy", onclick: async () => {
          try {
            await navigator.clipboard.writeText(answer.key);
            copied.textContent = "Copied.";
          } catch {
            getSelection().selectAllChildren(secret);
            copied.textContent = "Selected: press Ctrl+C to copy.";
          }
        }}), copied)));
    createForm.reset();
    await refresh();
  }, "Create key");

  main.replaceChildren(h("h1", {text: "Keys"}),
    h("section", {class: "panel"}, h("h2", {text: "New key"}), createForm), created, status, list, editor);
  await refresh();
}

async function ownKey(main) {
  const key = (await get("/key")).data;
  main.replaceChildren(h("h1", {text: "Your key"}), h("section", {class: "panel"},
    h("dl", {class: "facts"},
      h("dt", {text: "Key"}), h("dd", {}, h("code", {text: key.label})),
      h("dt", {text: "Usage"}), h("dd", {}, usageBar(periodUsage(key), key.limit)),
      h("dt", {text: "Limit resets"}), h("dd", {text: RESETS[key.limit_reset || ""]}),
      h("dt", {text: "Rate limit"}), h("dd", {text: rateLimit(key)}),
      h("dt", {text: "Response cache"}), h("dd", {text: key.response_cache ? "every eligible request" : "on request"}),
      h("dt", {text: "Spent today / this month / in all"}),
      h("dd", {text: `${fmt.usd(key.usage_daily)} / ${fmt.usd(key.usage_monthly)} / ${fmt.usd(key.usage)}`}))),
  h("p", {class: "muted", text: "Keys are created and changed with the management key."}));
}

function periodUsage(key) {
  return {daily: key.usage_daily, weekly: key.usage_weekly, monthly: key.usage_monthly}[key.limit_reset] ?? key.usage;
}

function rateLimit(key) {
  const parts = [];
  if (key.rate_limit_requests) parts.push(`${key.rate_limit_requests} req / ${key.rate_limit_interval || 60} s`);
  if (key.tokens_per_minute) parts.push(`${fmt.int(key.tokens_per_minute)} tokens / min`);
  return parts.join(", ") || "—";
}

function state(key) {
  if (key.disabled) return badge("disabled", "off");
  if (key.expires_at && new Date(key.expires_at) <= new Date()) return badge("expired", "off");
  return badge("active", "ok");
}

// The fields a key is created or edited with; `submit` gets what the provisioning API takes.
function keyForm(key, submit, action, cancel) {
  const field = (label, name, attrs) => h("label", {}, label, h("input", {name, ...attrs}));
  const status = h("div", {"aria-live": "polite"});
  const form = h("form", {class: "row", onsubmit: async (event) => {
    event.preventDefault();
    status.replaceChildren();
    const data = new FormData(form);
    const number = (name) => (data.get(name) === "" ? null : Number(data.get(name)));
    const fields = {
      name: data.get("name"), limit: number("limit"), limit_reset: data.get("limit_reset") || null,
      rate_limit_requests: number("rate_limit_requests"), rate_limit_interval: number("rate_limit_interval"),
      tokens_per_minute: number("tokens_per_minute"), response_cache: data.get("response_cache") === "on",
    };
    if (!key) for (const name of Object.keys(fields)) if (fields[name] === null) delete fields[name];
    try {
      await submit(fields);
    } catch (error) {
      status.replaceChildren(message(error));
    }
  }},
    field("Name", "name", {required: true, value: key?.name ?? "", maxlength: "256"}),
    field("Limit (USD)", "limit", {type: "number", min: "0", step: "any", value: key?.limit ?? ""}),
    h("label", {}, "Reset", h("select", {name: "limit_reset"}, Object.entries(RESETS).map(([value, label]) =>
      h("option", {value, text: label, selected: (key?.limit_reset || "") === value})))),
    field("Requests", "rate_limit_requests", {type: "number", min: "1", step: "1", value: key?.rate_limit_requests ?? ""}),
    field("per seconds", "rate_limit_interval", {type: "number", min: "1", step: "1", value: key?.rate_limit_interval ?? ""}),
    field("Tokens / min", "tokens_per_minute", {type: "number", min: "1", step: "1", value: key?.tokens_per_minute ?? ""}),
    field("Cache replies", "response_cache", {type: "checkbox", checked: key?.response_cache ?? false}),
    h("button", {type: "submit", class: "primary", text: action}),
    cancel ? h("button", {type: "button", text: "Cancel", onclick: cancel}) : null,
    status);
  return form;
}
