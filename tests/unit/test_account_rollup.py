"""The account roll-up keeps its rule for any set of people: the most engaged person counts fully, each
next one `decay_factor` times as much, up to `max_people`; a committee bonus for distinct roles; a cap.

The engine computes it for all accounts at once on arrays. These tests hold it to the rule as the
playbook states it, read one person at a time (`reference`).
"""

from dataclasses import dataclass
from functools import cache
from math import floor

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_scoring_fixture import NORTHWIND_YAML
from test_scoring_support import auto_account, committee, evk_request, score, semiconductor

from leadloop.playbook.load import parse_playbook
from leadloop.playbook.model import Playbook
from leadloop.scoring.engine import score_account
from leadloop.store.writeplan import whole_points


@dataclass(frozen=True)
class Member:
    person_id: str
    intent: float
    role: str | None
    disqualified: str | None = None


@cache
def playbook(**intent: object) -> Playbook:
    """The pinned semiconductor playbook with other `account.intent` settings."""
    data = yaml.safe_load(NORTHWIND_YAML)
    data["account"]["intent"].update(intent)
    return parse_playbook(yaml.safe_dump(data, sort_keys=False), source="rollup")


def reference(pb: Playbook, members: list[Member]) -> tuple[float, tuple[str, ...], int]:
    """Account intent, buying roles and engaged people, one person at a time."""
    section = pb.account
    engaged = sorted(
        (m for m in members if not m.disqualified and m.intent > 0), key=lambda m: (-m.intent, m.person_id)
    )
    total, factor = 0.0, 1.0
    for m in engaged[: section.intent.max_people]:
        total += m.intent * factor
        factor *= section.intent.decay_factor
    committee = section.committee
    assert committee is not None
    roles = tuple(
        sorted({m.role for m in engaged if m.role in committee.roles and m.intent >= committee.min_intent})
    )
    if len(roles) > 1:
        total += min(committee.cap, committee.points_per_role * (len(roles) - 1))
    total = min(total, section.intent.cap)
    return floor(total * 10.0 + 0.5) / 10.0, roles, len(engaged)


ROLES = [None, "other", "engineering", "quality", "procurement", "executive", "student"]
members_strategy = st.lists(
    st.builds(
        Member,
        person_id=st.sampled_from([f"p{i}" for i in range(12)]),
        intent=st.integers(0, 600).map(lambda tenths: tenths / 10),
        role=st.sampled_from(ROLES),
        disqualified=st.sampled_from([None, None, None, "student"]),
    ),
    max_size=14,
    unique_by=lambda m: m.person_id,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=members_strategy, max_people=st.integers(1, 6), decay=st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_account_intent_follows_the_rule_for_any_people(members, max_people, decay):
    pb = playbook(max_people=max_people, decay_factor=decay)
    got = score_account(pb, auto_account(), members)
    assert (got.intent, got.buying_roles, got.engaged_people) == reference(pb, members)
    # tiers are placed on the whole points the CRMs show (an intent of 39.5 is written, and placed, as 40)
    fit, intent = whole_points(got.fit), whole_points(got.intent)
    tiers = [t for t in pb.account.tiers if (t.min_fit is None or fit >= t.min_fit)]
    assert got.tier == next(t.name for t in tiers if t.min_intent is None or intent >= t.min_intent)


def test_only_max_people_count_and_the_first_three_are_named_in_id_order_on_ties():
    pb = playbook(max_people=4, decay_factor=0.5)
    members = [Member(f"p{i}", 20.0, "engineering") for i in (5, 3, 9, 1, 7, 2)]
    got = score_account(pb, auto_account(), members)
    assert got.intent == 37.5  # 20 + 10 + 5 + 2.5: the fifth and sixth person add nothing
    lines = [r for r in got.reasons if r.kind == "account"]
    assert [r.rule for r in lines[:3]] == ["p1", "p2", "p3"]
    assert lines[3].rule == "more_people" and lines[3].text == "+2.5 3 more engaged people (diminishing)"
    assert lines[1].text.endswith("intent 20 × 0.5)")


def test_disqualified_and_unengaged_people_are_left_out_and_committee_roles_need_min_intent():
    pb = playbook()
    members = [
        Member("p1", 30.0, "engineering"),
        Member("p2", 9.9, "quality"),  # below the committee's min_intent 10: engaged, but not a role
        Member("p3", 50.0, "procurement", disqualified="competitor"),
        Member("p4", 0.0, "executive"),
        Member("p5", 12.0, "procurement"),
    ]
    got = score_account(pb, auto_account(), members)
    assert got.engaged_people == 3
    assert got.buying_roles == ("engineering", "procurement")
    assert any(r.rule == "committee" and r.points == 8 for r in got.reasons)


def test_account_intent_is_capped_with_a_reason():
    pb = playbook(cap=40)
    got = score_account(
        pb, auto_account(), [Member("p1", 35.0, "engineering"), Member("p2", 30.0, "quality")]
    )
    assert got.intent == 40
    cap = [r for r in got.reasons if r.rule == "account_intent"]
    assert len(cap) == 1 and cap[0].points == -18.0  # 35 + 15 + one extra role's 8 = 58, cut to 40


def test_a_whole_dataset_rolls_up_like_its_accounts_scored_one_by_one():
    people = committee()
    acts = [evk_request("p1"), evk_request("p2"), evk_request("p3")]
    result = score(people, acts, [auto_account()])
    whole = result.accounts["acc-auto"]
    alone = score_account(semiconductor(), auto_account(), result.cards.values())
    assert (whole.intent, whole.tier, whole.buying_roles, whole.engaged_people) == (
        alone.intent,
        alone.tier,
        alone.buying_roles,
        alone.engaged_people,
    )
    by_id = {p.id: p for p in people}
    named = [r for r in whole.reasons if r.rule in by_id]
    assert len(named) == 3 and all(by_id[r.rule].name in r.text for r in named)  # by name, not by id
