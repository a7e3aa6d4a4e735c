"""Configuration versions and the rule that orders them.

Every stored configuration carries ``(admin_epoch, term, epoch, digest)``.

- ``epoch`` grows by one with every change committed through the controller.
- ``term`` is the controller term the version was made in (``store/term.py``):
  a controller may store a change only after a majority of votes promised
  its term, and every later controller's term is higher. A controller cut off
  in a minority may still store a change before it notices; that change, never
  acknowledged, has an older term than anything the majority's new controller
  commits, so it always loses, even at the same epoch.
- ``admin_epoch`` is raised only on an operator's explicit request
  (``havm config apply --force``) to make a configuration win over any other,
  e.g. to resolve a divergence by hand; a higher admin_epoch beats any epoch.
- ``digest`` is the SHA-256 of the configuration text.

The rule for two versions: the higher ``admin_epoch`` wins (as Pacemaker's
CIB), then the higher ``term``, then the higher ``epoch`` (as Raft compares
logs: last term, then index); two different texts at the same numbers
(possible only if nodes were bootstrapped from different files, or in a
two-node cluster whose halves each stored a change no majority held) are
ordered by digest, so every node picks the same winner without talking. The loser is kept beside the
winner (``config.rejected.json``) and logged loudly, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import total_ordering
from typing import TypeGuard


def whole(v: object) -> TypeGuard[int]:
    """A whole number (an int >= 0, not a bool), as versions and terms are on the wire."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


@total_ordering
@dataclass(frozen=True)
class ConfigVersion:
    admin_epoch: int
    epoch: int
    digest: str
    term: int = 0

    def key(self) -> tuple[int, int, int, str]:
        """What orders versions: (admin_epoch, term, epoch, digest)."""
        return (self.admin_epoch, self.term, self.epoch, self.digest)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ConfigVersion):
            return NotImplemented
        return self.key() < other.key()

    def same_epoch(self, other: ConfigVersion) -> bool:
        return (self.admin_epoch, self.epoch) == (other.admin_epoch, other.epoch)

    def next(self, digest: str, force: bool = False, term: int | None = None) -> ConfigVersion:
        """The version after this one, made by a controller in ``term`` (default: this one's)."""
        t = self.term if term is None else term
        if force:
            return ConfigVersion(self.admin_epoch + 1, 0, digest, t)
        return ConfigVersion(self.admin_epoch, self.epoch + 1, digest, t)

    def short(self) -> str:
        return f"{self.admin_epoch}.{self.epoch}:{self.digest[:8]}"

    def long(self) -> str:
        """``short()`` with the term, for logs about divergence."""
        return f"{self.short()} (term {self.term})"

    def to_wire(self) -> list[int | str]:
        """``[admin_epoch, epoch, digest, term]`` (the first three as before terms existed)."""
        return [self.admin_epoch, self.epoch, self.digest, self.term]

    @classmethod
    def from_wire(cls, value: object) -> ConfigVersion:
        if (not isinstance(value, list | tuple) or len(value) not in (3, 4)
                or not isinstance(value[0], int) or not isinstance(value[1], int)
                or not isinstance(value[2], str) or isinstance(value[0], bool) or isinstance(value[1], bool)):
            raise ValueError(f"expected a config version [admin_epoch, epoch, digest, term], got {value!r}")
        if value[0] < 0 or value[1] < 0:
            raise ValueError("config epochs cannot be negative")
        term = value[3] if len(value) == 4 else 0
        if not whole(term):
            raise ValueError(f"a config version's term must be a whole number, got {term!r}")
        return cls(value[0], value[1], value[2], int(term))


@dataclass(frozen=True)
class StoredConfig:
    """One configuration as it is persisted and replicated."""

    version: ConfigVersion
    text: str
    changed_by: str = ""
    changed_at: float = 0.0
    comment: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "admin_epoch": self.version.admin_epoch,
            "epoch": self.version.epoch,
            "digest": self.version.digest,
            "term": self.version.term,
            "text": self.text,
            "changed_by": self.changed_by,
            "changed_at": self.changed_at,
            "comment": self.comment,
        }

    @classmethod
    def from_json(cls, data: object) -> StoredConfig:
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        try:
            version = ConfigVersion.from_wire([data["admin_epoch"], data["epoch"], data["digest"],
                                               data.get("term", 0)])
            text = data["text"]
        except KeyError as e:
            raise ValueError(f"missing field {e.args[0]!r}") from None
        if not isinstance(text, str):
            raise ValueError("field 'text' must be a string")
        return cls(version, text, str(data.get("changed_by", "")), float(data.get("changed_at", 0.0)),
                   str(data.get("comment", "")))
