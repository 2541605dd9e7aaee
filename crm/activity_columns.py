"""Activities as columns: what scoring reads of them, one array or code list per field, no object per
activity.

A store holds millions of activities; scoring reads seven of their fields (person, time, the
classification key, campaign, duration) and routing one pair per person and asset. Validating each
stored payload into a pydantic record, then reading the fields back out, was most of a rescore from
the store. `columns_from_payloads` reads the stored JSON with orjson and checks each column against
what validation would accept and leave unchanged; a payload that passes is taken as it is, and any
other (an unknown key, a blank or untrimmed text, a time in another shape) goes through the
`Activity` validator itself, so it is normalized or lands in the invalid records exactly as before.

Text fields with few distinct values (person, kind, URL, form, campaign, asset, source) are kept as
codes into a list of the distinct values: checking, re-pointing and classifying then happens once per
value, not once per activity.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import attrgetter, floordiv, itemgetter, sub
from typing import Any

import numpy as np
import orjson
from pydantic import TypeAdapter, ValidationError

from leadloop.crm.batch import build_many
from leadloop.crm.dataset import InvalidRecord, describe_validation_error
from leadloop.crm.records import Activity, ActivityKind

ActivityKey = tuple[ActivityKind, str | None, str | None, str | None, str | None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FIELDS = ("id", "person_id", "kind", "occurred_at", "url", "form_name", "campaign_id", "campaign_name",
           "asset_id", "duration_seconds", "source")
_FIELD_SET = frozenset(_FIELDS)
_KEY_FIELDS = ("kind", "url", "form_name", "campaign_name", "asset_id")
_PAYLOADS_AT_ONCE = 5_000
_CODED = ("person_id", "kind", "url", "form_name", "campaign_name", "asset_id", "campaign_id", "source")
_KINDS = {kind.value: kind for kind in ActivityKind}
_ADAPTER = TypeAdapter(Activity)


_UNHASHABLE = object()  # stands in for a list or an object where a field holds a string


class _Codes(dict):
    """value → code, a new value getting the next code (in order of first appearance)."""

    def __missing__(self, value: Any) -> int:
        code = self[value] = len(self)
        return code


def _encode(values: Iterable[Any], count: int) -> tuple[np.ndarray, list[Any]]:
    codes = _Codes()
    array = np.fromiter(map(codes.__getitem__, values), dtype=np.int64, count=count)
    return array, list(codes)


@dataclass(slots=True)
class ActivityColumns:
    """Parallel columns of activities, in one order (a store's read: record-id order).

    `person[i]` indexes `persons`, `key[i]` indexes `keys` (kind, url, form name, campaign name, asset
    id: what an activity is classified by), `campaign[i]` indexes `campaign_ids`, `source[i]` indexes
    `sources`; `micros` is the time in POSIX microseconds, `duration` the seconds (NaN: none)."""

    ids: list[str]
    persons: list[str]
    person: np.ndarray
    micros: np.ndarray
    keys: list[ActivityKey]
    key: np.ndarray
    campaign_ids: list[str | None]
    campaign: np.ndarray
    duration: np.ndarray
    sources: list[str | None]
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> ActivityColumns:
        return cls.from_records(())

    @classmethod
    def from_records(cls, activities: Iterable[Activity]) -> ActivityColumns:
        """The columns of activity records (`Activity`, or anything with its fields). One pass per
        field and no tuple per activity: millions of small containers would each cost the cyclic
        garbage collector a look at every record still alive."""
        records = activities if isinstance(activities, Sequence) else list(activities)
        n = len(records)

        def read(name: str) -> Any:
            return map(attrgetter(name), records)

        person, persons = _encode(read("person_id"), n)
        fields = [_encode(read(name), n) for name in _KEY_FIELDS]
        key, combos = _combined_codes([codes for codes, _ in fields])
        distinct = [values for _, values in fields]
        keys = [tuple(values[i] for values, i in zip(distinct, combo, strict=True)) for combo in combos]
        campaign, campaign_ids = _encode(read("campaign_id"), n)
        source, sources = _encode(read("source"), n)
        since_epoch = map(sub, read("occurred_at"), repeat(_EPOCH))
        micros = np.fromiter(map(floordiv, since_epoch, repeat(_MICROSECOND)), dtype=np.int64, count=n)
        duration = np.array([math.nan if d is None else d for d in read("duration_seconds")],
                            dtype=np.float64)
        return cls(list(read("id")), persons, person, micros, keys, key, campaign_ids, campaign, duration,
                   sources, source)

    def seconds(self) -> np.ndarray:
        """Times in POSIX seconds, each equal to its `occurred_at.timestamp()` (microseconds are exact
        in a float64 and one division rounds as `timedelta.total_seconds` does; beyond 2**53
        microseconds, years 1685 to 2255, they are divided as Python integers)."""
        seconds = self.micros / 1e6
        far = np.abs(self.micros) >= 2**53
        if far.any():
            seconds[far] = [us / 1_000_000 for us in self.micros[far].tolist()]
        return seconds

    def person_ids(self) -> list[str]:
        return list(map(self.persons.__getitem__, self.person.tolist()))

    def repointed(self, links: Any) -> ActivityColumns:
        """The same activities with each person id mapped through `links` (identity's person links;
        ids it does not hold stay), in place: one lookup per distinct person."""
        mapped = [links.get(p, p) for p in self.persons]
        index = _Codes()
        remap = np.fromiter(map(index.__getitem__, mapped), dtype=np.int64, count=len(mapped))
        self.persons = list(index)
        self.person = remap[self.person] if len(self.person) else self.person
        return self

    def take(self, rows: np.ndarray) -> ActivityColumns:
        """The activities at positions `rows` (or where a boolean mask is true), in that order."""
        positions = np.flatnonzero(rows) if rows.dtype == bool else rows
        return ActivityColumns(
            list(map(self.ids.__getitem__, positions.tolist())), self.persons, self.person[positions],
            self.micros[positions], self.keys, self.key[positions], self.campaign_ids,
            self.campaign[positions], self.duration[positions], self.sources, self.source[positions])

    def in_id_order(self) -> ActivityColumns:
        """The activities sorted by id (as a store reads them)."""
        return self.take(np.asarray(sorted(range(len(self)), key=self.ids.__getitem__), dtype=np.int64))

    def until(self, moment: datetime) -> ActivityColumns:
        """The activities that happened at `moment` or before (an aware datetime)."""
        return self.take(self.micros <= _micros(moment))

    def first_per_person_and_asset(self) -> np.ndarray:
        """The positions of the first activity of each (person, asset) pair, in order: all routing
        reads of activities is which assets a person already had."""
        assets = [key[4] for key in self.keys]
        code = {asset: i for i, asset in enumerate(dict.fromkeys(a for a in assets if a))}
        asset_of_key = np.array([code[a] if a else -1 for a in assets], dtype=np.int64)
        asset = asset_of_key[self.key] if len(assets) else np.zeros(0, dtype=np.int64)
        rows = np.flatnonzero(asset >= 0)
        if not len(rows):
            return rows
        _, first = np.unique(self.person[rows] * len(code) + asset[rows], return_index=True)
        return np.sort(rows[first])

    def records(self, rows: Sequence[int] | np.ndarray | None = None) -> list[Activity]:
        """Activity records of the rows at `rows` (all when None), equal to the validated ones."""
        positions = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        at = positions.tolist()
        keys = [self.keys[k] for k in self.key[positions].tolist()]
        durations = self.duration[positions].tolist()
        return build_many(Activity, len(at), {
            "id": [self.ids[i] for i in at],
            "person_id": [self.persons[k] for k in self.person[positions].tolist()],
            "kind": [k[0] for k in keys],
            "occurred_at": list(map(_datetime, self.micros[positions].tolist())),
            "url": [k[1] for k in keys],
            "form_name": [k[2] for k in keys],
            "campaign_id": [self.campaign_ids[k] for k in self.campaign[positions].tolist()],
            "campaign_name": [k[3] for k in keys],
            "asset_id": [k[4] for k in keys],
            "duration_seconds": [None if math.isnan(d) else d for d in durations],
            "source": [self.sources[k] for k in self.source[positions].tolist()],
        })

    @classmethod
    def concat(cls, parts: Sequence[ActivityColumns]) -> ActivityColumns:
        """The parts one after the other, as one set of columns."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]

        def merged(values: str, codes: str) -> tuple[np.ndarray, list[Any]]:
            index = _Codes()
            pieces = []
            for part in parts:
                remap = np.fromiter(map(index.__getitem__, getattr(part, values)), dtype=np.int64)
                pieces.append(remap[getattr(part, codes)])
            return np.concatenate(pieces), list(index)

        person, persons = merged("persons", "person")
        key, keys = merged("keys", "key")
        campaign, campaign_ids = merged("campaign_ids", "campaign")
        source, sources = merged("sources", "source")
        return cls([i for p in parts for i in p.ids], persons, person,
                   np.concatenate([p.micros for p in parts]), keys, key, campaign_ids, campaign,
                   np.concatenate([p.duration for p in parts]), sources, source)


def _micros(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


# -- reading stored payloads ------------------------------------------------------------------------------


def _plain_id(value: Any) -> bool:
    """A str field validation keeps as it is (whitespace is stripped)."""
    return type(value) is str and value == value.strip()


def _plain_text(value: Any) -> bool:
    """A `Text` field validation keeps as it is: None, or a non-blank string with single inner spaces."""
    return value is None or (type(value) is str and value != "" and " ".join(value.split()) == value)


def _plain_duration(value: Any) -> bool:
    return value is None or ((type(value) is float or type(value) is int) and 0 <= value < math.inf)


def _stamp(value: Any) -> str | None:
    """The stored time without its `Z` when it has the shape pydantic writes (seconds, or
    microseconds, in UTC): numpy reads that shape to the same instant; anything else is left to the
    validator."""
    if (type(value) is str and len(value) in (20, 27) and value[-1] == "Z" and value[10] == "T"
            and value[4] == value[7] == "-" and value[13] == value[16] == ":" and value[:4] >= "0001"
            and (len(value) == 20 or value[19] == ".")):
        return value[:-1]
    return None


def columns_from_payloads(payloads: Iterable[tuple[str, str | bytes]]
                          ) -> tuple[ActivityColumns, list[InvalidRecord]]:
    """Stored activity payloads (record id, JSON) as columns, in the order given, and the invalid ones
    as `validate_payloads` reports them (index: position in `payloads`). A payload is checked field by
    field (distinct values once); one that validation would change or reject is validated by the
    `Activity` validator: normalized when it passes, reported when it does not."""
    pairs = payloads if isinstance(payloads, list) else list(payloads)
    n = len(pairs)
    slow = np.zeros(n, dtype=bool)
    encoders = {name: _Codes() for name in _CODED}
    coded: dict[str, list[np.ndarray]] = {name: [] for name in _CODED}
    ids: list[str] = []
    bad_parts: list[np.ndarray] = []
    micros_parts: list[np.ndarray] = []
    duration_parts: list[np.ndarray] = []
    # A few thousand payloads at a time, each field coded as it is read: the parsed dicts and their
    # repeated strings are dropped before the next payloads are parsed, so they never pile up in
    # memory, nor in the older generations the garbage collector rescans.
    for start in range(0, n, _PAYLOADS_AT_ONCE):
        chunk = pairs[start:start + _PAYLOADS_AT_ONCE]
        try:
            rows: list[Any] = list(map(orjson.loads, map(itemgetter(1), chunk)))
        except orjson.JSONDecodeError:  # rare: find which
            rows = [_loads_or_none(payload) for _, payload in chunk]
        if not _all_complete_objects(rows):
            odd = np.fromiter((type(d) is not dict or d.keys() != _FIELD_SET for d in rows), dtype=bool,
                              count=len(rows))
            slow[start:start + len(rows)] = odd
            rows = [d for d, skipped in zip(rows, odd.tolist(), strict=True) if not skipped]
        k = len(rows)
        chunk_ids = list(map(itemgetter("id"), rows))
        try:
            stripped = list(map(str.strip, chunk_ids)) == chunk_ids
        except TypeError:
            stripped = False
        bad = np.zeros(k, dtype=bool) if stripped else np.fromiter(
            map(_plain_id, chunk_ids), dtype=bool, count=k) == 0
        ids.extend(chunk_ids)
        for name, codes in encoders.items():
            coded[name].append(_encode_into(codes, list(map(itemgetter(name), rows))))
        durations = list(map(itemgetter("duration_seconds"), rows))
        bad |= np.fromiter(map(_plain_duration, durations), dtype=bool, count=k) == 0
        duration_parts.append(np.array([d if type(d) is float or type(d) is int else math.nan
                                        for d in durations], dtype=np.float64))
        micros_parts.append(_micros_of_stamps(list(map(itemgetter("occurred_at"), rows)), bad))
        bad_parts.append(bad)
        del rows, chunk, durations, chunk_ids
    fast = np.flatnonzero(~slow)
    m = len(fast)
    bad = np.concatenate(bad_parts) if bad_parts else np.zeros(0, dtype=bool)
    micros = np.concatenate(micros_parts) if micros_parts else np.zeros(0, dtype=np.int64)
    duration = np.concatenate(duration_parts) if duration_parts else np.zeros(0, dtype=np.float64)

    def check(name: str, ok: Any) -> tuple[np.ndarray, list[Any]]:
        """The column's codes and distinct values; rows of a value validation would not keep are bad."""
        codes = np.concatenate(coded.pop(name)) if m else np.zeros(0, dtype=np.int64)
        distinct = list(encoders[name])
        wrong = [k for k, value in enumerate(distinct) if not ok(value)]
        if wrong:
            bad[np.isin(codes, wrong)] = True
        return codes, distinct

    person, persons = check("person_id", _plain_id)
    kind, kinds = check("kind", lambda v: type(v) is str and v in _KINDS)
    url, urls = check("url", _plain_text)
    form, forms = check("form_name", _plain_text)
    campaign_name, campaign_names = check("campaign_name", _plain_text)
    asset, assets = check("asset_id", _plain_text)
    campaign, campaign_ids = check("campaign_id", _plain_text)
    source, sources = check("source", _plain_text)

    fallback = sorted([*np.flatnonzero(slow).tolist(), *fast[bad].tolist()])
    invalid: list[InvalidRecord] = []
    checked: list[Activity] = []
    checked_at: list[int] = []
    for i in fallback:
        record_id, payload = pairs[i]
        try:
            checked.append(_ADAPTER.validate_json(payload))
            checked_at.append(i)
        except ValidationError as error:
            invalid.append(InvalidRecord("activities", i, record_id[:80], describe_validation_error(error)))
    del pairs

    good = ~bad
    key_of_row, distinct = _combined_codes(
        [kind[good], url[good], form[good], campaign_name[good], asset[good]])
    keys = [(_KINDS[kinds[a]], urls[b], forms[c], campaign_names[d], assets[e]) for a, b, c, d, e in distinct]
    fast_columns = ActivityColumns(
        _compress(ids, good), persons, person[good], micros[good], keys, key_of_row, campaign_ids,
        campaign[good], duration[good], sources, source[good])
    if not checked:
        return fast_columns, invalid
    # the payloads the validator passed go back to their place in the given order
    positions = np.concatenate([fast[good], np.asarray(checked_at, dtype=np.int64)])
    whole = ActivityColumns.concat([fast_columns, ActivityColumns.from_records(checked)])
    return whole.take(np.argsort(positions, kind="stable")), invalid


def _all_complete_objects(rows: list[Any]) -> bool:
    """Whether every parsed payload is an object with exactly the record's fields, checked without a
    Python step per payload: each holds every field (or reading one fails) and their sizes add up."""
    try:
        for name in _FIELDS:
            deque(map(itemgetter(name), rows), maxlen=0)
    except (KeyError, TypeError, IndexError):
        return False
    return all(map(dict.__instancecheck__, rows)) and sum(map(len, rows)) == len(_FIELDS) * len(rows)


def _encode_into(codes: _Codes, values: list[Any]) -> np.ndarray:
    """`values` as codes of `codes` (new values get the next codes); a list or an object where a
    string belongs (not hashable, and invalid) is coded as one stand-in value."""
    try:
        return np.fromiter(map(codes.__getitem__, values), dtype=np.int64, count=len(values))
    except TypeError:
        plain = (v if v.__hash__ is not None else _UNHASHABLE for v in values)
        return np.fromiter(map(codes.__getitem__, plain), dtype=np.int64, count=len(values))


def _loads_or_none(payload: str | bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def _combined_codes(columns: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Each row's code among the distinct rows of several code columns, and those rows: one integer
    per row (mixed radix) when the columns' ranges fit 63 bits, as they do for activity keys."""
    n = len(columns[0])
    if not n:
        return np.zeros(0, dtype=np.int64), []
    sizes = [int(c.max()) + 1 for c in columns]
    if sum(max(1, s - 1).bit_length() for s in sizes) <= 63:
        combined = np.zeros(n, dtype=np.int64)
        for column, size in zip(columns, sizes, strict=True):
            combined = combined * size + column
        distinct, inverse = np.unique(combined, return_inverse=True)
        rows = []
        for value in distinct.tolist():
            digits = []
            for size in reversed(sizes):
                value, digit = divmod(value, size)
                digits.append(digit)
            rows.append(tuple(reversed(digits)))
        return inverse.reshape(-1).astype(np.int64), rows
    codes, distinct_rows = _encode(zip(*(c.tolist() for c in columns), strict=True), n)
    return codes, distinct_rows


def _micros_of_stamps(stamps: Sequence[Any], bad: np.ndarray) -> np.ndarray:
    """POSIX microseconds of each stored time of the shape pydantic writes (`YYYY-MM-DDTHH:MM:SSZ`,
    or with `.ffffff`); any other value marks its row in `bad`, for the validator. Checked and
    read on arrays: the characters as code points, then numpy's own ISO reader."""
    n = len(stamps)
    micros = np.zeros(n, dtype=np.int64)
    if not n:
        return micros
    try:
        text = np.array(stamps, dtype=np.str_) if all(map(str.__instancecheck__, stamps)) else None
    except (TypeError, ValueError):
        text = None
    width = text.dtype.itemsize // 4 if text is not None else 0
    if text is None or not 20 <= width <= 27:
        return _micros_one_by_one(stamps, bad)
    chars = text.view(np.uint32).reshape(n, width).copy()
    length = np.count_nonzero(chars, axis=1)
    rows = np.arange(n)
    ok = (length == 20) | ((length == 27) & (chars[:, min(19, width - 1)] == ord(".")))
    last = np.where(ok, length - 1, 0)
    ok &= chars[rows, last] == ord("Z")
    for at, char in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":")):
        ok &= chars[:, at] == ord(char)
    ok &= (chars[:, :4] != ord("0")).any(axis=1)  # year 0 is no date
    chars[rows, last] = 0  # the Z
    chars[~ok] = 0
    chars[~ok, :19] = np.frombuffer("1970-01-01T00:00:00".encode("utf-32-le"), dtype=np.uint32)
    bad |= ~ok
    try:
        micros[:] = chars.view(f"<U{width}").reshape(n).astype("datetime64[us]").astype(np.int64)
    except ValueError:  # a character numpy cannot read (not a digit): one by one, the validator decides
        micros = _micros_one_by_one(stamps, bad)
    return micros


def _micros_one_by_one(stamps: Sequence[Any], bad: np.ndarray) -> np.ndarray:
    micros = np.zeros(len(stamps), dtype=np.int64)
    for i, value in enumerate(stamps):
        stamp = _stamp(value)
        try:
            if stamp is None:
                raise ValueError(value)
            micros[i] = np.datetime64(stamp, "us").astype(np.int64)
        except ValueError:
            bad[i] = True
    return micros


def _compress(values: list[Any], mask: np.ndarray) -> list[Any]:
    if mask.all():
        return values
    return [v for v, keep in zip(values, mask.tolist(), strict=True) if keep]


__all__ = ["ActivityColumns", "ActivityKey", "columns_from_payloads"]
