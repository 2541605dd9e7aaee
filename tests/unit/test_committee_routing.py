"""Buying committees reach a rep: an account whose committee engages while each member stays under
the person threshold gets one account task for its owner, once per committee level."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from test_routing import NOW, NURTURE, SALES, card, person, route_many, section
from test_scoring_support import PLAYBOOKS

from leadloop.crm.changes import Priority
from leadloop.crm.records import Account, Crm
from leadloop.playbook.load import parse_playbook
from leadloop.playbook.model import PlaybookError
from leadloop.routing import (
    AccountDecision,
    AssignmentState,
    OpenTask,
    OwnerDirectory,
    TaskKind,
    account_task_changes,
    committee_key,
)
from leadloop.scoring.scorecard import AccountScore, Reason, ReasonKind

ENGAGED, HOT, WARMING = "Engaged account", "Hot account", "Warming"
ACCOUNT = Account(id="account:brightline.de", name="Brightline Drives GmbH", segment="automotive power",
                  application="EV traction inverter", region="EMEA", owner_id="005KATRIN",
                  salesforce_id="001BRIGHT", hubspot_id="9001")
ROLES = ["engineering", "product_management", "procurement", "quality", "executive"]


def rules(**committee: Any):
    """The routing section of test_routing with a committee rule; keywords replace its keys."""
    rule: dict[str, Any] = {
        "account_tiers": [HOT, ENGAGED], "min_roles": 3, "roles": ROLES, "window_days": 30, "sla": "sales",
        "next_step": "Set up one meeting with engineering, product management and procurement.",
        "why": "three roles engaging is a committee evaluating a design-in",
    }
    rule.update(committee)
    reps = [{"email": "katrin@vendor.com", "name": "Katrin", "time_zone": "Europe/Berlin",
             "crm_ids": {"salesforce": "005KATRIN", "hubspot": "77"}},
            {"email": "ann@vendor.com", "name": "Ann", "time_zone": "Europe/Berlin"},
            {"email": "bob@vendor.com", "name": "Bob", "time_zone": "Europe/Berlin"},
            {"email": "cy@vendor.com", "name": "Cy", "time_zone": "Europe/Berlin"},
            {"email": "dee@vendor.com", "name": "Dee", "time_zone": "America/Chicago"},
            {"email": "pam@vendor.com", "name": "Pam", "time_zone": "America/New_York"}]
    return section(committee=rule, reps=reps)


def download(days_ago: float, points: float = 15, what: str = "VoltEdge traction-inverter reference design"
             ) -> Reason:
    when = NOW - timedelta(days=days_ago)
    return Reason(ReasonKind.INTENT, "reference_design_download", points,
                  f"+{points:g} downloaded the {what} on {when.date().isoformat()}", occurred_at=when,
                  asset="voltedge_reference_design")


MEMBERS = {  # person id → (first, last, title, role)
    "dana": ("Dana", "Li", "Senior Power Electronics Design Engineer", "engineering"),
    "pat": ("Pat", "Moreau", "Product Manager, Traction Inverters", "product_management"),
    "sam": ("Sam", "Berg", "Senior Buyer, Power Semiconductors", "procurement"),
    "quin": ("Quin", "Ahl", "Supplier Quality Engineer", "quality"),
    "eli": ("Eli", "Roth", "Firmware Engineer", "engineering"),
}


def committee(*ids: str, tier: str = NURTURE, days_ago: float = 2, intent: float = 18, **card_fields: Any):
    """Cards and people of members of ACCOUNT, each just under the person threshold (tier Nurture)."""
    cards, people = [], []
    for pid in ids:
        first, last, title, role = MEMBERS[pid]
        cards.append(card(pid, tier, score=38, intent=intent, account_id=ACCOUNT.id, role=role,
                          reasons=(download(days_ago),), **card_fields))
        people.append(person(pid, first_name=first, last_name=last, title=title, account_id=ACCOUNT.id,
                             salesforce_lead_id=None, salesforce_contact_id=f"003{pid}"))
    return cards, people


def account_score(tier: str = ENGAGED, intent: float = 48.8) -> dict[str, AccountScore]:
    return {ACCOUNT.id: AccountScore(ACCOUNT.id, "m1", 68, intent, tier, ("engineering",), 3)}


def route_accounts(cards, people, *, tier: str = ENGAGED, state: AssignmentState | None = None,
                   rule=None, **kwargs: Any):
    return route_many(cards, people, rule or rules(), accounts={ACCOUNT.id: ACCOUNT},
                      account_scores=account_score(tier), state=state or AssignmentState(), **kwargs)


def only(result) -> AccountDecision:
    (decision,) = result.accounts
    return decision


def saved(state: AssignmentState) -> AssignmentState:
    """The state as the store keeps it between runs."""
    return AssignmentState.from_dict(json.loads(json.dumps(state.to_dict())))


# --- the condition ----------------------------------------------------------------------------------


def test_a_committee_of_three_roles_at_an_engaged_account_gets_one_account_task_for_its_owner():
    result = route_accounts(*committee("dana", "pat", "sam"))

    assert all(d.task is None for d in result.decisions), "nobody is routed individually"
    decision = only(result)
    assert decision.roles == ("engineering", "procurement", "product_management")
    assert decision.owner == "katrin@vendor.com" and decision.owner_source == "account owner"
    task = decision.task
    assert task is not None and task.kind is TaskKind.BUYING_COMMITTEE and task.owner == "katrin@vendor.com"
    assert task.key == committee_key(ACCOUNT.id, ENGAGED, decision.roles)
    assert task.subject == ("Buying committee at Brightline Drives GmbH: "
                            "engineering, procurement, product management")
    assert task.sla == "sales" and task.priority is Priority.NORMAL
    assert "buying committee formed: 3 roles engaged" in decision.reasons[-1]


def test_the_account_task_names_each_member_their_role_what_they_did_and_the_next_step():
    task = only(route_accounts(*committee("dana", "pat", "sam"))).task
    assert task is not None
    note = task.note
    assert note.startswith("Buying committee at Brightline Drives GmbH (Engaged account): 3 roles engaged")
    for first, last, title, role in (MEMBERS[p] for p in ("dana", "pat", "sam")):
        assert f"- {first} {last} · {title} · {role.replace('_', ' ')} · intent 18" in note
    assert note.count("downloaded the VoltEdge traction-inverter reference design on") == 3
    assert note.endswith(
        "Next step\n- Set up one meeting with engineering, product management and procurement.")
    assert "- Brightline Drives GmbH · automotive power · EV traction inverter · EMEA" in note
    assert "<" not in note and "**" not in note  # plain text, the same in both CRMs


def test_two_roles_are_not_a_committee():
    assert route_accounts(*committee("dana", "pat")).accounts == []


def test_two_people_of_one_role_count_as_one_role():
    assert route_accounts(*committee("dana", "eli", "pat")).accounts == []


def test_an_account_below_the_committee_tiers_gets_no_account_task():
    assert route_accounts(*committee("dana", "pat", "sam"), tier=WARMING).accounts == []


def test_members_who_last_engaged_before_the_window_do_not_count():
    cards, people = committee("dana", "pat")
    old_cards, old_people = committee("sam", days_ago=45)
    assert route_accounts([*cards, *old_cards], [*people, *old_people]).accounts == []


def test_members_under_the_committee_intent_do_not_count():
    cards, people = committee("dana", "pat", "sam")
    assert route_accounts(cards, people, rule=rules(min_intent=20)).accounts == []


def test_roles_the_rule_does_not_count_do_not_make_a_committee():
    result = route_accounts(*committee("dana", "pat", "sam"), rule=rules(roles=["engineering", "quality",
                                                                                 "procurement"]))
    assert result.accounts == []


def test_without_the_account_roll_up_no_account_is_routed():
    cards, people = committee("dana", "pat", "sam")
    assert route_many(cards, people, rules(), accounts={ACCOUNT.id: ACCOUNT}).accounts == []


# --- routed individually --------------------------------------------------------------------------------


def test_a_member_routed_individually_means_no_account_task():
    cards, people = committee("dana", "pat", "sam")
    cards[0] = card("dana", SALES, score=60, intent=25, account_id=ACCOUNT.id, role="engineering",
                    reasons=(download(1, points=25),))

    result = route_accounts(cards, people)

    assert result.by_person()["dana"].task is not None
    decision = only(result)
    assert decision.task is None
    assert decision.reasons == ("no account task: Dana Li is routed individually to katrin@vendor.com, whose "
                                "handoff note lists the buying committee",)
    assert result.state.committees == {}, "nothing raised: the committee still gets its task once nobody is"


def test_a_person_at_the_account_with_a_recent_leadloop_task_means_no_account_task():
    cards, people = committee("dana", "pat", "sam")
    recent = OpenTask("sam", "ll-sam", "ann@vendor.com", NOW - timedelta(days=3), NOW.date())
    decision = only(route_accounts(cards, people, open_tasks=[recent]))
    assert decision.task is None and "Sam Berg got task ll-sam" in decision.reasons[0]

    long_ago = replace(recent, created_at=NOW - timedelta(days=40))  # past the duplicate-task window
    assert only(route_accounts(cards, people, open_tasks=[long_ago])).task is not None


# --- one task per committee level -------------------------------------------------------------------


def test_the_same_committee_always_has_the_same_key():
    first = committee_key(ACCOUNT.id, ENGAGED, ["procurement", "engineering", "product_management"])
    assert first == committee_key(ACCOUNT.id, ENGAGED, ("engineering", "product_management", "procurement"))
    a = only(route_accounts(*committee("dana", "pat", "sam"))).task
    b = only(route_accounts(*committee("sam", "dana", "pat"), now=NOW + timedelta(days=9))).task
    assert a is not None and b is not None and a.key == b.key == first, "no week or order in the key"


def test_one_more_role_gives_a_new_key_and_a_new_task():
    first = route_accounts(*committee("dana", "pat", "sam"))
    grown = route_accounts(*committee("dana", "pat", "sam", "quin"), state=saved(first.state),
                           now=NOW + timedelta(days=1))
    old, new = only(first).task, only(grown).task
    assert old is not None and new is not None and new.key != old.key
    assert new.key == committee_key(ACCOUNT.id, ENGAGED, ["engineering", "procurement", "product_management",
                                                          "quality"])
    assert "Why now\n- buying committee grew: quality joined" in new.note


def test_a_higher_account_tier_gives_a_new_key_and_a_new_task():
    first = route_accounts(*committee("dana", "pat", "sam"))
    higher = route_accounts(*committee("dana", "pat", "sam"), tier=HOT, state=saved(first.state))
    old, new = only(first).task, only(higher).task
    assert old is not None and new is not None and new.key != old.key
    assert "account moved up from Engaged account to Hot account" in new.note


def test_an_unchanged_committee_raises_nothing_on_the_next_run():
    first = route_accounts(*committee("dana", "pat", "sam"))
    key = only(first).task.key  # type: ignore[union-attr]
    again = route_accounts(*committee("dana", "pat", "sam"), state=saved(first.state),
                           now=NOW + timedelta(days=8))
    decision = only(again)
    assert decision.task is None
    assert decision.reasons[0].startswith(
        f"no account task: task {key} raised 2025-06-11 covers this committee")


def test_a_smaller_or_lower_committee_after_a_larger_one_raises_nothing():
    first = route_accounts(*committee("dana", "pat", "sam", "quin"), tier=HOT)
    smaller = route_accounts(*committee("dana", "pat", "sam"), state=saved(first.state))
    assert only(smaller).task is None
    back = route_accounts(*committee("dana", "pat", "sam", "quin"), tier=HOT, state=saved(smaller.state))
    assert only(back).task is None, "the committee it had already raised, not a new one"


def test_the_given_state_is_left_untouched_and_the_raised_committee_is_in_the_new_one():
    state = AssignmentState()
    result = route_accounts(*committee("dana", "pat", "sam"), state=state)
    assert state.committees == {}
    assert result.state.committees[ACCOUNT.id] == {
        "tier": ENGAGED, "roles": ["engineering", "procurement", "product_management"],
        "key": only(result).task.key, "at": NOW.isoformat()}  # type: ignore[union-attr]


def test_a_state_saved_before_committees_existed_still_loads():
    assert AssignmentState.from_dict({"credits": {}, "counts": {}, "owners": {}}).committees == {}


def test_an_account_owner_who_is_not_a_rep_gives_the_task_to_the_fallback_owner():
    unknown = Account(id=ACCOUNT.id, name=ACCOUNT.name, owner_id="005NOBODY", salesforce_id="001BRIGHT")
    cards, people = committee("dana", "pat", "sam")
    result = route_many(cards, people, rules(), accounts={ACCOUNT.id: unknown},
                        account_scores=account_score(), state=AssignmentState())
    decision = only(result)
    assert decision.owner == "sales-queue"
    assert "account owner '005NOBODY' is not a known rep" in decision.reasons


# --- into the CRMs --------------------------------------------------------------------------------------


DIRECTORY = OwnerDirectory({"katrin@vendor.com": {Crm.SALESFORCE: "005KATRIN", Crm.HUBSPOT: "77"}})


def test_the_account_task_goes_on_the_account_record_with_no_person():
    decision = only(route_accounts(*committee("dana", "pat", "sam")))
    routed = account_task_changes(decision, ACCOUNT, DIRECTORY, "sales-queue")
    (upsert,) = routed.changes
    assert upsert.crm is Crm.SALESFORCE and upsert.account_record_id == "001BRIGHT"
    assert upsert.person_record_id is None and upsert.person_id is None
    assert upsert.owner_id == "005KATRIN" and upsert.key == decision.task.key  # type: ignore[union-attr]
    assert routed.placement is not None and routed.placement.crms == (Crm.SALESFORCE,)
    assert routed.placement.person_id == ACCOUNT.id


def test_with_tasks_in_both_the_company_gets_the_same_task_in_hubspot():
    decision = only(route_accounts(*committee("dana", "pat", "sam")))
    routed = account_task_changes(decision, ACCOUNT, DIRECTORY, "sales-queue", tasks_in="both")
    assert [(u.crm, u.account_record_id, u.owner_id) for u in routed.changes] == [
        (Crm.SALESFORCE, "001BRIGHT", "005KATRIN"), (Crm.HUBSPOT, "9001", "77")]
    assert len({u.key for u in routed.changes}) == 1


def test_an_account_in_no_connected_crm_is_named_as_unplaced():
    decision = only(route_accounts(*committee("dana", "pat", "sam")))
    routed = account_task_changes(decision, ACCOUNT, DIRECTORY, "sales-queue", connected=())
    assert routed.changes == [] and routed.placement is not None
    assert routed.placement.problem == "the account has no record in a connected CRM"


# --- the playbook setting -------------------------------------------------------------------------------


SEMICONDUCTOR = (PLAYBOOKS / "semiconductor.yaml").read_text(encoding="utf-8")


def problems_with(old: str, new: str) -> list[str]:
    assert old in SEMICONDUCTOR
    with pytest.raises(PlaybookError) as info:
        parse_playbook(SEMICONDUCTOR.replace(old, new, 1))
    return info.value.problems


def test_the_bundled_playbooks_route_committees_at_their_top_account_tier():
    semiconductor = parse_playbook(SEMICONDUCTOR).routing
    industrial = parse_playbook((PLAYBOOKS / "industrial.yaml").read_text(encoding="utf-8")).routing
    assert semiconductor is not None and semiconductor.committee is not None
    assert semiconductor.committee.account_tiers == ("Engaged account",)
    assert industrial is not None and industrial.committee is not None
    assert industrial.committee.account_tiers == ("Active project",)


def test_an_unknown_account_tier_in_the_committee_is_reported_with_its_path():
    (problem,) = problems_with("account_tiers: [Engaged account]", "account_tiers: [Engaged acount]")
    assert problem.startswith("routing.committee.account_tiers: unknown account tier 'Engaged acount'")


def test_committee_tiers_must_be_listed_highest_first():
    (problem,) = problems_with("account_tiers: [Engaged account]",
                               "account_tiers: [Warming, Engaged account]")
    assert problem.startswith("routing.committee.account_tiers: list them highest first")


def test_an_unknown_role_or_sla_in_the_committee_is_reported():
    problems = problems_with("    min_roles: 3\n",
                             "    min_roles: 3\n    roles: [engineering, buyers, quality]\n")
    assert any(p.startswith("routing.committee.roles: unknown role 'buyers'") for p in problems)
    problems = problems_with("    sla: sales_ready\n    subject", "    sla: same_day\n    subject")
    assert any("committee.sla: unknown SLA 'same_day'" in p for p in problems)


def test_a_committee_that_could_never_reach_min_roles_is_reported():
    problems = problems_with("    min_roles: 3\n", "    min_roles: 6\n")
    assert any(p.startswith("routing.committee.min_roles: 6 roles can never engage: only 5 count")
               for p in problems)


def test_an_unknown_subject_placeholder_is_reported():
    problems = problems_with('subject: "Buying committee at {account}: {roles}"',
                             'subject: "{company}: {roles}"')
    assert any("unknown placeholders ['company']" in p for p in problems)


def test_leadloop_route_shows_the_committee_and_its_account_task():
    from rich.console import Console

    from leadloop.cli.route import print_result

    cards, people = committee("dana", "pat", "sam")
    result = route_accounts(cards, people)
    console = Console(record=True, width=250)
    print_result(console, result, {p.id: p.name for p in people} | {ACCOUNT.id: ACCOUNT.name}, notes=False)
    shown = console.export_text()
    assert "Buying committees" in shown and "Brightline Drives GmbH" in shown
    assert "engineering, procurement, product_management" in shown and "account task" in shown
    assert all(p.name in shown for p in people)
