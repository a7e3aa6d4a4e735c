// The overview: cluster summary, nodes and links, resources, actions in
// flight, failures, fencing and recent events; all redrawn from the model.

import { nodeButtons, resourceButtons } from "./actions.js";
import { ago, badge, clock, drawIfChanged, duration, empty, eventRow, h, replaceChildren } from "./dom.js";
import { busy, stateKind } from "./model.js";
import { startPage } from "./page.js";

const RECENT = 30; // events listed; a resource's page lists all of its own

function summary(st) {
  const q = st.quorum || {};
  const cfg = st.config || {};
  const item = (dt, dd, key) => h("div", {}, h("dt", {}, dt), h("dd", { dataset: { key } }, dd));
  return [
    item("Quorum", [badge(q.quorate ? "quorate" : "no quorum", q.quorate ? "ok" : "bad"),
      ` ${q.votes}/${q.expected_votes} votes`, q.reason ? h("span", { class: "muted" }, ` (${q.reason})`) : null], "quorum"),
    item("Controller", st.controller || "none", "controller"),
    item("Members", (st.members || []).join(", "), "members"),
    item("Config version", [cfg.version || "?", " ",
      cfg.in_sync === false ? badge("not in sync", "warn") : badge("in sync", "ok")], "config"),
    item("Changed by", cfg.changed_by ? `${cfg.changed_by}${cfg.changed_at ? " at " + clock(cfg.changed_at) : ""}` : "—", "changed"),
  ];
}

function nodeRow(n, st, me) {
  const flags = [];
  if (n.name === st.controller) flags.push(badge("controller", "info"));
  if (n.self) flags.push(badge("answering", "muted"));
  if (n.standby) flags.push(badge("standby", "warn"));
  if (n.maintenance) flags.push(badge("maintenance", "warn"));
  if (n.late) flags.push(badge("late", "warn"));
  const links = Object.entries(n.links || {}).map(([lk, s]) =>
    h("span", { class: "link", dataset: { link: lk, state: s } }, badge(`${lk} ${s}`, s === "up" ? "ok" : s === "down" ? "bad" : "muted")));
  return h("tr", { dataset: { node: n.name, state: n.state } },
    h("th", { scope: "row" }, n.name),
    h("td", { class: "state" }, badge(n.state, n.state === "online" ? "ok" : "bad"), " ", flags),
    h("td", { class: "links" }, links.length ? links : h("span", { class: "muted" }, "—")),
    h("td", {}, n.self ? "—" : ago(n.last_heard_s)),
    h("td", {}, n.config_version || "—"),
    h("td", { class: "actions" }, nodeButtons({ node: n, role: me.role })));
}

function resourceRow(r, st, me) {
  const where = (r.nodes || []).length ? r.nodes.join(", ") : "—";
  const fails = Object.entries(r.failcounts || {}).map(([n, c]) => `${n}: ${c >= 1000000 ? "∞" : c}`);
  if ((r.failed_on || []).length) fails.unshift(`failed on ${r.failed_on.join(", ")}`);
  const flights = busy(r).map((f) => `${f.action} on ${f.node}`);
  const role = (r.promoted || []).length ? `promoted on ${r.promoted.join(", ")}` : (r.nodes || []).length ? "started" : "—";
  return h("tr", { dataset: { resource: r.id, state: r.state } },
    h("th", { scope: "row" }, h("a", { href: `/resources/${encodeURIComponent(r.id)}` }, r.id)),
    h("td", {}, r.agent),
    h("td", { class: "state" }, badge(r.state, stateKind(r.state))),
    h("td", { class: "node" }, where),
    h("td", {}, role),
    h("td", { class: "failures" }, fails.join("; ") || "—"),
    h("td", { class: "inflight" }, flights.join(", ") || "—"),
    h("td", { class: "actions" }, resourceButtons({ resource: r, role: me.role, nodes: (st.nodes || []).map((n) => n.name) })));
}

function render(model, me) {
  const st = model.status;
  const nodeNames = (st.nodes || []).map((n) => n.name);
  drawIfChanged(document.getElementById("summary"), [st.quorum, st.controller, st.members, st.config],
    () => summary(st));
  // last_heard_s changes on every status: round it so a row is redrawn only when it shows something new
  drawIfChanged(document.querySelector("#nodes tbody"),
    [me.role, st.controller, (st.nodes || []).map((n) => ({ ...n, last_heard_s: n.self ? 0 : ago(n.last_heard_s) }))],
    () => (st.nodes || []).map((n) => nodeRow(n, st, me)));
  drawIfChanged(document.querySelector("#resources tbody"),
    [me.role, nodeNames, (st.resources || []).map((r) => ({ ...r, in_flight: busy(r) }))], () => {
    const rows = (st.resources || []).map((r) => resourceRow(r, st, me));
    return rows.length ? rows : [h("tr", {}, h("td", { colspan: 8, class: "muted" }, "no resources configured"))];
  });
  tick(model);
  const fails = model.failures();
  drawIfChanged(document.getElementById("failures"), fails, () => fails.length
    ? fails.map((f) => h("li", {}, f.time ? h("span", { class: "muted" }, `${clock(f.time)} `) : null, f.text))
    : [empty("no failures")]);
  const fences = model.fencing();
  drawIfChanged(document.getElementById("fencing"), fences.map((f) => [f.key, f.ok]), () => fences.length
    ? fences.map((f) => h("li", { dataset: { node: f.node || "", ok: String(Boolean(f.ok)) } },
      h("span", { class: "muted" }, `${clock(f.time)} `), badge(f.ok ? "off" : "FAILED", f.ok ? "ok" : "bad"), ` ${f.text}`))
    : [empty("no fencing so far")]);
  const recent = model.sortedEvents().slice(-RECENT).reverse();
  drawIfChanged(document.querySelector("#events tbody"), recent.map((e) => [e.node, e.seq]), () => recent.map(eventRow));
}

// Once a second: the elapsed time of each action in flight.
function tick(model) {
  const now = Date.now() / 1000;
  const flights = model.inFlight();
  replaceChildren(document.getElementById("inflight"), flights.length ? flights.map((f) =>
    h("li", { dataset: { resource: f.rsc, node: f.node } }, badge(f.action, "info"), ` ${f.rsc} on ${f.node}`,
      f.since ? h("span", { class: "muted" }, ` · ${duration(Math.max(0, now - f.since))}`) : null,
      typeof f.progress === "number" ? h("progress", { max: 100, value: f.progress, "aria-label": `${f.action} ${f.rsc} progress` }) : null))
    : [empty("nothing running")]);
}

startPage({ render, tick });
