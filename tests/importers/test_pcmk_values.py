"""Pacemaker's value syntax: the plain string tests agree with the patterns they stand in for.

``pcmk_values`` answers common values without ``re`` (havm simulate's start-up)
and asks the pattern about anything else; these cases sit on both sides of
each plain test, including what the patterns accept that a plain test would not
(a trailing newline before ``$``, other scripts' digits).
"""

from __future__ import annotations

import re

import pytest

from havm.importers import pcmk_values
from havm.importers.cib_spec import _AGENT, _check_agent

IDS = ["vm1", "a", "A-b_c.d", "x" * 63, "x" * 64, "", "-a", ".a", "_a", "a b", "a:b", "a\n", "a\n\n", "é", "a@b",
       "1", "9x", "ab/c", "a\t"]


@pytest.mark.parametrize("raw", IDS)
def test_ids_as_the_pattern_says(raw: str) -> None:
    assert pcmk_values.is_havm_id(raw) == (re.match(pcmk_values._NAME, raw) is not None)
    if re.match(pcmk_values._NAME, raw):
        expected = raw
    else:
        fixed = re.sub(pcmk_values._BAD, "-", raw)
        expected = (fixed if fixed and fixed[0].isalnum() else "r" + fixed)[:63]
    assert pcmk_values.havm_id(raw) == expected


@pytest.mark.parametrize("agent", ["ocf:heartbeat:IPaddr2", "ocf:pacemaker:Dummy", "ocf::x", "ocf:a:", "ocf:a:b:c",
                                   "lsb:apache2", "systemd:getty@tty1", "service:x@", "lsb:", "stonith:x",
                                   "ocf:heartbeat:Dummy\n", "lsb:a b", "systemd:é", "ocf:a:b@c"])
def test_agents_as_the_pattern_says(agent: str) -> None:
    assert _check_agent(agent) == (re.match(_AGENT, agent) is not None)


def _score_by_pattern(value: str) -> int | None:
    v = value.strip().lower()
    if v in ("infinity", "+infinity"):
        return pcmk_values.INFINITY
    if v == "-infinity":
        return -pcmk_values.INFINITY
    if re.fullmatch(r"[+-]?\d+", v):
        return max(-pcmk_values.INFINITY, min(pcmk_values.INFINITY, int(v)))
    return None


@pytest.mark.parametrize("value", ["0", "100", "-5", "+7", " 3 ", "INFINITY", "-infinity", "+INFINITY", "99999999",
                                   "", "+", "-", "1.5", "1_000", "٣", "+٣", "abc", "--1", "1e3"])
def test_scores_as_the_pattern_says(value: str) -> None:
    expected = _score_by_pattern(value)
    if expected is None:
        with pytest.raises(ValueError):
            pcmk_values.pcmk_score(value)
    else:
        assert pcmk_values.pcmk_score(value) == expected


@pytest.mark.parametrize("value, seconds", [
    ("0", 0.0), ("30", 30.0), ("30s", 30.0), (" 20S ", 20.0), ("10min", 600.0), ("500ms", 0.5), ("1h", 3600.0),
    ("1.5s", 1.5), ("2 min", 120.0), ("PT1M", 60.0), ("P1D", 86400.0), ("P10S", 10.0), ("", 0.0), ("٣s", 3.0),
    ("30x", None), ("s", None), ("1.s", None), ("P", None), ("-5s", None)])
def test_intervals(value: str, seconds: float | None) -> None:
    if seconds is None:
        with pytest.raises(ValueError):
            pcmk_values.pcmk_interval(value)
    else:
        assert pcmk_values.pcmk_interval(value) == seconds
