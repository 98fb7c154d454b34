// Small DOM helpers shared by the pages: elements, formats, tables, usage bars and sparklines.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const fmt = {
  usd(value) {
    if (value === null || value === undefined) return "—";
    if (value !== 0 && Math.abs(value) < 0.01) return `$${value.toPrecision(2)}`;
    return `$${value.toFixed(2)}`;
  },
  perMillion(perToken) {
    const value = Number(perToken) * 1e6;
    if (!Number.isFinite(value)) return "—";
    return value === 0 ? "free" : `$${value < 1 ? value.toPrecision(2) : value.toFixed(2)}`;
  },
  int(value) {
    return value === null || value === undefined ? "—" : Math.round(value).toLocaleString("en-US");
  },
  ms(value) {
    return value === null || value === undefined ? "—" : `${Math.round(value).toLocaleString("en-US")} ms`;
  },
  pct(value) {
    return value === null || value === undefined ? "—" : `${value.toFixed(value === 100 ? 0 : 1)}%`;
  },
  time(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  },
  context(tokens) {
    if (!tokens) return "—";
    return tokens >= 1000 ? `${Math.round(tokens / 1000).toLocaleString("en-US")}K` : String(tokens);
  },
};

// columns: [{label, num, cell(row) -> Node|string}]
export function table(columns, rows, {empty = "Nothing yet.", caption} = {}) {
  if (!rows.length) return h("p", {class: "muted", text: empty});
  return h("div", {class: "table-wrap"},
    h("table", {class: "responsive"},
      caption ? h("caption", {class: "muted", text: caption}) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {class: c.num ? "num" : null, scope: "col", text: c.label})))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) =>
        h("td", {class: [c.num ? "num" : "", c.wrap ? "wrap" : ""].join(" ").trim() || null, "data-label": c.label},
          c.cell(row))))))));
}

export function usageBar(used, limit) {
  if (limit === null || limit === undefined) {
    return h("div", {class: "usage"}, h("span", {text: `${fmt.usd(used)} (no limit)`}));
  }
  const share = limit > 0 ? Math.min(used / limit, 1) : 1;
  return h("div", {class: "usage", role: "meter", "aria-valuemin": "0", "aria-valuemax": String(limit),
                   "aria-valuenow": String(used), "aria-label": "Usage against limit"},
    h("div", {class: "track"}, h("div", {class: `fill${used >= limit ? " over" : ""}`,
                                         style: `width: ${(share * 100).toFixed(1)}%`})),
    h("span", {class: "mono", text: `${fmt.usd(used)} / ${fmt.usd(limit)}`}));
}

const SVG = "http://www.w3.org/2000/svg";

// A sparkline of a series with gaps (null), scaled to its own range.
export function sparkline(values, label) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 24");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const known = values.filter((v) => v !== null);
  if (!known.length) return svg;
  const low = Math.min(...known);
  const high = Math.max(...known);
  const span = high - low || 1;
  const step = values.length > 1 ? 96 / (values.length - 1) : 0;
  let run = [];
  const flush = () => {
    if (run.length === 1) {  // a lone figure between gaps: a dot
      const dot = document.createElementNS(SVG, "circle");
      dot.setAttribute("cx", run[0][0]);
      dot.setAttribute("cy", run[0][1]);
      dot.setAttribute("r", "2");
      svg.append(dot);
    } else if (run.length) {
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", run.map((p) => p.join(",")).join(" "));
      svg.append(line);
    }
    run = [];
  };
  values.forEach((value, i) => {
    if (value === null) return flush();
    run.push([(2 + i * step).toFixed(2), (22 - ((value - low) / span) * 20).toFixed(2)]);
  });
  flush();
  return svg;
}

export function badge(text, kind) {
  return h("span", {class: `badge ${kind}`, text});
}

export function message(error) {
  return h("p", {class: "error", role: "alert", text: error.message || String(error)});
}
