// Playground: pick a model, send a chat, watch the reply stream in, then see its cost and provider.

import {get, stream} from "../api.js";
import {fmt, h, message} from "../ui.js";

const DEFAULT_MODEL = "openai/gpt-4o-mini";

export async function playgroundPage(main, {session}) {
  const models = (await get("/models")).data.filter((m) => m.architecture.output_modalities.includes("text"))
    .sort((a, b) => a.id.localeCompare(b.id));
  const picked = models.some((m) => m.id === DEFAULT_MODEL) ? DEFAULT_MODEL : models[0]?.id;
  const model = h("select", {name: "model"}, models.map((m) => h("option", {value: m.id, text: m.id, selected: m.id === picked})));
  const prompt = h("textarea", {name: "prompt", required: true, placeholder: "Say something to the model"});
  const conversation = h("div", {class: "conversation", "aria-live": "polite"});
  const send = h("button", {type: "submit", class: "primary", text: "Send"});
  const clear = h("button", {type: "button", text: "New chat"});
  const messages = [];
  let controller = null;

  clear.addEventListener("click", () => {
    messages.length = 0;
    conversation.replaceChildren();
    prompt.focus();
  });
  const form = h("form", {class: "panel", onsubmit: async (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || controller) return;
    messages.push({role: "user", content: text});
    prompt.value = "";
    const reply = h("div", {class: "reply"});
    const facts = h("p", {class: "muted facts-line", text: "Streaming…"});
    conversation.append(h("div", {class: "turn"}, h("p", {}, h("strong", {text: "You: "}), text),
      h("p", {}, h("strong", {text: "Model:"})), reply, facts));
    send.disabled = true;
    controller = true;
    let content = "";
    let last = null;
    try {
      await stream({model: model.value, messages}, (chunk) => {
        last = {...last, ...chunk};
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          content += delta;
          reply.textContent = content;
        }
      });
      messages.push({role: "assistant", content});
      facts.replaceChildren(
        `${last?.provider ?? "?"} · ${last?.model ?? model.value} · ` +
        `${fmt.int(last?.usage?.prompt_tokens)} + ${fmt.int(last?.usage?.completion_tokens)} tokens · ` +
        `${fmt.usd(last?.usage?.cost)} · `,
        h("a", {href: `/dashboard/generations/${last?.id}`, text: "generation"}));
    } catch (error) {
      messages.pop();
      facts.replaceChildren(message(error));
    } finally {
      send.disabled = false;
      controller = null;
    }
  }},
    h("div", {class: "row"}, h("label", {}, "Model", model)),
    h("p", {}, h("label", {}, "Message", prompt)),
    h("div", {class: "row"}, send, clear));
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  main.replaceChildren(h("h1", {text: "Playground"}),
    h("p", {class: "muted", text: session.role === "admin"
      ? "Requests here are charged to a key made for this session, which is deleted when you sign out."
      : "Requests here are charged to your key."}),
    form, conversation);
}
