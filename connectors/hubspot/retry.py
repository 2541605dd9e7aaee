"""HubSpot failures, sorted once into retriable and fatal: the policy the shared loop of
`connectors.retry` runs HubSpot's calls under.

Retriable: HTTP 429 (except the DAILY policy: tomorrow is too far to wait), any 5xx, dropped
connections and timeouts. Fatal: every other 4xx, VALIDATION_ERROR above all (a bad value sent again
is still a bad value), and TLS certificate failures. Waits grow exponentially with jitter and never
undercut the server's `Retry-After`; a 429 also holds the shared rate limiter so other threads pause.
Every retry and give-up is logged with the endpoint, status and category, never a token or a body.

Docs: https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details (429 bodies, headers)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3

from leadloop.connectors.retry import RetryPolicy, retry_after_seconds
from leadloop.connectors.retry import call_with_retries as shared_call_with_retries

log = logging.getLogger("leadloop.connectors.hubspot")

T = TypeVar("T")


class HubSpotError(Exception):
    """A HubSpot call that failed: the HTTP status (None when no response came), HubSpot's category
    (`VALIDATION_ERROR`, `RATE_LIMIT`, `OBJECT_NOT_FOUND` ...), its message, and `Retry-After`."""

    def __init__(self, endpoint: str, status: int | None, category: str | None, message: str,
                 retry_after: float | None = None, policy: str | None = None,
                 body: dict[str, Any] | None = None) -> None:
        self.endpoint = endpoint
        self.status = status
        self.category = category
        self.message = message
        self.retry_after = retry_after
        self.policy = policy
        self.body = body or {}
        text = f"{endpoint}: {status or 'no response'} {category or ''} {message}"
        super().__init__(text.replace("  ", " "))

    @property
    def retriable(self) -> bool:
        return is_retriable(self)

    @property
    def may_have_applied(self) -> bool:
        """No answer after the request was sent (a read timeout, a dropped connection) or a 5xx: HubSpot
        may have carried the call out. A create that failed so must be confirmed, never resent blindly."""
        if self.status is None:
            return self.category != "TLS" and self.message not in NOT_SENT
        return self.status >= 500


def is_retriable(error: BaseException) -> bool:
    """True for failures worth another attempt: 429 (not the daily limit), 5xx, no response."""
    if not isinstance(error, HubSpotError):
        return False
    if error.status is None:
        return error.category != "TLS"
    if error.status == 429:
        return error.policy != "DAILY"
    return error.status >= 500


def parse_error_body(data: Any) -> dict[str, Any]:
    """HubSpot's JSON error body as a dict (empty when the body is not JSON)."""
    if isinstance(data, bytes | bytearray):
        data = data.decode("utf-8", "replace")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return {"message": data[:300]}
    return data if isinstance(data, dict) else {}


def error_from_api_exception(endpoint: str, error: Any) -> HubSpotError:
    """A HubSpotError from any of the official client's per-package `ApiException` classes."""
    status = getattr(error, "status", None) or None
    headers = getattr(error, "headers", None)
    body = parse_error_body(getattr(error, "body", None))
    if status is None:
        reason = str(getattr(error, "reason", "") or "")
        category = "TLS" if "CERTIFICATE_VERIFY_FAILED" in reason else "CONNECTION"
        first_line = reason.splitlines()[0][:200] if reason else "no response"
        return HubSpotError(endpoint, None, category, first_line)
    category = body.get("category") or body.get("errorType")
    message = str(body.get("message") or getattr(error, "reason", "") or "")[:500]
    return HubSpotError(endpoint, int(status), category, message, retry_after_seconds(headers),
                        body.get("policyName"), body)


def error_from_transport(endpoint: str, error: BaseException) -> HubSpotError:
    """A HubSpotError for a call that got no HTTP answer (reset, refused, timed out)."""
    kind = "TIMEOUT" if isinstance(error, urllib3.exceptions.TimeoutError | TimeoutError) else "CONNECTION"
    return HubSpotError(endpoint, None, kind, type(error).__name__)


# Transport failures that happen before a request leaves: resending cannot duplicate anything.
NOT_SENT = frozenset({"NewConnectionError", "ConnectTimeoutError", "NameResolutionError"})

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,  # ProtocolError, NewConnectionError, timeouts, MaxRetryError
    ConnectionError,
    TimeoutError,
)


def describe(error: BaseException | None) -> str:
    """Status and category only: what may be logged."""
    if isinstance(error, HubSpotError):
        return f"{error.status or 'no response'} {error.category or ''}".strip()
    return type(error).__name__ if error else "unknown"


def call_with_retries(fn: Callable[[], T], endpoint: str, policy: RetryPolicy,
                      on_retry: Callable[[HubSpotError, float], None] | None = None,
                      idempotent: bool = True) -> T:
    """`fn()` retried on retriable failures (the shared loop, `connectors.retry`); fatal ones, and the
    last retriable one, are raised. `on_retry(error, wait)` runs before each wait (the client uses it
    to hold the rate limiter). A call that is not `idempotent` (a create) is retried only when HubSpot
    surely did not carry it out (a 429, a connection never made): any other failure is raised for the
    caller to confirm."""

    def worth_retrying(error: BaseException) -> bool:
        if not is_retriable(error):
            return False
        return idempotent or not getattr(error, "may_have_applied", False)

    def held(error: BaseException, wait: float) -> None:
        if on_retry is not None and isinstance(error, HubSpotError):
            on_retry(error, wait)

    try:
        return shared_call_with_retries(fn, endpoint, policy, crm="hubspot", retriable=worth_retrying,
                                        describe=describe, on_retry=held)
    except HubSpotError as error:
        if error.status == 429 and not is_retriable(error):
            log.error("hubspot %s: the %s rate limit is spent; not retrying", endpoint, error.policy)
        raise
