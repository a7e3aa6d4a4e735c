// A resource's (VM's) detail page: where it runs, its configuration, its
// history and, while it live-migrates, the migration's phases and progress.

import { api } from "./api.js";
import { resourceButtons } from "./actions.js";
import { badge, drawIfChanged, duration, eventRow, h, toast } from "./dom.js";
import { migrationPhases, stateKind } from "./model.js";
import { startPage } from "./page.js";

const rid = decodeURIComponent(location.pathname.split("/").pop());
document.title = `havm · ${rid}`;
document.getElementById("title").textContent = rid;
document.getElementById("crumb").textContent = rid;

let definition = null;
let definitionVersion = null; // the configuration version the definition was read at

function item(dt, dd, key) {
  return h("div", {}, h("dt", {}, dt), h("dd", { dataset: { key } }, dd));
}

function scalar(v) {
  return v !== null && typeof v === "object" ? JSON.stringify(v) : String(v);
}

// The definition as the API gives it: the primitive's fields (agent, params,
// meta, operations...) possibly wrapped in {"config": ...} next to the status.
function renderConfig(def) {
  const cfg = (def && (def.config || def.definition)) || def || {};
  const rows = [];
  for (const [k, v] of Object.entries(cfg)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v)) rows.push(item(`${k}.${k2}`, scalar(v2), `${k}.${k2}`));
    } else {
      rows.push(item(k, scalar(v), k));
    }
  }
  drawIfChanged(document.getElementById("config"), cfg, () => rows.length ? rows : [item("definition", "not available")]);
  document.getElementById("config-raw").textContent = JSON.stringify(def, null, 2);
}

function render(model, me) {
  const st = model.status;
  // a configuration change (move, ban, meta...) may change the definition: read it again
  if (st.config && st.config.version !== definitionVersion) {
    definitionVersion = st.config.version;
    loadDefinition();
  }
  const r = (st.resources || []).find((x) => x.id === rid);
  const place = document.getElementById("placement");
  if (!r) {
    drawIfChanged(place, "missing", [item("State", `no resource ${rid} in the configuration`)]);
    return;
  }
  const flights = model.inFlight().filter((f) => f.rsc === rid);
  drawIfChanged(place, [r, flights], () => [
    item("State", badge(r.state, stateKind(r.state)), "state"),
    item("Agent", r.agent, "agent"),
    item("Node", (r.nodes || []).join(", ") || "—", "node"),
    item("Promoted on", (r.promoted || []).join(", ") || "—", "promoted"),
    item("Failures", Object.entries(r.failcounts || {}).map(([n, c]) => `${n}: ${c}`).join(", ") || "none", "failures"),
    item("In flight", flights.map((f) => `${f.action} on ${f.node}`).join(", ") || "—", "inflight"),
  ]);
  const meta = (definition && (definition.config || definition).meta) || {};
  const allowMigrate = meta.allow_migrate === undefined ? undefined : Boolean(meta.allow_migrate);
  drawIfChanged(document.getElementById("actions"), [me.role, r.nodes, allowMigrate, st.nodes.map((n) => n.name)],
    () => resourceButtons({ resource: r, role: me.role, nodes: st.nodes.map((n) => n.name), allowMigrate }));
  const mig = migrationPhases(rid, model.sortedEvents(), flights);
  document.getElementById("migration-section").hidden = !mig;
  if (mig) {
    drawIfChanged(document.getElementById("migration"), mig, () => mig.phases.map((p) =>
      h("li", { dataset: { phase: p.op, state: p.state } }, badge(p.state, p.state === "done" ? "ok" : p.state === "failed" ? "bad" : p.state === "running" ? "info" : "muted"),
        ` ${p.op}`, p.node ? ` on ${p.node}` : "", p.duration !== undefined ? h("span", { class: "muted" }, ` (${duration(p.duration)})`) : null)));
    const bar = document.getElementById("migration-progress");
    bar.value = mig.percent;
    bar.textContent = `${mig.percent}%`;
    document.getElementById("migration-text").textContent = mig.failed ? "the last migration failed (see the history)"
      : mig.percent >= 100 ? "the last migration completed" : `migrating: ${mig.percent}% of the phases done`;
  }
  const history = model.resourceEvents(rid).reverse();
  drawIfChanged(document.querySelector("#history tbody"), history.map((e) => [e.node, e.seq]),
    () => history.length ? history.map(eventRow) : [h("tr", {}, h("td", { colspan: 4, class: "muted" }, "no events for this resource yet"))]);
}

async function loadDefinition() {
  try {
    definition = await api(`/v1/resources/${encodeURIComponent(rid)}`);
    renderConfig(definition);
  } catch (e) {
    renderConfig(null);
    if (e.status !== 401) toast(`cannot load ${rid}'s configuration: ${e.message}`, "error");
  }
}

startPage({ render, historyQuery: `resource=${encodeURIComponent(rid)}&limit=500` });
