"""havm config validate|show|apply|diff, and havm keygen."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from typing import Any

from havm.cli.target import connect
from havm.commands.cluster import ApplyConfig, GetConfig
from havm.config.load import config_digest, load_config, write_key
from havm.errors import ConfigError, ConfigIssue, HavmError, UsageError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("config", help="validate, show, apply and diff the cluster configuration",
                       description="Validate, show, apply and diff the replicated cluster configuration.")
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)

    v = csub.add_parser("validate", help="check a configuration file and report every problem",
                        description="Check FILE (default: the global --config, $HAVM_CONFIG or "
                                    "/etc/havm/cluster.yaml) and its key file, and report every problem at "
                                    "once, each with file, line, field and what was expected. Exit 3 if invalid.")
    v.add_argument("file", nargs="?", help="the configuration to check (default: the global --config)")
    v.add_argument("--no-key-check", action="store_true", help="do not check the auth key file")
    v.add_argument("--json", action="store_true", help="machine-readable result")
    v.set_defaults(func=cmd_validate)

    s = csub.add_parser("show", help="print the cluster's current configuration and its version",
                        description="Print the configuration the cluster runs, with its version "
                                    "(admin_epoch.epoch:digest) as a header comment.")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)

    a = csub.add_parser("apply", help="replace the cluster configuration with FILE",
                        description="Validate FILE and submit it through the controller. The change "
                                    "is refused, with every error, unless it validates; it succeeds "
                                    "once a majority of votes have stored it.")
    a.add_argument("file")
    a.add_argument("--base-epoch", metavar="A.E",
                   help="refuse (exit 6) unless the cluster is still at this version (from 'config show')")
    a.add_argument("--force", action="store_true",
                   help="raise admin_epoch: this configuration wins over any other, even a newer one")
    a.add_argument("--comment", default="", help="a note kept with the change")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_apply)

    d = csub.add_parser("diff", help="show what applying FILE would change",
                        description="Unified diff from the cluster's configuration to FILE.")
    d.add_argument("file")
    d.add_argument("--exit-code", action="store_true", help="exit 1 if there are differences")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_diff)

    k = sub.add_parser("keygen", help="create a new cluster key file (mode 0600)",
                       description="Write 32 random bytes (hex) to FILE with mode 0600. Never overwrites.")
    k.add_argument("file")
    k.add_argument("--json", action="store_true", help="print the key file's path as JSON")
    k.set_defaults(func=cmd_keygen)


def cmd_validate(args: argparse.Namespace) -> int:
    args.file = args.file or args.config
    try:
        loaded = load_config(args.file, check_key=not args.no_key_check)
    except ConfigError as e:
        if args.json:
            print(json.dumps({"valid": False, "issues": [
                {"file": i.file, "line": i.line, "field": i.field, "message": i.message} for i in e.issues]},
                indent=2))
        else:
            for issue in e.issues:
                print(issue, file=sys.stderr)
            print(f"{args.file}: {len(e.issues)} problem(s)", file=sys.stderr)
        return e.exit_status
    c = loaded.config
    warnings = _warnings(loaded)
    if args.json:
        print(json.dumps({"valid": True, "cluster": c.cluster, "nodes": c.node_names,
                          "links": [lk.name for lk in c.links], "digest": loaded.digest,
                          "warnings": [{"file": w.file, "line": w.line, "field": w.field, "message": w.message}
                                       for w in warnings]}, indent=2))
    else:
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        print(f"{args.file}: valid: cluster {c.cluster}, {len(c.nodes)} node(s), {len(c.links)} link(s), "
              f"{len(c.resources)} resource(s)")
    return 0


def _warnings(loaded: Any) -> list[ConfigIssue]:
    """Valid but will not work from this host (fence agents not installed here, ...), located."""
    from havm.config.fencing import agent_warnings
    from havm.config.watchdog import watchdog_warnings
    from havm.config.yamlpos import format_path, load_yaml_text

    located = load_yaml_text(loaded.text, loaded.file)
    c = loaded.config
    return [ConfigIssue(loaded.file, located.line_of(path), format_path(path), message)
            for path, message in agent_warnings(c.fencing, c.node_names)
            + watchdog_warnings(c.properties.no_quorum_policy)]


def _current(args: argparse.Namespace) -> dict[str, Any]:
    _, client = connect(args)
    return client.run(GetConfig())  # type: ignore[no-any-return]


def _version(cur: dict[str, Any]) -> str:
    return f"{cur['admin_epoch']}.{cur['epoch']}:{cur['digest'][:8]}"


def cmd_show(args: argparse.Namespace) -> int:
    cur = _current(args)
    if args.json:
        print(json.dumps(cur, indent=2))
    else:
        print(f"# havm cluster configuration, version {_version(cur)}"
              f" (changed by {cur.get('changed_by') or '?'})")
        sys.stdout.write(cur["text"])
    return 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from None


def cmd_apply(args: argparse.Namespace) -> int:
    load_config(args.file, check_key=False)  # errors name the operator's file and its lines
    text = _read(args.file)
    base = None
    if args.base_epoch:
        try:
            a, e = args.base_epoch.split(".")
            base = [int(a), int(e)]
        except ValueError:
            raise UsageError(f"--base-epoch {args.base_epoch!r}: expected ADMIN.EPOCH such as 0.7") from None
    by = f"{os.environ.get('SUDO_USER') or os.environ.get('USER') or 'root'}@cli"
    _, client = connect(args)
    result = client.run(ApplyConfig(text=text, base_epoch=base, force=args.force, comment=args.comment, by=by),
                        timeout=60)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    a, e, d = result["version"][:3]
    if not result["changed"]:
        print(f"no change: the cluster already runs this configuration ({a}.{e}:{d[:8]})")
    else:
        print(f"applied: configuration {a}.{e}:{d[:8]} committed by controller {result['controller']}, "
              f"stored on {', '.join(result['acked'])}")
    if result["missing"]:
        print(f"warning: not yet on {', '.join(result['missing'])}; they will catch up", file=sys.stderr)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    text = _read(args.file)
    cur = _current(args)
    diff = list(difflib.unified_diff(cur["text"].splitlines(keepends=True), text.splitlines(keepends=True),
                                     fromfile=f"cluster ({_version(cur)})", tofile=args.file))
    same = config_digest(text) == cur["digest"]
    if args.json:
        print(json.dumps({"same": same, "from": _version(cur), "diff": "".join(diff)}, indent=2))
    elif same:
        print(f"no differences: {args.file} is the cluster's configuration ({_version(cur)})")
    else:
        sys.stdout.writelines(d if d.endswith("\n") else d + "\n" for d in diff)
    return 1 if (args.exit_code and not same) else 0


def cmd_keygen(args: argparse.Namespace) -> int:
    try:
        write_key(args.file)
    except FileExistsError:
        raise HavmError(f"{args.file} exists; refusing to overwrite a cluster key") from None
    if args.json:
        print(json.dumps({"key_file": args.file, "mode": "0600"}))
    else:
        print(f"wrote a new cluster key to {args.file} (mode 0600); copy it to every node")
    return 0
