// Plain SVG charts (no library): horizontal bars, one row per group, optionally stacked.
// Colours come from CSS classes, so the charts follow the stylesheet and need no inline style.

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const LABEL = 150;
const VALUE = 70;
const ROW = 30;
const BAR = 18;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

/**
 * rows: [{label, segments: [{value, cls, title}], text}]; max: the value of a full bar.
 * A row's `text` is written after its bar (e.g. "75 % (3/4)").
 */
export function barChart({ rows, max, title, id, tick = format }) {
  const height = rows.length * ROW + 24;
  const plot = WIDTH - LABEL - VALUE;
  const scale = (v) => (max > 0 ? (v / max) * plot : 0);
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "chart", role: "img", "aria-label": title, id });
  svg.append(s("title", {}, title));
  for (const fraction of [0, 0.5, 1]) {
    const x = LABEL + fraction * plot;
    svg.append(s("line", { x1: x, x2: x, y1: 0, y2: height - 20, class: "grid" }),
      s("text", { x, y: height - 6, class: "tick", "text-anchor": "middle" }, tick(fraction * max)));
  }
  rows.forEach((row, i) => {
    const y = i * ROW + 6;
    svg.append(s("text", { x: LABEL - 8, y: y + BAR - 4, class: "row-label", "text-anchor": "end" }, row.label));
    let x = LABEL;
    for (const segment of row.segments) {
      const w = scale(segment.value);
      if (w > 0) svg.append(s("rect", { x, y, width: w, height: BAR, rx: 3, class: `bar ${segment.cls ?? ""}` },
        s("title", {}, `${row.label} · ${segment.title ?? ""} ${segment.value}`)));
      x += w;
    }
    svg.append(s("text", { x: x + 6, y: y + BAR - 4, class: "value" }, row.text ?? ""));
  });
  return svg;
}

function format(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

export function legend(items) {
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} 20`, class: "legend" });
  let x = LABEL;
  for (const { cls, text } of items) {
    svg.append(s("rect", { x, y: 4, width: 12, height: 12, rx: 2, class: `bar ${cls}` }),
      s("text", { x: x + 18, y: 15, class: "tick" }, text));
    x += 30 + text.length * 9;
  }
  return svg;
}
