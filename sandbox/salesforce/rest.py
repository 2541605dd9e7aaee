"""Salesforce REST API resources: versions, OAuth token, limits, query/queryAll with locators,
sObject describe and CRUD, upsert by external id.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_list.htm
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_username_password_oauth_flow.htm
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from fastapi import Request
from starlette.responses import Response

from leadloop.sandbox.salesforce.errors import RecordError, SalesforceError, json_response, not_found
from leadloop.sandbox.salesforce.http import API_VERSIONS, Routes, endpoint_label, json_body, version_of
from leadloop.sandbox.salesforce.ids import make_id, normalize_id
from leadloop.sandbox.salesforce.query import Renderer, compile_query, execute
from leadloop.sandbox.salesforce.schema import ObjectDef
from leadloop.sandbox.salesforce.soql import SoqlError, parse

if TYPE_CHECKING:
    from leadloop.sandbox.salesforce.backend import SalesforceBackend

DEFAULT_BATCH = 2000
LOCATOR_IDLE = timedelta(minutes=15)  # Salesforce drops a query cursor after 15 idle minutes
MAX_LOCATORS = 500


@dataclass(slots=True)
class Cursor:
    rows: list[dict[str, Any]]
    renderer: Renderer
    batch: int
    version: str
    kind: str  # query | queryAll
    touched: datetime
    sobject: str = ""  # the FROM object, for call statistics by object


def query_object(text: str) -> str | None:
    """The sObject a SOQL text reads, for statistics only (None when it does not parse)."""
    try:
        return parse(text).object_name
    except SoqlError:
        return None


class Cursors:
    """Server-side query results behind `nextRecordsUrl` locators."""

    def __init__(self) -> None:
        self.open: OrderedDict[str, Cursor] = OrderedDict()
        self.counter = 0

    def add(self, cursor: Cursor) -> str:
        self.counter += 1
        locator = make_id("01g", self.counter)
        self.open[locator] = cursor
        while len(self.open) > MAX_LOCATORS:
            self.open.popitem(last=False)
        return locator

    def get(self, locator: str, now: datetime) -> Cursor:
        cursor = self.open.get(locator)
        if cursor is None or now - cursor.touched > LOCATOR_IDLE:
            self.open.pop(locator, None)
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        cursor.touched = now
        self.open.move_to_end(locator)
        return cursor


def add_routes(routes: Routes, backend: SalesforceBackend) -> None:
    api = _Rest(backend)
    data = "/services/data/{version}"
    routes.add("/services/data", ["GET"], api.versions, counted=False)
    routes.add("/services/oauth2/token", ["POST"], api.token, counted=False)
    routes.add("/services/oauth2/userinfo", ["GET"], api.userinfo, counted=False)
    routes.add(data, ["GET"], api.resources)
    routes.add(f"{data}/limits", ["GET"], api.limits)
    routes.add(f"{data}/query", ["GET"], api.query)
    routes.add(f"{data}/queryAll", ["GET"], api.query_all)
    routes.add(f"{data}/query/{{locator}}", ["GET"], api.query_more)
    routes.add(f"{data}/queryAll/{{locator}}", ["GET"], api.query_more)
    routes.add(f"{data}/sobjects", ["GET"], api.global_describe)
    routes.add(f"{data}/sobjects/{{sobject}}", ["GET", "POST"], api.sobject_root)
    routes.add(f"{data}/sobjects/{{sobject}}/describe", ["GET"], api.describe)
    routes.add(f"{data}/sobjects/{{sobject}}/{{record_id}}", ["GET", "PATCH", "DELETE"], api.record)
    routes.add(f"{data}/sobjects/{{sobject}}/{{field}}/{{value}}", ["GET", "PATCH", "POST"], api.external)


class _Rest:
    def __init__(self, backend: SalesforceBackend) -> None:
        self.backend = backend
        self.org = backend.org
        self.ctx = backend.ctx

    # -- discovery and login -----------------------------------------------------------------------
    async def versions(self, request: Request) -> Response:
        return json_response(
            [
                {"label": label, "url": f"/services/data/v{version}", "version": version}
                for version, label in API_VERSIONS.items()
            ]
        )

    async def resources(self, request: Request) -> Response:
        base = f"/services/data/v{version_of(request)}"
        names = (
            "tooling",
            "metadata",
            "eclair",
            "folders",
            "prechatForms",
            "contact-tracing",
            "jsonxform",
            "chatter",
            "tabs",
            "appMenu",
            "quickActions",
            "queryAll",
            "commerce",
            "wave",
            "iot",
            "analytics",
            "search",
            "identity",
            "composite",
            "parameterizedSearch",
            "fingerprint",
            "theme",
            "nouns",
            "domino",
            "event",
            "serviceTemplates",
            "recent",
            "connect",
            "licensing",
            "limits",
            "process",
            "async-queries",
            "query",
            "match",
            "emailConnect",
            "compactLayouts",
            "knowledgeManagement",
            "sobjects",
            "actions",
            "support",
            "jobs",
        )
        return json_response({name: f"{base}/{name}" for name in names})

    async def token(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        fields = {key: values[0] for key, values in form.items()}
        grant = fields.get("grant_type", "")
        credentials = self.backend.credentials()
        if grant == "password":
            ok = self.backend.check_login(fields.get("username", ""), fields.get("password", ""))
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            ok = _jwt_subject(fields.get("assertion", ""), self.ctx.now()) == credentials["username"]
        else:
            return json_response(
                {"error": "unsupported_grant_type", "error_description": "grant type not supported"}, 400
            )
        if not ok:
            return json_response(
                {"error": "invalid_grant", "error_description": "authentication failure"}, 400
            )
        token = self.ctx.sessions.issue("salesforce")
        issued_at = str(int(time.time() * 1000))
        identity = f"https://login.salesforce.com/id/00DDn00000000001EAA/{self.org.api_user_id}"
        signature = base64.b64encode(
            hmac.new(token.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        return json_response(
            {
                "access_token": token,
                "instance_url": self.ctx.base_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": signature,
            }
        )

    async def userinfo(self, request: Request) -> Response:
        """OpenID Connect UserInfo: who the session belongs to.
        https://help.salesforce.com/s/articleView?id=sf.remoteaccess_using_userinfo_endpoint.htm"""
        user_id = self.org.current_user()
        row = self.org.table("User").rows.get(user_id) or {}
        org_id = "00DDn00000000001EAA"
        return json_response(
            {
                "sub": f"https://login.salesforce.com/id/{org_id}/{user_id}",
                "user_id": user_id,
                "organization_id": org_id,
                "preferred_username": row.get("Username"),
                "name": row.get("Name"),
                "given_name": row.get("FirstName"),
                "family_name": row.get("LastName"),
                "email": row.get("Email"),
                "email_verified": True,
                "zoneinfo": row.get("TimeZoneSidKey"),
                "active": bool(row.get("IsActive", True)),
                "user_type": "STANDARD",
            }
        )

    async def limits(self, request: Request) -> Response:
        usage = self.backend.usage

        def pair(maximum: int, remaining: int | None = None) -> dict[str, int]:
            return {"Max": maximum, "Remaining": maximum if remaining is None else remaining}

        return json_response(
            {
                "DailyApiRequests": pair(usage.limit, usage.remaining),
                "DailyAsyncApexExecutions": pair(250000),
                "DailyBulkApiBatches": pair(15000),
                "DailyBulkV2QueryFileStorageMB": pair(976562),
                "DailyBulkV2QueryJobs": pair(10000),
                "DailyStreamingApiEvents": pair(10000),
                "DataStorageMB": pair(1073),
                "FileStorageMB": pair(1073),
                "SingleEmail": pair(15),
                "MassEmail": pair(10),
                "ConcurrentSyncReportRuns": pair(20),
                "HourlyODataCallout": pair(1000),
            }
        )

    # -- query ---------------------------------------------------------------------------------------
    async def query(self, request: Request) -> Response:
        return self._run_query(request, include_deleted=False)

    async def query_all(self, request: Request) -> Response:
        return self._run_query(request, include_deleted=True)

    def _run_query(self, request: Request, include_deleted: bool) -> Response:
        version = version_of(request)
        text = request.query_params.get("q")
        if text is None:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        now = self.ctx.now()
        try:
            compiled = compile_query(self.org, parse(text), now, self.backend.access())
        except SoqlError as error:
            raise SalesforceError(400, error.code, error.message) from None
        rows = execute(self.org, compiled, include_deleted)
        if compiled.query.count_only:
            return json_response({"totalSize": len(rows), "done": True, "records": []})
        renderer = Renderer(self.org, compiled, version)
        cursor = Cursor(
            rows, renderer, _batch_size(request), version, "queryAll" if include_deleted else "query", now,
            compiled.query.object_name,
        )
        return self._page(request, cursor, None, 0)

    async def query_more(self, request: Request) -> Response:
        version_of(request)
        raw = request.path_params["locator"]
        locator, _, offset_text = raw.partition("-")
        if not offset_text.isdigit():
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        cursor = self.backend.cursors.get(locator, self.ctx.now())
        if "Sforce-Query-Options" in request.headers:
            cursor.batch = _batch_size(request)
        return self._page(request, cursor, locator, int(offset_text))

    def _page(self, request: Request, cursor: Cursor, locator: str | None, offset: int) -> Response:
        page = cursor.rows[offset : offset + cursor.batch]
        render = cursor.renderer.render
        body: dict[str, Any] = {"totalSize": len(cursor.rows), "done": True, "records": []}
        end = offset + len(page)
        if end < len(cursor.rows):
            locator = locator or self.backend.cursors.add(cursor)
            body["done"] = False
            body["nextRecordsUrl"] = f"/services/data/v{cursor.version}/{cursor.kind}/{locator}-{end}"
        elif locator is not None:
            self.backend.cursors.open.pop(locator, None)
        body["records"] = [render(row) for row in page]
        self.ctx.stats.records_read("salesforce", endpoint_label(request), len(page))
        return json_response(body)

    # -- describe ------------------------------------------------------------------------------------
    def _object(self, request: Request) -> ObjectDef:
        obj = self.backend.sobject(request.path_params["sobject"])
        if obj is None:
            raise not_found()
        return obj

    async def global_describe(self, request: Request) -> Response:
        version = version_of(request)
        access = self.backend.access()
        return json_response(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [
                    obj.describe_summary(version)
                    for obj in self.org.objects.values()
                    if access.sees_object(obj)
                ],
            }
        )

    async def describe(self, request: Request) -> Response:
        obj = self._object(request)
        return json_response(self.backend.describe(obj, version_of(request)))

    async def sobject_root(self, request: Request) -> Response:
        obj = self._object(request)
        if request.method == "GET":
            return json_response(
                {"objectDescribe": obj.describe_summary(version_of(request)), "recentItems": []}
            )
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {obj.name} from {type(body).__name__.upper()} value",
            )
        record_id = self.backend.create_one(obj.name, body, endpoint_label(request))
        return json_response({"id": record_id, "success": True, "errors": []}, 201)

    # -- one record ----------------------------------------------------------------------------------
    async def record(self, request: Request) -> Response:
        obj = self._object(request)
        raw_id = request.path_params["record_id"]
        if request.method == "GET":
            row = self._row(obj, raw_id)
            fields = request.query_params.get("fields")
            self.ctx.stats.records_read("salesforce", endpoint_label(request), 1)
            return json_response(
                self.backend.render_record(
                    obj, row, version_of(request), fields.split(",") if fields else None
                )
            )
        record_id = normalize_id(raw_id)
        if (
            record_id is None
            or not record_id.startswith(obj.key_prefix)
            or self.org.table(obj.name).rows.get(record_id) is None
        ):
            raise not_found()
        if request.method == "DELETE":
            try:
                self.org.delete(obj.name, record_id)
            except RecordError as error:
                raise error.as_error(404 if error.code == "ENTITY_IS_DELETED" else 400) from None
            self.ctx.stats.records_written("salesforce", endpoint_label(request), 1)
            return Response(status_code=204)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "Cannot deserialize the record: expected an object"
            )
        self.backend.update_one(obj.name, record_id, body, endpoint_label(request))
        return Response(status_code=204)

    def _row(self, obj: ObjectDef, raw_id: str) -> dict[str, Any]:
        record_id = normalize_id(raw_id)
        row = self.org.table(obj.name).rows.get(record_id or "")
        if row is None or row.get("IsDeleted"):
            raise not_found()
        return row

    async def external(self, request: Request) -> Response:
        obj = self._object(request)
        field_name = request.path_params["field"]
        value = request.path_params["value"]
        fdef = obj.field(field_name)
        if (
            fdef is None
            or not (fdef.external_id or fdef.name == "Id")
            or not self.backend.access().can_read(obj, fdef)
        ):
            raise SalesforceError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
            )
        version = version_of(request)
        matches = self.org.lookup_external(obj.name, fdef.name, value)
        if len(matches) > 1:
            return json_response([f"/services/data/v{version}/sobjects/{obj.name}/{m}" for m in matches], 300)
        if request.method == "GET":
            if not matches:
                raise not_found()
            self.ctx.stats.records_read("salesforce", endpoint_label(request), 1)
            return json_response(
                self.backend.render_record(obj, self.org.table(obj.name).rows[matches[0]], version, None)
            )
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "Cannot deserialize the record: expected an object"
            )
        if matches:
            self.backend.update_one(obj.name, matches[0], body, endpoint_label(request))
            return json_response({"id": matches[0], "success": True, "errors": [], "created": False}, 200)
        if request.query_params.get("updateOnly", "").lower() == "true" or fdef.name == "Id":
            raise not_found()
        record = {key: val for key, val in body.items() if key.lower() != fdef.name.lower()}
        record[fdef.name] = value
        record_id = self.backend.create_one(obj.name, record, endpoint_label(request))
        return json_response({"id": record_id, "success": True, "errors": [], "created": True}, 201)


def _batch_size(request: Request) -> int:
    """`Sforce-Query-Options: batchSize=N`, held to Salesforce's 200..2000 (a hint, not a promise)."""
    options = request.headers.get("Sforce-Query-Options", "")
    for part in options.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(200, min(DEFAULT_BATCH, int(value.strip())))
    return DEFAULT_BATCH


def _jwt_subject(assertion: str, now: datetime) -> str | None:
    """The `sub` of an unexpired JWT bearer assertion (the sandbox trusts any signature: it has no
    connected app certificate to check it against)."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    expires = payload.get("exp")
    if isinstance(expires, int | float) and expires < now.timestamp():
        return None
    subject = payload.get("sub")
    return subject if isinstance(subject, str) else None
