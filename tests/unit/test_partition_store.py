"""A sync above one partition reads each partition's activities from the store when it scores it, and
gets what loading every activity and scoring in one pass gets: the same cards and the same routing."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

from leadloop.crm.identity import resolve_identity
from leadloop.playbook.load import load_playbook
from leadloop.routing.state import AssignmentState
from leadloop.scoring.engine import score_dataset
from leadloop.store import open_store
from leadloop.sync import pipeline

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from generate_canonical import REFERENCE_TIME  # noqa: E402
from test_scoring_partition import assert_same  # noqa: E402
from worlds.stored import fill_awkward_world  # noqa: E402

NOW = REFERENCE_TIME


@pytest.fixture(scope="module")
def playbook():
    return load_playbook(ROOT / "bench" / "northwind.yaml")


@pytest.fixture
def filled(store_url: str):
    """Both CRMs' records and the awkward activities (`worlds.stored.fill_awkward_world`)."""
    with open_store(store_url) as store:
        fill_awkward_world(store, NOW, people=2400, accounts=400, activities=48_000)
        yield store


def test_scoring_partition_by_partition_from_the_store_equals_one_pass(filled, playbook):
    raw, identity = pipeline.load_and_resolve(filled)
    whole_dataset = pipeline.merged_dataset(raw, identity)
    whole = score_dataset(playbook, whole_dataset, NOW)
    assert whole.orphan_activities == 20 and len(whole_dataset.activities) > 40_000
    assert len(identity.people) < len(raw.people)  # identity merged people across the CRMs

    for people_per_partition in (700, 2000):
        raw, identity = pipeline.load_and_resolve(filled, people_per_partition)
        assert raw.activities == [] and identity.activities == []  # left in the store
        dataset = pipeline.merged_dataset(raw, identity)
        parts = pipeline.partitions_for(dataset, people_per_partition)
        assert parts > 1
        if people_per_partition == 700:
            result = pipeline.score_from_store(playbook, filled, dataset, identity.person_links, NOW, parts)
        else:  # the plain step the flow's task helper stands for
            result = pipeline.score_partitions(playbook, dataset, NOW, people_per_partition, store=filled,
                                               links=identity.person_links)
        assert_same(result, whole)
        # routing gets one activity per person and asset, which is all it reads of them
        assert {(a.person_id, a.asset_id) for a in dataset.activities} == {
            (a.person_id, a.asset_id) for a in whole_dataset.activities if a.asset_id}
        assert len(dataset.activities) < len(whole_dataset.activities) / 3
        state = AssignmentState()
        assert pipeline.route(playbook, dataset, result, {}, [], state, NOW) == \
            pipeline.route(playbook, whole_dataset, whole, {}, [], state, NOW)


def test_one_partition_scored_from_the_store_in_one_read_equals_one_pass(filled, playbook):
    """What an hourly sync below one partition does: identity without the activities, then every
    activity read as columns in one pass over the store (the one stored twice settled on its newest
    copy, the tombstoned one left out): the same cards and the same routing as the records loaded."""
    raw, identity = pipeline.load_and_resolve(filled)
    whole_dataset = pipeline.merged_dataset(raw, identity)
    whole = score_dataset(playbook, whole_dataset, NOW)

    raw, identity = pipeline.load_and_resolve(filled, activities=False)
    assert raw.activities == [] and identity.activities == []
    dataset = pipeline.merged_dataset(raw, identity)
    [partition] = pipeline.stored_partitions(filled, dataset, identity.person_links, 1)
    assert partition.every and not partition.persons
    result = pipeline.score_from_store(playbook, filled, dataset, identity.person_links, NOW, 1)
    assert_same(result, whole)
    assert whole.orphan_activities == result.orphan_activities == 20
    assert {(a.person_id, a.asset_id) for a in dataset.activities} == {
        (a.person_id, a.asset_id) for a in whole_dataset.activities if a.asset_id}
    state = AssignmentState()
    assert pipeline.route(playbook, dataset, result, {}, [], state, NOW) == \
        pipeline.route(playbook, whole_dataset, whole, {}, [], state, NOW)


def test_a_look_back_from_the_store_scores_only_what_had_happened_by_then(filled, playbook):
    from leadloop.flows.model_review import as_of

    cutoff = NOW - timedelta(days=60)
    raw, identity = pipeline.load_and_resolve(filled)
    whole = score_dataset(playbook, as_of(pipeline.merged_dataset(raw, identity), cutoff), cutoff)
    raw, identity = pipeline.load_and_resolve(filled, 700)
    past = as_of(pipeline.merged_dataset(raw, identity), cutoff)
    result = pipeline.score_from_store(playbook, filled, past, identity.person_links, cutoff,
                                       pipeline.partitions_for(past, 700), until=cutoff)
    assert_same(result, whole)
    assert result.future_activities == 0 and len(result.cards) == len(whole.cards) > 0


def test_a_store_that_fits_one_partition_is_read_whole(filled):
    raw, identity = pipeline.load_and_resolve(filled, people_per_partition=1_000_000)
    assert len(raw.activities) == len(identity.activities) > 40_000
    # the same as identity resolving everything loaded at once, activities re-pointed by it
    everything = filled.load_records()
    expected = resolve_identity(everything.people, everything.accounts, everything.activities,
                                everything.opportunities)
    assert identity.activities == expected.activities
    pulled = {a.person_id for a in everything.activities}
    assert any(a.person_id not in pulled for a in expected.activities)  # identity re-pointed some
