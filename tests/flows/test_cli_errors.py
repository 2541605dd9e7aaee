"""`leadloop sync` when something is wrong, run as a user runs it (a process of its own): bad input or
configuration (a missing playbook, a broken connection file, a damaged store, credentials a CRM
refuses) is one screen with exit code 2, no traceback, the file or CRM named, found before anything
is written, and nothing stored lost. `--at` without a time zone is taken as UTC and said so. And a
password in `--store-url` never reaches the flow run's parameters, which Prefect keeps and shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from leadloop.cli.run import explain_failure
from leadloop.connectors.hubspot.retry import HubSpotError
from leadloop.connectors.mapping import CrmNotSetUp
from leadloop.connectors.salesforce.client import AuthenticationError
from leadloop.connectors.salesforce.retry import SalesforceCallError
from leadloop.sandbox.server import SandboxHandle
from leadloop.store.facade import StoreError

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(PROJECT / "playbooks" / "semiconductor.yaml")
SCREEN = 25  # lines


def leadloop(*args: str, home: Path, api_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own, with a fresh Prefect home and none of the caller's PREFECT_ or
    LEADLOOP_ settings (the test harness's log levels would hide what a user sees)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEADLOOP_"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", COLUMNS="120")
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run([sys.executable, "-m", "leadloop.cli.app", *args], env=env, cwd=PROJECT,
                          capture_output=True, text=True, timeout=600)


def one_screen(result: subprocess.CompletedProcess[str], code: int) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    assert len(output.splitlines()) < SCREEN, output
    return output


def stored_counts(store_url: str) -> dict[str, int]:
    from leadloop.store.db import open_store

    with open_store(store_url) as store:
        counts = {"runs": len(store.runs(limit=100_000))}
        for crm in ("salesforce", "hubspot"):
            counts[f"{crm} ledger"] = len(store.ledger(crm))
            counts[f"{crm} tasks"] = len(store.task_ledger(crm))
    return counts


def crm_calls(handle: SandboxHandle, reset: bool = False) -> dict[str, Any]:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(handle.ca_path)
    if reset:
        session.post(f"{handle.admin_url}/stats/reset", json={}, timeout=30).raise_for_status()
    return dict(session.get(f"{handle.admin_url}/stats", timeout=30).json())


def written(stats: dict[str, Any]) -> int:
    return sum(n for per_endpoint in stats.get("records_written", {}).values() for n in per_endpoint.values())


def edited_connection(source: Path, target: Path, crm: str, **changes: Any) -> Path:
    data = json.loads(source.read_text())
    for key, value in changes.items():
        if value is None:
            data[crm].pop(key, None)
        else:
            data[crm][key] = value
    target.write_text(json.dumps(data))
    return target


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "prefect-home"


@pytest.fixture
def offline_connection(tmp_path: Path) -> Path:
    """Settings that load, for a HubSpot nobody answers at: the bad-input cases never get that far."""
    path = tmp_path / "offline.json"
    path.write_text(json.dumps({"hubspot": {"host": "https://127.0.0.1:9", "access_token": "pat-na1-x"}}))
    return path


@pytest.fixture(scope="module")
def synced(crm_sandbox, prefect_harness: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A tiny sandbox after `crm setup` and one successful `leadloop sync` into a SQLite store."""

    folder = tmp_path_factory.mktemp("cli-errors")
    connection = folder / "connection.json"
    with crm_sandbox(connection, size="tiny", seed=13) as handle:
        store_url = f"sqlite:///{folder / 'state.db'}"
        first = leadloop("sync", "--connection-file", str(connection), "--playbook", PLAYBOOK,
                         "--store-url", store_url, home=folder / "prefect-home", api_url=prefect_harness)
        assert first.returncode == 0, first.stdout + first.stderr
        counts = stored_counts(store_url)
        assert counts["runs"] == 1 and counts["salesforce ledger"] > 0 and counts["hubspot ledger"] > 0
        yield {"handle": handle, "connection": connection, "store_url": store_url, "folder": folder,
               "api_url": prefect_harness}


def sync_again(synced: dict[str, Any], *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """A `leadloop sync` on the synced store (options given later win), with the sandbox's counts reset."""
    crm_calls(synced["handle"], reset=True)
    return leadloop("sync", "--connection-file", str(synced["connection"]), "--playbook", PLAYBOOK,
                    "--store-url", synced["store_url"], *args, home=home, api_url=synced["api_url"])


# -- bad input: found before the flow starts and before any CRM call --------------------------------


@pytest.mark.slow
def test_a_missing_playbook_is_bad_input_found_before_any_crm_call(synced, home):
    before = stored_counts(synced["store_url"])
    result = sync_again(synced, "--playbook", "/nonexistent/playbook.yaml", home=home)
    output = one_screen(result, 2)
    assert "/nonexistent/playbook.yaml" in output and "cannot read the file" in output
    assert crm_calls(synced["handle"])["calls"] == 0
    assert stored_counts(synced["store_url"]) == before


@pytest.mark.slow
def test_a_broken_connection_file_is_bad_input_found_before_any_crm_call(synced, home, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(synced["connection"].read_text()[:-40])
    before = stored_counts(synced["store_url"])
    result = sync_again(synced, "--connection-file", str(broken), home=home)
    output = one_screen(result, 2)
    assert f"connection file {broken} is not valid JSON" in output
    assert crm_calls(synced["handle"])["calls"] == 0
    assert stored_counts(synced["store_url"]) == before


def test_a_connection_file_missing_a_setting_names_the_file_and_the_field(tmp_path, home):
    connection = tmp_path / "connection.json"
    connection.write_text(json.dumps({"hubspot": {"host": "https://127.0.0.1:9"}}))
    result = leadloop("sync", "--connection-file", str(connection), "--store-url",
                      f"sqlite:///{tmp_path / 'state.db'}", home=home)
    output = one_screen(result, 2)
    assert f"connection file {connection} is not usable" in output and "hubspot.access_token" in output
    assert not (tmp_path / "state.db").exists()


def test_a_damaged_store_is_bad_input_and_left_as_it_was(tmp_path, home, offline_connection):
    store = tmp_path / "state.db"
    garbage = os.urandom(8192)
    store.write_bytes(garbage)
    result = leadloop("sync", "--connection-file", str(offline_connection), "--playbook", PLAYBOOK,
                      "--store-url", f"sqlite:///{store}", home=home)
    output = one_screen(result, 2)
    assert str(store) in output and "not a database" in output
    assert store.read_bytes() == garbage


def test_a_store_url_leadloop_cannot_use_is_bad_input(tmp_path, home, offline_connection):
    result = leadloop("rescore", "--connection-file", str(offline_connection), "--playbook", PLAYBOOK,
                      "--store-url", "mysql://leadloop:hidden-pw@db/leadloop", home=home)
    output = one_screen(result, 2)
    assert "unsupported store database 'mysql'" in output and "hidden-pw" not in output


# -- credentials a CRM refuses: configuration, found before anything is written ---------------------


@pytest.mark.slow
def test_a_wrong_hubspot_token_is_rejected_in_one_screen(synced, home, tmp_path):
    wrong = edited_connection(synced["connection"], tmp_path / "wrong-token.json", "hubspot",
                              access_token="pat-na1-00000000-0000-0000-0000-000000000000")
    before = stored_counts(synced["store_url"])
    result = sync_again(synced, "--connection-file", str(wrong), home=home)
    output = one_screen(result, 2)
    assert "HubSpot rejected the access token (401" in output and str(wrong) in output
    assert "expired" not in output and "pat-na1-0000" not in output
    assert written(crm_calls(synced["handle"])) == 0
    after = stored_counts(synced["store_url"])
    assert after == {**before, "runs": before["runs"] + 1}  # the failed run is on record, nothing else


@pytest.mark.slow
def test_a_wrong_salesforce_session_id_is_rejected_not_expired(synced, home, tmp_path):
    wrong = edited_connection(synced["connection"], tmp_path / "wrong-session.json", "salesforce",
                              session_id="00D000000000001!not-a-session", username=None, password=None,
                              security_token=None)
    before = stored_counts(synced["store_url"])
    result = sync_again(synced, "--connection-file", str(wrong), home=home)
    output = one_screen(result, 2)
    assert "Salesforce rejected the configured session id" in output and str(wrong) in output
    assert "expired" not in output and "not-a-session" not in output
    assert written(crm_calls(synced["handle"])) == 0
    after = stored_counts(synced["store_url"])
    assert after == {**before, "runs": before["runs"] + 1}


@pytest.mark.slow
def test_a_refused_salesforce_login_names_the_login_not_an_expiry(synced, home, tmp_path):
    wrong = edited_connection(synced["connection"], tmp_path / "wrong-password.json", "salesforce",
                              session_id=None, password="not-the-password")
    result = sync_again(synced, "--connection-file", str(wrong), home=home)
    output = one_screen(result, 2)
    assert "the Salesforce username-password login" in output and "was refused" in output
    assert "expired" not in output and "not-the-password" not in output
    assert written(crm_calls(synced["handle"])) == 0


# -- --at without a time zone -------------------------------------------------------------------------


@pytest.mark.slow
def test_at_without_a_time_zone_is_taken_as_utc_and_said_so(synced, home):
    before = stored_counts(synced["store_url"])
    result = sync_again(synced, "--at", "2026-12-06", "--dry-run", home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--at has no time zone: taken as UTC (2026-12-06T00:00:00+00:00)" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "people scored" in result.stdout
    assert written(crm_calls(synced["handle"])) == 0
    after = stored_counts(synced["store_url"])
    assert {k: v for k, v in after.items() if k != "runs"} == {k: v for k, v in before.items() if k != "runs"}


@pytest.mark.slow
def test_a_sync_into_crms_without_leadloops_fields_stops_at_the_first_refusal_and_says_to_run_crm_setup(
        crm_sandbox, prefect_harness, tmp_path, home):
    connection = tmp_path / "connection.json"
    with crm_sandbox(connection, size="tiny", seed=17, setup=False) as handle:
        store_url = f"sqlite:///{tmp_path / 'state.db'}"
        sync = ("sync", "--connection-file", str(connection), "--playbook", PLAYBOOK,
                "--store-url", store_url)
        first = leadloop(*sync, home=home, api_url=prefect_harness)
        screen = one_screen(first, first.returncode)
        assert first.returncode in (1, 2), screen
        assert "lacks fields leadloop writes" in first.stderr and "leadloop crm setup" in first.stderr
        # Salesforce's task upsert is refused first (its key is no external id yet); the run stops there
        # instead of going on to fail every write, HubSpot's included
        calls = crm_calls(handle)
        hubspot_writes = [endpoint for endpoint in calls["by_endpoint"]["hubspot"]
                          if "/batch/update" in endpoint or "/batch/create" in endpoint]
        assert calls["by_status"]["hubspot"].get("400", 0) == 0 and not hubspot_writes, calls["by_endpoint"]

        setup = leadloop("crm", "setup", "--connection-file", str(connection), home=home,
                         api_url=prefect_harness)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        second = leadloop(*sync, home=home, api_url=prefect_harness)
        assert second.returncode == 0, second.stdout + second.stderr
        from leadloop.store.db import open_store

        with open_store(store_url) as store:
            statuses = [row.status for crm in ("salesforce", "hubspot")
                        for row in store.task_ledger(crm).values()]
        assert statuses and set(statuses) == {"open"}, statuses  # each task delivered, none held back


# -- what each known failure is called, and its exit code ---------------------------------------------


def test_refused_credentials_are_configuration_until_something_was_written():
    refused = AuthenticationError("Salesforce rejected the configured session id")
    assert explain_failure(refused, wrote=False, connection="connection file c.json")[2] == 2
    _, hint, code = explain_failure(refused, wrote=True, connection="connection file c.json")
    assert code == 1 and "c.json" in hint and "next run picks up where this one stopped" in hint
    token = HubSpotError("GET /crm/v3/owners", 401, "INVALID_AUTHENTICATION", "no")
    message, hint, code = explain_failure(token, wrote=False, connection="connection file c.json")
    assert code == 2 and "HubSpot rejected the access token" in message and "c.json" in hint
    scope = HubSpotError("GET /crm/v3/owners", 403, "MISSING_SCOPES", "needs crm.objects.owners.read")
    assert "lacks a scope" in explain_failure(scope, wrote=False, connection="x")[1]


@pytest.mark.parametrize("error", [
    HubSpotError("POST /crm/v3/objects/contacts/search", 502, None, "Bad Gateway"),
    HubSpotError("GET /crm/v3/owners", None, "CONNECTION", "NewConnectionError"),
    SalesforceCallError("query:Lead", 500, "UNKNOWN_EXCEPTION", "boom"),
    StoreError("cannot write to the state store at sqlite:///s.db: disk I/O error"),
])
def test_a_run_that_fails_half_way_exits_1_and_names_what_failed(error):
    message, hint, code = explain_failure(error, wrote=False, connection="x")
    assert code == 1 and "next run picks up where this one stopped" in hint
    assert ("HubSpot" in message or "Salesforce" in message or "state store" in message)


def test_crms_without_leadloops_fields_are_configuration_until_something_was_written():
    missing = CrmNotSetUp("HubSpot", "POST /crm/v3/objects/companies/batch/update",
                          'Property "ll_account_fit" does not exist')
    message, hint, code = explain_failure(missing, wrote=False, connection="connection file c.json")
    assert code == 2 and "HubSpot lacks fields" in message and "leadloop crm setup" in hint
    assert explain_failure(missing, wrote=True, connection="connection file c.json")[2] == 1


def test_an_unknown_error_keeps_its_traceback():
    assert explain_failure(ZeroDivisionError("bug"), wrote=False, connection="x") is None


# -- the store password stays out of Prefect -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
def test_a_password_in_the_store_url_never_reaches_the_flow_run_parameters(synced, postgres_url,
                                                                          monkeypatch):
    from uuid import UUID

    from prefect.client.orchestration import get_client

    from leadloop.cli.run import flow_options
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.store.db import STORE_PASSWORD_ENV, open_store

    password = "pg-Secret-4711"
    user = postgres_url.split("://", 1)[1].split("@", 1)[0]
    with_password = postgres_url.replace(f"://{user}@", f"://{user}:{password}@", 1)
    monkeypatch.setenv(STORE_PASSWORD_ENV, "placeholder")  # restored (unset) after the test
    options = flow_options("sync", connection_file=str(synced["connection"]), playbook=PLAYBOOK,
                           store_url=with_password, dry_run=True)
    assert os.environ[STORE_PASSWORD_ENV] == password

    summary = hourly_sync(options)

    with get_client(sync_client=True) as client:
        parameters = client.read_flow_run(UUID(summary.run_id)).parameters
    assert parameters["options"]["store_url"] == options.store_url
    assert password not in json.dumps(parameters, default=str)
    with open_store(options.store_url or "") as store:  # the password came from the environment
        assert store.get_run(summary.run_id) is not None
