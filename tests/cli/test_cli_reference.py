"""The CLI's promises, checked on the parsers themselves: every command reporting something
has --json, docs/cli.md names every command, and the exit-status table (havm --help and the
doc) covers every error class a command can raise."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from havm.cli.completion_cmd import command_tree
from havm.cli.main import EXIT_STATUS_HELP
from havm.errors import HavmError

DOC = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
#: commands whose output is not a report (a script, names for the shell)
NO_JSON = {"completion"}


def leaves() -> list[str]:
    return [" ".join(path) for path, node in command_tree().walk() if path and not node.subcommands]


def subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def test_every_command_that_reports_has_json() -> None:
    tree = dict(command_tree().walk())
    missing = [p for p in leaves() if p not in NO_JSON and "--json" not in tree[tuple(p.split())].options]
    assert missing == []


def test_docs_name_every_command() -> None:
    missing = [p for p in leaves() if f"`havm {p}" not in DOC]
    assert missing == [], f"docs/cli.md does not describe: {missing}"


def test_exit_status_table_covers_every_error_and_matches_the_doc() -> None:
    command_tree()  # imports every command module, hence every error class they can raise
    help_codes = {int(n) for n in re.findall(r"^  (\d+)\s", EXIT_STATUS_HELP, re.M)}
    doc_codes = {int(n) for n in re.findall(r"^\| (\d+) \|", DOC, re.M)}
    raised = {HavmError.exit_status} | {c.exit_status for c in subclasses(HavmError)}
    assert raised <= help_codes
    assert help_codes == doc_codes
    assert {0, 2, 130} <= help_codes  # success, argparse's usage errors, Ctrl-C
