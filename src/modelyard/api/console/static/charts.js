// Bar charts drawn as SVG. The report needs three kinds of bars (a run's bins over the
// reference's, drift scores against thresholds, counts by field), which take a few dozen lines
// here; a chart library would be the largest file the console ships. Labels are SVG text nodes:
// names from pickles are shown, never parsed.

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const LABEL = 200;

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child instanceof Node ? child : String(child));
  return element;
}

function clip(text, length) {
  const label = String(text);
  return label.length > length ? `${label.slice(0, length - 1)}…` : label;
}

function chart(kind, width, height, title) {
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", "data-chart": kind, role: "img",
    "aria-label": title });
}

// One horizontal bar per row, longest scale first as given; `marks` draws vertical lines (the
// drift thresholds). rows: [{label, value, kind, note}]
export function horizontalBars(kind, title, rows, { marks = [], format = String } = {}) {
  const row = 20;
  const top = 4 + 13 * marks.length;
  const height = top + rows.length * row + 4;
  const largest = Math.max(...rows.map((r) => r.value), ...marks.map((m) => m.value * 1.1), 1e-9);
  const span = WIDTH - LABEL - 70;
  const x = (value) => LABEL + (value / largest) * span;
  const figure = chart(kind, WIDTH, height, title);
  rows.forEach((r, i) => {
    const y = top + i * row;
    figure.append(
      svg("text", { x: LABEL - 6, y: y + 14, class: "label", "text-anchor": "end" }, clip(r.label, 30)),
      svg("rect", { x: LABEL, y: y + 3, width: Math.max(x(r.value) - LABEL, 1), height: row - 6,
        class: `bar ${r.kind || ""}` }, svg("title", {}, `${r.label}: ${format(r.value)}${r.note ? ` (${r.note})` : ""}`)),
      svg("text", { x: x(r.value) + 4, y: y + 14, class: "value" }, format(r.value)));
  });
  marks.forEach((mark, i) => {
    figure.append(
      svg("line", { x1: x(mark.value), x2: x(mark.value), y1: 13 * i + 14, y2: height, class: `mark ${mark.kind || ""}` }),
      svg("text", { x: x(mark.value) + 3, y: 13 * i + 11, class: "mark-label" }, `${mark.label} ${mark.value}`));
  });
  return figure;
}

// Bins side by side, each series as its share of its own rows (a run of 500 rows and a reference
// of 4,000 compare bin for bin). Small: several sit side by side. series: [{name, values, kind}]
export function histogram(kind, title, bins, series) {
  const width = 380;
  const height = 150;
  const left = 34;
  const bottom = 100;
  const shares = series.map((s) => {
    const total = s.values.reduce((a, b) => a + b, 0) || 1;
    return s.values.map((v) => v / total);
  });
  const largest = Math.max(...shares.flat(), 1e-9);
  const slot = (width - left - 6) / bins.length;
  const bar = Math.max((slot - 3) / series.length, 1);
  const figure = chart(kind, width, height, title);
  figure.append(svg("line", { x1: left, x2: width - 4, y1: bottom, y2: bottom, class: "axis" }),
    svg("text", { x: left - 3, y: 24, class: "tick", "text-anchor": "end" }, `${(100 * largest).toFixed(0)}%`));
  bins.forEach((label, b) => {
    const start = left + b * slot + 1.5;
    series.forEach((s, i) => {
      const tall = (shares[i][b] / largest) * (bottom - 22);
      figure.append(svg("rect", { x: start + i * bar, y: bottom - tall, width: bar, height: Math.max(tall, 0.5),
        class: `bar ${s.kind}` }, svg("title", {}, `${label}: ${s.name} ${(100 * shares[i][b]).toFixed(1)}% (${s.values[b].toLocaleString()} rows)`)));
    });
    const middle = start + slot / 2;
    figure.append(svg("text", { x: middle, y: bottom + 9, class: "tick", "text-anchor": "end",
      transform: `rotate(-35 ${middle} ${bottom + 9})` }, clip(label, 14)));
  });
  series.forEach((s, i) => {
    const x = width - 70 * (series.length - i);
    figure.append(svg("rect", { x, y: 4, width: 8, height: 8, class: `bar ${s.kind}` }),
      svg("text", { x: x + 11, y: 11, class: "tick" }, s.name));
  });
  return figure;
}
