"""Test helpers: network namespaces and agent actions run inside them.

Agents act on "this node", so a test that must not touch the real host runs
each action in a fresh interpreter under ``ip netns exec`` (network) or
``nsenter`` (mount namespace of a holder process). Everything created here is
removed by name or pid in the fixtures that use it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from havm.agents.base import OCF, AgentResult

_CALL = ("import json,sys,importlib;"
         "m,_,c=sys.argv[1].partition(':');"
         "a=getattr(importlib.import_module(m),c)(sys.argv[2],json.loads(sys.argv[3]));"
         "act=sys.argv[4];kw=json.loads(sys.argv[5]);"
         "r=a.meta_data() if act=='meta_data' else getattr(a,act)(**kw);"
         "r=r if not isinstance(r,str) else type('R',(),{'rc':0,'output':r,'data':{}})();"
         "print('RESULT '+json.dumps({'rc':int(r.rc),'output':r.output,'data':dict(r.data)}))")


def need_root_and_netns() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip")


def sh(*args: str, check: bool = True, timeout: float = 30) -> str:
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def run_agent(prefix: Sequence[str], cls: str, rsc: str, params: dict[str, Any], action: str,
              **kwargs: Any) -> AgentResult:
    """Run ``cls(rsc, params).action(**kwargs)`` in a child interpreter started with ``prefix``."""
    out = subprocess.run([*prefix, sys.executable, "-c", _CALL, cls, rsc, json.dumps(params), action,
                          json.dumps(kwargs)], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise AssertionError(f"agent child failed ({out.returncode}): {out.stderr[-2000:]}")
    r = json.loads(lines[-1][len("RESULT "):])
    return AgentResult(OCF(r["rc"]), r["output"], 0.0, r["data"])


def netns_prefix(netns: str) -> list[str]:
    return ["ip", "netns", "exec", netns]
