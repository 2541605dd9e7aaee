"""Fixtures for tests that drive the sandbox CRMs with the official clients over HTTPS.

`sandbox`: one in-process sandbox (size tiny, fixed seed) for the whole test session, with
`.connection`, `.ca_path`, `.base_url`, `.admin_url`, `.admin_get(path)`, `.admin_post(path, json)`
and `.reset_faults()`. Faults are cleared after every test that used it.
`sf`: a simple_salesforce.Salesforce on it; `hs`: a hubspot.HubSpot on it.
The session's sandbox is shared: a test that needs to reset, reseed or move the clock starts its own
with `sandbox.server.running_sandbox(...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from leadloop.sandbox.server import SandboxHandle, running_sandbox

SANDBOX_SEED = 7


def trusting_session(ca_path: str | Path) -> requests.Session:
    """A requests session that trusts only the sandbox CA and ignores proxy/CA environment variables."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_path)
    return session


class SandboxFixture:
    """A running sandbox, with shortcuts to its admin API."""

    def __init__(self, handle: SandboxHandle) -> None:
        self.handle = handle
        self.connection: dict[str, Any] = handle.connection
        self.ca_path = str(handle.ca_path)
        self.base_url = handle.base_url
        self.admin_url = handle.admin_url
        self.http = trusting_session(self.ca_path)

    def admin_get(self, path: str) -> Any:
        response = self.http.get(f"{self.admin_url}/{path.lstrip('/')}", timeout=60)
        response.raise_for_status()
        return response.json()

    def admin_post(self, path: str, json: Any = None) -> Any:
        url = f"{self.admin_url}/{path.lstrip('/')}"
        response = self.http.post(url, json=json if json is not None else {}, timeout=120)
        response.raise_for_status()
        return response.json()

    def reset_faults(self) -> None:
        response = self.http.delete(f"{self.admin_url}/faults", timeout=30)
        response.raise_for_status()

    def __repr__(self) -> str:
        return f"SandboxFixture({self.base_url})"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxFixture]:
    with running_sandbox(size="tiny", seed=SANDBOX_SEED) as handle:
        yield SandboxFixture(handle)


@pytest.fixture(autouse=True)
def _clear_sandbox_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset_faults()


@pytest.fixture
def sf(sandbox: SandboxFixture) -> Any:
    from simple_salesforce import Salesforce

    if "salesforce" not in sandbox.connection:
        pytest.skip("the sandbox has no Salesforce backend yet")
    sf_conn = sandbox.connection["salesforce"]
    return Salesforce(instance_url=sf_conn["instance_url"], session_id=sf_conn["session_id"],
                      session=trusting_session(sandbox.ca_path), version=sf_conn["api_version"])


@pytest.fixture
def hs(sandbox: SandboxFixture) -> Any:
    from hubspot import HubSpot

    if "hubspot" not in sandbox.connection:
        pytest.skip("the sandbox has no HubSpot backend yet")
    hs_conn = sandbox.connection["hubspot"]
    return HubSpot(access_token=hs_conn["access_token"], host=hs_conn["host"], ssl_ca_cert=sandbox.ca_path)
