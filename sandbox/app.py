"""The sandbox's ASGI application: both CRM backends' routes, the `/_sandbox` admin API, and the
middleware that authenticates, injects transport faults and counts calls.

`SandboxCore` holds the state shared by the backends (sessions, faults, stats, clock) and the
generated world's identity (size, seed, generated_at); `create_app(core)` builds the ASGI app.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadloop.sandbox import persist
from leadloop.sandbox.contract import Backend
from leadloop.sandbox.faults import FaultConfigError, FaultInjector, TransportDecision, parse_rules
from leadloop.sandbox.sessions import TokenSessions
from leadloop.sandbox.stats import CallStats
from leadloop.sandbox.world import SIZES, World, generate_world

log = logging.getLogger("leadloop.sandbox")

BACKEND_ENTRY_POINTS = (("leadloop.sandbox.salesforce", "SalesforceBackend"),
                        ("leadloop.sandbox.hubspot", "HubSpotBackend"))
# Login endpoints need no bearer token: they are how a client gets one.
PUBLIC_PATHS = ("/services/oauth2/token",)
_VERSION_SEGMENT = re.compile(r"^v\d+\.\d+$")
_NO_FAULT = TransportDecision()


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Clock:
    """The sandbox's `now`: real UTC time, moved by an offset that tests may set."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass(slots=True)
class Context:
    """What each backend gets from the core (the `SandboxContext` seam)."""

    sessions: TokenSessions
    faults: FaultInjector
    stats: CallStats
    base_url: str
    now: Callable[[], datetime]


def load_backends(context: Context) -> list[Backend]:
    """The CRM backends whose packages are present (each is optional while being built)."""
    backends: list[Backend] = []
    for module_name, class_name in BACKEND_ENTRY_POINTS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        backend_class = getattr(module, class_name, None)
        if backend_class is not None:
            backends.append(backend_class(context))
    return backends


class SandboxCore:
    """The sandbox's state: the backends, and what the core keeps for them."""

    def __init__(self, base_url: str, data_dir: Path | None = None,
                 backend_factories: Sequence[Callable[[Context], Backend]] | None = None) -> None:
        self.clock = Clock()
        self.sessions = TokenSessions()
        self.faults = FaultInjector()
        self.stats = CallStats()
        self.data_dir = data_dir
        self.context = Context(self.sessions, self.faults, self.stats, base_url, self.clock.now)
        self.backends = (
            [make(self.context) for make in backend_factories] if backend_factories is not None
            else load_backends(self.context)
        )
        self._prefixes = sorted(
            ((prefix, b) for b in self.backends for prefix in b.path_prefixes), key=lambda p: -len(p[0])
        )
        self.size: str | None = None
        self.seed_value: int | None = None
        self.generated_at: datetime | None = None
        self._world: World | None = None
        self._lock = threading.Lock()

    # -- the world -------------------------------------------------------------------------------

    def seed(self, size: str, seed: int) -> World:
        """Regenerate the world and load every backend with it."""
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
        world = generate_world(size, seed, now=self.clock.now())
        with self._lock:
            for backend in self.backends:
                backend.reset()
                backend.load_world(world)
            self.size, self.seed_value, self.generated_at, self._world = size, seed, world.generated_at, world
        return world

    def reset(self) -> None:
        """Empty CRMs (standard objects and fields stay)."""
        with self._lock:
            for backend in self.backends:
                backend.reset()
            self.size = self.seed_value = self.generated_at = self._world = None

    def world(self) -> World | None:
        """The generated world the CRMs were seeded with (regenerated after a restart), or None."""
        if self._world is None and self.size is not None and self.seed_value is not None:
            self._world = generate_world(self.size, self.seed_value, now=self.generated_at)
        return self._world

    # -- persistence -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        meta = {
            "size": self.size,
            "seed": self.seed_value,
            "generated_at": self.generated_at.isoformat() if self.generated_at else None,
        }
        state: dict[str, Any] = {"core": meta, "sessions": self.sessions.snapshot()}
        for backend in self.backends:
            state[f"backend:{backend.name}"] = backend.snapshot()
        return state

    def restore(self, state: dict[str, Any]) -> None:
        meta = state.get("core") or {}
        self.size, self.seed_value = meta.get("size"), meta.get("seed")
        generated = meta.get("generated_at")
        self.generated_at = datetime.fromisoformat(generated) if generated else None
        self._world = None
        if "sessions" in state:
            self.sessions.restore(state["sessions"])
        for backend in self.backends:
            data = state.get(f"backend:{backend.name}")
            if data is not None:
                backend.restore(data)
            else:
                backend.reset()

    def persist(self) -> Path:
        if self.data_dir is None:
            raise RuntimeError("the sandbox was started without a data directory")
        return persist.save_state(self.data_dir, self.snapshot())

    # -- request routing -------------------------------------------------------------------------

    def backend_for(self, path: str) -> Backend | None:
        for prefix, backend in self._prefixes:
            if path.startswith(prefix):
                return backend
        return None


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def endpoint_name(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """`GET /services/data/vXX.X/query`: the route's template, API versions folded. Uses the route
    the app matched when it handled the request (`scope["route"]`), else matches it here."""
    route = scope.get("route")
    template: str | None = getattr(route, "path", None)
    if template is None:
        for candidate in routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                template = getattr(candidate, "path", None)
                break
    path: str = scope["path"]
    raw_segments = path.split("/")
    if template is None:
        segments = ["vXX.X" if _VERSION_SEGMENT.match(s) else s for s in raw_segments]
        return f"{scope['method']} {'/'.join(segments)}"
    segments = template.split("/")
    if len(segments) == len(raw_segments):
        segments = [
            "vXX.X" if "{" in t and _VERSION_SEGMENT.match(raw) else t
            for t, raw in zip(segments, raw_segments, strict=True)
        ]
    return f"{scope['method']} {'/'.join(segments)}"


class ConnectionDropped(Exception):
    """Raised on purpose to make the server close a connection mid-response."""


class _QuietDroppedConnections(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def quiet_dropped_connections() -> None:
    """Keep deliberately dropped connections out of the server's error log."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDroppedConnections) for f in logger.filters):
        logger.addFilter(_QuietDroppedConnections())


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() in ("bearer", "oauth") and token.strip():
                return token.strip()
            return None
    return None


class SandboxMiddleware:
    """Admin requests from loopback only; CRM requests: faults, authentication, then the backend."""

    def __init__(self, app: FastAPI, core: SandboxCore, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.core = core
        self.routes = routes  # the backends' own routes, to name calls that never reached routing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_sandbox"):
            client = scope.get("client")
            if not _is_loopback(client[0] if client else None):
                await JsonResponse({"error": "the sandbox admin API answers loopback clients only"},
                                   status_code=403)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        backend = self.core.backend_for(path)
        if backend is None:
            await self.app(scope, receive, send)
            return
        await self._crm_call(backend, scope, receive, send)

    async def _crm_call(self, backend: Backend, scope: Scope, receive: Receive, send: Send) -> None:
        core = self.core
        method: str = scope["method"]
        status = 0

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # the CRMs' Date header is their clock, which the admin API can move
                date = format_datetime(core.clock.now().astimezone(UTC), usegmt=True).encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                message = {**message, "headers": [*headers, (b"date", date)]}
            await send(message)

        decision = _NO_FAULT
        if core.faults.active:
            targets = (f"{method} {scope['path']}",)
            if core.faults.scoped_by_endpoint:
                targets += (endpoint_name(self.routes, scope),)
            decision = core.faults.decide(backend.name, targets)
        try:
            if decision.expire_sessions:
                core.sessions.expire_all(decision.expire_crm)
                core.stats.fault("session_expired")
            if scope["path"] not in PUBLIC_PATHS and not scope["path"].startswith(
                    getattr(backend, "public_path_prefixes", ())):
                token = _bearer(scope)
                state = core.sessions.state(backend.name, token) if token else "unknown"
                if state != "valid":
                    kind = "session_expired" if state == "expired" else "unauthorized"
                    message = ("Session expired or invalid" if state == "expired"
                               else "Authentication credentials were missing or invalid")
                    await backend.error_response(401, kind, message)(scope, receive, counting_send)
                    return
            await self._apply_faults(backend, decision, scope, receive, counting_send)
        finally:
            target = None
            if hasattr(backend, "call_target"):
                query = scope.get("query_string", b"").decode("latin-1")
                target = backend.call_target(method, scope["path"], query)
            core.stats.call(backend.name, endpoint_name(self.routes, scope), method, status, target)

    async def _apply_faults(self, backend: Backend, decision: TransportDecision, scope: Scope,
                            receive: Receive, send: Send) -> None:
        stats = self.core.stats
        if decision.delay_seconds:
            stats.fault("delay")
            await asyncio.sleep(decision.delay_seconds)
        if decision.drop_connection:
            stats.fault("dropped_connection")
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"65536")]})
            await send({"type": "http.response.body", "body": b'{"records": [', "more_body": True})
            raise ConnectionDropped("connection dropped by a sandbox fault")
        if decision.status_429:
            stats.fault("status_429")
            headers = {}
            if decision.retry_after is not None:
                headers["Retry-After"] = str(max(0, math.ceil(decision.retry_after)))
            response = backend.error_response(429, "rate_limited", "Too many requests (sandbox fault)",
                                              headers)
            await response(scope, receive, send)
            return
        if decision.status_5xx:
            stats.fault(f"status_{decision.status_5xx}")
            response = backend.error_response(decision.status_5xx, "server_error",
                                              "The server failed to handle the request (sandbox fault)")
            await response(scope, receive, send)
            return
        if decision.answer_delay_seconds:
            await self.app(scope, receive, _answer_late(send, decision.answer_delay_seconds, stats))
            return
        await self.app(scope, receive, send)


def _answer_late(send: Send, seconds: float, stats: Any) -> Send:
    """`send` that holds the response back after the app has done its work."""

    async def late(message: Message) -> None:
        if message["type"] == "http.response.start":
            stats.fault("answered_late")
            await asyncio.sleep(seconds)
        await send(message)

    return late


_KINDS = {401: "unauthorized", 404: "not_found", 429: "rate_limited"}


def _install_error_handlers(app: FastAPI, core: SandboxCore) -> None:
    """Framework-level errors under a CRM's prefix come out in that CRM's own format."""

    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        backend = core.backend_for(request.url.path)
        if backend is None:
            return JsonResponse({"error": error.detail}, status_code=error.status_code)
        kind = _KINDS.get(error.status_code, "server_error" if error.status_code >= 500 else "bad_request")
        return backend.error_response(error.status_code, kind, str(error.detail))

    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        ) or "malformed request"
        backend = core.backend_for(request.url.path)
        if backend is None:
            return JsonResponse({"error": problems}, status_code=400)
        return backend.error_response(400, "bad_request", problems)

    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def admin_router(core: SandboxCore) -> APIRouter:
    """`/_sandbox`: stats, faults, reset, seed, persist, clock, export, health (and, under
    `/_sandbox/{crm}`, what a backend's `admin_router` adds)."""
    router = APIRouter(prefix="/_sandbox")

    def bad(message: str) -> JsonResponse:
        return JsonResponse({"error": message}, status_code=400)

    @router.get("/health")
    def health() -> JsonResponse:
        return JsonResponse({
            "status": "ok", "size": core.size, "seed": core.seed_value,
            "backends": [b.name for b in core.backends], "now": core.clock.now().isoformat(),
        })

    @router.get("/stats")
    def stats() -> JsonResponse:
        return JsonResponse(core.stats.report())

    @router.post("/stats/reset")
    def stats_reset() -> JsonResponse:
        core.stats.reset()
        return JsonResponse(core.stats.report())

    @router.get("/faults")
    def faults_get() -> JsonResponse:
        return JsonResponse({"rules": core.faults.describe()})

    @router.post("/faults")
    async def faults_post(request: Request) -> JsonResponse:
        body = await _json_body(request)
        try:
            rules = parse_rules(body) if body is not None else None
        except FaultConfigError as error:
            return bad(str(error))
        if rules is None:
            return bad("the faults body is not valid JSON")
        core.faults.configure(rules)
        if not rules:
            core.sessions.revive_expired()
        return JsonResponse({"rules": core.faults.describe()})

    @router.delete("/faults")
    def faults_delete() -> JsonResponse:
        core.faults.clear()
        core.sessions.revive_expired()
        return JsonResponse({"rules": []})

    @router.post("/reset")
    def reset() -> JsonResponse:
        core.reset()
        return JsonResponse({"status": "empty"})

    @router.post("/seed")
    async def seed(request: Request) -> JsonResponse:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return bad("the seed body must be a JSON object like {\"size\": \"small\", \"seed\": 7}")
        size, seed_value = body.get("size", "tiny"), body.get("seed", 7)
        if size not in SIZES:
            return bad(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
        if not isinstance(seed_value, int) or isinstance(seed_value, bool):
            return bad("'seed' must be an integer")
        world = await asyncio.to_thread(core.seed, size, seed_value)
        return JsonResponse({"size": size, "seed": seed_value, "people": len(world.humans),
                             "accounts": len(world.companies), "events": len(world.events)})

    @router.post("/persist")
    def persist_now() -> JsonResponse:
        if core.data_dir is None:
            return bad("the sandbox was started without --data-dir; nothing to persist to")
        path = core.persist()
        return JsonResponse({"path": str(path)})

    @router.post("/clock")
    async def clock(request: Request) -> JsonResponse:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return bad("the clock body must be {\"advance_seconds\": n}, {\"now\": iso} or {}")
        if "now" in body:
            try:
                target = datetime.fromisoformat(str(body["now"]).replace("Z", "+00:00"))
            except ValueError:
                return bad("'now' must be an ISO 8601 timestamp")
            if target.tzinfo is None:
                target = target.replace(tzinfo=UTC)
            core.clock.offset = target - datetime.now(UTC)
        elif "advance_seconds" in body:
            if not isinstance(body["advance_seconds"], int | float):
                return bad("'advance_seconds' must be a number")
            core.clock.offset += timedelta(seconds=body["advance_seconds"])
        else:
            core.clock.offset = timedelta(0)
        return JsonResponse({"now": core.clock.now().isoformat()})

    @router.get("/export")
    def export() -> Response:
        from leadloop.sandbox.export import world_to_dataset

        world = core.world()
        if world is None:
            return JsonResponse({"error": "the sandbox is empty (no generated world to export)"},
                                status_code=409)
        crm_ids: dict[str, dict[str, str]] = {}
        for backend in core.backends:
            world_ids = getattr(backend, "world_ids", None)  # optional: world key → CRM id, by kind
            if world_ids is not None:
                crm_ids.update(world_ids())
        return Response(orjson.dumps(world_to_dataset(world, crm_ids)), media_type="application/json")

    return router


def create_app(core: SandboxCore) -> ASGIApp:
    """The ASGI app: admin API, each backend's router, wrapped in the sandbox middleware."""
    app = FastAPI(title="leadloop CRM sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(admin_router(core))
    for backend in core.backends:
        backend_admin = getattr(backend, "admin_router", None)  # optional: see sandbox.contract
        if backend_admin is not None:
            app.include_router(backend_admin(), prefix=f"/_sandbox/{backend.name}")
    routes: list[BaseRoute] = []
    for backend in core.backends:
        router = backend.router()
        routes.extend(router.routes)
        app.include_router(router)
    _install_error_handlers(app, core)
    quiet_dropped_connections()
    return SandboxMiddleware(app, core, routes)
