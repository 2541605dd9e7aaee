"""On the sandbox's own world, the playbook's tiers convert in their order: the model review's
conversion by tier, measured as the review measures it (the small world scored as of the default
lookback with only what was known then, outcomes since), over several seeds.

The sandbox's default world (seed 7) once showed the top tier converting below the middle one
(4 of 19 against 45 of 211). Half of that top tier (9 of 19) were already contacts on an opportunity
open at the cut-off: the world's evaluators keep requesting samples and talking to sales after their
opportunity opens, so they keep top-tier intent, and the review counted them as "not converted"
because no *new* opportunity followed. The review now leaves them out (`outcomes_after` marks them
`in_open_opportunity`); these tests pin both the order and that cause.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from leadloop.crm.dataset import dataset_from_dict
from leadloop.crm.records import ContactRole, Opportunity, Person
from leadloop.flows.model_review import as_of
from leadloop.flows.options import ModelReviewOptions
from leadloop.playbook.load import load_playbook
from leadloop.sandbox.export import world_to_dataset
from leadloop.sandbox.world import generate_world
from leadloop.scoring.engine import score_dataset
from leadloop.scoring.review import Outcome, outcomes_after, review_model, wilson_interval
from leadloop.scoring.scorecard import ScoreCard

NOW = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
SEEDS = range(1, 9)  # 7 is the sandbox's default world
LOOKBACK = timedelta(days=ModelReviewOptions().lookback_days)
CUTOFF = NOW - LOOKBACK
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@cache
def reviewed(seed: int) -> tuple[list[ScoreCard], dict[str, Outcome], tuple[str, ...]]:
    """The small world of `seed` as the model review sees it: cards scored at the cut-off, outcomes since."""
    playbook = load_playbook("semiconductor")
    dataset = dataset_from_dict(world_to_dataset(generate_world("small", seed, NOW)))
    outcomes = outcomes_after(dataset.people, dataset.opportunities, CUTOFF, LOOKBACK)
    cards = list(score_dataset(playbook, as_of(dataset, CUTOFF), CUTOFF).cards.values())
    return cards, outcomes, tuple(tier.name for tier in playbook.tiers)


def by_tier(seed: int, outcomes: dict[str, Outcome] | None = None) -> list[tuple[int, int]]:
    """(converted, people) per tier, best tier first, as the review reports them."""
    cards, reviewed_outcomes, tiers = reviewed(seed)
    review = review_model(cards, outcomes or reviewed_outcomes, lambda card: None, {}, tiers=tiers)
    rates = {group.group: (group.converted, group.people) for group in review.by_tier}
    return [rates.get(tier, (0, 0)) for tier in tiers]


def counted_as_before(seed: int) -> dict[str, Outcome]:
    """The outcomes as the review counted them before: people in open opportunities as non-converters."""
    return {key: dataclasses.replace(outcome, in_open_opportunity=False)
            for key, outcome in reviewed(seed)[1].items()}


def rate(pair: tuple[int, int]) -> float:
    return pair[0] / pair[1]


@pytest.mark.slow  # eight small worlds generated and scored: about 15 s
def test_each_seed_converts_best_in_the_top_tier_and_worst_in_the_bottom_one():
    rows = {seed: by_tier(seed) for seed in SEEDS}
    for seed, (top, middle, bottom) in rows.items():
        assert top[1] >= 8 and middle[1] >= 100, (seed, rows[seed])
        assert rate(top) > rate(middle) > rate(bottom), (seed, rows[seed])


@pytest.mark.slow  # eight small worlds generated and scored: about 15 s
def test_over_all_seeds_the_tiers_are_apart_beyond_their_95_percent_intervals():
    pooled = [tuple(map(sum, zip(*column, strict=True))) for column in zip(*(by_tier(s) for s in SEEDS),
                                                                           strict=True)]
    (top, middle, bottom) = pooled
    assert wilson_interval(*top)[0] > wilson_interval(*middle)[1], pooled
    assert wilson_interval(*middle)[0] > wilson_interval(*bottom)[1], pooled
    assert rate(top) > 1.4 * rate(middle), pooled


@pytest.mark.slow  # eight small worlds generated and scored: about 15 s
def test_the_default_world_inverted_because_its_top_tier_held_people_already_in_opportunities():
    cards, outcomes, tiers = reviewed(7)
    # (with the playbook of then, the old count put the top tier at 21.1% below Nurture's 21.3%; the
    # existing-customer account signal has since moved Nurture, so the old count's own inversion is gone,
    # but what it did to the top tier is not)
    top, _, _ = by_tier(7, counted_as_before(7))
    in_opportunity = [c for c in cards if c.tier == tiers[0] and outcomes[c.person_id].in_open_opportunity]
    assert len(in_opportunity) >= top[1] / 3, (len(in_opportunity), top)
    fixed_top, fixed_middle, _ = by_tier(7)
    assert fixed_top[1] == top[1] - len(in_opportunity)
    assert rate(top) < rate(fixed_top), "counting people in open opportunities as lost pulls the top down"
    assert rate(fixed_top) > rate(fixed_middle)


@pytest.mark.slow  # eight small worlds generated and scored: about 15 s
def test_over_all_seeds_top_tier_people_already_in_opportunities_convert_less_than_the_rest_of_it():
    already, others = [0, 0], [0, 0]
    for seed in SEEDS:
        cards, outcomes, tiers = reviewed(seed)
        for card in cards:
            if card.tier == tiers[0] and card.person_id in outcomes:
                outcome = outcomes[card.person_id]
                bucket = already if outcome.in_open_opportunity else others
                bucket[0] += outcome.converted
                bucket[1] += 1
    assert already[1] >= 30, already
    assert rate(already) < 0.75 * rate(others), (already, others)


# -- the outcome definition itself -----------------------------------------------------------------

def opportunity(key: str, created_days: int, *, contacts: tuple[str, ...] = (),
                closed_days: int | None = None, won: bool = False) -> Opportunity:
    created = T0 + timedelta(days=created_days)
    close = (T0 + timedelta(days=closed_days)).date() if closed_days is not None else None
    return Opportunity(id=key, account_id="acc-" + key, created_at=created, contact_ids=contacts,
                       is_closed=closed_days is not None, is_won=won, close_date=close)


def test_a_contact_on_an_opportunity_open_at_the_cutoff_is_left_out_of_the_review():
    people = [Person(id=p, account_id=None) for p in ("open", "closed-before", "closed-after", "role", "new")]
    opportunities = [
        opportunity("o1", -10, contacts=("open",)),  # created before the cut-off, still open
        opportunity("o2", -90, contacts=("closed-before",), closed_days=-5),  # lost before the cut-off
        opportunity("o3", -30, contacts=("closed-after",), closed_days=20, won=True),  # open at the cut-off
        opportunity("o4", -40),  # its contact comes as a Salesforce contact role
        opportunity("o5", 15, contacts=("new", "closed-before")),  # the conversion the score predicts
    ]
    roles = [ContactRole(id="r1", opportunity_id="o4", person_id="role")]
    outcomes = outcomes_after(people, opportunities, T0, timedelta(days=90), roles)

    assert {p for p, o in outcomes.items() if o.in_open_opportunity} == {"open", "closed-after", "role"}
    assert outcomes["new"].converted and outcomes["closed-before"].converted
    assert not outcomes["open"].converted
    cards = [ScoreCard(person_id=p.id, account_id=None, model_version="v1", scored_at=T0, profile=None,
                       fit=50.0, intent=50.0, account_fit=0.0, account_intent=0.0, score=50.0, tier="Nurture")
             for p in people]
    review = review_model(cards, outcomes, lambda card: None, {}, tiers=("Nurture",))
    assert (review.people, review.converted) == (2, 2)


def test_a_contact_role_on_a_new_opportunity_converts_its_person():
    people = [Person(id="p1", account_id="elsewhere")]
    opportunities = [opportunity("o1", 10)]  # on another account, no contact ids of its own
    roles = [ContactRole(id="r1", opportunity_id="o1", person_id="p1")]
    assert not outcomes_after(people, opportunities, T0, timedelta(days=90))["p1"].converted
    assert outcomes_after(people, opportunities, T0, timedelta(days=90), roles)["p1"].converted


@pytest.mark.slow
def test_the_review_population_is_everyone_scored_but_the_people_in_open_opportunities():
    cards, outcomes, tiers = reviewed(7)
    review = review_model(cards, outcomes, lambda card: None, {}, tiers=tiers)
    left_out = sum(1 for c in cards if c.person_id in outcomes and outcomes[c.person_id].in_open_opportunity)
    assert left_out > 0
    assert review.people == sum(1 for c in cards if c.person_id in outcomes) - left_out
