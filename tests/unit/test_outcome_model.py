"""Issue #21's acceptance, measured on worlds leadloop never saw being made (tests/worlds/buying_cycle.py:
a latent buying-cycle model written from the source articles, not from the sandbox's generator).

Each world is scored as the model review scores it: as of a cut-off 120 days before its `now`, with
only what was known then; a person converted when an opportunity was created on their account (or
with them as a contact role) within the 120 days after. Seeds 1–3 train what the review learns,
seeds 4–6 are held out and measure it.

The signal fixes of the issue are measured on one world scored as of its `now`, against what the
generator knows and the CRM does not (who is disqualified, who works for a distributor, which clicks
a link scanner made, which lead belongs to which account, what a title in Korean means).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner
from worlds.buying_cycle import World, generate

from leadloop.cli import scoring as cli_scoring
from leadloop.crm.dataset import Dataset, dataset_to_dict
from leadloop.playbook.load import load_playbook_and_text, parse_playbook
from leadloop.playbook.model import Playbook
from leadloop.scoring.engine import ScoringResult, score_dataset
from leadloop.scoring.review import outcomes_after, roc_auc
from leadloop.scoring.scorecard import ReasonKind, ScoreCard

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks" / "semiconductor.yaml"
HORIZON_DAYS = 120  # the model review's default look-back
TRAIN_SEEDS = (1, 2, 3)
HELD_OUT_SEEDS = (4, 5, 6)
TIERS = ("Sales priority", "Nurture", "Unqualified for now")

# Measured on seeds 1–6: the shipped playbook's AUC was 0.820–0.911 (0.799–0.902 before issue #21's
# signal fixes), and a bootstrap of one world's people puts its standard error at 0.009–0.015. The
# floor sits three standard errors under the lowest seed: below it the playbook ranks worse, not a
# world drawn unluckily.
SHIPPED_AUC_FLOOR = 0.78
CEILING_MARGIN = 0.02  # the issue's: the candidate comes within 0.02 of gradient boosting
CALIBRATION_LIMIT = 0.05  # the issue's: mean |predicted − observed| over held-out deciles


@dataclass(frozen=True, slots=True)
class Cohort:
    """One world scored as of its cut-off, with each card's outcome over the horizon."""

    world: World
    past: Dataset
    cards: list[ScoreCard]
    labels: list[bool]

    @property
    def scores(self) -> list[float]:
        return [card.score for card in self.cards]

    @property
    def auc(self) -> float:
        return roc_auc(self.scores, self.labels)

    def conversion_by_tier(self) -> dict[str, tuple[int, int]]:
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for card, label in zip(self.cards, self.labels, strict=True):
            counts[card.tier][0] += 1
            counts[card.tier][1] += int(label)
        return {tier: (n, c) for tier, (n, c) in counts.items()}


@cache
def shipped() -> tuple[Playbook, str]:
    return load_playbook_and_text(SHIPPED)


@cache
def world(seed: int) -> World:
    return generate(seed)


def cutoff_of(w: World):
    return w.now - timedelta(days=HORIZON_DAYS)


@cache
def past_of(seed: int) -> Dataset:
    w = world(seed)
    return w.as_of(cutoff_of(w))


def cohort(playbook: Playbook, seed: int) -> Cohort:
    w = world(seed)
    cutoff = cutoff_of(w)
    past = past_of(seed)
    result = score_dataset(playbook, past, cutoff)
    outcomes = outcomes_after(past.people, w.dataset.opportunities, cutoff, timedelta(days=HORIZON_DAYS))
    cards = [result.cards[pid] for pid in sorted(result.cards)]
    return Cohort(w, past, cards, [outcomes[card.person_id].converted for card in cards])


@cache
def shipped_cohort(seed: int) -> Cohort:
    return cohort(shipped()[0], seed)


def rate(n_c: tuple[int, int]) -> float:
    return n_c[1] / n_c[0] if n_c[0] else 0.0


# ---------------------------------------------------------------------------------------------
# The world itself


def test_a_seed_always_draws_the_same_world():
    a, b = generate(11, people=800), generate(11, people=800)
    assert dataset_to_dict(a.dataset) == dataset_to_dict(b.dataset)
    assert dataset_to_dict(generate(12, people=800).dataset) != dataset_to_dict(a.dataset)


def test_the_world_speaks_the_shipped_catalog():
    """Nearly every activity is one the shipped playbook recognizes: the generator uses Voltaris's URLs,
    form names and campaign names, so what the playbook misses it misses for a reason of its own."""
    w = generate(13, people=1500)
    result = score_dataset(shipped()[0], w.dataset, w.now)
    unmatched = result.unmatched_activities
    total = len(w.dataset.activities)
    assert total > 10 * 1500  # a year and a half of activity
    assert unmatched.total <= 0.01 * total, unmatched


# ---------------------------------------------------------------------------------------------
# The shipped playbook


@pytest.mark.slow
@pytest.mark.parametrize("seed", TRAIN_SEEDS + HELD_OUT_SEEDS)
def test_the_shipped_playbook_ranks_who_converts(seed):
    c = shipped_cohort(seed)
    assert 0.015 < sum(c.labels) / len(c.labels) < 0.08  # a long-cycle B2B base rate: the world is sane
    assert c.auc >= SHIPPED_AUC_FLOOR, f"seed {seed}: AUC {c.auc:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", TRAIN_SEEDS + HELD_OUT_SEEDS)
def test_higher_tiers_convert_at_higher_rates(seed):
    by_tier = shipped_cohort(seed).conversion_by_tier()
    rates = [rate(by_tier.get(tier, (0, 0))) for tier in TIERS]
    assert all(by_tier.get(tier, (0, 0))[0] > 0 for tier in TIERS), by_tier
    assert rates[0] > rates[1] > rates[2], f"seed {seed}: {by_tier}"


# ---------------------------------------------------------------------------------------------
# What the review learns: a candidate, its calibration, and the ceiling


@dataclass(frozen=True, slots=True)
class Learned:
    candidate: Playbook
    yaml_text: str
    changes: list
    kept: int
    calibration: list
    train_X: np.ndarray
    train_y: list[bool]


@cache
def learned() -> Learned:
    from leadloop.scoring.learn import fit_calibration, fit_candidate, raw_features

    playbook, text = shipped()
    cards: list[ScoreCard] = []
    labels: list[bool] = []
    for seed in TRAIN_SEEDS:
        c = shipped_cohort(seed)
        cards += c.cards
        labels += c.labels
    w = world(TRAIN_SEEDS[-1])
    yaml_text, changes, kept = fit_candidate(
        text, playbook, cards, labels, learned_on=cutoff_of(w).date(), horizon_days=HORIZON_DAYS
    )
    candidate = parse_playbook(yaml_text, source="candidate")
    train = [cohort(candidate, seed) for seed in TRAIN_SEEDS]
    calibration = fit_calibration([s for c in train for s in c.scores], [y for c in train for y in c.labels])
    X = np.vstack(
        [
            raw_features(
                past_of(seed), [card.person_id for card in shipped_cohort(seed).cards], cutoff_of(world(seed))
            )
            for seed in TRAIN_SEEDS
        ]
    )
    return Learned(candidate, yaml_text, changes, kept, calibration, X, labels)


@cache
def candidate_cohort(seed: int) -> Cohort:
    return cohort(learned().candidate, seed)


@cache
def ceiling(seed: int) -> float:
    from leadloop.scoring.learn import ceiling_auc, raw_features

    c = shipped_cohort(seed)
    X = raw_features(c.past, [card.person_id for card in c.cards], cutoff_of(c.world))
    return ceiling_auc(learned().train_X, learned().train_y, X, c.labels)


@pytest.mark.slow
def test_the_candidate_changes_weights_with_evidence_and_stays_a_valid_playbook():
    result = learned()
    assert result.changes, "the review learned nothing from three worlds of outcomes"
    assert result.candidate.model_version != shipped()[0].model_version
    for change in result.changes:
        assert change.evidence and 0 <= change.confidence <= 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
def test_the_learned_candidate_ranks_held_out_worlds_at_least_as_well_as_the_shipped_playbook(seed):
    shipped_auc, candidate_auc = shipped_cohort(seed).auc, candidate_cohort(seed).auc
    assert candidate_auc >= shipped_auc, (
        f"seed {seed}: candidate {candidate_auc:.3f} < shipped {shipped_auc:.3f}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
def test_the_learned_candidate_comes_within_two_points_of_the_gradient_boosting_ceiling(seed):
    candidate_auc, ceiling_auc = candidate_cohort(seed).auc, ceiling(seed)
    assert candidate_auc >= ceiling_auc - CEILING_MARGIN, (
        f"seed {seed}: candidate {candidate_auc:.3f}, ceiling {ceiling_auc:.3f}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
def test_the_calibration_predicts_held_out_conversion_within_five_points(seed):
    from leadloop.scoring.learn import calibration_error

    c = candidate_cohort(seed)
    error = calibration_error(learned().calibration, c.scores, c.labels)
    assert error <= CALIBRATION_LIMIT, f"seed {seed}: calibration error {error:.3f}"


# ---------------------------------------------------------------------------------------------
# Signals that mean what they say, measured on one world as of its `now`

SIGNAL_SEED = 21


@cache
def signal_world() -> World:
    return generate(SIGNAL_SEED, people=3000)


@cache
def scored_now() -> ScoringResult:
    w = signal_world()
    return score_dataset(shipped()[0], w.dataset, w.now)


def top_decile(result: ScoringResult) -> set[str]:
    ranked = sorted(result.cards.values(), key=lambda card: (-card.score, card.person_id))
    cut = ranked[len(ranked) // 10 - 1].score
    return {card.person_id for card in ranked if card.score >= cut}


def test_disqualified_people_never_reach_the_top_decile():
    result, truth = scored_now(), signal_world().truth
    assert len(truth.disqualified) > 50
    top = top_decile(result)
    flagged = {pid for pid, card in result.cards.items() if card.disqualified}
    missed = sorted(truth.disqualified - flagged)
    assert not missed, f"{len(missed)} students, academics, competitors or partner-owned not disqualified"
    inside = sorted((result.cards[pid].score, pid, result.cards[pid].disqualified) for pid in flagged & top)
    assert not inside, f"{len(inside)} disqualified people in the top decile, e.g. {inside[-3:]}"


def test_a_disqualified_person_reads_the_disqualifier_first():
    result = scored_now()
    disqualified = [card for card in result.cards.values() if card.disqualified]
    wrong = [
        card.person_id
        for card in disqualified
        if not card.reasons or card.reasons[0].kind is not ReasonKind.DISQUALIFIER
    ]
    assert disqualified and not wrong, f"{len(wrong)} of {len(disqualified)}, e.g. {wrong[:3]}"


def test_distributor_and_partner_field_engineers_do_not_outscore_buyers():
    """They engage more than anyone, for their customers' designs: none of them belongs in the top
    decile, where the engineers of live programs are."""
    result, w = scored_now(), signal_world()
    channel = [result.cards[pid].score for pid in sorted(w.truth.channel_engineers)]
    buyers = [result.cards[pid].score for pid in sorted(w.truth.buyers_at(w.now)) if pid in result.cards]
    assert len(channel) > 20 and len(buyers) > 20
    channel_mean, buyers_mean = statistics.mean(channel), statistics.mean(buyers)
    assert channel_mean < buyers_mean, f"channel FAEs {channel_mean:.1f} ≥ live programs' {buyers_mean:.1f}"
    top = top_decile(result)
    leading = sorted(pid for pid in w.truth.channel_engineers if pid in top)
    assert not leading, f"{len(leading)} of {len(channel)} channel field engineers in the top decile"


def scanner_lift(world: World, machine_ids) -> list[tuple[float, str]]:
    """Score lifts of the people behind a link scanner that the scanner's opens and clicks cause."""
    playbook = shipped()[0]
    with_machines = score_dataset(playbook, world.dataset, world.now)
    without = score_dataset(playbook, world.without_activities(machine_ids), world.now)
    return sorted(
        (round(with_machines.cards[pid].score - without.cards[pid].score, 1), pid)
        for pid in world.truth.behind_scanner
    )


def test_link_scanner_clicks_do_not_lift_anyone():
    w = signal_world()
    lifts = scanner_lift(w, w.truth.machine_activities)
    assert len(lifts) > 50
    lifted = [(lift, pid) for lift, pid in lifts if lift > 0.5]
    assert not lifted, f"{len(lifted)} of {len(lifts)} people behind a scanner lifted, up to {lifted[-1]}"


def test_score_joins_a_lead_without_account_to_the_account_of_its_email_domain(tmp_path):
    w = generate(SIGNAL_SEED + 1, people=1500)
    assert len(w.truth.domain_only) > 20
    data = tmp_path / "world.json"
    data.write_text(
        json.dumps({"generated_at": w.now.isoformat(), **dataset_to_dict(w.dataset)}, default=str)
    )
    out = tmp_path / "cards.json"
    app = typer.Typer()
    cli_scoring.register(app)
    run = CliRunner().invoke(
        app,
        ["score", "--playbook", str(SHIPPED), "--data", str(data), "--out", str(out)],
        catch_exceptions=False,
    )
    assert run.exit_code == 0, run.output
    cards = {card["person_id"]: card for card in json.loads(out.read_text())["people"]}
    wrong = {
        pid: cards[pid]["account_id"]
        for pid, account in sorted(w.truth.domain_only.items())
        if cards[pid]["account_id"] != account
    }
    assert not wrong, f"{len(wrong)} of {len(w.truth.domain_only)} leads not joined, e.g. {list(wrong)[:3]}"


EXPECTED_ROLE = {"engineer": "engineering", "buyer": "procurement", "product_manager": "product_management"}


@pytest.mark.parametrize("kind", ["engineer", "buyer", "product_manager"])
def test_titles_in_german_french_japanese_korean_and_chinese_get_their_role(kind):
    result, w = scored_now(), signal_world()
    people = {p.id: p for p in w.dataset.people}
    local = {pid: lang for pid, (lang, k) in w.truth.local_titles.items() if k == kind}
    assert {lang for lang in local.values()} == {"de", "fr", "ja", "ko", "zh"}
    wrong = sorted(
        {
            (lang, people[pid].title, result.cards[pid].role)
            for pid, lang in local.items()
            if result.cards[pid].role != EXPECTED_ROLE[kind]
        }
    )
    assert not wrong, f"{len(wrong)} titles not read as {EXPECTED_ROLE[kind]}: {wrong}"


def test_director_titles_in_other_languages_read_as_director_seniority():
    """Their role is left open: "Directeur technique" is as vague as "Technical Director" in English."""
    result, w = scored_now(), signal_world()
    people = {p.id: p for p in w.dataset.people}
    directors = [pid for pid, (_, kind) in w.truth.local_titles.items() if kind == "director"]
    wrong = sorted(
        {
            (people[pid].title, result.cards[pid].seniority)
            for pid in directors
            if result.cards[pid].seniority not in ("director", "executive")
        }
    )
    assert directors and not wrong, f"{len(wrong)} director titles misread: {wrong}"
