"""The Salesforce backend of the sandbox: the org's state and the routes that serve it.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest.htm
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from leadloop.sandbox.contract import SandboxContext
from leadloop.sandbox.salesforce import bulk2, composite, rest, tooling
from leadloop.sandbox.salesforce.errors import RecordError, SalesforceError
from leadloop.sandbox.salesforce.http import DEFAULT_DAILY_LIMIT, ApiUsage, Routes
from leadloop.sandbox.salesforce.org import Org
from leadloop.sandbox.salesforce.schema import ObjectDef

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
        routes = Routes(router, self.usage)
        rest.add_routes(routes, self)
        composite.add_routes(routes, self)
        tooling.add_routes(routes, self)
        bulk2.add_routes(routes, self)
        return router

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
    def prepare_create(self, object_name: str, values: dict[str, Any]) -> dict[str, Any]:
        """The validated row to insert; RecordError when a field or a validation rule refuses it."""
        row = self.org.prepare_create(object_name, values)
        message = self.ctx.faults.rejection("salesforce", object_name, dict(row))
        if message is not None:
            raise RecordError("FIELD_CUSTOM_VALIDATION_EXCEPTION", message, [])
        return row

    def prepare_update(self, object_name: str, record_id: str, values: dict[str, Any]) -> dict[str, Any]:
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
        """One record as `GET /sobjects/{type}/{id}` returns it: every field, or the ones asked for."""
        if fields is None:
            chosen = list(obj.fields.values())
        else:
            chosen = []
            for name in fields:
                fdef = obj.field(name.strip())
                if fdef is None:
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
