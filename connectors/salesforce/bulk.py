"""Salesforce Bulk API 2.0: query jobs for first pulls of large objects, ingest jobs for large writes.

Above `SalesforceSettings.bulk_threshold` records (default 10,000), REST paging (2,000 rows a call)
and sObject Collections (200 records a call) spend API calls that Bulk API 2.0 does not: a query job
returns its rows as CSV pages of up to `results_page` rows, chained by the `Sforce-Locator` header;
an ingest job takes up to 100 MB of CSV in one upload, which Salesforce splits into its own batches.

Bulk API 2.0 query jobs must not use ORDER BY (it disables PK chunking and can time out the job), so
rows come in no particular order: a pull may only trust the highest `SystemModstamp` once it has
seen every row. Ingest results come back as three CSV lists (successful, failed, unprocessed), each
row echoing the uploaded columns, so every outcome is matched to its record by its key column (`Id`
for updates, the external id for upserts); a record in none of the lists counts as unprocessed.

Every call goes through the connector's client, so it is counted by endpoint, retried when the
failure is retriable and repeated after a session renewal: JSON calls through `client.request`,
CSV calls with simple-salesforce's `call_salesforce` on the client's verified session.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests
from simple_salesforce.util import call_salesforce

from leadloop.connectors.paging import TokenPaginator
from leadloop.connectors.salesforce.client import SalesforceClient
from leadloop.connectors.salesforce.retry import TRANSIENT_CODES
from leadloop.crm.ports import WriteResult

log = logging.getLogger("leadloop.connectors.salesforce")

DEFAULT_BULK_THRESHOLD = 10_000
RESULTS_PAGE = 50_000  # rows per query results page; Salesforce's own page when maxRecords is absent
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # Salesforce takes 150 MB per upload once base64-encoded
NULL = "#N/A"  # sets a field to null; a blank cell leaves the field as it is
FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
CSV_FORMAT = {"contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"}

Row = dict[str, str | None]


class BulkJobError(RuntimeError):
    """A Bulk API job that failed, was aborted, or did not finish in time; the message names it."""


def parse_csv(text: str) -> list[Row]:
    """CSV rows as dicts by header; an empty cell (Salesforce's null) becomes None."""
    reader = csv.reader(io.StringIO(text.replace("\x00", "")))
    header = next(reader, None)
    if not header:
        return []
    return [{name: (value if value != "" else None) for name, value in zip(header, values, strict=False)}
            for values in reader if values]


def cell(value: Any) -> str:
    if value is None or value == "":
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_uploads(rows: Sequence[Mapping[str, Any]], key_field: str,
                max_bytes: int = MAX_UPLOAD_BYTES) -> Iterator[tuple[str, list[str]]]:
    """(CSV body, the rows' keys) per upload, each body under `max_bytes`, the key column first."""
    columns = [key_field, *sorted({name for row in rows for name in row} - {key_field, "attributes"})]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    header = out.getvalue()
    body, keys, size = [header], [], len(header.encode())
    for row in rows:
        out.seek(0)
        out.truncate()
        # a field a row lacks stays blank, so the job leaves it unchanged on that record
        writer.writerow([cell(row[name]) if name in row else "" for name in columns])
        line = out.getvalue()
        if keys and size + len(line.encode()) > max_bytes:
            yield "".join(body), keys
            body, keys, size = [header], [], len(header.encode())
        body.append(line)
        keys.append(str(row[key_field]))
        size += len(line.encode())
    if keys:
        yield "".join(body), keys


def failure_reason(sf_error: str | None) -> tuple[str, bool]:
    """`sf__Error` (`CODE:message:fields --`) → ("CODE: message", retriable), as REST results read."""
    text = (sf_error or "UNKNOWN_ERROR:rejected without a reason").strip().removesuffix("--").strip()
    code, _, rest = text.partition(":")
    message, sep, _fields = rest.rpartition(":")
    if not sep:
        message = rest
    return f"{code}: {message}".strip(), code in TRANSIENT_CODES


def _next_locator(response: requests.Response) -> str | None:
    """The `Sforce-Locator` of the next results page; Salesforce says `null` after the last one."""
    locator = response.headers.get("Sforce-Locator")
    return None if not locator or locator == "null" else locator


class BulkApi:
    """Bulk API 2.0 jobs through one connected client. Not thread-safe, like the client."""

    def __init__(self, client: SalesforceClient, *, results_page: int = RESULTS_PAGE,
                 poll_interval: float = 0.5, max_poll_interval: float = 10.0, timeout: float = 3600.0,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.client = client
        self.results_page = results_page
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = timeout
        self.max_upload_bytes = max_upload_bytes

    def __repr__(self) -> str:
        return f"BulkApi({self.client!r})"

    # -- transport -------------------------------------------------------------------------------

    def _csv_call(self, method: str, path: str, endpoint: str, *, params: dict[str, Any] | None = None,
                  data: bytes | None = None) -> requests.Response:
        client = self.client

        def send() -> requests.Response:
            headers = {"Authorization": f"Bearer {client.sf.session_id}", "Accept": "text/csv",
                       "Content-Type": "text/csv" if data is not None else "application/json"}
            return call_salesforce(f"{client.base_url}jobs/{path}", method, client.session, headers,
                                   params=params, data=data, timeout=client.policy.timeout)

        # the client's retry, counting and session renewal, for a call whose body is not JSON
        return client._call(endpoint, send)

    def _wait(self, kind: str, job: Mapping[str, Any], endpoint: str) -> Mapping[str, Any]:
        """The job's info once it reaches a final state; polls with a growing interval."""
        info, waited, interval = job, 0.0, self.poll_interval
        while True:
            info = self.client.request("GET", f"jobs/{kind}/{job['id']}", endpoint)
            if info.get("state") in FINAL_STATES:
                return info
            if waited >= self.timeout:
                raise BulkJobError(f"bulk {kind} job {job['id']} still {info.get('state')} after "
                                   f"{waited:.0f}s")
            self.client.wait(interval)  # a stop ends the wait, and the next poll raises PullsStopped
            waited += interval
            interval = min(interval * 2, self.max_poll_interval)

    # -- query jobs ------------------------------------------------------------------------------

    def query(self, sobject: str, soql: str, *, include_deleted: bool) -> Iterator[tuple[list[Row], bool]]:
        """(rows, is last page) per results page of one query job; `queryAll` includes deleted rows."""
        operation = "queryAll" if include_deleted else "query"
        job = self.client.request("POST", "jobs/query", f"bulk2/query:{sobject}",
                                  json={"operation": operation, "query": soql, **CSV_FORMAT})
        info = self._wait("query", job, f"bulk2/query state:{sobject}")
        if info.get("state") != "JobComplete":
            raise BulkJobError(f"the {sobject} bulk query job {job['id']} ended {info.get('state')}: "
                               f"{info.get('errorMessage') or 'no reason given'}")
        log.info("salesforce %s bulk query job %s: %s rows", sobject, job["id"],
                 info.get("numberRecordsProcessed", "?"))
        endpoint = f"bulk2/query results:{sobject}"

        def fetch(locator: str | None) -> requests.Response:
            params: dict[str, Any] = {"maxRecords": self.results_page}
            if locator:
                params["locator"] = locator
            return self._csv_call("GET", f"query/{job['id']}/results", endpoint, params=params)

        pages = TokenPaginator(fetch, _next_locator, endpoint=endpoint)
        for response in pages:
            yield parse_csv(response.content.decode("utf-8")), pages.finished

    # -- ingest jobs -----------------------------------------------------------------------------

    def ingest(self, sobject: str, operation: str, rows: Sequence[Mapping[str, Any]], key_field: str
               ) -> dict[str, WriteResult]:
        """Run `update` (key `Id`) or `upsert` (key: the external id) over `rows`; one WriteResult per
        row, by its key. A job that cannot be created or uploaded raises SalesforceCallError."""
        results: dict[str, WriteResult] = {}
        for body, keys in csv_uploads(rows, key_field, self.max_upload_bytes):
            results.update(self._ingest_job(sobject, operation, key_field, body, keys))
        return results

    def _ingest_job(self, sobject: str, operation: str, key_field: str, body: str, keys: list[str]
                    ) -> dict[str, WriteResult]:
        definition: dict[str, Any] = {"object": sobject, "operation": operation, **CSV_FORMAT}
        if operation == "upsert":
            definition["externalIdFieldName"] = key_field
        endpoint = f"bulk2/ingest:{sobject}"
        job = self.client.request("POST", "jobs/ingest", endpoint, json=definition)
        try:
            self._csv_call("PUT", f"ingest/{job['id']}/batches", f"bulk2/ingest upload:{sobject}",
                           data=body.encode("utf-8"))
        except Exception:
            self._abort(job["id"], sobject)
            raise
        self.client.request("PATCH", f"jobs/ingest/{job['id']}", f"bulk2/ingest state:{sobject}",
                            json={"state": "UploadComplete"})
        info = self._wait("ingest", job, f"bulk2/ingest state:{sobject}")
        state = info.get("state")
        outcomes = self._outcomes(job["id"], sobject, key_field, info)
        unreported = f"UNPROCESSED: the bulk job {job['id']} ended {state} without a result for this record"
        for key in keys:
            outcomes.setdefault(key, WriteResult(key=key, ok=False, error=unreported, retriable=True))
        failed = sum(not r.ok for r in outcomes.values())
        log.info("salesforce %s bulk %s job %s %s: %d records, %d not written", sobject, operation, job["id"],
                 state, len(keys), failed)
        return outcomes

    def _outcomes(self, job_id: str, sobject: str, key_field: str, info: Mapping[str, Any]
                  ) -> dict[str, WriteResult]:
        endpoint = f"bulk2/ingest results:{sobject}"
        outcomes: dict[str, WriteResult] = {}
        for row in self._results(job_id, "successfulResults", endpoint):
            key = row.get(key_field) or row.get("sf__Id") or ""
            outcomes[key] = WriteResult(key=key, ok=True, crm_id=row.get("sf__Id"))
        complete = info.get("state") == "JobComplete"
        if not complete or info.get("numberRecordsFailed", 1):
            for row in self._results(job_id, "failedResults", endpoint):
                key = row.get(key_field) or row.get("sf__Id") or ""
                reason, retriable = failure_reason(row.get("sf__Error"))
                outcomes[key] = WriteResult(key=key, ok=False, crm_id=row.get("sf__Id"), error=reason,
                                            retriable=retriable)
        if not complete:
            state = info.get("state")
            reason = f"UNPROCESSED: the bulk job {job_id} ended {state} before this record was processed"
            for row in self._results(job_id, "unprocessedrecords", endpoint):
                key = row.get(key_field) or ""
                outcomes.setdefault(key, WriteResult(key=key, ok=False, error=reason, retriable=True))
        return outcomes

    def _results(self, job_id: str, kind: str, endpoint: str) -> list[Row]:
        return parse_csv(self._csv_call("GET", f"ingest/{job_id}/{kind}", endpoint).content.decode("utf-8"))

    def _abort(self, job_id: str, sobject: str) -> None:
        try:
            self.client.request("PATCH", f"jobs/ingest/{job_id}", f"bulk2/ingest state:{sobject}",
                                json={"state": "Aborted"})
        except Exception as error:  # the job expires on its own; the upload's error is what matters
            log.warning("salesforce bulk job %s could not be aborted: %s", job_id, type(error).__name__)
