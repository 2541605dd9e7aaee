"""The Bulk API 2.0 path of the Salesforce connector against the sandbox org, with a low threshold:
first pulls through query jobs, large writes through ingest jobs, results ledgered as REST's are."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql

from leadloop.connectors.mapping import ForbiddenFieldError, load_mapping
from leadloop.connectors.salesforce.bulk import BulkApi
from leadloop.connectors.salesforce.client import SalesforceClient, salesforce_client
from leadloop.connectors.salesforce.retry import RetryPolicy
from leadloop.connectors.salesforce.setup import setup
from leadloop.connectors.salesforce.sink import SalesforceSink
from leadloop.connectors.salesforce.source import SalesforceSource
from leadloop.connectors.salesforce.streams import STREAMS
from leadloop.connectors.settings import ConnectionSettings
from leadloop.crm.changes import FieldUpdate, ObjectType, Priority, TaskUpsert
from leadloop.crm.ports import PulledPage
from leadloop.crm.records import Crm
from leadloop.store.db import open_store

FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05, max_retry_after=0.1, timeout=(5, 30))
MAPPING = load_mapping()


@pytest.fixture(scope="module")
def settings(sandbox: Any) -> ConnectionSettings:
    settings = ConnectionSettings(**sandbox.connection)
    setup(settings, MAPPING)  # the owned fields and LL_Key__c
    return settings


@pytest.fixture
def client(settings: ConnectionSettings) -> SalesforceClient:
    assert settings.salesforce is not None
    return salesforce_client(settings.salesforce, settings.ca_cert, policy=FAST)


def bulk_calls(client: SalesforceClient) -> dict[str, int]:
    return {k: v for k, v in client.counter.calls.items() if k.startswith("bulk2/")}


def by_id(pages: list[PulledPage]) -> dict[str, Any]:
    return {record.id: record for page in pages for record in page.records}


def deleted(pages: list[PulledPage]) -> list[str]:
    return sorted(d for page in pages for d in page.deleted)


def rejected(pages: list[PulledPage]) -> list[tuple[str, str]]:
    return sorted(r for page in pages for r in page.rejected)


def new_leads(sf: Salesforce, n: int, tag: str) -> list[str]:
    records = [{"attributes": {"type": "Lead"}, "LastName": f"Bulk{i}", "Company": f"Bulk {tag}",
                "Email": f"bulk{i}.{tag}@bulk-semi.com"} for i in range(n)]
    answer = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    return [item["id"] for item in answer]


@pytest.mark.parametrize("stream", [s.name for s in STREAMS if s.name in ("Lead", "Contact", "CampaignMember",
                                                                           "Task", "Account")])
def test_a_first_pull_above_the_threshold_maps_bulk_csv_rows_exactly_as_rest_rows(client, settings, stream):
    rest_pages = list(SalesforceSource(client, MAPPING.salesforce, bulk_threshold=None).pull(stream, None))
    bulk_client = salesforce_client(settings.salesforce, settings.ca_cert, policy=FAST)
    source = SalesforceSource(bulk_client, MAPPING.salesforce, bulk_threshold=3,
                              bulk=BulkApi(bulk_client, results_page=4))
    bulk_pages = list(source.pull(stream, None))

    assert by_id(bulk_pages) == by_id(rest_pages)
    assert deleted(bulk_pages) == deleted(rest_pages)
    assert rejected(bulk_pages) == rejected(rest_pages)
    assert bulk_calls(bulk_client)[f"bulk2/query results:{stream}"] == len(bulk_pages) > 1
    assert bulk_client.counter.calls[f"query:{stream}"] == 1  # the REST page that told the size


def test_a_bulk_pull_includes_tombstones_and_gives_its_cursor_with_the_last_page_only(client, sf):
    tag = uuid.uuid4().hex[:8]
    ids = new_leads(sf, 3, tag)
    sf.Lead.delete(ids[0])
    source = SalesforceSource(client, MAPPING.salesforce, bulk_threshold=5,
                              bulk=BulkApi(client, results_page=6))
    pages = list(source.pull("Lead", None))

    assert f"sf-lead:{ids[0]}" in {d for p in pages for d in p.deleted}
    assert {f"sf-lead:{i}" for i in ids[1:]} <= by_id(pages).keys()
    assert [p.cursor is not None for p in pages] == [False] * (len(pages) - 1) + [True]
    newest = max(r.updated_at for r in by_id(pages).values())
    assert pages[-1].cursor >= newest
    assert bulk_calls(client)["bulk2/query:Lead"] == 1


def test_an_incremental_pull_stays_on_rest_whatever_its_size(client):
    source = SalesforceSource(client, MAPPING.salesforce, bulk_threshold=0)
    pages = list(source.pull("Lead", datetime(2000, 1, 1, tzinfo=UTC)))
    assert by_id(pages) and not bulk_calls(client)


def test_a_stream_at_or_below_the_threshold_stays_on_rest(client):
    source = SalesforceSource(client, MAPPING.salesforce, bulk_threshold=100_000)
    assert by_id(list(source.pull("Lead", None))) and not bulk_calls(client)


def _score_updates(record_ids: list[str], value: int) -> list[FieldUpdate]:
    return [FieldUpdate(crm=Crm.SALESFORCE, object_type=ObjectType.PERSON, record_id=rid, field=field,
                        value=value if field == "score" else "B")
            for rid in record_ids for field in ("score", "tier")]


def test_field_updates_above_the_threshold_run_as_an_ingest_job_with_results_ledgered_per_field(
        client, sf, sandbox, tmp_path):
    tag = uuid.uuid4().hex[:8]
    ids = new_leads(sf, 6, tag)
    refused, gone = ids[1], ids[2]
    sf.Lead.delete(gone)
    sandbox.admin_post("faults", {"crm": "salesforce", "reject": [
        {"object": "Lead", "id": refused, "message": "Scores are frozen for this lead"}]})
    sink = SalesforceSink(client, MAPPING.salesforce, bulk_threshold=4)
    updates = _score_updates(ids, 77)
    results = sink.write_fields(updates)

    assert [r.key for r in results] == [f"{u.record_id}:{u.field}" for u in updates]
    ok = {u.record_id for u, r in zip(updates, results, strict=True) if r.ok}
    assert ok == set(ids) - {refused, gone}
    refusal = next(r for u, r in zip(updates, results, strict=True) if u.record_id == refused)
    assert refusal.error == "FIELD_CUSTOM_VALIDATION_EXCEPTION: Scores are frozen for this lead"
    assert refusal.retriable is False
    assert "composite/sobjects:update" not in client.counter.calls
    assert bulk_calls(client)["bulk2/ingest:Lead"] == 1
    soql = format_soql("SELECT Id, LL_Score__c, LL_Tier__c FROM Lead WHERE Id IN {}", sorted(ok))
    assert {(r["LL_Score__c"], r["LL_Tier__c"]) for r in sf.query(soql)["records"]} == {(77, "B")}

    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        written, failed = store.record_writes("salesforce", updates, results, run_id="bulk")
        assert (written, failed) == (2 * len(ok), 4)
        assert {rid for rid, _ in store.ledger("salesforce")} == ok
        assert {f.record_id for f in store.failures("salesforce")} == {refused, gone}


def _tasks(owner: str, people: list[str], tag: str) -> list[TaskUpsert]:
    return [TaskUpsert(crm=Crm.SALESFORCE, key=f"bulk-{tag}-{i}", owner_id=owner, subject=f"Follow up {i}",
                       body="Why now: requested samples,\nthen a quote", due_date=date(2030, 1, 2),
                       priority=Priority.HIGH, person_record_id=person)
            for i, person in enumerate(people)]


def test_task_upserts_above_the_threshold_go_through_a_bulk_upsert_and_stay_idempotent(client, sf):
    tag = uuid.uuid4().hex[:8]
    people = new_leads(sf, 5, tag)
    owner = sf.query("SELECT Id FROM User WHERE IsActive = true LIMIT 1")["records"][0]["Id"]
    sink = SalesforceSink(client, MAPPING.salesforce, bulk_threshold=2)
    first = sink.upsert_tasks(_tasks(owner, people, tag))
    second = sink.upsert_tasks(_tasks(owner, people, tag))

    assert all(r.ok for r in first + second)
    assert [r.crm_id for r in first] == [r.crm_id for r in second]
    assert [r.key for r in first] == [f"bulk-{tag}-{i}" for i in range(5)]
    soql = format_soql("SELECT LL_Key__c, Description, Priority FROM Task WHERE LL_Key__c LIKE {}",
                       f"bulk-{tag}-%")
    rows = sf.query(soql)["records"]
    assert len(rows) == 5
    assert rows[0]["Description"] == "Why now: requested samples,\nthen a quote"
    assert rows[0]["Priority"] == "High"
    assert bulk_calls(client)["bulk2/ingest:Task"] == 2
    assert "composite/sobjects:upsert Task" not in client.counter.calls


def test_the_allowlist_holds_on_the_bulk_path_before_any_request(client, sandbox):
    sandbox.admin_post("stats/reset")
    sink = SalesforceSink(client, MAPPING.salesforce, bulk_threshold=0)
    forbidden = FieldUpdate(crm=Crm.SALESFORCE, object_type=ObjectType.PERSON, record_id="00Q000000000001AAA",
                            field="email", value="someone@else.com")
    with pytest.raises(ForbiddenFieldError):
        sink.write_fields([*_score_updates(["00Q000000000002AAA"], 5), forbidden])
    assert client.counter.total == 0
    assert sandbox.admin_get("stats")["by_endpoint"].get("salesforce", {}) == {}
