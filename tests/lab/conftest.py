"""Fixtures of the lab tests: short lab dirs that are always torn down.

Tests that build namespaces need root and ``ip netns``; they are marked
``lab`` and skipped with the reason otherwise. A lab dir lives directly under
/tmp: unix socket paths must stay under 108 bytes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator

import pytest

from havm.lab import lab, netns
from havm.lab.plan import LabSpec
from havm.lab.state import netns_prefix

# What the namespace tests run as "the daemon" when they test the network or
# process mechanics rather than havmd: a process that starts a child (as havmd
# starts QEMU) and then sits. Not a havmd: nothing answers on its socket.
SITTER = ("sh", "-c", "sleep 1000 & exec sleep 1001")

NETNS_REASON = netns.available()
if NETNS_REASON is None and netns.run(["ip", "netns", "list"], check=False).returncode != 0:
    NETNS_REASON = "'ip netns' does not work here"

needs_netns = pytest.mark.skipif(NETNS_REASON is not None, reason=f"lab tests: {NETNS_REASON}")


@pytest.fixture
def lab_dirs() -> Iterator[Callable[[], str]]:
    """Make fresh short lab dirs; every one is brought down and removed at teardown."""
    made: list[str] = []

    def make() -> str:
        d = tempfile.mkdtemp(prefix="hl", dir="/tmp")
        made.append(d)
        return d

    yield make
    for d in made:
        try:
            lab.down(d)
        finally:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def lab_dir(lab_dirs: Callable[[], str]) -> str:
    return lab_dirs()


@pytest.fixture
def sitter_lab(lab_dir: str) -> Callable[..., dict]:
    """Bring up a namespace lab whose nodes run SITTER; returns the up() result."""

    def make(nodes: int = 3, links: int = 2) -> dict:
        spec = LabSpec(nodes=nodes, links=links, netns=True, daemon_command=SITTER)
        return lab.up(lab_dir, spec, wait=False)

    return make


def root_links() -> list[str]:
    """Interface names in the root namespace."""
    out = netns.run(["ip", "-br", "link"]).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def lab_netns(lab_dir: str) -> set[str]:
    """Namespaces of the lab in ``lab_dir`` that exist now."""
    prefix = netns_prefix(lab_dir)
    return {n for n in netns.list_netns() if n.startswith(prefix)}
