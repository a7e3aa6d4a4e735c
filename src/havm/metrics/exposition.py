"""Prometheus text exposition format 0.0.4, written by hand (no dependency).

A ``Family`` is one metric: name, type, help and its samples. ``render``
turns a list of families into the text Prometheus scrapes
(``Content-Type: text/plain; version=0.0.4``). Pure: no clock, no I/O.

Guarantees: names and label names are checked against Prometheus' grammar
(``ValueError`` otherwise, a programming error); label values and help text are
escaped as the format requires (backslash, double quote, newline); each family
appears once, its ``# HELP`` and ``# TYPE`` lines first; histogram buckets are
cumulative and end with ``le="+Inf"`` equal to ``_count``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

Labels = Mapping[str, str]
MetricType = Literal["counter", "gauge", "histogram", "untyped"]


@dataclass(frozen=True)
class Sample:
    suffix: str  # "" for the family's own name, "_bucket", "_sum", "_count" (histograms)
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass
class Family:
    name: str
    type: MetricType
    help: str
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"bad metric name {self.name!r}")
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must end in _total")

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append(Sample("", _labels(labels), float(value)))
        return self

    def add_histogram(self, bounds: Sequence[float], counts: Sequence[int], total: float, **labels: str) -> Family:
        """``counts[i]`` observations fell in bucket i (not cumulative): ``len(bounds) + 1``
        counts, the last one for values above every bound."""
        if self.type != "histogram":
            raise ValueError(f"{self.name} is not a histogram")
        if len(counts) != len(bounds) + 1:
            raise ValueError(f"{self.name}: {len(bounds)} bounds need {len(bounds) + 1} counts, got {len(counts)}")
        if list(bounds) != sorted(bounds):
            raise ValueError(f"{self.name}: bucket bounds must increase")
        base = _labels(labels)
        running = 0
        for bound, n in zip([*bounds, math.inf], counts, strict=True):
            running += n
            self.samples.append(Sample("_bucket", (*base, ("le", format_value(bound))), float(running)))
        self.samples.append(Sample("_sum", base, float(total)))
        self.samples.append(Sample("_count", base, float(running)))
        return self


def _labels(labels: Labels) -> tuple[tuple[str, str], ...]:
    for k in labels:
        if not _LABEL.match(k) or k.startswith("__") or k == "le":
            raise ValueError(f"bad label name {k!r}")
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _escape_label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    seen: set[str] = set()
    for fam in families:
        if fam.name in seen:
            raise ValueError(f"metric family {fam.name} rendered twice")
        seen.add(fam.name)
        lines.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.type}")
        for s in fam.samples:
            label_text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in s.labels)
            lines.append(f"{fam.name}{s.suffix}{{{label_text}}} {format_value(s.value)}" if label_text
                         else f"{fam.name}{s.suffix} {format_value(s.value)}")
    return "\n".join(lines) + "\n"
