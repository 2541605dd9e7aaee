"""`leadloop route` prints owners, tasks, due dates and notes for the bundled dataset, and refuses bad
input with a clear message and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadloop.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "semiconductor.yaml"
DATASET = ROOT / "playbooks" / "example_dataset.json"
AT = "2026-11-02T09:00:00Z"

runner = CliRunner()


def route(*args: str):
    return runner.invoke(app, ["route", *args], env={"COLUMNS": "250"})


def test_route_prints_owners_tasks_due_dates_and_handoff_notes_for_the_bundled_dataset():
    result = route("--playbook", str(PLAYBOOK), "--data", str(DATASET), "--at", AT)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Owners and tasks" in out
    assert "katrin.vogel@voltaris-semi.com" in out and "account owner" in out
    assert "Europe/Berlin" in out
    for title in ("Why now", "Buying committee", "Stage & next step", "Qualification questions"):
        assert title in out
    assert "Nurture" in out and "Suppressed or redirected" in out


def test_route_without_notes_keeps_to_the_tables():
    result = route("--playbook", str(PLAYBOOK), "--data", str(DATASET), "--at", AT, "--no-notes")
    assert result.exit_code == 0, result.output
    assert "Owners and tasks" in result.output and "Why now" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "next tuesday"], "is not an ISO time"),
        (["--data", "/nonexistent/data.json"], "cannot read"),
        (["--playbook", "/nonexistent/playbook.yaml"], "cannot read"),
    ],
)
def test_bad_input_gets_a_clear_message_and_exit_2(args, message):
    base = {"--playbook": str(PLAYBOOK), "--data": str(DATASET), "--at": AT}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = route(*[x for pair in base.items() for x in pair])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_playbook_whose_routing_names_an_unknown_tier_is_refused_with_the_path(tmp_path):
    text = PLAYBOOK.read_text(encoding="utf-8").replace("    - tier: Nurture\n", "    - tier: Nurturing\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")
    result = route("--playbook", str(broken), "--data", str(DATASET), "--at", AT)
    assert result.exit_code == 2
    assert "routing.actions[1].tier: unknown tier 'Nurturing'" in result.output
    assert "Traceback" not in result.output


def test_a_playbook_without_a_routing_section_is_refused(tmp_path):
    text = PLAYBOOK.read_text(encoding="utf-8")
    bare = tmp_path / "bare.yaml"
    bare.write_text(text[: text.index("\nrouting:")] + "\n", encoding="utf-8")
    result = route("--playbook", str(bare), "--data", str(DATASET), "--at", AT)
    assert result.exit_code == 2
    assert "no `routing:` section" in result.output


@pytest.mark.parametrize("name", ["semiconductor.yaml", "industrial.yaml"])
def test_both_example_playbooks_have_a_complete_routing_section_consistent_with_their_scoring(name):
    from leadloop.playbook.load import load_playbook
    from leadloop.playbook.routing import ActionKind, routing_problems

    playbook = load_playbook(ROOT / "playbooks" / name)
    section = playbook.routing
    assert section is not None
    problems = routing_problems(section, tiers=[t.name for t in playbook.tiers],
                                profiles=[p.id for p in playbook.profiles],
                                escalation_slas=[e.sla for e in playbook.escalations], stages=playbook.stages)
    assert problems == []
    assert {a.do for a in section.actions} == set(ActionKind)
    assert section.fallback_owner and section.territories and section.nurture.tracks
    assert set(section.stages) == set(playbook.stages)
    assert all(stage.questions for stage in section.stages.values())
