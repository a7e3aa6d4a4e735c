"""Survey: import every CIB in a directory (e.g. Pacemaker's cts/scheduler/xml) and compare.

Not a test (pytest does not collect it); run by hand::

    .venv/bin/python tests/importers/cts_survey.py /path/to/pacemaker/cts/scheduler/xml [--crm-mon]

Prints how many import and validate, the most frequent reasons for dropped items, and, with
--crm-mon, how often load_state agrees with Pacemaker's crm_mon on node states and on the active
resource instances (node and role) of configured resources on cluster nodes.
"""

from __future__ import annotations

import collections
import glob
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from havm.importers.cib import import_cib, load_state
from havm.importers.report import ImportFailed


def crm_mon(path: Path) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    out = subprocess.run(["crm_mon", "-1", "--output-as=xml"], env={**os.environ, "CIB_file": str(path)},
                         capture_output=True, text=True, check=True).stdout
    root = ET.fromstring(out)
    nodes = {}
    for n in root.iter("node"):
        if n.get("online") is not None:
            nodes[n.get("name", "")] = ("unclean" if n.get("unclean") == "true"
                                        else "online" if n.get("online") == "true" else "offline")
    active = {(r.get("id", "").split(":")[0], n.get("name", ""), "promoted" if r.get("role") == "Promoted"
               else "started") for r in root.iter("resource") if r.get("active") == "true" for n in r.findall("node")}
    return nodes, active


def compare(path: Path) -> tuple[bool, bool]:
    s = load_state(path.read_text())
    members = set(s["nodes"])
    prims = {r.split(":")[0] for r in s["resources"]} - {o.split(":")[0] for o in s["orphans"]}
    ours_nodes = {n: v["status"] for n, v in s["nodes"].items()}
    ours = {(r.split(":")[0], n, rec["role"]) for r, per in s["resources"].items() for n, rec in per.items()
            if rec["role"] and r not in s["orphans"]}
    their_nodes, theirs = crm_mon(path)
    their_nodes = {n: v for n, v in their_nodes.items() if n in members}
    theirs = {x for x in theirs if x[1] in members and x[0] in prims}
    return ours_nodes == their_nodes, ours_nodes == their_nodes and ours == theirs


def main() -> None:
    files = sorted(glob.glob(os.path.join(sys.argv[1], "*.xml")))
    ok = clean = 0
    failed: collections.Counter[str] = collections.Counter()
    dropped: collections.Counter[str] = collections.Counter()
    for f in files:
        try:
            result = import_cib([(Path(f).read_text(), f)])
        except ImportFailed as e:
            failed[e.message[:100]] += 1
            continue
        ok += 1
        items = result.report.of_level("dropped")
        clean += not items
        for i in items:
            dropped[re.sub(r"'[^']*'|\d+", "X", i.why)[:90]] += 1
    print(f"{len(files)} CIBs: {ok} imported and validated ({clean} with nothing dropped), {sum(failed.values())} refused")
    for why, n in failed.most_common(10):
        print(f"  refused {n}: {why}")
    for why, n in dropped.most_common(25):
        print(f"  {n:5d} dropped: {why}")
    if "--crm-mon" in sys.argv:
        nodes_ok = all_ok = 0
        for f in files:
            n_ok, a_ok = compare(Path(f))
            nodes_ok += n_ok
            all_ok += a_ok
        print(f"load_state vs crm_mon: node states agree on {nodes_ok}/{len(files)}, "
              f"node states and active resources on {all_ok}/{len(files)}")


if __name__ == "__main__":
    main()
