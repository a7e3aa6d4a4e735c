"""What an import carried over, changed, or could not carry: the import report.

An importer never drops anything silently. Every input element it does not
carry over unchanged gets one ``ReportItem`` naming where it was (file, line,
the element or directive), what it was, and why. Three levels:

- ``info``: carried over with a change the reader should know of (a renamed id,
  a Heartbeat script replaced by the equivalent OCF agent);
- ``warning``: carried over, but check it before use (placeholder addresses,
  a guessed address mapping, a short key);
- ``dropped``: not carried over; the reason says what havm lacks or why it
  does not apply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from havm.errors import HavmError

Level = Literal["info", "warning", "dropped"]
LEVELS: tuple[Level, ...] = ("info", "warning", "dropped")


@dataclass(frozen=True)
class ReportItem:
    level: Level
    file: str
    line: int | None
    what: str  # the element or directive, e.g. '<rsc_ticket id="t1">' or 'serial /dev/ttyS0'
    why: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.level}: {self.what}: {self.why}"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ImportReport:
    """The report being built by one import (mutable while importing, then read)."""

    items: list[ReportItem] = field(default_factory=list)

    def add(self, level: Level, file: str, line: int | None, what: str, why: str) -> None:
        self.items.append(ReportItem(level, file, line, what, why))

    def info(self, file: str, line: int | None, what: str, why: str) -> None:
        self.add("info", file, line, what, why)

    def warn(self, file: str, line: int | None, what: str, why: str) -> None:
        self.add("warning", file, line, what, why)

    def drop(self, file: str, line: int | None, what: str, why: str) -> None:
        self.add("dropped", file, line, what, why)

    def of_level(self, level: Level) -> list[ReportItem]:
        return [i for i in self.items if i.level == level]

    def counts(self) -> dict[str, int]:
        return {level: len(self.of_level(level)) for level in LEVELS}

    def render(self) -> str:
        """Human-readable text: dropped first, then warnings, then info."""
        lines: list[str] = []
        for level in ("dropped", "warning", "info"):
            lines.extend(str(i) for i in self.items if i.level == level)
        c = self.counts()
        lines.append(f"{c['dropped']} dropped, {c['warning']} warning(s), {c['info']} note(s)")
        return "\n".join(lines)


class ImportFailed(HavmError):
    """The input cannot be imported at all (unreadable, malformed, contradictory).

    Names the file, the line and what was expected, as a config error does.
    """

    code = "import-failed"
    exit_status = 3
    http_status = 422

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file, self.line, self.message = file, line, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class ImportResult:
    """A validated configuration document plus the report of how it was made.

    ``document`` is the plain dict written as YAML; ``text`` is that YAML, already
    checked with ``havm.config.load.parse_config_text``. ``key`` is the content
    of the key file to write beside it (None: no key was imported).
    """

    document: dict[str, object]
    text: str  # "" when not rendered (render=False, for havm simulate)
    report: ImportReport
    key: str | None = None
    placeholders: tuple[str, ...] = ()
    config: Any = None  # the validated havm.config.schema.ClusterConfig
