// Activity: spend, requests or tokens over time, stacked by model, provider, key or app, with totals.
// The figures are /api/v1/activity's, bucketed by the gateway (`granularity`).

import uPlot from "../vendor/uplot/uPlot.esm.js";
import {get} from "../api.js";
import {fmt, h, table} from "../ui.js";

const METRICS = {
  spend: {label: "Spend (USD)", value: (r) => r.usage, format: (v) => fmt.usd(v),
          tick: (v) => `$${Number(v.toPrecision(3))}`},
  requests: {label: "Requests", value: (r) => r.requests, format: (v) => fmt.int(v), tick: (v) => fmt.int(v)},
  tokens: {label: "Tokens", value: (r) => r.prompt_tokens + r.completion_tokens, format: (v) => fmt.int(v),
           tick: (v) => fmt.int(v)},
};
const PERIODS = {hour: "Hourly, 48 hours", day: "Daily, 30 days", week: "Weekly, 12 weeks", month: "Monthly, 12 months"};
const GROUPS = {model: "Model", provider: "Provider", key: "Key", app: "App"};
const PALETTE = ["#6366f1", "#f59e0b", "#10b981", "#ef4444", "#06b6d4", "#a855f7", "#84cc16", "#ec4899", "#94a3b8"];
const MAX_SERIES = 8;
// Tick steps for counts: whole numbers only.
const WHOLE = [1, 2, 5].flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9].map((p) => m * p))
  .sort((a, b) => a - b);

export async function activityPage(main, {session, query}) {
  const state = {
    metric: query.get("metric") in METRICS ? query.get("metric") : "spend",
    granularity: query.get("granularity") in PERIODS ? query.get("granularity") : "day",
    group: query.get("group") in GROUPS ? query.get("group") : "model",
  };
  const select = (name, options) => h("label", {}, name === "metric" ? "Show" : name === "granularity" ? "Period" : "Stacked by",
    h("select", {name, onchange: (e) => { state[name] = e.target.value; update(); }},
      Object.entries(options).map(([value, label]) =>
        h("option", {value, selected: state[name] === value, text: typeof label === "string" ? label : label.label}))));
  const cards = h("div", {class: "cards"});
  const chartBox = h("div", {class: "chart", role: "img", "aria-label": "Activity chart"});
  const breakdown = h("div");
  main.replaceChildren(
    h("h1", {text: "Activity"}),
    h("div", {class: "panel row"}, select("metric", METRICS), select("granularity", PERIODS), select("group", GROUPS)),
    cards, h("section", {class: "panel"}, chartBox), h("h2", {text: "Breakdown"}), breakdown);

  const names = await keyNames(session);
  let plot = null;
  const observer = new ResizeObserver(() => plot?.setSize({width: chartBox.clientWidth, height: 320}));
  observer.observe(chartBox);

  async function update() {
    const url = new URL(location.href);
    for (const [name, value] of Object.entries(state)) url.searchParams.set(name, value);
    history.replaceState(null, "", url.pathname + url.search);
    const groupBy = {key: "key", app: "app", provider: "provider", model: "model"}[state.group];
    const rows = (await get(`/activity?granularity=${state.granularity}&group_by=${groupBy}`)).data;
    const metric = METRICS[state.metric];
    const label = (row) => ({
      model: row.model, provider: row.provider_name || "(none)", app: row.app || "(no app)",
      key: names[row.api_key_hash] || `${(row.api_key_hash || "").slice(0, 10)}…`,
    })[state.group];
    cards.replaceChildren(
      card("Spend", fmt.usd(sum(rows, (r) => r.usage))),
      card("Requests", fmt.int(sum(rows, (r) => r.requests))),
      card("Prompt tokens", fmt.int(sum(rows, (r) => r.prompt_tokens))),
      card("Completion tokens", fmt.int(sum(rows, (r) => r.completion_tokens))));
    plot?.destroy();
    plot = draw(chartBox, rows, state.granularity, metric, label);
    const totals = new Map();
    for (const row of rows) {
      const item = totals.get(label(row)) || {name: label(row), requests: 0, tokens: 0, usage: 0};
      item.requests += row.requests;
      item.tokens += row.prompt_tokens + row.completion_tokens;
      item.usage += row.usage;
      totals.set(item.name, item);
    }
    breakdown.replaceChildren(table([
      {label: GROUPS[state.group], cell: (r) => r.name},
      {label: "Requests", num: true, cell: (r) => fmt.int(r.requests)},
      {label: "Tokens", num: true, cell: (r) => fmt.int(r.tokens)},
      {label: "Spend", num: true, cell: (r) => fmt.usd(r.usage)},
    ], [...totals.values()].sort((a, b) => b.usage - a.usage || b.requests - a.requests),
    {empty: "No requests in this period yet."}));
  }

  await update();
  return () => { observer.disconnect(); plot?.destroy(); };
}

function card(label, value) {
  return h("div", {class: "card"}, h("div", {class: "label", text: label}), h("div", {class: "value", text: value}));
}

function sum(rows, pick) {
  return rows.reduce((total, row) => total + pick(row), 0);
}

async function keyNames(session) {
  if (session.role !== "admin") return {[session.api_key_hash]: "This key"};
  const keys = (await get("/keys?include_disabled=true")).data;
  return Object.fromEntries(keys.map((k) => [k.hash, k.name]));
}

// Bucket starts (UTC) of the period, oldest first, as the gateway names them.
function buckets(granularity) {
  const now = new Date();
  const y = now.getUTCFullYear(), m = now.getUTCMonth(), d = now.getUTCDate();
  const out = [];
  if (granularity === "hour") {
    const top = Date.UTC(y, m, d, now.getUTCHours());
    for (let i = 47; i >= 0; i--) out.push(top - i * 3600e3);
  } else if (granularity === "day") {
    for (let i = 29; i >= 0; i--) out.push(Date.UTC(y, m, d - i));
  } else if (granularity === "week") {
    const monday = Date.UTC(y, m, d - ((now.getUTCDay() + 6) % 7));
    for (let i = 11; i >= 0; i--) out.push(monday - i * 7 * 86400e3);
  } else {
    for (let i = 11; i >= 0; i--) out.push(Date.UTC(y, m - i, 1));
  }
  return out.map((t) => {
    const iso = new Date(t).toISOString();
    return {t: t / 1000, key: granularity === "hour" ? `${iso.slice(0, 13)}:00` : iso.slice(0, 10)};
  });
}

function draw(box, rows, granularity, metric, label) {
  const slots = buckets(granularity);
  const index = new Map(slots.map((s, i) => [s.key, i]));
  const series = new Map();
  for (const row of rows) {
    const i = index.get(row.date);
    if (i === undefined) continue;
    const name = label(row);
    if (!series.has(name)) series.set(name, new Array(slots.length).fill(0));
    series.get(name)[i] += metric.value(row);
  }
  let groups = [...series.entries()].map(([name, values]) => ({name, values, total: values.reduce((a, b) => a + b, 0)}))
    .sort((a, b) => b.total - a.total);
  if (groups.length > MAX_SERIES) {
    const rest = groups.slice(MAX_SERIES - 1);
    const other = new Array(slots.length).fill(0);
    for (const g of rest) g.values.forEach((v, i) => { other[i] += v; });
    groups = [...groups.slice(0, MAX_SERIES - 1), {name: `${rest.length} others`, values: other}];
  }
  // Stacked bars: each series is drawn at its cumulative height, tallest first, so each shows its own band.
  const stacked = [];
  groups.forEach((g, k) => stacked.push(g.values.map((v, i) => v + (k ? stacked[k - 1][i] : 0))));
  const order = groups.map((_, k) => k).reverse();
  const css = getComputedStyle(document.documentElement);
  const muted = css.getPropertyValue("--muted").trim();
  const line = css.getPropertyValue("--line").trim();
  const top = Math.max(0, ...(stacked.length ? stacked[stacked.length - 1] : [0]));
  const bars = uPlot.paths.bars({size: [0.7, 48], align: 0});
  const options = {
    width: Math.max(box.clientWidth, 280), height: 320,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    scales: {x: {time: true, range: (u, min, max) => [min - step(granularity) * 0.6, max + step(granularity) * 0.6]},
             y: {range: () => [0, top > 0 ? top * 1.1 : 1]}},
    axes: [
      {stroke: muted, grid: {stroke: line, width: 1}, ticks: {stroke: line}},
      {stroke: muted, grid: {stroke: line, width: 1}, ticks: {stroke: line},
       values: (u, ticks) => ticks.map((v) => metric.tick(v)),
       size: (u, values) => 18 + 7 * Math.max(4, ...(values || []).map((v) => v.length)),
       incrs: metric === METRICS.spend ? undefined : WHOLE},
    ],
    legend: {live: true},
    cursor: {points: {show: false}},
    series: [
      {label: "Time", value: (u, v) => (v === null ? "—" : fmtSlot(v, granularity))},
      ...order.map((k) => ({
        label: groups[k].name, stroke: PALETTE[k % PALETTE.length], fill: PALETTE[k % PALETTE.length], width: 0,
        paths: bars, points: {show: false},
        value: (u, v, s, i) => (i === null || i === undefined ? "—" : metric.format(groups[k].values[i])),
      })),
    ],
  };
  const data = [slots.map((s) => s.t), ...order.map((k) => stacked[k])];
  return new uPlot(options, data, box);
}

function step(granularity) {
  return {hour: 3600, day: 86400, week: 7 * 86400, month: 30 * 86400}[granularity];
}

function fmtSlot(t, granularity) {
  const iso = new Date(t * 1000).toISOString();
  if (granularity === "hour") return `${iso.slice(0, 10)} ${iso.slice(11, 13)}:00 UTC`;
  if (granularity === "month") return iso.slice(0, 7);
  if (granularity === "week") return `week of ${iso.slice(0, 10)}`;
  return iso.slice(0, 10);
}
