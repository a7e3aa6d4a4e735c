"""How the daemon carries out each operator command (havm.commands).

Reads are answered by any node. Writes go to the controller (forwarded once;
a forwarded command that finds no controller is refused with NoQuorum), which
turns them into a new configuration version (``_commit``): catch up with the
newest version first, validate, persist, push to every member, and succeed
only once a majority of votes hold it.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from typing import TYPE_CHECKING, Any

from havm.commands.base import Command
from havm.commands.cluster import ApplyConfig, GetConfig, GetStatus
from havm.commands.edits import edit
from havm.commands.fence import FenceNode, GetFenceHistory
from havm.commands.history import GetHistory
from havm.commands.resource import (
    NODE_OPS,
    RESOURCE_OPS,
    ChangeNode,
    ChangeResource,
    CleanupResource,
)
from havm.daemon import fencing
from havm.daemon.history import gather_history
from havm.errors import HavmError, NoQuorum, UsageError
from havm.membership.view import MembershipView, votes_held
from havm.scheduler.model import ClusterSpec
from havm.store import ConfigVersion

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

log = logging.getLogger("havm.daemon")

FORWARD_TIMEOUT = 15.0
STALE_POLL = 0.05  # while this node's membership view is stale, look again this often


class CommandHandlers:
    def __init__(self, daemon: NodeDaemon) -> None:
        self.d = daemon

    async def execute(self, cmd: Command, forwarded: bool = False, sender: str = "local") -> Any:
        if isinstance(cmd, GetStatus):
            return await self.d.status_async()
        if isinstance(cmd, GetConfig):
            return self.d.replica.current.to_json()
        if isinstance(cmd, GetHistory):
            return await gather_history(self.d, cmd)
        if isinstance(cmd, CleanupResource):
            return await self._cleanup(cmd, forwarded)
        if isinstance(cmd, FenceNode | GetFenceHistory):
            return await fencing.handle(self.d, cmd, forwarded, sender)
        handled, result = await self._to_controller(cmd, forwarded)
        if handled:
            return result
        if isinstance(cmd, ApplyConfig):
            base = None
            if cmd.base_epoch is not None:
                if len(cmd.base_epoch) != 2:
                    raise UsageError("base_epoch must be [admin_epoch, epoch]")
                base = ConfigVersion(cmd.base_epoch[0], cmd.base_epoch[1], "")
            return await self._commit(lambda text: cmd.text, cmd.by or "unknown", base, cmd.force, cmd.comment)
        if isinstance(cmd, ChangeResource):
            return await self._change_resource(cmd)
        if isinstance(cmd, ChangeNode):
            if cmd.op not in NODE_OPS:
                raise UsageError(f"node operation {cmd.op!r}: expected one of {', '.join(NODE_OPS)}")
            return await self._commit(lambda text: edit(text, f"node-{cmd.op}", cmd.node), cmd.by or "unknown",
                                      comment=f"node {cmd.op} {cmd.node}")
        raise UsageError(f"command {cmd.name!r} is not supported by this daemon")

    async def _to_controller(self, cmd: Command, forwarded: bool) -> tuple[bool, Any]:
        """Forward ``cmd`` to the controller unless we are it. Returns (handled, result)."""
        view = await self._current_view()
        if view.stale:  # frozen until a moment ago: who is controller, and in which term, may be past
            raise NoQuorum(f"node {view.not_current}: the change is refused, nothing was stored; "
                           f"try again in a moment")
        if not view.quorate or view.controller is None:
            raise NoQuorum(f"node {self.d.node} is not in a quorate partition: the change is refused")
        if view.controller == self.d.node:
            return False, None
        if forwarded:
            raise NoQuorum(f"node {self.d.node} is not the controller ({view.controller} is); try again")
        result = await self.d.forward(view.controller, cmd, timeout=FORWARD_TIMEOUT)
        return True, result

    async def _current_view(self) -> MembershipView:
        """The membership view, once current: a node that just resumed from a freeze
        listens to its peers for 2 x keepalive first (MembershipView.stale). A change
        asked meanwhile waits that out (at most deadtime) rather than be refused."""
        view = self.d.view()
        for _ in range(int(self.d.config.timing.deadtime / STALE_POLL) + 1):
            if not view.stale:
                break
            await asyncio.sleep(STALE_POLL)
            view = self.d.view()
        return view

    async def _commit(self, make_text: Any, by: str, base: ConfigVersion | None = None, force: bool = False,
                      comment: str = "") -> dict[str, Any]:
        """Controller side: the next configuration version, stored on a majority."""
        d = self.d
        # A change is made in a controller term a majority promised (claimed at the
        # first change in office; the claim catches up with the newest version the
        # promising members hold). Catch up with what members advertise too, so a
        # change is never based on (and never overwrites) a stale one.
        term = await d.term.ensure()
        await d.sync_config()
        old_text = d.replica.current.text
        text = make_text(old_text)
        before = d.replica.version
        stored = d.replica.propose(text, by=by, now=d.clock.wall(), base=base, force=force, comment=comment,
                                   term=term)
        changed = stored.version != before
        if changed:
            d.adopted()
            diff = "".join(difflib.unified_diff(old_text.splitlines(True), stored.text.splitlines(True),
                                                f"config {before.short()}", f"config {stored.version.short()}"))
            d.events.emit("config.changed", f"configuration {stored.version.short()} by {by}"
                          f"{': ' + comment if comment else ''}", version=stored.version.to_wire(), by=by,
                          comment=comment, diff=diff[:20000])
        acked, missing = await d.push(stored)
        held, total = votes_held(d.config, acked)
        if held * 2 <= total:
            # Persisted here and on some nodes, but a later quorate partition might
            # not contain any of them: tell the operator it is not safely committed.
            raise NoQuorum(f"configuration {stored.version.short()} is stored on {', '.join(acked)} only "
                           f"({held} of {total} votes): not committed on a majority; it will spread when "
                           f"{', '.join(missing)} answer, or be superseded")
        return {"changed": changed, "version": stored.version.to_wire(), "controller": d.node,
                "acked": acked, "missing": missing}

    async def _change_resource(self, cmd: ChangeResource) -> dict[str, Any]:
        if cmd.op not in RESOURCE_OPS:
            raise UsageError(f"resource operation {cmd.op!r}: expected one of {', '.join(RESOURCE_OPS)}")
        op = "move" if cmd.op == "migrate" else cmd.op
        if cmd.op == "migrate":
            spec = ClusterSpec.from_config(self.d.config)
            prim = spec.primitives.get(cmd.resource)
            if prim is not None and not prim.allow_migrate:
                raise UsageError(f"{cmd.resource} cannot be live-migrated: set meta.allow_migrate: true "
                                 f"(or use 'havm resource move', which stops and starts it)")
        if op in ("move", "ban") and not cmd.node:
            raise UsageError(f"resource {cmd.op} needs a node")
        return await self._commit(lambda text: edit(text, f"resource-{op}", cmd.resource, cmd.node),
                                  cmd.by or "unknown",
                                  comment=f"resource {cmd.op} {cmd.resource}{' ' + cmd.node if cmd.node else ''}")

    async def _cleanup(self, cmd: CleanupResource, forwarded: bool) -> dict[str, Any]:
        """Forget failures on one node or every member; then the controller re-plans."""
        d = self.d
        if forwarded or cmd.node == d.node:
            cleared = d.local.cleanup(cmd.resource)
            d.controller.poke(f"cleanup {cmd.resource}")
            return {"nodes": [d.node] if cleared else [], "resource": cmd.resource}
        view = d.view()
        targets = [cmd.node] if cmd.node else list(view.members)

        async def one(n: str) -> list[str]:
            if n == d.node:
                return [n] if d.local.cleanup(cmd.resource) else []
            try:
                r = await d.forward(n, CleanupResource(cmd.resource, n))
                return list(r.get("nodes", []))
            except HavmError as e:
                log.warning("cleanup of %s on %s failed: %s", cmd.resource, n, e)
                return []

        done = sum(await asyncio.gather(*(one(n) for n in targets)), [])
        d.controller.poke(f"cleanup {cmd.resource}")
        return {"nodes": sorted(done), "resource": cmd.resource}
