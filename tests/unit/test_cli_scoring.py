"""`leadloop playbook check|docs`, `score` and `explain`: useful output, exit 2 with precise messages."""

import json
import tempfile
from pathlib import Path

import pytest
import typer
from test_scoring_fixture import NORTHWIND_YAML
from test_scoring_support import PLAYBOOKS, auto_account, datasheet_download, engineer, evk_request
from typer.testing import CliRunner

from leadloop.cli import scoring as cli_scoring
from leadloop.crm.dataset import Dataset, dataset_to_dict

# The pinned playbook and a small dataset written for it (the bundled ones are tuned for the demo).
_FOLDER = Path(tempfile.mkdtemp(prefix="leadloop-test-"))
SEMI = str(_FOLDER / "northwind.yaml")
Path(SEMI).write_text(NORTHWIND_YAML, encoding="utf-8")
DATA = str(_FOLDER / "dataset.json")
_DATASET = Dataset(
    accounts=[auto_account("acc-voltra")],
    people=[
        engineer("p-voltra-01", "acc-voltra", email="anna.keller@voltra-auto.de"),
        engineer("p-voltra-02", "acc-voltra", title="Buyer II", email="m.vogt@voltra-auto.de"),
    ],
    activities=[
        evk_request("p-voltra-01"),
        datasheet_download("p-voltra-01", 5),
        datasheet_download("p-voltra-02"),
    ],
)
Path(DATA).write_text(json.dumps({"generated_at": "2026-11-01T12:00:00Z", **dataset_to_dict(_DATASET)}))


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    cli_scoring.register(app)
    return app


def run(app, *args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize("name", ["semiconductor.yaml", "industrial.yaml"])
def test_both_example_playbooks_pass_check(app, name):
    result = run(app, "playbook", "check", str(PLAYBOOKS / name))
    assert result.exit_code == 0, result.output
    assert "valid playbook" in result.output


def test_a_broken_playbook_gives_path_precise_errors_and_exit_2(app, tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        Path(SEMI).read_text(encoding="utf-8").replace("      points: 28\n", "      points: lots\n")
    )
    result = run(app, "playbook", "check", str(broken))
    assert result.exit_code == 2
    assert "intent.rules[1].points: must be a number" in result.output
    assert "Traceback" not in result.output


def test_docs_render_a_markdown_table_of_every_signal(app):
    result = run(app, "playbook", "docs", SEMI)
    assert result.exit_code == 0
    assert "| Signal | Kind | What it means | Points | Cap | Decay | Routing consequence |" in result.output
    for rule_id in (
        "evk_request",
        "repeat_application_visits",
        "unsubscribed",
        "student",
        "evaluation_request",
    ):
        assert f"`{rule_id}`" in result.output


def test_score_writes_scorecards_as_json_and_lists_invalid_records(app, tmp_path: Path):
    data = json.loads(Path(DATA).read_text(encoding="utf-8"))
    data["people"].append({"id": "bad", "email": "not-an-email"})
    dataset = tmp_path / "data.json"
    dataset.write_text(json.dumps(data))
    out = tmp_path / "cards.json"
    result = run(
        app,
        "score",
        "--playbook",
        SEMI,
        "--data",
        str(dataset),
        "--at",
        "2026-11-01T12:00:00Z",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "people[2] (id bad): email: not an email address" in result.output
    document = json.loads(out.read_text())
    assert len(document["people"]) == 2 and document["invalid_records"]
    anna = next(c for c in document["people"] if c["person_id"] == "p-voltra-01")
    assert anna["tier"] == "Sales priority" and anna["escalation"]["sla"] == "4h"


def test_score_defaults_to_the_datasets_reference_time(app):
    result = run(app, "score", "--playbook", SEMI, "--data", DATA)
    assert result.exit_code == 0
    assert '"scored_at": "2026-11-01T12:00:00Z"' in result.output


def test_score_schema_prints_the_dataset_json_schema(app):
    result = run(app, "score", "--schema")
    assert result.exit_code == 0 and "activities" in json.loads(result.output)["properties"]


def test_explain_prints_the_reasons_for_one_person(app):
    result = run(app, "explain", "--playbook", SEMI, "--data", DATA, "--person", "Anna.Keller@voltra-auto.de")
    assert result.exit_code == 0, result.output
    assert "Sales priority" in result.output and "EVK-7710" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("explain", "--playbook", SEMI, "--data", DATA, "--person", "nobody@example.com"),
            "no person with email",
        ),
        (("score", "--playbook", SEMI, "--data", DATA, "--at", "yesterday"), "--at must be an ISO time"),
        (("score", "--playbook", SEMI, "--data", "/nonexistent/data.json"), "cannot read"),
        (("score", "--data", DATA), "score needs --playbook"),
        (("playbook", "check", "/nonexistent/playbook.yaml"), "cannot read the file"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(app, args, message):
    result = run(app, *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_dataset_that_is_not_json_exits_2(app, tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = run(app, "score", "--playbook", SEMI, "--data", str(bad))
    assert result.exit_code == 2 and "is not valid JSON (line 1" in result.output
