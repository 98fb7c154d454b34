// Models and providers: the searchable catalog, and a model's page with each endpoint's live health.

import {get} from "../api.js";
import {badge, fmt, h, sparkline, table} from "../ui.js";

export async function modelsPage(main, {query}) {
  const [models, providers] = await Promise.all([get("/models"), get("/catalog/providers")]);
  const rows = models.data.map((m) => ({...m, providers: providers.data[m.id] || []}))
    .sort((a, b) => a.id.localeCompare(b.id));
  const search = h("input", {type: "search", name: "q", placeholder: "Search models and providers",
                             value: query.get("q") || "", "aria-label": "Search models and providers"});
  const count = h("p", {class: "muted", "aria-live": "polite"});
  const list = h("div");
  const show = () => {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const found = rows.filter((m) => {
      const text = [m.id, m.name, ...m.providers.map((p) => p.name), ...m.architecture.input_modalities].join(" ").toLowerCase();
      return words.every((w) => text.includes(w));
    });
    count.textContent = `${found.length} of ${rows.length} models`;
    list.replaceChildren(table([
      {label: "Model", wrap: true, cell: (m) => h("div", {},
        h("a", {href: `/dashboard/models/${m.id}`, text: m.name}), h("div", {class: "muted mono", text: m.id}))},
      {label: "Input $/M", num: true, cell: (m) => fmt.perMillion(m.pricing.prompt)},
      {label: "Output $/M", num: true, cell: (m) => fmt.perMillion(m.pricing.completion)},
      {label: "Context", num: true, cell: (m) => fmt.context(m.context_length)},
      {label: "Modalities", wrap: true, cell: (m) =>
        `${m.architecture.input_modalities.join(", ")} → ${m.architecture.output_modalities.join(", ")}`},
      {label: "Providers", wrap: true, cell: (m) => h("span", {}, m.providers.map((p, i) =>
        h("span", {class: p.configured ? null : "muted", title: p.configured ? "configured" : "not configured"},
          (i ? ", " : "") + p.name)))},
    ], found, {empty: "No model matches."}));
  };
  search.addEventListener("input", () => {
    history.replaceState(null, "", search.value ? `?q=${encodeURIComponent(search.value)}` : location.pathname);
    show();
  });
  main.replaceChildren(h("h1", {text: "Models"}), h("div", {class: "panel row"}, search, count), list);
  show();
}

const STATUS = {0: ["live", "ok"], "-1": ["degraded", "warn"], "-2": ["not configured", "off"],
                "-3": ["no adapter", "off"], "-5": ["down", "bad"]};

export async function modelPage(main, {params}) {
  const [id] = params;
  const [model, endpoints, history] = await Promise.all([
    get(`/model/${id}`), get(`/models/${id}/endpoints`), get(`/models/${id}/history`)]);
  const m = model.data;
  const series = history.data;
  const rows = endpoints.data.endpoints.map((e) => ({...e,
    history: series.find((s) => s.provider_name === e.provider_name && e.name.startsWith(s.provider_name)
                                && (s.tag === e.tag || !e.tag)) || null}));
  const percentiles = (p, scale, unit) => (p ? `${fmt.int(p.p50 * scale)} / ${fmt.int(p.p90 * scale)}${unit}` : "—");
  main.replaceChildren(
    h("p", {}, h("a", {href: "/dashboard/models", text: "← Models"})),
    h("h1", {text: m.name}),
    h("section", {class: "panel"}, h("dl", {class: "facts"},
      h("dt", {text: "Id"}), h("dd", {}, h("code", {text: m.id})),
      h("dt", {text: "Context"}), h("dd", {text: `${fmt.int(m.context_length)} tokens`}),
      h("dt", {text: "Modalities"}), h("dd", {text:
        `${m.architecture.input_modalities.join(", ")} → ${m.architecture.output_modalities.join(", ")}`}),
      h("dt", {text: "Price from"}), h("dd", {text:
        `${fmt.perMillion(m.pricing.prompt)} in, ${fmt.perMillion(m.pricing.completion)} out per million tokens`}),
      m.description ? [h("dt", {text: "About"}), h("dd", {text: m.description})] : null)),
    h("h2", {text: "Endpoints"}),
    h("p", {class: "muted", text: "Live figures: uptime over 5 minutes, 30 minutes and a day; time to first token and " +
      "throughput as p50 / p90 over 30 minutes, with a sparkline of each minute's median (uptime: each hour's)."}),
    table([
      {label: "Provider", cell: (e) => h("div", {}, h("strong", {text: e.provider_name}),
        e.tag ? h("div", {class: "muted mono", text: e.tag}) : null)},
      {label: "Status", cell: (e) => badge(...(STATUS[e.status] || [String(e.status), "warn"]))},
      {label: "Configured", cell: (e) => (e.configured ? "yes" : "no")},
      {label: "Uptime 5m / 30m / 1d", num: true, cell: (e) => h("div", {},
        `${fmt.pct(e.uptime_last_5m)} / ${fmt.pct(e.uptime_last_30m)} / ${fmt.pct(e.uptime_last_1d)}`,
        sparkline(e.history?.uptime || [], `Uptime of ${e.provider_name}, hourly over a day`))},
      {label: "TTFT p50 / p90", num: true, cell: (e) => h("div", {}, percentiles(e.latency_last_30m, 1, " ms"),
        sparkline(e.history?.ttft || [], `Time to first token of ${e.provider_name}, each minute`))},
      {label: "Tokens/s p50 / p90", num: true, cell: (e) => h("div", {}, percentiles(e.throughput_last_30m, 1, ""),
        sparkline(e.history?.throughput || [], `Throughput of ${e.provider_name}, each minute`))},
      {label: "Input / output $/M", num: true, cell: (e) =>
        `${fmt.perMillion(e.pricing.prompt)} / ${fmt.perMillion(e.pricing.completion)}`},
      {label: "Context", num: true, cell: (e) => fmt.context(e.context_length)},
    ], rows, {empty: "This model has no endpoints."}));
}
