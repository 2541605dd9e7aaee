"""`leadloop review` refuses bad input in one message with exit code 2 and no traceback, before any
flow run: a store nothing was synced into (never created by asking), playbooks that cannot be read,
a reports folder that cannot be written, options the flow would refuse. Its summary shows the
figures side by side. (tests/flows/test_review_on_sandbox.py runs it against the sandbox.)"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadloop.cli.app import app
from leadloop.cli.output import console
from leadloop.cli.review import RUN_AGAIN, explain_review_failure, print_review, review
from leadloop.connectors.salesforce.client import AuthenticationError
from leadloop.flows.options import ModelReviewOptions
from leadloop.scoring.review import GroupRate, ModelReview
from leadloop.store.db import open_store
from leadloop.store.facade import StoreError

# what quiet_prefect sets in the process that runs the command: restored after each test
PREFECT_QUIET = ("PREFECT_LOGGING_LEVEL", "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL",
                 "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "PREFECT_SERVER_ANALYTICS_ENABLED",
                 "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "PREFECT_SERVER_LOGGING_LEVEL",
                 "PREFECT_LOGGING_EXTRA_LOGGERS", "LEADLOOP_STORE_PASSWORD")


@pytest.fixture(autouse=True)
def _process_left_as_it_was(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in PREFECT_QUIET:
        monkeypatch.delenv(name, raising=False)
    leadloop = logging.getLogger("leadloop")
    level = leadloop.level
    yield
    leadloop.setLevel(level)


@pytest.fixture
def connection(tmp_path: Path) -> Path:
    """Settings that load, for a HubSpot nobody answers at: bad input is found before any call."""
    path = tmp_path / "connection.json"
    path.write_text(json.dumps({"hubspot": {"host": "https://127.0.0.1:9", "access_token": "pat-na1-x"}}))
    return path


@pytest.fixture
def synced_store(tmp_path: Path) -> str:
    """A store a sync has pulled into, as far as the review's checks can tell (a stream's cursor)."""
    url = f"sqlite:///{tmp_path / 'synced.db'}"
    with open_store(url) as store:
        store.set_cursor("hubspot", "contacts", datetime(2026, 11, 1, tzinfo=UTC))
    return url


def leadloop_review(*args: str):
    return CliRunner().invoke(app, ["review", *args], env={"COLUMNS": "200"})


def refused(result, *expected: str) -> str:
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output, result.output
    unwrapped = " ".join(result.output.split())  # rich wraps stderr at the terminal's width
    for text in expected:
        assert text in unwrapped, result.output
    return unwrapped


def test_a_store_that_does_not_exist_is_refused_and_not_created(connection, tmp_path):
    store = tmp_path / "never-synced.db"
    result = leadloop_review("--connection-file", str(connection), "--store-url", f"sqlite:///{store}")
    refused(result, f"there is no store at {store}", "run `leadloop sync` first")
    assert not store.exists()


def test_a_store_nothing_was_synced_into_is_refused(connection, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).close()
    result = leadloop_review("--connection-file", str(connection), "--store-url", url)
    refused(result, "nothing has been synced into the store", "run `leadloop sync` first")


@pytest.mark.parametrize(("args", "expected"), [
    (["--connection-file", "/nonexistent/connection.json"],
     ["connection file /nonexistent/connection.json does not exist"]),
    (["--connection", "sandbox"], ["give --connection (a block) or --connection-file, not both"]),
    (["--playbook", "/nonexistent/current.yaml"], ["/nonexistent/current.yaml", "cannot read the file"]),
    (["--candidate-playbook", "/nonexistent/candidate.yaml"],
     ["the candidate playbook /nonexistent/candidate.yaml", "cannot read the file"]),
    (["--lookback-days", "3"], ["--lookback-days"]),
    (["--people-per-partition", "10"], ["--people-per-partition"]),
    (["--at", "next tuesday"], ["--at"]),
    (["--store-url", "mysql://leadloop@db/leadloop"], ["unsupported store database 'mysql'"]),
])
def test_bad_input_gets_one_clear_message_and_exit_2(connection, synced_store, args, expected):
    result = leadloop_review("--connection-file", str(connection), "--store-url", synced_store, *args)
    refused(result, *expected)


def test_a_connection_block_name_the_flow_would_refuse_is_bad_input(synced_store):
    result = leadloop_review("--connection", "Not A Block", "--store-url", synced_store)
    refused(result, "--connection: a connection block's name has only lowercase letters")


@pytest.mark.parametrize("command", ["sync", "rescore"])
def test_a_sync_or_rescore_names_a_refused_block_name_as_its_option(command, synced_store):
    result = CliRunner().invoke(app, [command, "--connection", "Not A Block", "--store-url", synced_store])
    refused(result, "--connection: a connection block's name has only lowercase letters")


def test_a_reports_folder_that_cannot_be_written_is_bad_input(connection, synced_store, tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("a file where the folder would go")
    result = leadloop_review("--connection-file", str(connection), "--store-url", synced_store,
                             "--reports-dir", str(blocker / "monthly"))
    refused(result, f"cannot write the report into {blocker / 'monthly'}", "is a file, not a folder")


def test_a_password_in_the_store_url_is_never_shown(connection):
    result = leadloop_review("--connection-file", str(connection), "--store-url",
                             "mysql://leadloop:hidden-pw@db/leadloop")
    assert "hidden-pw" not in refused(result, "unsupported store database")


def test_the_commands_defaults_are_the_flows():
    parameters = inspect.signature(review).parameters
    for name in ("lookback_days", "reports_dir", "people_per_partition", "candidate_playbook", "playbook"):
        assert parameters[name].default == ModelReviewOptions.model_fields[name].default, name


def test_a_failure_after_the_flow_started_says_what_failed_and_that_nothing_changed():
    message, hint, code = explain_review_failure(
        StoreError("cannot read the state store at sqlite:///s.db: disk I/O error"), "connection file c.json")
    assert code == 1 and "disk I/O error" in message and hint == RUN_AGAIN
    message, hint, code = explain_review_failure(
        AuthenticationError("cannot reach https://127.0.0.1:9/services/oauth2/token for the Salesforce "
                            "username-password login: ConnectionError"), "connection file c.json")
    assert code == 2 and "cannot reach" in message and "c.json" in hint
    assert explain_review_failure(ZeroDivisionError("bug"), "connection file c.json") is None


def a_review(version: str, auc: float | None, tiers: list[GroupRate], top_decile_converted: int = 0
             ) -> ModelReview:
    people, converted = sum(t.people for t in tiers), sum(t.converted for t in tiers)
    return ModelReview(version, people, converted, converted / people, auc, by_tier=tiers,
                       lift_by_decile=[GroupRate("top 10%", people // 10, top_decile_converted)])


def test_the_summary_shows_auc_lift_and_conversion_by_tier_side_by_side():
    reviews = {
        "current (live: semi-1)": a_review("semi-1", 0.812, [GroupRate("Sales priority", 40, 18),
                                                            GroupRate("Nurture", 360, 22)], 16),
        "candidate (new.yaml)": a_review("semi-2", 0.655, [GroupRate("Nurture", 400, 40)], 8),
    }
    with console.capture() as captured:
        print_review(reviews, 60, "reports/model-review-2026-12-06.html", "model-review on flow run f00")
    shown = captured.get()
    assert "0.812" in shown and "0.655" in shown
    assert "4.00×" in shown and "2.00×" in shown  # 16 and 8 of the top 40, against 40 of 400
    assert "18 of 40 (45.0%)" in shown and "40 of 400 (10.0%)" in shown
    assert "reports/model-review-2026-12-06.html" in shown and "flow run f00" in shown
    assert "No AUC" not in shown


def test_a_review_with_nothing_to_rank_says_why():
    reviews = {"current (live: semi-1)": a_review("semi-1", None, [GroupRate("Nurture", 50, 0)])}
    with console.capture() as captured:
        print_review(reviews, 60, "reports/r.html", "model-review on flow run f00")
    assert "No AUC: nobody (or everybody) converted since the cut-off" in captured.get()
