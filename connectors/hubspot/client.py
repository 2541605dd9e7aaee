"""The one factory that builds leadloop's HubSpot client, and the client itself.

`HubSpotClient` wraps the official `hubspot.HubSpot` (which owns URLs, auth headers, serialization and
error types) with what a sync needs around every call: TLS with an explicit CA file (verification
always on), the client-side rate limiter, retries for retriable failures only, call counting by
endpoint, and a timeout per request. It is configured once through `HubSpot(...)` keyword arguments
(they reach every API package's configuration); each API object is built once and reused, because
every attribute access on the official client builds a fresh connection pool.

Threads may share it (streams pulled at once): at most `concurrent_calls` calls are in flight, one
search at a time, and `server_time` is each thread's own.

The official client's own urllib3 retries are switched off (redirects are still followed): tenacity is
the only retry layer, so every attempt is counted, limited and logged. APIs the client lacks or keeps only in
legacy form (form submissions v1, email events v1) go through the same official `ApiClient`
(`request`), hence through the same TLS, auth, limiter and retries.

The access token lives only inside the official client; this wrapper's repr shows the host alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from hubspot import HubSpot
from urllib3.util.retry import Retry

from leadloop.connectors.clock import server_date
from leadloop.connectors.concurrency import PullsStopped
from leadloop.connectors.hubspot.ratelimit import RateLimiter, RateLimits
from leadloop.connectors.hubspot.retry import (
    TRANSPORT_ERRORS,
    HubSpotError,
    RetryPolicy,
    call_with_retries,
    error_from_api_exception,
    error_from_transport,
)
from leadloop.connectors.retry import until_stopped
from leadloop.connectors.settings import HubSpotSettings
from leadloop.crm.ports import CallCounter

log = logging.getLogger("leadloop.connectors.hubspot")

LIST_PAGE_MAX = 100  # list endpoints: `limit` ≤ 100
SEARCH_PAGE_MAX = 200  # search: `limit` ≤ 200
BATCH_MAX = 100  # batch read/create/update/upsert/archive: ≤ 100 inputs
ASSOCIATIONS_BATCH_MAX = 1000  # associations v4 batch read: ≤ 1,000 ids
SEARCH_RESULT_CAP = 10_000  # search paging beyond 10,000 results → 400

NO_TRANSPORT_RETRIES = Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5)
_RESPONSE_TYPES = {200: "object", 201: "object", 207: "object", 204: None}


class HubSpotClient:
    """The official client plus limiter, retries and call counts. Use `call` for typed API methods
    (the `*_with_http_info` variants, which also return headers) and `request` for raw JSON paths."""

    def __init__(self, official: HubSpot, host: str, *, limiter: RateLimiter | None = None,
                 policy: RetryPolicy | None = None, counter: CallCounter | None = None,
                 concurrent_calls: int = 1) -> None:
        if concurrent_calls < 1:
            raise ValueError("at least one HubSpot call must be allowed in flight")
        self._official = official
        self.host = host
        self.limiter = limiter or RateLimiter()
        self.policy = policy or RetryPolicy()
        self.counter = counter or CallCounter()
        # the threads that share this client (streams pulled at once, their independent calls) hold
        # one of these slots for each call, so no more than this many calls are ever in flight
        self.concurrent_calls = concurrent_calls
        self._in_flight = threading.BoundedSemaphore(concurrent_calls)
        self._one_search = threading.Lock()
        self._counting = threading.Lock()
        crm = official.crm
        self.objects = crm.objects.basic_api
        self.search = crm.objects.search_api
        self.batch = crm.objects.batch_api
        self.associations = crm.associations.v4.batch_api
        self.owners = crm.owners.owners_api
        self.properties = crm.properties.core_api
        self.property_groups = crm.properties.groups_api
        self.events = official.events.events_api
        self._raw = self.objects.api_client  # the official ApiClient, for paths without a typed API
        self._answered = threading.local()
        # set when the run stops: the threads still pulling end at their next call (`PullsStopped`)
        self.stopping = threading.Event()

    @property
    def server_time(self) -> datetime | None:
        """HubSpot's clock (its `Date` header, whole seconds) on the last answer this thread received."""
        return getattr(self._answered, "at", None)

    def __repr__(self) -> str:
        return f"HubSpotClient(host={self.host!r})"

    def call(self, endpoint: str, method: Callable[..., Any], *args: Any, search: bool = False,
             idempotent: bool = True, **kwargs: Any) -> Any:
        """`method(*args, **kwargs)` — a `*_with_http_info` API method — limited, retried and counted;
        returns the response data. `endpoint` names the call in counts and logs (`POST /crm/v3/...`).
        A call that is not `idempotent` is not retried after it may have reached HubSpot."""

        def attempt() -> Any:
            # the slot before the limiter: a slot reserved by the limiter and then spent waiting for a
            # thread would bunch calls up behind it. One search at a time: the limiter spaces searches
            # from the answers of the ones before (`RateLimiter.answered`), which a search reserved
            # while others travel could not be (at 100 ms a call, one at a time still makes 5 a second)
            self._unless_stopping(endpoint)
            with self._one_search if search else nullcontext(), self._in_flight:
                self._unless_stopping(endpoint)
                slot = self.limiter.reserve(search=search, unless=self.stopping)
                self._unless_stopping(endpoint)  # woken from the limiter's wait by the stop
                with self._counting:
                    self.counter.add(endpoint)
                try:
                    data, _status, headers = method(*args, _request_timeout=self.policy.timeout, **kwargs)
                except HubSpotError:
                    raise
                except TRANSPORT_ERRORS as error:
                    raise error_from_transport(endpoint, error) from None
                except Exception as error:
                    if hasattr(error, "status") and hasattr(error, "body"):  # any package's ApiException
                        raise error_from_api_exception(endpoint, error) from None
                    raise
                finally:  # a refused call counted too
                    self.limiter.answered(slot, search=search)
            self.limiter.observe(headers)
            self._answered.at = server_date(headers)
            return data

        return call_with_retries(attempt, endpoint, self._policy_until_stopped, on_retry=self._on_retry,
                                 idempotent=idempotent)

    def _unless_stopping(self, endpoint: str) -> None:
        if self.stopping.is_set():
            raise PullsStopped(f"{endpoint}: not sent, the run is stopping")

    @property
    def _policy_until_stopped(self) -> RetryPolicy:
        """The retry policy, its waits between attempts cut short when the run stops (the attempt
        that follows then raises `PullsStopped`)."""
        return until_stopped(self.policy, self.stopping)

    def request(self, method: str, path: str, *, query: Sequence[tuple[str, Any]] = (),
                body: Any = None, endpoint: str | None = None, search: bool = False) -> Any:
        """A JSON call to `path` on the HubSpot host through the official ApiClient; returns the
        parsed JSON (None for 204)."""
        name = endpoint or f"{method} {path}"

        def send(**kwargs: Any) -> Any:
            return self._raw.call_api(
                path, method, {}, list(query), {"Accept": "application/json",
                                                 "Content-Type": "application/json"},
                body=body, response_types_map=_RESPONSE_TYPES, auth_settings=["oauth2"],
                _return_http_data_only=False, collection_formats={}, **kwargs)

        return self.call(name, send, search=search)

    def _on_retry(self, error: HubSpotError, wait: float) -> None:
        if error.status == 429:
            # everyone pauses, not only the thread that was refused
            self.limiter.hold(error.retry_after if error.retry_after is not None else wait)


def next_after(response: Any) -> str | None:
    """The `after` token of the next page in a typed list or search answer, None on the last page."""
    paging = getattr(response, "paging", None)
    following = getattr(paging, "next", None) if paging is not None else None
    return getattr(following, "after", None) if following is not None else None


def hubspot_client(settings: HubSpotSettings, ca_cert: str | Path | None, *,
                   limits: RateLimits | None = None, limiter: RateLimiter | None = None,
                   policy: RetryPolicy | None = None, counter: CallCounter | None = None) -> HubSpotClient:
    """The HubSpot client for `settings`, trusting `ca_cert` when given (else the system store), with
    up to `settings.concurrent_calls` calls in flight at once.

    Pass one `limiter` to every client that shares the same private app, so they share its budget.
    """
    official = HubSpot(
        access_token=settings.access_token.get_secret_value(),
        host=settings.host,
        ssl_ca_cert=str(ca_cert) if ca_cert else None,
        verify_ssl=True,
        retry=NO_TRANSPORT_RETRIES,
    )
    return HubSpotClient(official, settings.host, limiter=limiter or RateLimiter(limits),
                         policy=policy, counter=counter, concurrent_calls=settings.concurrent_calls)
