"""Scoring by account partition gives exactly the one-pass result, card for card."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadloop.crm.dataset import Dataset, load_dataset
from leadloop.crm.records import Activity, ActivityKind, Person
from leadloop.playbook.load import load_playbook
from leadloop.scoring.engine import ScoringResult, score_dataset
from leadloop.scoring.partition import merge_results, partition_dataset, score_partitioned

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def assert_same(merged: ScoringResult, whole: ScoringResult) -> None:
    assert list(merged.cards) == list(whole.cards)
    different = [pid for pid in whole.cards if merged.cards[pid] != whole.cards[pid]]
    assert not different, (different[:3], merged.cards[different[0]], whole.cards[different[0]])
    assert merged.accounts == whole.accounts and list(merged.accounts) == list(whole.accounts)
    assert merged.unknown_titles == whole.unknown_titles
    assert merged.missing_titles == whole.missing_titles
    assert merged.unmatched_activities == whole.unmatched_activities
    assert (merged.orphan_activities, merged.future_activities) == (whole.orphan_activities,
                                                                    whole.future_activities)
    assert merged.tier_counts() == whole.tier_counts() and list(merged.people) == list(whole.people)


def with_awkward_records(dataset: Dataset) -> Dataset:
    """Duplicates whose versions name different accounts, people without an account or with an
    unknown one, activities of nobody and from the future."""
    people = list(dataset.people)
    moved = [replace(p, account_id=dataset.accounts[(i * 7) % len(dataset.accounts)].id,
                     updated_at=(p.updated_at or NOW) + timedelta(days=1))
             for i, p in enumerate(people[:40]) if p.account_id]
    stale = [replace(p, account_id=dataset.accounts[-1].id, updated_at=datetime(2001, 1, 1, tzinfo=UTC))
             for p in people[40:60]]
    loners = [Person(id=f"loner-{i}", email=f"loner{i}@nowhere.example", title="Design Engineer",
                     account_id=None if i % 2 else "no-such-account") for i in range(12)]
    template = dataset.activities[0]
    odd = [replace(template, id=f"orphan-{i}", person_id=f"ghost-{i % 5}") for i in range(30)]
    odd += [replace(template, id=f"future-{i}", person_id=people[i].id, occurred_at=NOW + timedelta(days=3))
            for i in range(9)]
    odd += [Activity(id=f"loner-act-{i}", person_id=f"loner-{i}", kind=ActivityKind.SAMPLE_REQUEST,
                     occurred_at=NOW - timedelta(days=i)) for i in range(12)]
    return replace(dataset, people=[*moved, *people, *stale, *loners], activities=[*dataset.activities, *odd])


@pytest.mark.parametrize("playbook", ["semiconductor.yaml", "industrial.yaml"])
def test_the_example_dataset_scores_the_same_in_any_number_of_partitions(playbook):
    book = load_playbook(PLAYBOOKS / playbook)
    dataset = with_awkward_records(load_dataset(PLAYBOOKS / "example_dataset.json"))
    whole = score_dataset(book, dataset, NOW)
    assert whole.orphan_activities >= 30 and whole.future_activities >= 9
    for parts in (1, 2, 5, 16):
        assert_same(score_partitioned(book, dataset, NOW, parts), whole)


def test_a_generated_world_scores_the_same_in_partitions():
    sys.path.insert(0, str(ROOT / "bench"))
    from generate_canonical import REFERENCE_TIME, generate

    book = load_playbook(ROOT / "bench" / "northwind.yaml")
    dataset = with_awkward_records(generate(3000, 500, 60_000, seed=3))
    whole = score_dataset(book, dataset, REFERENCE_TIME)
    assert len(set(whole.tier_counts().values())) > 1  # a world with several tiers in it
    assert_same(score_partitioned(book, dataset, REFERENCE_TIME, 6), whole)


def test_partitions_keep_accounts_whole_and_hold_every_record_once():
    dataset = with_awkward_records(load_dataset(PLAYBOOKS / "example_dataset.json"))
    partitions = partition_dataset(dataset, 4)
    where = {}
    for part in partitions:
        for person in part.dataset.people:
            assert person.id not in where, "a person in two partitions"
            where[person.id] = part.index
        accounts = {a.id for a in part.dataset.accounts}
        assert all(p.account_id in accounts for p in part.dataset.people
                   if p.account_id and not p.id.startswith("loner"))
    assert len(where) == len({p.id for p in dataset.people})
    assert sum(len(p.dataset.activities) for p in partitions) == len(dataset.activities)
    assert sum(len(p.dataset.accounts) for p in partitions) == len({a.id for a in dataset.accounts})
    assert partition_dataset(dataset, 4) == partitions  # stable


def test_results_of_different_moments_are_not_merged():
    book = load_playbook(PLAYBOOKS / "semiconductor.yaml")
    dataset = load_dataset(PLAYBOOKS / "example_dataset.json")
    with pytest.raises(ValueError, match="different playbooks or moments"):
        later = NOW + timedelta(hours=1)
        merge_results([score_dataset(book, dataset, NOW), score_dataset(book, dataset, later)])
    with pytest.raises(ValueError, match="at least one partition"):
        partition_dataset(dataset, 0)
