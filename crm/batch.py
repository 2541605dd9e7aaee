"""Many instances of a frozen, slotted dataclass at once, built column by column.

A frozen dataclass's generated `__init__` assigns each field through `object.__setattr__`, which costs
about as much as the rest of writing a reason line. For classes whose `__init__` only assigns (no
`__post_init__`, no validation), setting one slot across all instances with C-level `map` gives the
same objects in less than half the time. Scoring builds ~10 reasons and one ScoreCard per person.
The same goes for a validating (pydantic) dataclass when the caller knows its values are already
what validation would return: identity re-points activities, the write plan builds field updates.
`slot_setters` gives the per-field setters for building or copying one instance at a time.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from itertools import repeat
from operator import length_hint
from typing import Any, TypeVar

T = TypeVar("T")


def new_instances(cls: type[T], n: int) -> list[T]:
    """`object.__new__(cls)` n times, with C-level `map`."""
    return list(map(object.__new__, repeat(cls, n)))


def fill_slot(instances: list, descriptor: Any, column: Iterable[Any]) -> None:
    """`descriptor.__set__(instance, value)` for each instance and value, in order, with C-level
    `map` (`build_many` checks the column's length first)."""
    deque(map(descriptor.__set__, instances, column), maxlen=0)


@cache
def slot_setters(cls: type) -> tuple[tuple[str, Callable[[Any, Any], None]], ...]:
    """(name, setter) of each field of a slotted dataclass, in field order: setting a slot through
    its descriptor is what `object.__setattr__` does on a frozen one, without the lookup."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    return tuple((f.name, getattr(cls, f.name).__set__) for f in dataclasses.fields(cls))


def build_many(cls: type[T], n: int, columns: Mapping[str, Iterable[Any]]) -> list[T]:
    """`n` instances of `cls`; each field from its column (n values, e.g. a list or `repeat(x, n)`),
    or its default when no column names it. Equal to `[cls(**row) for row in rows]`."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__") or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass whose __init__ only assigns")
    fields = dataclasses.fields(cls)
    unknown = set(columns) - {f.name for f in fields}
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    instances = new_instances(cls, n)
    for f in fields:
        column = columns.get(f.name)
        if column is None:
            if f.default is not dataclasses.MISSING:
                column = repeat(f.default, n)
            elif f.default_factory is not dataclasses.MISSING:
                column = [f.default_factory() for _ in range(n)]
            else:
                raise TypeError(f"{cls.__name__}.{f.name} has no default and no column")
        elif length_hint(column, -1) != n:
            raise ValueError(f"{cls.__name__}.{f.name}: expected {n} values")
        fill_slot(instances, getattr(cls, f.name), column)
    return instances
