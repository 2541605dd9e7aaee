"""Scoring's first pass over activities gives the same columns in C (scoring/_columns.c) as in Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadloop.crm.records import Activity, ActivityKind
from leadloop.scoring import intent

columns = pytest.importorskip(
    "leadloop.scoring._columns",
    reason="the C first pass is not built here (no compiler at install); Python is used",
)

PEOPLE = {"p1": 0, "p2": 1, "p3": 2}
URLS = [None, "https://example.com/ds/evk-7710", "https://example.com/ds/evk-7710?utm_id=4", "https://x.io/a"]


def both(activities) -> tuple[tuple, tuple]:
    """(person, when, key, first_seen) from the C pass and from the Python pass."""
    results = []
    for read in (intent.read_activities, intent.read_activities_python):
        first_seen: dict = {}
        person, when, key = read(activities, dict(PEOPLE), first_seen)
        results.append((person.tolist(), when.tolist(), key.tolist(), list(first_seen.items())))
    return results[0], results[1]


def test_the_c_pass_is_the_one_scoring_uses():
    assert intent._read_activities_c is columns.read_activities


activities = st.builds(
    Activity,
    id=st.just("a"),
    person_id=st.sampled_from(["p1", "p2", "p3", "stranger"]),
    kind=st.sampled_from(list(ActivityKind)),
    occurred_at=st.datetimes(
        min_value=datetime(1600, 1, 1), max_value=datetime(2400, 12, 31), timezones=st.just(UTC)
    ),
    url=st.sampled_from(URLS),
    form_name=st.sampled_from([None, "EVK request", "Contact sales"]),
    campaign_name=st.sampled_from([None, "Embedded World 2026"]),
    asset_id=st.sampled_from([None, "EVK-7710"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(activities, max_size=40))
def test_c_and_python_read_the_same_persons_times_and_keys(records):
    c_result, python_result = both(records)
    assert c_result == python_result


def test_times_are_posix_seconds_to_the_microsecond_including_before_1970_and_far_ahead():
    times = [
        datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2000, 2, 29, tzinfo=UTC),
        datetime(2900, 1, 1, 0, 0, 0, 1, tzinfo=UTC),  # beyond 2**53 microseconds: the method's way
        datetime(1, 1, 1, tzinfo=UTC),
    ]
    records = [
        Activity(id=f"a{i}", person_id="p1", kind="page_view", occurred_at=t) for i, t in enumerate(times)
    ]
    c_result, python_result = both(records)
    assert c_result[1] == [t.timestamp() for t in times] == python_result[1]


@dataclass
class Visit:
    """Not the record class: read by attribute, in any time zone."""

    person_id: str
    occurred_at: datetime
    kind: str = "page_view"
    url: str | None = None
    form_name: str | None = None
    campaign_name: str | None = None
    asset_id: str | None = None


def test_other_classes_and_time_zones_are_read_by_attribute_with_the_same_results():
    berlin = timezone(timedelta(hours=1))
    records = [
        Visit("p2", datetime(2026, 3, 1, 10, 0, tzinfo=berlin), url="https://x.io/a"),
        Activity(
            id="a1",
            person_id="p2",
            kind="page_view",
            occurred_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
            url="https://x.io/a",
        ),
        Visit("nobody", datetime(2026, 3, 2, tzinfo=berlin)),
    ]
    c_result, python_result = both(records)
    assert c_result == python_result
    person, when, key, first_seen = c_result
    assert person == [1, 1, -1]
    assert when[0] == when[1]  # 10:00 at UTC+1 is 09:00 UTC
    assert key == [0, 0, 2]  # "page_view" equals ActivityKind.PAGE_VIEW: one key
    assert [position for _, position in first_seen] == [0, 2]


def test_a_record_without_a_field_is_an_error_not_a_guess():
    class Partial:
        person_id = "p1"

    with pytest.raises(AttributeError):
        intent.read_activities([Partial()], dict(PEOPLE), {})


def test_the_output_buffers_must_fit_the_activities():
    record = Activity(id="a1", person_id="p1", kind="page_view", occurred_at=datetime(2026, 3, 1, tzinfo=UTC))
    person, when, key = np.empty(2, np.int64), np.empty(1, np.float64), np.empty(1, np.int64)
    with pytest.raises(ValueError, match="person must be a contiguous buffer of 1"):
        columns.read_activities([record], Activity, dict(PEOPLE), {}, person, when, key)


def same_datetimes_or_the_same_error(seconds: list[float]) -> None:
    array = np.array(seconds, dtype=np.float64)
    try:
        expected = intent.utc_datetimes_python(array)
    except (ValueError, OverflowError, OSError) as error:
        with pytest.raises(type(error)):
            columns.utc_datetimes(array)
        return
    found = columns.utc_datetimes(array)
    assert found == expected
    assert [(w.tzinfo, w.fold, type(w)) for w in found] == [(UTC, 0, datetime)] * len(found)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=-7e10, max_value=2.6e11), max_size=30))
def test_times_back_to_datetimes_as_fromtimestamp_makes_them(seconds):
    same_datetimes_or_the_same_error(seconds)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=-(10**15), max_value=10**16), max_size=30))
def test_microsecond_times_and_halfway_roundings_come_back_exactly(microseconds):
    same_datetimes_or_the_same_error(
        [us / 1e6 for us in microseconds] + [(2 * us + 1) / 2e6 for us in microseconds]
    )


def test_times_outside_the_calendar_fail_as_fromtimestamp_fails():
    for bad in (float("nan"), float("inf"), 1e20, -1e20, 253402300800.0, -62135596801.0):
        same_datetimes_or_the_same_error([bad])
    assert columns.utc_datetimes(np.array([0.0, -0.5e-6, 1e9 + 0.9999995])) == [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2001, 9, 9, 1, 46, 41, tzinfo=UTC),
    ]
    with pytest.raises(ValueError, match="float64"):
        columns.utc_datetimes(np.array([1, 2], dtype=np.int64))


def test_a_list_emptied_while_it_is_read_is_an_error_not_a_crash():
    class Emptying:
        person_id, occurred_at = "p1", datetime(2026, 3, 1, tzinfo=UTC)
        url = form_name = campaign_name = asset_id = None

        @property
        def kind(self):  # runs while the C pass reads this activity's key
            records.clear()
            return "page_view"

    records = [Emptying() for _ in range(3)]
    with pytest.raises(RuntimeError, match="changed size"):
        columns.read_activities(
            records,
            Activity,
            dict(PEOPLE),
            {},
            *(np.empty(3, dtype) for dtype in (np.int64, np.float64, np.int64)),
        )
