"""`make serve` as a user runs it: `python -m leadloop.deployments.serve` on a free port with a private
PREFECT_HOME and state folder (sandbox size tiny). It comes up with the four deployments pointing at
the block `sandbox`; an hourly sync started from the deployment's defaults completes against the
sandbox; one SIGINT (a Ctrl-C) then stops the server, the worker, the sandbox and every process
they started within 10 s."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

PROJECT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def processes_with(marker: str) -> dict[int, str]:
    """pid → command line of every live process whose environment holds `marker` (every descendant of
    make serve inherits it, wherever it was reparented)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            stat = (entry / "stat").read_text()
            if stat[stat.rindex(")") + 2] == "Z":
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
        except OSError:
            continue
    return found


def wait_for(what: str, done: Callable[[], bool], timeout: float, output: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s\n" + "".join(output[-60:])
        time.sleep(1)


def test_make_serve_runs_an_hourly_sync_from_its_sandbox_block_and_one_ctrl_c_stops_everything(tmp_path):
    port, marker = free_port(), f"leadloop-serve-test-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEADLOOP_"))}
    env.update(LEADLOOP_SERVE_PORT=str(port), LEADLOOP_SERVE_DIR=str(tmp_path / "serve"),
               PREFECT_HOME=str(tmp_path / "prefect"), LEADLOOP_SERVE_SANDBOX_SIZE="tiny",
               PREFECT_WORKER_QUERY_SECONDS="2", SERVE_TEST_MARKER=marker)
    serve = subprocess.Popen([sys.executable, "-m", "leadloop.deployments.serve"], env=env, cwd=PROJECT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(serve.stdout.readline, "")), daemon=True)
    reader.start()
    api = f"http://127.0.0.1:{port}/api"
    http = requests.Session()
    http.trust_env = False
    try:
        wait_for("make serve came up",
                 lambda: "leadloop is served" in "".join(output) or serve.poll() is not None, 240, output)
        assert serve.poll() is None, "".join(output)
        deployment = http.get(f"{api}/deployments/name/hourly-sync/hourly-sync", timeout=30).json()
        assert deployment["parameters"]["options"]["connection"] == "sandbox"
        names = {d["name"] for d in http.post(f"{api}/deployments/filter", json={}, timeout=30).json()}
        assert {"hourly-sync", "rescore", "data-quality", "model-review"} <= names

        run = http.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={}, timeout=30).json()
        state: dict[str, str] = {}

        def finished() -> bool:
            state.update(http.get(f"{api}/flow_runs/{run['id']}", timeout=30).json()["state"])
            return state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")

        wait_for("the hourly sync finished", finished, 150, output)
        assert state["type"] == "COMPLETED", (state, "".join(output[-80:]))
        kept = http.get(f"{api}/flow_runs/{run['id']}", timeout=30).json()["parameters"]
        assert kept == deployment["parameters"]  # the block's name, no credential
        connection = json.loads((tmp_path / "serve" / "sandbox" / "connection.json").read_text())
        assert connection["hubspot"]["access_token"] not in json.dumps(kept)

        started = processes_with(marker)
        commands = " | ".join(started.values())
        assert "server start" in commands and "worker start" in commands and "sandbox serve" in commands
    finally:
        signalled = time.monotonic()
        if serve.poll() is None:
            serve.send_signal(signal.SIGINT)  # one Ctrl-C
        try:
            serve.wait(timeout=15)
        finally:
            stopped = time.monotonic() - signalled
            left = processes_with(marker)
            for pid in left:  # whatever a failure left behind, not to disturb other tests
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if serve.poll() is None:
                serve.kill()
    assert serve.returncode == 0, "".join(output[-40:])
    assert stopped < 10, f"stopping took {stopped:.1f} s"
    assert not left, f"still running after make serve stopped: {left}"
    assert "stopped in" in "".join(output[-5:])
