// Generations: the recent ones, filterable, and one generation's detail with its routing trace.

import {get} from "../api.js";
import {badge, fmt, h, table} from "../ui.js";

const FILTERS = ["model", "provider", "app", "status"];

export async function generationsPage(main, {query}) {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) || ""]));
  const text = (name, label) => h("label", {}, label, h("input", {name, value: filters[name], type: "search"}));
  const form = h("form", {class: "panel row", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const params = new URLSearchParams([...data.entries()].filter(([, v]) => v));
    history.pushState(null, "", `/dashboard/generations${params.size ? `?${params}` : ""}`);
    dispatchEvent(new PopStateEvent("popstate"));
  }},
    text("model", "Model"), text("provider", "Provider"), text("app", "App"),
    h("label", {}, "Status", h("select", {name: "status"},
      [["", "Any"], ["ok", "Succeeded"], ["error", "Failed"]].map(([value, label]) =>
        h("option", {value, text: label, selected: filters.status === value})))),
    h("button", {type: "submit", class: "primary", text: "Filter"}));
  const list = h("div");
  const more = h("button", {type: "button", text: "Older", hidden: true});
  const rows = [];
  const load = async (before) => {
    const params = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    if (before) params.set("before", before);
    const page = (await get(`/generations?${params}`)).data;
    rows.push(...page);
    more.hidden = page.length < 50;
    list.replaceChildren(table([
      {label: "Time", cell: (g) => h("a", {href: `/dashboard/generations/${g.id}`, text: fmt.time(g.created_at)})},
      {label: "Model", cell: (g) => g.model},
      {label: "Provider", cell: (g) => g.provider_name || "—"},
      {label: "App", cell: (g) => g.app || "—"},
      {label: "Tokens", num: true, cell: (g) => `${fmt.int(g.tokens_prompt)} + ${fmt.int(g.tokens_completion)}`},
      {label: "Cost", num: true, cell: (g) => fmt.usd(g.total_cost)},
      {label: "Latency", num: true, cell: (g) => fmt.ms(g.latency)},
      {label: "Status", cell: (g) => statusBadge(g.status)},
    ], rows, {empty: "No generations match."}));
  };
  more.addEventListener("click", () => load(rows[rows.length - 1].created_at));
  main.replaceChildren(h("h1", {text: "Generations"}), form, list, more);
  await load();
}

export async function generationPage(main, {params}) {
  const [id] = params;
  const g = (await get(`/generation?id=${encodeURIComponent(id)}`)).data;
  const fact = (label, value) => [h("dt", {text: label}), h("dd", {}, value ?? "—")];
  main.replaceChildren(
    h("p", {}, h("a", {href: "/dashboard/generations", text: "← Generations"})),
    h("h1", {text: "Generation"}),
    h("section", {class: "panel"}, h("dl", {class: "facts"},
      fact("Id", h("code", {text: g.id})),
      fact("Time", fmt.time(g.created_at)),
      fact("Model", g.model),
      fact("Provider", g.provider_name),
      fact("App", g.app_title || g.http_referer),
      fact("Status", statusBadge(g.status)),
      g.error ? fact("Error", g.error) : null,
      fact("Finish reason", g.finish_reason),
      fact("Tokens", `${fmt.int(g.tokens_prompt)} prompt + ${fmt.int(g.tokens_completion)} completion` +
        (g.usage_estimated ? " (estimated)" : "")),
      fact("Cost", fmt.usd(g.total_cost)),
      fact("Latency", `${fmt.ms(g.latency)} to first token, ${fmt.ms(g.generation_time)} in all`),
      fact("Streamed", g.streamed ? "yes" : "no"))),
    h("h2", {text: "Routing trace"}),
    h("p", {class: "muted", text: "Each endpoint tried, in order, and how the attempt ended."}),
    table([
      {label: "#", num: true, cell: (a) => String(a.n)},
      {label: "Provider", cell: (a) => a.provider},
      {label: "Model", cell: (a) => a.model},
      {label: "Result", cell: (a) => statusBadge(a.status, a.error_type)},
      {label: "Why", wrap: true, cell: (a) => (a.status < 400 ? "served" : a.message || a.error_type || "—")},
      {label: "Time", num: true, cell: (a) => fmt.ms(a.latency_ms)},
    ], g.routing_trace.map((a, i) => ({...a, n: i + 1})), {empty: "No endpoint was tried."}));
}

function statusBadge(status, detail) {
  if (status < 400) return badge(`${status} ok`, "ok");
  return badge(detail ? `${status} ${detail}` : String(status), status === 429 ? "warn" : "bad");
}
