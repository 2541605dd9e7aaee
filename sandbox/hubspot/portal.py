"""What every HubSpot route module shares: the portal state, the sandbox context, the rate limiter, the
route class that applies HubSpot's limits and error format to every call, and request parsing helpers.

Rate limits: https://developers.hubspot.com/docs/api/usage-details
Errors: https://developers.hubspot.com/docs/api/error-handling
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import Response

from leadloop.sandbox.hubspot.errors import (
    HubSpotError,
    correlation_id,
    json_response,
    rate_limit_body,
    validation_error,
)
from leadloop.sandbox.hubspot.limits import RateLimiter
from leadloop.sandbox.hubspot.store import Store

MAX_BATCH = 100


class Portal:
    """The sandbox's one HubSpot account. `store` is swapped whole on load/reset/restore."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.store = Store(ctx.now)
        self.limiter = RateLimiter()

    def lag(self) -> float:
        return float(self.ctx.faults.search_lag_seconds("hubspot") or 0.0)

    def read(self, endpoint: str, n: int) -> None:
        """Count records read; `endpoint` is "METHOD /path" with the object type spelled out."""
        if n:
            self.ctx.stats.records_read("hubspot", endpoint, n)

    def written(self, endpoint: str, n: int) -> None:
        if n:
            self.ctx.stats.records_written("hubspot", endpoint, n)


def route_class(portal: Portal) -> type[APIRoute]:
    """An APIRoute that counts the call against HubSpot's limits, adds the rate-limit headers and renders
    HubSpotError (and FastAPI's own validation errors) in HubSpot's format."""

    class HubSpotRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            original = super().get_route_handler()

            async def handler(request: Request) -> Response:
                moment = portal.ctx.now()
                is_search = request.method == "POST" and request.url.path.rstrip("/").endswith("/search")
                policy = portal.limiter.check(moment, search=is_search)
                headers = portal.limiter.headers(moment)
                headers["X-HubSpot-Correlation-Id"] = correlation_id()
                if policy is not None:
                    return json_response(rate_limit_body(policy), 429, headers)
                try:
                    response = await original(request)
                except HubSpotError as exc:
                    response = json_response(exc.body(), exc.status)
                except RequestValidationError as exc:
                    response = json_response(
                        validation_error(f"Invalid request: {exc.errors()[:1]}").body(), 400
                    )
                response.headers.update(headers)
                return response

            return handler

    return HubSpotRoute


def query_list(request: Request, name: str) -> list[str]:
    """A list query parameter in either form HubSpot accepts: repeated (`?p=a&p=b`) or comma-joined."""
    out: list[str] = []
    for value in request.query_params.getlist(name):
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def query_int(request: Request, name: str, default: int, maximum: int | None = None, minimum: int = 1) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_error(f"Unable to parse '{raw}' as an integer for parameter {name}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise validation_error(f"{name} must be between {minimum} and {maximum}, was {value}")
    return value


def query_bool(request: Request, name: str) -> bool:
    return (request.query_params.get(name) or "false").lower() == "true"


async def body_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise validation_error("Invalid input JSON: request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise validation_error(f"Invalid input JSON on line 1, column {exc.pos + 1}: {exc.msg}") from None


def inputs_of(body: Any, maximum: int = MAX_BATCH) -> list[dict[str, Any]]:
    """The `inputs` of a batch body; 400 when missing, malformed or over the batch limit."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise validation_error("Invalid input JSON: missing required field 'inputs'")
    inputs = body["inputs"]
    if len(inputs) > maximum:
        raise validation_error(
            f"Batch input limit exceeded: {len(inputs)} inputs were sent, the maximum is {maximum}.",
            context={"maxInputs": [str(maximum)]},
        )
    if not all(isinstance(i, dict) for i in inputs):
        raise validation_error("Invalid input JSON: each input must be an object")
    return inputs
