"""CRM v3 objects: list, read, create, update, archive, and the batch endpoints, for contacts, companies,
deals, tasks and the engagement objects (notes, calls, emails, meetings).

https://developers.hubspot.com/docs/api/crm/contacts (and companies, deals, tasks, engagements pages);
batch limits and 207 results: https://developers.hubspot.com/docs/api/crm/understanding-the-crm
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.hubspot import schema
from leadloop.sandbox.hubspot.errors import (
    HubSpotError,
    batch_error,
    json_response,
    not_found,
    validation_error,
)
from leadloop.sandbox.hubspot.portal import Portal, body_json, inputs_of, query_bool, query_int, query_list
from leadloop.sandbox.hubspot.store import Record, Store, iso_ms

BASE = "/crm/v3/objects"


def resolve_type(name: str) -> str:
    object_name = schema.object_type(name)
    if object_name is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
    return object_name


def render(
    store: Store,
    object_name: str,
    record: Record,
    properties: list[str] | None = None,
    associations: list[str] | None = None,
    with_history: list[str] | None = None,
) -> dict[str, Any]:
    """A SimplePublicObject (WithAssociations when asked): requested properties, null when empty."""
    definitions = store.properties[object_name]
    names = properties if properties else schema.default_properties(object_name)
    props = record.props
    out: dict[str, Any] = {
        "id": str(record.id),
        "properties": {n: props.get(n) for n in names if n in definitions},
        "createdAt": iso_ms(record.created_ms),
        "updatedAt": iso_ms(record.updated_ms),
        "archived": record.archived,
    }
    if record.archived and record.archived_ms is not None:
        out["archivedAt"] = iso_ms(record.archived_ms)
    if with_history:
        out["propertiesWithHistory"] = {
            n: (
                [
                    {
                        "value": props[n],
                        "timestamp": iso_ms(record.updated_ms),
                        "sourceType": "API",
                        "sourceId": "sandbox",
                    }
                ]
                if props.get(n) is not None
                else []
            )
            for n in with_history
            if n in definitions
        }
    if associations:
        linked: dict[str, Any] = {}
        for to_name in associations:
            to_type = schema.object_type(to_name)
            if to_type is None:
                continue
            found = store.associated(object_name, record.id, to_type)
            if found:
                linked[to_name] = {
                    "results": [
                        {
                            "id": str(to_id),
                            "type": schema.ASSOCIATION_TYPES[t].v3_name
                            if t in schema.ASSOCIATION_TYPES
                            else str(t),
                        }
                        for to_id, types in found.items()
                        for t in sorted(types)
                    ]
                }
        if linked:
            out["associations"] = linked
    return out


def written_view(object_name: str, values: dict[str, Any]) -> list[str]:
    """What a write returns: the written properties plus the record's system properties."""
    system = ("createdate", schema.modified_property(object_name), "hs_object_id")
    return [*values, *(n for n in system if n not in values)]


def _batch_body(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], started: int, store: Store
) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    body["requestedAt"] = iso_ms(started)
    body["startedAt"] = iso_ms(started)
    body["completedAt"] = iso_ms(store.now_ms())
    return body


def inline_associations(store: Store, object_name: str, specs: Any) -> list[tuple[str, int, list[int]]]:
    """Validated `associations` of a create input: (to type, to id, type ids)."""
    if not specs:
        return []
    if not isinstance(specs, list):
        raise validation_error("associations must be a list")
    out = []
    for spec in specs:
        to_id = (spec.get("to") or {}).get("id") if isinstance(spec, dict) else None
        types = spec.get("types") or [] if isinstance(spec, dict) else []
        type_ids = []
        to_type = None
        for t in types:
            type_id = int(t.get("associationTypeId", -1))
            definition = schema.ASSOCIATION_TYPES.get(type_id)
            if definition is None or definition.from_type != object_name:
                raise validation_error(
                    f"{type_id} is not a valid association type id for {object_name}",
                    sub_category="crm-associations.INVALID_ASSOCIATION_TYPE",
                )
            to_type = definition.to_type
            type_ids.append(type_id)
        if to_type is None or to_id is None:
            raise validation_error("Each association needs a 'to' id and at least one type")
        if store.get(to_type, to_id) is None:
            raise validation_error(
                f"No {to_type[:-1]} with ID {to_id} exists",
                sub_category="crm-associations.NO_OBJECT_FOUND",
                context={"id": [str(to_id)]},
            )
        out.append((to_type, int(to_id), type_ids))
    return out


def _rejection(portal: Portal, object_name: str, record_id: int | None, props: dict[str, Any]) -> str | None:
    return portal.ctx.faults.rejection(
        "hubspot", object_name, {"id": str(record_id) if record_id else None, **props}
    )


def _rejected(message: str, record_id: int | None, trace: str | None) -> dict[str, Any]:
    context: dict[str, list[str]] = {}
    if record_id is not None:
        context["ids"] = [str(record_id)]
    if trace:
        context["objectWriteTraceId"] = [trace]
    return batch_error("VALIDATION_ERROR", message, context, sub_category="CUSTOM_VALIDATION_FAILED")


def add_routes(router: APIRouter, portal: Portal) -> None:
    @router.get(BASE + "/{object_type}")
    async def list_objects(request: Request, object_type: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        limit = query_int(request, "limit", 10, 100)
        after_raw = request.query_params.get("after") or "0"
        try:
            after = int(after_raw)
        except ValueError:
            raise validation_error(f"Invalid after cursor: {after_raw}") from None
        records, next_after = store.table(object_name).page(after, limit, query_bool(request, "archived"))
        props = query_list(request, "properties")
        associations = query_list(request, "associations")
        history = query_list(request, "propertiesWithHistory")
        body: dict[str, Any] = {
            "results": [render(store, object_name, r, props, associations, history) for r in records]
        }
        if next_after is not None:
            link = f"{portal.ctx.base_url}{BASE}/{object_type}?after={next_after}&limit={limit}"
            body["paging"] = {"next": {"after": str(next_after), "link": link}}
        portal.read(f"GET {BASE}/{object_name}", len(records))
        return json_response(body)

    @router.post(BASE + "/{object_type}")
    async def create_object(request: Request, object_type: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        body = await body_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("properties", {}), dict):
            raise validation_error("Invalid input JSON: 'properties' must be an object")
        values = store.normalize(object_name, body.get("properties") or {}, creating=True)
        links = inline_associations(store, object_name, body.get("associations"))
        record = store.create(object_name, values, portal.lag())
        for to_type, to_id, type_ids in links:
            store.associate(object_name, record.id, to_type, to_id, type_ids)
        portal.written(f"POST {BASE}/{object_name}", 1)
        return json_response(render(store, object_name, record, written_view(object_name, values)), 201)

    @router.get(BASE + "/{object_type}/{object_id}")
    async def get_object(request: Request, object_type: str, object_id: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        archived = query_bool(request, "archived")
        id_property = request.query_params.get("idProperty")
        record = (
            store.get(object_name, object_id, archived)
            if not id_property or archived
            else store.find_by(object_name, id_property, object_id)
        )
        if record is None:
            raise not_found(ids=[object_id])
        portal.read(f"GET {BASE}/{object_name}/{{id}}", 1)
        return json_response(
            render(
                store,
                object_name,
                record,
                query_list(request, "properties"),
                query_list(request, "associations"),
                query_list(request, "propertiesWithHistory"),
            )
        )

    @router.patch(BASE + "/{object_type}/{object_id}")
    async def update_object(request: Request, object_type: str, object_id: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        body = await body_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise validation_error("Invalid input JSON: 'properties' is required")
        record = store.find_by(object_name, request.query_params.get("idProperty"), object_id)
        if record is None:
            raise not_found(ids=[object_id])
        values = store.normalize(object_name, body["properties"])
        store.update(object_name, record, values, portal.lag())
        portal.written(f"PATCH {BASE}/{object_name}/{{id}}", 1)
        return json_response(render(store, object_name, record, written_view(object_name, values)))

    @router.delete(BASE + "/{object_type}/{object_id}")
    async def archive_object(request: Request, object_type: str, object_id: str) -> Response:
        object_name = resolve_type(object_type)
        record = portal.store.get(object_name, object_id)
        if record is not None:
            portal.store.archive(object_name, record)
            portal.written(f"DELETE {BASE}/{object_name}/{{id}}", 1)
        return Response(status_code=204)

    @router.post(BASE + "/{object_type}/batch/read")
    async def batch_read(request: Request, object_type: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        started = store.now_ms()
        body = await body_json(request)
        history = body.get("propertiesWithHistory") or [] if isinstance(body, dict) else []
        inputs = inputs_of(body, 50 if history else 100)
        id_property = body.get("idProperty")
        archived = bool(body.get("archived", False))
        props = body.get("properties") or []
        results, missing = [], []
        for item in inputs:
            key = str(item.get("id", ""))
            record = (
                store.get(object_name, key, archived)
                if not id_property or archived
                else store.find_by(object_name, id_property, key)
            )
            if record is None:
                missing.append(key)
            else:
                results.append(render(store, object_name, record, props, None, history))
        errors = []
        if missing:
            errors.append(
                batch_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {object_name[:-1].upper()} objects, they may be deleted or not "
                    "exist. Check that ids are valid.",
                    {"ids": missing},
                )
            )
        portal.read(f"POST {BASE}/{object_name}/batch/read", len(results))
        return json_response(_batch_body(results, errors, started, store), 207 if errors else 200)

    @router.post(BASE + "/{object_type}/batch/create")
    async def batch_create(request: Request, object_type: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        started = store.now_ms()
        inputs = inputs_of(await body_json(request))
        prepared = []
        seen_emails: dict[str, int] = {}
        for index, item in enumerate(inputs):
            values = store.normalize(object_name, item.get("properties") or {}, creating=True)
            links = inline_associations(store, object_name, item.get("associations"))
            email = (values.get("email") or "").lower() if object_name == "contacts" else ""
            if email:
                existing = store.find_by("contacts", "email", email)
                if existing is not None:
                    raise HubSpotError(409, "CONFLICT", f"Contact already exists. Existing ID: {existing.id}")
                if email in seen_emails:
                    raise HubSpotError(
                        409,
                        "CONFLICT",
                        f"Duplicate email in batch inputs: {email} (inputs {seen_emails[email]} and {index})",
                    )
                seen_emails[email] = index
            prepared.append((item, values, links))
        results, errors = [], []
        lag = portal.lag()
        for item, values, links in prepared:
            message = _rejection(portal, object_name, None, values)
            if message:
                errors.append(_rejected(message, None, item.get("objectWriteTraceId")))
                continue
            record = store.create(object_name, values, lag)
            for to_type, to_id, type_ids in links:
                store.associate(object_name, record.id, to_type, to_id, type_ids)
            rendered = render(store, object_name, record, written_view(object_name, values))
            if item.get("objectWriteTraceId"):
                rendered["objectWriteTraceId"] = item["objectWriteTraceId"]
            results.append(rendered)
        portal.written(f"POST {BASE}/{object_name}/batch/create", len(results))
        return json_response(_batch_body(results, errors, started, store), 207 if errors else 201)

    @router.post(BASE + "/{object_type}/batch/update")
    async def batch_update(request: Request, object_type: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        started = store.now_ms()
        inputs = inputs_of(await body_json(request))
        prepared = [(item, store.normalize(object_name, item.get("properties") or {})) for item in inputs]
        results, errors, missing = [], [], []
        lag = portal.lag()
        for item, values in prepared:
            key = str(item.get("id", ""))
            record = store.find_by(object_name, item.get("idProperty"), key)
            if record is None:
                missing.append(key)
                continue
            message = _rejection(portal, object_name, record.id, {**record.props, **values})
            if message:
                errors.append(_rejected(message, record.id, item.get("objectWriteTraceId")))
                continue
            store.update(object_name, record, values, lag)
            results.append(render(store, object_name, record, written_view(object_name, values)))
        if missing:
            errors.append(
                batch_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not find some {object_name[:-1].upper()} "
                    "objects to update. Check that ids are valid.",
                    {"ids": missing},
                )
            )
        portal.written(f"POST {BASE}/{object_name}/batch/update", len(results))
        return json_response(_batch_body(results, errors, started, store), 207 if errors else 200)

    @router.post(BASE + "/{object_type}/batch/upsert")
    async def batch_upsert(request: Request, object_type: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        started = store.now_ms()
        inputs = inputs_of(await body_json(request))
        prepared = []
        for item in inputs:
            id_property = item.get("idProperty")
            if not id_property:
                raise validation_error("idProperty is required for upsert inputs")
            definition = store.properties[object_name].get(id_property)
            if definition is None or not definition.unique:
                raise validation_error(f"{id_property} is not a unique identifier property for {object_name}")
            existing = store.find_by(object_name, id_property, str(item.get("id", "")))
            values = store.normalize(object_name, item.get("properties") or {}, creating=existing is None)
            prepared.append((item, id_property, values))
        results, errors = [], []
        lag = portal.lag()
        for item, id_property, values in prepared:
            key = str(item.get("id", ""))
            record = store.find_by(object_name, id_property, key)
            merged = {**(record.props if record else {}), **values}
            message = _rejection(portal, object_name, record.id if record else None, merged)
            if message:
                errors.append(
                    _rejected(message, record.id if record else None, item.get("objectWriteTraceId"))
                )
                continue
            if record is None:
                record = store.create(object_name, {**values, id_property: key}, lag)
                is_new = True
            else:
                store.update(object_name, record, values, lag)
                is_new = False
            rendered = render(
                store, object_name, record, written_view(object_name, {**values, id_property: key})
            )
            rendered["new"] = is_new
            results.append(rendered)
        portal.written(f"POST {BASE}/{object_name}/batch/upsert", len(results))
        return json_response(_batch_body(results, errors, started, store), 207 if errors else 200)

    @router.post(BASE + "/{object_type}/batch/archive")
    async def batch_archive(request: Request, object_type: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        inputs = inputs_of(await body_json(request))
        archived = 0
        for item in inputs:
            record = store.get(object_name, str(item.get("id", "")))
            if record is not None:
                store.archive(object_name, record)
                archived += 1
        portal.written(f"POST {BASE}/{object_name}/batch/archive", archived)
        return Response(status_code=204)
