// eventmill admin: keeps the counts on the page live by polling the JSON API that backs it.
// Values are written with textContent only, so nothing from the server is ever parsed as HTML.
"use strict";
(function () {
  const POLL_MS = 2000;
  const status = document.getElementById("live-status");

  function at(data, path) {
    return path.split(".").reduce((v, key) => (v == null ? undefined : v[key]), data);
  }

  function show(value) {
    if (value === null || value === undefined) return "—"; // unknown, e.g. no consumer group yet
    if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(1);
    return String(value);
  }

  function fillTable(body, rows) {
    const columns = body.dataset.columns.split(",");
    const fresh = document.createDocumentFragment();
    for (const row of rows || []) {
      const tr = document.createElement("tr");
      for (const column of columns) {
        const td = document.createElement("td");
        const value = at(row, column);
        if (typeof value === "number") td.className = "num";
        td.textContent = show(value);
        tr.appendChild(td);
      }
      fresh.appendChild(tr);
    }
    body.replaceChildren(fresh);
  }

  async function refresh(section) {
    const response = await fetch(section.dataset.liveSrc, { headers: { accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const data = await response.json();
    const scope = section.hasAttribute("data-live-global") ? document : section;
    for (const el of scope.querySelectorAll("[data-live]")) {
      el.textContent = show(at(data, el.dataset.live));
    }
    for (const body of document.querySelectorAll("[data-live-table]")) {
      const rows = at(data, body.dataset.liveTable);
      if (Array.isArray(rows)) fillTable(body, rows);
    }
  }

  async function tick() {
    const sections = document.querySelectorAll("[data-live-src]");
    try {
      await Promise.all(Array.from(sections, refresh));
      if (status) status.classList.remove("stale");
    } catch (error) {
      if (status) status.classList.add("stale");
    }
  }

  if (document.querySelector("[data-live-src]")) setInterval(tick, POLL_MS);
})();

// A queue's history: the throughput and p95 latency charts of its page, drawn as SVG elements
// (no library) from /api/queues/{queue}/history and redrawn every 5 s. Each step is one point
// (a <circle data-at>), so a page under a stream of jobs gains points as minutes pass.
(function () {
  const section = document.querySelector("[data-history-src]");
  if (!section) return;
  const NS = "http://www.w3.org/2000/svg";
  const SERIES = [["completed", "#1e7b45"], ["retried", "#b54708"], ["failed", "#b42318"]];
  const LATENCY = [["wait_p95_ms", "#2f5bd3"], ["run_p95_ms", "#7a3fd1"]];

  function el(name, attrs) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  function draw(svg, points, series, scale, unit) {
    const box = svg.viewBox.baseVal, pad = 24, w = box.width - pad - 4, h = box.height - 18;
    const values = points.flatMap((p) => series.map(([key]) => p[key]).filter((v) => v != null && v > 0));
    const max = Math.max(1, ...values.map(scale));
    const x = (i) => pad + (points.length <= 1 ? 0 : (i * w) / (points.length - 1));
    const y = (v) => 4 + h - (scale(v) / max) * h;
    const fresh = document.createDocumentFragment();
    fresh.appendChild(el("line", { x1: pad, y1: 4 + h, x2: pad + w, y2: 4 + h, stroke: "#dde1e8" }));
    const top = el("text", { x: 0, y: 12, "font-size": 10, fill: "#6b7385" });
    top.textContent = unit ? Math.round(Math.pow(10, max)) + " " + unit : String(Math.round(max));
    fresh.appendChild(top);
    for (const [key, color] of series) {
      const line = [];
      points.forEach((p, i) => {
        const v = p[key];
        if (v == null) return;
        line.push(x(i).toFixed(1) + "," + y(Math.max(v, scale === Math.log10 ? 1 : 0)).toFixed(1));
        if (v > 0) {
          const dot = el("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2, fill: color, "data-at": p.at, "data-series": key });
          const title = el("title", {});
          title.textContent = new Date(p.at).toISOString().slice(0, 16).replace("T", " ") + " UTC: " + key + " " + Math.round(v);
          dot.appendChild(title);
          fresh.appendChild(dot);
        }
      });
      fresh.appendChild(el("polyline", { points: line.join(" "), fill: "none", stroke: color, "stroke-width": 1.5 }));
    }
    svg.replaceChildren(fresh);
  }

  function render(history) {
    draw(document.getElementById("throughput-chart"), history.points, SERIES, (v) => v);
    draw(document.getElementById("latency-chart"), history.points, LATENCY, (v) => Math.log10(Math.max(v, 1)), "ms");
    for (const key of ["completed", "retried", "failed", "lease_expired"]) {
      const node = document.getElementById("history-" + key.replace("_", "-"));
      if (node) node.textContent = String(history[key]);
    }
    kindRows(history.kinds);
  }

  // p50 / p95 / p99 for people, as the page renders them (LatencySummary::text).
  function latency(summary) {
    const show = (ms) =>
      ms == null ? "—" : ms < 1000 ? ms.toFixed(0) + " ms" : ms < 60000 ? (ms / 1000).toFixed(1) + " s" : (ms / 60000).toFixed(1) + " min";
    return [summary.p50_ms, summary.p95_ms, summary.p99_ms].map(show).join(" / ");
  }

  // The latency table per kind, redrawn with the charts (a kind's first job adds its row).
  function kindRows(kinds) {
    const body = document.querySelector("#latency tbody");
    if (!body) return;
    const rows = kinds.map((k) => {
      const row = document.createElement("tr");
      row.dataset.kind = k.kind;
      const cells = [k.kind, k.completed, k.retried, k.failed, k.failure_rate == null ? "—" : k.failure_rate.toFixed(1),
        latency(k.wait), latency(k.run), latency(k.end_to_end)];
      cells.forEach((text, i) => {
        const cell = document.createElement("td");
        if (i > 0) cell.className = "num";
        cell.textContent = String(text);
        row.appendChild(cell);
      });
      return row;
    });
    body.replaceChildren(...rows);
  }

  async function refresh() {
    try {
      const response = await fetch(section.dataset.historySrc, { headers: { accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) render(await response.json());
    } catch (error) {
      /* the live-status dot already says the board is stale */
    }
  }

  refresh();
  setInterval(refresh, 5000);
})();
