"""``havm bootstrap``: write the configuration and key of a new cluster from a list of hosts.

The text is built here (with comments an operator will want when editing it
later), validated by the same code as ``havm config validate`` before anything
is written, and written atomically; the key file is created 0600. Nothing is
overwritten without ``--force``.

Choices made for the operator (each one written as a comment in the file):
- links: one per address given to each node (``ring0``, ``ring1``...), unicast
  unless ``--link NAME:MODE[:GROUP]`` says otherwise;
- two nodes: ``quorum.two_node`` with the ping tiebreaker when ``--ping`` names
  targets (Heartbeat's ipfail), else ``lowest-node`` (and a warning: the
  higher node alone then never has quorum);
- timings: keepalive 500ms, warntime 2s, deadtime 5s, initdead 30s unless
  ``--keepalive`` / ``--deadtime`` are given (warntime = deadtime / 2, initdead =
  max(30s, 3 x deadtime)); the config's own cross-field rules still apply;
- no fence devices: a lost node's resources stay where they were until a
  device is configured (fencing_enabled stays true: the safe default).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from dataclasses import dataclass

from havm.config.load import parse_config_text, resolve_relative
from havm.config.types import parse_duration
from havm.errors import ConfigError, HavmError, UsageError

DEFAULT_KEEPALIVE = 0.5
DEFAULT_DEADTIME = 5.0
MODES = ("unicast", "broadcast", "multicast")


@dataclass(frozen=True)
class Link:
    name: str
    mode: str = "unicast"
    group: str | None = None


@dataclass(frozen=True)
class Plan:
    """Everything the file says, checked; ``text()`` writes it."""

    cluster: str
    nodes: dict[str, list[str]]  # name -> one address per link, in link order
    links: list[Link]
    keepalive: float
    deadtime: float
    ping: list[str]
    key_file: str

    @property
    def warntime(self) -> float:
        return self.deadtime / 2

    @property
    def initdead(self) -> float:
        return max(30.0, 3 * self.deadtime)

    def text(self) -> str:
        from havm.importers.output import format_duration as fmt

        out = [f"# havm cluster configuration, written by 'havm bootstrap' for {len(self.nodes)} nodes.",
               "# Check it with 'havm config validate FILE'; the same file (and key) goes on every node.",
               "version: 1", f"cluster: {self.cluster}", "nodes:"]
        for name, addrs in self.nodes.items():
            pairs = ", ".join(f"{lk.name}: {a}" for lk, a in zip(self.links, addrs, strict=True))
            out.append(f"  - {{name: {name}, addresses: {{{pairs}}}}}")
        out.append("links:                 # a node is alive while any link carries its heartbeats")
        for lk in self.links:
            extra = f", group: {lk.group}, ttl: 1" if lk.group else ""
            out.append(f"  - {{name: {lk.name}, mode: {lk.mode}, port: 694{extra}}}")
        out += ["timing:", f"  keepalive: {fmt(self.keepalive)}",
                f"  warntime: {fmt(self.warntime)}", f"  deadtime: {fmt(self.deadtime)}",
                f"  initdead: {fmt(self.initdead)}          # peers get this long to appear at start"]
        if len(self.nodes) == 2:
            out += ["quorum:", "  two_node: true           # one node alone may keep quorum if the tiebreaker agrees"]
            if self.ping:
                out += ["  tiebreaker: {type: ping, targets: [" + ", ".join(self.ping) + "]}"]
            else:
                out += ["  # lowest-node: the lower-named node wins a split, but the other one alone never",
                        "  # has quorum; prefer 'type: ping' with your gateway as target (havm bootstrap --ping)",
                        "  tiebreaker: {type: lowest-node}"]
        elif self.ping:
            out += ["quorum:", "  tiebreaker: {type: ping, targets: [" + ", ".join(self.ping) + "]}"]
        out += ["auth:", f"  key_file: {self.key_file}        # HMAC-SHA256, mode 0600, the same on every node",
                "properties:",
                "  fencing_enabled: true    # nothing a lost node ran is recovered before it is proven off:",
                "                           # add fence devices (docs/config.md): without one, fencing fails and",
                "                           # what a lost node ran stays down",
                "resources: []             # see docs/config-resources.md", ""]
        return "\n".join(out)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "bootstrap", help="write the configuration and key of a new cluster from a list of hosts",
        description="Write a validated cluster configuration and a new key file (mode 0600, beside it) "
                    "for a new cluster. Two nodes get two-node mode. Refuses to overwrite without --force.",
        epilog="example: havm bootstrap --name prod --node hv1=10.0.0.1,10.1.0.1 "
               "--node hv2=10.0.0.2,10.1.0.2 --ping 10.0.0.254 -o /etc/havm/cluster.yaml")
    p.add_argument("--name", required=True, metavar="CLUSTER", help="cluster name")
    p.add_argument("--node", dest="bootstrap_nodes", action="append", required=True, metavar="NAME=IP[,IP...]",
                   help="a node and its address on each link, in link order (repeat for every node)")
    p.add_argument("--link", action="append", default=[], metavar="NAME[:MODE[:GROUP]]",
                   help="name (and mode: unicast, broadcast, multicast with GROUP) of each link in order "
                        "(default: ring0, ring1... unicast)")
    p.add_argument("--ping", action="append", default=[], metavar="IP",
                   help="ping tiebreaker target (your gateway); repeatable")
    p.add_argument("--keepalive", type=duration, default=DEFAULT_KEEPALIVE, metavar="TIME",
                   help="heartbeat interval (default 500ms)")
    p.add_argument("--deadtime", type=duration, default=DEFAULT_DEADTIME, metavar="TIME",
                   help="silence after which a node is dead (default 5s)")
    p.add_argument("--key-file", default="authkey", help="key file, relative to the output (default authkey)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write (default: the global --config, $HAVM_CONFIG or /etc/havm/cluster.yaml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing configuration and key")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=cmd_bootstrap)


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _ipv4(text: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise UsageError(f"{what}: {text.strip()!r} is not an IPv4 address such as 10.0.0.1") from None


def _links(specs: list[str], count: int) -> list[Link]:
    links = []
    for spec in specs:
        name, _, rest = spec.partition(":")
        mode, _, group = rest.partition(":")
        mode = mode or "unicast"
        if mode not in MODES:
            raise UsageError(f"--link {spec!r}: mode {mode!r}; expected one of {', '.join(MODES)}")
        if (mode == "multicast") != bool(group):
            raise UsageError(f"--link {spec!r}: a multicast link needs a GROUP (NAME:multicast:239.x.y.z), "
                             "and only a multicast link has one")
        links.append(Link(name, mode, _ipv4(group, f"--link {spec!r}") if group else None))
    if links and len(links) != count:
        raise UsageError(f"{len(links)} --link given but each node has {count} address(es): one per link")
    return links or [Link(f"ring{i}") for i in range(count)]


def plan_from_args(args: argparse.Namespace) -> Plan:
    nodes: dict[str, list[str]] = {}
    for spec in args.bootstrap_nodes:
        name, sep, addrs = spec.partition("=")
        if not sep or not name.strip() or not addrs.strip():
            raise UsageError(f"--node {spec!r}: expected NAME=IP or NAME=IP1,IP2 (one address per link)")
        if name.strip() in nodes:
            raise UsageError(f"--node {spec!r}: node {name.strip()!r} is given twice")
        nodes[name.strip()] = [_ipv4(a, f"--node {spec!r}") for a in addrs.split(",")]
    if len(nodes) < 2:
        raise UsageError("a cluster needs at least two --node")
    counts = {len(a) for a in nodes.values()}
    if len(counts) != 1:
        raise UsageError("every --node needs the same number of addresses (one per link): "
                         + ", ".join(f"{n} has {len(a)}" for n, a in nodes.items()))
    return Plan(cluster=args.name, nodes=nodes, links=_links(args.link, counts.pop()),
                keepalive=args.keepalive, deadtime=args.deadtime,
                ping=[_ipv4(p, "--ping") for p in args.ping], key_file=args.key_file)


def _write_atomically(path: str, text: str, mode: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # whatever the umask
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cmd_bootstrap(args: argparse.Namespace) -> int:
    args.output = args.output or args.config
    plan = plan_from_args(args)
    text = plan.text()
    try:
        parse_config_text(text, args.output)
    except ConfigError as e:  # e.g. a bad node name or timings the config's rules refuse
        raise UsageError("the configuration would be invalid:\n  "
                         + "\n  ".join(f"{i.field}: {i.message}" for i in e.issues)) from None
    key_path = resolve_relative(args.output, plan.key_file)
    for path in (args.output, key_path):
        if os.path.exists(path) and not args.force:
            raise UsageError(f"{path} exists; refusing to overwrite it without --force")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    try:
        _write_atomically(key_path, os.urandom(32).hex() + "\n", 0o600)
        _write_atomically(args.output, text, 0o644)
    except OSError as e:
        raise HavmError(f"cannot write {e.filename}: {e.strerror}") from None
    two_node = len(plan.nodes) == 2
    if args.json:
        print(json.dumps({"config": args.output, "key_file": key_path, "cluster": plan.cluster,
                          "nodes": list(plan.nodes), "links": [lk.name for lk in plan.links],
                          "two_node": two_node,
                          "tiebreaker": "ping" if plan.ping else ("lowest-node" if two_node else "none")},
                         indent=2))
        return 0
    print(f"wrote {args.output} (cluster {plan.cluster}, {len(plan.nodes)} nodes, "
          f"{len(plan.links)} link(s){', two-node mode' if two_node else ''}) and key {key_path} (mode 0600)")
    if two_node and not plan.ping:
        print("warning: two nodes without --ping: the tiebreaker is lowest-node, so "
              f"{sorted(plan.nodes)[1]} alone never has quorum; give --ping GATEWAY for ipfail-style failover")
    print("next: add fence devices and resources, copy both files to every node, start havmd "
          "(systemctl enable --now havmd)")
    return 0
