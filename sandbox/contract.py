"""The seams inside the sandbox: what the server core offers each CRM backend, and what a backend
(Salesforce REST, HubSpot CRM v3) offers the core.

The core owns the HTTPS server, authentication, fault injection, call statistics, persistence and
the admin API under `/_sandbox`; each backend owns its API's routes, its objects and its wire
formats (including its own error bodies). A backend never imports the other backend.

Optional for a backend: `world_ids() -> dict[str, dict[str, str]]`, the CRM id each world key got,
by kind (`salesforce_account`, `salesforce_lead`, `salesforce_contact`, `salesforce_opportunity`,
`hubspot_company`, `hubspot_contact`, `hubspot_deal`); `leadloop sandbox export` then fills the
canonical records' CRM ids. Also optional: `call_target(method, path, query_string) -> str | None`,
the object a call reads or writes; `GET /_sandbox/stats` then counts calls by object and endpoint
(`by_object`). Also optional: `public_path_prefixes: tuple[str, ...]`, paths the CRM answers without a
bearer token (HubSpot's form submissions), and `admin_router() -> APIRouter`, admin routes of the
backend's own, mounted under `/_sandbox/{name}` (loopback only, like the rest of the admin API): for
what only the CRM itself records, so that no public API can (HubSpot's page views and marketing email
events: `POST /_sandbox/hubspot/page-views`, `POST /_sandbox/hubspot/email-events`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Protocol

from fastapi import APIRouter
from starlette.responses import Response

CrmName = Literal["salesforce", "hubspot"]


class Faults(Protocol):
    """The fault settings a backend must consult itself (the core applies the transport-level ones:
    latency, 429 bursts, 5xx, dropped connections, slow responses, session expiry)."""

    def rejection(self, crm: CrmName, object_name: str, record: dict[str, Any]) -> str | None:
        """The validation message to reject this record with in a batch write, or None."""

    def search_lag_seconds(self, crm: CrmName) -> float:
        """How long a write stays invisible to search (HubSpot's search is eventually consistent)."""


class Stats(Protocol):
    """Records read and written by endpoint (calls themselves are counted by the core)."""

    def records_read(self, crm: CrmName, endpoint: str, n: int) -> None: ...

    def records_written(self, crm: CrmName, endpoint: str, n: int) -> None: ...


class Sessions(Protocol):
    """Bearer tokens. The core checks every request's token against these; a backend's login endpoint
    (Salesforce `/services/oauth2/token`) issues new ones, as a real CRM does after a session expires."""

    def issue(self, crm: CrmName, user: str | None = None) -> str:
        """A new valid token for `crm` (older ones stay valid until expired by a fault), belonging to
        the CRM user `user` (None: the integration user)."""

    def user_of(self, crm: CrmName, token: str) -> str | None:
        """The user a token was issued for, or None (the integration user, or an unknown token)."""

    def is_valid(self, crm: CrmName, token: str) -> bool: ...

    def check_login(self, crm: CrmName, username: str, password: str) -> bool:
        """Whether these login credentials are the sandbox's (Salesforce: `password` is the password,
        optionally followed by the security token), for a backend's login endpoint."""

    def credentials(self, crm: CrmName) -> dict[str, str]:
        """The sandbox's login credentials for `crm` (Salesforce: username, password, security_token)."""


class SandboxContext(Protocol):
    """What a backend gets from the core."""

    sessions: Sessions
    faults: Faults
    stats: Stats
    base_url: str  # e.g. https://127.0.0.1:8443, for absolute links such as HubSpot's paging.next.link
    now: Callable[[], datetime]  # timezone-aware UTC; tests may move the clock


class Backend(Protocol):
    """What the core needs from a CRM backend."""

    name: CrmName
    path_prefixes: tuple[str, ...]  # URL prefixes this backend serves, e.g. ("/services/",)

    def router(self) -> APIRouter:
        """The routes of this API (mounted at the root of the app)."""

    def load_world(self, world: Any) -> None:
        """Fill this CRM from a generated `sandbox.world.World` (its own share of it)."""

    def reset(self) -> None:
        """Forget every record (an empty CRM, but with its standard objects and fields)."""

    def snapshot(self) -> dict[str, Any]:
        """All state as JSON-able data, for persistence in --data-dir."""

    def restore(self, data: dict[str, Any]) -> None:
        """Replace all state with a snapshot."""

    def error_response(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
                       ) -> Response:
        """An error in this CRM's own wire format. `kind` is one of: `unauthorized`, `session_expired`,
        `rate_limited`, `daily_limit`, `server_error`, `not_found`, `bad_request`."""
