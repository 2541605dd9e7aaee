"""The Salesforce backend of the sandbox: the org's state and the routes that serve it.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest.htm
Every request runs as the user its session belongs to (`security`): what it may read and write is
that user's field-level security. The admin API adds `POST /_sandbox/salesforce/users` (create a user
with a profile, or find one by username, and open a session for them).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.contract import SandboxContext
from leadloop.sandbox.salesforce import bulk2, composite, rest, tooling, uiapi
from leadloop.sandbox.salesforce.errors import RecordError, SalesforceError
from leadloop.sandbox.salesforce.http import DEFAULT_DAILY_LIMIT, ApiUsage, Routes
from leadloop.sandbox.salesforce.org import Org, not_writable
from leadloop.sandbox.salesforce.schema import ObjectDef
from leadloop.sandbox.salesforce.security import PROFILES, STANDARD_USER, Access

DEFAULT_USERNAME = "leadloop@sandbox.example"
DEFAULT_PASSWORD = "sandbox-password"
DEFAULT_SECURITY_TOKEN = "sandboxtoken"

_CHILD_RELATIONSHIPS = {
    ("Contact", "AccountId"): "Contacts",
    ("Opportunity", "AccountId"): "Opportunities",
    ("Task", "WhatId"): "Tasks",
    ("Event", "WhatId"): "Events",
    ("Task", "WhoId"): "Tasks",
    ("Event", "WhoId"): "Events",
    ("CampaignMember", "LeadId"): "CampaignMembers",
    ("CampaignMember", "ContactId"): "CampaignMembers",
    ("CampaignMember", "CampaignId"): "CampaignMembers",
    ("OpportunityContactRole", "OpportunityId"): "OpportunityContactRoles",
    ("OpportunityContactRole", "ContactId"): "OpportunityContactRoles",
    ("Account", "ParentId"): "ChildAccounts",
}

_ERRORS = {
    "unauthorized": ("INVALID_SESSION_ID", "Session expired or invalid"),
    "session_expired": ("INVALID_SESSION_ID", "Session expired or invalid"),
    "daily_limit": ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    "not_found": ("NOT_FOUND", "The requested resource does not exist"),
}


class SalesforceBackend:
    """Serves `/services/`: REST (query, sObjects, collections), Tooling, limits and Bulk API 2.0."""

    name = "salesforce"
    path_prefixes = ("/services/",)

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.org = Org(ctx.now, self.credentials()["username"])
        self.usage = ApiUsage(ctx.now)
        self.cursors = rest.Cursors()
        self.jobs = bulk2.Jobs()
        self.tooling_counter = 0

    # -- the Backend seam ---------------------------------------------------------------------------
    def router(self) -> APIRouter:
        router = APIRouter()
        routes = Routes(router, self.usage, self.caller)
        rest.add_routes(routes, self)
        composite.add_routes(routes, self)
        tooling.add_routes(routes, self)
        bulk2.add_routes(routes, self)
        uiapi.add_routes(routes, self)
        router.add_api_route("/_sandbox/salesforce/users", self.admin_user, methods=["POST"],
                             include_in_schema=False)
        return router

    # -- users and their sessions -------------------------------------------------------------------
    def caller(self, request: Request) -> str | None:
        """The user the request's session belongs to (None: the integration user's session). A session
        of a user the org no longer has is invalid, as after the user is deleted."""
        _scheme, _, token = request.headers.get("authorization", "").partition(" ")
        sessions: Any = self.ctx.sessions
        if not token or not hasattr(sessions, "user_of"):
            return None
        user = sessions.user_of("salesforce", token.strip())
        if user is not None and user not in self.org.table("User").rows:
            raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return user

    def access(self) -> Access:
        """What the current request's user may see and change."""
        return self.org.access()

    def sobject(self, name: str) -> ObjectDef | None:
        """The object `name` as the current user sees it: None when it does not exist for them."""
        obj = self.org.object(name)
        return obj if obj is not None and self.access().sees_object(obj) else None

    async def admin_user(self, request: Request) -> Response:
        """`POST /_sandbox/salesforce/users {"username", "first_name"?, "last_name"?, "profile"?}`: the
        user with this username (created with the profile, Standard User by default, when absent) and
        a new session of theirs."""
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            body = None
        body = body if isinstance(body, dict) else {}
        username = body.get("username")
        if not isinstance(username, str) or "@" not in username:
            return _admin_error('give {"username": "rep@example.com"}')
        profile = str(body.get("profile") or STANDARD_USER)
        if profile not in PROFILES:
            return _admin_error(f"unknown profile {profile!r}; one of {sorted(PROFILES)}")
        users = self.org.table("User").rows
        user_id = next(
            (i for i, row in users.items() if str(row.get("Username")).lower() == username.lower()), None
        )
        if user_id is None:
            first = str(body.get("first_name") or username.split("@")[0].split(".")[0].title())
            last = str(body.get("last_name") or "Rep")
            user_id = self.org.insert("User", self.org.prepare_create("User", {
                "Username": username, "Email": username, "FirstName": first, "LastName": last,
                "Alias": (first[:1] + last[:4]).lower(), "ProfileId": self.org.profiles[profile],
                "Title": "Account Executive",
            }))
        row = users[user_id]
        profile_name = next((n for n, i in self.org.profiles.items() if i == row.get("ProfileId")), None)
        session = self.ctx.sessions.issue("salesforce", user_id)
        return Response(orjson.dumps({"id": user_id, "username": row["Username"], "profile": profile_name,
                                      "session_id": session}), media_type="application/json")

    def call_target(self, method: str, path: str, query_string: str) -> str | None:
        """The object a call reads or writes, for the statistics by object: a query's FROM object
        (its locator pages too), or the sObject in a REST path."""
        from urllib.parse import parse_qs

        parts = path.rstrip("/").split("/")
        if "query" in parts or "queryAll" in parts:
            kind = "queryAll" if "queryAll" in parts else "query"
            if parts[-1] in ("query", "queryAll"):
                text = " ".join(parse_qs(query_string).get("q", []))
                return f"{kind} {rest.query_object(text) or '?'}"
            cursor = self.cursors.open.get(parts[-1].partition("-")[0])
            return f"{kind} {cursor.sobject if cursor is not None else '?'}"
        if "sobjects" in parts and parts.index("sobjects") + 1 < len(parts):
            return parts[parts.index("sobjects") + 1]
        return None

    def load_world(self, world: Any) -> None:
        from leadloop.sandbox.salesforce.world_loader import load_world

        load_world(self.org, world)

    def reset(self) -> None:
        self.org.reset()
        self.cursors = rest.Cursors()
        self.jobs.reset()
        self.tooling_counter = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "org": self.org.snapshot(),
            "tooling_counter": self.tooling_counter,
            "usage": {
                "limit": self.usage.limit,
                "used": self.usage.used,
                "window_start": self.usage.window_start.isoformat() if self.usage.window_start else None,
            },
        }

    def restore(self, data: dict[str, Any]) -> None:
        from datetime import datetime

        self.reset()
        self.org.restore(data.get("org") or {})
        self.tooling_counter = int(data.get("tooling_counter") or 0)
        usage = data.get("usage") or {}
        self.usage.limit = int(usage.get("limit") or DEFAULT_DAILY_LIMIT)
        self.usage.used = int(usage.get("used") or 0)
        start = usage.get("window_start")
        self.usage.window_start = datetime.fromisoformat(start) if start else None

    def error_response(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        if kind in _ERRORS:
            code, text = _ERRORS[kind]
        elif kind == "rate_limited":
            code, text = "REQUEST_LIMIT_EXCEEDED", message or "Too many requests"
        elif kind == "server_error":
            code, text = (
                (
                    "UNKNOWN_EXCEPTION",
                    "An unexpected error occurred. Please include this ErrorId if "
                    "you contact support: 0-0 (sandbox)",
                )
                if status == 500
                else ("SERVER_UNAVAILABLE", "Server unavailable")
            )
        elif status == 405:
            code, text = "METHOD_NOT_ALLOWED", message or "HTTP Method not allowed"
        elif status == 415:
            code, text = "UNSUPPORTED_MEDIA_TYPE", message or "Unsupported media type"
        else:
            code, text = "INVALID_INPUT" if status < 500 else "UNKNOWN_EXCEPTION", message
        response = SalesforceError(status, code, text, headers=dict(headers or {})).response()
        response.headers["Sforce-Limit-Info"] = self.usage.header()
        return response

    # -- settings the core (or a test) may change -----------------------------------------------------
    def set_daily_limit(self, n: int) -> None:
        """The daily API request allocation (15,000 by default); calls already made still count."""
        self.usage.limit = max(0, int(n))

    def reset_api_usage(self) -> None:
        self.usage.used = 0
        self.usage.window_start = None

    # -- login ------------------------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        sessions: Any = self.ctx.sessions
        found = sessions.credentials("salesforce") if hasattr(sessions, "credentials") else {}
        return found or {
            "username": DEFAULT_USERNAME,
            "password": DEFAULT_PASSWORD,
            "security_token": DEFAULT_SECURITY_TOKEN,
        }

    def check_login(self, username: str, password: str) -> bool:
        sessions: Any = self.ctx.sessions
        if hasattr(sessions, "check_login"):
            return bool(sessions.check_login("salesforce", username, password))
        known = self.credentials()
        return username == known["username"] and password in (
            known["password"],
            known["password"] + known["security_token"],
        )

    # -- writes shared by every endpoint ----------------------------------------------------------------
    def check_field_access(self, object_name: str, values: dict[str, Any]) -> None:
        """RecordError for a field the current user cannot see (as if it did not exist) or cannot edit."""
        obj = self.org.table(object_name).obj
        access = self.access()
        for name in values:
            fdef = obj.field(name)
            if fdef is None or name == "attributes":
                continue  # the org reports unknown fields itself
            if not access.can_read(obj, fdef):
                raise RecordError("INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}",
                                  [name])
            if not access.can_edit(obj, fdef) and fdef.name != "Id":
                raise not_writable(fdef, "write")

    def prepare_create(self, object_name: str, values: dict[str, Any]) -> dict[str, Any]:
        """The validated row to insert; RecordError when a field or a validation rule refuses it."""
        self.check_field_access(object_name, values)
        row = self.org.prepare_create(object_name, values)
        message = self.ctx.faults.rejection("salesforce", object_name, dict(row))
        if message is not None:
            raise RecordError("FIELD_CUSTOM_VALIDATION_EXCEPTION", message, [])
        return row

    def prepare_update(self, object_name: str, record_id: str, values: dict[str, Any]) -> dict[str, Any]:
        self.check_field_access(object_name, values)
        changes = self.org.prepare_update(object_name, record_id, values)
        current = self.org.table(object_name).rows[self.org.live_row(object_name, record_id)["Id"]]
        message = self.ctx.faults.rejection("salesforce", object_name, {**current, **changes})
        if message is not None:
            raise RecordError("FIELD_CUSTOM_VALIDATION_EXCEPTION", message, [])
        return changes

    def create_one(self, object_name: str, values: dict[str, Any], endpoint: str) -> str:
        try:
            record_id = self.org.insert(object_name, self.prepare_create(object_name, values))
        except RecordError as error:
            raise error.as_error() from None
        self.ctx.stats.records_written("salesforce", endpoint, 1)
        return record_id

    def update_one(self, object_name: str, record_id: str, values: dict[str, Any], endpoint: str) -> None:
        try:
            self.org.update(object_name, record_id, self.prepare_update(object_name, record_id, values))
        except RecordError as error:
            raise error.as_error(404 if error.code == "ENTITY_IS_DELETED" else 400) from None
        self.ctx.stats.records_written("salesforce", endpoint, 1)

    # -- reads ------------------------------------------------------------------------------------------
    def render_record(
        self, obj: ObjectDef, row: dict[str, Any], version: str, fields: list[str] | None
    ) -> dict[str, Any]:
        """One record as `GET /sobjects/{type}/{id}` returns it: every field the user can read, or the
        ones asked for."""
        access = self.access()
        if fields is None:
            chosen = [fdef for fdef in obj.fields.values() if access.can_read(obj, fdef)]
        else:
            chosen = []
            for name in fields:
                fdef = obj.field(name.strip())
                if fdef is None or not access.can_read(obj, fdef):
                    raise SalesforceError(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{name.strip()}' on entity "
                        f"'{obj.name}'. If you are attempting to use a custom field, be sure to "
                        "append the '__c' after the custom field name. Please reference your "
                        "WSDL or the describe call for the appropriate names.",
                    )
                chosen.append(fdef)
        out: dict[str, Any] = {
            "attributes": {
                "type": obj.name,
                "url": f"/services/data/v{version}/sobjects/{obj.name}/{row['Id']}",
            }
        }
        for fdef in chosen:
            value = row.get(fdef.name)
            out[fdef.name] = (fdef.default if fdef.type == "boolean" else None) if value is None else value
        if fields is not None and "Id" not in out:
            out["Id"] = row["Id"]
        return out

    def describe(self, obj: ObjectDef, version: str) -> dict[str, Any]:
        """The object's describe as the current user sees it: without the fields they cannot read, and
        with the ones they cannot edit neither createable nor updateable."""
        access = self.access()
        result = obj.describe(version, self.child_relationships(obj.name))
        fields = []
        for described in result["fields"]:
            fdef = obj.fields[described["name"]]
            if not access.can_read(obj, fdef):
                continue
            if not access.can_edit(obj, fdef):
                described["createable"] = described["updateable"] = False
            fields.append(described)
        result["fields"] = fields
        return result

    def child_relationships(self, object_name: str) -> list[dict[str, Any]]:
        children = []
        for obj in self.org.objects.values():
            for fdef in obj.fields.values():
                if (
                    fdef.type == "reference"
                    and object_name in fdef.reference_to
                    and fdef.name not in ("CreatedById", "LastModifiedById")
                ):
                    children.append(
                        {
                            "childSObject": obj.name,
                            "field": fdef.name,
                            "cascadeDelete": False,
                            "deprecatedAndHidden": False,
                            "restrictedDelete": False,
                            "relationshipName": _CHILD_RELATIONSHIPS.get((obj.name, fdef.name)),
                        }
                    )
        return children


def _admin_error(message: str) -> Response:
    return Response(orjson.dumps({"error": message}), 400, media_type="application/json")
