"""`workspace.merge_what_changed` on a real store: when the people and accounts stored since the last
merge read to identity as they did (the same email, account, cross-ids, domain), only their groups
are merged again, and the kept canonical records then equal what merging the whole store gives;
anything identity reads that changed, or a record added or deleted, leaves the store to a whole merge."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadloop.crm.records import Account, Crm, Opportunity, Person
from leadloop.store import Store, open_store
from leadloop.sync import pipeline, workspace
from leadloop.sync.workspace import merge_what_changed

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SF_LEE, SF_KIM = "sf-contact:003000000000000001", "sf-contact:003000000000000002"
SF_LEAD = "sf-lead:00Q000000000000001"
HS_LEE, HS_ANA, HS_NOMAIL = "hs-contact:101", "hs-contact:102", "hs-contact:103"
SF_DELTA, HS_DELTA, HS_OMEGA = "sf-account:001000000000000001", "hs-company:501", "hs-company:502"


@pytest.fixture
def store(store_url: str, monkeypatch: pytest.MonkeyPatch):
    # a world of nine links: any change is past the share at which a large store is merged whole
    monkeypatch.setattr(workspace, "PARTIAL_MERGE_SHARE", 1.0)
    with open_store(store_url) as opened:
        yield opened


def _world() -> dict[str, list[Any]]:
    at = T0 - timedelta(days=3)
    return {
        "Contact": [
            Person(id=SF_LEE, email="lee@delta.com", title="Engineer", account_id="001000000000000001",
                   salesforce_contact_id="003000000000000001", updated_at=at),
            Person(id=SF_KIM, email="kim@delta.com", title="Buyer", account_id="001000000000000001",
                   salesforce_contact_id="003000000000000002", updated_at=at)],
        "Lead": [Person(id=SF_LEAD, email="kim@delta.com", title="Buyer", company_name="Delta",
                        attributes={"converted_to": "003000000000000002"}, updated_at=at)],
        "contacts": [
            Person(id=HS_LEE, email="lee@delta.com", title="Design engineer", hubspot_id="101",
                   attributes={"salesforcecontactid": "003000000000000001"}, updated_at=at),
            Person(id=HS_ANA, email="ana@omega.com", title="Quality", account_id="502", hubspot_id="102",
                   updated_at=at),
            Person(id=HS_NOMAIL, title="Procurement", account_id="502", hubspot_id="103", updated_at=at)],
        "Account": [Account(id=SF_DELTA, name="Delta", domain="delta.com", industry="Power",
                            salesforce_id="001000000000000001", updated_at=at)],
        "companies": [
            Account(id=HS_DELTA, name="Delta Inc", domain="delta.com", industry="Power", hubspot_id="501",
                    attributes={"salesforceaccountid": "001000000000000001"}, updated_at=at),
            Account(id=HS_OMEGA, name="Omega", domain="omega.com", industry="Automotive", hubspot_id="502",
                    updated_at=at)],
        "Opportunity": [Opportunity(id="sf-opportunity:006000000000000001", name="SiC design-in",
                                    account_id="001000000000000001", amount=50_000.0,
                                    contact_ids=("003000000000000002",))],
        "deals": [Opportunity(id="hs-deal:901", account_id="502", name="Qualification", amount=8_000.0,
                              contact_ids=("102",)),
                  Opportunity(id="hs-deal:902", account_id="502", name="Samples", amount=1_000.0)],
    }


def _store(store: Store, streams: dict[str, list[Any]], now: datetime) -> None:
    for stream, records in streams.items():
        crm = Crm.HUBSPOT if stream[0].islower() else Crm.SALESFORCE
        store.upsert_snapshots(crm, stream, records, now=now)


def _merge_whole(store: Store) -> None:
    """A whole merge kept in the store, as an hourly run that merges saves it."""
    through = store.stored_through()
    raw, identity = pipeline.load_and_resolve(store, activities=False)
    pipeline.save_identity(store, identity, through, pipeline.identity_keys(raw))


def _kept(store: Store) -> tuple[Any, ...]:
    return (store.identity_links(), sorted(map(repr, store.identity_conflicts())),
            *(store.canonical_records(kind) for kind in ("people", "accounts", "opportunities")))


def _merged_whole(store: Store) -> tuple[Any, ...]:
    """What merging the whole store gives now, read back as `_kept` reads the kept merge."""
    through = store.stored_through()
    raw, identity = pipeline.load_and_resolve(store, activities=False)
    pipeline.save_identity(store, identity, through, pipeline.identity_keys(raw))
    return _kept(store)


def _edit(record: Any, hours: int, **changes: Any) -> Any:
    return dataclasses.replace(record, updated_at=T0 + timedelta(hours=hours), **changes)


def test_titles_industries_and_deals_changed_merge_only_their_groups_as_the_whole_store_would(store: Store):
    world = _world()
    _store(store, world, T0)
    _merge_whole(store)
    assert merge_what_changed(store, store.stored_through()) is None  # nothing changed since

    lee_hs, ana = world["contacts"][0], world["contacts"][1]
    edits = {"contacts": [_edit(lee_hs, 1, title="Lead engineer"), _edit(ana, 1, lifecycle_status="sql")],
             "Account": [_edit(world["Account"][0], 1, industry="Industrial")],
             "deals": [dataclasses.replace(world["deals"][0], amount=12_000.0)]}
    _store(store, edits, T0 + timedelta(hours=1))
    store.tombstone(Crm.HUBSPOT, "deals", ["hs-deal:902"], now=T0 + timedelta(hours=1))

    patch = merge_what_changed(store, store.stored_through())
    assert patch is not None and len(patch) == 2 + 1 + 2  # Lee and Ana, Delta, two deals (one dropped)
    read = [r.id for r in patch.read(store, "opportunities")]  # as the run reads them, before saving
    assert read == ["hs-deal:901", "sf-opportunity:006000000000000001"]
    patch.save(store)
    patched = _kept(store)
    people = {p.id: p for p in patched[2]}
    assert people["person:lee@delta.com"].title == "Engineer"  # the Salesforce contact's title leads
    assert people["person:ana@omega.com"].lifecycle_status == "sql"
    assert {a.id: a.industry for a in patched[3]}["account:delta.com"] == "Industrial"
    assert [(o.id, o.amount) for o in patched[4]] == [("hs-deal:901", 12_000.0),
                                                       ("sf-opportunity:006000000000000001", 50_000.0)]
    assert patched == _merged_whole(store)


@pytest.mark.parametrize("change", ["email", "account", "cross-id", "domain", "new person", "deleted person"])
def test_a_change_to_what_identity_reads_leaves_the_store_to_a_whole_merge(store: Store, change: str):
    world = _world()
    _store(store, world, T0)
    _merge_whole(store)
    before = _kept(store)
    lee_hs, ana = world["contacts"][0], world["contacts"][1]
    later = T0 + timedelta(hours=1)
    if change == "email":
        _store(store, {"contacts": [_edit(ana, 1, email="ana@delta.com")]}, later)
    elif change == "account":
        _store(store, {"contacts": [_edit(ana, 1, account_id="501")]}, later)
    elif change == "cross-id":
        _store(store, {"contacts": [_edit(lee_hs, 1, attributes={})]}, later)
    elif change == "domain":
        _store(store, {"companies": [_edit(world["companies"][1], 1, domain="omega-semi.com")]}, later)
    elif change == "new person":
        newcomer = Person(id="hs-contact:104", email="kim@delta.com", hubspot_id="104")
        _store(store, {"contacts": [newcomer]}, later)
    else:
        store.tombstone(Crm.HUBSPOT, "contacts", [HS_ANA], now=later)
    assert merge_what_changed(store, store.stored_through()) is None
    assert _kept(store) == before  # untouched: the run merges the whole store instead


def test_links_saved_before_identity_keys_were_kept_leave_the_store_to_a_whole_merge(store: Store):
    world = _world()
    _store(store, world, T0)
    through = store.stored_through()
    _raw, identity = pipeline.load_and_resolve(store, activities=False)
    pipeline.save_identity(store, identity, through)  # no keys: as a store of schema version 8 has them
    edit = _edit(world["contacts"][1], 1, title="Quality manager")
    _store(store, {"contacts": [edit]}, T0 + timedelta(hours=1))
    assert merge_what_changed(store, store.stored_through()) is None
