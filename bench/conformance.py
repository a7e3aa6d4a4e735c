#!/usr/bin/env python3
"""Conformance of havm's planner with Pacemaker's scheduler (crm_simulate) on the same CIBs.

    .venv/bin/python bench/conformance.py --cts DIR              # Pacemaker's cts/scheduler/xml
    .venv/bin/python bench/conformance.py --cts-git PCMK.git --ref Pacemaker-2.1.5  # same, from git
    .venv/bin/python bench/conformance.py --generated            # gen_cib.py scenarios, small sizes
    .venv/bin/python bench/conformance.py FILE.xml... --verbose  # per-file results
    .venv/bin/python bench/conformance.py --cts DIR --json out.json

For each CIB it runs ``crm_simulate -x CIB -S -s --output-as=xml`` (every action of
Pacemaker's transition succeeds; the revised status is where Pacemaker puts each
resource) and ``havm.importers.cib.load_cib_simulation`` + ``havm.scheduler.plan`` on
the same file, then compares the final placement of every primitive (group members
included), the set of nodes of every clone, and the promoted nodes of promotable clones.

Each file gets one status:

- ``agree``: same placement everywhere;
- ``tie``: every difference is between nodes on which Pacemaker's own allocation scores
  are equal (``equal-score tie``) and havm's placement violates no hard constraint
  (``check_placement.py``): both answers are valid, each broke the tie its own way;
- ``disagree``: anything else; the file is put in the class of its most significant
  difference (see ``CLASSES``);
- ``unsupported``: the importer refused the CIB, its report says it dropped something
  that can change placement (``placement_relevant``), or our importer/planner raised
  (a crash: listed with the head of its traceback) or ran out of time;
- ``pacemaker-failed``: crm_simulate itself refused the file (old or new schema,
  deliberately broken inputs): not counted.

Agreement = agree / (agree + tie + disagree): the supported subset. The figure with ties
counted as agreement is printed too.

Pacemaker's helper scripts (parse_placement.py, check_placement.py, gen_cib.py) are
found in ``--tools`` (default: ../shared/bench/pacemaker next to this repository).
"""

from __future__ import annotations

import argparse
import collections
import glob
import importlib.util
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TOOLS = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench", "pacemaker"))
INF = 1_000_000

#: difference classes, most significant first (a file is filed under its first one)
CLASSES: dict[str, str] = {
    "planner-crash": "our importer or planner raised",
    "havm-stopped": "havm leaves a resource stopped where Pacemaker places it",
    "pacemaker-stopped": "Pacemaker leaves a resource stopped where havm places it",
    "pacemaker-multiple": "Pacemaker leaves a resource active on several nodes (blocked/unmanaged)",
    "clone-fewer": "havm runs fewer clone instances than Pacemaker",
    "clone-more": "havm runs more clone instances than Pacemaker",
    "promotion": "promoted instances on other nodes (or a different number of them)",
    "order-colocation": "order/colocation/group semantic difference (other node, unequal scores)",
    "stickiness-utilization": "stickiness/utilization arithmetic (other node, unequal scores)",
    "utilization-order": "with utilization, havm on a node Pacemaker itself scores higher "
                         "(capacity taken in another order)",
    "clone-nodes": "clone instances on other nodes (same count, unequal scores)",
    "score": "other node with unequal scores, no constraint, stickiness or utilization involved",
    "tie-invalid": "equal-score tie, but havm's placement fails check_placement.py",
    "equal-score tie": "tie broken differently between equal-score nodes",
}

#: dropped report items that cannot change where resources are placed (matched on what + why)
IRRELEVANT_DROPS = [
    r"tuning of Pacemaker", r"a fencing setting", r"access control", r"probes?",
    r"cancels operations", r"no longer configured", r"<op\b", r"operation", r"\bop_defaults\b",
    r"<acls?\b", r"<acl_", r"<tags?\b", r"<alerts?\b", r"<alert\b", r"<fencing-topology", r"<fencing-level",
    r"description", r"utilization.*no placement", r"record-pending",
    r"dc-version", r"cluster-infrastructure", r"cluster-name", r"have-watchdog", r"last-lrm-refresh",
    r"notif", r"stonith", r"fence", r"port map", r"pcmk_host", r"timeout", r"interval",
    # ordering of clone instances only; defaults that havm has built in; names Pacemaker ignores too
    r"\bordered=", r"collocated=true", r"stop-all-resources=false", r"has no such cluster property",
    r"has no such meta option", r"restart-type", r"an nvpair needs both",
]
_IRRELEVANT = re.compile("|".join(IRRELEVANT_DROPS), re.I)


def placement_relevant(what: str, why: str) -> bool:
    """Whether a dropped import item can change placement (conservative: unknown -> yes)."""
    return not _IRRELEVANT.search(what + " " + why)


# ---------------------------------------------------------------------------- helpers


def _load_tool(tools: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"pcmk_{name}", os.path.join(tools, f"{name}.py"))
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {name}.py from {tools}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _score(s: str | None) -> int:
    s = (s or "0").strip().lower()
    if s in ("infinity", "+infinity"):
        return INF
    if s == "-infinity":
        return -INF
    try:
        return max(-INF, min(INF, int(s)))
    except ValueError:
        return 0


class _Alarm(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Alarm()


# ---------------------------------------------------------------------------- the two sides


def run_pacemaker(path: str, parse_sim_xml: Any, timeout: float) -> dict[str, Any]:
    """crm_simulate's final placement, promoted nodes and allocation scores, as JSON data."""
    try:
        p = subprocess.run(["crm_simulate", "-x", path, "-S", "-s", "--output-as=xml"],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"crm_simulate timed out after {timeout:g} s"}
    if p.returncode != 0 or "<revised_cluster_status" not in p.stdout:
        err = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"crm_simulate rc={p.returncode}: {err[:200]}"}
    out = parse_sim_xml(p.stdout)
    root = ET.fromstring(p.stdout)
    promoted: dict[str, list[str]] = {}
    rev = root.find("revised_cluster_status")
    res = rev.find("resources") if rev is not None else None
    for clone in (res.findall("clone") if res is not None else []):
        if clone.get("multi_state") == "true":
            promoted[clone.get("id", "")] = sorted(
                n.get("name", "") for r in clone.iter("resource") if r.get("role") in ("Promoted", "Master")
                for n in r.findall("node"))
    scores: dict[str, dict[str, int]] = {}
    for w in root.iter("node_weight"):
        scores.setdefault(w.get("id", ""), {})[w.get("node", "")] = _score(w.get("score"))
    return {"placement": out["placement"], "clones": out["clones"], "promoted": promoted,
            "initial": out["initial"], "nodes": out["nodes"], "scores": scores}


def run_havm(path: str, timeout: float) -> dict[str, Any]:
    """Our importer + planner on the CIB: placement, promoted nodes, dropped import items."""
    from havm.importers.cib import load_cib_simulation
    from havm.importers.report import ImportFailed, ImportReport
    from havm.scheduler import plan

    report = ImportReport()
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    stage = "import"
    try:
        spec, state = load_cib_simulation(path, report)
        stage = "plan"
        tr = plan(spec, state)
    except ImportFailed as e:
        return {"error": "import-refused", "detail": str(e)[:300]}
    except _Alarm:
        return {"error": "timeout", "detail": f"{stage} took over {timeout:g} s"}
    except Exception as e:  # a crash of ours: reported with its traceback
        tb = traceback.format_exc().strip().splitlines()
        return {"error": f"{stage}-crash", "detail": f"{type(e).__name__}: {e}"[:300],
                "traceback": tb[-8:]}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    dropped = [{"what": i.what, "why": i.why, "line": i.line} for i in report.of_level("dropped")]
    placement = {k: list(v) if isinstance(v, tuple) else v for k, v in tr.placement.items()}
    return {"placement": placement, "promoted": {k: list(v) for k, v in tr.promoted.items()},
            "primitives": sorted(spec.primitives), "dropped": dropped}


# ---------------------------------------------------------------------------- comparison


def cib_relations(path: str) -> dict[str, Any]:
    """Ids in colocations/orders/groups, the placement strategy, group of each member."""
    root = ET.parse(path).getroot()
    related: set[str] = set()
    group_of: dict[str, str] = {}
    for g in root.iter("group"):
        for p in g.findall("primitive"):
            group_of[p.get("id", "")] = g.get("id", "")
    partners: dict[str, set[str]] = {}

    def link(a: str, b: str) -> None:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)

    for member, gid in group_of.items():
        link(member, gid)
    for c in root.iter("rsc_colocation"):
        if c.get("rsc") and c.get("with-rsc"):
            link(c.get("rsc", ""), c.get("with-rsc", ""))
        for rs in c.iter("resource_set"):
            refs = [r.get("id", "") for r in rs.iter("resource_ref")]
            for a, b in zip(refs, refs[1:], strict=False):
                link(a, b)
    for tag in ("rsc_colocation", "rsc_order"):
        for c in root.iter(tag):
            for a in ("rsc", "with-rsc", "first", "then", "from", "to"):
                if c.get(a):
                    related.add(c.get(a, ""))
            for ref in c.iter("resource_ref"):
                related.add(ref.get("id", ""))
    strategy = "default"
    for nv in root.iter("nvpair"):
        if nv.get("name") in ("placement-strategy", "placement_strategy"):
            strategy = nv.get("value") or "default"
    return {"related": related, "group_of": group_of, "strategy": strategy, "partners": partners}


def compare(pcmk: dict[str, Any], ours: dict[str, Any], rel: dict[str, Any]) -> list[dict[str, Any]]:
    """Differences between Pacemaker's and havm's final placements, each with its class.

    ``pcmk``: run_pacemaker's data; ``ours``: run_havm's data, ids as havm writes them
    (Pacemaker ids are mapped with the importer's ``havm_id``, node names too).
    """
    from havm.importers.output import havm_id

    ours_pl = ours["placement"]
    node_back = {havm_id(n): n for n in pcmk.get("nodes", {})}
    scores = pcmk.get("scores", {})

    def back(node: Any) -> Any:
        if isinstance(node, list):
            return sorted(node_back.get(n, n) for n in node)
        return node_back.get(node, node) if node is not None else None

    def equal_scores(rid: str, a: str, b: str) -> bool:
        s = scores.get(rid, {})
        return a in s and b in s and s[a] == s[b] and s[a] > -INF

    diffs: list[dict[str, Any]] = []
    for rid, pn in sorted(pcmk["placement"].items()):
        hid = havm_id(rid)
        if hid not in ours_pl:
            continue  # not configured for us (orphan, dropped): the report decides
        hn = back(ours_pl[hid])
        if isinstance(hn, list):  # a primitive inside a clone for us: compared as a clone
            continue
        if pn == hn:
            continue
        if isinstance(pn, list):
            cls = "pacemaker-multiple"  # Pacemaker leaves it active on several nodes (blocked, unmanaged)
        elif pn is None:
            cls = "pacemaker-stopped"
        elif hn is None:
            cls = "havm-stopped"
        elif equal_scores(rid, pn, hn):
            cls = "equal-score tie"
        elif rel["strategy"] != "default" and _higher(scores.get(rid, {}), hn, pn):
            cls = "utilization-order"
        elif rid in rel["related"] or rel["group_of"].get(rid) in rel["related"] or rid in rel["group_of"]:
            cls = "order-colocation"
        elif pcmk["initial"].get(rid) in (pn, hn) or rel["strategy"] != "default":
            cls = "stickiness-utilization"
        else:
            cls = "score"
        diffs.append({"resource": rid, "pacemaker": pn, "havm": hn, "class": cls})
    # A resource that only follows a colocated partner (or its group) placed elsewhere by an
    # equal-score tie is part of that tie: its own scores differ because its partner moved.
    partners = rel.get("partners", {})
    tied = {d["resource"] for d in diffs if d["class"] == "equal-score tie"}
    changed = True
    while changed:
        changed = False
        for d in diffs:
            if d["class"] == "order-colocation" and tied & _reach(d["resource"], partners):
                d["class"] = "equal-score tie"
                d["note"] = "follows a colocated partner placed by a tie"
                tied.add(d["resource"])
                changed = True
    for cid, pnodes in sorted(pcmk["clones"].items()):
        hid = havm_id(cid)
        if hid not in ours_pl or not isinstance(ours_pl[hid], list):
            continue
        hnodes = back(ours_pl[hid])
        p, h = set(pnodes), set(hnodes)
        if p != h:
            if len(h) < len(p):
                cls = "clone-fewer"
            elif len(h) > len(p):
                cls = "clone-more"
            else:
                inst = {n: scores.get(cid, {}).get(n, -INF) for n in p ^ h}  # the clone's own scores
                same = len(set(inst.values())) == 1 and next(iter(inst.values())) > -INF
                cls = "equal-score tie" if same else "clone-nodes"
            diffs.append({"resource": cid, "pacemaker": sorted(p), "havm": sorted(h), "class": cls})
        pprom = pcmk.get("promoted", {}).get(cid)
        hprom = back(ours.get("promoted", {}).get(hid, []))
        if pprom is not None and sorted(pprom) != sorted(hprom):
            diffs.append({"resource": cid, "pacemaker": {"promoted": sorted(pprom)},
                          "havm": {"promoted": sorted(hprom)}, "class": "promotion"})
    return diffs


def _higher(s: dict[str, int], a: str, b: str) -> bool:
    """Whether Pacemaker's own score on node a is above its score on node b."""
    return a in s and b in s and s[a] > s[b]


def _reach(rid: str, partners: dict[str, set[str]]) -> set[str]:
    """Resources colocated with rid, directly or through groups and chains of colocations."""
    seen, todo = {rid}, [rid]
    while todo:
        for q in partners.get(todo.pop(), ()):
            if q not in seen:
                seen.add(q)
                todo.append(q)
    return seen - {rid}


def validity(path: str, pcmk: dict[str, Any], ours: dict[str, Any], check_mod: Any) -> list[str]:
    """check_placement.py's hard-constraint violations of havm's placement (Pacemaker names)."""
    from havm.importers.output import havm_id

    node_back = {havm_id(n): n for n in pcmk.get("nodes", {})}
    c = check_mod.load_cib(path)
    # Node state as Pacemaker sees it (newer CIBs write in_ccm as a timestamp).
    c["online"] = {n for n, st in pcmk.get("nodes", {}).items() if st == "online"}
    placement: dict[str, Any] = {}
    clones: dict[str, list[str]] = {}
    for r in c["prims"]:
        v = ours["placement"].get(havm_id(r))
        if isinstance(v, str) or v is None:
            placement[r] = node_back.get(v, v) if v else None
    for cid in c["clones"]:
        v = ours["placement"].get(havm_id(cid))
        if isinstance(v, list):
            clones[cid] = [str(node_back.get(n, n)) for n in v]
    violations, _ = check_mod.check(c, placement, clones)
    return list(violations)


def _in_nodes(path: str, line: int | None) -> bool:
    """Whether a line of the CIB is inside <nodes> (node attributes change placement; a
    resource's rule-dependent parameters do not)."""
    if line is None:
        return True
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    start = next((i for i, t in enumerate(lines, 1) if "<nodes" in t), None)
    end = next((i for i, t in enumerate(lines, 1) if "</nodes>" in t), None)
    return start is not None and end is not None and start <= line <= end


def _has_failed_start(path: str) -> bool:
    """Whether the status records a failed start (only then does start-failure-is-fatal matter)."""
    return any(op.get("operation") == "start" and op.get("rc-code", "0") != "0"
               for op in ET.parse(path).getroot().iter("lrm_rsc_op"))


def classify(path: str, pcmk: dict[str, Any], ours: dict[str, Any], check_mod: Any | None) -> dict[str, Any]:
    """One file's status and class from both sides' data."""
    if "error" in pcmk:
        return {"status": "pacemaker-failed", "detail": pcmk["error"]}
    if "error" in ours:
        out = {"status": "unsupported", "reason": ours["error"], "detail": ours.get("detail", "")}
        if "traceback" in ours:
            out["traceback"] = ours["traceback"]
        return out
    relevant = [d for d in ours["dropped"] if placement_relevant(d["what"], d["why"])
                and not (d["what"].startswith("<instance_attributes") and not _in_nodes(path, d["line"]))]
    if any("start-failure-is-fatal" in d["what"] for d in relevant) and not _has_failed_start(path):
        relevant = [d for d in relevant if "start-failure-is-fatal" not in d["what"]]
    if relevant:
        return {"status": "unsupported", "reason": "feature-dropped",
                "detail": f"{relevant[0]['what']}: {relevant[0]['why']}"[:300],
                "dropped": [f"{d['what']}: {d['why']}"[:200] for d in relevant[:5]]}
    rel = cib_relations(path)
    diffs = compare(pcmk, ours, rel)
    if not diffs:
        return {"status": "agree", "ignored_drops": len(ours["dropped"])}
    violations: list[str] = []
    if check_mod is not None:
        try:
            violations = validity(path, pcmk, ours, check_mod)
        except Exception as e:  # check_placement.py knows gen_cib.py's forms only
            violations = [f"check_placement.py could not read this CIB: {type(e).__name__}: {e}"]
    if all(d["class"] == "equal-score tie" for d in diffs):
        if not violations:
            return {"status": "tie", "class": "equal-score tie", "diffs": diffs}
        return {"status": "disagree", "class": "tie-invalid", "diffs": diffs, "violations": violations[:5]}
    order = list(CLASSES)
    cls = min((d["class"] for d in diffs), key=order.index)
    return {"status": "disagree", "class": cls, "diffs": diffs, "violations": violations[:5]}


# ---------------------------------------------------------------------------- driver

_TOOLS: dict[str, Any] = {}


def _init(tools: str) -> None:
    _TOOLS["parse"] = _load_tool(tools, "parse_placement").parse_sim_xml
    _TOOLS["check"] = _load_tool(tools, "check_placement")


def check_file(args: tuple[str, float]) -> dict[str, Any]:
    """Worker: both sides on one file, classified."""
    path, timeout = args
    t0 = time.perf_counter()
    pcmk = run_pacemaker(path, _TOOLS["parse"], timeout)
    t1 = time.perf_counter()
    ours = run_havm(path, timeout) if "error" not in pcmk else {"error": "not run"}
    t2 = time.perf_counter()
    try:
        res = classify(path, pcmk, ours, _TOOLS["check"])
    except Exception as e:
        res = {"status": "unsupported", "reason": "compare-crash", "detail": f"{type(e).__name__}: {e}"[:300],
               "traceback": traceback.format_exc().strip().splitlines()[-6:]}
    res.update(file=path, pacemaker_s=round(t1 - t0, 3), havm_s=round(t2 - t1, 3))
    return res


def generate(tools: str, outdir: str, sizes: list[tuple[int, int]], seeds: list[int]) -> list[str]:
    """gen_cib.py's scenarios at small sizes (with and without fencing) into outdir."""
    gen = os.path.join(tools, "gen_cib.py")
    scenarios = ["fresh", "steady", "node-failure", "constraints", "utilization", "mixed"]
    files = []
    for sc in scenarios:
        for n, m in sizes:
            for seed in seeds:
                for fencing in ([False, True] if sc in ("node-failure", "mixed") else [False]):
                    name = f"{sc}{'-fencing' if fencing else ''}-{n}x{m}-s{seed}.xml"
                    out = os.path.join(outdir, name)
                    cmd = [sys.executable, gen, "-n", str(n), "-m", str(m), "--scenario", sc,
                           "--seed", str(seed), "-o", out] + (["--fencing"] if fencing else [])
                    subprocess.run(cmd, check=True, capture_output=True)
                    files.append(out)
    return files


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    status = collections.Counter(r["status"] for r in results)
    supported = status["agree"] + status["tie"] + status["disagree"]
    classes: dict[str, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: (len(json.dumps(r.get("diffs", []))), r["file"])):
        if r["status"] in ("disagree", "tie"):
            c = classes.setdefault(r["class"], {"files": 0, "meaning": CLASSES[r["class"]],
                                                "example": os.path.basename(r["file"]),
                                                "example_diffs": [d for d in r["diffs"]
                                                                  if d["class"] == r["class"]][:3]})
            c["files"] += 1
    unsupported = collections.Counter(r["reason"] for r in results if r["status"] == "unsupported")
    dropped = collections.Counter(re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "X", r["detail"])[:110]
                                  for r in results if r.get("reason") == "feature-dropped")
    crashes = [{"file": os.path.basename(r["file"]), "reason": r["reason"], "detail": r["detail"],
                "traceback": r.get("traceback", [])}
               for r in results if r["status"] == "unsupported" and r["reason"] not in
               ("feature-dropped", "import-refused")]
    return {
        "files": len(results),
        "status": dict(status),
        "supported": supported,
        "agreement_pct": round(100 * status["agree"] / supported, 1) if supported else None,
        "agreement_with_ties_pct": round(100 * (status["agree"] + status["tie"]) / supported, 1)
        if supported else None,
        "classes": dict(sorted(classes.items(), key=lambda kv: -kv[1]["files"])),
        "unsupported": dict(unsupported),
        "top_dropped": dict(dropped.most_common(15)),
        "crashes": crashes,
        "pacemaker_failed": sorted(os.path.basename(r["file"]) for r in results
                                   if r["status"] == "pacemaker-failed"),
    }


def print_summary(title: str, s: dict[str, Any]) -> None:
    st = s["status"]
    print(f"== {title}: {s['files']} CIBs")
    print(f"   agree {st.get('agree', 0)}, equal-score tie {st.get('tie', 0)}, disagree {st.get('disagree', 0)}, "
          f"unsupported {st.get('unsupported', 0)}, crm_simulate failed {st.get('pacemaker-failed', 0)}")
    if s["supported"]:
        print(f"   agreement over the supported subset ({s['supported']} CIBs): {s['agreement_pct']}% "
              f"({s['agreement_with_ties_pct']}% counting equal-score ties as agreement)")
    for name, c in s["classes"].items():
        print(f"   {c['files']:4d}  {name}: {c['meaning']}")
        for d in c["example_diffs"][:2]:
            print(f"         e.g. {c['example']}: {d['resource']}: Pacemaker {d['pacemaker']}, havm {d['havm']}")
    if s["unsupported"]:
        print("   unsupported: " + ", ".join(f"{k} {v}" for k, v in sorted(s["unsupported"].items())))
    for why, n in s["top_dropped"].items():
        print(f"   {n:4d}  dropped: {why}")
    by_sig: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for c in s["crashes"]:
        by_sig.setdefault((c["reason"], *c["traceback"][-3:-1]), []).append(c)
    for crashes in by_sig.values():
        c = crashes[0]
        names = ", ".join(x["file"] for x in crashes)
        print(f"   CRASH ({len(crashes)}) {c['reason']}: {c['detail']}  [{names}]")
        for line in c["traceback"][-4:]:
            print(f"         {line}")


def print_verbose(results: list[dict[str, Any]]) -> None:
    for r in sorted(results, key=lambda r: r["file"]):
        extra = r.get("class") or r.get("reason") or ""
        print(f"{os.path.basename(r['file']):55s} {r['status']:17s} {extra}")
        for d in r.get("diffs", [])[:4]:
            print(f"    {d['class']}: {d['resource']}: Pacemaker {d['pacemaker']}, havm {d['havm']}")
        for v in r.get("violations", [])[:2]:
            print(f"    violation: {v}")
        if r["status"] in ("unsupported", "pacemaker-failed") and r.get("detail"):
            print(f"    {r['detail'][:160]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="CIB files")
    ap.add_argument("--cts", metavar="DIR", help="a directory of CIBs (Pacemaker's cts/scheduler/xml)")
    ap.add_argument("--cts-git", metavar="GITDIR", help="take cts/scheduler/xml from this Pacemaker git "
                    "directory at --ref (extracted to a temporary directory)")
    ap.add_argument("--ref", default="Pacemaker-2.1.5", help="tag or commit for --cts-git (default: "
                    "Pacemaker-2.1.5, the version of Debian 12's crm_simulate)")
    ap.add_argument("--generated", action="store_true", help="gen_cib.py scenarios at small sizes")
    ap.add_argument("--sizes", default="3x10,5x30", help="sizes for --generated (default 3x10,5x30)")
    ap.add_argument("--seeds", default="1,2,3", help="seeds for --generated (default 1,2,3)")
    ap.add_argument("--tools", default=DEFAULT_TOOLS, help="directory of gen_cib.py, parse_placement.py, "
                    "check_placement.py")
    ap.add_argument("--jobs", "-j", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0, help="per file and per side (s)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files of each set")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="write the summary and per-file results as JSON ('-': stdout)")
    a = ap.parse_args(argv)

    sets: list[tuple[str, list[str]]] = []
    if a.cts:
        sets.append((f"cts ({a.cts})", sorted(glob.glob(os.path.join(a.cts, "*.xml")))))
    tmp = None
    cts_tmp = None
    if a.cts_git:
        cts_tmp = tempfile.TemporaryDirectory(prefix="havm-cts-")
        archive = subprocess.run(["git", "--git-dir", a.cts_git, "archive", a.ref, "cts/scheduler/xml"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", cts_tmp.name], input=archive, check=True)
        xml_dir = os.path.join(cts_tmp.name, "cts", "scheduler", "xml")
        sets.append((f"cts ({a.ref})", sorted(glob.glob(os.path.join(xml_dir, "*.xml")))))
    if a.generated:
        tmp = tempfile.TemporaryDirectory(prefix="havm-conformance-")
        sizes = [tuple(int(x) for x in s.split("x")) for s in a.sizes.split(",")]
        seeds = [int(x) for x in a.seeds.split(",")]
        sets.append(("generated (gen_cib.py)", generate(a.tools, tmp.name, sizes, seeds)))  # type: ignore[arg-type]
    if a.files:
        sets.append(("files", a.files))
    if not sets:
        ap.error("give CIB files, --cts DIR, --cts-git GITDIR or --generated")
    if a.limit:
        sets = [(t, f[: a.limit]) for t, f in sets]

    report: dict[str, Any] = {"pacemaker": subprocess.run(["crm_simulate", "--version"], capture_output=True,
                                                          text=True).stdout.split("\n")[0], "sets": {}}
    with multiprocessing.get_context("fork").Pool(a.jobs, initializer=_init, initargs=(a.tools,),
                                                  maxtasksperchild=50) as pool:
        for title, files in sets:
            t0 = time.perf_counter()
            results = list(pool.imap_unordered(check_file, [(f, a.timeout) for f in files], chunksize=1))
            s = summarize(results)
            s["wall_s"] = round(time.perf_counter() - t0, 1)
            if a.verbose:
                print_verbose(results)
            if a.json != "-":
                print_summary(title, s)
            report["sets"][title] = {"summary": s, "results": sorted(results, key=lambda r: r["file"])}
    for t in (tmp, cts_tmp):
        if t is not None:
            t.cleanup()
    if a.json:
        data = json.dumps(report, indent=1, default=str)
        if a.json == "-":
            print(data)
        else:
            with open(a.json, "w") as f:
                f.write(data + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
