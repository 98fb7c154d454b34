// The dashboard's shell: sign-in, navigation without reloads, and one page at a time in <main>.

import {call, get, setCsrf} from "./api.js";
import {h, message} from "./ui.js";
import {activityPage} from "./pages/activity.js";
import {keysPage} from "./pages/keys.js";
import {modelsPage, modelPage} from "./pages/models.js";
import {generationsPage, generationPage} from "./pages/generations.js";
import {playgroundPage} from "./pages/playground.js";

const ROUTES = [
  [/^\/(?:dashboard\/?)?$/, activityPage, "/dashboard/activity"],
  [/^\/dashboard\/activity$/, activityPage, "/dashboard/activity"],
  [/^\/dashboard\/keys$/, keysPage, "/dashboard/keys"],
  [/^\/dashboard\/models$/, modelsPage, "/dashboard/models"],
  [/^\/dashboard\/models\/([^/]+\/[^/]+)$/, modelPage, "/dashboard/models"],
  [/^\/dashboard\/generations$/, generationsPage, "/dashboard/generations"],
  [/^\/dashboard\/generations\/([^/]+)$/, generationPage, "/dashboard/generations"],
  [/^\/dashboard\/playground$/, playgroundPage, "/dashboard/playground"],
];

const main = document.getElementById("main");
const header = document.querySelector("header.top");
let session = null;
let cleanup = null;

async function start() {
  const current = await get("/session");
  session = current.data;
  if (session) {
    setCsrf(session.csrf_token);
    await render();
  } else {
    signIn();
  }
}

function signIn(problem) {
  header.hidden = true;
  const input = h("input", {type: "password", name: "key", autocomplete: "off", required: true});
  const status = h("div", {"aria-live": "polite"}, problem ? message(problem) : null);
  const form = h("form", {onsubmit: async (event) => {
    event.preventDefault();
    status.replaceChildren();
    try {
      session = (await call("POST", "/session", {key: input.value})).data;
      setCsrf(session.csrf_token);
      await render();
    } catch (error) {
      status.replaceChildren(message(error.status === 401 ? new Error("That key was not accepted.") : error));
    }
  }},
    h("label", {}, "The management key, or an API key", input),
    h("button", {type: "submit", class: "primary", text: "Sign in"}), status);
  main.replaceChildren(h("section", {class: "panel signin"},
    h("h1", {text: "Sign in to Crossroads"}),
    h("p", {class: "muted", text: "An API key sees only its own activity, generations and limits."}), form));
  input.focus();
}

async function render() {
  if (cleanup) cleanup();
  cleanup = null;
  header.hidden = false;
  header.querySelector(".who").textContent = session.role === "admin" ? "management key" : "API key";
  header.querySelector('a[href="/dashboard/keys"]').textContent = session.role === "admin" ? "Keys" : "Key";
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  for (const link of header.querySelectorAll("nav a")) {
    if (route && link.getAttribute("href") === route[2]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!route) {
    main.replaceChildren(h("h1", {text: "Not found"}), h("p", {}, h("a", {href: "/dashboard/activity", text: "Activity"})));
    return;
  }
  const [pattern, page] = route;
  const params = path.match(pattern).slice(1).map(decodeURIComponent);
  main.replaceChildren(h("p", {class: "muted", text: "Loading…"}));
  try {
    cleanup = await page(main, {session, params, query: new URLSearchParams(location.search)}) || null;
  } catch (error) {
    if (error.status === 401) {
      session = null;
      signIn(new Error("Your session has ended; sign in again."));
      return;
    }
    main.replaceChildren(h("h1", {text: "Something went wrong"}), message(error));
  }
}

export function navigate(url) {
  history.pushState(null, "", url);
  render().then(() => main.focus({preventScroll: true}));
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/dashboard") || url.pathname.startsWith("/dashboard/static")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => render());
header.querySelector(".sign-out").addEventListener("click", async () => {
  await call("DELETE", "/session").catch(() => null);
  session = null;
  setCsrf("");
  if (cleanup) cleanup();
  cleanup = null;
  history.pushState(null, "", "/dashboard/activity");
  signIn();
});

start().catch((error) => main.replaceChildren(message(error)));
