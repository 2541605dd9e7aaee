"""Salesforce's error bodies: a JSON array of `{"message", "errorCode"[, "fields"]}` objects.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
Top-level REST errors use `errorCode`; per-record results inside collections use `statusCode`
(see `RecordError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response


class SalesforceError(Exception):
    """An error the API answers with a non-2xx status and Salesforce's JSON error array."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def body(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            entry["fields"] = self.fields
        return [entry]

    def response(self) -> Response:
        return json_response(self.body(), self.status, self.headers)


@dataclass(slots=True)
class RecordError(Exception):
    """A per-record failure inside a write (collections, single-record writes, Bulk API rows)."""

    code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def as_result(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def as_error(self, status: int = 400) -> SalesforceError:
        return SalesforceError(status, self.code, self.message, self.fields)


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(content),
        status_code=status,
        headers=headers,
        media_type="application/json;charset=UTF-8",
    )


def not_found() -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_type(name: str) -> SalesforceError:
    return SalesforceError(
        400,
        "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
        "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
        "appropriate names.",
    )


def json_parser_error(detail: str) -> SalesforceError:
    return SalesforceError(400, "JSON_PARSER_ERROR", detail)
