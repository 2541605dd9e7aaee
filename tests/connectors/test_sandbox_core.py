"""The sandbox core: HTTPS and the connection file, authentication, every transport fault, stats,
the admin API and persistence, shown with stand-in CRM backends (the real ones have their own
tests), so that each fault's effect is visible on its own."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from leadloop.sandbox.app import SandboxCore, create_app
from leadloop.sandbox.server import SandboxConfigError, SandboxHandle, running_sandbox, start_sandbox


class StandInBackend:
    """A minimal CRM: `GET .../ping`, `POST .../records` (batch write honouring rejections)."""

    def __init__(self, ctx: Any, name: str, prefix: str) -> None:
        self.ctx = ctx
        self.name = name
        self.prefix = prefix
        self.path_prefixes = (prefix,)
        self.records: dict[str, dict[str, Any]] = {}
        self.loaded_people = 0

    def router(self) -> APIRouter:
        router = APIRouter()
        base = f"{self.prefix}data/v{{version}}" if self.name == "salesforce" else f"{self.prefix}v3"

        @router.get(f"{base}/ping")
        def ping() -> dict[str, Any]:
            self.ctx.stats.records_read(self.name, "ping", 1)
            return {"ok": True, "lag": self.ctx.faults.search_lag_seconds(self.name)}

        @router.post(f"{base}/records")
        async def write(request: Request) -> dict[str, Any]:
            results = []
            for record in (await request.json())["records"]:
                problem = self.ctx.faults.rejection(self.name, "Lead", record)
                if problem is None:
                    self.records[record["Id"]] = record
                results.append({"id": record["Id"], "success": problem is None, "message": problem})
            self.ctx.stats.records_written(self.name, "records", sum(r["success"] for r in results))
            return {"results": results}

        if self.name == "salesforce":
            @router.post("/services/oauth2/token")
            def login() -> dict[str, str]:
                return {"access_token": self.ctx.sessions.issue("salesforce")}

        return router

    def load_world(self, world: Any) -> None:
        self.loaded_people = len(world.humans)

    def reset(self) -> None:
        self.records = {}
        self.loaded_people = 0

    def snapshot(self) -> dict[str, Any]:
        return {"records": self.records, "loaded_people": self.loaded_people}

    def restore(self, data: dict[str, Any]) -> None:
        self.records = data["records"]
        self.loaded_people = data["loaded_people"]

    def error_response(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
                       ) -> Response:
        return JSONResponse([{"errorCode": kind.upper(), "message": message, "crm": self.name}],
                            status_code=status, headers=headers)


STAND_INS = (lambda ctx: StandInBackend(ctx, "salesforce", "/services/"),
             lambda ctx: StandInBackend(ctx, "hubspot", "/crm/"))


class Client:
    def __init__(self, handle: SandboxHandle) -> None:
        self.handle = handle
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = str(handle.ca_path)
        self.sf_token = handle.connection["salesforce"]["session_id"]
        self.hs_token = handle.connection["hubspot"]["access_token"]

    def sf(self, path: str = "ping", token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.sf_token}"}
        method = "POST" if "json" in kwargs else "GET"
        return self.http.request(method, f"{self.handle.base_url}/services/data/v59.0/{path}",
                                 headers=headers, **kwargs)

    def hs(self, path: str = "ping") -> requests.Response:
        return self.http.get(f"{self.handle.base_url}/crm/v3/{path}",
                             headers={"Authorization": f"Bearer {self.hs_token}"})

    def faults(self, body: Any) -> requests.Response:
        return self.http.post(f"{self.handle.admin_url}/faults", json=body)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.handle.admin_url}/{path}", **kwargs)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def core_sandbox() -> Any:
    with running_sandbox(size="tiny", seed=3, backend_factories=STAND_INS) as handle:
        yield handle


@pytest.fixture
def client(core_sandbox: SandboxHandle) -> Any:
    c = Client(core_sandbox)
    yield c
    c.http.delete(f"{core_sandbox.admin_url}/faults")


# -- server, connection file, authentication ------------------------------------------------------

def test_connection_file_is_written_private_with_the_ca_beside_it(tmp_path: Path) -> None:
    connection_file = tmp_path / "conn" / "sandbox.json"
    with running_sandbox(empty=True, connection_file=connection_file, backend_factories=STAND_INS) as handle:
        assert stat.S_IMODE(connection_file.stat().st_mode) == 0o600
        connection = json.loads(connection_file.read_text())
        assert connection["ca_cert"] == str((tmp_path / "conn" / "ca.pem").resolve())
        assert connection["salesforce"]["instance_url"] == handle.base_url.rstrip("/")
        assert connection["salesforce"]["api_version"] == "59.0"
        assert {"username", "password", "security_token", "session_id"} <= set(connection["salesforce"])
        assert connection["hubspot"]["host"] == handle.base_url
        assert connection["sandbox_admin_url"] == f"{handle.base_url}/_sandbox"
        session = requests.Session()
        session.trust_env = False
        session.verify = connection["ca_cert"]  # the CA alone is enough to trust the server
        assert session.get(f"{handle.admin_url}/health").json()["status"] == "ok"


def test_the_handle_never_shows_tokens(core_sandbox: SandboxHandle) -> None:
    assert core_sandbox.connection["salesforce"]["session_id"] not in repr(core_sandbox)
    assert core_sandbox.connection["hubspot"]["access_token"] not in repr(core_sandbox)


def test_refuses_a_non_loopback_address_unless_allowed() -> None:
    with pytest.raises(SandboxConfigError, match="allow-remote"):
        start_sandbox(host="0.0.0.0", empty=True, backend_factories=STAND_INS)


def test_a_valid_token_passes_and_a_wrong_or_missing_one_gets_the_crms_own_401(client: Client) -> None:
    assert client.sf().status_code == 200
    wrong = client.sf(token="00Dnotatoken!xyz")
    assert wrong.status_code == 401
    assert wrong.json()[0] == {"errorCode": "UNAUTHORIZED", "message": wrong.json()[0]["message"],
                               "crm": "salesforce"}
    missing = client.http.get(f"{client.handle.base_url}/crm/v3/ping")
    assert missing.status_code == 401 and missing.json()[0]["crm"] == "hubspot"
    assert client.sf(token=client.hs_token).status_code == 401  # a HubSpot token is no Salesforce session


def test_the_login_endpoint_needs_no_token_and_issues_one_that_works(client: Client) -> None:
    token = client.http.post(f"{client.handle.base_url}/services/oauth2/token").json()["access_token"]
    assert client.sf(token=token).status_code == 200


def test_framework_errors_under_a_crm_prefix_come_in_that_crms_format(client: Client) -> None:
    response = client.sf("no/such/resource")
    assert response.status_code == 404
    assert response.json()[0]["errorCode"] == "NOT_FOUND" and response.json()[0]["crm"] == "salesforce"


def test_the_admin_api_answers_loopback_clients_only(core_sandbox: SandboxHandle) -> None:
    app = create_app(SandboxCore("https://127.0.0.1:1", backend_factories=STAND_INS))

    async def ask(client_host: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(client_host, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            return (await http.get("/_sandbox/stats")).status_code

    import asyncio

    assert asyncio.run(ask("10.1.2.3")) == 403
    assert asyncio.run(ask("127.0.0.1")) == 200


# -- faults ---------------------------------------------------------------------------------------

def _elapsed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def test_latency_with_jitter_slows_the_targeted_crm_only_and_stops_when_cleared(client: Client) -> None:
    assert client.faults({"crm": "salesforce", "latency_ms": 200, "jitter_ms": 50}).status_code == 200
    assert 0.2 <= _elapsed(client.sf) < 1.0
    assert _elapsed(client.hs) < 0.15
    client.faults({})
    assert _elapsed(client.sf) < 0.15


def test_429_every_n_calls_with_retry_after(client: Client) -> None:
    client.faults({"status_429_every": 3, "retry_after": 2})
    statuses = [client.sf() for _ in range(6)]
    assert [r.status_code for r in statuses] == [200, 200, 429, 200, 200, 429]
    assert statuses[2].headers["Retry-After"] == "2"
    assert statuses[2].json()[0]["errorCode"] == "RATE_LIMITED"
    client.faults({})
    assert all(client.sf().status_code == 200 for _ in range(4))


def test_429_without_retry_after_sends_no_header(client: Client) -> None:
    client.faults({"status_429_every": 1})
    response = client.sf()
    assert response.status_code == 429 and "Retry-After" not in response.headers


def test_5xx_ratio_follows_its_seed_and_stops_when_cleared(client: Client) -> None:
    def pattern() -> list[int]:
        client.faults({"error_5xx_ratio": 0.5, "seed": 11})
        return [client.sf().status_code for _ in range(20)]

    first, second = pattern(), pattern()
    assert first == second
    assert 3 <= first.count(503) <= 17 and set(first) == {200, 503}
    client.faults({})
    assert {client.sf().status_code for _ in range(10)} == {200}


def test_dropped_connections_break_every_nth_call_mid_response(client: Client) -> None:
    client.faults({"drop_connection_every": 2})
    assert client.sf().status_code == 200
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        client.sf()
    assert client.sf().status_code == 200
    client.faults({})
    assert all(client.sf().status_code == 200 for _ in range(4))


def test_slow_responses_outlast_a_client_timeout(client: Client) -> None:
    client.faults({"slow_response_ms": 800, "endpoint": "/ping"})
    with pytest.raises(requests.Timeout):
        client.sf(timeout=0.3)
    client.faults({})
    assert client.sf(timeout=0.3).status_code == 200


def test_sessions_expire_after_n_calls_and_a_new_login_works(client: Client) -> None:
    client.faults({"crm": "salesforce", "session_expire_after": 2})
    assert [client.sf().status_code for _ in range(2)] == [200, 200]
    expired = client.sf()
    assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "SESSION_EXPIRED"
    assert client.hs().status_code == 200  # the other CRM's tokens are untouched
    fresh = client.http.post(f"{client.handle.base_url}/services/oauth2/token").json()["access_token"]
    assert client.sf(token=fresh).status_code == 200
    client.faults({})
    assert client.sf().status_code == 200  # clearing the faults ends their effects


def test_faults_can_target_one_endpoint(client: Client) -> None:
    client.faults({"endpoint": "/records", "status_429_every": 1})
    assert client.sf().status_code == 200
    assert client.sf("records", json={"records": []}).status_code == 429


def test_rejections_and_search_lag_reach_the_backends(client: Client) -> None:
    client.faults({"crm": "salesforce", "search_lag_seconds": 4, "reject": [
        {"object": "Lead", "field": "Email", "value": "bad@example.com",
         "message": "Email is on a block list"},
        {"object": "Lead", "id": "00Q000000000002"},
    ]})
    records = [{"Id": "00Q000000000001", "Email": "ok@example.com"},
               {"Id": "00Q000000000002", "Email": "fine@example.com"},
               {"Id": "00Q000000000003", "Email": "bad@example.com"}]
    results = client.sf("records", json={"records": records}).json()["results"]
    assert [r["success"] for r in results] == [True, False, False]
    assert results[2]["message"] == "Email is on a block list"
    assert client.sf().json()["lag"] == 4
    assert client.hs().json()["lag"] == 0
    client.faults({})
    assert all(r["success"] for r in client.sf("records", json={"records": records}).json()["results"])
    assert client.sf().json()["lag"] == 0


def test_a_malformed_fault_gets_a_clear_400(client: Client) -> None:
    response = client.faults({"latency_ms": -1})
    assert response.status_code == 400 and "latency_ms" in response.json()["error"]
    response = client.faults({"status_429_evry": 2})
    assert response.status_code == 400 and "status_429_evry" in response.json()["error"]
    assert client.faults({"rules": [{"crm": "salesforce", "latency_ms": 1}, {"crm": "hubspot"}]}).ok


# -- stats, reset, seed ---------------------------------------------------------------------------

def test_stats_count_calls_by_crm_endpoint_and_method_and_records(client: Client) -> None:
    client.admin("POST", "stats/reset")
    client.sf()
    client.sf()
    client.sf("records", json={"records": [{"Id": "00Q000000000009"}]})
    client.hs()
    client.sf(token="wrong")
    stats = client.admin("GET", "stats")
    assert stats["calls"] == 5
    assert stats["by_crm"] == {"salesforce": 4, "hubspot": 1}
    assert stats["by_endpoint"]["salesforce"] == {"GET /services/data/vXX.X/ping": 3,
                                                   "POST /services/data/vXX.X/records": 1}
    assert stats["by_method"]["salesforce"] == {"GET": 3, "POST": 1}
    assert stats["by_status"]["salesforce"] == {"200": 3, "401": 1}
    assert stats["records_read"]["salesforce"] == {"ping": 2}
    assert stats["records_written_total"]["salesforce"] == 1
    assert client.admin("POST", "stats/reset")["calls"] == 0


def test_reset_empties_the_crms_and_seed_regenerates_them(client: Client,
                                                          core_sandbox: SandboxHandle) -> None:
    backend = core_sandbox.core.backends[0]
    assert client.admin("POST", "reset") == {"status": "empty"}
    assert backend.loaded_people == 0 and client.admin("GET", "health")["size"] is None
    seeded = client.admin("POST", "seed", json={"size": "tiny", "seed": 5})
    assert seeded["people"] == backend.loaded_people == 50
    assert client.admin("GET", "health")["seed"] == 5
    bad = client.http.post(f"{core_sandbox.admin_url}/seed", json={"size": "huge"})
    assert bad.status_code == 400 and "huge" in bad.json()["error"]


def test_the_clock_can_be_moved_for_the_backends(client: Client, core_sandbox: SandboxHandle) -> None:
    before = core_sandbox.core.context.now()
    client.admin("POST", "clock", json={"advance_seconds": 3600})
    assert (core_sandbox.core.context.now() - before).total_seconds() >= 3600
    client.admin("POST", "clock", json={})
    assert (core_sandbox.core.context.now() - before).total_seconds() < 60


# -- persistence ----------------------------------------------------------------------------------

def test_a_restart_with_a_data_dir_keeps_state_tokens_and_trust(tmp_path: Path) -> None:
    data_dir, connection_file = tmp_path / "data", tmp_path / "sandbox.json"
    with running_sandbox(size="tiny", seed=4, data_dir=data_dir, connection_file=connection_file,
                         backend_factories=STAND_INS) as first:
        Client(first).sf("records", json={"records": [{"Id": "00Q00000000000A", "Email": "x@y.com"}]})
        ca_before = Path(first.ca_path).read_bytes()
    assert (data_dir / "sandbox.db").exists()
    with running_sandbox(size="small", seed=9, data_dir=data_dir, connection_file=connection_file,
                         backend_factories=STAND_INS) as second:
        assert Path(second.ca_path).read_bytes() == ca_before
        client = Client(second)
        client.sf_token = json.loads(connection_file.read_text())["salesforce"]["session_id"]
        assert client.sf().status_code == 200
        backend = second.core.backends[0]
        assert "00Q00000000000A" in backend.records
        assert client.admin("GET", "health")["size"] == "tiny"  # the stored world wins over --size


def test_persist_on_demand_needs_a_data_dir(client: Client, core_sandbox: SandboxHandle) -> None:
    response = client.http.post(f"{core_sandbox.admin_url}/persist")
    assert response.status_code == 400 and "data-dir" in response.json()["error"]
