"""Immutable records without the ``dataclasses`` module.

The scheduler's model is a few dozen small immutable classes. As frozen
dataclasses they cost ``havm simulate`` more at start-up (importing
``dataclasses`` pulls in ``inspect``; each decoration compiles code) than
planning 500 resources does, so they are plain classes with ``__slots__``,
an explicit ``__init__`` and this base, which gives them what the dataclasses
gave: no assignment after construction, equality and hashing by value (only
between records of the same class), a readable ``repr``, ``replace`` (as
``dataclasses.replace``) and pickling/copying.

A subclass lists its fields in ``__slots__`` in ``__init__``'s positional
order and sets them with ``init(self, ...)`` (``object.__setattr__``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs start-up time; type checkers read this as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Self

init = object.__setattr__


def setters(cls: type[Record]) -> tuple[Callable[[Any, Any], None], ...]:
    """The setters of ``cls``'s own slots (their descriptors' ``__set__``), in ``__slots__`` order.

    For records built by the thousand in one plan (actions, primitives, resource states):
    calling a slot's setter skips the generic attribute lookup of ``init`` and costs a
    third as much. Like ``init``, they bypass ``__setattr__``: for ``__init__`` only.
    """
    return tuple(cls.__dict__[name].__set__ for name in cls.__slots__)


class Record:
    __slots__: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot assign {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def values(self) -> tuple[object, ...]:
        return tuple([getattr(self, n) for n in self.__slots__])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.values() == other.values()  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash((self.__class__.__name__, self.values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return self.__class__, self.values()

    def replace(self, **changes: object) -> Self:
        """A copy with ``changes`` (field names as keywords), like ``dataclasses.replace``."""
        new = object.__new__(self.__class__)
        for n in self.__slots__:
            init(new, n, changes.pop(n) if n in changes else getattr(self, n))
        if changes:
            raise TypeError(f"{type(self).__name__} has no field(s) {', '.join(sorted(changes))}")
        return new
