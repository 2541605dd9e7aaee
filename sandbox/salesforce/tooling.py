"""Tooling API: create custom fields (`sobjects/CustomField`), read them back, and query them.

https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_api_objects_customfield.htm
https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/intro_rest_resources.htm
A field created here exists at once, but as in Salesforce nobody can see it, administrators included,
until field-level security grants it (a FieldPermissions row on a permission set the user holds; see
`security`). The Tooling query sees every custom field whatever its field-level security.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.responses import Response

from leadloop.sandbox.salesforce.errors import SalesforceError, json_response, not_found
from leadloop.sandbox.salesforce.http import Routes, json_body, version_of
from leadloop.sandbox.salesforce.ids import make_id, normalize_id
from leadloop.sandbox.salesforce.org import Org
from leadloop.sandbox.salesforce.query import Renderer, compile_query, execute
from leadloop.sandbox.salesforce.schema import TOOLING_TYPES, FieldDef, ObjectDef
from leadloop.sandbox.salesforce.soql import SoqlError, parse

if TYPE_CHECKING:
    from leadloop.sandbox.salesforce.backend import SalesforceBackend

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*__c$")
_TOOLING_PREFIX = "00N"


def add_routes(routes: Routes, backend: SalesforceBackend) -> None:
    api = _Tooling(backend)
    base = "/services/data/{version}/tooling"
    routes.add(base + "/sobjects/CustomField", ["POST"], api.create_field)
    routes.add(base + "/sobjects/CustomField/{field_id}", ["GET"], api.get_field)
    routes.add(base + "/query", ["GET"], api.query)


def _tooling_schema() -> dict[str, ObjectDef]:
    obj = ObjectDef(
        "CustomField", _TOOLING_PREFIX, "Custom Field", "Custom Fields", name_field="DeveloperName"
    )
    for fdef in (
        FieldDef("Id", "id", length=18),
        FieldDef("DeveloperName", "string", length=40),
        FieldDef("TableEnumOrId", "string", length=40),
        FieldDef("NamespacePrefix", "string", length=15),
        FieldDef("FullName", "string", length=255),
        FieldDef("Description", "string", length=255),
        FieldDef("Length", "int"),
        FieldDef("CreatedDate", "datetime"),
        FieldDef("LastModifiedDate", "datetime"),
        FieldDef("SystemModstamp", "datetime"),
        FieldDef("IsDeleted", "boolean"),
    ):
        obj.add(fdef)
    return {"customfield": obj}


class _Tooling:
    def __init__(self, backend: SalesforceBackend) -> None:
        self.backend = backend
        self.org = backend.org

    def _custom_fields(self) -> list[tuple[str, FieldDef]]:
        return [
            (obj.name, fdef)
            for obj in self.org.objects.values()
            for fdef in obj.fields.values()
            if fdef.custom
        ]

    def _ensure_ids(self) -> None:
        for _, fdef in self._custom_fields():
            if fdef.durable_id is None:
                self.backend.tooling_counter += 1
                fdef.durable_id = make_id(_TOOLING_PREFIX, self.backend.tooling_counter)

    async def create_field(self, request: Request) -> Response:
        version_of(request)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected a CustomField object")
        full_name = str(body.get("FullName") or "")
        metadata = body.get("Metadata")
        if "." not in full_name or not isinstance(metadata, dict):
            raise SalesforceError(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [FullName, Metadata]",
                ["FullName"],
            )
        object_name, field_name = full_name.split(".", 1)
        obj = self.org.object(object_name)
        if obj is None:
            raise SalesforceError(
                400, "FIELD_INTEGRITY_EXCEPTION", f"Invalid entity: {object_name}", ["TableEnumOrId"]
            )
        if not _FIELD_NAME.match(field_name) or len(field_name) > 43:
            raise SalesforceError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"Invalid field name {field_name}: a custom field's API name ends with __c",
                ["FullName"],
            )
        if obj.field(field_name) is not None:
            raise SalesforceError(
                400,
                "DUPLICATE_DEVELOPER_NAME",
                f"There is already a field named {field_name[:-3]} on {obj.name}.",
                [],
            )
        fdef = _field_from_metadata(field_name, metadata)
        self._ensure_ids()
        self.backend.tooling_counter += 1
        fdef.durable_id = make_id(_TOOLING_PREFIX, self.backend.tooling_counter)
        self.org.add_custom_field(obj.name, fdef)
        return json_response(
            {"id": fdef.durable_id, "success": True, "errors": [], "warnings": [], "infos": []}, 201
        )

    async def get_field(self, request: Request) -> Response:
        version = version_of(request)
        self._ensure_ids()
        wanted = normalize_id(request.path_params["field_id"])
        for object_name, fdef in self._custom_fields():
            if fdef.durable_id == wanted:
                return json_response(
                    {
                        "attributes": {
                            "type": "CustomField",
                            "url": f"/services/data/v{version}/tooling/sobjects/CustomField/{wanted}",
                        },
                        "Id": wanted,
                        "DeveloperName": fdef.name[:-3],
                        "TableEnumOrId": object_name,
                        "NamespacePrefix": None,
                        "FullName": f"{object_name}.{fdef.name}",
                        "Metadata": _metadata_of(fdef),
                    }
                )
        raise not_found()

    async def query(self, request: Request) -> Response:
        version = version_of(request)
        text = request.query_params.get("q")
        if text is None:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        self._ensure_ids()
        tooling = Org(self.org.now, self.org.username, schema=_tooling_schema)
        stamp = self.org.stamp()
        tooling.load_rows(
            "CustomField",
            [
                {
                    "Id": fdef.durable_id,
                    "DeveloperName": fdef.name[:-3],
                    "TableEnumOrId": object_name,
                    "FullName": f"{object_name}.{fdef.name}",
                    "Length": fdef.length or None,
                    "CreatedDate": stamp,
                    "LastModifiedDate": stamp,
                    "SystemModstamp": stamp,
                }
                for object_name, fdef in self._custom_fields()
            ],
        )
        try:
            compiled = compile_query(tooling, parse(text), self.org.now())
        except SoqlError as error:
            raise SalesforceError(400, error.code, error.message) from None
        rows = execute(tooling, compiled, include_deleted=False)
        renderer = Renderer(tooling, compiled, version)
        records = [] if compiled.query.count_only else [renderer.render(row) for row in rows]
        for record in records:
            record["attributes"]["url"] = record["attributes"]["url"].replace(
                "/sobjects/", "/tooling/sobjects/"
            )
        return json_response(
            {
                "size": len(rows),
                "totalSize": len(rows),
                "done": True,
                "queryLocator": None,
                "entityTypeName": "CustomField",
                "records": records,
            }
        )


def _field_from_metadata(name: str, metadata: dict[str, Any]) -> FieldDef:
    kind = str(metadata.get("type") or "")
    if kind not in TOOLING_TYPES:
        raise SalesforceError(
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            f"Unsupported field type {kind or '(none)'}: expected one of {', '.join(TOOLING_TYPES)}",
            ["Metadata"],
        )
    sf_type = TOOLING_TYPES[kind]
    label = str(metadata.get("label") or name[:-3].replace("_", " "))
    length = int(
        metadata.get("length")
        or {
            "Text": 255,
            "TextArea": 255,
            "LongTextArea": 32768,
            "Html": 32768,
            "Email": 80,
            "Url": 255,
            "Phone": 40,
            "Picklist": 255,
            "MultiselectPicklist": 4099,
        }.get(kind, 0)
    )
    if kind == "Text" and not 1 <= length <= 255:
        raise SalesforceError(
            400, "FIELD_INTEGRITY_EXCEPTION", "Length must be between 1 and 255", ["Metadata"]
        )
    values: tuple[str, ...] = ()
    restricted = False
    value_set = metadata.get("valueSet")
    if isinstance(value_set, dict):
        restricted = bool(value_set.get("restricted"))
        definition = value_set.get("valueSetDefinition") or {}
        values = tuple(
            str(v.get("fullName") or v.get("label"))
            for v in definition.get("value") or []
            if isinstance(v, dict)
        )
    default: Any = None
    if sf_type == "boolean":
        default = str(metadata.get("defaultValue", "false")).lower() == "true"
    required = bool(metadata.get("required"))
    external = bool(metadata.get("externalId"))
    return FieldDef(
        name,
        sf_type,
        label=label,
        length=length
        if sf_type not in ("double", "currency", "percent", "boolean", "date", "datetime")
        else 0,
        custom=True,
        external_id=external,
        unique=bool(metadata.get("unique")),
        nillable=not required and sf_type != "boolean",
        required=required,
        picklist=values,
        restricted=restricted,
        default=default,
        precision=int(metadata.get("precision") or 0),
        scale=int(metadata.get("scale") or 0),
    )


def _metadata_of(fdef: FieldDef) -> dict[str, Any]:
    kinds = {value: key for key, value in TOOLING_TYPES.items()}
    kind = "LongTextArea" if fdef.type == "textarea" and fdef.length > 255 else kinds.get(fdef.type, "Text")
    return {
        "label": fdef.label,
        "type": kind,
        "length": fdef.length or None,
        "precision": fdef.precision or None,
        "scale": fdef.scale if fdef.precision else None,
        "externalId": fdef.external_id,
        "unique": fdef.unique,
        "required": fdef.required,
    }
