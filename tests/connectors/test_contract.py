"""The contract every connector passes against the sandbox, run once per CRM harness.

Harnesses: `harness_salesforce.py` and `harness_hubspot.py` (see contract_harness.py for the
protocol). A harness that has not landed yet is skipped, not failed.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable
from datetime import date
from typing import Any

import pytest
from contract_harness import ConnectorHarness, unique_emails

from leadloop.crm.changes import FieldUpdate, ObjectType, Priority, TaskUpsert
from leadloop.crm.ports import CrmSetup, PulledPage

HARNESSES = ("harness_salesforce", "harness_hubspot")


@pytest.fixture(scope="session", params=HARNESSES)
def harness(request: pytest.FixtureRequest, sandbox: Any) -> ConnectorHarness:
    try:
        module = importlib.import_module(request.param)
    except ModuleNotFoundError as missing:
        if missing.name != request.param:
            raise
        pytest.skip(f"{request.param} has not landed yet")
    crm = request.param.removeprefix("harness_")
    if crm not in sandbox.connection:
        pytest.skip(f"the sandbox has no {crm} backend yet")
    return module.make_harness(sandbox)


def pull_all(harness: ConnectorHarness, since=None, **options: Any) -> list[PulledPage]:
    source = harness.make_source(**options)
    return list(source.pull(harness.person_stream, since))


def records_by_id(pages: Iterable[PulledPage]) -> dict[str, Any]:
    """The last version of each record, as a store de-duplicating by id would keep it."""
    return {record.id: record for page in pages for record in page.records}


def last_cursor(pages: list[PulledPage]):
    return max((p.cursor for p in pages if p.cursor is not None), default=None)


def score_update(harness: ConnectorHarness, crm_id: str, field: str, value: Any) -> FieldUpdate:
    return FieldUpdate(crm=harness.crm, object_type=ObjectType.PERSON, record_id=crm_id, field=field,
                       value=value)


def test_a_full_pull_returns_every_person(harness):
    emails = list(unique_emails("full", 3))
    ids = [harness.create_person(email, first_name="Ada", title="Test Engineer") for email in emails]
    pulled = records_by_id(pull_all(harness))
    for crm_id, email in zip(ids, emails, strict=True):
        person = pulled[harness.canonical_person_id(crm_id)]
        assert person.email == email and person.title == "Test Engineer"


def test_an_incremental_pull_returns_what_changed_since_the_cursor(harness):
    emails = unique_emails("incr", 2)
    untouched, changed = (harness.create_person(email, title="Engineer") for email in emails)
    time.sleep(1.1)  # cursors may have whole seconds: keep each step in a second of its own
    harness.update_person(changed, title="Engineer II")
    cursor = last_cursor(pull_all(harness))
    time.sleep(1.1)
    harness.update_person(changed, title="Director of Engineering")
    second = pull_all(harness, since=cursor, overlap_minutes=0)
    pulled = records_by_id(second)
    assert pulled[harness.canonical_person_id(changed)].title == "Director of Engineering"
    assert harness.canonical_person_id(untouched) not in pulled
    assert last_cursor(second) > cursor


def test_an_unchanged_stream_costs_one_read_call(harness):
    cursor = last_cursor(pull_all(harness))
    source = harness.make_source()
    first = list(source.pull(harness.person_stream, cursor))  # warms caches, checks deletions
    checked = max((p.deletions_checked for p in first if p.deletions_checked), default=None)
    harness.reset_stats()
    list(source.pull(harness.person_stream, cursor, deletions_checked=checked))
    assert sum(harness.api_calls().values()) == 1


def test_ties_at_one_cursor_value_across_a_page_boundary_lose_nothing(harness):
    ids = harness.create_people(list(unique_emails("tie", harness.page_size * 2 + 50)))
    if not harness.set_identical_timestamps(ids):
        pytest.skip("this CRM cannot give records one identical cursor value")
    wanted = {harness.canonical_person_id(i) for i in ids}
    pages = pull_all(harness, page_size=harness.page_size)
    assert wanted <= records_by_id(pages).keys()
    # the next run starts at the saved cursor and still sees every record that shares it
    again = pull_all(harness, since=last_cursor(pages), page_size=harness.page_size, overlap_minutes=0)
    assert wanted <= records_by_id(again).keys()


def test_a_record_modified_during_a_pull_is_not_lost(harness):
    ids = harness.create_people(list(unique_emails("midpull", harness.page_size * 2 + 10)))
    source = harness.make_source(page_size=harness.page_size, overlap_minutes=0)
    pages = source.pull(harness.person_stream, None)
    seen = [next(pages)]
    time.sleep(1.1)
    harness.update_person(ids[0], title="Changed mid-pull (early)")
    harness.update_person(ids[-1], title="Changed mid-pull (late)")
    seen += list(pages)
    seen += pull_all(harness, since=last_cursor(seen), overlap_minutes=0)
    latest = records_by_id(seen)
    assert latest[harness.canonical_person_id(ids[0])].title == "Changed mid-pull (early)"
    assert latest[harness.canonical_person_id(ids[-1])].title == "Changed mid-pull (late)"


def test_a_deleted_person_comes_back_as_a_tombstone(harness):
    crm_id = harness.create_person(next(unique_emails("gone", 1)))
    cursor = last_cursor(pull_all(harness))
    harness.delete_person(crm_id)
    pages = pull_all(harness, since=cursor)
    assert harness.canonical_person_id(crm_id) in {d for p in pages for d in p.deleted}


def test_a_converted_lead_points_at_its_contact(harness):
    crm_id = harness.create_person(next(unique_emails("convert", 1)))
    cursor = last_cursor(pull_all(harness))
    contact = harness.convert_lead(crm_id)
    if contact is None:
        pytest.skip("this CRM has no leads")
    lead = records_by_id(pull_all(harness, since=cursor))[harness.canonical_person_id(crm_id)]
    assert lead.attributes["converted_to"] == contact


def test_setup_run_again_has_nothing_to_do_and_check_then_finds_every_owned_field(harness):
    setup = harness.make_setup()
    assert isinstance(setup, CrmSetup) and setup.crm == harness.crm
    assert setup.setup() == []  # the harness ran it once already
    items = setup.check()
    assert items and all(item.crm == harness.crm for item in items)
    owned = [item for item in items if "writable" in item.what]
    assert owned and all(item.ok for item in owned), [item for item in owned if not item.ok]


def test_owned_fields_are_written_back(harness):
    crm_id = harness.create_person(next(unique_emails("write", 1)))
    results = harness.make_sink().write_fields([score_update(harness, crm_id, "score", 87),
                                                score_update(harness, crm_id, "tier", "A")])
    assert all(r.ok for r in results), results
    assert float(harness.read_owned_field(crm_id, "score")) == 87
    assert harness.read_owned_field(crm_id, "tier") == "A"


def test_a_write_back_leaves_every_other_field_byte_for_byte_as_it_was(harness):
    crm_id = harness.create_person(next(unique_emails("allow", 1)), title="VP Quality")
    before = harness.read_person_snapshot(crm_id)
    harness.make_sink().write_fields([score_update(harness, crm_id, "score", 55),
                                      score_update(harness, crm_id, "reasons", "requested samples")])
    after = harness.read_person_snapshot(crm_id)
    owned = set(harness.mapping.owned_person.values())
    assert {k: v for k, v in after.items() if k not in owned} == {
        k: v for k, v in before.items() if k not in owned}


def task_for(harness: ConnectorHarness, crm_id: str, key: str) -> TaskUpsert:
    return TaskUpsert(crm=harness.crm, key=key, owner_id=harness.owner_id(),
                      subject="Follow up: evaluation kit",
                      body="Requested EVK-7710 twice this week", due_date=date(2030, 1, 15),
                      priority=Priority.HIGH, person_record_id=crm_id)


def test_a_task_upserted_twice_is_one_task(harness):
    crm_id = harness.create_person(next(unique_emails("task", 1)))
    key = f"contract-{crm_id}-evk-2030w03"
    sink = harness.make_sink()
    first = sink.upsert_tasks([task_for(harness, crm_id, key)])
    second = harness.make_sink().upsert_tasks([task_for(harness, crm_id, key)])
    assert first[0].ok and second[0].ok, (first, second)
    assert first[0].crm_id == second[0].crm_id
    assert harness.count_tasks_with_key(key) == 1


def test_a_partly_rejected_batch_keeps_the_rest_and_the_rejected_record_succeeds_later(harness):
    ids = harness.create_people(list(unique_emails("partial", 3)))
    harness.reject_writes([ids[1]], "Score must be reviewed")
    try:
        results = harness.make_sink().write_fields([score_update(harness, i, "score", 70) for i in ids])
    finally:
        harness.clear_faults()
    assert [r.ok for r in results] == [True, False, True]
    assert "Score must be reviewed" in results[1].error and not results[1].retriable
    retried = harness.make_sink().write_fields([score_update(harness, ids[1], "score", 70)])
    assert retried[0].ok
    assert float(harness.read_owned_field(ids[1], "score")) == 70


FAULTS = {
    "429": {"status_429_every": 2, "retry_after": 0.05},
    "5xx": {"error_5xx_ratio": 0.3, "seed": 3},
    "dropped connection": {"drop_connection_every": 3},
    "slow responses": {"latency_ms": 20, "jitter_ms": 20},
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_a_pull_and_a_write_survive_each_transport_fault(harness, fault):
    ids = harness.create_people(list(unique_emails(f"fault{fault[:3]}", harness.page_size + 10)))
    wanted = {harness.canonical_person_id(i) for i in ids}
    with harness.faults(**FAULTS[fault]):
        pages = pull_all(harness, page_size=harness.page_size)
        results = harness.make_sink().write_fields([score_update(harness, i, "score", 42) for i in ids[:5]])
    assert wanted <= records_by_id(pages).keys()
    assert all(r.ok for r in results), results


def test_a_session_expiring_mid_pull_is_renewed_and_the_pull_completes(harness):
    if not getattr(harness, "renews_sessions", False):
        pytest.skip("this CRM's tokens do not expire mid-run (no session to renew)")
    ids = harness.create_people(list(unique_emails("expiry", harness.page_size * 2 + 10)))
    wanted = {harness.canonical_person_id(i) for i in ids}
    source = harness.make_source(page_size=harness.page_size)
    list(source.pull(harness.person_stream, last_cursor(pull_all(harness))))  # warm caches
    with harness.faults(session_expire_after=1):
        pages = list(source.pull(harness.person_stream, None))
    assert wanted <= records_by_id(pages).keys()
