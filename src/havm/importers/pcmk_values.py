"""Values in Pacemaker's syntax (booleans, scores, intervals, roles, ids) and its option tables.

Shared by the full CIB importer (through ``cibxml``, which re-exports them) and
by ``havm simulate``'s lean reader, which must start fast: this module imports
nothing. Each check first tries a plain string test that accepts only what the
pattern accepts, and asks the regular expression (``re``, imported on first
use) about anything else, so the answers are the pattern's, exactly, while a
run over a generated CIB never imports ``re`` (with ``enum`` and ``functools``
behind it, several milliseconds of start-up).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

INFINITY = 1_000_000  # Pacemaker's score INFINITY (the config's is the same number)

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_BAD = r"[^A-Za-z0-9_.-]"
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def norm(name: str) -> str:
    """Option name in today's spelling: ``target_role`` -> ``target-role``."""
    return name.strip().lower().replace("_", "-")


def is_havm_id(raw: str) -> bool:
    """Is ``raw`` already a valid havm name (so ``havm_id`` keeps it as it is)?"""
    if 0 < len(raw) <= 63 and raw.isascii() and raw[0].isalnum() and _ID_CHARS.issuperset(raw):
        return True  # (the pattern says so; it also takes a trailing newline, which this test does not)
    import re

    return re.match(_NAME, raw) is not None


def havm_id(raw: str) -> str:
    """A havm name for a foreign id: invalid characters become '-', at most 63 long.

    Deterministic (no uniqueness suffix), so the state loader maps status ids the
    same way the config importer maps configuration ids.
    """
    if is_havm_id(raw):
        return raw
    import re

    fixed = re.sub(_BAD, "-", raw)
    if not fixed or not fixed[0].isalnum():
        fixed = "r" + fixed
    return fixed[:63]


_TRUE = {"true", "on", "yes", "y", "1"}
_FALSE = {"false", "off", "no", "n", "0"}


def pcmk_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false, yes/no, on/off, 1/0), got {value!r}")


def pcmk_score(value: str) -> int:
    v = value.strip().lower()
    if v in ("infinity", "+infinity"):
        return INFINITY
    if v == "-infinity":
        return -INFINITY
    digits = v[1:] if v[:1] in ("+", "-") else v
    if not (digits.isascii() and digits.isdigit()):  # \d also takes other scripts' digits, as int() does
        import re

        if not re.fullmatch(r"[+-]?\d+", v):
            raise ValueError(f"expected a score (an integer, INFINITY or -INFINITY), got {value!r}")
    return max(-INFINITY, min(INFINITY, int(v)))


_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "secs": 1.0, "ms": 0.001, "msec": 0.001, "msecs": 0.001,
          "us": 1e-6, "usec": 1e-6, "m": 60.0, "min": 60.0, "mins": 60.0, "h": 3600.0, "hr": 3600.0,
          "hrs": 3600.0}
_ISO = r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"


def pcmk_interval(value: str) -> float:
    """Seconds from Pacemaker's interval syntax: ``30``, ``30s``, ``10min``, ``1h``, ``500ms``, ``PT1M``."""
    v = value.strip().lower()
    if v == "":
        return 0.0
    number = v.rstrip(_LOWER)  # the common "30000", "30s", "10min"
    unit = v[len(number):]
    if number.isascii() and number.isdigit() and unit in _UNITS:
        return float(number) * _UNITS[unit]
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", v)
    if m and m.group(2) in _UNITS:
        return float(m.group(1)) * _UNITS[m.group(2)]
    iso = re.match(_ISO, value.strip().upper())
    if iso and any(iso.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in iso.groups())
        return d * 86400 + h * 3600 + mi * 60 + s
    loose = re.fullmatch(r"P(\d+)([HS])", value.strip().upper())  # 'P10S': Pacemaker reads it, so do we
    if loose:
        return float(loose.group(1)) * (3600.0 if loose.group(2) == "H" else 1.0)
    raise ValueError(f"expected an interval such as 30s, 10min, 1h, 500ms or PT1M, got {value!r}")


def pcmk_int(value: str) -> int:
    """An integer, also written as ``2.0`` (Pacemaker's own tests do)."""
    v = value.strip()
    try:
        return int(v)
    except ValueError:
        f = float(v)  # raises ValueError with the value in it
        if not f.is_integer():
            raise ValueError(f"expected an integer, got {value!r}") from None
        return int(f)


_ROLES = {"started": "started", "master": "promoted", "promoted": "promoted", "slave": "unpromoted",
          "unpromoted": "unpromoted"}


def pcmk_role(value: str) -> str | None:
    """Our role name for Pacemaker's (old and new spellings); None if havm has no equivalent."""
    return _ROLES.get(value.strip().lower())


def _int(v: str) -> int:
    try:
        return pcmk_int(v)
    except ValueError:
        raise ValueError(f"expected an integer, got {v!r}") from None


def _migration_threshold(v: str) -> int:
    n = pcmk_score(v)
    if n < 0:
        raise ValueError(f"expected 0 or more, got {v!r}")
    return n


def _target_role(v: str) -> str:
    role = pcmk_role(v) or ("stopped" if v.strip().lower() == "stopped" else None)
    if role is None:
        raise ValueError(f"expected Started, Stopped, Promoted or Unpromoted, got {v!r}")
    return role


#: meta option -> (our Meta field, converter to its value: scores as int, durations in seconds)
META_OPTIONS: dict[str, tuple[str, Callable[[str], object]]] = {
    "resource-stickiness": ("stickiness", pcmk_score),
    "migration-threshold": ("migration_threshold", _migration_threshold),
    "failure-timeout": ("failure_timeout", pcmk_interval),
    "allow-migrate": ("allow_migrate", pcmk_bool),
    "target-role": ("target_role", _target_role),
    "priority": ("priority", _int),
    "is-managed": ("is_managed", pcmk_bool),
}
#: clone option -> (our Clone field, converter)
CLONE_OPTIONS: dict[str, tuple[str, Callable[[str], object]]] = {
    "clone-max": ("clone_max", _int), "clone-node-max": ("clone_node_max", _int),
    "globally-unique": ("globally_unique", pcmk_bool), "interleave": ("interleave", pcmk_bool),
    "promotable": ("promotable", pcmk_bool),
    "promoted-max": ("promoted_max", _int), "master-max": ("promoted_max", _int),
    "promoted-node-max": ("promoted_node_max", _int), "master-node-max": ("promoted_node_max", _int),
}
#: meta options havm does not have, and why
META_WHY_NOT = {
    "notify": "havm sends no clone notifications (pre/post start/stop events to every instance)",
    "ordered": "havm starts clone instances in parallel",
    "multiple-active": "havm always recovers a resource found active twice by stopping it everywhere and "
                       "starting it once",
    "requires": "havm decides from the fencing configuration what a start requires",
    "resource-failure-stickiness": "Heartbeat 2's failure stickiness has no exact equivalent; "
                                   "use meta.migration_threshold",
    "restart-type": "Heartbeat 2's restart_type has no havm equivalent",
    "description": "descriptions are not kept",
    "critical": "havm has no per-resource 'critical' option",
    "collocated": "havm groups are always colocated",
    "remote-node": "guest and remote nodes (a resource that is also a node) are not supported",
    "container": "guest and remote nodes (a resource that is also a node) are not supported",
    "remote-allow-migrate": "guest and remote nodes (a resource that is also a node) are not supported",
    "clone-min": "havm has no clone-min (ordering on a minimum number of instances)",
    "provides": "unfencing is configured in havm's fencing section",
    "maintenance": "per-resource maintenance: use is_managed: false",
}
#: Heartbeat 2 put these meta options among a resource's instance_attributes
HB2_META_NAMES = set(META_OPTIONS) | set(CLONE_OPTIONS) | set(META_WHY_NOT)
#: cluster property -> (our properties field, converter to its value)
PROPERTY_OPTIONS: dict[str, tuple[str, Callable[[str], object]]] = {
    "stonith-enabled": ("fencing_enabled", pcmk_bool),
    "fencing-enabled": ("fencing_enabled", pcmk_bool),
    "symmetric-cluster": ("symmetric_cluster", pcmk_bool),
    "maintenance-mode": ("maintenance_mode", pcmk_bool),
    "no-quorum-policy": ("no_quorum_policy", str),
    "placement-strategy": ("placement_strategy", str),
    "default-resource-stickiness": ("stickiness", pcmk_score),
}
PROPERTY_VALUES = {"no_quorum_policy": ("stop", "freeze", "ignore", "demote"),
                   "placement_strategy": ("default", "utilization", "balanced", "minimal")}
