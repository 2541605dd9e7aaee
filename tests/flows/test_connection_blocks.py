"""Credentials as a Prefect block, on a real Prefect engine and a real sandbox (size tiny):
`leadloop connect` saves the sandbox's connection (from its file, the environment or prompts), and the
four flows, given their deployments' default parameters with only `connection: <name>`, complete
against it. The runs' parameters hold the block's name and no secret; a block that does not exist
fails the run, and the CLI, with one message saying which and what to do."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
NAME = "flow-test-sandbox"
SECRET_KEYS = ("session_id", "password", "security_token", "access_token", "consumer_secret")


def leadloop(*args: str, api_url: str, home: Path, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: a process of its own, none of the test's PREFECT_/LEADLOOP_ settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEADLOOP_"))}
    clean.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                 COLUMNS="160", **(env or {}))
    return subprocess.run([sys.executable, "-m", "leadloop.cli.app", *args], env=clean, cwd=PROJECT,
                          capture_output=True, text=True, timeout=300)


def secrets_of(connection_file: Path) -> list[str]:
    data = json.loads(connection_file.read_text())
    return [str(section[key]) for section in data.values() if isinstance(section, dict)
            for key in SECRET_KEYS if section.get(key)]


def deployment_parameters(deployment: str, connection: str) -> dict[str, Any]:
    """The deployment's default parameters in deployments/prefect.yaml, its block renamed."""
    spec = yaml.safe_load((PROJECT / "deployments" / "prefect.yaml").read_text())
    [found] = [d for d in spec["deployments"] if d["name"] == deployment]
    params = json.loads(json.dumps(found["parameters"]))
    assert params["options"]["connection"] == "sandbox"  # what make serve saves
    params["options"]["connection"] = connection
    return params


@pytest.fixture(scope="module")
def saved(crm_sandbox, prefect_harness: str, workdir: Path) -> Iterator[dict[str, Any]]:
    """A tiny sandbox after `crm setup`, its connection saved by `leadloop connect --name NAME`."""

    connection = workdir / "connection.json"
    with crm_sandbox(connection, size="tiny", seed=17) as handle:
        store_url = f"sqlite:///{workdir / 'state.db'}"
        result = leadloop("connect", "--name", NAME, "--connection-file", str(connection), "--store-url",
                          store_url, api_url=prefect_harness, home=workdir / "cli-home")
        assert result.returncode == 0, result.stdout + result.stderr
        yield {"handle": handle, "connection": connection, "store_url": store_url, "connect": result,
               "api_url": prefect_harness, "secrets": secrets_of(connection), "home": workdir / "cli-home"}


def flow_run_record(flow_run_id: Any) -> dict[str, Any]:
    """What the Prefect API keeps of a run and shows: its parameters, logs and artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    time.sleep(2)  # logs reach the API in the background
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {"parameters": run.parameters, "state": run.state,
            "text": json.dumps(run.parameters) + "\n".join(log.message for log in logs)
            + "\n".join(str(a.data) for a in artifacts)}


def test_connect_saves_the_block_and_shows_its_endpoints_but_no_secret(saved):
    from leadloop.flows.blocks import LeadloopConnection

    output = " ".join((saved["connect"].stdout + saved["connect"].stderr).split())
    assert f"saved leadloop connection {NAME}" in output and saved["handle"].base_url in output
    assert not [s for s in saved["secrets"] if s in output]
    block = LeadloopConnection.load(NAME)
    assert block.connection_settings().hubspot.access_token.get_secret_value() in saved["secrets"]
    assert block.store_url.get_secret_value() == saved["store_url"]


def test_connect_will_not_replace_a_block_unless_told(saved):
    again = leadloop("connect", "--name", NAME, "--connection-file", str(saved["connection"]),
                     api_url=saved["api_url"], home=saved["home"])
    assert again.returncode == 2 and "already exists" in again.stderr and "--overwrite" in again.stderr


@pytest.mark.parametrize("deployment", ["hourly-sync", "rescore", "data-quality", "model-review"])
def test_each_deployments_default_run_naming_only_the_block_completes_against_the_sandbox(saved, deployment):
    from leadloop.flows.data_quality import data_quality
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.model_review import model_review
    from leadloop.flows.rescore import rescore

    flow = {"hourly-sync": hourly_sync, "rescore": rescore, "data-quality": data_quality,
            "model-review": model_review}[deployment]
    params = deployment_parameters(deployment, NAME)
    state = flow(**params, return_state=True)
    assert state.is_completed(), state.message
    record = flow_run_record(state.state_details.flow_run_id)
    assert record["parameters"] == params  # the block's name, nothing taken from it
    assert not [s for s in saved["secrets"] if s in record["text"]]
    if deployment == "hourly-sync":  # it wrote to the sandbox, into the block's store
        from leadloop.store.db import open_store

        with open_store(saved["store_url"]) as store:
            assert store.ledger("salesforce") and store.ledger("hubspot")


def test_a_block_that_does_not_exist_fails_the_run_saying_which_and_what_to_do(saved):
    from leadloop.flows.hourly_sync import hourly_sync

    state = hourly_sync(options={"connection": "no-such-connection"}, return_state=True)
    assert state.is_failed()
    assert "no leadloop connection block named 'no-such-connection'" in state.message
    assert "leadloop connect --name no-such-connection" in state.message


def test_the_cli_reports_a_missing_block_in_one_screen_with_exit_2(saved, workdir):
    result = leadloop("sync", "--connection", "no-such-connection", api_url=saved["api_url"],
                      home=saved["home"])
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output and len(output.splitlines()) < 10, output
    output = " ".join(output.split())  # as wide as the terminal
    assert "no leadloop connection block named 'no-such-connection'" in output
    assert "leadloop connect --name no-such-connection" in output


def test_connect_from_the_leadloop_environment(saved):
    from leadloop.flows.blocks import LeadloopConnection

    hubspot = json.loads(saved["connection"].read_text())["hubspot"]
    result = leadloop("connect", "--name", "from-env", "--from-env", api_url=saved["api_url"],
                      home=saved["home"], env={"LEADLOOP_HUBSPOT__HOST": hubspot["host"],
                           "LEADLOOP_HUBSPOT__ACCESS_TOKEN": hubspot["access_token"],
                           "LEADLOOP_CA_CERT": str(saved["handle"].ca_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    block = LeadloopConnection.load("from-env")
    assert block.salesforce is None
    assert block.hubspot.access_token.get_secret_value() == hubspot["access_token"]
    assert block.ca_cert == saved["handle"].ca_path.read_text()


def test_connect_asks_in_a_terminal_without_echoing_the_secrets(saved, workdir):
    from leadloop.flows.blocks import LeadloopConnection

    hubspot = json.loads(saved["connection"].read_text())["hubspot"]
    store_url = "postgresql+psycopg://leadloop:pw-in-the-url@db.example.com/leadloop"
    answers = [("CRMs to connect", "hubspot", False), ("access token", hubspot["access_token"], True),
               ("API host", hubspot["host"], False),
               ("CA certificate file", str(saved["handle"].ca_path), False),
               ("State store URL", store_url, True)]  # (prompt, answer, typed without echo)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEADLOOP_"))}
    env.update(PREFECT_API_URL=saved["api_url"], PREFECT_HOME=str(saved["home"]), COLUMNS="160",
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    controller, terminal = pty.openpty()
    # a session of its own whose controlling terminal is the pty, as in a user's terminal: getpass
    # (typer's hidden prompts) turns the echo off on it
    process = subprocess.Popen([sys.executable, "-m", "leadloop.cli.app", "connect", "--name", "asked"],
                               stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=PROJECT,
                               start_new_session=True,
                               preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(terminal)
    screen = ""

    def read_until(text: str, timeout: float = 60) -> None:
        nonlocal screen
        deadline = time.monotonic() + timeout
        while text not in screen:
            assert time.monotonic() < deadline, f"no {text!r} on the screen:\n{screen}"
            if select.select([controller], [], [], 0.5)[0]:
                try:
                    screen += os.read(controller, 4096).decode(errors="replace")
                except OSError:  # the process ended and closed the terminal
                    assert text in screen, f"no {text!r} on the screen:\n{screen}"

    try:
        for prompt, answer, secret in answers:
            read_until(prompt)
            while secret and termios.tcgetattr(controller)[3] & termios.ECHO:
                time.sleep(0.05)  # a person types once the prompt waits, with the echo off
            os.write(controller, answer.encode() + b"\n")
            screen = screen.replace(prompt, "(answered)", 1)
        read_until("runs with it")
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    assert hubspot["access_token"] not in screen and "pw-in-the-url" not in screen
    block = LeadloopConnection.load("asked")
    assert block.hubspot.access_token.get_secret_value() == hubspot["access_token"]
    assert "pw-in-the-url" in block.store_url.get_secret_value()
