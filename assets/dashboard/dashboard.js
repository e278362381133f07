// eventmill dashboard: KPI cards from /v1/analytics/summary, live charts from the SSE feed
// /v1/analytics/live (one message per tick, 250 ms by default), history from /v1/analytics/timeseries.
// Plain DOM and SVG, no library.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const LIVE_SECONDS = 120;
const COLORS = ["#2f5bd3", "#1e7b45", "#b54708", "#7a2fd3", "#0f8a9d", "#b42318", "#5c6270", "#c2185b"];
const PERIODS = { "15m": 900, "1h": 3600, "24h": 86400, "7d": 604800, "30d": 2592000, "365d": 31536000 };
const seconds = new Map(); // unix second -> cells [[type, source, events, revenue]]
const colorOf = new Map();
let lastT = 0;
let firstT = 0; // first second this page saw: the live charts grow from there to LIVE_SECONDS

const $ = (id) => document.getElementById(id);
const filters = () => ({ source: $("source").value, type: $("event-type").value });
const threshold = () => Number($("threshold").value) / 100;
const fmt = (n) => n.toLocaleString("en-US", { maximumFractionDigits: 0 });
const money = (n) => n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
// Axis labels stay short: 12.5k, 1.2M.
const compact = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n >= 10 ? fmt(n) : n.toFixed(2));

function color(name) {
  if (!colorOf.has(name)) colorOf.set(name, COLORS[colorOf.size % COLORS.length]);
  return colorOf.get(name);
}

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// Draws series [{name, values: [[x, y]...]}] as lines (or bars) with a y axis and optional threshold.
function chart(svg, series, opts) {
  const W = svg.viewBox.baseVal.width, H = svg.viewBox.baseVal.height;
  const L = 56, R = 10, T = 10, B = 24;
  svg.replaceChildren();
  const xs = series.flatMap((s) => s.values.map((p) => p[0]));
  const x0 = opts.x0 ?? Math.min(...xs), x1 = opts.x1 ?? Math.max(...xs);
  const top = niceMax(Math.max(opts.min ?? 0, opts.threshold ?? 0, ...series.flatMap((s) => s.values.map((p) => p[1]))));
  const x = (v) => L + ((v - x0) / Math.max(1, x1 - x0)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }, svg);
    const plain = top < 4 ? v.toFixed(2) : compact(v);
    el("text", { x: L - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, svg).textContent = opts.label ? opts.label(v) : plain;
  }
  for (const t of opts.xticks || []) {
    // Labels at either end are anchored inside the plot so they are never cut off.
    const at = x(t[0]);
    const anchor = at > W - R - 40 ? "end" : at < L + 20 ? "start" : "middle";
    el("text", { x: Math.min(at, W - 2), y: H - 6, class: "tick", "text-anchor": anchor }, svg).textContent = t[1];
  }
  let points = 0;
  for (const s of series) {
    points = Math.max(points, s.values.length);
    if (opts.bars) {
      const w = Math.max(1, ((W - L - R) / Math.max(1, s.values.length)) * 0.8);
      for (const [px, py] of s.values) el("rect", { x: x(px) - w / 2, y: y(py), width: w, height: y(0) - y(py), fill: s.color, class: "bar" }, svg);
    } else {
      const d = s.values.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
      if (d) el("path", { d, stroke: s.color, fill: "none", class: "line", "data-series": s.name }, svg);
    }
  }
  if (opts.threshold !== undefined) {
    el("line", { x1: L, x2: W - R, y1: y(opts.threshold), y2: y(opts.threshold), class: "threshold" }, svg);
    // Above the line, or below it when the line runs along the top of the plot.
    const ty = y(opts.threshold) < T + 14 ? y(opts.threshold) + 13 : y(opts.threshold) - 4;
    el("text", { x: W - R - 4, y: ty, class: "tick threshold-label", "text-anchor": "end" }, svg).textContent =
      `alert above ${opts.label(opts.threshold)}`;
  }
  svg.dataset.points = String(points);
}

function keep(cell) {
  const f = filters();
  return (!f.source || cell[1] === f.source) && (!f.type || cell[0] === f.type);
}

function noteSources(cells) {
  const select = $("source");
  const known = new Set([...select.options].map((o) => o.value));
  for (const c of cells) {
    if (!known.has(c[1])) {
      select.add(new Option(c[1], c[1]));
      known.add(c[1]);
    }
  }
}

function renderLive() {
  if (!lastT) return;
  const range = [];
  // The current second is still filling: the charts end at the last complete one.
  for (let t = Math.max(firstT, lastT - LIVE_SECONDS); t < lastT; t++) range.push(t);
  const byType = new Map(), revenue = [], errorRate = [];
  for (const t of range) {
    const cells = (seconds.get(t) || []).filter(keep);
    let events = 0, errors = 0, rev = 0;
    const counts = new Map();
    for (const [type, , n, r] of cells) {
      counts.set(type, (counts.get(type) || 0) + n);
      events += n;
      rev += r;
      if (type === "error") errors += n;
    }
    for (const type of counts.keys()) if (!byType.has(type)) byType.set(type, []);
    for (const [type, values] of byType) values.push([t, counts.get(type) || 0]);
    revenue.push([t, rev]);
    errorRate.push([t, events ? errors / events : 0]);
  }
  const xticks = [[lastT - 90, "-90 s"], [lastT - 60, "-60 s"], [lastT - 30, "-30 s"], [lastT - 1, "now"]];
  const frame = { x0: lastT - LIVE_SECONDS, x1: lastT - 1, xticks };
  // Types first seen inside the window get zeros before, so every line spans the window.
  const series = [...byType].map(([name, values]) => {
    const full = range.map((t) => [t, (values.find((p) => p[0] === t) || [t, 0])[1]]);
    return { name, color: color(name), values: full };
  });
  chart($("chart-events"), series, frame);
  $("legend-events").replaceChildren(...series.map((s) => {
    const item = document.createElement("span");
    item.className = "key";
    item.style.setProperty("--key", s.color);
    item.textContent = s.name;
    return item;
  }));
  chart($("chart-revenue"), [{ name: "revenue", color: "#1e7b45", values: revenue }], { ...frame, label: compact });
  const pct = (v) => `${(v * 100).toFixed(v < 0.1 ? 1 : 0)} %`;
  chart($("chart-errors"), [{ name: "error rate", color: "#b42318", values: errorRate }],
    { ...frame, label: pct, threshold: threshold(), min: 0.01 });
  // The alert looks at the last 10 seconds, so one error among few events does not flash it.
  let e = 0, n = 0;
  for (let t = lastT - 9; t <= lastT; t++) for (const c of (seconds.get(t) || []).filter(keep)) { n += c[2]; if (c[0] === "error") e += c[2]; }
  const rate = n ? e / n : 0;
  const alert = rate > threshold();
  $("kpi-error-rate").classList.toggle("alert", alert);
  $("error-chart").classList.toggle("alert", alert);
  document.querySelector('[data-kpi="error_rate"]').textContent = pct(rate);
}

function onCounters(message) {
  const data = JSON.parse(message.data);
  for (const s of data.seconds) {
    seconds.set(s.t, s.cells);
    noteSources(s.cells);
  }
  lastT = Math.max(lastT, data.t);
  if (!firstT) firstT = data.seconds.length ? data.seconds[0].t : data.t;
  for (const t of seconds.keys()) if (t < lastT - LIVE_SECONDS - 5) seconds.delete(t);
  $("live-clock").textContent = new Date(data.t * 1000).toISOString().slice(11, 19) + " UTC";
  renderLive();
}

function connect() {
  const source = new EventSource("/v1/analytics/live");
  source.addEventListener("counters", onCounters);
  source.onopen = () => { $("live-status").textContent = "live"; $("live-status").className = "live"; };
  source.onerror = () => { $("live-status").textContent = "reconnecting"; $("live-status").className = "live stale"; };
}

async function getJson(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== undefined));
  const response = await fetch(`${path}?${query}`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

async function refreshKpis() {
  const from = new Date(Date.now() - PERIODS[$("period").value] * 1000).toISOString();
  try {
    const f = filters();
    const s = await getJson("/v1/analytics/summary", { from, source: f.source, event_type: f.type });
    for (const key of ["page_views", "purchases", "errors", "active_users"]) document.querySelector(`[data-kpi="${key}"]`).textContent = fmt(s[key]);
    document.querySelector('[data-kpi="revenue"]').textContent = money(s.revenue);
    $("kpis").dataset.events = String(s.events);
  } catch (error) {
    $("live-status").textContent = String(error);
  }
}

async function refreshHistory() {
  const [interval, span] = $("range").value.split(":");
  const from = new Date(Date.now() - PERIODS[span] * 1000).toISOString();
  const f = filters();
  try {
    const ts = await getJson("/v1/analytics/timeseries", { interval, from, source: f.source, event_type: f.type });
    const values = ts.points.map((p) => [Date.parse(p.t) / 1000, p.events]);
    const every = Math.max(1, Math.floor(values.length / 6));
    const xticks = values.filter((_, i) => i % every === 0).map(([t]) => {
      const d = new Date(t * 1000).toISOString();
      return [t, interval === "hour" ? d.slice(5, 13).replace("T", " ") + "h" : d.slice(0, 10)];
    });
    chart($("chart-history"), [{ name: "events", color: "#2f5bd3", values }], { bars: true, xticks });
    $("chart-history").dataset.interval = interval;
    $("history-note").textContent = `${fmt(values.reduce((a, p) => a + p[1], 0))} events, ${interval === "hour" ? "hourly" : "daily"} buckets`;
  } catch (error) {
    $("history-note").textContent = String(error);
  }
}

async function loadTypes() {
  try {
    const types = await getJson("/v1/analytics/event-types", {});
    const select = $("event-type");
    for (const t of types) select.add(new Option(t.event_type, t.event_type));
  } catch (error) {
    $("live-status").textContent = String(error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const saved = localStorage.getItem("eventmill.threshold");
  if (saved) $("threshold").value = saved;
  $("threshold").addEventListener("input", () => { localStorage.setItem("eventmill.threshold", $("threshold").value); renderLive(); });
  for (const id of ["source", "event-type"]) $(id).addEventListener("change", () => { renderLive(); refreshKpis(); refreshHistory(); });
  $("period").addEventListener("change", refreshKpis);
  $("range").addEventListener("change", refreshHistory);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  loadTypes();
  refreshKpis();
  refreshHistory();
  connect();
  setInterval(refreshKpis, 2000);
  setInterval(refreshHistory, 10000);
});
