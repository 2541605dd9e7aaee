"""User Interface API list views: create one (`POST ui-api/list-info/{object}`, API 61.0 and later) and
read it back (`GET ui-api/list-info/{object}/{listViewApiName}`); each is also a `ListView` record.

https://developer.salesforce.com/docs/atlas.en-us.uiapi.meta/uiapi/ui_api_resources_lists_object_post.htm
https://developer.salesforce.com/docs/atlas.en-us.uiapi.meta/uiapi/ui_api_responses_list_metadata.htm
A list view's columns and filters must name fields the creating user can read. Its sort order is not
part of the definition: the UI API keeps it per user (`ui-api/list-preferences`), which the sandbox
does not serve.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.responses import Response

from leadloop.sandbox.salesforce.errors import SalesforceError, json_response, not_found
from leadloop.sandbox.salesforce.http import Routes, json_body, version_of
from leadloop.sandbox.salesforce.schema import ObjectDef

if TYPE_CHECKING:
    from leadloop.sandbox.salesforce.backend import SalesforceBackend

FIRST_VERSION = 61.0
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_OPERATORS = ("Equals", "NotEqual", "LessThan", "GreaterThan", "LessOrEqual", "GreaterOrEqual", "Contains",
              "NotContain", "StartsWith", "Includes", "Excludes", "Within")
_SCOPES = ("everything", "mine", "team", "queue", "mineandmyteam")


def add_routes(routes: Routes, backend: SalesforceBackend) -> None:
    api = _ListViews(backend)
    base = "/services/data/{version}/ui-api/list-info/{sobject}"
    routes.add(base, ["POST"], api.create)
    routes.add(base + "/{list_view}", ["GET"], api.get)


class _ListViews:
    def __init__(self, backend: SalesforceBackend) -> None:
        self.backend = backend
        self.org = backend.org

    def _object(self, request: Request) -> ObjectDef:
        if float(version_of(request)) < FIRST_VERSION:
            raise not_found()
        obj = self.backend.sobject(request.path_params["sobject"])
        if obj is None:
            name = request.path_params["sobject"]
            raise SalesforceError(400, "INVALID_TYPE", f"Object {name} is not supported")
        return obj

    def _field(self, obj: ObjectDef, name: Any) -> str:
        fdef = obj.field(str(name))
        if fdef is None or not self.backend.access().can_read(obj, fdef):
            raise SalesforceError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'")
        return fdef.name

    def _find(self, obj: ObjectDef, api_name: str) -> dict[str, Any] | None:
        for row in self.org.table("ListView").rows.values():
            same = str(row.get("DeveloperName")).lower() == api_name.lower()
            if same and row.get("SobjectType") == obj.name and not row.get("IsDeleted"):
                return row
        return None

    async def create(self, request: Request) -> Response:
        obj = self._object(request)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected a List Info Post Input object")
        api_name = str(body.get("listViewApiName") or "")
        if not _API_NAME.match(api_name):
            raise SalesforceError(400, "INVALID_INPUT", f"not a valid listViewApiName: {api_name!r}")
        if self._find(obj, api_name) is not None:
            raise SalesforceError(400, "DUPLICATE_DEVELOPER_NAME",
                                  f"A list view named {api_name} already exists on {obj.name}")
        columns = [self._field(obj, name) for name in body.get("displayColumns") or ["Name"]]
        filters = []
        for item in body.get("filteredByInfo") or []:
            if not isinstance(item, dict) or item.get("operator") not in _OPERATORS:
                raise SalesforceError(400, "INVALID_INPUT", f"Not a valid filter: {item!r}")
            filters.append({"fieldApiName": self._field(obj, item.get("fieldApiName")),
                            "operandLabels": [str(v) for v in item.get("operandLabels") or []],
                            "operator": item["operator"]})
        scope = body.get("scope") if isinstance(body.get("scope"), dict) else {"apiName": "everything"}
        if str(scope.get("apiName", "")).lower() not in _SCOPES:
            raise SalesforceError(400, "INVALID_INPUT", f"Not a valid scope: {scope!r}")
        label = str(body.get("label") or api_name)[:40]
        info = {
            "displayColumns": [{"fieldApiName": name, "label": obj.fields[name].label, "sortable": True}
                               for name in columns],
            "filteredByInfo": filters,
            "filterLogicString": body.get("filterLogicString"),
            "label": label,
            "scope": {"apiName": str(scope["apiName"]).lower()},
            "visibility": str(body.get("visibility") or "Private"),
        }
        record_id = self.org.insert("ListView", {"Name": label, "DeveloperName": api_name,
                                                  "SobjectType": obj.name, "ListInfo": info})
        return json_response(self._render(obj, self.org.table("ListView").rows[record_id]), 201)

    async def get(self, request: Request) -> Response:
        obj = self._object(request)
        row = self._find(obj, request.path_params["list_view"])
        if row is None:
            raise not_found()
        return json_response(self._render(obj, row))

    def _render(self, obj: ObjectDef, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "listReference": {"id": row["Id"], "listViewApiName": row["DeveloperName"],
                              "objectApiName": obj.name, "type": "listView"},
            "cloneable": True, "createable": True, "deletable": True, "updateable": True,
            "orderedByInfo": [],
            **row.get("ListInfo", {}),
        }
