// What the dashboard knows of the cluster: the newest status document and the
// events seen so far, with the derived views (actions in flight, failures,
// fencing, a migration's phases). Pure functions of that data: no DOM here.

const MAX_EVENTS = 500;

export class ClusterModel {
  constructor() {
    this.status = null;
    this.events = new Map(); // "node:seq" -> event
    this.firstSeen = new Map(); // "rsc|node|action" -> time the action was first seen in flight
  }

  setStatus(status) {
    this.status = status;
    const now = status.time || Date.now() / 1000;
    const live = new Set();
    for (const a of inFlight(status)) {
      const key = `${a.rsc}|${a.node}|${a.action}`;
      live.add(key);
      if (!this.firstSeen.has(key)) this.firstSeen.set(key, now);
    }
    for (const key of [...this.firstSeen.keys()]) if (!live.has(key)) this.firstSeen.delete(key);
  }

  addEvents(events) {
    for (const ev of events) this.events.set(`${ev.node}:${ev.seq}`, ev);
    if (this.events.size > MAX_EVENTS) {
      const keep = this.sortedEvents().slice(-MAX_EVENTS);
      this.events = new Map(keep.map((e) => [`${e.node}:${e.seq}`, e]));
    }
  }

  sortedEvents() {
    return [...this.events.values()].sort((a, b) => a.time - b.time || a.node.localeCompare(b.node) || a.seq - b.seq);
  }

  inFlight() {
    if (!this.status) return [];
    return inFlight(this.status).map((a) => ({ ...a, since: this.firstSeen.get(`${a.rsc}|${a.node}|${a.action}`) }));
  }

  failures() {
    const out = [];
    for (const r of (this.status && this.status.resources) || []) {
      for (const n of r.failed_on || []) out.push({ rsc: r.id, node: n, text: `${r.id} failed on ${n}` });
      for (const [n, c] of Object.entries(r.failcounts || {})) {
        out.push({ rsc: r.id, node: n, text: `${r.id}: ${c >= 1000000 ? "INFINITY" : c} failure${c === 1 ? "" : "s"} on ${n}` });
      }
    }
    for (const f of this.fencingFailing()) {
      out.push({ node: f.node, text: `fencing ${f.node} is failing (${f.failed_attempts} attempt${f.failed_attempts === 1 ? "" : "s"}` +
        `${f.last_device ? ", last via " + f.last_device : ""}): ${f.last_error || "no confirmation"} — its resources are not recovered`, time: f.last_at });
    }
    const failedActions = this.sortedEvents().filter((e) => e.kind === "action" && e.fields && e.fields.ok === false);
    for (const e of failedActions.slice(-10).reverse()) out.push({ rsc: e.fields.rsc, node: e.fields.target || e.node, text: e.text, time: e.time });
    return out;
  }

  // Fencing attempts, newest first: the status' fencing history (every member's,
  // persisted) when the daemon has it, else the fence events seen.
  fencing() {
    const hist = this.status && this.status.fencing && this.status.fencing.history;
    if (Array.isArray(hist)) {
      return hist.map((a) => ({
        key: `${a.executor}:${a.started}:${a.node}:${a.attempt}`, node: a.node, time: a.started, ok: a.ok,
        text: `${a.node} via ${a.device}${a.requested_by ? ` (${a.requested_by})` : ""}: ` +
          (a.ok ? `confirmed off in ${(a.duration || 0).toFixed(1)} s` : `FAILED: ${a.error || "rc " + a.rc}`),
      }));
    }
    return this.sortedEvents().filter((e) => e.kind === "fence" || e.kind.startsWith("fence."))
      .map((e) => ({ key: `${e.node}:${e.seq}`, node: e.fields.target, time: e.time, ok: e.fields.ok, text: e.text }))
      .reverse();
  }

  // Nodes whose newest fencing attempt failed: their resources wait.
  fencingFailing() {
    const f = this.status && this.status.fencing;
    return (f && Array.isArray(f.failing)) ? f.failing : [];
  }

  resourceEvents(rsc) {
    return this.sortedEvents().filter((e) => e.fields && e.fields.rsc === rsc);
  }
}

// The badge kind of a resource's state (dom.badge): started ok, stopped muted, a live
// migration between its phases informative, anything else (failed, MULTIPLE) bad.
export function stateKind(state) {
  return state === "started" ? "ok" : state === "stopped" ? "muted" : state === "migrating" ? "info" : "bad";
}

// Recurring monitors run all the time: they are not what an operator waits for.
const ROUTINE = new Set(["monitor"]);

// The actions running now on one resource, from its in_flight (node -> action,
// or node -> {action, progress, ...} when the daemon tells more), monitors left out.
export function busy(r) {
  const out = [];
  for (const [node, what] of Object.entries(r.in_flight || {})) {
    const action = typeof what === "string" ? what : (what && (what.action || what.op)) || "?";
    if (ROUTINE.has(action)) continue;
    const progress = typeof what === "object" && what ? what.progress : undefined;
    out.push({ rsc: r.id, node, action, progress });
  }
  return out;
}

// Every action running now in the cluster.
export function inFlight(status) {
  return (status.resources || []).flatMap(busy);
}

export const MIGRATION_PHASES = ["migrate_prepare", "migrate_to", "migrate_from", "stop"];

// A live migration's phases for one resource: each "done", "running", "failed"
// or "pending", from the in-flight actions and the last migration's events.
export function migrationPhases(rsc, events, flights) {
  const evs = events.filter((e) => e.kind === "action" && e.fields.rsc === rsc);
  let start = -1;
  for (let i = evs.length - 1; i >= 0; i--) {
    if (evs[i].fields.op === "migrate_prepare" || evs[i].fields.op === "migrate_to") { start = i; break; }
  }
  const running = flights.filter((f) => f.rsc === rsc);
  const migrating = running.some((f) => f.action.startsWith("migrate"));
  if (start < 0 && !migrating) return null;
  const recent = start >= 0 ? evs.slice(evs[start].fields.op === "migrate_to" && start > 0 &&
    evs[start - 1].fields.op === "migrate_prepare" ? start - 1 : start) : [];
  const phases = MIGRATION_PHASES.map((op) => {
    const done = recent.find((e) => e.fields.op === op);
    const now = running.find((f) => f.action === op);
    if (now) return { op, state: "running", node: now.node, progress: now.progress };
    if (done) return { op, state: done.fields.ok ? "done" : "failed", node: done.fields.target || done.node, duration: done.fields.duration };
    return { op, state: "pending" };
  });
  const finished = phases.filter((p) => p.state === "done").length;
  const current = phases.find((p) => p.state === "running");
  const part = current && typeof current.progress === "number" ? current.progress / 100 : 0;
  return { phases, percent: Math.round(((finished + part) / phases.length) * 100), failed: phases.some((p) => p.state === "failed") };
}
