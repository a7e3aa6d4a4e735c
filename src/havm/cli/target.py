"""Which daemon a CLI command talks to: --socket, --lab DIR [--node N], or the config's socket."""

from __future__ import annotations

import argparse
import os

from havm.daemon.client import Client
from havm.errors import NotReachable, UsageError


def _lab_sockets(lab_dir: str) -> list[tuple[str, str]]:
    from havm.lab.state import nodes_of, socket_of

    if not os.path.isdir(lab_dir):
        raise UsageError(f"--lab {lab_dir}: no such directory (create a lab with 'havm lab up')")
    return [(n, socket_of(lab_dir, n)) for n in nodes_of(lab_dir)]


def candidates(args: argparse.Namespace) -> list[tuple[str, Client]]:
    """Every daemon this invocation may talk to, in the order to try them."""
    if args.socket:
        return [("local", Client(socket_path=args.socket))]
    if args.lab:
        pairs = _lab_sockets(args.lab)
        if args.node:
            pairs = [p for p in pairs if p[0] == args.node]
            if not pairs:
                raise UsageError(f"--node {args.node}: no such node in the lab at {args.lab}")
        return [(n, Client(socket_path=s)) for n, s in pairs]
    from havm.config.load import load_config

    loaded = load_config(args.config, check_key=False)
    if args.node:
        from havm.config.load import read_key

        node = loaded.config.node(args.node) if args.node in loaded.config.node_names else None
        if node is None:
            raise UsageError(f"--node {args.node}: not a node of {args.config}")
        key = read_key(loaded.key_path())
        return [(args.node, Client(host=a, port=loaded.config.daemon.api.port, key=key))
                for a in node.addresses.values()]
    return [("local", Client(socket_path=loaded.config.daemon.socket))]


def connect(args: argparse.Namespace) -> tuple[str, Client]:
    """The first daemon that answers."""
    tried = []
    for name, client in candidates(args):
        try:
            client.request("GET", "/v1/config", timeout=3.0)
            return name, client
        except NotReachable as e:
            tried.append(str(e))
    raise NotReachable("no havmd answered:\n  " + "\n  ".join(tried) if tried else "no daemon to talk to")
