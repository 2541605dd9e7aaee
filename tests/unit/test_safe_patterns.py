"""Playbook patterns are matched in linear time (RE2): no pattern can make scoring hang on a crafted
URL, patterns the linear-time matcher cannot run are refused with their path, and case is ignored."""

import time
from pathlib import Path

import pytest
import typer
from test_scoring_fixture import NORTHWIND_YAML
from test_scoring_support import NOW, SITE, activity, engineer, score
from typer.testing import CliRunner

from leadloop.cli import scoring as cli_scoring
from leadloop.crm.records import Account, Activity
from leadloop.playbook.compiled import classify_activity, classify_title
from leadloop.playbook.conditions import Subject, compile_condition
from leadloop.playbook.load import parse_playbook
from leadloop.playbook.model import Condition, PlaybookError

_DATASHEET_URLS = "urls: ['/docs/ds/pmic-?77']"  # assets[6], the PMIC-77 datasheet


def with_datasheet_urls(*patterns: str) -> str:
    """The pinned playbook with the PMIC-77 datasheet's URL patterns replaced (YAML single quotes)."""
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in patterns)
    assert _DATASHEET_URLS in NORTHWIND_YAML
    return NORTHWIND_YAML.replace(_DATASHEET_URLS, f"urls: [{quoted}]", 1)


def problems_of(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as info:
        parse_playbook(text)
    return info.value.problems


@pytest.mark.timeout(30)
def test_a_catastrophic_pattern_cannot_make_scoring_hang():
    # Python's re backtracks through 2^50000 ways of splitting the a's before giving up on the '!'.
    playbook = parse_playbook(with_datasheet_urls("/docs/ds/pmic-?77", "(a+)+$"))
    crafted, matching = f"{SITE}/{'a' * 50_000}!", f"{SITE}/{'a' * 50_000}"
    started = time.perf_counter()
    result = score(
        [engineer("p1"), engineer("p2")],
        [activity("p1", "asset_download", 2, url=crafted), activity("p2", "asset_download", 2, url=matching)],
        playbook=playbook,
    )
    assert time.perf_counter() - started < 5
    assert result.cards["p1"].intent == 0
    assert result.cards["p2"].intent > 0  # the same pattern still recognizes the page it describes


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [
        (r"(a)\1", r"backreference \1"),
        (r"(?P<x>a)(?P=x)", "named backreference"),
        ("/docs/(?!internal)", "negative lookahead"),
        ("(?<=/docs)/ds", "lookbehind"),
        ("(?>a+)b", "atomic group"),
        ("a++b", "possessive quantifier"),
        (r"pdf\Z", r"\Z"),
    ],
)
def test_patterns_the_linear_time_matcher_cannot_run_are_refused_with_their_path(pattern, feature):
    (problem,) = problems_of(with_datasheet_urls("/docs/ds/pmic-?77", pattern))
    assert problem.startswith(
        f"assets[6].match.urls: /{pattern}/ uses a feature the linear-time matcher does not support "
        f"({feature}"
    )
    assert "(line " in problem


def test_persona_and_condition_patterns_are_checked_too():
    broken = NORTHWIND_YAML.replace(r"patterns: ['\bdirector\b',", r"patterns: ['(?<!co)director\b',", 1)
    (problem,) = problems_of(broken)
    assert problem.startswith("personas.seniority[1].patterns: /(?<!co)director\\b/ uses a feature")
    with pytest.raises(ValueError, match=r"negative lookahead \(\?!\.\.\.\)"):
        Condition(field="account.name", matches="^(?!test)")


def test_patterns_too_large_together_are_refused_before_scoring():
    # Each compiles alone; as the one alternation scoring uses they exceed RE2's memory budget.
    scattered = "[" + "".join(chr(0x4E00 + 3 * k) for k in range(300)) + "]"
    problems = problems_of(with_datasheet_urls(*(f"/x{i}{scattered}{{1000}}" for i in range(3))))
    assert any(p.startswith("assets[6].match.urls: these patterns together are too large") for p in problems)


def test_playbook_check_refuses_a_backreference_with_exit_2(tmp_path: Path):
    app = typer.Typer()
    cli_scoring.register(app)
    broken = tmp_path / "backreference.yaml"
    broken.write_text(with_datasheet_urls("/docs/ds/pmic-?77", r"(a)\1"), encoding="utf-8")
    result = CliRunner().invoke(app, ["playbook", "check", str(broken)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "assets[6].match.urls: /(a)\\1/ uses a feature the linear-time matcher" in result.output
    assert "(backreference \\1); rewrite it without backreferences" in result.output
    assert "Traceback" not in result.output


def test_patterns_still_ignore_case():
    playbook = parse_playbook(with_datasheet_urls("/DOCS/DS/PMIC-?77"))
    for url in (f"{SITE}/docs/ds/pmic-77.pdf", f"{SITE}/Docs/DS/PMIC77.PDF?utm_id=1"):
        download = Activity(id="x", person_id="p", occurred_at=NOW, kind="asset_download", url=url)
        found = classify_activity(playbook, download)
        assert found is not None and found.id == "pmic77_datasheet"
    upper = NORTHWIND_YAML.replace(r"patterns: ['\bdirector\b',", r"patterns: ['\bDIRECTOR\b',", 1)
    assert classify_title(parse_playbook(upper), "Director, Power Products").seniority == "director"
    is_gmbh = compile_condition(Condition(field="account.name", matches=r"\bgmbh$"), {})
    assert is_gmbh(Subject(None, Account(id="a", name="Voltra Automotive GmbH")))
    assert not is_gmbh(Subject(None, Account(id="b", name="Voltra Automotive Inc")))
