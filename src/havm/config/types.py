"""Value types shared by config sections: durations, names, addresses."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from ``2``, ``0.5``, ``"500ms"``, ``"2s"``, ``"1m"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 2, 0.5, '500ms', '2s' or '1m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"expected a duration such as 2, 0.5, '500ms', '2s' or '1m', got {value!r}")
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValueError("expected a duration such as 2, 0.5, '500ms', '2s' or '1m'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"expected a name of 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit, got {value!r}")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


def _check_ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"expected an IPv4 address such as 10.0.0.1, got {value!r}") from None
    return value


IPv4 = Annotated[str, AfterValidator(_check_ipv4)]
