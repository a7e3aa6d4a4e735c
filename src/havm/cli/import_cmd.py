"""havm import cib|heartbeat: turn a Pacemaker CIB or a classic /etc/ha.d into cluster.yaml."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from typing import Any

from havm.errors import UsageError
from havm.importers.cib import import_cib
from havm.importers.hacf import read_text
from havm.importers.heartbeat import import_heartbeat
from havm.importers.output import parse_address_options
from havm.importers.report import ImportFailed, ImportResult

_ADDRESS_HELP = ("a node's real address: NODE=IP, or NODE=IP1,IP2 for several links in order "
                 "(repeatable); nodes without one get a placeholder from 198.18.0.0/15")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("import", help="convert a Pacemaker CIB or a Heartbeat /etc/ha.d into cluster.yaml",
                       description="Convert another cluster manager's configuration into havm's YAML. "
                                   "The result is validated before it is written; everything that could not "
                                   "be carried over is listed in the report (stderr, or --report FILE).")
    isub = p.add_subparsers(dest="import_command", metavar="SOURCE", required=True)

    c = isub.add_parser("cib", help="import Pacemaker CIB XML (2.x/3.x or Heartbeat 2 era, or snippets)",
                        description="Read one or more CIB XML files (a whole CIB, or snippets holding a "
                                    "<primitive>, <clone>, <constraints>...; they are merged) and write "
                                    "the equivalent havm configuration.")
    c.add_argument("files", nargs="+", metavar="FILE.xml")
    _common(c)
    c.set_defaults(func=cmd_cib)

    h = isub.add_parser("heartbeat", help="import a classic Heartbeat directory (ha.cf, haresources, authkeys)",
                        description="Read DIR/ha.cf, DIR/haresources and DIR/authkeys and write the equivalent "
                                    "havm configuration, plus an HMAC-SHA256 key file (mode 0600) beside it.")
    h.add_argument("directory", metavar="DIR")
    _common(h)
    h.add_argument("--hosts", metavar="FILE", help="an /etc/hosts-style file giving the nodes' addresses")
    h.add_argument("--new-key", action="store_true", help="ignore authkeys and write a fresh random key")
    h.add_argument("--key-file", default="authkey", help="key file name, beside the output (default: authkey)")
    h.set_defaults(func=cmd_heartbeat)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="cluster.yaml", help="where to write ('-': stdout)")
    p.add_argument("--address", action="append", default=[], metavar="NODE=IP", help=_ADDRESS_HELP)
    p.add_argument("--cluster", help="cluster name (default: the CIB's cluster-name, or the input's name)")
    p.add_argument("--report", metavar="FILE", help="write the report to FILE instead of stderr")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--json", action="store_true", help="print the result and report as JSON on stdout")


def cmd_cib(args: argparse.Namespace) -> int:
    inputs = [(read_text(f), f) for f in args.files]
    result = import_cib(inputs, parse_address_options(args.address), args.cluster,
                        output_name=_name(args.output))
    return _finish(args, result, key_path=None)


def cmd_heartbeat(args: argparse.Namespace) -> int:
    hosts = _read_hosts(args.hosts) if args.hosts else None
    result = import_heartbeat(args.directory, parse_address_options(args.address), args.cluster, hosts,
                              args.new_key, output_name=_name(args.output), key_file=args.key_file)
    key_path = None
    if result.key is not None:
        if args.output == "-":
            raise UsageError("a key was imported: write the configuration to a file (-o FILE), the key goes beside it")
        key_path = os.path.join(os.path.dirname(os.path.abspath(args.output)), args.key_file)
    return _finish(args, result, key_path)


def _name(output: str) -> str:
    return "<stdout>" if output == "-" else output


def _read_hosts(path: str) -> dict[str, str]:
    """name -> first IPv4 address, from an /etc/hosts-style file."""
    out: dict[str, str] = {}
    for line in read_text(path).splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        try:
            ipaddress.IPv4Address(words[0])
        except ValueError:
            continue  # IPv6 and malformed lines are not heartbeat addresses
        if words[0].startswith("127."):
            continue
        for name in words[1:]:
            out.setdefault(name, words[0])
            out.setdefault(name.split(".")[0], words[0])
    return out


def _finish(args: argparse.Namespace, result: ImportResult, key_path: str | None) -> int:
    if args.output != "-":
        if os.path.exists(args.output) and not args.force:
            raise UsageError(f"{args.output} exists; use --force to overwrite it")
        if key_path is not None and os.path.exists(key_path):
            with open(key_path, encoding="utf-8", errors="replace") as f:
                if f.read() != result.key:
                    raise ImportFailed(key_path, None, "a different key file is already there; move it away "
                                                       "or choose another name with --key-file")
        tmp = args.output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(result.text)
        os.replace(tmp, args.output)
        if key_path is not None and not os.path.exists(key_path):
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(result.key or "")
    elif not args.json:
        sys.stdout.write(result.text)
    report_text = result.report.render()
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            f.write(report_text + "\n")
    if args.json:
        doc: dict[str, Any] = {"output": args.output, "key_file": key_path, "valid": True,
                               "counts": result.report.counts(),
                               "placeholders": list(result.placeholders),
                               "report": [i.to_json() for i in result.report.items]}
        if args.output == "-":
            doc["config"] = result.text
        print(json.dumps(doc, indent=2))
    elif not args.report:
        print(report_text, file=sys.stderr)
    if args.output != "-" and not args.json:
        print(f"wrote {args.output}" + (f" and key {key_path}" if key_path else ""), file=sys.stderr)
    return 0
