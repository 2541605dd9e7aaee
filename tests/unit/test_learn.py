"""What the model review learns from outcomes (scoring/learn.py): a candidate playbook that moves only
the weights the evidence is clear about, written as a small edit of the live YAML; a calibration of
scores into likelihoods; and the raw-feature ceiling."""

from __future__ import annotations

import difflib
import itertools
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import yaml

from leadloop.crm.dataset import Dataset
from leadloop.crm.records import Account, Activity, ActivityKind, Person
from leadloop.playbook.load import load_playbook_and_text, parse_playbook
from leadloop.scoring import learn
from leadloop.scoring.review import CalibrationBin
from leadloop.scoring.scorecard import Reason, ReasonKind, ScoreCard

NOW = datetime(2026, 12, 6, tzinfo=UTC)
LEARNED_ON = date(2026, 12, 6)


@pytest.fixture(scope="module")
def shipped() -> tuple:
    return load_playbook_and_text("semiconductor")


def card(i: int, account_fit: float, lines: dict[str, float]) -> ScoreCard:
    """A card whose score is its account fit (weight 0.20) plus its intent lines (weight 0.25, the
    `contribution` of each line already in score points), as the engine's contributions add up."""
    reasons = tuple(Reason(ReasonKind.INTENT, rule, points / 0.25, f"+{points / 0.25:g} {rule}",
                           contribution=points) for rule, points in lines.items())
    intent = sum(lines.values()) / 0.25
    return ScoreCard(person_id=f"p{i:05d}", account_id=None, model_version="test", scored_at=NOW,
                     profile=None, fit=account_fit, intent=intent, account_fit=account_fit,
                     account_intent=0.0, score=round(0.2 * account_fit + sum(lines.values()), 1),
                     tier="Nurture", reasons=reasons)


def world(seed: int, n: int, workshop_worth: float, booth_worth: float, rare: int = 0
          ) -> tuple[list[ScoreCard], list[bool]]:
    """People with an account fit, 20 % of them at a workshop (5 points), 20 % scanned at a booth (5
    points), `rare` of them with an evaluation-kit request (8 points). Outcomes follow the score, with
    the workshop's and the booth's points worth `workshop_worth` and `booth_worth` times a point of
    the rest of the score; the rare request converts always."""
    rng = np.random.default_rng(seed)
    cards, labels = [], []
    for i in range(n):
        account_fit = float(rng.uniform(0, 100))
        lines = {}
        if rng.random() < 0.2:
            lines["workshop"] = 5.0
        if rng.random() < 0.2:
            lines["booth_scan"] = 5.0
        if i < rare:
            lines["evk_request"] = 8.0
        logit = -4.5 + 0.1 * (0.2 * account_fit + workshop_worth * lines.get("workshop", 0.0)
                              + booth_worth * lines.get("booth_scan", 0.0))
        cards.append(card(i, account_fit, lines))
        labels.append(bool(i < rare or rng.random() < 1 / (1 + np.exp(-logit))))
    return cards, labels


def changed(changes) -> dict[str, tuple[float, float]]:
    return {c.rule: (c.current, c.candidate) for c in changes}


def test_a_signal_that_predicts_is_raised_and_one_that_does_not_is_lowered_or_kept(shipped):
    playbook, text = shipped
    cards, labels = world(1, 6000, workshop_worth=3.0, booth_worth=0.0)
    _, changes, kept = learn.fit_candidate(text, playbook, cards, labels, learned_on=LEARNED_ON,
                                           horizon_days=90)
    moves = changed(changes)
    assert "workshop" in moves and moves["workshop"][1] > moves["workshop"][0] == 20
    assert moves["workshop"][1] <= 2 * 20  # at most ×2 in one review
    assert "booth_scan" not in moves or moves["booth_scan"][1] < moves["booth_scan"][0]
    assert "booth_scan" in moves  # 1,200 people with no effect at all: clear enough to lower it
    assert moves["booth_scan"][1] > 0  # never below zero: at most halved
    workshop = next(c for c in changes if c.rule == "workshop")
    assert workshop.where == "intent rule" and workshop.confidence >= 0.9
    assert "people had it" in workshop.evidence and "converted" in workshop.evidence
    assert kept == len(learn._learnable(playbook)) - len(changes)


def test_a_signal_with_too_little_evidence_is_kept(shipped):
    playbook, text = shipped
    cards, labels = world(2, 3000, workshop_worth=1.0, booth_worth=1.0, rare=6)
    _, changes, kept = learn.fit_candidate(text, playbook, cards, labels, learned_on=LEARNED_ON,
                                           horizon_days=90)
    assert "evk_request" not in changed(changes)  # six people, all converted: not enough to move it
    assert "workshop" not in changed(changes) and "booth_scan" not in changed(changes)  # worth what they say
    assert kept >= len(learn._learnable(playbook)) - 4  # at most the blend weights rescaled


def test_nothing_changes_when_everyone_or_nobody_converted(shipped):
    playbook, text = shipped
    cards, _ = world(3, 500, 1.0, 1.0)
    candidate, changes, kept = learn.fit_candidate(text, playbook, cards, [False] * len(cards),
                                                   learned_on=LEARNED_ON, horizon_days=90)
    assert changes == [] and kept == len(learn._learnable(playbook))
    assert parse_playbook(candidate).intent == playbook.intent


def test_the_candidate_loads_keeps_comments_and_differs_only_in_the_changed_lines(shipped):
    playbook, text = shipped
    cards, labels = world(1, 6000, workshop_worth=3.0, booth_worth=0.0)
    candidate_text, changes, _ = learn.fit_candidate(text, playbook, cards, labels, learned_on=LEARNED_ON,
                                                     horizon_days=90)
    candidate = parse_playbook(candidate_text)
    assert "candidate learned on 2026-12-06" in candidate.name
    rules = {r.id: r.points for r in candidate.intent.rules}
    for change in changes:
        if change.where == "intent rule":
            assert rules[change.rule] == change.candidate
        if change.where == "blend":
            assert getattr(candidate.blend, change.rule) == change.candidate
    assert sum(getattr(candidate.blend, k) for k in learn.BLEND_COMPONENTS) == pytest.approx(1.0)
    untouched = {r.id: r.points for r in playbook.intent.rules if r.id not in changed(changes)}
    assert all(rules[rule] == points for rule, points in untouched.items())

    live_lines = text.splitlines()
    new_lines = candidate_text.splitlines()
    assert [line for line in live_lines if line.lstrip().startswith("#")] == [
        line for line in new_lines if line.lstrip().startswith("#") and line in live_lines]
    removed = [line for line in difflib.ndiff(live_lines, new_lines) if line.startswith("- ")]
    # one line per changed weight (its points or blend weight) and the name: nothing else is rewritten
    assert len(removed) == len(changes) + 1, removed
    assert all("points:" in line or line[2:].lstrip().split(":")[0] in learn.BLEND_COMPONENTS
               or line.startswith("- name:") for line in removed), removed
    section = yaml.safe_load(candidate_text)["calibration"]
    assert section["horizon_days"] == 90 and section["learned"] == LEARNED_ON and section["bins"]
    assert candidate.calibration is not None and candidate.calibration.bins[0].min_score == 0


def test_a_second_calibration_replaces_the_first(shipped):
    playbook, text = shipped
    cards, labels = world(4, 1000, 1.0, 1.0)
    candidate_text, _, _ = learn.fit_candidate(text, playbook, cards, labels, learned_on=LEARNED_ON,
                                               horizon_days=90)
    bins = [CalibrationBin(0, 50, 0.01, 900, 9), CalibrationBin(50, 90, 0.3, 100, 30)]
    again = learn.with_calibration(candidate_text, bins, horizon_days=60, learned_on=LEARNED_ON)
    assert again.count("\ncalibration:") == 1
    section = yaml.safe_load(again)["calibration"]
    assert section["horizon_days"] == 60
    assert section["bins"] == [{"min_score": 0, "rate": 0.01, "people": 900, "converted": 9},
                               {"min_score": 50, "rate": 0.3, "people": 100, "converted": 30}]
    parse_playbook(again)


def test_calibration_bins_rise_with_the_score_and_count_everyone():
    rng = np.random.default_rng(5)
    scores = np.round(rng.uniform(0, 100, 3000), 1)
    labels = rng.random(3000) < 0.002 + (scores / 100) ** 3 * 0.5
    bins = learn.fit_calibration(scores.tolist(), labels.tolist(), min_people=40)
    assert len(bins) >= 4
    assert bins[0].min_score == 0
    assert all(a.min_score < b.min_score and a.rate <= b.rate for a, b in itertools.pairwise(bins))
    # edges on half points: the likelihood of a score is that of the whole number the CRM shows
    assert all(b.min_score % 1 == 0.5 for b in bins[1:])
    assert all(b.people >= 40 for b in bins)
    assert sum(b.people for b in bins) == 3000 and sum(b.converted for b in bins) == int(labels.sum())
    for b in bins:  # each bin's counts are the people whose scores fall in it
        inside = (scores >= b.min_score) & ((scores < b.max_score) | (b is bins[-1]))
        assert (b.people, b.converted) == (int(inside.sum()), int(labels[inside].sum()))
        assert b.rate == pytest.approx(b.converted / b.people)
    assert learn.likelihood(bins, 99.0) == bins[-1].rate and learn.likelihood(bins, 0.0) == bins[0].rate


def test_calibration_error_is_the_mean_gap_over_score_deciles():
    bins = [CalibrationBin(0, 10, 0.0, 10, 0), CalibrationBin(10, 19, 0.5, 10, 5)]
    scores = list(range(20))
    # deciles are pairs of people; by pair: observed 0, .5, 0, 0, 1 (predicted 0), then .5, 1, 0, .5, 1
    # (predicted .5): gaps 0+.5+0+0+1 and 0+.5+.5+0+.5 → 3.0 / 10 deciles (person by person it is 0.4)
    labels = [0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
    assert learn.calibration_error(bins, scores, [bool(y) for y in labels]) == pytest.approx(0.3)
    assert learn.calibration_error(bins, scores[:10], [False] * 10) == pytest.approx(0.0)


def test_raw_features_count_activities_by_window_and_read_no_playbook():
    account = Account(id="a1", industry="Automotive", employees=800, domain="acme.com")
    people = [Person(id="p1", email="x@acme.com", account_id="a1", title="Senior Hardware Engineer"),
              Person(id="p2", email="y@gmail.com", account_id="a1")]
    activities = [Activity(id=f"v{d}", person_id="p1", kind=ActivityKind.PAGE_VIEW,
                           occurred_at=NOW - timedelta(days=d), url="https://x.com/products/evaluation-kit")
                  for d in (3, 20, 200)]
    activities.append(Activity(id="late", person_id="p1", kind=ActivityKind.PAGE_VIEW,
                               occurred_at=NOW + timedelta(days=1)))
    dataset = Dataset(accounts=[account], people=people, activities=activities)
    X = learn.raw_features(dataset, ["p1", "p2", "nobody"], NOW)
    assert X.shape == (3, learn.raw_feature_count())
    page_view = list(ActivityKind).index(ActivityKind.PAGE_VIEW) * len(learn.WINDOWS)
    assert X[0, page_view:page_view + 4].tolist() == [1, 2, 2, 3]  # 7, 30, 90, 365 days; the future not
    assert X[1, page_view:page_view + 4].tolist() == [0, 0, 0, 0]
    assert not np.array_equal(X[0], X[1]) and not np.array_equal(X[1], X[2])
    empty = learn.raw_features(Dataset(), ["p1"], NOW)
    assert empty.shape == (1, learn.raw_feature_count())


def test_the_ceiling_finds_a_signal_in_raw_features_and_needs_both_outcomes():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(2000, 5))
    y = (X[:, 2] + 0.3 * rng.normal(size=2000)) > 1.2
    assert learn.ceiling_auc(X[:1000], y[:1000], X[1000:], y[1000:]) > 0.9
    noise = rng.normal(size=(2000, 5))
    assert learn.ceiling_auc(noise[:1000], y[:1000], noise[1000:], y[1000:]) < 0.65
    with pytest.raises(ValueError):
        learn.ceiling_auc(X[:100], [False] * 100, X[100:200], y[100:200])
