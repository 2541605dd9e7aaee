"""HubSpot's error bodies: the standard error object, rate-limit bodies and authentication errors.

Error format: https://developers.hubspot.com/docs/api/error-handling
Rate-limit bodies and headers: https://developers.hubspot.com/docs/api/usage-details
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.responses import Response

AUTH_DOCS = "https://developers.hubspot.com/docs/methods/auth/oauth-overview"


def correlation_id() -> str:
    return str(uuid.uuid4())


class HubSpotError(Exception):
    """A request-level failure, rendered as HubSpot's standard error object."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        context: dict[str, list[str]] | None = None,
        sub_category: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.context = context
        self.sub_category = sub_category
        self.errors = errors
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "error", "message": self.message, "correlationId": correlation_id()}
        if self.context is not None:
            body["context"] = self.context
        if self.errors is not None:
            body["errors"] = self.errors
        body["category"] = self.category
        if self.sub_category:
            body["subCategory"] = self.sub_category
        body.update(self.extra)
        return body


def batch_error(
    category: str, message: str, context: dict[str, list[str]] | None = None, sub_category: str | None = None
) -> dict[str, Any]:
    """One entry of a 207 batch response's `errors` list (HubSpot's StandardError)."""
    error: dict[str, Any] = {
        "status": "error",
        "category": category,
        "message": message,
        "context": context or {},
        "errors": [],
        "links": {},
    }
    if sub_category:
        error["subCategory"] = sub_category
    return error


def validation_error(message: str, **kw: Any) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message, **kw)


def not_found(
    message: str = "Object not found.  objectId are usually numeric.", ids: list[str] | None = None
) -> HubSpotError:
    return HubSpotError(404, "OBJECT_NOT_FOUND", message, context={"id": ids} if ids else None)


def property_errors(problems: list[dict[str, Any]]) -> HubSpotError:
    """400 for invalid property values; `problems` are HubSpot's per-property validation results."""
    return validation_error("Property values were not valid: " + orjson.dumps(problems).decode())


def property_problem(name: str, error: str, message: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    }


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def rate_limit_body(policy: str) -> dict[str, Any]:
    """The 429 body for `policy` (TEN_SECONDLY_ROLLING, DAILY or SECONDLY for search)."""
    messages = {
        "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
        "DAILY": "You have reached your daily limit.",
        "SECONDLY": "You have reached your secondly limit.",
    }
    groups = {
        "TEN_SECONDLY_ROLLING": "publicapi:private_app-api-calls-ten-secondly:1024:1000001",
        "DAILY": "publicapi:private_app-api-calls-daily:1024:1000001",
        "SECONDLY": "publicapi:crm-search-secondly:1000001",
    }
    body = {
        "status": "error",
        "message": messages[policy],
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy,
        "groupName": groups[policy],
    }
    if policy == "DAILY":
        body["requestId"] = correlation_id()
    return body


def error_body(status: int, kind: str, message: str) -> dict[str, Any]:
    """The body for one of the core's error kinds (see sandbox.contract.Backend.error_response)."""
    if kind == "rate_limited":
        return rate_limit_body("TEN_SECONDLY_ROLLING")
    if kind == "daily_limit":
        return rate_limit_body("DAILY")
    if kind == "unauthorized":
        return {
            "status": "error",
            "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
            f"you can find more details at {AUTH_DOCS}",
            "correlationId": correlation_id(),
            "category": "INVALID_AUTHENTICATION",
        }
    if kind == "session_expired":
        return {
            "status": "error",
            "message": "The OAuth token used to make this call expired 1 second(s) ago.",
            "correlationId": correlation_id(),
            "category": "EXPIRED_AUTHENTICATION",
        }
    categories = {
        "not_found": "OBJECT_NOT_FOUND",
        "bad_request": "VALIDATION_ERROR",
        "server_error": "INTERNAL_ERROR",
    }
    return {
        "status": "error",
        "message": message or "internal error",
        "correlationId": correlation_id(),
        "category": categories.get(kind, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR"),
    }
