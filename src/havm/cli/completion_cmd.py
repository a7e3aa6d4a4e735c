"""``havm completion bash|zsh|fish``: shell completion generated from the argparse parsers.

The parsers are the one truth: ``command_tree()`` walks them (every command of
``cli.main.COMMANDS``, its subcommands, options and positionals) and each shell's
script is printed from that tree, so a new option completes without anyone
editing a script. What an argument holds is guessed from its name and metavar
(``KINDS``): files and directories complete as such, node and resource names
come from the configuration at completion time (``havm completion --names
nodes|resources``, which reads the YAML without validating it: fast, and
silent on any error, as a completion must be).

zsh uses the bash script through ``bashcompinit`` (zsh's own emulation of
bash's ``complete``/``compgen``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SHELLS = ("bash", "zsh", "fish")


@dataclass
class CommandNode:
    """One parser: its options, which options take a value (and what kind), its
    subcommands (name -> (help, node)) and its positionals' kinds in order."""

    options: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    subcommands: dict[str, tuple[str, CommandNode]] = field(default_factory=dict)
    positionals: list[str] = field(default_factory=list)
    repeat_last: bool = False

    def walk(self, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], CommandNode]]:
        yield path, self
        for name, (_, sub) in self.subcommands.items():
            yield from sub.walk((*path, name))


_FILE_DESTS = {"file", "files", "output", "config", "socket", "report", "hosts", "state", "key_file",
               "simulate_config", "tokens_file"}
_DIR_DESTS = {"directory", "dir", "lab", "guest_dir", "state_dir"}


def kind_of(action: argparse.Action) -> str:
    """What the argument holds: file, dir, node, resource, choice:a|b|c, or '' (no completion)."""
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        return "choice:" + "|".join(str(c) for c in action.choices)
    metavar = str(action.metavar or "")
    dest = action.dest
    if metavar == "NODE" or dest in ("node", "node_arg", "nodes_arg"):
        return "node"
    if dest in ("resource", "rsc") or metavar in ("RSC", "RESOURCE"):
        return "resource"
    if dest in _DIR_DESTS or metavar == "DIR":
        return "dir"
    if dest in _FILE_DESTS or "FILE" in metavar or metavar.endswith((".yaml", ".xml")):
        return "file"
    return ""


def tree_of(parser: argparse.ArgumentParser) -> CommandNode:
    node = CommandNode()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                node.subcommands[name] = (helps.get(name, ""), tree_of(sub))
        elif action.option_strings:
            node.options += action.option_strings
            if action.nargs != 0:
                for opt in action.option_strings:
                    node.values[opt] = kind_of(action)
        elif action.help != argparse.SUPPRESS:
            node.positionals.append(kind_of(action))
            node.repeat_last = action.nargs in ("+", "*", argparse.REMAINDER)
    return node


def command_tree() -> CommandNode:
    """Every command's full parser (each built as when it runs), under the global options."""
    from havm.cli.main import COMMANDS, build_parser

    root = tree_of(build_parser(None))
    for name in COMMANDS:
        parser = build_parser(name)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        helps = {a.dest: a.help or "" for a in sub._choices_actions}
        root.subcommands[name] = (helps.get(name, ""), tree_of(sub.choices[name]))
    return root


# --- bash (and zsh through bashcompinit) -------------------------------------------

_BASH_MAIN = r'''
_havm_names() {  # $1: nodes|resources, from the configuration the command line names
    local w i args=()
    for ((i=1; i<COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        case "$w" in
            --config|-c|--lab) args+=("$w" "${COMP_WORDS[i+1]}") ;;
            --config=*|--lab=*) args+=("$w") ;;
        esac
    done
    havm "${args[@]}" completion --names "$1" 2>/dev/null
}

_havm_complete_kind() {  # $1: a kind (see completion_cmd.kind_of), $2: the word
    case "$1" in
        file) COMPREPLY=($(compgen -f -- "$2")) ;;
        dir) COMPREPLY=($(compgen -d -- "$2")) ;;
        node) COMPREPLY=($(compgen -W "$(_havm_names nodes)" -- "$2")) ;;
        resource) COMPREPLY=($(compgen -W "$(_havm_names resources)" -- "$2")) ;;
        choice:*) local c="${1#choice:}"; COMPREPLY=($(compgen -W "${c//|/ }" -- "$2")) ;;
        *) COMPREPLY=() ;;
    esac
}

_havm() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" path="" w i npos=0 skip=0 kind
    local subs opts vals pos repeat
    ((COMP_CWORD > 0)) && prev="${COMP_WORDS[COMP_CWORD-1]}"
    _havm_spec ""
    for ((i=1; i<COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        if ((skip)); then skip=0; continue; fi
        case "$w" in
            --*=*) continue ;;
            -*) [[ " $vals " == *" $w="* ]] && skip=1; continue ;;
        esac
        if [[ -n "$subs" && " $subs " == *" $w "* ]]; then
            path="${path:+$path }$w"; _havm_spec "$path"; npos=0
        else
            npos=$((npos+1))
        fi
    done
    if ((skip)); then  # the word is the value of the option before it
        for w in $vals; do
            if [[ "${w%%=*}" == "$prev" ]]; then _havm_complete_kind "${w#*=}" "$cur"; return 0; fi
        done
        COMPREPLY=(); return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur")); return 0
    fi
    if [[ -n "$subs" ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur")); return 0
    fi
    local -a kinds=($pos)
    if ((npos < ${#kinds[@]})); then
        kind="${kinds[npos]}"
    elif ((repeat && ${#kinds[@]} > 0)); then
        kind="${kinds[${#kinds[@]}-1]}"
    else
        COMPREPLY=(); return 0
    fi
    [[ "$kind" == "-" ]] && kind=""
    _havm_complete_kind "$kind" "$cur"
    return 0
}
complete -F _havm havm
'''


def bash_script() -> str:
    """The whole bash script; ``_havm_spec PATH`` sets what each command path offers."""
    cases = []
    for path, node in command_tree().walk():
        vals = " ".join(f"{opt}={kind}" for opt, kind in node.values.items())
        pos = " ".join(k or "-" for k in node.positionals)
        cases.append(f"        {shlex.quote(' '.join(path))})\n"
                     f"            subs={shlex.quote(' '.join(node.subcommands))}\n"
                     f"            opts={shlex.quote(' '.join(node.options))}\n"
                     f"            vals={shlex.quote(vals)}\n"
                     f"            pos={shlex.quote(pos)}; repeat={int(node.repeat_last)} ;;")
    spec = ("_havm_spec() {  # generated from havm's argparse parsers\n"
            "    case \"$1\" in\n" + "\n".join(cases) +
            "\n        *) subs=''; opts=''; vals=''; pos=''; repeat=0 ;;\n    esac\n}\n")
    return ("# bash completion for havm (generated by 'havm completion bash')\n"
            "# install: havm completion bash > /etc/bash_completion.d/havm\n" + spec + _BASH_MAIN)


def zsh_script() -> str:
    return ("#compdef havm\n# zsh completion for havm (generated by 'havm completion zsh'): the bash\n"
            "# completion through zsh's bashcompinit. install: havm completion zsh > \"${fpath[1]}/_havm\"\n"
            "# or: source <(havm completion zsh)\n"
            "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n"
            + bash_script())


# --- fish ---------------------------------------------------------------------------

_FISH_KIND = {"file": "-r -F", "dir": "-r -a '(__fish_complete_directories)'",
              "node": "-r -f -a '(havm completion --names nodes 2>/dev/null)'",
              "resource": "-r -f -a '(havm completion --names resources 2>/dev/null)'"}


def _fish_arg(kind: str) -> str:
    if kind.startswith("choice:"):
        return "-r -f -a " + shlex.quote(" ".join(kind[7:].split("|")))
    return _FISH_KIND.get(kind, "-r -f")


def _fish_condition(path: tuple[str, ...], subs: list[str]) -> str:
    parts = ["__fish_use_subcommand"] if not path else [f"__fish_seen_subcommand_from {w}" for w in path]
    if path and subs:
        parts.append("not __fish_seen_subcommand_from " + " ".join(subs))
    return "; and ".join(parts)


def fish_script() -> str:
    out = ["# fish completion for havm (generated by 'havm completion fish')",
           "# install: havm completion fish > ~/.config/fish/completions/havm.fish", "complete -c havm -f"]
    for path, node in command_tree().walk():
        cond = shlex.quote(_fish_condition(path, list(node.subcommands)))
        for name, (text, _) in node.subcommands.items():
            out.append(f"complete -c havm -n {cond} -a {shlex.quote(name)} -d {shlex.quote(text[:80])}")
        opt_cond = shlex.quote(" ; and ".join(f"__fish_seen_subcommand_from {w}" for w in path)
                               if path else "__fish_use_subcommand")
        for opt in node.options:
            flag = f"-l {opt[2:]}" if opt.startswith("--") else f"-s {opt[1:]}"
            arg = _fish_arg(node.values[opt]) if opt in node.values else ""
            out.append(f"complete -c havm -n {opt_cond} {flag} {arg}".rstrip())
        if node.positionals and not node.subcommands:
            kind = node.positionals[0]
            if kind:
                out.append(f"complete -c havm -n {opt_cond} {_fish_arg(kind)}")
    return "\n".join(out) + "\n"


# --- names from the configuration -----------------------------------------------------

def _ids(items: Any) -> Iterator[str]:
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        for key in ("id", "group", "clone", "bundle"):
            if isinstance(item.get(key), str):
                yield item[key]
        yield from _ids(item.get("resources"))
        if isinstance(item.get("resource"), dict):
            yield from _ids([item["resource"]])


def names(args: argparse.Namespace, what: str) -> list[str]:
    """Node or resource names of the configuration (the lab's with --lab); [] on any problem."""
    import yaml

    path = args.config
    if args.lab:
        from havm.lab.state import config_of

        path = config_of(args.lab)
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(doc, dict):
        return []
    if what == "nodes":
        return [n["name"] for n in doc.get("nodes") or [] if isinstance(n, dict) and isinstance(n.get("name"), str)]
    return list(dict.fromkeys(_ids(doc.get("resources"))))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "completion", help="print a shell completion script (bash, zsh, fish)",
        description="Print the completion script for SHELL, generated from havm's own parsers: commands, "
                    "subcommands, options, files, and node and resource names read from the "
                    "configuration (--config, $HAVM_CONFIG, /etc/havm/cluster.yaml, or --lab).",
        epilog="bash: havm completion bash > /etc/bash_completion.d/havm   "
               "zsh: havm completion zsh > \"${fpath[1]}/_havm\"   "
               "fish: havm completion fish > ~/.config/fish/completions/havm.fish")
    p.add_argument("shell", nargs="?", choices=SHELLS, help="the shell")
    p.add_argument("--names", choices=("nodes", "resources"),
                   help="print the configuration's node or resource names, one a line (used by the scripts)")
    p.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    if args.names:
        for name in names(args, args.names):
            print(name)
        return 0
    if not args.shell:
        from havm.errors import UsageError

        raise UsageError("which shell? havm completion bash|zsh|fish")
    script = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[args.shell]()
    sys.stdout.write(script)
    return 0

