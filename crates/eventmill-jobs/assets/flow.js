// eventmill board: draws the flow a job belongs to (its parent, then each child with its state,
// failure policy and kept error, each a link to its job page) from the job API's `flow` JSON, and
// keeps the states live. Our own code, no library; text is written with textContent only.
"use strict";
(function () {
  const POLL_MS = 2000;
  const section = document.getElementById("flow-tree");
  if (!section) return;
  const base = section.dataset.base;
  const current = section.dataset.job;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One job of the tree: link, kind, state badge, and for a child its policy and kept error.
  function node(job, role) {
    const item = el("li", "flow-node " + role);
    item.dataset.id = job.id;
    if (job.id === current) item.classList.add("current");
    const link = el("a", "flow-link", "#" + job.id);
    link.href = base + "/jobs/" + encodeURIComponent(job.id);
    item.appendChild(link);
    item.appendChild(el("span", "flow-kind", job.kind || "(no longer kept)"));
    const state = job.state || "removed";
    item.appendChild(el("span", "badge flow-state " + state, state));
    if (job.on_failure) item.appendChild(el("span", "flow-policy", "on failure: " + job.on_failure.replace(/_/g, " ")));
    if (job.failure) item.appendChild(el("span", "flow-failure error-text", job.failure));
    return item;
  }

  function draw(flow) {
    const tree = el("ul", "flow-tree");
    const root = node(flow, "parent");
    const children = el("ul", "flow-children");
    for (const child of flow.children || []) children.appendChild(node(child, "child"));
    if (flow.more > 0) children.appendChild(el("li", "flow-more muted", "and " + flow.more + " more"));
    root.appendChild(children);
    tree.appendChild(root);
    const done = (flow.children || []).filter((c) => c.state === "completed").length;
    const summary = el("p", "muted flow-summary", done + " of " + (flow.children || []).length + " children completed");
    section.querySelector(".flow-body").replaceChildren(summary, tree);
    section.hidden = false;
  }

  async function refresh() {
    try {
      const response = await fetch(section.dataset.flowSrc, { headers: { accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const job = await response.json();
      if (job.flow) draw(job.flow);
    } catch (error) {
      // The next poll tries again; the links in the details stay usable.
    }
  }

  refresh();
  setInterval(refresh, POLL_MS);
})();
