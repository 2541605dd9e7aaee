"""The HubSpot connector against the sandbox, beyond the shared contract: every stream, HubSpot's
lagging search, company write-back, task idempotency across a lost ledger, partial task failures,
429s without Retry-After, and `crm check|setup` on a portal without leadloop's properties."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from contract_harness import unique_emails
from harness_hubspot import FAST, HubSpotHarness
from hubspot import HubSpot

from leadloop.connectors.hubspot.client import hubspot_client
from leadloop.connectors.hubspot.setup import check, setup
from leadloop.connectors.hubspot.sink import HubSpotSink
from leadloop.connectors.hubspot.source import HubSpotSource
from leadloop.connectors.mapping import CrmNotSetUp, load_mapping
from leadloop.connectors.settings import ConnectionSettings
from leadloop.crm.changes import FieldUpdate, ObjectType, Priority, TaskUpsert
from leadloop.crm.records import Account, Activity, Crm, Owner, Person
from leadloop.sandbox.server import running_sandbox


@pytest.fixture(scope="module")
def harness(sandbox: Any) -> HubSpotHarness:
    if "hubspot" not in sandbox.connection:
        pytest.skip("the sandbox has no HubSpot backend")
    return HubSpotHarness(sandbox)


def ids(pages: Any) -> set[str]:
    return {r.id for p in pages for r in p.records}


def test_a_first_run_pulls_every_stream_with_cursors_and_no_rejections(harness):
    source = harness.make_source()
    kinds: dict[str, set[type]] = {}
    for stream in source.streams():
        pages = list(source.pull(stream, None))
        assert not [r for p in pages for r in p.rejected], stream
        kinds[stream] = {type(r) for p in pages for r in p.records}
    assert kinds["owners"] == {Owner} and kinds["contacts"] == {Person} and kinds["companies"] == {Account}
    for stream in ("form_submissions", "page_views", "email_events", "event_attendance"):
        assert kinds[stream] == {Activity}, stream
    assert source.client.counter.total > 0


def test_lagging_search_is_covered_by_the_overlap_window(harness, sandbox):
    cursor = max(p.cursor for p in harness.make_source().pull("contacts", None) if p.cursor)
    sandbox.admin_post("faults", {"crm": "hubspot", "search_lag_seconds": 2})
    late = harness.create_person(next(unique_emails("lagging", 1)))  # invisible to search for 2 s
    sandbox.reset_faults()
    time.sleep(0.05)
    seen_first = harness.create_person(next(unique_emails("prompt", 1)))
    first = list(harness.make_source(overlap_minutes=0).pull("contacts", cursor))
    assert f"hs-contact:{seen_first}" in ids(first) and f"hs-contact:{late}" not in ids(first)
    cursor = max(p.cursor for p in first if p.cursor)  # already past the lagging record
    time.sleep(2.1)
    without_overlap = list(harness.make_source(overlap_minutes=0).pull("contacts", cursor))
    with_overlap = list(harness.make_source().pull("contacts", cursor))
    assert f"hs-contact:{late}" not in ids(without_overlap)
    assert f"hs-contact:{late}" in ids(with_overlap)


def test_account_fields_are_written_to_companies(harness):
    company = harness.hs.crm.companies.basic_api.create({"properties": {"name": "Writeback Semi"}})
    update = FieldUpdate(crm=Crm.HUBSPOT, object_type=ObjectType.ACCOUNT, record_id=str(company.id),
                         field="account_tier", value="A")
    assert harness.make_sink().write_fields([update])[0].ok
    stored = harness.hs.crm.companies.basic_api.get_by_id(company.id, properties=["ll_account_tier"])
    assert stored.properties["ll_account_tier"] == "A"


def a_task(harness: HubSpotHarness, person: str, key: str) -> TaskUpsert:
    return TaskUpsert(crm=Crm.HUBSPOT, key=key, owner_id=harness.owner_id(), subject="Call about samples",
                      body="Requested samples twice", due_date=date(2030, 2, 1), priority=Priority.HIGH,
                      person_record_id=person)


def test_a_task_created_before_a_lost_ledger_commit_is_found_not_created_again(harness):
    person = harness.create_person(next(unique_emails("ledger", 1)))
    key = f"ll-lost-ledger-{person}"
    created = harness.make_sink().upsert_tasks([a_task(harness, person, key)])[0]
    # the run crashed before the ledger stored `created`: the next run knows nothing of it
    again = HubSpotSink(harness.client(), harness.mapping, known_tasks={}).upsert_tasks(
        [a_task(harness, person, key)])[0]
    assert created.ok and again.ok and again.crm_id == created.crm_id
    assert harness.count_tasks_with_key(key) == 1


def test_a_task_upserted_twice_in_one_run_while_search_lags_is_one_task(harness, sandbox):
    person = harness.create_person(next(unique_emails("lagtask", 1)))
    key = f"ll-lagging-{person}"
    sink = harness.make_sink()
    sandbox.admin_post("faults", {"crm": "hubspot", "search_lag_seconds": 1})
    try:
        first = sink.upsert_tasks([a_task(harness, person, key)])[0]
        second = sink.upsert_tasks([a_task(harness, person, key)])[0]
    finally:
        sandbox.reset_faults()
    assert first.crm_id == second.crm_id
    time.sleep(1.1)
    assert harness.count_tasks_with_key(key) == 1


def test_a_rejected_task_is_reported_with_hubspots_message_and_created_on_the_next_run(harness, sandbox):
    person = harness.create_person(next(unique_emails("rejtask", 1)))
    keys = [f"ll-partial-{person}-{n}" for n in range(3)]
    sandbox.admin_post("faults", {"crm": "hubspot", "reject": [
        {"object": "tasks", "field": "ll_key", "value": keys[1], "message": "Owner is on leave"}]})
    try:
        results = harness.make_sink().upsert_tasks([a_task(harness, person, k) for k in keys])
    finally:
        sandbox.reset_faults()
    assert [r.ok for r in results] == [True, False, True]
    assert "Owner is on leave" in results[1].error
    retried = harness.make_sink().upsert_tasks([a_task(harness, person, keys[1])])[0]
    assert retried.ok and harness.count_tasks_with_key(keys[1]) == 1


def test_a_429_without_retry_after_is_retried_with_backoff(harness, sandbox):
    ids_ = harness.create_people(list(unique_emails("noretryafter", 3)))
    sink = harness.make_sink()
    sandbox.admin_post("faults", {"crm": "hubspot", "status_429_every": 2})
    try:
        updates = [FieldUpdate(crm=Crm.HUBSPOT, object_type=ObjectType.PERSON, record_id=i, field="score",
                               value=33) for i in ids_]
        results = sink.write_fields(updates) + sink.write_fields(updates)
    finally:
        sandbox.reset_faults()
    assert all(r.ok for r in results)
    assert sink.client.counter.total >= 3  # at least one refused call was made again


def test_crm_check_names_each_missing_property_and_passes_for_them_after_setup(tmp_path):
    mapping = load_mapping()
    with running_sandbox(size="tiny", seed=3, empty=True) as handle:
        settings = ConnectionSettings(**handle.connection)
        before = check(settings, mapping)
        missing = {i.what.split(" ")[0] for i in before if not i.ok}
        owned = {f"contacts.{p}" for p in mapping.hubspot.owned_person.values()} | {
            f"companies.{p}" for p in mapping.hubspot.owned_account.values()} | {"tasks.ll_key"}
        assert owned <= missing
        assert all(i.fix for i in before if not i.ok)
        actions = setup(settings, mapping)
        assert "created contacts.ll_score" in actions and "created tasks.ll_key" in actions
        after = check(settings, mapping)
        assert not [i for i in after if not i.ok and i.what.split(" ")[0] in owned]
        assert setup(settings, mapping) == []  # nothing left to do


def test_writes_before_setup_stop_at_the_first_answer_that_a_property_does_not_exist():
    """Without `crm setup` every batch would fail the same way: the sink raises `CrmNotSetUp` at the
    first, for a field write and for the task key's search alike; a bad value stays one record's."""
    mapping = load_mapping()
    with running_sandbox(size="small", seed=3) as handle:
        settings = ConnectionSettings(**handle.connection)
        client = hubspot_client(settings.hubspot, settings.ca_cert, policy=FAST)
        pages = HubSpotSource(client, mapping.hubspot, streams=["contacts"]).pull("contacts", None)
        contacts = [p.hubspot_id for page in pages for p in page.records if p.hubspot_id][:250]
        assert len(contacts) > 100  # more than one batch
        sink = HubSpotSink(client, mapping.hubspot)
        updates = [FieldUpdate(crm=Crm.HUBSPOT, object_type=ObjectType.PERSON, record_id=rid, field="score",
                               value=50) for rid in contacts]
        with pytest.raises(CrmNotSetUp, match="ll_score"):
            sink.write_fields(updates)
        with pytest.raises(CrmNotSetUp, match="ll_key"):
            sink.find_tasks(["ll-0123456789abcdef"])
        assert client.counter.calls["POST /crm/v3/objects/contacts/batch/update"] == 1  # the first batch only


def test_the_client_never_shows_its_token(harness):
    client = hubspot_client(harness.settings.hubspot, harness.settings.ca_cert, policy=FAST)
    token = harness.settings.hubspot.access_token.get_secret_value()
    source = HubSpotSource(client, harness.mapping, overlap=timedelta(0))
    assert token not in repr(client) and token not in repr(source) and token not in repr(harness.make_sink())


class _Pulls:
    """One stream of a running sandbox pulled with a new client each time, and the sandbox's clock."""

    def __init__(self, handle: Any, stream: str) -> None:
        import requests

        self.handle, self.stream = handle, stream
        self.settings, self.mapping = ConnectionSettings(**handle.connection), load_mapping()
        self.http = requests.Session()
        self.http.trust_env, self.http.verify = False, str(handle.ca_path)

    def advance(self, hours: float) -> datetime:
        """Move the sandbox's clock on; returns its time now."""
        admin = self.handle.admin_url
        moved = self.http.post(f"{admin}/clock", json={"advance_seconds": hours * 3600}, timeout=30)
        moved.raise_for_status()
        return datetime.fromisoformat(self.http.get(f"{admin}/health", timeout=30).json()["now"])

    def pull(self, since: datetime | None, checked: datetime | None) -> tuple[list[Any], dict[str, int]]:
        """The stream's pages from `since`, the deletions last checked at `checked`; and the calls made."""
        client = hubspot_client(self.settings.hubspot, self.settings.ca_cert, policy=FAST)
        source = HubSpotSource(client, self.mapping.hubspot, streams=[self.stream])
        pages = list(source.pull(self.stream, since, deletions_checked=checked))
        return pages, dict(client.counter.calls)


def _last(pages: list[Any], attribute: str) -> Any:
    """The highest value of a page attribute (a cursor, a deletion check) among pages, None for none."""
    values = [getattr(p, attribute) for p in pages if getattr(p, attribute) is not None]
    return max(values) if values else None


def test_a_search_ends_on_hubspots_clock_and_deletions_are_checked_once_per_interval():
    """A quiet incremental pull costs one search: its cursor is HubSpot's clock when the search ran
    (so the next overlap does not re-read old changes), and the archived listing waits for its
    interval, measured on HubSpot's clock from the last check the caller kept."""
    with running_sandbox(size="tiny", seed=5) as handle:
        sandbox = _Pulls(handle, "contacts")
        advance, pull = sandbox.advance, sandbox.pull
        first, _ = pull(None, None)
        cursor, checked = _last(first, "cursor"), _last(first, "deletions_checked")
        assert checked is not None and cursor >= checked - timedelta(seconds=5)

        now = advance(1)
        quiet, calls = pull(cursor, checked)
        assert calls == {"POST /crm/v3/objects/contacts/search": 1}, calls
        assert _last(quiet, "deletions_checked") is None  # (it re-read the first run's overlap)
        horizon = _last(quiet, "cursor")
        assert now - timedelta(seconds=5) <= horizon <= now, (horizon, now)

        contacts = HubSpot(access_token=handle.connection["hubspot"]["access_token"],
                           host=handle.base_url, ssl_ca_cert=str(handle.ca_path)).crm.contacts
        existing = sorted(str(c.id) for c in contacts.basic_api.get_page(limit=5).results)
        contacts.basic_api.update(existing[0], {"properties": {"firstname": "Changed"}})
        contacts.basic_api.archive(existing[1])
        advance(1)
        changed, calls = pull(horizon, checked)  # the change after the horizon is found; no listing yet
        assert ids(changed) == {f"hs-contact:{existing[0]}"}
        assert calls == {"POST /crm/v3/objects/contacts/search": 1}, calls
        assert not [d for p in changed for d in p.deleted]

        advance(5)  # six hours after the first run's list: the archived records are listed again
        checking, calls = pull(_last(changed, "cursor"), checked)
        assert [d for p in checking for d in p.deleted] == [f"hs-contact:{existing[1]}"]
        assert calls == {"POST /crm/v3/objects/contacts/search": 1, "GET /crm/v3/objects/contacts": 1}
        assert _last(checking, "deletions_checked") > checked + timedelta(hours=6, seconds=-5)


def test_a_call_moved_to_another_contact_is_read_again_at_the_next_deletion_check():
    """HubSpot moves an association without touching the record's modification time, so no search
    finds a call moved from the wrong contact to the right one; the next deletion check lists the
    streams read with associations again, and the call comes back naming its new contact."""
    with running_sandbox(size="tiny", seed=5) as handle:
        sandbox = _Pulls(handle, "calls")
        advance, pull = sandbox.advance, sandbox.pull
        first, _ = pull(None, None)
        cursor, checked = _last(first, "cursor"), _last(first, "deletions_checked")
        call = next(a for p in first for a in p.records if a.id.count(":") == 1)  # one contact
        call_id, was = call.id.split(":")[1], call.person_id.split(":")[1]
        hs = HubSpot(access_token=handle.connection["hubspot"]["access_token"], host=handle.base_url,
                     ssl_ca_cert=str(handle.ca_path))
        other = next(str(c.id) for c in hs.crm.contacts.basic_api.get_page(limit=20).results
                     if str(c.id) != was)
        associations = hs.crm.associations.v4.basic_api
        associations.archive("calls", call_id, "contacts", was)
        associations.create_default("calls", call_id, "contacts", other)

        advance(1)
        searched, calls = pull(cursor, checked)
        assert call.id not in ids(searched)  # the search does not see the move
        assert calls == {"POST /crm/v3/objects/calls/search": 1}, calls

        advance(5)  # six hours after the first run's list
        checking, calls = pull(_last(searched, "cursor"), checked)
        moved = [a for p in checking for a in p.records if a.id == call.id]
        assert [a.person_id for a in moved] == [f"hs-contact:{other}"]
        assert all(p.cursor is None for p in checking if call.id in ids([p]))  # a listing moves no cursor
        assert calls["GET /crm/v3/objects/calls"] >= 2, calls  # the live list, then the archived one


def test_a_contact_removed_from_a_call_loses_its_activity_and_a_deleted_call_takes_all_of_them(tmp_path):
    """A call gives one activity per contact (`hs-call:X`, then `hs-call:X:<contact>`): when a rep
    removes contacts from it, the store keeps exactly one activity per contact left, none twice (the
    first id passes to the next contact); when the call is deleted, every one of its activities goes."""
    from sqlalchemy import select

    from leadloop.store.db import open_store
    from leadloop.store.tables import SNAPSHOTS
    from leadloop.sync.pipeline import Runtime, pull_stream

    with running_sandbox(size="tiny", seed=5) as handle:
        sandbox = _Pulls(handle, "calls")
        store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        runtime = Runtime(settings=None, playbook=None,  # type: ignore[arg-type]  # a pull needs neither
                          mapping=sandbox.mapping, store=store)

        def pull() -> None:
            client = hubspot_client(sandbox.settings.hubspot, sandbox.settings.ca_cert, policy=FAST)
            runtime.sources = {Crm.HUBSPOT: HubSpotSource(client, sandbox.mapping.hubspot, streams=["calls"])}
            pull_stream(runtime, Crm.HUBSPOT, "calls")

        def live(call_id: str) -> dict[str, str]:
            """The call's live activities in the store: record id → contact."""
            with store.engine.connect() as conn:
                rows = conn.execute(select(SNAPSHOTS.c.record_id, SNAPSHOTS.c.person_ref).where(
                    SNAPSHOTS.c.stream == "calls", SNAPSHOTS.c.deleted.is_(False),
                    SNAPSHOTS.c.record_id.like(f"hs-call:{call_id}%"))).all()
            return {rid: ref for rid, ref in rows if rid.split(":")[1] == call_id}

        hs = HubSpot(access_token=handle.connection["hubspot"]["access_token"], host=handle.base_url,
                     ssl_ca_cert=str(handle.ca_path))
        contacts = sorted((str(c.id) for c in hs.crm.contacts.basic_api.get_page(limit=3).results),
                          key=lambda c: (len(c), c))
        first, second, third = contacts
        call = str(hs.crm.objects.calls.basic_api.create({"properties": {
            "hs_timestamp": sandbox.advance(0).isoformat(), "hs_call_duration": "1200000"}}).id)
        associations = hs.crm.associations.v4.basic_api
        for contact in contacts:
            associations.create_default("calls", call, "contacts", contact)

        pull()
        assert live(call) == {f"hs-call:{call}": f"hs-contact:{first}",
                              f"hs-call:{call}:{second}": f"hs-contact:{second}",
                              f"hs-call:{call}:{third}": f"hs-contact:{third}"}

        associations.archive("calls", call, "contacts", first)  # the first id passes to `second`
        associations.archive("calls", call, "contacts", third)
        sandbox.advance(6)  # the next deletion check lists the call again with its contacts
        pull()
        assert live(call) == {f"hs-call:{call}": f"hs-contact:{second}"}

        hs.crm.objects.calls.basic_api.archive(call)
        sandbox.advance(6)
        pull()
        assert live(call) == {}
        store.close()


@pytest.mark.parametrize("stream, pages_endpoint", [
    ("form_submissions", "GET /form-integrations/v1/submissions/forms/{formGuid}"),
    ("email_events", "GET /email/public/v1/events"),
])
def test_activity_emails_are_resolved_to_contacts_in_full_batches_across_pages(harness, stream,
                                                                               pages_endpoint):
    source = harness.make_source(streams=[stream])
    pages = list(source.pull(stream, None))
    assert sum(len(p.records) for p in pages) > 0
    looked_up = len(source.activities._contact_by_email)
    lookups = source.client.counter.calls.get("POST /crm/v3/objects/contacts/batch/read", 0)
    read_pages = source.client.counter.calls[pages_endpoint]
    # 100 emails a lookup, the last one less: as few as the emails allow, however many pages they span
    assert looked_up and lookups == -(-looked_up // 100), (looked_up, lookups, read_pages)
