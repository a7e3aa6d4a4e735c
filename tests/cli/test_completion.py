"""havm completion: scripts generated from the parsers; bash's really completes (in bash)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from havm.cli.completion_cmd import command_tree, fish_script, zsh_script
from havm.cli.main import COMMANDS, main

CONFIG = """\
cluster: c
nodes:
  - {name: hv1, addresses: {ring0: 10.0.0.1}}
  - {name: hv2, addresses: {ring0: 10.0.0.2}}
links: [{name: ring0}]
resources:
  - {id: vm1, type: dummy}
  - group: web
    resources:
      - {id: ip1, type: dummy}
      - {id: www, type: dummy}
  - clone: fs-clone
    resource: {id: fs, type: dummy}
"""


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "havm.bash"
    out = subprocess.run([sys.executable, "-m", "havm.cli.main", "completion", "bash"], capture_output=True,
                         text=True, check=True).stdout
    path.write_text(out)
    return path


def complete(script: Path, *words: str, cwd: Path | None = None) -> list[str]:
    """What bash offers for the last word, as when the user presses TAB after ``words``."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (f"source '{script}'\nCOMP_WORDS=({quoted}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1))\n"
               "COMPREPLY=(); _havm; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("HAVM_CONFIG", None)
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


def test_bash_script_is_valid_bash(bash_script: Path) -> None:
    done = subprocess.run(["bash", "-n", str(bash_script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "complete -F _havm havm" in bash_script.read_text()


def test_bash_completes_commands_subcommands_and_options(bash_script: Path) -> None:
    assert complete(bash_script, "havm", "") == list(COMMANDS)
    assert complete(bash_script, "havm", "res") == ["resource"]
    assert complete(bash_script, "havm", "resource", "mi") == ["migrate"]
    assert complete(bash_script, "havm", "--socket", "/x.sock", "node", "st") == ["standby"]  # skips the value
    assert complete(bash_script, "havm", "status", "--w") == ["--watch"]
    assert complete(bash_script, "havm", "completion", "") == ["bash", "zsh", "fish"]
    assert complete(bash_script, "havm", "config", "validate", "--") == ["--help", "--no-key-check", "--json"]


def test_bash_completes_files_and_names_from_the_config(bash_script: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text(CONFIG)
    assert complete(bash_script, "havm", "config", "validate", "clu", cwd=tmp_path) == ["cluster.yaml"]
    assert complete(bash_script, "havm", "--config", str(cfg), "node", "standby", "") == ["hv1", "hv2"]
    assert complete(bash_script, "havm", "-c", str(cfg), "resource", "stop", "") == [
        "vm1", "web", "ip1", "www", "fs-clone", "fs"]
    assert complete(bash_script, "havm", "-c", str(cfg), "resource", "move", "vm1", "hv") == ["hv1", "hv2"]
    assert complete(bash_script, "havm", "--config", str(cfg), "--node", "") == ["hv1", "hv2"]
    # no configuration: nothing, and no error on the user's terminal
    assert complete(bash_script, "havm", "--config", str(tmp_path / "none.yaml"), "node", "online", "") == []


def test_names_lister(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    assert main(["--config", str(cfg), "completion", "--names", "resources"]) == 0
    assert capsys.readouterr().out.split() == ["vm1", "web", "ip1", "www", "fs-clone", "fs"]
    cfg.write_text("nodes: [{name: a}, 7, {name: [x]}]\nresources: {bad: shape}\n")
    assert main(["--config", str(cfg), "completion", "--names", "nodes"]) == 0
    assert main(["--config", str(cfg), "completion", "--names", "resources"]) == 0
    assert capsys.readouterr().out.split() == ["a"]
    assert main(["completion"]) == 2  # which shell?


def test_tree_follows_the_parsers() -> None:
    tree = command_tree()
    assert set(tree.subcommands) == set(COMMANDS)
    _, move = tree.subcommands["resource"][1].subcommands["move"]
    assert move.positionals == ["resource", "node"] and "--timeout" in move.values
    _, cib = tree.subcommands["import"][1].subcommands["cib"]
    assert cib.repeat_last and cib.positionals == ["file"]
    assert tree.values["--lab"] == "dir"


def test_zsh_and_fish_scripts() -> None:
    z = zsh_script()
    assert z.startswith("#compdef havm") and "bashcompinit" in z and "complete -F _havm havm" in z
    f = fish_script()
    assert "complete -c havm -n __fish_use_subcommand -a resource" in f
    assert "-a '(havm completion --names resources 2>/dev/null)'" in f
    for shell, text in (("zsh", z), ("fish", f)):
        if shutil.which(shell):
            done = subprocess.run([shell, "-n"], input=text, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
