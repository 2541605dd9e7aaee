"""`incremental.widen` picks the same part whether it reads everyone from the merged dataset or, from a
kept merge, knows only who belongs to which account and reads the part's records by id."""

from __future__ import annotations

import dataclasses

from leadloop.crm.dataset import Dataset
from leadloop.crm.records import Account, ContactRole, Opportunity, Person
from leadloop.sync.incremental import Touched, widen


def _world() -> Dataset:
    accounts = [Account(id=f"account:a{n}.com", name=f"A{n}") for n in range(4)]
    people = [Person(id=f"person:p{n}@a{n % 4}.com", email=f"p{n}@a{n % 4}.com",
                     account_id=f"account:a{n % 4}.com" if n % 5 else None) for n in range(20)]
    opportunities = [Opportunity(id="sf-opportunity:1", account_id="account:a1.com"),
                     Opportunity(id="sf-opportunity:2", contact_ids=(people[2].id,))]
    roles = [ContactRole(id="r1", opportunity_id="sf-opportunity:1", person_id=people[9].id),
             ContactRole(id="r2", opportunity_id="sf-opportunity:9", person_id=people[4].id)]
    return Dataset(accounts=accounts, people=people, opportunities=opportunities, contact_roles=roles)


def _both_ways(found: Touched, previous: dict[str, str | None]) -> tuple[Touched, Dataset, Touched, Dataset]:
    dataset = _world()
    from_dataset = dataclasses.replace(found, people=set(found.people), accounts=set(found.accounts))
    whole = widen(from_dataset, dataset, previous)
    reads: list[tuple[str, frozenset[str]]] = []

    def read(kind: str, ids):
        reads.append((kind, frozenset(ids)))
        return [r for r in getattr(dataset, kind) if r.id in ids]

    lean = dataclasses.replace(dataset, people=[], accounts=[])
    from_kept = dataclasses.replace(found, people=set(found.people), accounts=set(found.accounts))
    kept = widen(from_kept, lean, previous, members={p.id: p.account_id for p in dataset.people},
                 account_ids={a.id for a in dataset.accounts}, read=read)
    assert [kind for kind, _ in reads] == ["people", "accounts"]
    return from_dataset, whole, from_kept, kept


def test_a_kept_merge_widens_to_the_same_people_accounts_and_opportunities():
    people = _world().people
    found = Touched(people={people[1].id, people[5].id, "person:gone@x.com"}, accounts={"account:a3.com"})

    from_dataset, whole, from_kept, kept = _both_ways(found, {people[5].id: "account:a2.com"})

    assert kept == whole
    assert (from_kept.people, from_kept.accounts) == (from_dataset.people, from_dataset.accounts)
    # person 1's account, person 5's old one, the touched account; the vanished person stays, to forget
    assert from_kept.accounts == {"account:a1.com", "account:a2.com", "account:a3.com"}
    assert "person:gone@x.com" in from_kept.people and people[5].id in from_kept.people
    assert [o.id for o in kept.opportunities] == ["sf-opportunity:1", "sf-opportunity:2"]
    assert [r.id for r in kept.contact_roles] == ["r1"]


def test_nothing_touched_widens_to_nothing_either_way():
    _, whole, _, kept = _both_ways(Touched(), {})
    assert kept == whole and kept.people == [] and kept.accounts == []
