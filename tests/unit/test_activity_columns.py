"""Activities as columns: read from stored payloads without a record per activity, they are what
validating each payload gives, bad payloads included, and score to the same cards as the records."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from sqlalchemy import update

from leadloop.crm.activity_columns import ActivityColumns, columns_from_payloads
from leadloop.crm.dataset import validate_payloads
from leadloop.crm.records import Activity, ActivityKind
from leadloop.playbook.load import load_playbook
from leadloop.scoring import intent
from leadloop.scoring.engine import score_dataset
from leadloop.store import open_store
from leadloop.store.tables import SNAPSHOTS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from generate_canonical import REFERENCE_TIME, generate  # noqa: E402

DUMP = TypeAdapter(Activity).dump_json
URLS = [None, "https://example.com/ds/evk-7710", "https://example.com/ds/evk-7710?utm_id=4", "https://x.io/a"]

activities = st.builds(
    Activity,
    id=st.text("abc123", min_size=1, max_size=4).map(lambda s: f"hs-event:{s}"),
    person_id=st.sampled_from(["p1", "p2", "p3", "stranger"]),
    kind=st.sampled_from(list(ActivityKind)),
    occurred_at=st.datetimes(min_value=datetime(1600, 1, 1), max_value=datetime(2400, 12, 31),
                             timezones=st.just(UTC)),
    url=st.sampled_from(URLS),
    form_name=st.sampled_from([None, "EVK request", "Contact sales"]),
    campaign_id=st.sampled_from([None, "c-1"]),
    campaign_name=st.sampled_from([None, "Embedded World 2026"]),
    asset_id=st.sampled_from([None, "EVK-7710"]),
    duration_seconds=st.sampled_from([None, 0.0, 12.5, 3600.0]),
    source=st.sampled_from([None, "web"]),
)

# A payload as stored, then changed the ways a bad or old write could change it. Every one of these
# must come out of the columns exactly as out of the validator: normalized, or invalid.
CHANGES = [
    lambda d: d,
    lambda d: {**d, "url": "  https://x.io/a  "},  # untrimmed: validation trims it
    lambda d: {**d, "form_name": "EVK   request"},  # inner spaces: validation folds them
    lambda d: {**d, "source": "   "},  # blank: validation makes it None
    lambda d: {**d, "id": f" {d['id']}"},
    lambda d: {**d, "kind": "PAGE_VIEW"},  # no such kind
    lambda d: {**d, "kind": 3},
    lambda d: {**d, "person_id": None},
    lambda d: {**d, "person_id": ["p1"]},
    lambda d: {**d, "url": {"href": "x"}},
    lambda d: {**d, "occurred_at": d["occurred_at"].replace("Z", "+02:00")},  # another zone: converted
    lambda d: {**d, "occurred_at": d["occurred_at"][:-1]},  # naive: taken as UTC
    lambda d: {**d, "occurred_at": "2026-02-30T00:00:00Z"},
    lambda d: {**d, "occurred_at": "2026-1a-01T00:00:00Z"},
    lambda d: {**d, "occurred_at": 1_790_000_000},  # a number: seconds
    lambda d: {**d, "occurred_at": None},
    lambda d: {**d, "duration_seconds": -1},
    lambda d: {**d, "duration_seconds": "12"},  # a numeric string: validation reads it
    lambda d: {**d, "duration_seconds": True},
    lambda d: {**d, "duration_seconds": 7},
    lambda d: {k: v for k, v in d.items() if k != "source"},  # stored before a field existed
    lambda d: {**d, "colour": "red"},  # an unknown field
    lambda d: [d],
]


def stored(records: list[Activity], changes: list[int]) -> list[tuple[str, bytes]]:
    pairs = []
    for record, change in zip(records, changes, strict=True):
        data = CHANGES[change](orjson.loads(DUMP(record)))
        pairs.append((record.id, orjson.dumps(data)))
    return pairs


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(activities, st.integers(0, len(CHANGES) - 1), st.booleans()), max_size=30))
def test_columns_from_payloads_hold_what_validating_each_payload_gives(rows):
    records = [record for record, _, _ in rows]
    changes = [change if bent else 0 for _, change, bent in rows]
    pairs = stored(records, changes)
    pairs.append(("broken", b"{not json"))
    columns, invalid = columns_from_payloads(pairs)
    good, bad = validate_payloads("activities", pairs)
    assert columns.records() == good
    assert invalid == bad
    assert columns.seconds().tolist() == [a.occurred_at.timestamp() for a in good]


@settings(max_examples=100, deadline=None)
@given(st.lists(activities, max_size=30))
def test_records_to_columns_and_back_are_the_same_records(records):
    columns = ActivityColumns.from_records(records)
    assert columns.records() == records
    assert columns.seconds().tolist() == [a.occurred_at.timestamp() for a in records]
    assert [columns.keys[k] for k in columns.key.tolist()] == [
        (a.kind, a.url, a.form_name, a.campaign_name, a.asset_id) for a in records]


def test_repointing_merges_persons_and_a_subset_keeps_its_order():
    records = [Activity(id=f"a{i}", person_id=p, kind="page_view", occurred_at=REFERENCE_TIME - timedelta(i))
               for i, p in enumerate(["sf-contact:1", "hs-contact:9", "sf-contact:2", "hs-contact:9"])]
    columns = ActivityColumns.from_records(records).repointed({"hs-contact:9": "sf-contact:1"})
    assert columns.person_ids() == ["sf-contact:1", "sf-contact:1", "sf-contact:2", "sf-contact:1"]
    assert len(columns.persons) == 2
    assert [a.id for a in columns.take(np.array([3, 0])).records()] == ["a3", "a0"]
    assert [a.id for a in columns.until(REFERENCE_TIME - timedelta(2)).records()] == ["a2", "a3"]


def same_datetimes_or_the_same_error(seconds: list[float]) -> None:
    array = np.array(seconds, dtype=np.float64)
    try:
        expected = [datetime.fromtimestamp(s, UTC) for s in seconds]
    except (ValueError, OverflowError, OSError) as error:
        with pytest.raises(type(error)):
            intent.utc_datetimes(array)
        return
    found = intent.utc_datetimes(array)
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
        [us / 1e6 for us in microseconds] + [(2 * us + 1) / 2e6 for us in microseconds])


def test_times_outside_the_calendar_fail_as_fromtimestamp_fails():
    for bad in (float("nan"), float("inf"), 1e20, -1e20, 253402300800.0, -62135596801.0):
        same_datetimes_or_the_same_error([bad])
    assert intent.utc_datetimes(np.array([0.0, -0.5e-6, 1e9 + 0.9999995])) == [
        datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2001, 9, 9, 1, 46, 41, tzinfo=UTC)]


# -- scoring from columns ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playbook():
    return load_playbook(ROOT / "bench" / "northwind.yaml")


def test_scoring_columns_gives_the_cards_scoring_records_gives(playbook):
    world = generate(300, 60, 12_000, seed=11)
    by_records = score_dataset(playbook, world, REFERENCE_TIME)
    columns = ActivityColumns.from_records(reversed(world.activities))  # order does not matter either
    world.activities = []
    by_columns = score_dataset(playbook, world, REFERENCE_TIME, activity_columns=columns)
    assert by_columns.cards == by_records.cards and len(by_records.cards) == 300
    assert by_columns.accounts == by_records.accounts
    assert (by_columns.orphan_activities, by_columns.future_activities, by_columns.unmatched_counts,
            by_columns.machine_email) == (by_records.orphan_activities, by_records.future_activities,
                                          by_records.unmatched_counts, by_records.machine_email)
    assert sum(len(card.reasons) for card in by_records.cards.values()) > 1000


@pytest.fixture
def stored_world(sqlite_url: str):
    world = generate(200, 40, 6_000, seed=3)
    with open_store(sqlite_url) as store:
        for stream in ("accounts", "people", "activities"):
            store.upsert_snapshots("salesforce", stream, getattr(world, stream), cursor=REFERENCE_TIME,
                                   now=REFERENCE_TIME)
        yield store, world


def test_a_stored_activity_that_does_not_validate_is_invalid_on_the_columns_path_too(stored_world, playbook):
    store, world = stored_world
    broken, folded = world.activities[5], world.activities[6]
    unknown_kind = DUMP(broken).decode().replace(broken.kind.value, "telepathy")
    untidy = DUMP(folded).decode().replace('"source":null', '"source":"  web   form "')
    with store.engine.begin() as conn:
        conn.execute(update(SNAPSHOTS).where(SNAPSHOTS.c.record_id == broken.id).values(payload=unknown_kind))
        conn.execute(update(SNAPSHOTS).where(SNAPSHOTS.c.record_id == folded.id).values(payload=untidy))
    persons = {a.person_id for a in world.activities}
    records, bad = store.load_activities(persons)
    columns, invalid = store.load_activity_columns(persons)
    assert [i.record_id for i in invalid] == [broken.id] and invalid == bad
    assert "kind" in invalid[0].problems[0]
    assert columns.records() == records and len(records) == len(world.activities) - 1
    assert next(a for a in records if a.id == folded.id).source == "web form"
    assert store.load_records().invalid == bad  # what a sync reports and quarantines, as before

    world.activities = []
    by_columns = score_dataset(playbook, world, REFERENCE_TIME, activity_columns=columns)
    world.activities = records
    assert by_columns.cards == score_dataset(playbook, world, REFERENCE_TIME).cards
