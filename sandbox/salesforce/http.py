"""The plumbing every Salesforce endpoint shares: API version check, the daily request allocation and
its `Sforce-Limit-Info` header, JSON bodies, and Salesforce-format errors instead of framework ones.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.salesforce.errors import SalesforceError, json_parser_error, not_found
from leadloop.sandbox.salesforce.security import CALLER

log = logging.getLogger("leadloop.sandbox.salesforce")

# Winter '24 (59.0) onwards; the sandbox serves these and refuses older or unknown ones with NOT_FOUND.
API_VERSIONS = {
    "59.0": "Winter '24",
    "60.0": "Spring '24",
    "61.0": "Summer '24",
    "62.0": "Winter '25",
    "63.0": "Spring '25",
    "64.0": "Summer '25",
    "65.0": "Winter '26",
}
DEFAULT_DAILY_LIMIT = 15_000  # a Developer Edition org's allocation
Handler = Callable[[Request], Awaitable[Response]]


class ApiUsage:
    """The org's rolling daily request allocation (reset 24 hours after its first counted call)."""

    def __init__(self, now: Callable[[], datetime], limit: int = DEFAULT_DAILY_LIMIT) -> None:
        self.now = now
        self.limit = limit
        self.used = 0
        self.window_start: datetime | None = None

    def _roll(self) -> None:
        now = self.now()
        if self.window_start is None or now - self.window_start >= timedelta(hours=24):
            self.window_start = now
            self.used = 0

    def spend(self) -> bool:
        """Count one call; False when the allocation is already spent (the call is refused)."""
        self._roll()
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    @property
    def remaining(self) -> int:
        self._roll()
        return max(0, self.limit - self.used)

    def header(self) -> str:
        return f"api-usage={min(self.used, self.limit)}/{self.limit}"


def limit_exceeded() -> SalesforceError:
    return SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def version_of(request: Request) -> str:
    """The API version in the path (`v62.0` -> `62.0`); NOT_FOUND when the sandbox does not serve it."""
    raw = request.path_params.get("version", "")
    if not raw.startswith("v") or raw[1:] not in API_VERSIONS:
        raise not_found()
    return raw[1:]


def endpoint_label(request: Request) -> str:
    """`GET /services/data/vXX.X/query`: how call statistics name the endpoint."""
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    return f"{request.method} {template.replace('{version}', 'vXX.X').rstrip('/')}"


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise json_parser_error("The request body is either invalid or incomplete.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise json_parser_error(f"Unexpected character at [line: 1, column: {error.pos + 1}]") from None


def unknown_exception() -> SalesforceError:
    error_id = f"{secrets.randbelow(10**9)}-{secrets.randbelow(10**6)} ({-secrets.randbelow(10**9)})"
    return SalesforceError(
        500,
        "UNKNOWN_EXCEPTION",
        f"An unexpected error occurred. Please include this ErrorId if you contact support: {error_id}",
    )


class Routes:
    """Registers handlers under both the plain and the trailing-slash form of each path, wrapped so
    that every response carries the usage header, every failure comes out as Salesforce's error, and
    each handler runs as the user its session belongs to (`caller`, see `security.CALLER`)."""

    def __init__(self, router: APIRouter, usage: ApiUsage,
                 caller: Callable[[Request], str | None] | None = None) -> None:
        self.router = router
        self.usage = usage
        self.caller = caller

    def add(self, path: str, methods: list[str], handler: Handler, counted: bool = True) -> None:
        endpoint = self._wrap(handler, counted)
        for variant in (path, path + "/"):
            self.router.add_api_route(variant, endpoint, methods=methods, include_in_schema=False)

    def _wrap(self, handler: Handler, counted: bool) -> Callable[[Request], Awaitable[Response]]:
        usage = self.usage
        caller = self.caller

        async def endpoint(request: Request) -> Response:
            token = None
            try:
                if caller is not None:
                    token = CALLER.set(caller(request))
                if "version" in request.path_params:
                    version_of(request)
                if counted and not usage.spend():
                    raise limit_exceeded()
                response = await handler(request)
            except SalesforceError as error:
                response = error.response()
            except Exception:
                log.exception("Salesforce sandbox handler failed: %s %s", request.method, request.url.path)
                response = unknown_exception().response()
            finally:
                if token is not None:
                    CALLER.reset(token)
            response.headers["Sforce-Limit-Info"] = usage.header()
            return response

        return endpoint
