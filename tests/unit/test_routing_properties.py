"""Properties routing holds for any mix of people: one owner per routed sales-priority person, no
task where outreach is suppressed, and the same decisions for the same inputs in any order."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from test_routing import NURTURE, SALES, UNQUALIFIED, section

from leadloop.crm.records import Account, CustomerType, Opportunity, Person
from leadloop.routing import Action, AssignmentState, OpenTask, SuppressionKind, TaskKind, route_all
from leadloop.scoring.scorecard import Escalation, ScoreCard

RULES = section()
KNOWN_OWNERS = {r.email for r in RULES.reps} | {q.id for q in RULES.queues}
NOW = datetime(2025, 6, 11, 10, 0, tzinfo=UTC)
ACCOUNTS = {
    "a1": Account(id="a1", name="Acme", region="EMEA", owner_id="ann@vendor.com"),
    "a2": Account(id="a2", name="Brill", region="Americas"),
    "a3": Account(id="a3", name="Corex", region="EMEA", customer_type=CustomerType.CUSTOMER,
                  owner_id="bob@vendor.com"),
    "a4": Account(id="a4", name="Dyna", owner_id="005UNKNOWN"),
}
OPPORTUNITIES = [Opportunity(id="o1", account_id="a2", owner_id="dee@vendor.com"),
                 Opportunity(id="o2", account_id="a1", is_closed=True)]
NO_TASK = {SuppressionKind.DISQUALIFIED, SuppressionKind.NO_NEW_SIGNAL, SuppressionKind.UNSUBSCRIBED,
           SuppressionKind.BOUNCED}


@st.composite
def scored_people(draw: st.DrawFn) -> tuple[Person, ScoreCard, ScoreCard | None, OpenTask | None]:
    pid = draw(st.text("abcdef0123456789", min_size=1, max_size=6))
    account_id = draw(st.sampled_from([None, *ACCOUNTS]))
    person = Person(
        id=pid, account_id=account_id, region=draw(st.sampled_from([None, "EMEA", "Americas", "APAC"])),
        unsubscribed=draw(st.booleans()), bounced=draw(st.booleans()),
        partner_owned=draw(st.booleans()) and draw(st.booleans()),
        distributor_registered=draw(st.booleans()) and draw(st.booleans()),
        salesforce_lead_id=f"00Q{pid}",
    )

    def scorecard() -> ScoreCard:
        escalate = draw(st.booleans())
        return ScoreCard(
            person_id=pid, account_id=account_id, model_version="m", scored_at=NOW, profile="power",
            fit=draw(st.floats(0, 100)), intent=draw(st.floats(0, 100)), account_fit=0, account_intent=0,
            score=draw(st.floats(0, 100)), tier=draw(st.sampled_from([SALES, NURTURE, UNQUALIFIED])),
            stage=draw(st.sampled_from([None, "learn", "evaluate", "buy"])),
            escalation=Escalation("evk", draw(st.sampled_from(["evk", "4h", "unknown"])), "asked for an EVK")
            if escalate else None,
            disqualified=draw(st.sampled_from([None, None, "student"])),
        )

    card = scorecard()
    previous = scorecard() if draw(st.booleans()) else None
    task = None
    if draw(st.booleans()):
        task = OpenTask(person_id=pid, key=f"ll-open-{pid}", owner="ann@vendor.com",
                        created_at=NOW - timedelta(days=draw(st.integers(0, 30))), due=date(2025, 6, 12))
    return person, card, previous, task


population = st.lists(scored_people(), max_size=25, unique_by=lambda x: x[0].id)


def _route(rows, state=None):
    return route_all(
        [card for _, card, _, _ in rows],
        people={p.id: p for p, _, _, _ in rows},
        previous={p.id: prev for p, _, prev, _ in rows if prev is not None},
        open_tasks=[t for *_, t in rows if t is not None],
        accounts=ACCOUNTS, opportunities=OPPORTUNITIES, section=RULES, state=state or AssignmentState(),
        now=NOW,
    )


@settings(max_examples=100, deadline=None)
@given(population)
def test_every_routed_sales_priority_person_gets_exactly_one_known_owner(rows):
    result = _route(rows)
    for decision in result.decisions:
        if decision.tier == SALES and decision.action is Action.ASSIGN:
            assert isinstance(decision.owner, str) and decision.owner in KNOWN_OWNERS
            if decision.task is not None:
                assert decision.task.owner == decision.owner
        elif decision.tier == SALES:
            kinds = {s.kind for s in decision.suppressions}
            assert kinds & {SuppressionKind.DISQUALIFIED, SuppressionKind.DISTRIBUTOR_REGISTERED,
                            SuppressionKind.PARTNER_OWNED}, decision


@settings(max_examples=100, deadline=None)
@given(population)
def test_no_task_is_ever_produced_for_a_disqualified_or_suppressed_person(rows):
    open_keys = {t.key for *_, t in rows if t is not None}
    for decision in _route(rows).decisions:
        kinds = {s.kind for s in decision.suppressions}
        if kinds & NO_TASK or decision.action is not Action.ASSIGN:
            assert decision.task is None, decision
        if SuppressionKind.DUPLICATE_TASK in kinds:
            assert decision.task is not None and decision.task.updates_open_task
            assert decision.task.key in open_keys
        elif decision.task is not None:
            assert not decision.task.updates_open_task
        if kinds & {SuppressionKind.OPEN_OPPORTUNITY, SuppressionKind.CUSTOMER_EVALUATION,
                    SuppressionKind.PARTNER_OWNED} and decision.task is not None:
            assert decision.task.kind is not TaskKind.SALES_HANDOFF


@settings(max_examples=100, deadline=None)
@given(population, st.randoms(use_true_random=False))
def test_decisions_are_deterministic_and_independent_of_input_order(rows, rng):
    first = _route(rows)
    shuffled = list(rows)
    rng.shuffle(shuffled)
    second = _route(shuffled)
    assert first.decisions == second.decisions
    assert first.state == second.state
    assert dict(first.report.counts) == dict(second.report.counts)

