"""A score reps can read as a likelihood: the playbook's `calibration` (learned from outcomes by the
model review) maps each score to the share of people at that score who had an opportunity within its
horizon; the engine puts it on every card, the store keeps it, and the write-back shows it as a
percentage next to the score, written only along with the record's other changes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadloop.connectors.mapping import load_mapping
from leadloop.crm.changes import FieldUpdate, ObjectType
from leadloop.crm.dataset import load_dataset
from leadloop.crm.records import Crm
from leadloop.playbook.docs import playbook_markdown
from leadloop.playbook.load import parse_playbook
from leadloop.playbook.model import Calibration, Playbook, PlaybookError
from leadloop.scoring.calibration import likelihood_of, likelihoods
from leadloop.scoring.engine import ScoringResult, score_dataset
from leadloop.scoring.scorecard import ScoreCard
from leadloop.store import open_store
from leadloop.store.writeplan import (
    desired_person_fields,
    field_updates,
    ledger_text,
    percent_points,
    plan_writes,
)
from leadloop.sync.pipeline import previous_cards, scorecards_from_stored

ROOT = Path(__file__).resolve().parents[2]
SEMI_TEXT = (ROOT / "playbooks" / "semiconductor.yaml").read_text(encoding="utf-8")
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

CALIBRATION = """
calibration:
  horizon_days: 90          # "an opportunity within 90 days"
  learned: 2026-12-06
  why: Share of people at each score who had an opportunity within 90 days, learned from outcomes.
  bins:                     # ascending min_score; likelihood = rate of the last bin with min_score <= score
    - {min_score: 0, rate: 0.004, people: 1510, converted: 6}
    - {min_score: 22.5, rate: 0.031, people: 400, converted: 12}
    - {min_score: 40, rate: 0.12, people: 150, converted: 18}
    - {min_score: 60, rate: 0.45, people: 40, converted: 18}
"""


def with_calibration(text: str = CALIBRATION) -> Playbook:
    return parse_playbook(SEMI_TEXT + text)


def problems_of(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as raised:
        with_calibration(text)
    return raised.value.problems


@cache
def scored(calibrated: bool) -> tuple[Playbook, ScoringResult]:
    playbook = with_calibration() if calibrated else parse_playbook(SEMI_TEXT)
    return playbook, score_dataset(playbook, load_dataset(ROOT / "playbooks" / "example_dataset.json"), NOW)


# -- the playbook section ------------------------------------------------------------------------------


def test_a_calibration_section_is_read_as_the_model_review_writes_it():
    calibration = with_calibration().calibration

    assert isinstance(calibration, Calibration)
    assert calibration.horizon_days == 90 and calibration.learned == date(2026, 12, 6)
    assert [(b.min_score, b.rate, b.people, b.converted) for b in calibration.bins][:2] == [
        (0, 0.004, 1510, 6), (22.5, 0.031, 400, 12)]


def test_a_playbook_without_calibration_has_none():
    assert parse_playbook(SEMI_TEXT).calibration is None


@pytest.mark.parametrize(("change", "expected"), [
    (("rate: 0.031", "rate: 1.5"), "calibration.bins[1].rate: must be less than or equal to 1"),
    (("rate: 0.004", "rate: -0.1"), "calibration.bins[0].rate: must be greater than or equal to 0"),
    (("converted: 6}", "converted: -1}"),
     "calibration.bins[0].converted: must be greater than or equal to 0"),
    (("people: 400", "people: 4.5"), "calibration.bins[1].people: must be a whole number"),
    (("horizon_days: 90", "horizon_days: 0"), "calibration.horizon_days: must be greater than or equal to 1"),
    (("learned: 2026-12-06", "learned: last week"), "calibration.learned: "),
    (("people: 400", "peeple: 400"), "calibration.bins[1].peeple: unknown key (did you mean 'people'?)"),
    (("min_score: 40", "min_score: 20"),
     "calibration: bins[2].min_score: 20 must be above bins[1].min_score 22.5"),
    (("min_score: 40", "min_score: 22.5"),
     "calibration: bins[2].min_score: 22.5 must be above bins[1].min_score 22.5"),
    (("rate: 0.12", "rate: 0.02"),
     "calibration: bins[2].rate: 0.02 is below bins[1].rate 0.031 (a higher score never means a lower"),
    (("converted: 18}\n    - {min_score: 60", "converted: 151}\n    - {min_score: 60"),
     "calibration: bins[2].converted: 151 is more than its 150 people"),
])
def test_a_broken_calibration_is_refused_with_the_key_that_is_wrong(change, expected):
    old, new = change
    assert CALIBRATION.count(old) == 1
    problems = problems_of(CALIBRATION.replace(old, new))

    assert any(p.startswith(expected) for p in problems), problems
    assert all("(line " in p for p in problems)


def test_a_calibration_needs_at_least_one_bin_and_a_why():
    problems = problems_of("\ncalibration:\n  horizon_days: 90\n  learned: 2026-12-06\n  bins: []\n")

    assert any(p.startswith("calibration.bins: ") for p in problems), problems
    assert any(p.startswith("calibration.why: is required") for p in problems), problems


def test_a_calibration_change_is_a_new_model_version():
    plain, calibrated = parse_playbook(SEMI_TEXT), with_calibration()
    nudged = with_calibration(CALIBRATION.replace("rate: 0.45", "rate: 0.46"))
    relearned = with_calibration(CALIBRATION.replace("learned: 2026-12-06", "learned: 2027-01-06"))

    versions = {plain.model_version, calibrated.model_version, nudged.model_version, relearned.model_version}
    assert len(versions) == 4
    assert calibrated.model_version == with_calibration().model_version  # stable across loads


def test_the_playbook_docs_show_the_likelihood_of_each_score_band():
    markdown = playbook_markdown(with_calibration())

    assert "## Likelihood" in markdown and "within 90 days" in markdown and "2026-12-06" in markdown
    assert "| 22.5 | 3.1% | 400 | 12 |" in markdown
    assert "## Likelihood" not in playbook_markdown(parse_playbook(SEMI_TEXT))


# -- likelihood_of ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("score", "rate"), [
    (0, 0.004), (22.4, 0.004), (22.49, 0.004), (22.5, 0.031), (22.6, 0.031), (39.9, 0.031), (40, 0.12),
    (59.99, 0.12), (60, 0.45), (100, 0.45), (250, 0.45),
])
def test_a_score_takes_the_rate_of_the_last_bin_it_reaches(score, rate):
    assert likelihood_of(score, with_calibration().calibration) == rate


def test_a_score_below_the_first_bin_takes_the_first_bins_rate():
    calibration = with_calibration(CALIBRATION.replace("min_score: 0,", "min_score: 5,")).calibration
    assert likelihood_of(4.9, calibration) == 0.004
    assert likelihood_of(-3, with_calibration().calibration) == 0.004


def test_without_calibration_there_is_no_likelihood():
    assert likelihood_of(55.0, None) is None
    assert likelihoods([1.0, 55.0], None) == [None, None]


@given(st.lists(st.floats(min_value=-10, max_value=150, allow_nan=False), max_size=30))
def test_the_batch_lookup_is_the_single_lookup_and_never_falls_as_the_score_rises(scores):
    calibration = with_calibration().calibration
    assert likelihoods(scores, calibration) == [likelihood_of(s, calibration) for s in scores]
    ordered = likelihoods(sorted(scores), calibration)
    assert ordered == sorted(ordered)


# -- the engine and the store --------------------------------------------------------------------------


def test_the_engine_puts_each_scores_likelihood_on_its_card():
    playbook, result = scored(calibrated=True)

    cards = list(result.cards.values())
    assert cards and all(c.likelihood == likelihood_of(c.score, playbook.calibration) for c in cards)
    assert len({c.likelihood for c in cards}) >= 3  # the dataset spans the bins
    assert all(c.model_version == playbook.model_version for c in cards)


def test_the_engine_leaves_the_likelihood_empty_without_a_calibration():
    _, result = scored(calibrated=False)
    assert result.cards and all(c.likelihood is None for c in result.cards.values())


def test_calibration_changes_no_score_and_no_tier():
    _, plain = scored(calibrated=False)
    _, calibrated = scored(calibrated=True)
    assert {p: (c.score, c.tier) for p, c in plain.cards.items()} == {
        p: (c.score, c.tier) for p, c in calibrated.cards.items()}


def test_the_store_keeps_the_likelihood_and_cards_stored_before_it_still_load(sqlite_url):
    _, result = scored(calibrated=True)
    cards = dict(sorted(result.cards.items())[:5])
    with open_store(sqlite_url) as store:
        store.save_scorecards("run-1", cards.values())
        back = previous_cards(store)

    assert {p: c.likelihood for p, c in back.items()} == {p: c.likelihood for p, c in cards.items()}
    assert back == cards

    before = {k: v for k, v in next(iter(cards.values())).to_dict().items() if k != "likelihood"}
    before["scored_at"] = before["scored_at"].isoformat()
    [old] = scorecards_from_stored({"p": json.dumps(before, default=str)}).values()
    assert old.likelihood is None and old.score == before["score"]


# -- what the CRMs get ------------------------------------------------------------------------------------

SF = Crm.SALESFORCE


def card(likelihood: float | None, score: float = 64.3, tier: str = "Nurture",
         model: str = "m-1") -> ScoreCard:
    return ScoreCard(person_id="p1", account_id=None, model_version=model, scored_at=NOW, profile=None,
                     fit=40, intent=score - 40, account_fit=0, account_intent=0, score=score, tier=tier,
                     likelihood=likelihood)


def desired(c: ScoreCard) -> list[FieldUpdate]:
    return field_updates(SF, ObjectType.PERSON, "00QA", desired_person_fields(c), person_id=c.person_id)


def written(updates: list[FieldUpdate], ledger: dict | None = None) -> dict[tuple[str, str], str]:
    ledger = dict(ledger or {})
    ledger.update({(u.record_id, u.field): ledger_text(u.value) for u in updates})
    return ledger


def test_the_crms_get_the_likelihood_in_percent_with_one_decimal():
    assert desired_person_fields(card(0.45))["likelihood"] == 45.0
    assert desired_person_fields(card(0.0312))["likelihood"] == 3.1
    assert desired_person_fields(card(0.00449))["likelihood"] == 0.4
    assert desired_person_fields(card(None))["likelihood"] is None
    assert [percent_points(v) for v in (0.0, 1.0, 0.12345, 0.0005)] == [0.0, 100.0, 12.3, 0.1]


def test_the_mapping_names_the_likelihood_field_in_both_crms():
    mapping = load_mapping()
    assert mapping.salesforce.person_field("likelihood") == "LL_Likelihood__c"
    assert mapping.hubspot.person_field("likelihood") == "ll_likelihood"


def test_the_first_write_carries_the_likelihood():
    assert ("likelihood", 45.0) in [(u.field, u.value) for u in plan_writes(desired(card(0.45)), {})]


def test_a_likelihood_that_changes_alone_rides_along_with_the_next_write_instead_of_costing_one():
    ledger = written(desired(card(0.12, score=59.0)))
    crossed = card(0.45, score=60.1)  # a point across a bin's edge: same tier, score moved < 5

    assert plan_writes(desired(crossed), ledger) == []
    promoted = plan_writes(desired(card(0.45, score=60.1, tier="Sales priority")), ledger)
    assert {u.field: u.value for u in promoted}.items() >= {"tier": "Sales priority", "likelihood": 45.0,
                                                             "score": 60}.items()


def test_an_unchanged_likelihood_is_not_written_again():
    ledger = written(desired(card(0.45)))
    updates = plan_writes(desired(card(0.45, model="m-2")), ledger)
    assert [u.field for u in updates] == ["model_version"]


def test_removing_the_calibration_clears_a_likelihood_leadloop_wrote():
    ledger = written(desired(card(0.45)))
    updates = plan_writes(desired(card(None, model="m-2")), ledger)  # the new model has no calibration
    assert {u.field: u.value for u in updates} == {"model_version": "m-2", "likelihood": None}


def test_without_calibration_a_likelihood_never_written_is_not_cleared():
    # an install from before the likelihood existed: its ledger has no likelihood at all
    before = {k: v for k, v in written(desired(card(None))).items() if k[1] != "likelihood"}
    updates = plan_writes(desired(card(None, model="m-2")), before)
    assert [u.field for u in updates] == ["model_version"]
    assert "likelihood" not in [u.field for u in plan_writes(desired(card(None)), {})]
