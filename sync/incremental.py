"""What an hourly run rescores: the people the change touches and those whose score came due.

A full rescore scores everyone; an hourly sync scores only

- the people whose stored records changed since the last hourly run saved its scores (a person, a
  lead or contact, an activity, a contact role, an opportunity naming them, or naming them before the
  change: an activity moved to another person), and the people whose identity links moved (merged,
  split);
- the people whose score is due (`scoring.due`: decay or a window would change what the CRM shows);
- the people with a field write the CRM refused (retried until it lands);
- and with each of them, every other person of their account, old and new: the account's roll-up and
  buying committee read them all.

Everyone else would be scored, written, saved and routed exactly as last time, so they are left
alone: their open tasks too, which routing would only find already there (a task is re-sent only
when its card moves, and then its person is due). Anything that reads the whole store (an owner,
asset or campaign changed; another playbook, field mapping or `min_change`; a run that saved
identity but died before its scores; no hourly run yet) makes the run a full rescore, which records
everyone's due time for the next.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadloop.crm.dataset import Dataset
from leadloop.crm.identity import IdentityResult
from leadloop.crm.version import leadloop_version
from leadloop.store.facade import Store
from leadloop.store.tables import _ACCOUNT_PREFIXES, raw_crm_id

STATE = "incremental"  # the assignment-state row naming the last hourly run that saved its scores
PERSON_KINDS = frozenset({"people", "activities", "contact_roles", "opportunities", "accounts"})
# kinds every person's score reads: a change to one rescores everyone
EVERYONE_KINDS = frozenset({"owners", "assets", "campaigns"})


@dataclass(slots=True)
class Touched:
    """The people (canonical ids) an hourly run rescores, and why, in counts."""

    people: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)


def fingerprint(playbook: Any, mapping: Any, min_change: float) -> str:
    """What the last hourly run's due times were computed under: the playbook, the field mapping,
    `min_change` and leadloop's version. Another one makes the next hourly run a full rescore."""
    text = json.dumps([playbook.model_dump_json(), repr(mapping), float(min_change), leadloop_version()])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def why_everyone(state: Mapping[str, Any], expected: str) -> str | None:
    """Why this hourly run must rescore everyone, or None when it may rescore only what changed."""
    if not state:
        return "no finished hourly run"  # the first, or after a rescore or a failed run
    if state.get("fingerprint") != expected:
        return "another playbook, field mapping, min_change or leadloop version"
    if not state.get("through"):
        return "the store was empty at the last hourly run"
    return None


def touched(store: Store, identity: IdentityResult, state: Mapping[str, Any], now: datetime,
            stored_links: Mapping[str, str] | None = None) -> Touched | str:
    """The people and accounts the change since the last hourly run touches (see the module), or
    why everyone must be rescored. `stored_links`: the links in the store, when the caller has them
    (a kept merge's are `identity.links` itself)."""
    found = Touched()
    links = identity.links
    changed = store.changed_since(datetime.fromisoformat(state["through"]))
    kinds = {kind for kind, *_ in changed}
    if kinds & EVERYONE_KINDS:
        return f"{', '.join(sorted(kinds & EVERYONE_KINDS))} changed: every score reads them"
    if kinds - PERSON_KINDS:
        return f"records of another kind changed ({', '.join(sorted(kinds - PERSON_KINDS))})"

    def person(record_id: str | None, why: str) -> None:
        canonical = identity.person_links.get(record_id or "")
        if canonical is not None:
            found.people.add(canonical)
            found.counts[why] = found.counts.get(why, 0) + 1

    def account(record_id: str | None, why: str) -> None:
        canonical = links.get(record_id or "")
        if canonical is not None:
            found.accounts.add(canonical)
            found.counts[why] = found.counts.get(why, 0) + 1

    def named(payload: str, people_why: str, accounts_why: str) -> None:
        """The people and account a contact role's or opportunity's payload names."""
        data = json.loads(payload)
        person(data.get("person_id"), people_why)
        for contact in data.get("contact_ids") or ():
            person(contact, people_why)
        account(data.get("account_id"), accounts_why)

    for kind, record_id, person_ref, payload, former in changed:
        if kind == "people":
            person(record_id, "changed people")
        elif kind == "accounts":
            account(record_id, "changed accounts")
        elif kind == "activities":
            person(person_ref, "people with changed activities")
            before = json.loads(former).get("person_id") if former else None
            if before != person_ref:  # moved to another person (a converted lead, a corrected match)
                person(before, "people an activity moved away from")
        else:  # contact roles and opportunities name their people and account, now and before
            if payload:
                named(payload, f"people of changed {kind}", f"accounts of changed {kind}")
            if former:
                named(former, f"people {kind} named before a change",
                      f"accounts {kind} named before a change")

    stored = store.identity_links() if stored_links is None else stored_links
    moved = {rid for rid, canonical in links.items() if stored.get(rid) != canonical}
    moved |= set(stored) - set(links)
    for rid in moved:
        for canonical in (links.get(rid), stored.get(rid)):
            if canonical is not None:
                (found.accounts if rid.startswith(_ACCOUNT_PREFIXES) else found.people).add(canonical)
    found.counts["identity links moved"] = len(moved)

    due = store.due_people(now)
    found.people |= due
    found.counts["due"] = len(due)
    by_raw = {raw_crm_id(rid): canonical for rid, canonical in links.items()}
    refused = {by_raw[f.record_id] for f in store.failures() if f.record_id in by_raw}
    found.people |= refused  # an account's id among them is harmless: `widen` keeps people it knows
    found.accounts |= refused
    found.counts["refused writes"] = len(refused)
    return found


def is_account(record_id: str) -> bool:
    """Whether a CRM-qualified id (an identity link's) is an account's rather than a person's."""
    return record_id.startswith(_ACCOUNT_PREFIXES)


def widen(found: Touched, dataset: Dataset, previous_accounts: Mapping[str, str | None], *,
          members: Mapping[str, str | None] | None = None, account_ids: Collection[str] | None = None,
          read: Callable[[str, Collection[str]], list[Any]] | None = None) -> Dataset:
    """The part of `dataset` to rescore: the touched people with everyone of their accounts (now and
    at their last score: `previous_accounts`), and the touched accounts with all their people; the
    owners, assets and campaigns whole. Returns it; `found` is widened to it.

    Everyone's account (`members`: person id → account id, in id order) and the accounts' ids come
    from `dataset`'s people and accounts, unless given with `read(kind, ids)`, which then reads the
    part's people and accounts (a kept merge: `Store.canonical_records`)."""
    if members is None or account_ids is None or read is None:
        members = {p.id: p.account_id for p in dataset.people}
        account_ids = {a.id for a in dataset.accounts}
        read = None
    accounts = {a for a in found.accounts if a in account_ids}
    for person_id in found.people:
        for account in (members.get(person_id), previous_accounts.get(person_id)):
            if account:
                accounts.add(account)
    kept = {person_id for person_id, account in members.items()
            if person_id in found.people or (account and account in accounts)}
    found.people = kept | {p for p in found.people if p not in members}  # vanished ones stay: to forget
    found.accounts = accounts & set(account_ids)
    if read is None:
        people = [p for p in dataset.people if p.id in kept]
        part_accounts = [a for a in dataset.accounts if a.id in found.accounts]
    else:
        people, part_accounts = read("people", kept), read("accounts", found.accounts)
    opportunities = [o for o in dataset.opportunities
                     if (o.account_id in found.accounts) or any(c in kept for c in o.contact_ids)]
    opportunity_ids = {o.id for o in opportunities}
    return Dataset(
        accounts=part_accounts, people=people, activities=[],
        opportunities=opportunities, campaigns=dataset.campaigns, assets=dataset.assets,
        owners=dataset.owners, contact_roles=[r for r in dataset.contact_roles
                                              if r.person_id in kept or r.opportunity_id in opportunity_ids],
    )


def crm_persons(person_links: Mapping[str, str], people: Iterable[str]) -> frozenset[str]:
    """The CRM person ids (what stored activities name) of canonical people, and the canonical ids."""
    wanted = set(people)
    return frozenset({rid for rid, canonical in person_links.items() if canonical in wanted} | wanted)
