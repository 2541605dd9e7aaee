"""Playbook conditions compiled once into fast predicates over (person, account, role, seniority)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from leadloop.crm.records import Account, Person
from leadloop.playbook.model import Band, Condition, FitRule
from leadloop.playbook.patterns import compile_patterns

Getter = Callable[["Subject"], Any]
Test = Callable[["Subject"], bool]


class Subject(NamedTuple):
    """What a condition may look at: the person, their account (or None), and the derived persona.
    A named tuple: one is built per person and per account, and a tuple is the cheapest to build."""

    person: Person | None
    account: Account | None
    role: str | None = None
    seniority: str | None = None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if value.__class__ is str:  # records are already trimmed
        return value.lower() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower() or None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def field_getter(field: str) -> Getter:
    """`account.industry` → a function reading it from a Subject (None when the record is absent)."""
    record, _, name = field.partition(".")
    if record == "person" and name in ("role", "seniority"):
        return (lambda s: s.role) if name == "role" else (lambda s: s.seniority)
    if name.startswith("attributes."):
        key = name.removeprefix("attributes.")

        def read_attribute(subject: Subject) -> Any:
            obj = subject.person if record == "person" else subject.account
            return None if obj is None else obj.attributes.get(key)

        return read_attribute
    if record == "person":
        return lambda s: None if s.person is None else getattr(s.person, name)
    return lambda s: None if s.account is None else getattr(s.account, name)


def in_band(value: float | None, low: float | None, high: float | None) -> bool:
    """low ≤ value < high, open ends allowed; a missing value is in no band."""
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value < high)


def compile_condition(cond: Condition, lists: Mapping[str, list[str]]) -> Test:
    """A predicate for one condition. Text tests ignore case and surrounding spaces."""
    get = field_getter(cond.field)
    if cond.in_ is not None or cond.in_list is not None:
        allowed = frozenset(
            _text(v) for v in (cond.in_ if cond.in_ is not None else lists[cond.in_list or ""])
        )
        return lambda s: _text(get(s)) in allowed
    if cond.contains is not None:
        needles = tuple(n.lower() for n in cond.contains)

        def contains(subject: Subject) -> bool:
            text = _text(get(subject))
            return text is not None and any(n in text for n in needles)

        return contains
    if cond.matches is not None:
        pattern = compile_patterns([cond.matches])

        @lru_cache(maxsize=4096)
        def found_in(text: str) -> bool:
            """Remembered: a call into RE2 costs microseconds, and values repeat (domains, industries)."""
            return pattern.search(text) is not None

        def matches(subject: Subject) -> bool:
            value = get(subject)
            return value is not None and found_in(str(value))

        return matches
    if cond.min is not None or cond.max is not None:
        low, high = cond.min, cond.max
        return lambda s: in_band(_number(get(s)), low, high)
    if cond.equals is not None:
        expected = cond.equals
        if isinstance(expected, bool):
            return lambda s: bool(get(s)) is expected
        if isinstance(expected, int | float):
            return lambda s: _number(get(s)) == float(expected)
        wanted = _text(expected)
        return lambda s: _text(get(s)) == wanted
    present = bool(cond.present)
    return lambda s: (_text(get(s)) is not None) is present


def compile_all(conditions: list[Condition], lists: Mapping[str, list[str]]) -> Test:
    """True when every condition holds (an empty list always holds)."""
    tests = tuple(compile_condition(c, lists) for c in conditions)
    if len(tests) == 1:
        return tests[0]

    def every(subject: Subject) -> bool:
        for test in tests:  # noqa: SIM110 - a plain loop beats all(<genexpr>) on this hot path
            if not test(subject):
                return False
        return True

    return every


class FitHit(NamedTuple):
    """A fit rule's points for a subject, and the value that earned them (built per rule per person)."""

    points: float
    value: Any
    band: Band | None = None


def compile_fit_rule(rule: FitRule, lists: Mapping[str, list[str]]) -> Callable[[Subject], FitHit | None]:
    """The points a fit rule gives a subject (with the value that earned them), or None."""
    get = field_getter(rule.field)
    if rule.bands is not None:
        bands = tuple(rule.bands)

        def banded(subject: Subject) -> FitHit | None:
            value = get(subject)
            number = _number(value)
            for band in bands:
                if in_band(number, band.min, band.max):
                    return FitHit(band.points, value, band)
            return None

        return banded
    test = compile_condition(rule, lists)
    points = float(rule.points or 0.0)
    return lambda s: FitHit(points, get(s)) if test(s) else None
