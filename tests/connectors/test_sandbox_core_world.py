"""The generated world: deterministic, sized as promised, plausible, with its planted problems, and
with outcomes that follow fit and evaluation-stage intent (so a good model has real signal)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from leadloop.crm.dataset import dataset_from_dict
from leadloop.sandbox.export import world_to_dataset
from leadloop.sandbox.world import PERSONAL_DOMAINS, SIZES, STUDENT_TITLES, World, generate_world, roster

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DEEP = {"eval_kit_request", "sample_request", "contact_sales", "demo_request"}


@pytest.fixture(scope="module")
def small() -> World:
    return generate_world("small", 7, NOW)


def test_the_same_seed_gives_the_same_world_and_another_seed_another() -> None:
    first, again, other = (generate_world("tiny", s, NOW) for s in (3, 3, 4))
    assert first == again
    assert [h.email for h in first.humans] != [h.email for h in other.humans]


def test_sizes_are_as_promised(small: World) -> None:
    assert len(generate_world("tiny", 1, NOW).humans) == SIZES["tiny"] == 50
    assert len(small.humans) == 2_000 and len(small.companies) == 400
    assert 15 <= len(small.events) / len(small.humans) <= 25  # about 20 events a person, as at large


def test_an_unknown_size_is_refused() -> None:
    with pytest.raises(ValueError, match="huge"):
        generate_world("huge", 1, NOW)


def test_activity_spans_eighteen_months_up_to_now(small: World) -> None:
    times = [e.occurred_at for e in small.events]
    assert max(times) <= NOW
    assert timedelta(days=500) < NOW - min(times) <= timedelta(days=18 * 31)
    assert all(t.tzinfo is not None for t in times[:100])


def test_the_world_has_segments_regions_and_accounts_outside_the_profile(small: World) -> None:
    segments = {c.segment for c in small.companies}
    assert {"automotive power", "industrial motor control", "IoT/wearables", "data center power", "medical",
            "factory automation", "renewables/energy"} <= segments
    assert {"Retail", "Management Consulting", "Higher Education"} <= {c.industry for c in small.companies}
    assert {c.region for c in small.companies} == {"NA", "EMEA", "APAC"}
    assert {"competitor", "partner", "distributor", "customer", "prospect"} <= {
        c.customer_type for c in small.companies}
    assert {r.region for r in small.reps} == {"NA", "EMEA", "APAC"} and not all(r.active for r in small.reps)
    assert all(r.time_zone.count("/") == 1 for r in small.reps)


def test_the_sales_team_is_a_fixed_roster_whatever_the_seed_or_size(small: World) -> None:
    tiny, other = generate_world("tiny", 1, NOW), generate_world("tiny", 99, NOW)
    assert small.reps == tiny.reps == other.reps == roster()
    assert 12 <= len(small.reps) <= 16 and 1 <= sum(not r.active for r in small.reps) <= 2
    assert all(r.email.endswith("@voltaris-semi.com") for r in small.reps)
    assert len({r.email for r in small.reps}) == len(small.reps)
    reps = {r.key: r for r in small.reps}
    for company in small.companies:  # each account is owned in its region, by its segment's reps if any
        owner = reps[company.owner_rep]
        assert owner.region == company.region
        assert not owner.segments or company.segment in owner.segments


def test_people_carry_the_planted_problems(small: World) -> None:
    humans = small.humans
    emails = Counter(h.email for h in humans if h.email)
    assert any(n > 1 for n in emails.values()), "duplicate emails"
    assert any(h.email and ("@" not in h.email or h.email.endswith("@") or " at " in h.email
                            or "@@" in h.email) for h in humans), "invalid emails"
    assert sum(1 for h in humans if h.email and h.email.rsplit("@", 1)[-1] in PERSONAL_DOMAINS) > 50
    competitors = {c.domain for c in small.companies if c.customer_type == "competitor"}
    assert any(h.email and h.email.rsplit("@", 1)[-1] in competitors for h in humans)
    assert sum(1 for h in humans if h.title in STUDENT_TITLES) > 20
    messy = {"Sr. HW Eng.", "Principal Engineer – Power", "Buyer II", "VP Supply Chain", "n/a"}
    assert messy <= {h.title for h in humans}
    assert any(h.title is None for h in humans) and any(h.country is None for h in humans)
    assert any(h.unsubscribed for h in humans) and any(h.bounced for h in humans)
    domains = Counter(c.domain for c in small.companies)
    assert any(n > 1 for n in domains.values()), "accounts sharing a domain"


def test_the_same_person_is_in_both_crms_and_contacts_belong_to_salesforce_accounts(small: World) -> None:
    companies = {c.key: c for c in small.companies}
    assert sum(1 for h in small.humans if h.salesforce_kind and h.in_hubspot) > 500
    assert all(companies[h.company_key].in_salesforce for h in small.humans
               if h.salesforce_kind == "contact" and h.company_key)
    assert all(c.in_salesforce or c.in_hubspot for c in small.companies)
    assert any(h.converted for h in small.humans)


def test_every_activity_kind_and_campaign_type_occurs(small: World) -> None:
    assert {e.kind for e in small.events} == {
        "page_view", "form_fill", "asset_download", "eval_kit_request", "sample_request", "demo_request",
        "contact_sales", "webinar_registered", "webinar_attended", "trade_show_scan", "workshop_attended",
        "partner_referral", "email_open", "email_click", "unsubscribe", "hard_bounce", "sales_call",
        "sales_email", "meeting"}
    assert {c.type for c in small.campaigns} == {"webinar", "trade_show", "workshop", "partner_referral",
                                                  "email"}
    assert {c.breadth for c in small.campaigns if c.type == "webinar"} == {"narrow", "broad"}
    assert {e.channel for e in small.events} == {"salesforce", "hubspot"}
    humans = {h.key: h for h in small.humans}
    assert all(humans[e.human_key].in_hubspot for e in small.events if e.channel == "hubspot")
    assert all(humans[e.human_key].salesforce_kind for e in small.events if e.channel == "salesforce")


def test_outcomes_follow_evaluation_stage_intent(small: World) -> None:
    deep: dict[str, int] = defaultdict(int)
    for event in small.events:
        if event.kind in DEEP:
            deep[event.human_key] += 1
    on_deal = {key for deal in small.deals for key in deal.contact_keys}

    def deal_rate(people: list) -> float:
        return sum(h.key in on_deal for h in people) / len(people)

    evaluators = [h for h in small.humans if deep[h.key] >= 2]
    others = [h for h in small.humans if deep[h.key] == 0]
    students = [h for h in small.humans if h.title in STUDENT_TITLES]
    assert deal_rate(evaluators) > 4 * deal_rate(others)
    assert deal_rate(students) < 0.02
    assert any(d.is_won for d in small.deals) and any(d.is_closed and not d.is_won for d in small.deals)
    assert any(not d.is_closed for d in small.deals)


def test_the_export_loads_as_a_canonical_dataset_except_the_planted_invalid_emails(small: World) -> None:
    dataset = dataset_from_dict(world_to_dataset(small))
    assert len(dataset.accounts) == 400 and len(dataset.activities) == len(small.events)
    assert len(dataset.opportunities) == len(small.deals) and len(dataset.assets) == len(small.assets)
    assert dataset.invalid and all(i.kind == "people" and "email" in str(i) for i in dataset.invalid)
    assert len(dataset.people) + len(dataset.invalid) == 2_000


def test_the_tiny_world_for_quick_functional_tests_loads_without_a_rejected_record() -> None:
    dataset = dataset_from_dict(world_to_dataset(generate_world("tiny", 7, NOW)))
    assert not dataset.invalid and len(dataset.people) == 50
