// SVG charts for Vigil's page: a series with its band and anomalies, its score, and sparklines.
// Every chart scales its viewBox to the width of its container; gaps (null) break the lines.

const NS = "http://www.w3.org/2000/svg";
const MARGIN = { left: 58, right: 14, top: 10, bottom: 26 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

function finite(xs) {
  return xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x));
}

// "M x,y L x,y ..." through the points whose value is not null; a gap starts a new run.
function linePath(xs, ys) {
  let d = "";
  let pen = "M";
  for (let i = 0; i < xs.length; i++) {
    if (ys[i] === null || xs[i] === null) {
      pen = "M";
      continue;
    }
    d += `${pen}${xs[i].toFixed(1)},${ys[i].toFixed(1)} `;
    pen = "L";
  }
  return d.trim();
}

// One closed shape per run of points that have both bounds.
function bandPath(xs, lo, hi) {
  let d = "";
  let run = [];
  const close = () => {
    if (run.length > 1) {
      const top = run.map((i) => `${xs[i].toFixed(1)},${hi[i].toFixed(1)}`);
      const bottom = run.reverse().map((i) => `${xs[i].toFixed(1)},${lo[i].toFixed(1)}`);
      d += `M${top.join(" L")} L${bottom.join(" L")} Z `;
    }
    run = [];
  };
  for (let i = 0; i < xs.length; i++) {
    if (lo[i] === null || hi[i] === null || xs[i] === null) close();
    else run.push(i);
  }
  close();
  return d.trim();
}

function niceStep(span, count) {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = [1, 2, 5, 10].find((m) => m * power >= raw) ?? 10;
  return unit * power;
}

// HH:MM, HH:MM:SS or HH:MM:SS.s, as fine as `span` (seconds) needs.
function timeLabel(ms, span) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  if (span >= 1800) return hm;
  const tenths = span < 30 ? `.${Math.floor(d.getMilliseconds() / 100)}` : "";
  return `${hm}:${two(d.getSeconds())}${tenths}`;
}

function numberLabel(x, step) {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  return Math.abs(x) >= 1e6 ? x.toExponential(1) : x.toFixed(Math.min(decimals, 6));
}

// A time chart. `t` in Unix seconds; `lines`: [{values, cls}]; `band`: {lower, upper};
// `marks`: booleans per point, drawn as markers on the first line; `spans`: [[t0, t1]] shaded;
// `domain`: fixed [min, max] of the y axis; `rules`: [{y, cls, label}] horizontal lines;
// `tickLabel(v, step)`: the text of a y tick.
function timeChart({ t, lines, band, marks, spans = [], domain, rules = [], width, height, label, markLabel,
  tickLabel = numberLabel }) {
  const x0 = MARGIN.left;
  const x1 = width - MARGIN.right;
  const y0 = MARGIN.top;
  const y1 = height - MARGIN.bottom;
  const times = finite(t);
  let tMin = Math.min(...times);
  let tMax = Math.max(...times);
  if (!(tMax > tMin)) [tMin, tMax] = [tMin - 1, tMax + 1];
  let [vMin, vMax] = domain ?? [null, null];
  if (!domain) {
    const all = finite([...lines.flatMap((l) => l.values), ...(band ? [...band.lower, ...band.upper] : [])]);
    vMin = Math.min(...all);
    vMax = Math.max(...all);
    if (!(vMax > vMin)) [vMin, vMax] = [vMin - 1, vMax + 1];
    const pad = (vMax - vMin) * 0.06;
    [vMin, vMax] = [vMin - pad, vMax + pad];
  }
  const xOf = (s) => x0 + ((s - tMin) / (tMax - tMin)) * (x1 - x0);
  const yOf = (v) => y1 - ((v - vMin) / (vMax - vMin)) * (y1 - y0);
  const xs = t.map((s) => (s === null ? null : xOf(s)));
  const ys = (values) => values.map((v) => (v === null ? null : yOf(v)));

  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, width: "100%", class: "chart", role: "img", "aria-label": label,
  });
  root.append(svg("rect", { class: "plot-area", x: x0, y: y0, width: x1 - x0, height: y1 - y0 }));

  const step = niceStep(vMax - vMin, 4);
  for (let v = Math.ceil(vMin / step) * step; v <= vMax; v += step) {
    const y = yOf(v);
    root.append(
      svg("line", { class: "grid", x1: x0, x2: x1, y1: y, y2: y }),
      svg("text", { class: "tick", x: x0 - 6, y: y + 4, "text-anchor": "end" }, tickLabel(v, step)),
    );
  }
  for (let i = 0; i <= 4; i++) {
    const s = tMin + ((tMax - tMin) * i) / 4;
    const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
    root.append(svg("text", { class: "tick", x: xOf(s), y: height - 8, "text-anchor": anchor },
      timeLabel(s * 1000, tMax - tMin)));
  }
  for (const [a, b] of spans) {
    const left = xOf(Math.max(a, tMin));
    const right = xOf(Math.min(b, tMax));
    if (right >= left) {
      root.append(svg("rect", { class: "event-span", x: left, y: y0, width: Math.max(right - left, 2), height: y1 - y0 },
        svg("title", {}, "anomaly event")));
    }
  }
  if (band) root.append(svg("path", { class: "band", d: bandPath(xs, ys(band.lower), ys(band.upper)) }));
  for (const line of lines) root.append(svg("path", { class: `line ${line.cls}`, d: linePath(xs, ys(line.values)) }));
  for (const rule of rules) {
    const y = yOf(rule.y);
    root.append(
      svg("line", { class: rule.cls, x1: x0, x2: x1, y1: y, y2: y }),
      svg("text", { class: "tick", x: x1 - 4, y: y - 4, "text-anchor": "end" }, rule.label),
    );
  }
  const firstY = ys(lines[0].values);
  (marks ?? []).forEach((hot, i) => {
    if (!hot || firstY[i] === null || xs[i] === null) return;
    root.append(svg("circle", { class: "marker", cx: xs[i].toFixed(2), cy: firstY[i].toFixed(2), r: 4.5, "data-t": t[i] },
      svg("title", {}, markLabel(i))));
  });
  return root;
}

// Observed values (solid), expected (dashed), the band shaded, anomalies as red markers.
export function seriesChart(points, anomalous, spans, { width, label, fmt }) {
  return timeChart({
    t: points.t,
    lines: [{ values: points.value, cls: "observed" }, { values: points.expected, cls: "expected" }],
    band: { lower: points.lower, upper: points.upper },
    marks: anomalous, spans, width, height: 280, label,
    markLabel: (i) => `anomaly at ${timeLabel(points.t[i] * 1000, 0)}: ${fmt(points.value[i])}`
      + ` (band ${fmt(points.lower[i])} to ${fmt(points.upper[i])})`,
  });
}

// The surprise of a score, -log10(1 - score): 3 for a 1-in-1,000 sample (vigil.formatting.surprise).
export const MAX_SURPRISE = 12;
export function surprise(score) {
  if (score === null || score === undefined) return null;
  const rest = 1 - Math.min(Math.max(score, 0), 1);
  return rest <= 10 ** -MAX_SURPRISE ? MAX_SURPRISE : Math.min(-Math.log10(rest), MAX_SURPRISE);
}

const compact = new Intl.NumberFormat("en", { notation: "compact" });

function rarityLabel(level) {
  return `1 in ${compact.format(10 ** level)}`;
}

// How rare each sample is, on a log scale (1 in 10, 1 in 1K, ...), with the threshold as a line:
// a calibrated score near 1 reads as nothing on a linear axis from 0 to 1.
export function scoreChart(points, anomalous, spans, threshold, { width, label, fmtScore }) {
  const levels = points.score.map(surprise);
  const edge = surprise(threshold);
  const top = Math.max(Math.ceil(edge) + 1, ...finite(levels).map((v) => Math.ceil(v)));
  return timeChart({
    t: points.t, lines: [{ values: levels, cls: "score" }], marks: anomalous, spans, domain: [0, top * 1.04],
    rules: [{ y: edge, cls: "threshold", label: `threshold ${rarityLabel(edge)}` }], width, height: 150, label,
    tickLabel: (v) => (Number.isInteger(Math.round(v * 1e6) / 1e6) ? rarityLabel(v) : ""),
    markLabel: (i) => `score ${fmtScore(points.score[i])} (${rarityLabel(levels[i])}) at ${timeLabel(points.t[i] * 1000, 0)}`,
  });
}

// A small chart for a table row: values by position, band shaded, anomalies marked.
export function sparkline({ value, lower, upper, anomalous }, label) {
  const width = 140;
  const height = 34;
  const all = finite([...value, ...lower, ...upper]);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "spark", role: "img", "aria-label": label });
  if (!all.length) return root;
  let min = Math.min(...all);
  let max = Math.max(...all);
  if (!(max > min)) [min, max] = [min - 1, max + 1];
  const n = Math.max(value.length - 1, 1);
  const xs = value.map((_, i) => 2 + (i / n) * (width - 4));
  const ys = (vs) => vs.map((v) => (v === null ? null : height - 3 - ((v - min) / (max - min)) * (height - 6)));
  const yv = ys(value);
  root.append(
    svg("path", { class: "band", d: bandPath(xs, ys(lower), ys(upper)) }),
    svg("path", { class: "line observed", d: linePath(xs, yv) }),
  );
  anomalous.forEach((hot, i) => {
    if (hot && yv[i] !== null) root.append(svg("circle", { class: "marker", cx: xs[i].toFixed(1), cy: yv[i].toFixed(1), r: 2.5 }));
  });
  return root;
}
