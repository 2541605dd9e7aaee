"""Properties and property groups (read, create, update, archive), CRM owners and deal pipelines.

Properties: https://developers.hubspot.com/docs/api/crm/properties
Owners: https://developers.hubspot.com/docs/api/crm/owners
Pipelines: https://developers.hubspot.com/docs/api/crm/pipelines
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.hubspot.errors import HubSpotError, json_response, not_found, validation_error
from leadloop.sandbox.hubspot.objects import resolve_type
from leadloop.sandbox.hubspot.portal import Portal, body_json, query_bool, query_int
from leadloop.sandbox.hubspot.schema import PropertyDef
from leadloop.sandbox.hubspot.store import iso_ms

PROPS = "/crm/v3/properties"
TYPES = {"string", "number", "date", "datetime", "enumeration", "bool", "phone_number"}
FIELD_TYPES = {
    "text",
    "textarea",
    "number",
    "date",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "phonenumber",
    "html",
    "file",
    "calculation_equation",
}
# How the app shows a number property ("percentage": 45.1 reads 45.1%; "probability": 0.451 reads 45.1%).
NUMBER_DISPLAY_HINTS = {"unformatted", "formatted", "currency", "percentage", "duration", "probability"}


def _number_display_hint(body: dict[str, Any], property_type: str) -> str | None:
    hint = body.get("numberDisplayHint")
    if hint is None:
        return None
    if property_type != "number":
        raise validation_error("numberDisplayHint is only for properties of type number.")
    if hint not in NUMBER_DISPLAY_HINTS:
        raise validation_error(
            f"{hint} is not a valid numberDisplayHint. Valid values: {sorted(NUMBER_DISPLAY_HINTS)}"
        )
    return str(hint)


def _options(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(o, dict) and "value" in o for o in raw):
        raise validation_error("options must be a list of {label, value} objects")
    return tuple(str(o["value"]) for o in raw)


def _owner_options(portal: Portal) -> list[tuple[str, str]]:
    return [
        (o["id"], f"{o['firstName']} {o['lastName']}")
        for o in portal.store.owners.values()
        if not o["archived"]
    ]


def add_routes(router: APIRouter, portal: Portal) -> None:
    @router.get(PROPS + "/{object_type}/groups")
    async def list_groups(object_type: str) -> Response:
        object_name = resolve_type(object_type)
        return json_response({"results": list(portal.store.groups[object_name].values())})

    @router.get(PROPS + "/{object_type}/groups/{group_name}")
    async def get_group(object_type: str, group_name: str) -> Response:
        group = portal.store.groups[resolve_type(object_type)].get(group_name)
        if group is None:
            raise not_found(f"Unable to find property group {group_name}")
        return json_response(group)

    @router.post(PROPS + "/{object_type}/groups")
    async def create_group(request: Request, object_type: str) -> Response:
        groups = portal.store.groups[resolve_type(object_type)]
        body = await body_json(request)
        if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
            raise validation_error("name and label are required")
        name = str(body["name"])
        if name in groups:
            raise HubSpotError(
                409, "OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists."
            )
        groups[name] = {
            "name": name,
            "label": str(body["label"]),
            "displayOrder": int(body.get("displayOrder", -1)),
            "archived": False,
        }
        return json_response(groups[name], 201)

    @router.patch(PROPS + "/{object_type}/groups/{group_name}")
    async def update_group(request: Request, object_type: str, group_name: str) -> Response:
        group = portal.store.groups[resolve_type(object_type)].get(group_name)
        if group is None:
            raise not_found(f"Unable to find property group {group_name}")
        body = await body_json(request)
        for key in ("label", "displayOrder"):
            if isinstance(body, dict) and key in body:
                group[key] = body[key]
        return json_response(group)

    @router.get(PROPS + "/{object_type}")
    async def list_properties(request: Request, object_type: str) -> Response:
        definitions = portal.store.properties[resolve_type(object_type)]
        if query_bool(request, "archived"):
            return json_response({"results": []})
        owners = _owner_options(portal)
        return json_response({"results": [d.to_json(owners) for d in definitions.values()]})

    @router.get(PROPS + "/{object_type}/{property_name}")
    async def get_property(object_type: str, property_name: str) -> Response:
        definition = portal.store.properties[resolve_type(object_type)].get(property_name)
        if definition is None:
            raise not_found(f"Unable to find property {property_name}")
        return json_response(definition.to_json(_owner_options(portal)))

    @router.post(PROPS + "/{object_type}")
    async def create_property(request: Request, object_type: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        body = await body_json(request)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise validation_error(f"Missing required fields: {', '.join(missing)}")
        name = str(body["name"])
        if name in store.properties[object_name]:
            raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        if body["type"] not in TYPES:
            raise validation_error(
                f"{body['type']} is not a valid property type. Valid types: {sorted(TYPES)}"
            )
        if body["fieldType"] not in FIELD_TYPES:
            raise validation_error(f"{body['fieldType']} is not a valid field type.")
        if body["groupName"] not in store.groups[object_name]:
            raise validation_error(f"Property group {body['groupName']} does not exist.")
        if (
            body["type"] == "enumeration"
            and not body.get("options")
            and body["fieldType"] != "booleancheckbox"
        ):
            raise validation_error("Enumeration properties need at least one option.")
        definition = PropertyDef(
            name=name,
            label=str(body["label"]),
            type=body["type"],
            field_type=body["fieldType"],
            group=body["groupName"],
            options=_options(body.get("options")),
            hubspot_defined=False,
            unique=bool(body.get("hasUniqueValue", False)),
            description=str(body.get("description") or ""),
            created_at=iso_ms(store.now_ms()),
            display_order=int(body.get("displayOrder", -1)),
            number_display_hint=_number_display_hint(body, body["type"]),
        )
        store.properties[object_name][name] = definition
        return json_response(definition.to_json(), 201)

    @router.patch(PROPS + "/{object_type}/{property_name}")
    async def update_property(request: Request, object_type: str, property_name: str) -> Response:
        definition = portal.store.properties[resolve_type(object_type)].get(property_name)
        if definition is None:
            raise not_found(f"Unable to find property {property_name}")
        body = await body_json(request)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        if definition.hubspot_defined and set(body) - {"label", "description", "displayOrder"}:
            raise validation_error(f"Property {property_name} is HubSpot-defined; only its label can change.")
        if "label" in body:
            definition.label = str(body["label"])
        if "description" in body:
            definition.description = str(body["description"])
        if "options" in body:
            definition.options = _options(body["options"])
        if "groupName" in body:
            definition.group = str(body["groupName"])
        if "displayOrder" in body:
            definition.display_order = int(body["displayOrder"])
        if "numberDisplayHint" in body:
            definition.number_display_hint = _number_display_hint(body, definition.type)
        return json_response(definition.to_json())

    @router.delete(PROPS + "/{object_type}/{property_name}")
    async def archive_property(object_type: str, property_name: str) -> Response:
        definitions = portal.store.properties[resolve_type(object_type)]
        definition = definitions.get(property_name)
        if definition is None:
            raise not_found(f"Unable to find property {property_name}")
        if definition.hubspot_defined:
            raise validation_error(f"Property {property_name} is HubSpot-defined and cannot be archived.")
        del definitions[property_name]
        return Response(status_code=204)

    @router.get("/crm/v3/owners")
    @router.get("/crm/v3/owners/")  # the official client asks with the slash: answer it, as HubSpot does
    async def list_owners(request: Request) -> Response:
        owners = [o for o in portal.store.owners.values() if o["archived"] == query_bool(request, "archived")]
        email = request.query_params.get("email")
        if email:
            owners = [o for o in owners if o["email"].lower() == email.lower()]
        limit = query_int(request, "limit", 100, 500)
        after = int(request.query_params.get("after") or 0)
        body: dict[str, Any] = {"results": owners[after : after + limit]}
        if after + limit < len(owners):
            nxt = str(after + limit)
            body["paging"] = {
                "next": {
                    "after": nxt,
                    "link": f"{portal.ctx.base_url}/crm/v3/owners?after={nxt}&limit={limit}",
                }
            }
        portal.read("GET /crm/v3/owners", len(body["results"]))
        return json_response(body)

    @router.get("/crm/v3/owners/{owner_id}")
    async def get_owner(request: Request, owner_id: str) -> Response:
        by_user = request.query_params.get("idProperty") == "userId"
        for owner in portal.store.owners.values():
            if (str(owner["userId"]) if by_user else owner["id"]) == owner_id:
                portal.read("GET /crm/v3/owners/{id}", 1)
                return json_response(owner)
        raise not_found(f"Owner {owner_id} not found", ids=[owner_id])


# Deal pipelines: https://developers.hubspot.com/docs/api/crm/pipelines
_STAGE_LABELS = {
    "appointmentscheduled": ("Appointment Scheduled", "0.2"),
    "qualifiedtobuy": ("Qualified To Buy", "0.4"),
    "presentationscheduled": ("Presentation Scheduled", "0.6"),
    "decisionmakerboughtin": ("Decision Maker Bought-In", "0.8"),
    "contractsent": ("Contract Sent", "0.9"),
    "closedwon": ("Closed Won", "1.0"),
    "closedlost": ("Closed Lost", "0.0"),
}
_PIPELINE_STAMP = "2019-08-06T02:41:52.000Z"


def default_pipeline() -> dict[str, Any]:
    stages = [
        {
            "id": stage,
            "label": label,
            "displayOrder": order,
            "archived": False,
            "metadata": {
                "isClosed": "true" if stage.startswith("closed") else "false",
                "probability": probability,
            },
            "createdAt": _PIPELINE_STAMP,
            "updatedAt": _PIPELINE_STAMP,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }
        for order, (stage, (label, probability)) in enumerate(_STAGE_LABELS.items())
    ]
    return {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "archived": False,
        "createdAt": _PIPELINE_STAMP,
        "updatedAt": _PIPELINE_STAMP,
        "stages": stages,
    }


def add_pipeline_routes(router: APIRouter, portal: Portal) -> None:
    @router.get("/crm/v3/pipelines/{object_type}")
    async def list_pipelines(object_type: str) -> Response:
        if resolve_type(object_type) != "deals":
            return json_response({"results": []})
        return json_response({"results": [default_pipeline()]})

    @router.get("/crm/v3/pipelines/{object_type}/{pipeline_id}")
    async def get_pipeline(object_type: str, pipeline_id: str) -> Response:
        if resolve_type(object_type) != "deals" or pipeline_id != "default":
            raise not_found(f"Unable to find pipeline {pipeline_id}", ids=[pipeline_id])
        return json_response(default_pipeline())

    @router.get("/crm/v3/pipelines/{object_type}/{pipeline_id}/stages")
    async def list_stages(object_type: str, pipeline_id: str) -> Response:
        if resolve_type(object_type) != "deals" or pipeline_id != "default":
            raise not_found(f"Unable to find pipeline {pipeline_id}", ids=[pipeline_id])
        return json_response({"results": default_pipeline()["stages"]})
