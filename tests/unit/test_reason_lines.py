"""The reasons a rep reads add up to the score they see, and stay true until the next rewrite.

Every written line says what its signal adds to the score today (after decay, caps and the blend
weights), in whole score points; with the "other signals" line the written numbers add up to the
written score; negatives and disqualifiers are always written; dates are absolute; and the written
tier is the band of the written (whole-point) score. Checked for every card of the sandbox's small
world, of the bundled example dataset and of a generated Northwind world (where the static cap
cuts fit), and rule by rule for how caps and floors are shared out among the lines they cut.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scoring_fixture import NORTHWIND_YAML
from test_scoring_support import activity, auto_account, card, datasheet_download, engineer, semiconductor

from leadloop.crm.dataset import dataset_from_dict, load_dataset
from leadloop.playbook.load import load_playbook, parse_playbook
from leadloop.playbook.model import Playbook
from leadloop.scoring.contributions import share, shares
from leadloop.scoring.engine import ScoringResult, score_dataset
from leadloop.scoring.scorecard import ReasonKind, ScoreCard
from leadloop.scoring.tiers import whole
from leadloop.store.writeplan import (
    OTHER_SIGNALS,
    REASONS_MAX_CHARS,
    desired_account_fields,
    desired_person_fields,
    whole_points,
)

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
WORLD_NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # bench/digest_demo.py's moment
_NUMBER = re.compile(r"^(±0|[+-]\d+(?:\.\d)?) ")
_STALE = re.compile(r"\bago\b|just now|\btoday\b|\byesterday\b")


@cache
def sandbox_world() -> tuple[Playbook, ScoringResult]:
    """The sandbox's small world (seed 7, as `leadloop sandbox serve --size small`), bundled playbook."""
    from leadloop.sandbox.export import world_to_dataset
    from leadloop.sandbox.world import generate_world

    dataset = dataset_from_dict(world_to_dataset(generate_world("small", 7, WORLD_NOW)))
    playbook = load_playbook(PLAYBOOKS / "semiconductor.yaml")
    return playbook, score_dataset(playbook, dataset, WORLD_NOW)


@cache
def example_dataset(name: str) -> tuple[Playbook, ScoringResult]:
    playbook = load_playbook(PLAYBOOKS / name)
    return playbook, score_dataset(playbook, load_dataset(PLAYBOOKS / "example_dataset.json"), WORLD_NOW)


@cache
def northwind_world() -> tuple[Playbook, ScoringResult]:
    """A generated world scored with bench/northwind.yaml, whose blend lets fit pass the static cap."""
    sys.path.insert(0, str(ROOT / "bench"))
    from generate_canonical import REFERENCE_TIME, generate

    playbook = load_playbook(ROOT / "bench" / "northwind.yaml")
    return playbook, score_dataset(playbook, generate(3000, 500, 60_000, seed=3), REFERENCE_TIME)


WORLDS = {
    "sandbox small world, semiconductor": sandbox_world,
    "example dataset, semiconductor": lambda: example_dataset("semiconductor.yaml"),
    "example dataset, industrial": lambda: example_dataset("industrial.yaml"),
    "generated world, northwind": northwind_world,
}


@pytest.fixture(scope="module", params=list(WORLDS))
def world(request) -> tuple[Playbook, ScoringResult]:
    return WORLDS[request.param]()


def written_numbers(text: str) -> list[float]:
    """The numbers the written lines start with (disqualifiers and escalations carry none)."""
    numbers = []
    for part in text.split("; "):
        part = part.removeprefix(f"{OTHER_SIGNALS} ")
        found = _NUMBER.match(part + " ")
        if found:
            numbers.append(0.0 if found.group(1) == "±0" else float(found.group(1)))
    return numbers


def band(playbook: Playbook, score: float, fit: float, intent: float) -> str:
    """The tier whose minimums the written (whole-point) values reach."""
    for tier in playbook.tiers:
        if all(low is None or value >= low for low, value in
               ((tier.min_score, score), (tier.min_fit, fit), (tier.min_intent, intent))):
            return tier.name
    return playbook.tiers[-1].name


def test_every_card_s_contributions_add_up_to_its_score(world):
    _, result = world
    off = {pid: sum(r.contribution for r in c.reasons) - c.score for pid, c in result.cards.items()}
    worst = max(off, key=lambda pid: abs(off[pid]))
    # fit, intent and the score are each rounded to one decimal before they are blended and written
    assert abs(off[worst]) <= 0.1, (worst, off[worst], result.cards[worst])


def test_every_card_s_written_lines_add_up_to_the_written_score(world):
    _, result = world
    for card_ in result.cards.values():
        written = desired_person_fields(card_)
        total = sum(written_numbers(written["reasons"]))
        assert abs(total - written["score"]) < 1e-6, (card_.person_id, written)
        assert len(written["reasons"]) <= REASONS_MAX_CHARS


def test_every_negative_and_disqualifier_on_a_card_is_written(world):
    _, result = world
    negatives = 0
    for card_ in result.cards.values():
        text = desired_person_fields(card_)["reasons"]
        for reason in card_.reasons:
            if reason.kind in (ReasonKind.NEGATIVE, ReasonKind.DISQUALIFIER):
                negatives += 1
                assert reason.says in text, (card_.person_id, reason, text)
    assert negatives  # the world has some to check


def test_no_written_reason_says_how_long_ago(world):
    _, result = world
    for card_ in result.cards.values():
        text = desired_person_fields(card_)["reasons"]
        assert not _STALE.search(text), (card_.person_id, text)
        assert "≥" not in text  # words, not formulas


def test_the_written_tier_is_the_band_of_the_written_score(world):
    playbook, result = world
    for card_ in result.cards.values():
        written = desired_person_fields(card_)
        reached = band(playbook, written["score"], written["fit_score"], written["intent_score"])
        if card_.disqualified:
            assert written["tier"] == playbook.lowest_tier
        elif card_.escalation is not None:  # an escalation can only raise the tier
            assert playbook.tier_rank(written["tier"]) <= playbook.tier_rank(reached)
        else:
            assert written["tier"] == reached, (card_.person_id, written)


def test_the_written_account_tier_is_the_band_of_the_written_account_scores(world):
    playbook, result = world
    for account in result.accounts.values():
        written = desired_account_fields(account)
        expected = next(
            (t.name for t in playbook.account.tiers
             if (t.min_fit is None or written["account_fit"] >= t.min_fit)
             and (t.min_intent is None or written["account_intent"] >= t.min_intent)),
            playbook.account.tiers[-1].name,
        )
        assert written["account_tier"] == expected, (account.account_id, written)


# -- how caps and floors are shared out ----------------------------------------------------------


def test_a_cap_cuts_the_positive_lines_in_proportion_and_leaves_the_negatives_whole():
    cut, lift = share(positive=40.0 + 20.0, negative=-5.0, target=30.0)
    assert (cut, lift) == (35.0 / 60.0, 1.0)  # 40·cut + 20·cut - 5 = 30
    assert share(positive=20.0, negative=-5.0, target=15.0) == (1.0, 1.0)  # nothing to cut


def test_a_floor_at_zero_shrinks_the_negatives_in_proportion():
    cut, lift = share(positive=6.0, negative=-15.0 - 10.0, target=0.0)
    assert (cut, lift) == (1.0, 6.0 / 25.0)  # 6 - 15·lift - 10·lift = 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.floats(-50, 80, allow_nan=False)), max_size=30),
       st.lists(st.floats(0, 100, allow_nan=False), min_size=5, max_size=5))
def test_shares_of_many_groups_are_each_group_s_share(lines, caps):
    group = np.array([g for g, _ in lines], dtype=np.int64)
    values = np.array([v for _, v in lines], dtype=np.float64)
    raw = np.bincount(group, weights=values, minlength=5)
    target = np.maximum(0.0, np.minimum(raw, np.array(caps)))  # a cap, then a floor at zero
    cut, lift = shares(values, group, target)
    for g in range(5):
        mine = values[group == g]
        alone = share(float(mine[mine > 0].sum()), float(mine[mine < 0].sum()), float(target[g]))
        assert cut[g] == pytest.approx(alone[0], rel=1e-9) and lift[g] == pytest.approx(alone[1], rel=1e-9)
        counted = np.where(mine > 0, mine * cut[g], mine * lift[g]).sum()
        assert abs(counted - target[g]) < 1e-6 * max(1.0, abs(mine).sum())


@cache
def northwind(**changes: float) -> Playbook:
    """The pinned Northwind playbook with intent group caps changed (`downloads=1000`)."""
    data = yaml.safe_load(NORTHWIND_YAML)
    for group in data["intent"]["groups"]:
        group["cap"] = changes.get(group["id"], group["cap"])
    return parse_playbook(yaml.safe_dump(data, sort_keys=False), source="northwind")


def downloads() -> list:
    """Three reference designs (over their rule cap of 30) and three datasheets: past the group's 35."""
    reference = [activity("p1", "asset_download", d, url="https://www.northwind-semi.com/reference-designs/rd-4812")
                 for d in (1, 3, 5)]
    return reference + [datasheet_download(days_ago=d) for d in (2, 4, 6)]


def test_a_capped_intent_group_shares_its_cap_among_its_lines_in_proportion():
    weight = semiconductor().blend.contact_intent
    uncapped = card([engineer()], downloads(), [auto_account()], playbook=northwind(downloads=1000))
    capped = card([engineer()], downloads(), [auto_account()], playbook=northwind())
    free = {r.rule: r.contribution for r in uncapped.reasons if r.kind == "intent" and r.contribution}
    cut = {r.rule: r.contribution for r in capped.reasons if r.kind == "intent" and r.contribution}
    assert set(free) == set(cut) == {"reference_design_download", "technical_download"}
    assert abs(sum(cut.values()) - weight * 35) < 1e-9  # the group's cap, in score points
    ratios = {rule: cut[rule] / free[rule] for rule in cut}
    assert abs(ratios["reference_design_download"] - ratios["technical_download"]) < 1e-12
    assert any(r.kind == "cap" and r.contribution == 0 for r in capped.reasons)  # the cap line explains


def test_an_unsubscribe_counts_only_down_to_zero_intent():
    glance = [activity("p1", "page_view", 3, url="https://www.northwind-semi.com/applications/automotive/bms")]
    left = card([engineer()], [*glance, activity("p1", "unsubscribe", 1)], [auto_account()])
    assert left.intent == 0
    intent_lines = [r for r in left.reasons if r.kind in ("intent", "negative")]
    unsubscribe = next(r for r in intent_lines if r.rule == "unsubscribed")
    assert unsubscribe.points == -15 and unsubscribe.contribution < 0
    assert abs(sum(r.contribution for r in intent_lines)) < 1e-9  # what the visit gave, and no more


def test_a_personal_email_at_a_well_fitting_account_lowers_the_score_by_its_weighted_points():
    work = card([engineer()], [], [auto_account()])
    personal = card([engineer(email="anna.k@gmail.com")], [], [auto_account()])
    line = next(r for r in personal.reasons if r.rule == "personal_email")
    assert line.contribution == semiconductor().blend.contact_fit * -15
    assert abs((personal.score - work.score) - line.contribution) < 0.1
    assert line.says in desired_person_fields(personal)["reasons"]


def test_the_static_cap_cuts_the_fit_lines_in_proportion():
    perfect = card([engineer(title="VP Engineering")], [], [auto_account(customer_type="customer")])
    assert perfect.score == semiconductor().blend.static_cap and perfect.intent == 0
    fit_lines = [r for r in perfect.reasons if r.kind in ("fit", "persona") and r.contribution]
    assert abs(sum(r.contribution for r in fit_lines) - perfect.score) < 1e-9
    account_fit = [r for r in fit_lines if r.rule.startswith("auto_")]
    shares_of = {r.contribution / (semiconductor().blend.account_fit * r.points) for r in account_fit}
    assert max(shares_of) - min(shares_of) < 1e-9 and max(shares_of) < 1  # one cut for all of them


def test_tiers_are_placed_on_whole_points_as_the_crm_shows_them():
    assert whole(np.array([24.5, 24.4, 0.5, -2.5, 100.0, -0.4])).tolist() == [25, 24, 1, -3, 100, 0]
    assert str(whole(np.array([-0.4]))[0]) == "0.0"


@settings(max_examples=300, deadline=None)
@given(st.integers(-10_000, 10_000))
def test_whole_points_in_scoring_and_in_the_write_plan_agree_on_every_one_decimal_score(tenths):
    value = tenths / 10
    assert whole(np.array([value]))[0] == whole_points(value)


def test_a_score_that_rounds_up_to_a_tier_s_minimum_is_in_that_tier():
    playbook = semiconductor()
    nurture = next(t for t in playbook.tiers if t.name == "Nurture")
    fixed = ScoreCard(person_id="p", account_id=None, model_version="m", scored_at=WORLD_NOW, profile=None,
                      fit=10, intent=0, account_fit=0, account_intent=0, score=nurture.min_score - 0.5,
                      tier="Nurture")
    assert desired_person_fields(fixed)["score"] == nurture.min_score
    _, result = sandbox_world()
    near = [c for c in result.cards.values() if c.score < nurture.min_score <= whole_points(c.score)]
    assert all(c.tier != playbook.tiers[-1].name or c.disqualified for c in near)
