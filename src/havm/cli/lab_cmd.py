"""``havm lab ...``: a local lab cluster of real havmd processes.

Every subcommand calls one function of ``havm.lab.lab`` / ``havm.lab.control``
and prints its result, as JSON with ``--json``. The lab dir is ``--dir``, else
the global ``--lab`` / ``$HAVM_LAB``, else ``./lab``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from havm.config.types import parse_duration
from havm.errors import UsageError
from havm.lab import control, lab, vms
from havm.lab.plan import LabSpec

LAB_EPILOG = """exit status:
  0   success
  2   bad usage (unknown link, bad percentage, impossible timing, ...)
  3   the generated configuration is invalid
  7   no such node
  8   timed out (a process survives SIGKILL)
  9   lab error: no lab in DIR, lab already up, a tool (ip, iptables, tc) failed,
      or nodes that did not come up (named, with their log's tail)
"""


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _lab_dir(args: argparse.Namespace) -> str:
    return args.dir or getattr(args, "lab", None) or os.path.join(os.getcwd(), "lab")


def _print(args: argparse.Namespace, result: dict[str, Any], text: str) -> int:
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(text)
    return 0


def _status_text(st: dict[str, Any]) -> str:
    lines = [f"lab {st['dir']} ({st['mode']}, cluster {st['cluster']}, {st['status']})"]
    part = st["faults"]["partition"]
    if part:
        lines.append("partition: " + " | ".join(",".join(g) for g in part))
    if st["faults"]["blocks"]:
        lines.append("one-way cuts: " + ", ".join(
            f"{b['src']}->{b['dst']}" + (f" ({b['link']})" if b["link"] else "") for b in st["faults"]["blocks"]))
    for name, n in st["nodes"].items():
        addrs = " ".join(f"{lk}={a}" for lk, a in n["addresses"].items())
        extra = []
        if n["faults"]["links_down"]:
            extra.append("down: " + ",".join(n["faults"]["links_down"]))
        for lk, loss in n["faults"]["loss"].items():
            extra.append(f"loss {lk} {loss['percent']:g}%" + (f" +{loss['delay_ms']:g}ms" if loss["delay_ms"] else ""))
        answers = {True: "answers", False: "silent", None: ""}[n["answers"]]
        lines.append(f"  {name:<5} {n['state']:<11} pid {n['pid'] or '-':<8} {answers:<8} "
                     f"procs {n['processes']:<3} {addrs}" + (f"  [{'; '.join(extra)}]" if extra else ""))
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    netns_mode = not args.no_netns and os.geteuid() == 0
    spec = LabSpec(nodes=args.nodes, links=args.links, netns=netns_mode, keepalive=args.keepalive,
                   warntime=args.warntime, deadtime=args.deadtime, initdead=args.initdead, port=args.port,
                   link_mode=args.link_mode, vms=args.vms, dummies=args.dummies, vip=args.ip,
                   fencing=args.fencing)

    def progress(line: str) -> None:
        print(f"  {line}", file=sys.stderr if args.json else sys.stdout, flush=True)

    if args.vms and not args.no_wait and not args.json:
        print(f"starting {args.nodes} nodes and {args.vms} VMs (waiting until every VM runs)", flush=True)
    res = lab.up(_lab_dir(args), spec, wait=not args.no_wait, timeout=args.timeout, replace=args.replace,
                 guest_dir=args.guest_dir, vm_timeout=args.vm_timeout, progress=progress)
    text = (f"lab {res['dir']} up: {len(res['nodes'])} nodes ({res['mode']}), "
            f"config {res['config']}, in {res['elapsed']:g}s")
    if res.get("vms"):
        guests = res.get("guests", {})
        text += "".join(f"\n  {vm} runs on {node}" + (
            f": boot_id {guests[vm]['boot_id']}, counter {guests[vm]['counter']}" if vm in guests else "")
            for vm, node in res["vms"].items())
    for note in res.get("skipped", []):
        text += f"\n  skipped {note}"
    return _print(args, res, text)


def _vms_text(res: dict[str, Any]) -> str:
    lines = []
    for vm, v in res["vms"].items():
        copies = ", ".join(f"{c['node']}:{c['pid']}({c['status']})" for c in v["copies"]) or "no QEMU"
        guest = v.get("guest") or {}
        said = (f"boot {guest['boot_id'][:8]} counter {guest['counter']}" if "counter" in guest
                else f"guest: {guest['error']}" if "error" in guest else "")
        lines.append(f"  {vm:<6} {v['ip'] or '-':<12} {copies:<36} {said}")
    if res["twice"]:
        lines.append("RUNNING TWICE: " + ", ".join(res["twice"]))
    return "\n".join(lines) or "no VMs"


def cmd_vms(args: argparse.Namespace) -> int:
    res = vms.observe(_lab_dir(args), guests=not args.no_guest)
    return _print(args, res, _vms_text(res))


def cmd_down(args: argparse.Namespace) -> int:
    res = lab.down(_lab_dir(args))
    return _print(args, res, f"lab {res['dir']} down: {len(res['killed'])} processes killed, "
                             f"{len(res['namespaces_deleted'])} namespaces deleted")


def cmd_status(args: argparse.Namespace) -> int:
    res = lab.status(_lab_dir(args), probe=not args.no_probe)
    return _print(args, res, _status_text(res))


def cmd_node(args: argparse.Namespace) -> int:
    d = _lab_dir(args)
    action = args.lab_action
    if action == "kill":
        res = control.kill_node(d, args.node)
        text = f"{args.node}: killed {len(res['killed'])} processes"
    elif action == "kill-daemon":
        res = control.kill_daemon(d, args.node)
        text = f"{args.node}: havmd killed" if res["killed"] else f"{args.node}: havmd was not running"
    elif action == "stop":
        res = control.stop_node(d, args.node, timeout=args.timeout)
        text = f"{args.node}: " + ("stopped" + (" (SIGKILL)" if res.get("forced") else "")
                                   if res["stopped"] else "not running")
    elif action == "start":
        res = control.start_node(d, args.node, wait=not args.no_wait, timeout=args.timeout)
        text = f"{args.node}: " + (f"started, pid {res['pid']}" if res["started"] else "already running")
    elif action == "freeze":
        res = control.freeze_node(d, args.node, daemon_only=args.daemon_only)
        text = f"{args.node}: {len(res['frozen'])} processes stopped"
    else:
        res = control.thaw_node(d, args.node, daemon_only=args.daemon_only)
        text = f"{args.node}: {len(res['thawed'])} processes continued"
    return _print(args, res, text)


def cmd_wait(args: argparse.Namespace) -> int:
    res = control.wait_nodes(_lab_dir(args), args.nodes, timeout=args.timeout)
    return _print(args, res, f"answering: {', '.join(res['ready'])}")


def cmd_partition(args: argparse.Namespace) -> int:
    res = control.partition(_lab_dir(args), args.groups)
    return _print(args, res, "partition: " + " | ".join(",".join(g) for g in res["partition"]))


def cmd_heal(args: argparse.Namespace) -> int:
    return _print(args, control.heal(_lab_dir(args)), "healed: no partition, loss or link down")


def cmd_link(args: argparse.Namespace) -> int:
    fn = control.link_down if args.lab_action == "link-down" else control.link_up
    res = fn(_lab_dir(args), args.node, args.link)
    return _print(args, res, f"{args.node} {args.link}: {'up' if res['up'] else 'down'}")


def cmd_block(args: argparse.Namespace) -> int:
    fn = control.block if args.lab_action == "block" else control.unblock
    res = fn(_lab_dir(args), args.src, args.dst, link=args.link)
    cuts = ", ".join(f"{b['src']}->{b['dst']}" + (f" ({b['link']})" if b["link"] else "") for b in res["blocks"])
    return _print(args, res, f"one-way cuts: {cuts or 'none'}")


def cmd_loss(args: argparse.Namespace) -> int:
    res = control.loss(_lab_dir(args), args.node, args.percent, link=args.link, delay_ms=args.delay)
    return _print(args, res, f"loss on {args.node}: " + json.dumps(res["loss"]))


def cmd_exec(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("no command given: havm lab exec NODE -- CMD ...")
    full = control.exec_argv(_lab_dir(args), args.node, argv)
    sys.stdout.flush()
    os.execvp(full[0], full)


def cmd_chaos(args: argparse.Namespace) -> int:
    from havm.lab.chaos import cli as chaos_cli

    return chaos_cli.run(args)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("lab", help="run a local lab cluster of real havmd processes",
                              description="A local N-node havm cluster on this machine, for demos, tests "
                                          "and fault injection.",
                              epilog=LAB_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="lab_action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", help="lab directory (default: --lab, $HAVM_LAB or ./lab)")
    common.add_argument("--json", action="store_true", help="print the result as JSON")

    def add(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, parents=[common], epilog=LAB_EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.set_defaults(func=func)
        return sp

    up = add("up", "create the lab and start one havmd per node", cmd_up)
    up.add_argument("--nodes", "-n", type=int, required=True, help="number of nodes (n1..nN)")
    up.add_argument("--links", type=int, choices=(1, 2), default=1, help="heartbeat links ring0 [ring1]")
    for name in ("keepalive", "warntime", "deadtime", "initdead"):
        up.add_argument(f"--{name}", type=_duration, default=None, help=f"timing.{name} (e.g. 0.2, 500ms)")
    up.add_argument("--port", type=int, default=None, help="heartbeat port (default 694)")
    up.add_argument("--link-mode", choices=("unicast", "multicast", "broadcast"), default="unicast",
                    help="how heartbeats travel (multicast and broadcast need namespaces)")
    up.add_argument("--no-netns", action="store_true", help="loopback addresses instead of namespaces")
    up.add_argument("--no-wait", action="store_true", help="do not wait for the daemons to answer")
    up.add_argument("--replace", action="store_true", help="bring down a lab running in DIR first")
    up.add_argument("--timeout", type=_duration, default=60.0, help="how long to wait for them (default 60s)")
    up.add_argument("--vms", type=int, default=0, metavar="K",
                    help="K guest VMs vm1..vmK (havm's own image, disks in DIR/disks; namespace labs)")
    up.add_argument("--dummies", type=int, default=0, metavar="M", help="M dummy resources dummy1..dummyM")
    up.add_argument("--fencing", choices=("lab", "ipmi", "none", "watchdog"), default="lab",
                    help="fence device of the generated config: the lab's power switch (default), "
                         "fence_ipmilan against one simulated BMC (ipmi_sim) per node, none, or watchdog "
                         "(no device: a lab watchdog process per node resets it, docs/watchdog.md)")
    up.add_argument("--ip", action="store_true",
                    help="a virtual IP resource 'vip' on the guest network (skipped without an ip agent)")
    up.add_argument("--guest-dir", default=None,
                    help="cache of the built guest image (default $HAVM_GUEST_DIR or /var/tmp/havm-guest)")
    up.add_argument("--vm-timeout", type=_duration, default=180.0,
                    help="how long to wait for every VM to run (default 180s)")

    add("down", "remove every process, namespace, interface and rule of the lab", cmd_down)
    st = add("status", "per node: process, namespace, addresses, faults", cmd_status)
    st.add_argument("--no-probe", action="store_true", help="do not ask the daemons' sockets")

    vm = add("vms", "outside view of the VMs: QEMU processes per node, each guest's boot id and counter",
             cmd_vms)
    vm.add_argument("--no-guest", action="store_true", help="do not ask the guests for their state")

    wt = add("wait", "wait until the nodes' daemons answer", cmd_wait)
    wt.add_argument("nodes", nargs="*", metavar="NODE", help="default: every node")
    wt.add_argument("--timeout", type=_duration, default=60.0)

    for name, help in (("kill", "power cut: SIGKILL every process of the node"),
                       ("kill-daemon", "SIGKILL havmd only; what it started keeps running"),
                       ("stop", "SIGTERM havmd and wait"), ("start", "start havmd again"),
                       ("freeze", "SIGSTOP the node's processes"), ("thaw", "SIGCONT the node's processes")):
        sp = add(name, help, cmd_node)
        sp.add_argument("node")
        if name in ("stop", "start"):
            sp.add_argument("--timeout", type=_duration, default=10.0 if name == "stop" else 30.0)
        if name == "start":
            sp.add_argument("--no-wait", action="store_true")
        if name in ("freeze", "thaw"):
            sp.add_argument("--daemon-only", action="store_true", help="only havmd")

    pt = add("partition", "split nodes into groups that talk only within themselves", cmd_partition)
    pt.add_argument("groups", nargs="+", metavar="GROUP",
                    help="comma-separated nodes, e.g. 'n1,n2 n3'; unnamed nodes form one more group")
    add("heal", "remove all partitions, blocks, loss and link-downs", cmd_heal)
    for name in ("link-down", "link-up"):
        sp = add(name, f"set a node's link {name[5:]}", cmd_link)
        sp.add_argument("node")
        sp.add_argument("link")
    for name, help in (("block", "one-way cut: drop what SRC sends to DST"),
                       ("unblock", "undo a block (same arguments)")):
        sp = add(name, help, cmd_block)
        sp.add_argument("src")
        sp.add_argument("dst")
        sp.add_argument("--link", default=None, help="only this link (default: all)")
    ls = add("loss", "drop PERCENT of what NODE sends (NODE 'all': every node; 0 removes)", cmd_loss)
    ls.add_argument("node")
    ls.add_argument("percent", type=float)
    ls.add_argument("--link", default=None, help="only this link (default: all)")
    ls.add_argument("--delay", type=float, default=0.0, metavar="MS",
                    help="also delay packets by MS milliseconds (needs the netem qdisc)")
    ex = add("exec", "run a command inside a node's namespace", cmd_exec)
    ex.add_argument("node")
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    from havm.lab.chaos import cli as chaos_cli

    ch = add("chaos", "fault campaign: a lab of its own, random faults, an outside observer, invariants checked",
             cmd_chaos)
    chaos_cli.add_arguments(ch)
