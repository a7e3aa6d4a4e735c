"""Configuration versions and the rule that orders them.

Every stored configuration carries ``(admin_epoch, epoch, digest)``.

- ``epoch`` grows by one with every change committed through the controller.
- ``admin_epoch`` is raised only on an operator's explicit request
  (``havm config apply --force``) to make a configuration win over any other,
  e.g. to resolve a divergence by hand; a higher admin_epoch beats any epoch.
- ``digest`` is the SHA-256 of the configuration text.

The rule for two versions, as Pacemaker's CIB: the higher ``admin_epoch`` wins,
then the higher ``epoch``; two different texts at the same epochs (possible
only if two partitions each committed a change, which quorum prevents, or if
nodes were bootstrapped from different files) are ordered by digest, so every
node picks the same winner without talking. The loser is kept beside the
winner (``config.rejected.json``) and logged loudly, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ConfigVersion:
    admin_epoch: int
    epoch: int
    digest: str

    def next(self, digest: str, force: bool = False) -> ConfigVersion:
        if force:
            return ConfigVersion(self.admin_epoch + 1, 0, digest)
        return ConfigVersion(self.admin_epoch, self.epoch + 1, digest)

    def short(self) -> str:
        return f"{self.admin_epoch}.{self.epoch}:{self.digest[:8]}"

    def to_wire(self) -> list[int | str]:
        return [self.admin_epoch, self.epoch, self.digest]

    @classmethod
    def from_wire(cls, value: object) -> ConfigVersion:
        if (not isinstance(value, list | tuple) or len(value) != 3
                or not isinstance(value[0], int) or not isinstance(value[1], int)
                or not isinstance(value[2], str) or isinstance(value[0], bool) or isinstance(value[1], bool)):
            raise ValueError(f"expected a config version [admin_epoch, epoch, digest], got {value!r}")
        if value[0] < 0 or value[1] < 0:
            raise ValueError("config epochs cannot be negative")
        return cls(value[0], value[1], value[2])


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
            version = ConfigVersion.from_wire([data["admin_epoch"], data["epoch"], data["digest"]])
            text = data["text"]
        except KeyError as e:
            raise ValueError(f"missing field {e.args[0]!r}") from None
        if not isinstance(text, str):
            raise ValueError("field 'text' must be a string")
        return cls(version, text, str(data.get("changed_by", "")), float(data.get("changed_at", 0.0)),
                   str(data.get("comment", "")))
