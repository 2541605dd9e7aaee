"""`leadloop review` as revops runs it (a process of its own) against a store one `leadloop sync` of
the sandbox filled: exit 0, an HTML report with every section, a one-screen summary with the real
figures of the live playbook and a candidate, and the artifact an operator reads in the Prefect UI.
A candidate that cannot be read, and a Salesforce login nobody answers, are one screen each with
exit code 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = PROJECT / "playbooks" / "semiconductor.yaml"
SCREEN = 30  # lines: the summary of two playbooks at 120 columns takes about 25


def leadloop(*args: str, home: Path, api_url: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own, with a fresh Prefect home and none of the caller's PREFECT_ or
    LEADLOOP_ settings (the test harness's log levels would hide what a user sees)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEADLOOP_"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", COLUMNS="120",
               PREFECT_API_URL=api_url)
    return subprocess.run([sys.executable, "-m", "leadloop.cli.app", *args], env=env, cwd=PROJECT,
                          capture_output=True, text=True, timeout=600)


def one_screen(result: subprocess.CompletedProcess[str], code: int) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    assert len(output.splitlines()) < SCREEN, output
    return output


def model_review_runs(store_url: str) -> int:
    from leadloop.store.db import open_store

    with open_store(store_url) as store:
        return len(store.runs(kind="model_review", limit=1000))


@pytest.fixture(scope="module")
def synced(crm_sandbox, prefect_harness: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A small sandbox after `crm setup` and one `leadloop sync` into a SQLite store, and a candidate
    playbook that rewards the opposite of buying behaviour (so it must rank worse)."""

    folder = tmp_path_factory.mktemp("review-cli")
    connection = folder / "connection.json"
    book = yaml.safe_load(PLAYBOOK.read_text())
    for rule in book["intent"]["rules"]:
        rule["points"] = -rule["points"]
    candidate = folder / "upside-down.yaml"
    candidate.write_text(yaml.safe_dump(book, sort_keys=False))
    with crm_sandbox(connection, size="small", seed=11) as handle:
        store_url = f"sqlite:///{folder / 'state.db'}"
        sync = leadloop("sync", "--connection-file", str(connection), "--playbook", str(PLAYBOOK),
                        "--store-url", store_url, home=folder / "prefect-home", api_url=prefect_harness)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        yield {"handle": handle, "connection": connection, "store_url": store_url, "folder": folder,
               "candidate": candidate, "api_url": prefect_harness}


def review(synced: dict[str, Any], *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    # The sandbox's buyers open an opportunity 20–60 days after their evaluation starts: 60 days is
    # the horizon on which intent at the cut-off can be judged (as in test_sync_flows).
    return leadloop("review", "--connection-file", str(synced["connection"]), "--store-url",
                    synced["store_url"], "--lookback-days", "60", *args, home=home, api_url=synced["api_url"])


def figures(output: str, label: str) -> list[str]:
    """The cells of a row of the printed summary."""
    row = next(line for line in output.splitlines() if line.startswith(f"│ {label} "))
    return [cell.strip() for cell in row.strip("│ ").split("│")][1:]


def artifact_markdown(flow_run_id: str) -> str:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["model-review"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)])))
    assert len(artifacts) == 1, artifacts
    return str(artifacts[0].data)


@pytest.mark.slow
def test_a_review_prints_real_figures_writes_the_html_report_and_the_artifact(synced, tmp_path):
    reports = tmp_path / "reports"
    result = review(synced, "--candidate-playbook", str(synced["candidate"]), "--reports-dir", str(reports),
                    home=tmp_path / "prefect-home")
    output = one_screen(result, 0)

    # three columns: the live playbook, the candidate the review learned from outcomes, the user's
    current_auc, learned_auc, candidate_auc = (float(cell) for cell in figures(output, "ROC AUC"))
    assert current_auc > 0.6 and candidate_auc < current_auc - 0.05 and learned_auc > 0.6, output
    people = figures(output, "people")
    assert people[0] == people[1] == people[2] and int(people[0].replace(",", "")) > 1000, output
    converted = int(figures(output, "converted")[0].split(" ")[0].replace(",", ""))
    assert converted > 10, output
    assert re.fullmatch(r"\d+\.\d\d×", figures(output, "top-decile lift")[0]), output
    assert "Conversion by tier" in output and re.search(r"Sales priority\s+│\s+\d+ of \d+ \(", output), output

    report = Path(re.search(r"^report\s+(\S+\.html)$", result.stdout, re.MULTILINE).group(1))
    assert report.parent == reports and report.is_file()
    html = report.read_text()
    for heading in ("<h1>Model review</h1>", "Conversion by tier", "Threshold backtest", "<h3>Signals</h3>",
                    "Where leads stall", "By profile and segment", "Suggested weight changes"):
        assert heading in html, heading
    assert "upside-down.yaml" in html and f"{current_auc:.3f}" in html and "<svg" in html

    page = re.escape(synced["api_url"].removesuffix("/api") + "/runs/flow-run/")
    flow_run_id = re.search(rf"^artifact\s+model-review, at {page}([0-9a-f-]{{36}})$", result.stdout,
                            re.MULTILINE).group(1)
    markdown = artifact_markdown(flow_run_id)
    assert f"| ROC AUC | {current_auc:.3f} | {learned_auc:.3f} | {candidate_auc:.3f} |" in markdown
    for section in (": conversion by tier", ": signals by lift", ": suggested weight changes"):
        assert markdown.count(section) == 3, (section, markdown)
    assert str(report) in markdown


@pytest.mark.slow
def test_a_candidate_that_cannot_be_read_is_bad_input_found_before_the_run(synced, tmp_path):
    before = model_review_runs(synced["store_url"])
    result = review(synced, "--candidate-playbook", "/nonexistent/candidate.yaml",
                    "--reports-dir", str(tmp_path / "reports"), home=tmp_path / "prefect-home")
    output = one_screen(result, 2)
    assert "the candidate playbook /nonexistent/candidate.yaml" in output and "cannot read the file" in output
    assert model_review_runs(synced["store_url"]) == before
    assert not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_a_salesforce_login_nobody_answers_is_one_screen_naming_the_login(synced, tmp_path):
    data = json.loads(synced["connection"].read_text())
    data["salesforce"].pop("session_id")
    data["salesforce"]["login_url"] = "https://127.0.0.1:9"
    unreachable = tmp_path / "unreachable.json"
    unreachable.write_text(json.dumps(data))
    result = leadloop("review", "--connection-file", str(unreachable), "--store-url", synced["store_url"],
                      "--reports-dir", str(tmp_path / "reports"), home=tmp_path / "prefect-home",
                      api_url=synced["api_url"])
    output = " ".join(one_screen(result, 2).split())
    assert "cannot reach https://127.0.0.1:9/services/oauth2/token for the Salesforce" in output
    assert str(unreachable) in output and data["salesforce"]["password"] not in output
    assert not (tmp_path / "reports").exists()
