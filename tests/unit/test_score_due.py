"""When a card is next due (`scoring.due`): until then, scoring again changes nothing the CRM shows, the
score history keeps or routing compares; and whatever can raise a score (a dated activity, a negative
ending) makes its person due by then."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadloop.crm.activity_columns import ActivityColumns
from leadloop.crm.dataset import Dataset, load_dataset
from leadloop.crm.records import Activity, ActivityKind
from leadloop.playbook.compiled import compile_playbook
from leadloop.playbook.load import load_playbook
from leadloop.scoring.due import account_key, card_key, due_times, next_rises
from leadloop.scoring.engine import prepare, score_dataset, score_prepared

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def dated_world() -> Dataset:
    """The example dataset with recent activity of many kinds, some dated later than now, and an
    unsubscribe whose negative ends within days."""
    dataset = load_dataset(PLAYBOOKS / "example_dataset.json")
    people = dataset.people
    more = [replace(a, id=f"{a.id}-recent-{k}", occurred_at=NOW - timedelta(days=k * 3.3, hours=k))
            for k, a in enumerate(dataset.activities[:40])]
    more += [Activity(id=f"soon-{i}", person_id=people[i].id, kind=ActivityKind.EVAL_KIT_REQUEST,
                      occurred_at=NOW + timedelta(hours=5 + 7 * i)) for i in range(4)]
    more += [Activity(id=f"unsub-{i}", person_id=people[10 + i].id, kind=ActivityKind.UNSUBSCRIBE,
                      occurred_at=NOW - timedelta(days=364, hours=20 - i)) for i in range(3)]
    return replace(dataset, activities=[*dataset.activities, *more])


@pytest.mark.parametrize("playbook", ["semiconductor.yaml", "industrial.yaml"])
def test_no_card_or_account_changes_before_it_is_due(playbook):
    book, dataset = load_playbook(PLAYBOOKS / playbook), dated_world()
    columns = ActivityColumns.from_records(dataset.activities)
    now = score_dataset(book, dataset, NOW, activity_columns=columns)
    due = due_times(book, dataset, columns, NOW, now)
    assert set(due) == set(now.cards)
    waits = sorted((moment - NOW).total_seconds() / 3600 for moment in due.values())
    assert waits[0] < waits[-1] and waits[-1] >= 9, waits  # not all at once, some much later

    broken = []
    for half_hours in range(1, 2 * 100):
        moment = NOW + timedelta(minutes=30 * half_hours)
        later = score_dataset(book, dataset, moment, activity_columns=columns)
        for pid, card in later.cards.items():
            account = card.account_id
            if due[pid] >= moment and (card_key(card) != card_key(now.cards[pid]) or (
                    account in now.accounts
                    and account_key(later.accounts.get(account)) != account_key(now.accounts[account]))):
                broken.append((pid, moment - NOW, due[pid] - NOW))
    assert not broken, broken[:5]


def test_a_dated_activity_or_a_negative_ending_is_the_first_rise_of_its_person_and_they_are_due_by_then():
    book, dataset = load_playbook(PLAYBOOKS / "semiconductor.yaml"), dated_world()
    columns = ActivityColumns.from_records(dataset.activities)
    cards = score_dataset(book, dataset, NOW, activity_columns=columns)
    due = due_times(book, dataset, columns, NOW, cards)
    index = {pid: i for i, pid in enumerate(sorted(cards.cards))}
    cp = compile_playbook(book)
    rises = next_rises(cp, cp.assets.with_dataset_assets(dataset.assets), index, columns, NOW)
    within = [n.within_days for n in book.negatives if n.kinds and ActivityKind.UNSUBSCRIBE in n.kinds]
    assert within, "the playbook's unsubscribe negative ends after some days"
    checked = 0
    for activity in dataset.activities:
        if activity.id.startswith("soon-"):
            rise = activity.occurred_at
        elif activity.id.startswith("unsub-"):
            rise = activity.occurred_at + timedelta(days=within[0])
        else:
            continue
        assert rises[index[activity.person_id]] <= rise.timestamp(), activity
        assert due[activity.person_id] <= rise, activity
        checked += 1
    assert checked == 7


def test_a_prepared_dataset_scores_as_the_dataset_at_every_moment_and_so_does_its_part_of_whole_accounts():
    """The probes of `due_times` prepare the dataset once and score parts of it at several moments."""
    book, dataset = load_playbook(PLAYBOOKS / "semiconductor.yaml"), dated_world()
    columns = ActivityColumns.from_records(dataset.activities)
    prepared = prepare(book, dataset, columns)
    prepared.classified()
    accounts = set(sorted({p.account_id for p in dataset.people if p.account_id})[::2])
    people = {p.id for p in dataset.people if p.account_id in accounts}
    part = prepared.part(people, accounts)
    assert 0 < len(part.people) < len(prepared.people)
    alone = replace(dataset, people=[p for p in dataset.people if p.id in people],
                    accounts=[a for a in dataset.accounts if a.id in accounts],
                    activities=[a for a in dataset.activities if a.person_id in people])
    for hours in (0, 5, 30, 400):
        moment = NOW + timedelta(hours=hours)
        whole, expected = score_prepared(prepared, moment), score_dataset(book, dataset, moment)
        assert whole.cards == expected.cards and whole.accounts == expected.accounts
        some, expected = score_prepared(part, moment), score_dataset(book, alone, moment)
        assert some.cards == expected.cards and some.accounts == expected.accounts
        assert set(some.cards) == people
        keys = score_prepared(prepared, moment, explain=False)  # what the probes score: keys, no reasons
        assert {p: card_key(c) for p, c in keys.cards.items()} == {
            p: card_key(c) for p, c in whole.cards.items()}
        assert {a: account_key(s) for a, s in keys.accounts.items()} == {
            a: account_key(s) for a, s in whole.accounts.items()}
        assert sum(map(len, (c.reasons for c in keys.cards.values()))) < sum(
            map(len, (c.reasons for c in whole.cards.values())))
