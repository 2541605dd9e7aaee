"""`incremental.touched` on a real store: an hourly run rescores whom a changed record names, and whom
it named before its change: an activity moved to another person leaves its old person's score."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from leadloop.crm.identity import IdentityResult
from leadloop.crm.records import Activity, ActivityKind, ContactRole, Crm, Opportunity, Person
from leadloop.store import Store, open_store
from leadloop.sync.incremental import Touched, touched

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LEE, KIM, ANA = (f"sf-contact:003{n:015d}" for n in (1, 2, 3))


@pytest.fixture
def store(store_url: str):
    with open_store(store_url) as opened:
        yield opened


def _identity() -> IdentityResult:
    links = {LEE: "person:lee@delta.com", KIM: "person:kim@delta.com", ANA: "person:ana@omega.com",
             "sf-account:001A": "account:delta.com", "sf-account:001B": "account:omega.com"}
    return IdentityResult(people=[], accounts=[], activities=[], opportunities=[], links=links,
                          person_links={k: v for k, v in links.items() if k.startswith("sf-contact:")})


def _visit(person: str, minutes: int = 0) -> Activity:
    return Activity(id="sf-task:00T1", person_id=person, kind=ActivityKind.MEETING,
                    occurred_at=T0 - timedelta(days=1, minutes=minutes))


def _touched(store: Store, through: datetime) -> Touched:
    found = touched(store, _identity(), {"through": through.isoformat()}, T0 + timedelta(hours=3),
                    stored_links=_identity().links)
    assert isinstance(found, Touched)
    return found


def test_an_activity_moved_to_another_person_rescores_both_and_a_later_change_still_names_the_first(
        store: Store):
    people = [Person(id=p, email=f"{p[-1]}@delta.com") for p in (LEE, KIM)]
    store.upsert_snapshots(Crm.SALESFORCE, "Contact", people, now=T0)
    store.upsert_snapshots(Crm.SALESFORCE, "Task", [_visit(LEE)], now=T0)
    through = store.stored_through()
    assert through is not None

    # the meeting was logged against the wrong contact and is corrected in the CRM
    store.upsert_snapshots(Crm.SALESFORCE, "Task", [_visit(KIM)], now=T0 + timedelta(hours=1))
    found = _touched(store, through)
    assert found.people == {"person:lee@delta.com", "person:kim@delta.com"}
    assert found.counts["people an activity moved away from"] == 1

    # a run that dies before saving its scores leaves the move for the next, even after another edit
    store.upsert_snapshots(Crm.SALESFORCE, "Task", [_visit(KIM, minutes=5)], now=T0 + timedelta(hours=2))
    assert _touched(store, through).people == {"person:lee@delta.com", "person:kim@delta.com"}

    # a change to an activity that never moved touches only whom it names
    other = Activity(id="sf-task:00T2", person_id=KIM, kind=ActivityKind.MEETING, occurred_at=T0)
    store.upsert_snapshots(Crm.SALESFORCE, "Task", [other], now=T0 + timedelta(hours=3))
    scored = store.stored_through()
    assert scored is not None
    longer = Activity(id=other.id, person_id=KIM, kind=ActivityKind.MEETING, occurred_at=T0,
                      duration_seconds=60)
    store.upsert_snapshots(Crm.SALESFORCE, "Task", [longer], now=T0 + timedelta(hours=4))
    quiet = _touched(store, scored)
    assert quiet.people == {"person:kim@delta.com"}
    assert "people an activity moved away from" not in quiet.counts


def test_an_opportunity_or_contact_role_that_drops_a_person_or_account_rescores_them(store: Store):
    deal = Opportunity(id="sf-opportunity:006A", account_id="sf-account:001A", contact_ids=(LEE,))
    role = ContactRole(id="sf-contact-role:00KA", opportunity_id=deal.id, person_id=KIM)
    store.upsert_snapshots(Crm.SALESFORCE, "Opportunity", [deal], now=T0)
    store.upsert_snapshots(Crm.SALESFORCE, "OpportunityContactRole", [role], now=T0)
    through = store.stored_through()
    assert through is not None

    moved = Opportunity(id=deal.id, account_id="sf-account:001B", contact_ids=(ANA,))
    store.upsert_snapshots(Crm.SALESFORCE, "Opportunity", [moved], now=T0 + timedelta(hours=1))
    store.upsert_snapshots(Crm.SALESFORCE, "OpportunityContactRole",
                           [ContactRole(id=role.id, opportunity_id=deal.id, person_id=ANA)],
                           now=T0 + timedelta(hours=1))
    found = _touched(store, through)

    assert found.people == {"person:lee@delta.com", "person:kim@delta.com", "person:ana@omega.com"}
    assert found.accounts == {"account:delta.com", "account:omega.com"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("postgresql, English collation", marks=pytest.mark.postgres)])
def whole_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A store on both databases, and on PostgreSQL in a database whose collation sorts by letters
    first (ICU en-US, as a database created under an English locale does): `hs-call:1:2` sorts
    after `hs-call:1;` there."""
    if request.param in ("sqlite", "postgresql"):
        url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
        with open_store(url) as opened:
            yield opened
        return
    cluster, admin = request.getfixturevalue("postgres_cluster"), request.getfixturevalue("_postgres_admin")
    name = f"english_{os.getpid()}"
    admin.execute(f"DROP DATABASE IF EXISTS {name}")
    admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' "
                  "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
    assert admin.execute("SELECT 'hs-call:1:2' > 'hs-call:1;' COLLATE \"en-US-x-icu\"").fetchone()[0]
    with open_store(cluster.url(database=name)) as opened:
        yield opened


def test_a_call_read_whole_keeps_one_activity_per_contact_it_names_and_rescores_the_ones_it_dropped(
        whole_store: Store):
    store = whole_store
    """A HubSpot call gives one activity per contact (`X`, then `X:contact`); read again whole after
    contacts were removed from it, the store keeps only what it gives now (`store_pages`' `whole`),
    and the hourly run rescores the contacts it no longer names. `hs-call:10` is another call, on
    both sides of `hs-call:1:` in some collations: it stays."""
    from sqlalchemy import select

    from leadloop.store.tables import SNAPSHOTS

    def call(record_id: str, person: str) -> Activity:
        return Activity(id=record_id, person_id=person, kind=ActivityKind.SALES_CALL, occurred_at=T0)

    def live() -> dict[str, str]:
        with store.engine.connect() as conn:
            return dict(conn.execute(select(SNAPSHOTS.c.record_id, SNAPSHOTS.c.person_ref).where(
                SNAPSHOTS.c.kind == "activities", SNAPSHOTS.c.deleted.is_(False))).all())

    first = [call("hs-call:1", LEE), call("hs-call:1:2", KIM), call("hs-call:1:3", ANA)]
    store.store_pages("hubspot", "calls", [([*first, call("hs-call:10", ANA)], None)], now=T0,
                      whole={"hs-call:1": {a.id for a in first}, "hs-call:10": {"hs-call:10"}})
    through = store.stored_through()
    assert through is not None

    # Lee and Ana were removed from call 1: Kim, the one left, takes the call's first id
    store.store_pages("hubspot", "calls", [([call("hs-call:1", KIM)], None)], now=T0 + timedelta(hours=1),
                      whole={"hs-call:1": {"hs-call:1"}})
    assert live() == {"hs-call:1": KIM, "hs-call:10": ANA}
    found = _touched(store, through)
    assert {"person:lee@delta.com", "person:kim@delta.com", "person:ana@omega.com"} <= found.people

    # call 1 deleted: a page that reads it whole with nothing takes all of it
    store.store_pages("hubspot", "calls", [], now=T0 + timedelta(hours=2), whole={"hs-call:1": set()})
    assert live() == {"hs-call:10": ANA}
