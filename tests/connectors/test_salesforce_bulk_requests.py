"""Request shapes of the Bulk API 2.0 path, against recorded HTTP (`responses`): job definitions, the
CSV upload, state changes, polling, and every record's outcome when a job ends part-way."""

from __future__ import annotations

import csv
import io
import json
import threading
import time

import pytest
import responses

from leadloop.connectors.concurrency import PullsStopped
from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.salesforce.bulk import (
    NULL,
    BulkApi,
    BulkJobError,
    csv_uploads,
    failure_reason,
    parse_csv,
)
from leadloop.connectors.salesforce.client import salesforce_client
from leadloop.connectors.salesforce.retry import RetryPolicy
from leadloop.connectors.salesforce.sink import SalesforceSink
from leadloop.connectors.settings import SalesforceSettings
from leadloop.crm.changes import FieldUpdate, ObjectType
from leadloop.crm.records import Crm

INSTANCE = "https://sf.example.test"
BASE = f"{INSTANCE}/services/data/v59.0"
JOB = "750000000000001AAA"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]):
    policy = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.01, sleep=sleeps.append)
    return salesforce_client(SalesforceSettings(instance_url=INSTANCE, session_id="00DX!secret"), None,
                             policy=policy)


def lead(n: int) -> str:
    return f"00Q{n:015d}"


def updates(n: int) -> list[FieldUpdate]:
    return [FieldUpdate(crm=Crm.SALESFORCE, object_type=ObjectType.PERSON, record_id=lead(i), field=f,
                        value=v) for i in range(n) for f, v in (("score", 40 + i), ("nurture_track", None))]


def results_csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    return out.getvalue()


@responses.activate
def test_an_ingest_job_that_fails_part_way_reports_each_record_successful_failed_or_unprocessed(
        client, sleeps):
    create = responses.post(f"{BASE}/jobs/ingest", json={"id": JOB, "state": "Open"})
    upload = responses.put(f"{BASE}/jobs/ingest/{JOB}/batches", status=201)
    close = responses.patch(f"{BASE}/jobs/ingest/{JOB}", json={"id": JOB, "state": "UploadComplete"})
    responses.get(f"{BASE}/jobs/ingest/{JOB}", json={"id": JOB, "state": "InProgress"})
    responses.get(f"{BASE}/jobs/ingest/{JOB}", json={"id": JOB, "state": "Failed", "numberRecordsFailed": 1})
    header = ["LL_Nurture_Track__c", "LL_Score__c"]
    locked = "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--"
    responses.get(f"{BASE}/jobs/ingest/{JOB}/successfulResults", body=results_csv(
        ["sf__Id", "sf__Created", "Id", *header], [[lead(0), "false", lead(0), NULL, "40"]]))
    responses.get(f"{BASE}/jobs/ingest/{JOB}/failedResults", body=results_csv(
        ["sf__Id", "sf__Error", "Id", *header], [["", locked, lead(1), NULL, "41"]]))
    responses.get(f"{BASE}/jobs/ingest/{JOB}/unprocessedrecords",
                  body=results_csv(["Id", *header], [[lead(2), NULL, "42"]]))
    sink = SalesforceSink(client, load_mapping().salesforce, bulk_threshold=2)
    results = sink.write_fields(updates(4))

    assert json.loads(create.calls[0].request.body) == {
        "object": "Lead", "operation": "update", "contentType": "CSV", "columnDelimiter": "COMMA",
        "lineEnding": "LF"}
    sent = upload.calls[0].request
    assert sent.headers["Content-Type"] == "text/csv"
    assert parse_csv(sent.body.decode()) == [
        {"Id": lead(i), "LL_Nurture_Track__c": NULL, "LL_Score__c": str(40 + i)} for i in range(4)]
    assert json.loads(close.calls[0].request.body) == {"state": "UploadComplete"}
    assert sleeps == [0.5]  # polled once more after InProgress
    by_record = {r.key.split(":")[0]: r for r in results}
    assert by_record[lead(0)].ok and by_record[lead(0)].crm_id == lead(0)
    assert by_record[lead(1)].error == "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record"
    assert by_record[lead(1)].retriable
    assert by_record[lead(2)].error.startswith("UNPROCESSED: the bulk job") and by_record[lead(2)].retriable
    assert by_record[lead(3)].error.startswith("UNPROCESSED") and not by_record[lead(3)].ok
    assert len(results) == 8


@responses.activate
def test_an_upload_that_fails_aborts_its_job_and_fails_its_records_with_the_reason(client):
    responses.post(f"{BASE}/jobs/ingest", json={"id": JOB, "state": "Open"})
    responses.put(f"{BASE}/jobs/ingest/{JOB}/batches", status=400,
                  json=[{"errorCode": "INVALIDJOB", "message": "Invalid CSV"}])
    abort = responses.patch(f"{BASE}/jobs/ingest/{JOB}", json={"id": JOB, "state": "Aborted"})
    results = SalesforceSink(client, load_mapping().salesforce, bulk_threshold=1).write_fields(updates(2))

    assert json.loads(abort.calls[0].request.body) == {"state": "Aborted"}
    assert all(not r.ok and r.error == "INVALIDJOB: Invalid CSV" and not r.retriable for r in results)


@responses.activate
def test_a_query_job_that_fails_raises_with_salesforces_reason(client):
    responses.post(f"{BASE}/jobs/query", json={"id": JOB, "state": "UploadComplete"})
    responses.get(f"{BASE}/jobs/query/{JOB}", json={"id": JOB, "state": "Failed",
                                                     "errorMessage": "INVALID_FIELD: No such column"})
    with pytest.raises(BulkJobError, match="INVALID_FIELD: No such column"):
        list(BulkApi(client).query("Lead", "SELECT Id FROM Lead", include_deleted=True))


@responses.activate
def test_query_results_follow_the_locator_and_read_empty_cells_as_null(client):
    create = responses.post(f"{BASE}/jobs/query", json={"id": JOB, "state": "UploadComplete"})
    responses.get(f"{BASE}/jobs/query/{JOB}", json={"id": JOB, "state": "JobComplete"})
    first = responses.get(f"{BASE}/jobs/query/{JOB}/results", body='"Id","Email"\n"1","a@x.com"\n',
                          headers={"Sforce-Locator": "MTAwMDA", "Sforce-NumberOfRecords": "1"},
                          match=[responses.matchers.query_param_matcher({"maxRecords": "1"})])
    responses.get(f"{BASE}/jobs/query/{JOB}/results", body='"Id","Email"\n"2",""\n',
                  headers={"Sforce-Locator": "null", "Sforce-NumberOfRecords": "1"},
                  match=[responses.matchers.query_param_matcher({"maxRecords": "1", "locator": "MTAwMDA"})])
    pages = list(BulkApi(client, results_page=1).query("Lead", "SELECT Id, Email FROM Lead",
                                                       include_deleted=True))

    assert pages == [([{"Id": "1", "Email": "a@x.com"}], False), ([{"Id": "2", "Email": None}], True)]
    assert json.loads(create.calls[0].request.body)["operation"] == "queryAll"
    assert first.calls[0].request.headers["Authorization"] == "Bearer 00DX!secret"
    assert client.counter.calls == {"bulk2/query:Lead": 1, "bulk2/query state:Lead": 1,
                                    "bulk2/query results:Lead": 2}


def test_uploads_are_split_below_the_size_limit_each_with_its_header():
    rows = [{"Id": lead(i), "LL_Reasons__c": "x" * 50} for i in range(10)]
    uploads = list(csv_uploads(rows, "Id", max_bytes=250))
    assert len(uploads) > 1
    assert all(len(body.encode()) <= 250 and body.startswith("Id,LL_Reasons__c\n") for body, _ in uploads)
    assert [k for _, keys in uploads for k in keys] == [lead(i) for i in range(10)]


def test_a_field_a_row_lacks_stays_blank_so_the_job_leaves_it_unchanged_while_none_sets_null():
    (body, _), = csv_uploads([{"Id": "a", "X": None}, {"Id": "b", "Y": "multi\nline, \"quoted\""}], "Id")
    assert parse_csv(body) == [{"Id": "a", "X": NULL, "Y": None}, {"Id": "b", "X": None,
                                                                    "Y": "multi\nline, \"quoted\""}]


@pytest.mark.parametrize(("sf_error", "reason", "retriable"), [
    ("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
     "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]", False),
    ("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access:--",
     "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access", True),
    ("ENTITY_IS_DELETED:entity is deleted", "ENTITY_IS_DELETED: entity is deleted", False),
    (None, "UNKNOWN_ERROR: rejected without a reason", False),
])
def test_bulk_errors_read_as_the_rest_api_reports_them(sf_error, reason, retriable):
    assert failure_reason(sf_error) == (reason, retriable)


# -- a run that stops (Ctrl-C, SIGTERM, a cancel) stops waiting on Salesforce -----------------------------


def _stopping_client(attempts: int = 2):
    """A client with real sleeps (the waits a stop must cut short) and long backoffs."""
    policy = RetryPolicy(attempts=attempts, initial_wait=30.0, max_wait=30.0, jitter=0.0)
    return salesforce_client(SalesforceSettings(instance_url=INSTANCE, session_id="00DX!secret"), None,
                             policy=policy)


@responses.activate
def test_a_bulk_query_job_still_running_is_polled_no_more_once_the_run_stops():
    client = _stopping_client()
    responses.post(f"{BASE}/jobs/query", json={"id": JOB, "state": "UploadComplete"})
    polls = responses.get(f"{BASE}/jobs/query/{JOB}", json={"id": JOB, "state": "InProgress"})
    bulk = BulkApi(client, poll_interval=30.0)
    threading.Timer(0.3, client.stopping.set).start()
    started = time.monotonic()

    with pytest.raises(PullsStopped, match="not sent, the run is stopping"):
        next(bulk.query("Lead", "SELECT Id FROM Lead", include_deleted=False))

    assert time.monotonic() - started < 5  # not the 30 s until the next poll
    assert polls.call_count == 1


@responses.activate
def test_a_salesforce_retry_waiting_its_backoff_ends_once_the_run_stops():
    client = _stopping_client(attempts=5)
    busy = responses.get(f"{BASE}/sobjects/Lead/describe", status=503,
                         json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}])
    threading.Timer(0.3, client.stopping.set).start()
    started = time.monotonic()

    with pytest.raises(PullsStopped):
        client.request("GET", "sobjects/Lead/describe", "describe:Lead")

    assert time.monotonic() - started < 5
    assert busy.call_count == 1
