"""Routing keeps the playbook's promises: the right owner, at the right time, knowing what to say,
and no outreach where it would hurt."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from leadloop.crm.changes import FieldUpdate, Priority, TaskUpsert
from leadloop.crm.records import Account, Activity, Asset, Crm, CustomerType, Opportunity, Person
from leadloop.playbook.routing import RoutingSection
from leadloop.routing import (
    Action,
    AssignmentState,
    OpenTask,
    OwnerDirectory,
    PersonContext,
    SuppressionKind,
    TaskKind,
    route_all,
    route_person,
    task_key,
    to_crm_changes,
)
from leadloop.scoring.scorecard import Escalation, Reason, ReasonKind, ScoreCard

SALES, NURTURE, UNQUALIFIED = "Sales priority", "Nurture", "Unqualified for now"
# A Wednesday, 10:00 UTC: mid-week, in business hours in Europe, before opening in the Americas.
NOW = datetime(2025, 6, 11, 10, 0, tzinfo=UTC)


def section(**overrides: Any) -> RoutingSection:
    """A small but complete routing section; keyword arguments replace top-level keys."""
    base: dict[str, Any] = {
        "actions": [
            {"tier": SALES, "do": "assign", "sla": "sales", "why": "ready for sales"},
            {"tier": NURTURE, "do": "nurture", "why": "keep educating"},
            {"tier": UNQUALIFIED, "do": "none", "why": "not yet"},
        ],
        "slas": {
            "sales": {"business_days": 1, "why": "a day for a warm lead"},
            "evk": {"business_hours": 4, "priority": "high", "why": "evaluation kits go cold fast"},
        },
        "business_hours": {"start": "09:00", "end": "17:00"},
        "holidays": [{"date": "2025-12-25", "name": "Christmas Day"}],
        "reps": [
            {"email": "ann@vendor.com", "name": "Ann", "time_zone": "Europe/Berlin"},
            {"email": "bob@vendor.com", "name": "Bob", "time_zone": "Europe/Berlin"},
            {"email": "cy@vendor.com", "name": "Cy", "time_zone": "Europe/Berlin", "weight": 2},
            {"email": "dee@vendor.com", "name": "Dee", "time_zone": "America/Chicago"},
            {"email": "pam@vendor.com", "name": "Pam", "time_zone": "America/New_York"},
        ],
        "queues": [{"id": "sales-queue", "name": "Inside sales queue", "time_zone": "UTC",
                    "why": "someone always picks it up"}],
        "pools": [
            {"name": "emea", "reps": ["ann@vendor.com", "bob@vendor.com", "cy@vendor.com"],
             "why": "EMEA field sales"},
            {"name": "americas", "reps": ["dee@vendor.com"], "why": "Americas inside sales"},
        ],
        "territories": [
            {"name": "Americas", "region": ["americas"], "pool": "americas", "why": "time zone fit"},
            {"name": "EMEA", "region": ["emea"], "pool": "emea", "why": "language and time zone"},
        ],
        "default_pool": "emea",
        "fallback_owner": "sales-queue",
        "suppression": {
            "duplicate_task_days": 14,
            "partner_owned": {"action": "partner_manager", "partner_manager": "pam@vendor.com",
                              "why": "partners work their own leads"},
            "distributor_registered": {"action": "exclude", "why": "registration protects the deal"},
        },
        "stages": {
            "evaluate": {"next_step": "Offer a design review call", "why": "engineers are comparing parts",
                         "questions": ["Which part are you replacing?", "When is your design freeze?"]},
        },
        "nurture": {
            "tracks": [
                {"name": "automotive-education", "segment": ["automotive"], "why": "segment content"},
                {"name": "general-education", "why": "everyone else"},
            ],
            "default_track": "general-education",
        },
    }
    base.update(overrides)
    return RoutingSection.model_validate(base)


def card(person_id: str, tier: str = SALES, *, score: float = 80, intent: float = 40,
         account_id: str | None = None, **fields: Any) -> ScoreCard:
    return ScoreCard(person_id=person_id, account_id=account_id, model_version="m1", scored_at=NOW,
                     profile=fields.pop("profile", "power"), fit=fields.pop("fit", 50), intent=intent,
                     account_fit=fields.pop("account_fit", 40),
                     account_intent=fields.pop("account_intent", 10),
                     score=score, tier=tier, **fields)


def person(person_id: str, **fields: Any) -> Person:
    fields.setdefault("salesforce_lead_id", f"00Q{person_id}")
    return Person(id=person_id, first_name=fields.pop("first_name", "Pat"),
                  last_name=fields.pop("last_name", person_id), **fields)


def route_one(c: ScoreCard, p: Person, rules: RoutingSection | None = None, *,
              state: AssignmentState | None = None, now: datetime = NOW, **ctx: Any):
    assets = ctx.pop("assets", ())
    return route_person(PersonContext(card=c, person=p, **ctx), rules or section(),
                        state or AssignmentState(), now, assets=assets)


def route_many(cards: list[ScoreCard], people: list[Person], rules: RoutingSection | None = None,
               **kwargs: Any):
    kwargs.setdefault("state", AssignmentState())
    kwargs.setdefault("now", NOW)
    return route_all(cards, people={p.id: p for p in people}, section=rules or section(), **kwargs)


EVK = Escalation(rule="evk_request", sla="evk", text="requested the EVK-7710 evaluation kit")


# --- round robin, caps, availability --------------------------------------------------------------


def test_weighted_round_robin_gives_a_weight_two_rep_twice_the_leads():
    people = [person(f"p{i:03d}", region="EMEA") for i in range(300)]
    result = route_many([card(p.id) for p in people], people)
    owners = Counter(d.owner for d in result.decisions)
    assert abs(owners["ann@vendor.com"] - 75) <= 2
    assert abs(owners["bob@vendor.com"] - 75) <= 2
    assert abs(owners["cy@vendor.com"] - 150) <= 2


def test_round_robin_stays_fair_across_runs_through_the_saved_state():
    people = [person(f"p{i:03d}", region="EMEA") for i in range(8)]
    state = AssignmentState()
    owners: Counter[str] = Counter()
    for i in range(0, 8, 2):  # four runs of two leads each
        batch = people[i:i + 2]
        result = route_many([card(p.id) for p in batch], batch, state=state)
        state = AssignmentState.from_dict(json.loads(json.dumps(result.state.to_dict())))
        owners.update(d.owner for d in result.decisions)
    assert owners == {"ann@vendor.com": 2, "bob@vendor.com": 2, "cy@vendor.com": 4}


def test_daily_caps_are_respected_and_the_pool_fallback_takes_the_overflow():
    rules = section(
        reps=[{"email": "ann@vendor.com", "name": "Ann", "daily_cap": 3},
              {"email": "bob@vendor.com", "name": "Bob", "daily_cap": 2}],
        pools=[{"name": "emea", "reps": ["ann@vendor.com", "bob@vendor.com"], "fallback": "sales-queue",
                "why": "EMEA"}],
        territories=[], suppression={}, stages={})
    people = [person(f"p{i}") for i in range(9)]
    result = route_many([card(p.id) for p in people], people, rules)
    owners = Counter(d.owner for d in result.decisions)
    assert owners == {"ann@vendor.com": 3, "bob@vendor.com": 2, "sales-queue": 4}
    overflow = [d for d in result.decisions if d.owner == "sales-queue"]
    assert all("full or away" in d.owner_source for d in overflow)


def test_weekly_caps_count_assignments_from_earlier_days_of_the_week():
    rules = section(reps=[{"email": "ann@vendor.com", "name": "Ann", "weekly_cap": 2}],
                    pools=[{"name": "emea", "reps": ["ann@vendor.com"], "why": "EMEA"}],
                    territories=[], suppression={}, stages={})
    monday = NOW - timedelta(days=2)
    first = route_many([card("p1"), card("p2")], [person("p1"), person("p2")], rules, now=monday)
    later = route_many([card("p3")], [person("p3")], rules, state=first.state)
    assert [d.owner for d in first.decisions] == ["ann@vendor.com", "ann@vendor.com"]
    assert later.decisions[0].owner == "sales-queue"


def test_out_of_office_and_inactive_reps_get_no_leads():
    rules = section(reps=[
        {"email": "ann@vendor.com", "name": "Ann",
         "out_of_office": [{"start": "2025-06-09", "end": "2025-06-13"}]},
        {"email": "bob@vendor.com", "name": "Bob", "active": False},
        {"email": "cy@vendor.com", "name": "Cy"},
    ], pools=[{"name": "emea", "reps": ["ann@vendor.com", "bob@vendor.com", "cy@vendor.com"], "why": "EMEA"}],
        territories=[], suppression={}, stages={})
    people = [person(f"p{i}") for i in range(5)]
    result = route_many([card(p.id) for p in people], people, rules)
    assert {d.owner for d in result.decisions} == {"cy@vendor.com"}


def test_everyone_away_sends_the_lead_to_the_fallback_owner_never_unassigned():
    rules = section(reps=[{"email": "ann@vendor.com", "name": "Ann", "active": False}],
                    pools=[{"name": "emea", "reps": ["ann@vendor.com"], "why": "EMEA"}],
                    territories=[], suppression={}, stages={})
    decision, _ = route_one(card("p1"), person("p1"), rules)
    assert decision.owner == "sales-queue"
    assert decision.task is not None and decision.task.owner == "sales-queue"


def test_a_rep_back_from_leave_is_not_flooded_with_catch_up_leads():
    rules = section(reps=[
        {"email": "ann@vendor.com", "name": "Ann",
         "out_of_office": [{"start": "2025-06-01", "end": "2025-06-10"}]},
        {"email": "bob@vendor.com", "name": "Bob"},
    ], pools=[{"name": "emea", "reps": ["ann@vendor.com", "bob@vendor.com"], "why": "EMEA"}],
        territories=[], suppression={}, stages={})
    away = [person(f"a{i}") for i in range(6)]
    during = route_many([card(p.id) for p in away], away, rules, now=NOW - timedelta(days=2))
    back = [person(f"b{i}") for i in range(4)]
    after = route_many([card(p.id) for p in back], back, rules, state=during.state)
    assert Counter(d.owner for d in after.decisions) == {"ann@vendor.com": 2, "bob@vendor.com": 2}


# --- who owns the lead ----------------------------------------------------------------------------


def test_account_owner_beats_territory():
    acme = Account(id="a1", name="Acme Semi", region="Americas", owner_id="bob@vendor.com")
    decision, _ = route_one(card("p1", account_id="a1"), person("p1", account_id="a1"), account=acme)
    assert decision.owner == "bob@vendor.com"
    assert decision.owner_source == "account owner"


def test_an_account_owner_known_only_by_crm_user_id_is_found_through_the_directory():
    acme = Account(id="a1", name="Acme Semi", region="Americas", owner_id="005BOB")
    directory = OwnerDirectory({"bob@vendor.com": {Crm.SALESFORCE: "005BOB"}})
    decision, _ = route_person(PersonContext(card=card("p1", account_id="a1"), person=person("p1"),
                                             account=acme), section(), AssignmentState(), NOW,
                               directory=directory)
    assert decision.owner == "bob@vendor.com"


def test_territory_rules_pick_the_pool_by_region_first_match_wins():
    acme = Account(id="a1", name="Acme", region="Americas")
    decision, _ = route_one(card("p1", account_id="a1"), person("p1", region="EMEA"), account=acme)
    assert decision.owner == "dee@vendor.com"
    assert "Americas" in decision.owner_source


def test_a_lead_keeps_its_owner_on_the_next_run_without_counting_again():
    first, state = route_one(card("p1"), person("p1", region="EMEA"))
    again, state2 = route_one(card("p1"), person("p1", region="EMEA"), state=state,
                              previous=card("p1"))
    assert again.owner == first.owner
    assert state2.counts == state.counts


# --- SLAs ----------------------------------------------------------------------------------------


def test_an_sla_in_business_days_skips_the_weekend():
    friday = datetime(2025, 6, 13, 14, 0, tzinfo=UTC)
    acme = Account(id="a1", name="Acme", owner_id="ann@vendor.com")
    decision, _ = route_one(card("p1", account_id="a1"), person("p1"), account=acme, now=friday)
    assert decision.task is not None
    assert decision.task.due == date(2025, 6, 16)  # Monday, not Saturday


def test_an_sla_in_business_hours_runs_in_the_owners_time_zone():
    acme_us = Account(id="a1", name="Acme US", owner_id="dee@vendor.com")
    acme_eu = Account(id="a2", name="Acme EU", owner_id="ann@vendor.com")
    evk = card("p1", escalation=EVK)
    us, _ = route_one(evk, person("p1"), account=acme_us)
    eu, _ = route_one(evk, person("p1"), account=acme_eu)
    assert us.task is not None and eu.task is not None
    # 10:00 UTC is 05:00 in Chicago: the clock starts at 09:00 there, so due 13:00 Chicago time.
    assert us.task.due_at.strftime("%H:%M %Z") == "13:00 CDT"
    # ...and 12:00 in Berlin: four business hours later is 16:00 Berlin time.
    assert eu.task.due_at.strftime("%H:%M %Z") == "16:00 CEST"
    assert us.task.priority is Priority.HIGH and us.task.sla == "evk"


def test_business_hours_carry_over_to_the_next_business_day():
    late = datetime(2025, 6, 13, 14, 30, tzinfo=UTC)  # Friday 16:30 in Berlin
    acme = Account(id="a1", name="Acme", owner_id="ann@vendor.com")
    decision, _ = route_one(card("p1", escalation=EVK), person("p1"), account=acme, now=late)
    assert decision.task is not None
    assert decision.task.due_at.isoformat() == "2025-06-16T12:30:00+02:00"


def test_an_sla_skips_a_holiday():
    christmas_eve = datetime(2025, 12, 24, 10, 0, tzinfo=UTC)
    acme = Account(id="a1", name="Acme", owner_id="ann@vendor.com")
    decision, _ = route_one(card("p1", account_id="a1"), person("p1"), account=acme, now=christmas_eve)
    assert decision.task is not None
    assert decision.task.due == date(2025, 12, 26)


def test_an_escalation_gets_its_faster_sla_and_high_priority():
    plain, _ = route_one(card("p1"), person("p1", region="EMEA"))
    escalated, _ = route_one(card("p1", escalation=EVK), person("p1", region="EMEA"))
    assert plain.task is not None and escalated.task is not None
    assert escalated.task.due_at < plain.task.due_at
    assert (plain.task.priority, escalated.task.priority) == (Priority.NORMAL, Priority.HIGH)
    assert "EVK-7710" in escalated.task.subject


# --- suppression ---------------------------------------------------------------------------------


def test_an_open_opportunity_tells_its_owner_instead_of_a_new_rep():
    acme = Account(id="a1", name="Acme Semi", region="EMEA")
    opp = Opportunity(id="o1", account_id="a1", name="Acme inverter design-in", owner_id="bob@vendor.com")
    decision, _ = route_one(card("p1", account_id="a1"), person("p1", first_name="Jane", last_name="Doe"),
                            account=acme, opportunities=[opp])
    assert decision.owner == "bob@vendor.com"
    assert decision.task is not None and decision.task.kind is TaskKind.OPPORTUNITY_ACTIVITY
    assert decision.task.subject == "New activity from Jane Doe at Acme Semi on your open opportunity"
    assert [s.kind for s in decision.suppressions] == [SuppressionKind.OPEN_OPPORTUNITY]


def test_a_closed_opportunity_does_not_suppress_prospecting():
    acme = Account(id="a1", name="Acme Semi", region="EMEA")
    lost = Opportunity(id="o1", account_id="a1", is_closed=True, owner_id="bob@vendor.com")
    decision, _ = route_one(card("p1", account_id="a1"), person("p1"), account=acme, opportunities=[lost])
    assert decision.task is not None and decision.task.kind is TaskKind.SALES_HANDOFF


def test_an_open_task_is_updated_not_duplicated():
    open_task = OpenTask(person_id="p1", key="ll-existing", owner="ann@vendor.com",
                         created_at=NOW - timedelta(days=3), due=date(2025, 6, 9))
    decision, _ = route_one(card("p1"), person("p1", region="EMEA"), open_tasks=[open_task])
    assert decision.task is not None
    assert decision.task.key == "ll-existing" and decision.task.updates_open_task
    assert decision.task.due == date(2025, 6, 9)
    assert SuppressionKind.DUPLICATE_TASK in [s.kind for s in decision.suppressions]


def test_an_open_task_older_than_the_window_does_not_block_a_new_one():
    stale = OpenTask(person_id="p1", key="ll-old", owner="ann@vendor.com",
                     created_at=NOW - timedelta(days=30), due=date(2025, 5, 13))
    decision, _ = route_one(card("p1"), person("p1", region="EMEA"), open_tasks=[stale])
    assert decision.task is not None and decision.task.key != "ll-old"


def test_no_new_task_when_nothing_happened_since_the_last_handoff():
    decision, _ = route_one(card("p1", intent=40), person("p1", region="EMEA"),
                            previous=card("p1", intent=38))
    assert decision.owner is not None and decision.task is None
    assert [s.kind for s in decision.suppressions] == [SuppressionKind.NO_NEW_SIGNAL]


def test_a_new_escalation_reopens_the_conversation_with_a_new_task():
    decision, _ = route_one(card("p1", escalation=EVK), person("p1", region="EMEA"), previous=card("p1"))
    assert decision.task is not None and decision.task.priority is Priority.HIGH


@pytest.mark.parametrize(("flag", "kind"), [("unsubscribed", SuppressionKind.UNSUBSCRIBED),
                                            ("bounced", SuppressionKind.BOUNCED)])
def test_unsubscribed_or_bounced_people_get_no_email_nurture(flag, kind):
    decision, _ = route_one(card("p1", NURTURE), person("p1", **{flag: True}))
    assert decision.action is Action.NONE and decision.nurture_track is None
    assert decision.clear_nurture_track
    assert [s.kind for s in decision.suppressions] == [kind]


def test_partner_owned_sales_leads_go_to_the_partner_manager():
    decision, _ = route_one(card("p1"), person("p1", partner_owned=True, region="EMEA"))
    assert decision.owner == "pam@vendor.com"
    assert decision.task is not None and decision.task.kind is TaskKind.PARTNER
    assert [s.kind for s in decision.suppressions] == [SuppressionKind.PARTNER_OWNED]


def test_distributor_registered_leads_are_excluded():
    decision, _ = route_one(card("p1"), person("p1", distributor_registered=True))
    assert decision.action is Action.EXCLUDED
    assert decision.owner is None and decision.task is None
    assert [s.kind for s in decision.suppressions] == [SuppressionKind.DISTRIBUTOR_REGISTERED]


def test_active_customers_in_an_evaluation_go_to_the_account_team():
    customer = Account(id="a1", name="Acme", region="EMEA", customer_type=CustomerType.CUSTOMER,
                       owner_id="bob@vendor.com")
    decision, _ = route_one(card("p1", account_id="a1", stage="evaluate"), person("p1"), account=customer)
    assert decision.owner == "bob@vendor.com"
    assert decision.task is not None and decision.task.kind is TaskKind.ACCOUNT_TEAM
    assert [s.kind for s in decision.suppressions] == [SuppressionKind.CUSTOMER_EVALUATION]


def test_a_disqualified_person_gets_no_owner_no_task_and_no_nurture():
    decision, _ = route_one(card("p1", disqualified="student"), person("p1"))
    assert decision.action is Action.NONE
    assert (decision.owner, decision.task, decision.nurture_track) == (None, None, None)
    assert decision.suppressions[0].kind is SuppressionKind.DISQUALIFIED


def test_suppression_never_blocks_a_high_intent_person_without_an_open_opportunity():
    acme = Account(id="a1", name="Acme", region="EMEA")
    won = Opportunity(id="o1", account_id="a1", is_closed=True, is_won=True, owner_id="bob@vendor.com")
    everyone_away = section(reps=[{"email": "ann@vendor.com", "name": "Ann", "active": False}],
                            pools=[{"name": "emea", "reps": ["ann@vendor.com"], "why": "EMEA"}],
                            territories=[], suppression={}, stages={})
    for rules in (section(), everyone_away):
        decision, _ = route_one(card("p1", account_id="a1", intent=95, escalation=EVK),
                                person("p1", unsubscribed=True, bounced=True), rules,
                                account=acme, opportunities=[won])
        assert decision.action is Action.ASSIGN and decision.owner is not None
        assert decision.task is not None and decision.task.kind is TaskKind.SALES_HANDOFF


def test_the_suppression_report_counts_each_reason():
    people = [person("p1", distributor_registered=True), person("p2", unsubscribed=True), person("p3")]
    cards = [card("p1"), card("p2", NURTURE), card("p3", disqualified="competitor")]
    result = route_many(cards, people)
    assert dict(result.report.counts) == {SuppressionKind.DISTRIBUTOR_REGISTERED: 1,
                                          SuppressionKind.UNSUBSCRIBED: 1, SuppressionKind.DISQUALIFIED: 1}
    assert result.report.examples[SuppressionKind.DISQUALIFIED] == ["p3: disqualified: competitor"]


# --- handoff note and nurture --------------------------------------------------------------------


def test_the_handoff_note_names_the_top_signals_and_the_buying_committee():
    when = NOW - timedelta(days=2)
    day = when.date().isoformat()
    reasons = (  # as scoring writes them: dates in the text, what each adds to the score today
        Reason(ReasonKind.ESCALATION, "evk", 30, f"escalated: requested EVK-7710 evaluation kit on {day}",
               when, "EVK-7710"),
        Reason(ReasonKind.INTENT, "appnote", 12, f"+12 downloaded AN-42 gate driver layout on {day}", when,
               "AN-42", contribution=4.6),
        Reason(ReasonKind.INTENT, "visit", 2, f"+2 visited the pricing page on {day}", when,
               contribution=0.8),
        Reason(ReasonKind.INTENT, "webinar", 8, f"+8 attended the SiC webinar on {day}", when,
               "webinar_sic", contribution=3.1),
        Reason(ReasonKind.FIT, "segment", 20, "+20 automotive segment", contribution=6.0),
    )
    acme = Account(id="a1", name="Acme Semi", segment="automotive", owner_id="ann@vendor.com")
    me = person("p1", first_name="Jane", last_name="Doe", account_id="a1")
    buyer = person("p2", first_name="Li", last_name="Wei", title="Buyer II", account_id="a1")
    quality = person("p3", first_name="Ola", last_name="Berg", title="Quality Engineer", account_id="a1")
    cards = [card("p1", account_id="a1", reasons=reasons, stage="evaluate", escalation=EVK,
                  role="engineering"),
             card("p2", NURTURE, account_id="a1", intent=22, role="procurement"),
             card("p3", UNQUALIFIED, account_id="a1", intent=5, role="quality")]
    result = route_many(cards, [me, buyer, quality], accounts={"a1": acme})
    note = result.by_person()["p1"].task.note
    assert "- escalated: requested EVK-7710 evaluation kit on 2025-06-09\n" in note
    # the numbers the CRM's reason lines show, the date once, an asset the text does not name
    assert "- +5 downloaded AN-42 gate driver layout on 2025-06-09\n" in note
    assert "- +3 attended the SiC webinar on 2025-06-09 (asset webinar_sic)\n" in note
    assert "visited the pricing page" not in note  # only the top three signals
    assert "Li Wei: procurement · Buyer II" in note and "Ola Berg: quality" in note
    assert "roles: procurement, quality" in note
    assert "Which part are you replacing?" in note and "Offer a design review call" in note
    titles = ("Why now", "Fit", "Buying committee", "Stage & next step", "Qualification questions")
    for section_title in titles:
        assert f"\n{section_title}\n" in f"\n{note}"
    assert "|" not in note and "**" not in note and "<" not in note
    assert max(len(line) for line in note.splitlines()) <= 110


def test_nurture_suggests_the_next_stage_asset_of_their_segment_they_have_not_seen():
    assets = [
        Asset(id="AN-1", name="Intro to SiC", type="application_note", segment="automotive", stage="learn"),
        Asset(id="RD-1", name="Inverter reference design", type="reference_design", segment="automotive",
              stage="evaluate"),
        Asset(id="RD-2", name="Motor drive reference design", type="reference_design", segment="industrial",
              stage="evaluate"),
        Asset(id="RD-0", name="Generic design guide", type="reference_design", stage="evaluate"),
    ]
    acme = Account(id="a1", name="Acme", segment="automotive")
    seen = [Activity(id="x1", person_id="p1", kind="asset_download", occurred_at=NOW, asset_id="AN-1")]
    decision, _ = route_one(card("p1", NURTURE, stage="learn", account_id="a1"), person("p1"),
                            account=acme, activities=seen, assets=assets)
    assert decision.action is Action.NURTURE
    assert decision.nurture_track == "automotive-education"
    assert decision.next_asset is not None and decision.next_asset.id == "RD-1"
    consumed = [*seen, Activity(id="x2", person_id="p1", kind="asset_download", occurred_at=NOW,
                                asset_id="RD-1")]
    decision, _ = route_one(card("p1", NURTURE, stage="learn", account_id="a1"), person("p1"),
                            account=acme, activities=consumed, assets=assets)
    assert decision.next_asset is not None and decision.next_asset.id == "RD-0"


def test_leaving_nurture_for_sales_clears_the_nurture_track():
    decision, _ = route_one(card("p1"), person("p1", region="EMEA"), previous=card("p1", NURTURE))
    assert decision.clear_nurture_track and decision.nurture_track is None


# --- CRM changes ---------------------------------------------------------------------------------


def test_decisions_become_owner_and_task_changes_in_each_crm_the_person_is_in():
    directory = OwnerDirectory({"ann@vendor.com": {"salesforce": "005ANN", "hubspot": "77"},
                                "sales-queue": {"salesforce": "00GQUEUE", "hubspot": "1"}})
    acme = Account(id="a1", name="Acme", owner_id="ann@vendor.com")
    p1 = person("p1", salesforce_contact_id="003P1", hubspot_id="501")
    decision, _ = route_one(card("p1", account_id="a1"), p1, account=acme)
    changes = to_crm_changes(decision, p1, directory, tasks_in="both").changes
    owners = {(c.crm, c.record_id, c.value) for c in changes if isinstance(c, FieldUpdate)}
    assert owners == {(Crm.SALESFORCE, "003P1", "005ANN"), (Crm.HUBSPOT, "501", "77")}
    tasks = [c for c in changes if isinstance(c, TaskUpsert)]
    assert {t.crm for t in tasks} == {Crm.SALESFORCE, Crm.HUBSPOT}
    assert tasks[0].body == tasks[1].body and tasks[0].key == tasks[1].key
    assert tasks[0].owner_id == "005ANN" and tasks[1].owner_id == "77"


def _tasks(routed) -> list[tuple[Crm, str]]:
    return [(c.crm, c.owner_id) for c in routed.changes if isinstance(c, TaskUpsert)]


def test_by_default_one_task_goes_to_the_crm_where_the_owner_works():
    p1 = person("p1", salesforce_contact_id="003P1", hubspot_id="501")
    decision, _ = route_one(card("p1"), p1)
    both = OwnerDirectory({decision.owner: {"salesforce": "005X", "hubspot": "77"}})
    assert _tasks(to_crm_changes(decision, p1, both)) == [(Crm.SALESFORCE, "005X")]
    # the CRM holding the person's open opportunity or account ownership comes first
    assert _tasks(to_crm_changes(decision, p1, both, preferred=Crm.HUBSPOT)) == [(Crm.HUBSPOT, "77")]
    # an owner who is a user in HubSpot only gets the task there
    hubspot_only = OwnerDirectory({decision.owner: {"hubspot": "77"}})
    routed = to_crm_changes(decision, p1, hubspot_only)
    assert _tasks(routed) == [(Crm.HUBSPOT, "77")] and routed.placement.crms == (Crm.HUBSPOT,)
    # a CRM this run does not write to is not a place for the task
    assert _tasks(to_crm_changes(decision, p1, both, connected={Crm.HUBSPOT})) == [(Crm.HUBSPOT, "77")]
    assert _tasks(to_crm_changes(decision, p1, both, tasks_in="hubspot")) == [(Crm.HUBSPOT, "77")]


def test_an_owner_missing_in_one_crm_never_drops_the_task_in_the_other():
    p1 = person("p1", salesforce_contact_id="003P1", hubspot_id="501")
    decision, _ = route_one(card("p1"), p1)
    salesforce_only = OwnerDirectory({decision.owner: {"salesforce": "005X"}})
    routed = to_crm_changes(decision, p1, salesforce_only, tasks_in="both")
    assert _tasks(routed) == [(Crm.SALESFORCE, "005X")] and routed.placement.problem is None
    # a named CRM where the owner has no user: the fallback owner stands in there, and says so
    with_queue = OwnerDirectory({decision.owner: {"salesforce": "005X"}, "sales-queue": {"hubspot": "1"}})
    routed = to_crm_changes(decision, p1, with_queue, "sales-queue", tasks_in="hubspot")
    assert _tasks(routed) == [(Crm.HUBSPOT, "1")] and routed.placement.fallback
    assert "fallback owner sales-queue stands in" in routed.changes[-1].reason


def test_an_owner_known_in_no_crm_goes_to_the_fallback_or_is_named_as_unplaced():
    p1 = person("p1", hubspot_id="501")
    decision, _ = route_one(card("p1"), p1)
    queue = OwnerDirectory({"sales-queue": {"hubspot": "1"}})
    routed = to_crm_changes(decision, p1, queue, fallback_owner="sales-queue")
    assert _tasks(routed) == [(Crm.HUBSPOT, "1")] and routed.placement.fallback
    routed = to_crm_changes(decision, p1, OwnerDirectory(), fallback_owner="sales-queue")
    assert _tasks(routed) == [] and routed.placement.crms == ()
    assert "has no salesforce or hubspot user and neither has the fallback owner sales-queue" in (
        routed.placement.problem)


def test_task_keys_are_the_same_within_a_week_and_differ_the_next():
    assert task_key("p1", TaskKind.SALES_HANDOFF, NOW) == task_key("p1", TaskKind.SALES_HANDOFF,
                                                                    NOW + timedelta(days=2))
    assert task_key("p1", TaskKind.SALES_HANDOFF, NOW) != task_key("p1", TaskKind.SALES_HANDOFF,
                                                                    NOW + timedelta(days=7))
    assert task_key("p1", TaskKind.SALES_HANDOFF, NOW) != task_key("p1", TaskKind.PARTNER, NOW)


def test_nurture_decisions_write_the_track_and_clearing_writes_an_empty_value():
    p1 = person("p1", hubspot_id="501", salesforce_lead_id=None)
    nurtured, _ = route_one(card("p1", NURTURE), p1)
    [update] = to_crm_changes(nurtured, p1, OwnerDirectory()).changes
    assert (update.field, update.value) == ("nurture_track", "general-education")
    gone, _ = route_one(card("p1", UNQUALIFIED), p1, previous=card("p1", NURTURE))
    [cleared] = to_crm_changes(gone, p1, OwnerDirectory()).changes
    assert (cleared.field, cleared.value) == ("nurture_track", None)


# --- the playbook section ------------------------------------------------------------------------


def test_the_routing_section_rejects_unknown_references_with_their_path():
    with pytest.raises(ValueError) as error:
        section(pools=[{"name": "emea", "reps": ["ghost@vendor.com"], "why": "EMEA"}],
                territories=[{"name": "x", "pool": "nowhere", "why": "because"}])
    text = str(error.value)
    assert "pools[0].reps: unknown rep 'ghost@vendor.com'" in text
    assert "territories[0].pool: unknown pool 'nowhere'" in text


def test_every_routing_rule_needs_a_why_and_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="why"):
        section(actions=[{"tier": SALES, "do": "assign", "sla": "sales"}])
    with pytest.raises(ValueError, match="Extra inputs"):
        section(colour="blue")


def test_assigning_tiers_need_a_fallback_owner():
    with pytest.raises(ValueError, match="fallback_owner: required"):
        section(fallback_owner=None)


def test_the_assignment_state_survives_a_json_round_trip():
    people = [person(f"p{i}", region="EMEA") for i in range(5)]
    result = route_many([card(p.id) for p in people], people)
    restored = AssignmentState.from_dict(json.loads(json.dumps(result.state.to_dict())))
    assert restored == result.state
    assert result.state.owners["p0"]["owner"] in {"ann@vendor.com", "bob@vendor.com", "cy@vendor.com"}


def test_routing_leaves_the_given_state_untouched():
    state = AssignmentState()
    route_many([card("p1")], [person("p1")], state=state)
    assert state == AssignmentState()


def test_reps_crm_ids_in_the_playbook_resolve_account_owners_known_by_crm_user_id():
    rules = section(reps=[{"email": "ann@vendor.com", "name": "Ann", "crm_ids": {"salesforce": "005ANN"}},
                          {"email": "bob@vendor.com", "name": "Bob", "crm_ids": {"hubspot": "88"}}],
                    pools=[{"name": "emea", "reps": ["ann@vendor.com", "bob@vendor.com"], "why": "EMEA"}],
                    territories=[], suppression={}, stages={})
    acme = Account(id="a1", name="Acme", owner_id="88")
    decision, _ = route_one(card("p1", account_id="a1"), person("p1"), rules, account=acme)
    assert (decision.owner, decision.owner_source) == ("bob@vendor.com", "account owner")
    directory = OwnerDirectory.from_section(rules, {"bob@vendor.com": {"salesforce": "005BOB"}})
    assert directory.crm_owner_id("bob@vendor.com", Crm.SALESFORCE) == "005BOB"
    assert directory.crm_owner_id("ann@vendor.com", Crm.SALESFORCE) == "005ANN"


def test_content_follows_the_scoring_profiles_segment_and_only_sendable_asset_types():
    tracks = [{"name": "industrial-education", "segment": ["industrial"], "why": "their segment"},
              {"name": "general", "why": "everyone else"}]
    rules = section(nurture={"tracks": tracks,
                             "default_track": "general", "asset_types": ["application_note"]})
    assets = [Asset(id="PAGE-1", name="Motor pages", type="application_page", segment="industrial",
                    stage="evaluate"),
              Asset(id="AN-9", name="SiC gate drive", type="application_note", segment="industrial",
                    stage="evaluate")]
    acme = Account(id="a1", name="Acme", segment="Drive maker")
    decision, _ = route_person(
        PersonContext(card=card("p1", NURTURE, stage="learn", account_id="a1", profile="motor"),
                      person=person("p1"), account=acme),
        rules, AssignmentState(), NOW, assets=assets, profile_segments={"motor": ["industrial"]})
    assert decision.nurture_track == "industrial-education"
    assert decision.next_asset is not None and decision.next_asset.id == "AN-9"


def test_routing_problems_name_tiers_profiles_and_escalation_slas_the_scoring_part_lacks():
    from leadloop.playbook.routing import routing_problems

    rules = section(territories=[{"name": "x", "product_line": ["robots"], "pool": "emea", "why": "because"}])
    problems = routing_problems(rules, tiers=[SALES, NURTURE, "Cold"], profiles=["power"],
                                escalation_slas=["evk", "30m", "6h"])
    assert "routing.actions[2].tier: unknown tier 'Unqualified for now'; tiers are" in problems[0]
    assert "routing.actions: tier 'Cold' has no action" in problems
    assert any("'30m' is not defined" in p for p in problems)
    assert not any("'6h'" in p for p in problems)  # shorthand is understood
    assert "routing.territories[0].product_line: unknown profile 'robots'" in problems


def test_a_daily_cap_resets_at_midnight_in_the_reps_own_time_zone():
    tao = {"email": "tao@vendor.com", "name": "Tao", "time_zone": "Asia/Tokyo", "daily_cap": 1}
    rules = section(reps=[tao],
                    pools=[{"name": "emea", "reps": ["tao@vendor.com"], "why": "one rep"}],
                    territories=[], suppression={}, stages={})
    evening_utc = datetime(2025, 6, 11, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo
    first = route_many([card("p1")], [person("p1")], rules, now=evening_utc)
    same_day = route_many([card("p2")], [person("p2")], rules, state=first.state,
                          now=evening_utc + timedelta(minutes=30))
    next_day = route_many([card("p3")], [person("p3")], rules, state=first.state,
                          now=evening_utc + timedelta(hours=1, minutes=30))  # 00:30 next day in Tokyo
    assert [r.decisions[0].owner for r in (first, same_day, next_day)] == [
        "tao@vendor.com", "sales-queue", "tao@vendor.com"]


def test_task_subjects_may_only_use_known_placeholders():
    with pytest.raises(ValueError, match=r"unknown placeholders \['budget'\]"):
        section(task_subject="{name} has {budget}")
    assert section(task_subject="{tier}: {name} at {account}").task_subject.startswith("{tier}")


def test_routing_leaves_the_garbage_collector_as_it_found_it():
    import gc

    assert gc.isenabled()
    route_many([card("p1")], [person("p1")])
    assert gc.isenabled()
    gc.disable()
    try:
        route_many([card("p1")], [person("p1")])
        assert not gc.isenabled()
    finally:
        gc.enable()
