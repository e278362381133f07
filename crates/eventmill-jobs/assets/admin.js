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
