"""The sandbox's HubSpot backend: HubSpot's CRM v3/v4 APIs and activity sources over one portal's state.

API overview: https://developers.hubspot.com/docs/api/overview
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from leadloop.sandbox.hubspot import (
    activity,
    associations,
    attendance,
    objects,
    properties,
    search,
    submissions,
    subscriptions,
    tracking,
    users,
)
from leadloop.sandbox.hubspot.errors import error_body, json_response
from leadloop.sandbox.hubspot.loader import load_world
from leadloop.sandbox.hubspot.portal import Portal, route_class
from leadloop.sandbox.hubspot.store import Record, Store

_OBJECT_PATH = re.compile(r"^/crm/v[34]/(?:objects/|associations/)?([^/]+)")


class HubSpotBackend:
    """Implements sandbox.contract.Backend for HubSpot."""

    name = "hubspot"
    path_prefixes = (
        "/crm/",
        "/events/v3/",
        "/form-integrations/",
        "/marketing/v3/",
        "/email/public/",
        "/settings/v3/",
        "/submissions/v3/",
        "/communication-preferences/v3/",
    )
    # HubSpot takes form submissions without a token (the secure variant wants one)
    public_path_prefixes = (submissions.PUBLIC_PREFIX,)

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.portal = Portal(ctx)

    @property
    def store(self) -> Store:
        return self.portal.store

    def call_target(self, method: str, path: str, query_string: str) -> str | None:
        """The object type a call reads or writes, for the statistics by object."""
        found = _OBJECT_PATH.search(path)
        return found.group(1) if found else None

    def router(self) -> APIRouter:
        router = APIRouter(route_class=route_class(self.portal))
        properties.add_routes(router, self.portal)
        properties.add_pipeline_routes(router, self.portal)
        search.add_routes(router, self.portal)
        objects.add_routes(router, self.portal)
        associations.add_routes(router, self.portal)
        activity.add_routes(router, self.portal)
        attendance.add_routes(router, self.portal)
        users.add_routes(router, self.portal)
        subscriptions.add_routes(router, self.portal)
        public = APIRouter()  # plain routes: not counted against the app's rate limits
        submissions.add_routes(router, self.portal, public)
        router.include_router(public)
        return router

    def admin_router(self) -> APIRouter:
        """What only HubSpot itself records (page views, marketing email events), for the admin API."""
        return tracking.admin_router(self.portal)

    def configure_limits(
        self,
        *,
        burst: int | None = None,
        daily: int | None = None,
        search_per_second: int | None = None,
        enforced: bool | None = None,
    ) -> None:
        """Change HubSpot's rate limits (default: 190 per 10 s, 650,000 a day, search 5 a second, on)."""
        self.portal.limiter.configure(
            burst=burst, daily=daily, search_per_second=search_per_second, enforced=enforced
        )

    def reset_limits(self) -> None:
        """Forget the calls counted so far (the limits themselves stay)."""
        self.portal.limiter.reset()

    def load_world(self, world: Any) -> None:
        store = Store(self.ctx.now)
        load_world(store, world)
        self.portal.store = store

    def reset(self) -> None:
        self.portal.store = Store(self.ctx.now)
        self.portal.limiter.reset()

    def snapshot(self) -> dict[str, Any]:
        return self.portal.store.snapshot()

    def restore(self, data: dict[str, Any]) -> None:
        store = Store(self.ctx.now)
        store.restore(data)
        self.portal.store = store

    def error_response(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return json_response(error_body(status, kind, message), status, headers)

    def bulk_insert(self, object_name: str, rows: list[dict[str, str | None]]) -> list[int]:
        """Insert records directly (already in HubSpot's string form), bypassing the API and its limits:
        a fast way for tests and benchmarks to make a large portal. Returns the new ids."""
        store = self.portal.store
        now_ms = store.now_ms()
        ids = []
        for props in rows:
            record = store.create(object_name, dict(props), 0.0, now_ms)
            ids.append(record.id)
        return ids

    def purge(self, object_name: str, ids: list[int]) -> None:
        """Remove records outright (not archived: gone), with their associations."""
        store = self.portal.store
        table = store.tables[object_name]
        doomed = set(ids)
        for record_id in doomed:
            record = table.records.pop(record_id, None)
            if record is not None and record.props.get("email"):
                table.by_email.pop(record.props["email"].lower(), None)
        table.order = [i for i in table.order if i not in doomed]
        table.version += 1
        store.associations_version += 1
        for (from_type, to_type), by_from in store.associations.items():
            if from_type == object_name:
                for record_id in doomed:
                    by_from.pop(record_id, None)
            if to_type == object_name:
                for targets in by_from.values():
                    for record_id in doomed & targets.keys():
                        del targets[record_id]

    def record(self, object_name: str, record_id: int | str) -> Record | None:
        return self.portal.store.get(object_name, record_id)
