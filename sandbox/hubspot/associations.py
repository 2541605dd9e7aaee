"""Associations v4: read one record's associations, batch read, create default and labelled associations,
batch create and archive, and the association labels between two object types.

https://developers.hubspot.com/docs/api/crm/associations/associations-v4
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.hubspot import schema
from leadloop.sandbox.hubspot.errors import batch_error, json_response, not_found, validation_error
from leadloop.sandbox.hubspot.objects import resolve_type
from leadloop.sandbox.hubspot.portal import Portal, body_json, inputs_of, query_int
from leadloop.sandbox.hubspot.store import Store, iso_ms

V4 = "/crm/v4"
MAX_BATCH_READ = 1000


def type_entry(type_id: int) -> dict[str, Any]:
    definition = schema.ASSOCIATION_TYPES.get(type_id)
    return {
        "category": "HUBSPOT_DEFINED",
        "typeId": type_id,
        "label": definition.label if definition else None,
    }


def associated_objects(store: Store, from_type: str, from_id: int, to_type: str) -> list[dict[str, Any]]:
    return [
        {"toObjectId": to_id, "associationTypes": [type_entry(t) for t in sorted(types)]}
        for to_id, types in store.associated(from_type, from_id, to_type).items()
    ]


def _types_of(specs: Any, from_type: str, to_type: str) -> list[int]:
    if not isinstance(specs, list) or not specs:
        raise validation_error(
            "A list of association types ({associationCategory, associationTypeId}) is required"
        )
    type_ids = []
    for spec in specs:
        try:
            type_id = int(spec.get("associationTypeId"))
        except (AttributeError, TypeError, ValueError):
            raise validation_error("associationTypeId must be an integer") from None
        definition = schema.ASSOCIATION_TYPES.get(type_id)
        if definition is None or (definition.from_type, definition.to_type) != (from_type, to_type):
            raise validation_error(
                f"{type_id} is not a valid association type from {from_type} to {to_type}",
                sub_category="crm-associations.INVALID_ASSOCIATION_TYPE",
            )
        type_ids.append(type_id)
    return type_ids


def _labels_pair(
    from_type: str, from_id: int, to_type: str, to_id: int, type_ids: list[int]
) -> dict[str, Any]:
    labels = [schema.ASSOCIATION_TYPES[t].label for t in type_ids if schema.ASSOCIATION_TYPES[t].label]
    return {
        "fromObjectTypeId": schema.OBJECT_TYPE_IDS[from_type],
        "fromObjectId": from_id,
        "toObjectTypeId": schema.OBJECT_TYPE_IDS[to_type],
        "toObjectId": to_id,
        "labels": labels,
    }


def _pair(store: Store, from_type: str, from_id: Any, to_type: str, to_id: Any) -> tuple[int, int]:
    source, target = store.get(from_type, from_id), store.get(to_type, to_id)
    if source is None or target is None:
        missing = from_id if source is None else to_id
        raise not_found(
            f"No {(from_type if source is None else to_type)[:-1]} with ID {missing} exists",
            ids=[str(missing)],
        )
    return source.id, target.id


def add_routes(router: APIRouter, portal: Portal) -> None:
    @router.get(V4 + "/objects/{object_type}/{object_id}/associations/{to_object_type}")
    async def get_page(request: Request, object_type: str, object_id: str, to_object_type: str) -> Response:
        from_type, to_type = resolve_type(object_type), resolve_type(to_object_type)
        store = portal.store
        record = store.get(from_type, object_id)
        if record is None:
            raise not_found(ids=[object_id])
        limit = query_int(request, "limit", 500, 500)
        after = int(request.query_params.get("after") or 0)
        found = associated_objects(store, from_type, record.id, to_type)
        page = found[after : after + limit]
        body: dict[str, Any] = {"results": page}
        if after + limit < len(found):
            nxt = str(after + limit)
            link = f"{portal.ctx.base_url}{request.url.path}?after={nxt}&limit={limit}"
            body["paging"] = {"next": {"after": nxt, "link": link}}
        portal.read(f"GET {V4}/objects/{from_type}/{{id}}/associations/{to_type}", len(page))
        return json_response(body)

    @router.put(
        V4 + "/objects/{object_type}/{object_id}/associations/default/{to_object_type}/{to_object_id}"
    )
    async def create_default(
        object_type: str, object_id: str, to_object_type: str, to_object_id: str
    ) -> Response:
        from_type, to_type = resolve_type(object_type), resolve_type(to_object_type)
        store = portal.store
        started = store.now_ms()
        from_id, to_id = _pair(store, from_type, object_id, to_type, to_object_id)
        type_id = schema.DEFAULT_ASSOCIATION.get((from_type, to_type))
        if type_id is None:
            raise validation_error(f"{from_type} cannot be associated with {to_type}")
        store.associate(from_type, from_id, to_type, to_id, [type_id])
        inverse = schema.ASSOCIATION_TYPES[type_id].inverse_id
        results = [
            {
                "from": {"id": str(from_id)},
                "to": {"id": str(to_id)},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id},
            },
            {
                "from": {"id": str(to_id)},
                "to": {"id": str(from_id)},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": inverse},
            },
        ]
        portal.written(f"PUT {V4}/objects/{from_type}/{{id}}/associations/default/{to_type}/{{id}}", 1)
        return json_response(
            {
                "status": "COMPLETE",
                "results": results,
                "startedAt": iso_ms(started),
                "completedAt": iso_ms(store.now_ms()),
            }
        )

    @router.put(V4 + "/objects/{object_type}/{object_id}/associations/{to_object_type}/{to_object_id}")
    async def create_labelled(
        request: Request, object_type: str, object_id: str, to_object_type: str, to_object_id: str
    ) -> Response:
        from_type, to_type = resolve_type(object_type), resolve_type(to_object_type)
        store = portal.store
        type_ids = _types_of(await body_json(request), from_type, to_type)
        from_id, to_id = _pair(store, from_type, object_id, to_type, to_object_id)
        store.associate(from_type, from_id, to_type, to_id, type_ids)
        portal.written(f"PUT {V4}/objects/{from_type}/{{id}}/associations/{to_type}/{{id}}", 1)
        all_types = sorted(store.associated(from_type, from_id, to_type).get(to_id, set()))
        return json_response(_labels_pair(from_type, from_id, to_type, to_id, all_types), 201)

    @router.delete(V4 + "/objects/{object_type}/{object_id}/associations/{to_object_type}/{to_object_id}")
    async def archive(object_type: str, object_id: str, to_object_type: str, to_object_id: str) -> Response:
        from_type, to_type = resolve_type(object_type), resolve_type(to_object_type)
        try:
            portal.store.disassociate(from_type, int(object_id), to_type, int(to_object_id))
        except ValueError:
            raise validation_error("Object ids must be numeric") from None
        return Response(status_code=204)

    @router.get(V4 + "/associations/{from_object_type}/{to_object_type}/labels")
    async def labels(from_object_type: str, to_object_type: str) -> Response:
        from_type, to_type = resolve_type(from_object_type), resolve_type(to_object_type)
        found = [
            type_entry(t.type_id)
            for t in schema.ASSOCIATION_TYPES.values()
            if (t.from_type, t.to_type) == (from_type, to_type)
        ]
        return json_response({"results": sorted(found, key=lambda e: e["typeId"])})

    @router.post(V4 + "/associations/{from_object_type}/{to_object_type}/batch/read")
    async def batch_read(request: Request, from_object_type: str, to_object_type: str) -> Response:
        from_type, to_type = resolve_type(from_object_type), resolve_type(to_object_type)
        store = portal.store
        started = store.now_ms()
        inputs = inputs_of(await body_json(request), MAX_BATCH_READ)
        results, missing = [], []
        read = 0
        for item in inputs:
            key = str(item.get("id", ""))
            record = store.get(from_type, key)
            found = associated_objects(store, from_type, record.id, to_type) if record else []
            if not found:
                missing.append(key)
                continue
            read += len(found)
            results.append({"from": {"id": key}, "to": found})
        errors = [
            batch_error(
                "OBJECT_NOT_FOUND",
                f"No {to_type[:-1]} is associated with {from_type[:-1]} {key}.",
                {"fromObjectId": [key]},
                sub_category="crm-associations.NO_ASSOCIATIONS_FOUND",
            )
            for key in missing
        ]
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        body.update({"startedAt": iso_ms(started), "completedAt": iso_ms(store.now_ms())})
        portal.read(f"POST {V4}/associations/{from_type}/{to_type}/batch/read", read)
        return json_response(body, 207 if errors else 200)

    @router.post(V4 + "/associations/{from_object_type}/{to_object_type}/batch/create")
    async def batch_create(request: Request, from_object_type: str, to_object_type: str) -> Response:
        from_type, to_type = resolve_type(from_object_type), resolve_type(to_object_type)
        store = portal.store
        started = store.now_ms()
        inputs = inputs_of(await body_json(request), 2000)
        results, errors = [], []
        for item in inputs:
            type_ids = _types_of(item.get("types"), from_type, to_type)
            from_key = str((item.get("from") or {}).get("id", ""))
            to_key = str((item.get("to") or {}).get("id", ""))
            source, target = store.get(from_type, from_key), store.get(to_type, to_key)
            if source is None or target is None:
                missing = from_key if source is None else to_key
                errors.append(
                    batch_error("OBJECT_NOT_FOUND", f"No object with ID {missing} exists", {"ids": [missing]})
                )
                continue
            store.associate(from_type, source.id, to_type, target.id, type_ids)
            all_types = sorted(store.associated(from_type, source.id, to_type).get(target.id, set()))
            results.append(_labels_pair(from_type, source.id, to_type, target.id, all_types))
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        body.update({"startedAt": iso_ms(started), "completedAt": iso_ms(store.now_ms())})
        portal.written(f"POST {V4}/associations/{from_type}/{to_type}/batch/create", len(results))
        return json_response(body, 207 if errors else 201)

    @router.post(V4 + "/associations/{from_object_type}/{to_object_type}/batch/associate/default")
    async def batch_default(request: Request, from_object_type: str, to_object_type: str) -> Response:
        from_type, to_type = resolve_type(from_object_type), resolve_type(to_object_type)
        store = portal.store
        started = store.now_ms()
        type_id = schema.DEFAULT_ASSOCIATION.get((from_type, to_type))
        if type_id is None:
            raise validation_error(f"{from_type} cannot be associated with {to_type}")
        results = []
        for item in inputs_of(await body_json(request), 2000):
            from_id, to_id = _pair(
                store,
                from_type,
                (item.get("from") or {}).get("id"),
                to_type,
                (item.get("to") or {}).get("id"),
            )
            store.associate(from_type, from_id, to_type, to_id, [type_id])
            results.append(
                {
                    "from": {"id": str(from_id)},
                    "to": {"id": str(to_id)},
                    "associationSpec": {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": type_id,
                    },
                }
            )
        portal.written(f"POST {V4}/associations/{from_type}/{to_type}/batch/associate/default", len(results))
        return json_response(
            {
                "status": "COMPLETE",
                "results": results,
                "startedAt": iso_ms(started),
                "completedAt": iso_ms(store.now_ms()),
            }
        )

    @router.post(V4 + "/associations/{from_object_type}/{to_object_type}/batch/archive")
    async def batch_archive(request: Request, from_object_type: str, to_object_type: str) -> Response:
        from_type, to_type = resolve_type(from_object_type), resolve_type(to_object_type)
        store = portal.store
        for item in inputs_of(await body_json(request), 2000):
            try:
                from_id = int((item.get("from") or {}).get("id"))
                targets = [int(t.get("id")) for t in item.get("to") or []]
            except (TypeError, ValueError):
                raise validation_error("Object ids must be numeric") from None
            for to_id in targets:
                store.disassociate(from_type, from_id, to_type, to_id)
        return Response(status_code=204)
