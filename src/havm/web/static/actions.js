// Operator actions: one button per action, a confirmation dialog, then one
// POST to the REST API. Buttons are disabled for read-only users (the API
// refuses their writes anyway: the buttons only say so early).

import { api } from "./api.js";
import { h, toast } from "./dom.js";

export const RESOURCE_ACTIONS = [
  { op: "start", label: "Start", says: "start" },
  { op: "stop", label: "Stop", says: "stop", danger: true },
  { op: "migrate", label: "Migrate", says: "live-migrate", needsNode: true, migratable: true },
  { op: "move", label: "Move", says: "move (stop, then start)", needsNode: true },
  { op: "ban", label: "Ban", says: "keep away from a node", needsNode: true, danger: true },
  { op: "clear", label: "Clear", says: "clear the move and ban constraints of" },
  { op: "cleanup", label: "Cleanup", says: "forget the failures of" },
];

export const NODE_ACTIONS = [
  { op: "standby", label: "Standby", says: "put in standby (drain every resource from)" },
  { op: "online", label: "Online", says: "bring online" },
  { op: "maintenance", label: "Maintenance", says: "put in maintenance (leave its resources alone)" },
  { op: "unmaintenance", label: "End maintenance", says: "take out of maintenance" },
  { op: "fence", label: "Fence", says: "FENCE (power off)", danger: true },
];

// Ask for confirmation (and a target node when the action needs one); resolves
// to {node} or null if cancelled.
export function confirmAction(text, nodes) {
  const dlg = document.getElementById("confirm");
  const select = document.getElementById("confirm-node");
  const targetRow = document.getElementById("confirm-target");
  document.getElementById("confirm-text").textContent = text;
  targetRow.hidden = !nodes;
  if (nodes) select.replaceChildren(...nodes.map((n) => h("option", { value: n }, n)));
  dlg.returnValue = "";
  dlg.showModal();
  (nodes ? select : document.getElementById("confirm-ok")).focus();
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => {
      resolve(dlg.returnValue === "ok" ? { node: nodes ? select.value : undefined } : null);
    }, { once: true });
  });
}

async function run(path, body, what) {
  try {
    await api(path, { method: "POST", body });
    toast(`${what}: accepted`, "ok");
    return true;
  } catch (e) {
    toast(`${what}: refused — ${e.message}`, "error");
    return false;
  }
}

function button(action, subject, enabled, why, onClick) {
  return h("button", {
    type: "button",
    class: action.danger ? "small danger" : "small",
    disabled: !enabled,
    title: enabled ? `${action.label} ${subject}` : why,
    "aria-label": `${action.label} ${subject}`,
    dataset: { action: action.op },
    onclick: onClick,
  }, action.label);
}

// The buttons for one resource row. ctx: {role, nodes (names), resource (status entry), allowMigrate}
export function resourceButtons(ctx) {
  const r = ctx.resource;
  const admin = ctx.role === "admin";
  return RESOURCE_ACTIONS.filter((a) => !a.migratable || ctx.allowMigrate !== false).map((a) =>
    button(a, r.id, admin, "read-only token: actions need an admin token", async () => {
      const others = ctx.nodes.filter((n) => !(r.nodes || []).includes(n));
      const choice = await confirmAction(`${a.says} ${r.id}?`, a.needsNode ? (others.length ? others : ctx.nodes) : null);
      if (!choice) return;
      const body = choice.node ? { node: choice.node } : {};
      await run(`/v1/resources/${encodeURIComponent(r.id)}/${a.op}`, body,
        `${a.op} ${r.id}${choice.node ? " → " + choice.node : ""}`);
    }));
}

export function nodeButtons(ctx) {
  const n = ctx.node;
  const admin = ctx.role === "admin";
  return NODE_ACTIONS.filter((a) => {
    if (a.op === "standby") return !n.standby;
    if (a.op === "online") return n.standby;
    if (a.op === "maintenance") return !n.maintenance;
    if (a.op === "unmaintenance") return n.maintenance;
    return true;
  }).map((a) => button(a, n.name, admin, "read-only token: actions need an admin token", async () => {
    const choice = await confirmAction(`${a.says} node ${n.name}?`, null);
    if (!choice) return;
    await run(`/v1/nodes/${encodeURIComponent(n.name)}/${a.op}`, {}, `${a.op} ${n.name}`);
  }));
}
