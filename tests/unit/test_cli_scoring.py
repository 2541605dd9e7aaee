"""`leadloop playbook check|docs`, `score` and `explain`: useful output, exit 2 with precise messages."""

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from test_scoring_fixture import NORTHWIND_YAML
from test_scoring_support import PLAYBOOKS, auto_account, datasheet_download, engineer, evk_request
from typer.testing import CliRunner

from leadloop.cli import scoring as cli_scoring
from leadloop.crm.dataset import Dataset, dataset_to_dict
from leadloop.crm.identity import resolve_identity
from leadloop.crm.records import Account

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


def test_score_and_explain_join_a_lead_to_its_account_by_email_domain_as_the_sync_does(app, tmp_path: Path):
    accounts = [
        auto_account("acc-voltra", website="https://www.voltra-auto.de"),
        # the same domain with fewer people: the domain stays with acc-voltra
        auto_account("acc-voltra-jp", name="Voltra Automotive Japan", domain="voltra-auto.de"),
        # a personal domain names nobody's employer
        Account(id="acc-google", name="Google", domain="gmail.com"),
    ]
    people = [
        engineer("p-contact", "acc-voltra", email="anna.keller@voltra-auto.de"),
        engineer("p-lead", None, title="Buyer II", email="m.vogt@voltra-auto.de"),
        engineer("p-private", None, email="m.vogt@gmail.com"),
        engineer("p-nowhere", None, email="j.doe@unknown-gmbh.example"),
    ]
    expected = {"anna.keller@voltra-auto.de": "acc-voltra", "m.vogt@voltra-auto.de": "acc-voltra",
                "m.vogt@gmail.com": None, "j.doe@unknown-gmbh.example": None}

    # the sync's identity step, on the same records as the CRMs hold them
    synced = resolve_identity(
        [replace(p, id=f"{'sf-contact' if p.account_id else 'sf-lead'}:{p.id}") for p in people],
        [replace(a, id=f"sf-account:{a.id}") for a in accounts],
    )
    crm_account = {canonical: crm_id.split(":", 1)[1] for crm_id, canonical in synced.links.items()
                   if crm_id.startswith("sf-account:")}
    assert {p.email: crm_account.get(p.account_id) for p in synced.people} == expected

    data = tmp_path / "dataset.json"
    dataset = Dataset(accounts=accounts, people=people, activities=[datasheet_download("p-lead")])
    data.write_text(json.dumps({"generated_at": "2026-11-01T12:00:00Z", **dataset_to_dict(dataset)}))
    result = run(app, "score", "--playbook", SEMI, "--data", str(data))
    assert result.exit_code == 0, result.output
    cards = {c["person_id"]: c for c in json.loads(result.stdout)["people"]}
    assert {p.email: cards[p.id]["account_id"] for p in people} == expected
    assert cards["p-lead"]["account_fit"] == cards["p-contact"]["account_fit"] > 0

    explained = run(app, "explain", "--playbook", SEMI, "--data", str(data),
                    "--person", "m.vogt@voltra-auto.de")
    assert explained.exit_code == 0, explained.output
    assert "Profile       none applies" not in explained.output
