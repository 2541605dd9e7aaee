"""Stopping a sync: Ctrl-C (SIGINT) or SIGTERM to `leadloop sync`, or a cancel in Prefect, in the middle
of its pull against the sandbox. Each ends the run within 10 s, Cancelled in Prefect and `cancelled`
in the store with the writer's lease released, and the next sync finishes the work: it ledgers the same
value for every field as a sync that was never stopped."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from leadloop.sandbox.server import SandboxHandle

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(PROJECT / "playbooks" / "semiconductor.yaml")


def admin(handle: SandboxHandle) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(handle.ca_path)
    return session


@pytest.fixture(scope="module")
def sandbox(prefect_harness: str, workdir: Path, crm_sandbox) -> Iterator[dict[str, Any]]:
    """A small sandbox after `crm setup`."""
    connection = workdir / "connection.json"
    with crm_sandbox(connection, size="small", seed=13) as handle:
        yield {"handle": handle, "connection": connection, "api": prefect_harness, "session": admin(handle)}


def running_sync_run(since: float) -> Any:
    """The hourly-sync flow run started after `since` (a timestamp), once it is running."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["hourly-sync"])),
                                     sort=FlowRunSort.START_TIME_DESC, limit=5)
    return next((r for r in runs if r.start_time and r.start_time.timestamp() >= since), None)


def run_logs(flow_run_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                                limit=200)


def pulled_lines(flow_run_id: Any) -> list[str]:
    """The run's `pulled <crm> <stream>: …` lines in Prefect: a terminal's run keeps its console
    quiet, and its leadloop lines still reach the run's logs."""
    return [log.message for log in run_logs(flow_run_id)
            if log.name == "leadloop.sync" and log.message.startswith("pulled ")]


def local_run_states(prefect_home: Path) -> list[str]:
    """The state of each flow run in Prefect's local-mode database (its temporary server has stopped
    with the command)."""
    with sqlite3.connect(prefect_home / "prefect.db") as db:
        return [state for (state,) in db.execute("select state_type from flow_run")]


def flow_run_state(flow_run_id: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "prefect cancel"])
def test_a_sync_stopped_mid_pull_ends_within_10_s_cancelled_and_the_next_sync_finishes_the_work(
        sandbox, workdir, stop):
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.options import SyncOptions
    from leadloop.store.db import open_store

    handle, session = sandbox["handle"], sandbox["session"]
    store_url = f"sqlite:///{workdir / stop.replace(' ', '-')}.db"  # a store of its own: a full pull
    # reads that take 0.5 s each: the pull lasts long enough to be stopped in the middle
    session.post(f"{handle.admin_url}/faults", json={"rules": [
        {"endpoint": "query", "latency_ms": 500}, {"endpoint": "objects", "latency_ms": 500}]},
        timeout=30).raise_for_status()
    session.post(f"{handle.admin_url}/stats/reset", json={}, timeout=30).raise_for_status()
    started = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "leadloop.cli.app", "sync", "--connection-file", str(sandbox["connection"]),
         "--playbook", PLAYBOOK, "--store-url", store_url],
        env=dict(os.environ, PREFECT_API_URL=sandbox["api"], PYTHONFAULTHANDLER="1"), cwd=PROJECT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        # stopped once a stream has ended (its line reached the run's logs) and others still pull
        while (run := running_sync_run(started)) is None or session.get(
                f"{handle.admin_url}/stats", timeout=30).json()["calls"] < 8 or not pulled_lines(run.id):
            assert process.poll() is None, f"the sync ended before it was stopped: {process.stdout.read()}"
            assert time.monotonic() < deadline, "the sync never got into its pull"
            time.sleep(0.2)
        assert not [e for e in session.get(f"{handle.admin_url}/stats", timeout=30).json()["by_endpoint"]
                    .get("salesforce", {}) if e.startswith("PATCH")], "the sync was past its pull"
        asked = time.monotonic()
        if stop == "prefect cancel":
            from prefect.client.orchestration import get_client
            from prefect.states import Cancelling

            with get_client(sync_client=True) as client:
                client.set_flow_run_state(run.id, Cancelling(message="cancelled from the test"))
        else:
            process.send_signal(getattr(signal, stop))
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # where it hangs: faulthandler prints every thread's stack
            process.send_signal(signal.SIGABRT)
            output, _ = process.communicate(timeout=30)
            raise AssertionError(f"{stop}: the sync did not end within 30 s\n{output[-20000:]}") from None
        took = time.monotonic() - asked
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        session.delete(f"{handle.admin_url}/faults", timeout=30).raise_for_status()
    assert took < 10, f"{stop}: the sync took {took:.1f} s to end\n{output[-2000:]}"
    assert process.returncode != 0
    assert "Traceback" not in output and "httpx" not in output, output[-3000:]
    state = flow_run_state(run.id)
    assert state.is_cancelled(), (state, output[-2000:])
    assert "pulled salesforce" not in output  # the console stays quiet, the lines went to the run's logs
    with open_store(store_url) as store:
        assert store.lease() is None, "the stopped run kept the writer's lease"
        record = store.get_run(str(run.id))
        assert record.status == "cancelled" and record.error.startswith(("interrupted", "terminated")), record
        pulled_before = len(store.load_records().people)

    at = datetime.now(UTC)
    summary = hourly_sync(SyncOptions(connection_file=str(sandbox["connection"]), playbook=PLAYBOOK,
                                      store_url=store_url, at=at))
    assert summary.outcome == "ok" and summary.people_scored > 1000 and summary.fields_written > 0
    with open_store(store_url) as store:
        assert len(store.load_records().people) > pulled_before
        assert store.get_run(summary.run_id).status == "ok" and store.lease() is None
    # the recovery wrote what a run that was never stopped writes: a clean sync into a store of its
    # own, scoring as of the same moment, ledgers the same value for every field of every record
    clean_url = f"sqlite:///{workdir / stop.replace(' ', '-')}-clean.db"
    clean = hourly_sync(SyncOptions(connection_file=str(sandbox["connection"]), playbook=PLAYBOOK,
                                    store_url=clean_url, at=at))
    assert clean.outcome == "ok" and clean.fields_written > 0
    with open_store(store_url) as recovered, open_store(clean_url) as fresh:
        for crm in ("salesforce", "hubspot"):
            assert recovered.ledger(crm) == fresh.ledger(crm), crm


def test_ctrl_c_in_a_terminal_in_prefect_local_mode_ends_the_sync_within_10_s_cancelled(sandbox, workdir,
                                                                                        tmp_path):
    """The terminal sends Ctrl-C to its whole process group, Prefect's temporary server included: the
    server must outlive the interrupted run long enough to record it Cancelled."""
    handle, session = sandbox["handle"], sandbox["session"]
    store_url = f"sqlite:///{workdir / 'terminal'}.db"
    session.post(f"{handle.admin_url}/faults", json={"rules": [
        {"endpoint": "query", "latency_ms": 500}, {"endpoint": "objects", "latency_ms": 500}]},
        timeout=30).raise_for_status()
    session.post(f"{handle.admin_url}/stats/reset", json={}, timeout=30).raise_for_status()
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "leadloop.cli.app", "sync", "--connection-file", str(sandbox["connection"]),
         "--store-url", store_url],
        env=dict(env, PREFECT_HOME=str(tmp_path), PYTHONFAULTHANDLER="1"), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while session.get(f"{handle.admin_url}/stats", timeout=30).json()["calls"] < 8:
            assert process.poll() is None, f"the sync ended before it was stopped: {process.stdout.read()}"
            assert time.monotonic() < deadline, "the sync never got into its pull"
            time.sleep(0.2)
        asked = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGABRT)
            output, _ = process.communicate(timeout=30)
            raise AssertionError(f"the sync did not end within 30 s\n{output[-20000:]}") from None
        took = time.monotonic() - asked
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        session.delete(f"{handle.admin_url}/faults", timeout=30).raise_for_status()
    assert took < 10, f"the sync took {took:.1f} s to end\n{output[-2000:]}"
    assert process.returncode == 130, output[-2000:]
    assert "Traceback" not in output and "httpx" not in output, output[-3000:]
    assert "interrupted: the run is recorded as cancelled" in " ".join(output.split())
    assert local_run_states(tmp_path) == ["CANCELLED"]
    assert (tmp_path / "temporary-server.log").exists()  # the server's own output, off the terminal
    from leadloop.store.db import open_store

    with open_store(store_url) as store:
        assert store.lease() is None
        assert [run.status for run in store.runs()] == ["cancelled"]
