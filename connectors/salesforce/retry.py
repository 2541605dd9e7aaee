"""Salesforce failures, sorted once into retriable and fatal: the policy the shared loop of
`connectors.retry` runs Salesforce's calls under (the client renews an expired session around it).

Retriable: HTTP 429, any 5xx, dropped connections, timeouts, and the transient error codes
`UNABLE_TO_LOCK_ROW` / `SERVER_UNAVAILABLE` (which Salesforce may send with a 4xx). Everything else
is fatal and raised at once: a validation error retried is still a validation error. Waits grow
exponentially with jitter, and never undercut the server's `Retry-After`. Every retry and give-up
is logged with the endpoint and the error code, never with a token or a request body.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from leadloop.connectors.retry import RetryPolicy
from leadloop.connectors.retry import call_with_retries as shared_call_with_retries

log = logging.getLogger("leadloop.connectors.salesforce")

T = TypeVar("T")

TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})


class SalesforceCallError(Exception):
    """A Salesforce API call that failed, with the HTTP status, the CRM's error code and message."""

    def __init__(self, endpoint: str, status: int | None, code: str | None, message: str,
                 retry_after: float | None = None) -> None:
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        super().__init__(f"{endpoint}: {status or 'no response'} {code or ''} {message}".replace("  ", " "))

    @property
    def retriable(self) -> bool:
        return is_retriable(self)


class SessionExpiredError(SalesforceCallError):
    """The session id was refused (401 INVALID_SESSION_ID): expired, or never valid. Salesforce does
    not say which; the client, which knows whether the session worked before, does."""


def is_retriable(error: BaseException) -> bool:
    """True for failures worth another attempt: 429, 5xx, transient codes, connection errors, timeouts."""
    if isinstance(error, SessionExpiredError):
        return False  # renewed by the client, not retried blindly
    if isinstance(error, SalesforceCallError):
        if error.status is None:
            return True
        return error.status == 429 or error.status >= 500 or error.code in TRANSIENT_CODES
    return isinstance(error, requests.ConnectionError | requests.Timeout)


def error_from_body(body: Any) -> tuple[str | None, str]:
    """(errorCode, message) from a Salesforce error body: a JSON array of `{errorCode, message}`."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        return first.get("errorCode") or first.get("statusCode"), str(first.get("message", ""))[:500]
    if isinstance(body, dict):
        return body.get("errorCode") or body.get("error"), str(
            body.get("message") or body.get("error_description") or "")[:500]
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return None, text[:300]


def _describe(error: BaseException | None) -> str:
    if isinstance(error, SalesforceCallError):
        return f"{error.status or 'no response'} {error.code or ''}".strip()
    return type(error).__name__ if error else "unknown"


def call_with_retries(fn: Callable[[], T], endpoint: str, policy: RetryPolicy) -> T:
    """`fn()` retried on retriable failures (the shared loop, `connectors.retry`); fatal ones and the
    last retriable one are raised."""
    return shared_call_with_retries(fn, endpoint, policy, crm="salesforce", retriable=is_retriable,
                                    describe=_describe)


_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """The org's rolling 24-hour API usage from the `Sforce-Limit-Info` header."""

    used: int
    limit: int

    @property
    def fraction(self) -> float:
        return self.used / self.limit if self.limit else 0.0


def parse_limit_info(header: str | None) -> ApiUsage | None:
    if not header:
        return None
    match = _USAGE.search(header)
    return ApiUsage(int(match.group(1)), int(match.group(2))) if match else None
