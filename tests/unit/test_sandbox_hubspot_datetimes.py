"""The sandbox HubSpot writes datetimes as HubSpot does, for every year a datetime can hold: ISO-8601
with a four-digit year, milliseconds and `Z`, and reads back exactly what it wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from leadloop.sandbox.hubspot.store import Store, iso_ms, parse_datetime_ms, to_ms

FIRST_MS = to_ms(datetime(1, 1, 1, tzinfo=UTC))
LAST_MS = to_ms(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))


def test_a_year_before_1000_keeps_its_four_digits():
    assert iso_ms(FIRST_MS) == "0001-01-01T00:00:00.000Z"
    assert iso_ms(to_ms(datetime(999, 7, 4, 9, 5, 3, 7000, tzinfo=UTC))) == "0999-07-04T09:05:03.007Z"


def test_the_last_millisecond_before_the_epoch_and_the_last_one_a_datetime_holds():
    assert iso_ms(-1) == "1969-12-31T23:59:59.999Z"
    assert iso_ms(LAST_MS) == "9999-12-31T23:59:59.999Z"


@given(st.integers(min_value=FIRST_MS, max_value=LAST_MS))
def test_every_millisecond_reads_back_as_written(ms):
    assert parse_datetime_ms(iso_ms(ms)) == ms


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_moment_becomes_its_millisecond_exactly(moment):
    floored = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=to_ms(moment)) == floored


def test_a_datetime_property_of_year_one_is_stored_as_hubspot_writes_it():
    store = Store(lambda: datetime(2025, 1, 1, tzinfo=UTC))
    values = store.normalize("deals", {"closedate": "0001-01-01T00:00:00Z"})
    assert values == {"closedate": "0001-01-01T00:00:00.000Z"}
    record = store.create("contacts", store.normalize("contacts", {"createdate": "0001-01-01"}))
    assert record.props["createdate"] == "0001-01-01T00:00:00.000Z" and record.created_ms == FIRST_MS
