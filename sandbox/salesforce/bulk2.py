"""Bulk API 2.0: query jobs (CSV results paged by `Sforce-Locator`) and ingest jobs (CSV upload,
state transitions, successful/failed/unprocessed record results). Jobs run as soon as they can:
a query job is complete when created, an ingest job when its upload is marked complete.

https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/bulk_api_2_0.htm
https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_job_results.htm
https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/get_job_successful_results.htm
"""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.responses import Response

from leadloop.sandbox.salesforce.errors import RecordError, SalesforceError, json_response, not_found
from leadloop.sandbox.salesforce.http import Routes, endpoint_label, json_body, version_of
from leadloop.sandbox.salesforce.ids import make_id, normalize_id
from leadloop.sandbox.salesforce.query import Compiled, compile_query, execute
from leadloop.sandbox.salesforce.security import acting_as
from leadloop.sandbox.salesforce.soql import SoqlError, parse

if TYPE_CHECKING:
    from leadloop.sandbox.salesforce.backend import SalesforceBackend

DEFAULT_MAX_RECORDS = 50_000
_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")


@dataclass(slots=True)
class Job:
    id: str
    kind: str  # query | ingest
    info: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    compiled: Compiled | None = None
    upload: list[str] = field(default_factory=list)
    successful: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)


class Jobs:
    """The org's Bulk API 2.0 jobs."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.counter = 0

    def new_id(self) -> str:
        self.counter += 1
        return make_id("750", self.counter)

    def get(self, job_id: str, kind: str) -> Job:
        job = self.jobs.get(normalize_id(job_id) or "")
        if job is None or job.kind != kind:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return job


def add_routes(routes: Routes, backend: SalesforceBackend) -> None:
    api = _Bulk(backend)
    base = "/services/data/{version}/jobs"
    routes.add(base + "/query", ["POST", "GET"], api.query_jobs)
    routes.add(base + "/query/{job_id}", ["GET", "PATCH", "DELETE"], api.query_job)
    routes.add(base + "/query/{job_id}/results", ["GET"], api.query_results)
    routes.add(base + "/ingest", ["POST", "GET"], api.ingest_jobs)
    routes.add(base + "/ingest/{job_id}", ["GET", "PATCH", "DELETE"], api.ingest_job)
    routes.add(base + "/ingest/{job_id}/batches", ["PUT"], api.upload)
    for name in ("successfulResults", "failedResults", "unprocessedrecords", "unprocessedRecords"):
        routes.add(base + "/ingest/{job_id}/" + name, ["GET"], api.results)


class _Bulk:
    def __init__(self, backend: SalesforceBackend) -> None:
        self.backend = backend
        self.org = backend.org
        self.jobs = backend.jobs

    def _base_info(
        self, job_id: str, version: str, operation: str, object_name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        stamp = self.org.stamp()
        return {
            "id": job_id,
            "operation": operation,
            "object": object_name,
            "createdById": self.org.current_user(),
            "createdDate": stamp,
            "systemModstamp": stamp,
            "state": "Open",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(version),
            "lineEnding": body.get("lineEnding") or "LF",
            "columnDelimiter": body.get("columnDelimiter") or "COMMA",
        }

    # -- query jobs ------------------------------------------------------------------------------------
    async def query_jobs(self, request: Request) -> Response:
        version = version_of(request)
        if request.method == "GET":
            return json_response(
                {
                    "done": True,
                    "nextRecordsUrl": None,
                    "records": [job.info for job in self.jobs.jobs.values() if job.kind == "query"],
                }
            )
        body = await json_body(request)
        if not isinstance(body, dict) or not body.get("query"):
            raise SalesforceError(400, "INVALIDJOB", "Query is required for query jobs")
        operation = body.get("operation", "query")
        if operation not in ("query", "queryAll"):
            raise SalesforceError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        _delimiter(body)
        try:
            query = parse(str(body["query"]))
            compiled = compile_query(self.org, query, self.org.now(), self.backend.access())
        except SoqlError as error:
            raise SalesforceError(400, error.code, error.message) from None
        if compiled.query.count_only:
            raise SalesforceError(400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0")
        job_id = self.jobs.new_id()
        info = self._base_info(job_id, version, operation, compiled.obj.name, body)
        job = Job(job_id, "query", info, compiled=compiled)
        job.rows = execute(self.org, compiled, include_deleted=operation == "queryAll")
        self.jobs.jobs[job_id] = job
        response = dict(info, state="UploadComplete")
        info.update(
            state="JobComplete",
            numberRecordsProcessed=len(job.rows),
            retries=0,
            totalProcessingTime=0,
            jobType="V2Query",
        )
        return json_response(response)

    async def query_job(self, request: Request) -> Response:
        version_of(request)
        job = self.jobs.get(request.path_params["job_id"], "query")
        return await self._job_state(request, job)

    async def _job_state(self, request: Request, job: Job) -> Response:
        if request.method == "GET":
            return json_response(job.info)
        if request.method == "DELETE":
            if job.info["state"] not in ("JobComplete", "Aborted", "Failed", "UploadComplete"):
                raise SalesforceError(400, "INVALIDJOBSTATE", f"Job is in state {job.info['state']}")
            del self.jobs.jobs[job.id]
            return Response(status_code=204)
        body = await json_body(request)
        state = body.get("state") if isinstance(body, dict) else None
        if state == "Aborted":
            if job.info["state"] in ("JobComplete", "Failed"):
                raise SalesforceError(400, "INVALIDJOBSTATE", "Cannot abort a job that is already finished")
            job.info["state"] = "Aborted"
        elif state == "UploadComplete" and job.kind == "ingest":
            if job.info["state"] != "Open":
                raise SalesforceError(409, "INVALIDJOBSTATE", f"Job is in state {job.info['state']}")
            job.info["state"] = "UploadComplete"
            self._process(request, job)
        else:
            raise SalesforceError(400, "INVALIDJOBSTATE", f"Invalid state change: {state}")
        job.info["systemModstamp"] = self.org.stamp()
        return json_response(job.info)

    async def query_results(self, request: Request) -> Response:
        version = version_of(request)
        job = self.jobs.get(request.path_params["job_id"], "query")
        if job.info["state"] != "JobComplete":
            raise SalesforceError(
                400, "JOB_NOT_COMPLETE", "can only download query results of successfully completed bulk job"
            )
        if f"{float(version):.1f}" != f"{job.info['apiVersion']:.1f}":
            raise SalesforceError(409, "INVALIDJOB", "The query job was created with another API version")
        start = _decode_locator(request.query_params.get("locator"))
        raw_max = request.query_params.get("maxRecords", "")
        maximum = int(raw_max) if raw_max.isdigit() and int(raw_max) > 0 else DEFAULT_MAX_RECORDS
        page = job.rows[start : start + maximum]
        end = start + len(page)
        assert job.compiled is not None
        paths = [resolved for resolved in job.compiled.select]
        delimiter = _DELIMITERS.get(job.info["columnDelimiter"], ",")
        newline = "\r\n" if job.info["lineEnding"] == "CRLF" else "\n"
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_ALL)
        writer.writerow([".".join(resolved.path) for resolved in paths])
        for row in page:
            writer.writerow([_csv_value(resolved.getter(row)) for resolved in paths])
        self.backend.ctx.stats.records_read("salesforce", endpoint_label(request), len(page))
        headers = {
            "Sforce-NumberOfRecords": str(len(page)),
            "Sforce-Locator": _encode_locator(end) if end < len(job.rows) else "null",
        }
        return Response(out.getvalue(), media_type="text/csv", headers=headers)

    # -- ingest jobs -----------------------------------------------------------------------------------
    async def ingest_jobs(self, request: Request) -> Response:
        version = version_of(request)
        if request.method == "GET":
            return json_response(
                {
                    "done": True,
                    "nextRecordsUrl": None,
                    "records": [job.info for job in self.jobs.jobs.values() if job.kind == "ingest"],
                }
            )
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(400, "INVALIDJOB", "Expected a job definition")
        operation = body.get("operation")
        if operation not in _OPERATIONS:
            raise SalesforceError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        obj = self.backend.sobject(str(body.get("object") or ""))
        if obj is None:
            raise SalesforceError(400, "INVALIDJOB", f"Invalid object: {body.get('object')}")
        _delimiter(body)
        info = self._base_info(self.jobs.new_id(), version, operation, obj.name, body)
        if operation == "upsert":
            field_name = str(body.get("externalIdFieldName") or "")
            fdef = obj.field(field_name)
            if (
                fdef is None
                or not (fdef.external_id or fdef.name == "Id")
                or not self.backend.access().can_read(obj, fdef)
            ):
                raise SalesforceError(
                    400, "INVALIDJOB", f"External ID was blank or not valid for {obj.name}: {field_name}"
                )
            info["externalIdFieldName"] = fdef.name
        info.update(
            contentUrl=f"services/data/v{version}/jobs/ingest/{info['id']}/batches",
            jobType="V2Ingest",
            numberRecordsProcessed=0,
            numberRecordsFailed=0,
            retries=0,
            totalProcessingTime=0,
        )
        self.jobs.jobs[info["id"]] = Job(info["id"], "ingest", info)
        return json_response(info)

    async def ingest_job(self, request: Request) -> Response:
        version_of(request)
        return await self._job_state(request, self.jobs.get(request.path_params["job_id"], "ingest"))

    async def upload(self, request: Request) -> Response:
        version_of(request)
        job = self.jobs.get(request.path_params["job_id"], "ingest")
        if job.info["state"] != "Open":
            raise SalesforceError(409, "INVALIDJOBSTATE", f"Job is in state {job.info['state']}")
        job.upload.append((await request.body()).decode("utf-8-sig"))
        return Response(status_code=201)

    def _process(self, request: Request, job: Job) -> None:
        """Run an ingest job's rows through the same rules as every other write."""
        delimiter = _DELIMITERS.get(job.info["columnDelimiter"], ",")
        rows: list[list[str]] = []
        for part in job.upload:
            reader = csv.reader(io.StringIO(part), delimiter=delimiter)
            chunk = [row for row in reader if row]
            if not chunk:
                continue
            if not job.header:
                job.header = chunk[0]
            rows += chunk[1:] if chunk[0] == job.header else chunk
        object_name, operation = job.info["object"], job.info["operation"]
        written = 0
        for values in rows:
            record = dict(zip(job.header, values, strict=False))
            try:
                with acting_as(job.info["createdById"]):  # a job's rows run as the user who made it
                    record_id, created = self._write(
                        object_name, operation, job.info.get("externalIdFieldName"), record
                    )
            except RecordError as error:
                fields = ",".join(error.fields)
                job.failed.append(
                    [record.get("Id", ""), f"{error.code}:{error.message}:{fields} --", *values]
                )
                continue
            written += 1
            job.successful.append([record_id, "true" if created else "false", *values])
        job.info.update(
            state="JobComplete", numberRecordsProcessed=len(rows), numberRecordsFailed=len(job.failed)
        )
        self.backend.ctx.stats.records_written("salesforce", endpoint_label(request), written)

    def _write(
        self, object_name: str, operation: str, external_field: str | None, record: dict[str, str]
    ) -> tuple[str, bool]:
        # A blank cell leaves the field unchanged; #N/A sets it to null.
        values: dict[str, Any] = {
            key: (None if value == "#N/A" else value) for key, value in record.items() if value != ""
        }
        if operation == "insert":
            values.pop("Id", None)
            return self.org.insert(object_name, self.backend.prepare_create(object_name, values)), True
        if operation in ("update", "delete", "hardDelete"):
            record_id = normalize_id(str(values.pop("Id", "")))
            if record_id is None:
                raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            if operation == "update":
                self.org.update(
                    object_name, record_id, self.backend.prepare_update(object_name, record_id, values)
                )
            else:
                self.org.delete(object_name, record_id)
            return record_id, False
        assert external_field is not None
        key = values.get(external_field)
        if key is None:
            raise RecordError("MISSING_ARGUMENT", f"{external_field} not specified", [external_field])
        matches = self.org.lookup_external(object_name, external_field, key)
        if len(matches) > 1:
            raise RecordError(
                "DUPLICATE_EXTERNAL_ID",
                f"{external_field}: more than one record found for external id field: {matches}",
                [external_field],
            )
        if matches:
            values.pop(external_field)
            values.pop("Id", None)
            self.org.update(
                object_name, matches[0], self.backend.prepare_update(object_name, matches[0], values)
            )
            return matches[0], False
        values.pop("Id", None)
        return self.org.insert(object_name, self.backend.prepare_create(object_name, values)), True

    async def results(self, request: Request) -> Response:
        version_of(request)
        job = self.jobs.get(request.path_params["job_id"], "ingest")
        kind = request.url.path.rstrip("/").rsplit("/", 1)[-1].lower()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        if kind == "successfulresults":
            writer.writerow(["sf__Id", "sf__Created", *job.header])
            writer.writerows(job.successful)
        elif kind == "failedresults":
            writer.writerow(["sf__Id", "sf__Error", *job.header])
            writer.writerows(job.failed)
        else:
            writer.writerow(job.header)
            if job.info["state"] in ("Open", "Aborted"):
                for part in job.upload:
                    writer.writerows(
                        row for row in csv.reader(io.StringIO(part)) if row and row != job.header
                    )
        if not job.header and kind != "unprocessedrecords":
            raise not_found()
        return Response(out.getvalue(), media_type="text/csv")


def _delimiter(body: dict[str, Any]) -> None:
    if body.get("columnDelimiter", "COMMA") not in _DELIMITERS:
        raise SalesforceError(400, "INVALIDJOB", f"Invalid column delimiter: {body.get('columnDelimiter')}")
    if body.get("lineEnding", "LF") not in ("LF", "CRLF"):
        raise SalesforceError(400, "INVALIDJOB", f"Invalid line ending: {body.get('lineEnding')}")


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str | None) -> int:
    if not locator or locator == "null":
        return 0
    try:
        return int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except ValueError:
        raise SalesforceError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None
