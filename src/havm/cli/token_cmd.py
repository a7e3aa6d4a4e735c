"""havm token create|list|revoke: the REST API's tokens (names, roles, hashes).

Works on the token file itself (``daemon.api.tokens_file`` of --config, or
--file), not through a daemon: the daemons re-read it when it changes. Every
node checks its own file: copy it to each node as you do the key file (it
holds only hashes, but keep it 0600).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from havm.api.tokens import TOKEN_ROLES, create_token, read_tokens, revoke_token


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("token", help="create, list and revoke REST API tokens (roles read, admin)",
                       description="Manage the tokens of the REST API and dashboard. A token is shown once, "
                                   "at creation; the file keeps only its SHA-256. Running daemons apply a "
                                   "change at their next request.")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    c = tsub.add_parser("create", help="create a token and print it (once)")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--role", choices=TOKEN_ROLES, required=True,
                   help="read: GET routes only; admin: every operator action and config change")
    ls = tsub.add_parser("list", help="list token names and roles (never the tokens)")
    r = tsub.add_parser("revoke", help="delete a token: requests and sessions using it are refused at once")
    r.add_argument("name", metavar="NAME")
    for sp in (c, ls, r):
        sp.add_argument("--file", help="token file (default: daemon.api.tokens_file of --config)")
        sp.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_create)
    ls.set_defaults(func=cmd_list)
    r.set_defaults(func=cmd_revoke)


def token_file(args: argparse.Namespace) -> str:
    if args.file:
        return str(args.file)
    from havm.config.load import load_config, resolve_relative

    loaded = load_config(args.config, check_key=False)
    return resolve_relative(loaded.file, loaded.config.daemon.api.tokens_file)


def cmd_create(args: argparse.Namespace) -> int:
    path = token_file(args)
    token = create_token(path, args.name, args.role)
    if args.json:
        print(json.dumps({"name": args.name, "role": args.role, "token": token, "file": path}))
    else:
        print(token)
        print(f"token {args.name!r} ({args.role}) added to {path}; it is shown only now. Copy {path} to every "
              f"node (mode 0600).", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    entries = read_tokens(token_file(args))
    if args.json:
        print(json.dumps([{"name": e.name, "role": e.role, "created": e.created} for e in entries], indent=2))
        return 0
    if not entries:
        print("no tokens")
    for e in entries:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created)) if e.created else "-"
        print(f"{e.name:24} {e.role:6} created {created}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    path = token_file(args)
    revoke_token(path, args.name)
    if args.json:
        print(json.dumps({"revoked": args.name, "file": path}))
    else:
        print(f"token {args.name!r} revoked in {path}")
    return 0
