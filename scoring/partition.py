"""Scoring by account partition: the same result as one pass, in pieces that can run apart.

Everything the engine computes is local to an account: a person's fit reads their own record and
their account's, their intent reads their own activities, and an account's roll-up reads its own
people. So the people of one account, with their activities, can be scored without the rest, and
`partition_dataset` splits a dataset along that line:

- duplicates are settled first, over the whole dataset (a person's two versions may name different
  accounts), exactly as the engine settles them;
- each account goes to partition `crc32(account id) mod n` (stable across runs and machines); each
  person to their account's partition, or by their own id when they have none (or an unknown one);
- each activity goes with its person; an activity whose person is unknown goes by that person id,
  to one partition only, so it is counted once as an orphan;
- the asset catalog, which every activity is classified against, is shared by all.

`merge_results` puts the partitions' results back together: cards and account scores by id (in the
engine's order), the reports summed. `score_partitioned` does both around `score_dataset`; a test
checks it equals one pass, card for card.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from leadloop.crm.dataset import Dataset
from leadloop.playbook.model import Playbook
from leadloop.scoring.engine import ScoringResult, _sorted_unique, _unmatched, score_dataset
from leadloop.scoring.machine_email import MachineEmail


def partition_of(key: str, parts: int) -> int:
    return zlib.crc32(key.encode("utf-8")) % parts if parts > 1 else 0


@dataclass(frozen=True, slots=True)
class Partition:
    index: int
    dataset: Dataset


def partition_people(dataset: Dataset, parts: int) -> tuple[list[Dataset], dict[str, int]]:
    """The accounts and people of `dataset` split as `partition_dataset` splits them, without the
    activities, and the partition of each person id (for placing activities with `activity_home`)."""
    if parts < 1:
        raise ValueError("a dataset is split into at least one partition")
    accounts = _sorted_unique(dataset.accounts, "updated_at")
    people = _sorted_unique(dataset.people, "updated_at")
    known_accounts = {a.id for a in accounts}
    pieces = [Dataset(assets=list(dataset.assets)) for _ in range(parts)]
    for account in accounts:
        pieces[partition_of(account.id, parts)].accounts.append(account)
    home: dict[str, int] = {}
    for person in people:
        key = person.account_id if person.account_id in known_accounts else person.id
        home[person.id] = index = partition_of(key, parts)
        pieces[index].people.append(person)
    return pieces, home


def activity_home(person_id: str, home: Mapping[str, int], parts: int) -> int:
    """The partition an activity of `person_id` goes to: its person's, or by the person id itself
    when the person is unknown (so an orphan is counted once)."""
    index = home.get(person_id)
    return partition_of(person_id, parts) if index is None else index


def partition_dataset(dataset: Dataset, parts: int) -> list[Partition]:
    """`dataset` split into `parts` account partitions (see the module's docstring)."""
    pieces, home = partition_people(dataset, parts)
    for activity in dataset.activities:
        pieces[activity_home(activity.person_id, home, parts)].activities.append(activity)
    return [Partition(i, piece) for i, piece in enumerate(pieces)]


def merge_results(results: Sequence[ScoringResult]) -> ScoringResult:
    """The partitions' results as one (they must share a model version and a scoring moment)."""
    if not results:
        raise ValueError("nothing to merge")
    first = results[0]
    if any(r.model_version != first.model_version or r.scored_at != first.scored_at for r in results):
        raise ValueError("partitions scored with different playbooks or moments cannot be merged")
    cards, accounts, people, due = {}, {}, {}, {}
    unknown: Counter[str] = Counter()
    found: Counter = Counter()
    for result in results:
        cards.update(result.cards)
        accounts.update(result.accounts)
        people.update(result.people)
        due.update(result.due)
        unknown.update(result.unknown_titles)
        found.update(result.unmatched_counts)
    return ScoringResult(
        model_version=first.model_version,
        scored_at=first.scored_at,
        cards={key: cards[key] for key in sorted(cards)},
        accounts={key: accounts[key] for key in sorted(accounts)},
        unknown_titles=dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0]))),
        missing_titles=sum(r.missing_titles for r in results),
        unmatched_activities=_unmatched(dict(found)),
        orphan_activities=sum(r.orphan_activities for r in results),
        future_activities=sum(r.future_activities for r in results),
        tiers=first.tiers,
        people={key: people[key] for key in sorted(people)},
        unmatched_counts=dict(found),
        machine_email=MachineEmail.merged(r.machine_email for r in results),
        due=due,
    )


def score_partitioned(playbook: Playbook, dataset: Dataset, now: datetime, parts: int) -> ScoringResult:
    """Score `dataset` in `parts` account partitions, one after the other, and merge the results (a
    flow reads each partition's activities from the store instead: `sync.pipeline.score_from_store`)."""
    if parts == 1:  # nothing to split: one pass, without copying the dataset into a partition
        return score_dataset(playbook, dataset, now)
    return merge_results([score_dataset(playbook, p.dataset, now) for p in partition_dataset(dataset, parts)])
