"""sObject Collections: create, update, upsert by external id, retrieve and delete up to 200 records
per call, with `allOrNone` and per-record results.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections.htm
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm
Per-record errors carry `statusCode` (not `errorCode`). With `allOrNone`, one failure rolls every
record back and the others report ALL_OR_NONE_OPERATION_ROLLED_BACK.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.responses import Response

from leadloop.sandbox.salesforce.errors import (
    RecordError,
    SalesforceError,
    invalid_type,
    json_response,
    not_found,
)
from leadloop.sandbox.salesforce.http import Routes, endpoint_label, json_body, version_of
from leadloop.sandbox.salesforce.ids import normalize_id
from leadloop.sandbox.salesforce.org import external_key

if TYPE_CHECKING:
    from leadloop.sandbox.salesforce.backend import SalesforceBackend

MAX_RECORDS = 200
MAX_READ_IDS = 2000
ROLLED_BACK = RecordError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
    [],
)


def too_many() -> SalesforceError:
    return SalesforceError(
        400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call"
    )


def add_routes(routes: Routes, backend: SalesforceBackend) -> None:
    api = _Collections(backend)
    base = "/services/data/{version}/composite/sobjects"
    routes.add(base, ["POST", "PATCH", "DELETE"], api.collection)
    routes.add(base + "/{sobject}", ["GET", "POST"], api.retrieve)
    routes.add(base + "/{sobject}/{field}", ["PATCH"], api.upsert)


# A planned write: validated values, then the commit that applies them and returns the result.
Plan = tuple[dict[str, Any], Callable[[], dict[str, Any]]]


class _Collections:
    def __init__(self, backend: SalesforceBackend) -> None:
        self.backend = backend
        self.org = backend.org

    async def collection(self, request: Request) -> Response:
        version_of(request)
        if request.method == "DELETE":
            return self._delete(request)
        body = await json_body(request)
        records, all_or_none = _records(body)
        plans: list[Plan | RecordError] = []
        for record in records:
            try:
                plans.append(
                    self._plan_create(record) if request.method == "POST" else self._plan_update(record)
                )
            except RecordError as error:
                plans.append(error)
        results = _commit(plans, all_or_none, with_id=request.method == "PATCH", records=records)
        written = sum(1 for result in results if result.get("success"))
        self.backend.ctx.stats.records_written("salesforce", endpoint_label(request), written)
        return json_response(results)

    def _type(self, record: dict[str, Any]) -> str:
        attributes = record.get("attributes")
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        if not type_name:
            raise RecordError("INVALID_TYPE", "Must specify a type in the attributes map", [])
        obj = self.backend.sobject(type_name)
        if obj is None:
            error = invalid_type(type_name)
            raise RecordError(error.code, error.message, [])
        return obj.name

    def _plan_create(self, record: dict[str, Any]) -> Plan:
        object_name = self._type(record)
        values = {key: value for key, value in record.items() if key != "attributes"}
        row = self.backend.prepare_create(object_name, values)

        def commit() -> dict[str, Any]:
            record_id = self.org.insert(object_name, row)
            return {"id": record_id, "success": True, "errors": []}

        return row, commit

    def _plan_update(self, record: dict[str, Any]) -> Plan:
        object_name = self._type(record)
        raw_id = record.get("id") or record.get("Id")
        if not raw_id:
            raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", [])
        values = {key: value for key, value in record.items() if key not in ("attributes", "id", "Id")}
        record_id = _existing_id(self.org, object_name, str(raw_id))
        changes = self.backend.prepare_update(object_name, record_id, values)

        def commit() -> dict[str, Any]:
            self.org.update(object_name, record_id, changes)
            return {"id": record_id, "success": True, "errors": []}

        return changes, commit

    def _delete(self, request: Request) -> Response:
        ids = [part for part in request.query_params.get("ids", "").split(",") if part]
        if not ids:
            raise SalesforceError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > MAX_RECORDS:
            raise too_many()
        all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
        plans: list[Plan | RecordError] = []
        for raw_id in ids:
            try:
                plans.append(self._plan_delete(raw_id))
            except RecordError as error:
                plans.append(error)
        results = _commit(plans, all_or_none, with_id=True, records=[{"id": raw_id} for raw_id in ids])
        self.backend.ctx.stats.records_written(
            "salesforce", endpoint_label(request), sum(1 for r in results if r.get("success"))
        )
        return json_response(results)

    def _plan_delete(self, raw_id: str) -> Plan:
        record_id = normalize_id(raw_id)
        found = self.org.find(record_id) if record_id else None
        if found is None:
            raise RecordError(
                "INVALID_CROSS_REFERENCE_KEY" if record_id else "MALFORMED_ID",
                "invalid cross reference id" if record_id else f"bad id {raw_id}",
                [],
            )
        table, row = found
        if row.get("IsDeleted"):
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])

        def commit() -> dict[str, Any]:
            self.org.delete(table.obj.name, row["Id"])
            return {"id": row["Id"], "success": True, "errors": []}

        return {}, commit

    async def retrieve(self, request: Request) -> Response:
        version = version_of(request)
        obj = self.backend.sobject(request.path_params["sobject"])
        if obj is None:
            raise not_found()
        if request.method == "GET":
            ids = [part for part in request.query_params.get("ids", "").split(",") if part]
            fields = [part for part in request.query_params.get("fields", "").split(",") if part]
        else:
            body = await json_body(request)
            if not isinstance(body, dict):
                raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected an object with ids and fields")
            ids = [str(item) for item in body.get("ids") or []]
            fields = [str(item) for item in body.get("fields") or []]
        if not ids or not fields:
            raise SalesforceError(400, "MISSING_ARGUMENT", "ids and fields are both required")
        if len(ids) > MAX_READ_IDS:
            raise too_many()
        table = self.org.table(obj.name)
        results: list[dict[str, Any] | None] = []
        for raw_id in ids:
            record_id = normalize_id(raw_id)
            row = table.rows.get(record_id or "")
            results.append(
                None
                if row is None or row.get("IsDeleted")
                else self.backend.render_record(obj, row, version, fields)
            )
        self.backend.ctx.stats.records_read(
            "salesforce", endpoint_label(request), sum(1 for r in results if r is not None)
        )
        return json_response(results)

    async def upsert(self, request: Request) -> Response:
        version_of(request)
        obj = self.backend.sobject(request.path_params["sobject"])
        if obj is None:
            raise not_found()
        field_name = request.path_params["field"]
        fdef = obj.field(field_name)
        if (
            fdef is None
            or not (fdef.external_id or fdef.name == "Id")
            or not self.backend.access().can_read(obj, fdef)
        ):
            raise SalesforceError(
                400,
                "INVALID_FIELD",
                f"Field name provided, {field_name} is not an External ID or indexed field for {obj.name}",
            )
        body = await json_body(request)
        records, all_or_none = _records(body)
        keys = [_external_value(record, fdef.name) for record in records]
        counts: dict[str, int] = {}
        for key in keys:
            if key is not None:
                counts[external_key(key)] = counts.get(external_key(key), 0) + 1
        plans: list[Plan | RecordError] = []
        for record, key in zip(records, keys, strict=True):
            try:
                if key is None:
                    raise RecordError("MISSING_ARGUMENT", f"{fdef.name} not specified", [fdef.name])
                if counts[external_key(key)] > 1:
                    raise RecordError(
                        "DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {key}", [fdef.name]
                    )
                attributes = record.get("attributes")
                if (
                    isinstance(attributes, dict)
                    and attributes.get("type")
                    and str(attributes["type"]).lower() != obj.name.lower()
                ):
                    raise RecordError(
                        "INVALID_TYPE", f"Record type {attributes['type']} does not match {obj.name}", []
                    )
                plans.append(self._plan_upsert(obj.name, fdef.name, key, record))
            except RecordError as error:
                plans.append(error)
        results = _commit(plans, all_or_none, with_id=False, records=records)
        self.backend.ctx.stats.records_written(
            "salesforce", endpoint_label(request), sum(1 for r in results if r.get("success"))
        )
        return json_response(results)

    def _plan_upsert(self, object_name: str, field_name: str, key: Any, record: dict[str, Any]) -> Plan:
        values = {k: v for k, v in record.items() if k not in ("attributes", "Id", "id")}
        matches = self.org.lookup_external(object_name, field_name, key)
        if len(matches) > 1:
            raise RecordError(
                "DUPLICATE_EXTERNAL_ID",
                f"{field_name}: more than one record found for external id field: {matches}",
                [field_name],
            )
        if matches:
            record_id = matches[0]
            values = {k: v for k, v in values.items() if k.lower() != field_name.lower()}
            changes = self.backend.prepare_update(object_name, record_id, values)

            def commit_update() -> dict[str, Any]:
                self.org.update(object_name, record_id, changes)
                return {"id": record_id, "success": True, "errors": [], "created": False}

            return changes, commit_update
        if field_name == "Id":
            raise RecordError("NOT_FOUND", "The requested resource does not exist", [])
        row = self.backend.prepare_create(object_name, values)

        def commit_create() -> dict[str, Any]:
            return {"id": self.org.insert(object_name, row), "success": True, "errors": [], "created": True}

        return row, commit_create


def _records(body: Any) -> tuple[list[dict[str, Any]], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SalesforceError(
            400, "JSON_PARSER_ERROR", "The request body must be an object with a records list"
        )
    records = body["records"]
    if len(records) > MAX_RECORDS:
        raise too_many()
    if not all(isinstance(record, dict) for record in records):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
    return records, bool(body.get("allOrNone", False))


def _external_value(record: dict[str, Any], field_name: str) -> Any:
    for key, value in record.items():
        if key.lower() == field_name.lower() and value not in (None, ""):
            return value
    return None


def _existing_id(org: Any, object_name: str, raw_id: str) -> str:
    record_id = normalize_id(raw_id)
    if record_id is None:
        raise RecordError("MALFORMED_ID", f"{object_name} ID: id value of incorrect type: {raw_id}", ["Id"])
    return record_id


def _commit(
    plans: list[Plan | RecordError], all_or_none: bool, with_id: bool, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per-record results in request order; nothing commits under allOrNone when anything failed."""

    def failure(error: RecordError, record: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {"success": False, "errors": [error.as_result()]}
        if with_id:
            raw_id = record.get("id") or record.get("Id")
            result = {"id": normalize_id(str(raw_id)) if raw_id else None, **result}
        return result

    if all_or_none and any(isinstance(plan, RecordError) for plan in plans):
        return [
            failure(plan if isinstance(plan, RecordError) else ROLLED_BACK, record)
            for plan, record in zip(plans, records, strict=True)
        ]
    results = []
    for plan, record in zip(plans, records, strict=True):
        if isinstance(plan, RecordError):
            results.append(failure(plan, record))
            continue
        try:
            results.append(plan[1]())
        except RecordError as error:
            results.append(failure(error, record))
    return results
