"""The scoring engine keeps the playbook's promises, one rule kind at a time."""

import random

from test_scoring_support import (
    NOW,
    PLAYBOOKS,
    SITE,
    activity,
    auto_account,
    card,
    committee,
    datasheet_download,
    engineer,
    evk_request,
    industrial,
    motor_account,
    page_view,
    score,
    semiconductor,
    texts,
)

from leadloop.crm.dataset import Dataset
from leadloop.crm.records import Account, Person
from leadloop.playbook.load import parse_playbook
from leadloop.scoring.diff import explain_diff
from leadloop.scoring.engine import score_account, score_dataset, score_person


def test_requests_are_worth_more_than_downloads():
    people = [engineer("p1"), engineer("p2")]
    result = score(people, [evk_request("p1"), datasheet_download("p2")], [auto_account()])
    assert result.cards["p1"].intent > result.cards["p2"].intent > 0


def test_an_activity_one_half_life_old_is_worth_half():
    fresh = card([engineer()], [evk_request(days_ago=0)], [auto_account()])
    old = card([engineer()], [evk_request(days_ago=60)], [auto_account()])
    assert abs(old.intent / fresh.intent - 0.5) < 0.01
    assert any(r.kind == "decay" and "half-life 60 days" in r.text for r in old.reasons)


def test_activity_older_than_the_maximum_age_counts_nothing():
    assert card([engineer()], [evk_request(days_ago=400)], [auto_account()]).intent == 0


def test_activities_after_the_scoring_time_are_ignored():
    result = score([engineer()], [evk_request(days_ago=-1)], [auto_account()])
    assert result.cards["p1"].intent == 0 and result.future_activities == 1


def test_segment_relevant_assets_earn_the_relevance_bonus():
    automotive = card([engineer()], [datasheet_download()], [auto_account()])
    industrial_sheet = card(
        [engineer()], [activity("p1", "asset_download", 2, url=f"{SITE}/docs/ds/gd-40.pdf")], [auto_account()]
    )
    assert automotive.intent > industrial_sheet.intent
    assert any(r.rule == "relevance" and "+25%" in r.text for r in automotive.reasons)


def test_tracking_parameters_do_not_change_what_an_activity_is():
    # The same page, download and application page, with and without query strings and fragments,
    # interleaved with other activity, read and count the same for two people.
    plain, tracked = f"{SITE}/docs/ds/pmic-77.pdf", f"{SITE}/docs/ds/pmic-77.pdf?utm_source=mail&utm_id="
    activities = [evk_request("p1"), evk_request("p2")]
    for k in range(4):
        activities += [
            activity("p1", "asset_download", 2 + k, url=plain),
            activity("p2", "asset_download", 2 + k, url=f"{tracked}{k}"),
            page_view("p1", 3 + k),
            page_view("p2", 3 + k, path=f"/applications/automotive/bms?utm_id={k}#specs"),
        ]
    result = score([engineer("p1"), engineer("p2")], activities, [auto_account()])
    one, two = result.cards["p1"], result.cards["p2"]
    assert one.intent == two.intent > 0 and one.stage == two.stage and one.escalation == two.escalation
    assert texts(one) == texts(two)
    assert result.unmatched_activities.total == 0
    assert {r.rule for r in two.reasons if r.kind == "intent"} >= {
        "evk_request",
        "technical_download",
        "application_visit",
    }


def test_frequency_caps_count_only_the_most_valuable_occurrences_per_window():
    three = [datasheet_download(days_ago=d) for d in (1, 2, 3)]
    five = three + [datasheet_download(days_ago=d) for d in (10, 12)]
    assert (
        card([engineer()], three, [auto_account()]).intent
        == card([engineer()], five, [auto_account()]).intent
    )
    five_texts = texts(card([engineer()], five, [auto_account()]))
    assert any("(3 times, last on 2026-10-31)" in t for t in five_texts)


def test_group_caps_are_visible_as_reasons():
    events = [
        activity("p1", "workshop_attended", 1, campaign_name="BMS workshop Munich"),
        activity("p1", "webinar_attended", 1, campaign_name="ASIL-D power for ADAS domain controllers"),
        activity("p1", "trade_show_scan", 1, campaign_name="electronica 2026"),
        activity("p1", "webinar_registered", 2, campaign_name="roadmap webinar"),
    ]
    result = card([engineer()], events, [auto_account()])
    assert any(t.startswith("-") and "capped at 30: event points" in t for t in texts(result))


def test_repeat_visits_to_application_pages_are_a_depth_signal():
    three = card([engineer()], [page_view(days_ago=d) for d in (1, 5, 9)], [auto_account()])
    two = card([engineer()], [page_view(days_ago=d) for d in (1, 5)], [auto_account()])
    assert any("came back to application pages of their segment 3 times" in t for t in texts(three))
    assert not any("came back" in t for t in texts(two))


def test_time_on_technical_pages_is_a_depth_signal():
    long_reads = [page_view(days_ago=d, path="/docs/ds/pmic-77.pdf", duration_seconds=500) for d in (1, 2)]
    short_read = [page_view(days_ago=1, path="/docs/ds/pmic-77.pdf", duration_seconds=500)]
    assert any(
        "spent 16.7 minutes on technical pages" in t
        for t in texts(card([engineer()], long_reads, [auto_account()]))
    )
    assert not any("spent" in t for t in texts(card([engineer()], short_read, [auto_account()])))


def test_reasons_are_sentences_with_signed_points_assets_and_the_day_it_happened():
    result = card([engineer()], [evk_request(days_ago=2)], [auto_account()])
    assert "+30 requested the EVK-7710 evaluation kit on 2026-10-30" in texts(result)
    evk = next(r for r in result.reasons if r.rule == "evk_request")
    assert evk.asset == "evk_7710" and evk.occurred_at is not None
    assert evk.says == "requested the EVK-7710 evaluation kit on 2026-10-30"


def test_a_reason_contributes_its_points_after_decay_and_relevance_times_its_blend_weight():
    result = card([engineer()], [evk_request(days_ago=60)], [auto_account()])  # one half-life old
    evk = next(r for r in result.reasons if r.rule == "evk_request")
    weight = semiconductor().blend.contact_intent
    assert evk.points == 30 and abs(evk.contribution - weight * 30 * 1.25 * 0.5) < 1e-9  # relevant: +25%
    assert all(r.contribution == 0 for r in result.reasons if r.kind in ("decay", "cap", "escalation"))
    assert abs(sum(r.contribution for r in result.reasons) - result.score) < 0.1


def test_firmographics_alone_cannot_make_a_lead_sales_ready():
    perfect = card([engineer(title="VP Engineering")], [], [auto_account(customer_type="customer")])
    assert perfect.tier != semiconductor().top_tier
    assert perfect.score <= semiconductor().blend.static_cap
    assert any("capped at 35: lead-score points from fit" in t for t in texts(perfect))


def test_fit_and_intent_stay_visible_separately():
    result = card([engineer()], [evk_request()], [auto_account()])
    assert result.fit > 0 and result.intent > 0 and result.account_fit > 0 and result.contact_fit > 0
    assert result.score not in (result.fit, result.intent)


def test_size_bands_give_the_points_of_the_band_reached():
    small = score([engineer()], [], [auto_account(employees=120)]).accounts["acc-auto"]
    large = score([engineer()], [], [auto_account(employees=12000)]).accounts["acc-auto"]
    assert large.fit - small.fit == 10
    assert any(r.text == "+15 employees: 12,000 (5,000+)" for r in large.reasons)


def test_each_profile_scores_its_own_accounts_and_unfitting_accounts_get_none():
    result = score(
        [engineer("p1"), engineer("p2", account_id="acc-motor"), engineer("p3", account_id="acc-toys")],
        [],
        [auto_account(), motor_account(), Account(id="acc-toys", industry="Consumer")],
    )
    assert result.cards["p1"].profile == "automotive_power"
    assert result.cards["p2"].profile == "industrial_motor_control"
    assert result.cards["p3"].profile is None and result.cards["p3"].account_fit == 0


def test_the_best_of_several_applicable_profiles_is_kept_and_named():
    text = (
        (PLAYBOOKS / "semiconductor.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "in: [Automotive, Automotive Electronics, Electric Vehicles, Transportation]",
            "in: [Automotive, Automotive Electronics, Electric Vehicles, Transportation, Motor Drives]",
            1,
        )
    )
    both = parse_playbook(text)
    result = score([engineer(account_id="acc-motor")], [], [motor_account()], playbook=both)
    assert result.cards["p1"].profile == "industrial_motor_control"
    assert any("best profile: Industrial motor control" in r.text for r in result.cards["p1"].reasons)


def test_roles_are_weighted_in_contact_fit():
    result = score([engineer("p1"), engineer("p2", title="Marketing Coordinator")], [], [auto_account()])
    assert result.cards["p1"].contact_fit > result.cards["p2"].contact_fit
    assert result.cards["p1"].role == "engineering" and result.cards["p1"].seniority == "senior"


def test_unsubscribing_lowers_intent():
    kept = card([engineer()], [evk_request()], [auto_account()])
    left = card([engineer()], [evk_request(), activity("p1", "unsubscribe", 3)], [auto_account()])
    assert round(kept.intent - left.intent, 1) == 15
    assert any(r.kind == "negative" and "unsubscribed" in r.text for r in left.reasons)


def test_a_personal_email_domain_lowers_fit():
    work = card([engineer()], [], [auto_account()])
    personal = card([engineer(email="anna.k@gmail.com")], [], [auto_account()])
    assert round(work.contact_fit - personal.contact_fit, 1) == 15


def test_a_misaligned_application_lowers_fit():
    toys = Account(id="acc-toys", industry="Consumer", application="Toys")
    result = card([engineer(account_id="acc-toys")], [], [toys])
    assert any(r.rule == "misaligned_application" and r.points == -20 for r in result.reasons)


def test_students_are_disqualified_even_after_an_evaluation_kit_request():
    student = card([engineer(title="PhD Student")], [evk_request()], [auto_account()])
    assert student.disqualified == "student" and student.escalation is None
    assert student.tier == semiconductor().lowest_tier


def test_competitors_and_partner_owned_leads_are_disqualified():
    result = score(
        [
            engineer("p1", account_id="acc-rival"),
            engineer("p2", email="x@vortexsemi.com"),
            engineer("p3", partner_owned=True),
        ],
        [evk_request(p) for p in ("p1", "p2", "p3")],
        [auto_account(), Account(id="acc-rival", industry="Semiconductors", customer_type="competitor")],
    )
    assert [result.cards[p].disqualified for p in ("p1", "p2", "p3")] == [
        "competitor_account",
        "competitor_domain",
        "partner_owned",
    ]
    assert all(c.tier != semiconductor().top_tier for c in result.cards.values())


def test_an_evaluation_kit_request_with_enough_fit_escalates_to_the_top_tier_with_its_sla():
    result = card(
        [engineer(title="Marketing Coordinator", department=None)],
        [evk_request(days_ago=20)],
        [auto_account()],
    )
    assert result.escalation is not None and result.escalation.sla == "4h"
    assert result.tier == semiconductor().top_tier


def test_no_escalation_below_the_minimum_fit():
    loner = card([engineer(account_id=None, title="Consultant", department=None)], [evk_request()])
    assert loner.fit < 35 and loner.escalation is None


def test_account_intent_has_diminishing_returns_and_a_committee_bonus():
    people = committee()
    acts = [evk_request("p1"), datasheet_download("p2"), datasheet_download("p3")]
    result = score(people, acts, [auto_account()])
    account = result.accounts["acc-auto"]
    intents = sorted((result.cards[p].intent for p in ("p1", "p2", "p3")), reverse=True)
    expected = intents[0] + 0.5 * intents[1] + 0.25 * intents[2] + 16
    assert abs(account.intent - expected) < 0.2
    assert account.buying_roles == ("engineering", "procurement", "quality")
    assert any("buying committee" in r.text for r in account.reasons)


def test_score_account_rolls_up_from_scorecards():
    people = [engineer("p1"), engineer("p2", title="Buyer II")]
    result = score(people, [evk_request("p1"), datasheet_download("p2")], [auto_account()])
    again = score_account(semiconductor(), auto_account(), result.cards.values())
    assert again.intent == result.accounts["acc-auto"].intent


def test_a_person_without_an_account_still_scores():
    loner = card([engineer(account_id=None)], [evk_request()])
    assert loner.intent > 0 and loner.account_fit == 0 and loner.account_intent == 0 and loner.profile is None


def test_the_stage_reached_is_the_furthest_asset_stage():
    assert card([engineer()], [page_view()], [auto_account()]).stage == "learn"
    assert card([engineer()], [page_view(), evk_request()], [auto_account()]).stage == "validate"
    assert (
        card(
            [engineer()], [activity("p1", "contact_sales", 1, form_name="Contact sales")], [auto_account()]
        ).stage
        == "buy"
    )


def test_tiers_and_the_fit_by_intent_grade():
    result = card([engineer()], [evk_request()], [auto_account()])
    assert result.tier == "Sales priority" and result.grade == "A2"


def test_unknown_titles_and_unmatched_activities_are_reported():
    result = score(
        [engineer(title="Wizard of Light Bulb Moments")], [page_view(path="/careers/jobs")], [auto_account()]
    )
    assert result.unknown_titles == {"Wizard of Light Bulb Moments": 1}
    assert result.unmatched_activities.total == 1 and result.unmatched_activities.by_kind == {"page_view": 1}


def test_score_person_matches_the_batch_scorecard():
    acts = [evk_request(), datasheet_download()]
    single = score_person(semiconductor(), engineer(), acts, NOW, account=auto_account())
    assert single == card([engineer()], acts, [auto_account()])


def test_scoring_does_not_depend_on_record_order():
    people = [engineer(f"p{i}", title=t) for i, t in enumerate(["Sr. HW Eng.", "Buyer II", "CTO", "Intern"])]
    acts = [
        evk_request("p0"),
        datasheet_download("p1"),
        page_view("p2"),
        page_view("p2", 3),
        evk_request("p3"),
    ]
    first = score(people, acts, [auto_account()])
    random.Random(4).shuffle(people)
    random.Random(5).shuffle(acts)
    again = score(people, acts, [auto_account()])
    assert first.cards == again.cards and first.accounts == again.accounts


def test_the_explanation_diff_names_what_moved_the_score():
    before = card([engineer()], [datasheet_download()], [auto_account()])
    after = card(
        [engineer()],
        [datasheet_download(), activity("p1", "sample_request", 1, form_name="PMIC-77 sample request")],
        [auto_account()],
    )
    lines = explain_diff(before, after)
    assert lines[0].startswith("+")
    assert "since last score: requested PMIC-77 samples on 2026-10-31" in lines[0]
    assert "tier: Nurture → Sales priority" in lines
    # in the units of the CRM's reason lines: what each adds to the score, not the rule's own points
    [sample] = [r for r in after.reasons if r.kind == "intent" and "PMIC-77 samples" in r.text]
    assert round(sample.contribution) != sample.points
    assert f"new: +{round(sample.contribution)} {sample.says}" in lines


def test_the_bundled_example_dataset_loads_cleanly_and_scores_with_the_bundled_playbook():
    from leadloop.crm.dataset import load_dataset
    from leadloop.playbook.load import load_playbook

    dataset = load_dataset(PLAYBOOKS / "example_dataset.json")
    assert not dataset.invalid and len(dataset.people) >= 24
    result = score_dataset(load_playbook(PLAYBOOKS / "semiconductor.yaml"), dataset, NOW)
    assert len(result.cards) == len(dataset.people)


def test_the_industrial_playbook_scores_machine_builders_and_escalates_loaner_requests():
    builder = Account(
        id="acc-pack",
        industry="Packaging Machinery",
        segment="OEM",
        application="Packaging lines",
        region="EMEA",
        employees=400,
    )
    person = Person(id="p1", account_id="acc-pack", email="m@pack.example", title="Controls Engineer")
    loaner = activity("p1", "sample_request", 2, form_name="KM-400 loaner request")
    result = score_dataset(
        industrial(), Dataset(accounts=[builder], people=[person], activities=[loaner]), NOW
    )
    scored = result.cards["p1"]
    assert scored.profile == "machine_builders" and scored.escalation.sla == "1bd"
    assert scored.tier == "Sales priority"
