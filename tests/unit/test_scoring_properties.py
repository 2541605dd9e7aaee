"""Properties the engine keeps for any records (hypothesis)."""

import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_scoring_support import NOW, SITE, auto_account, motor_account, score, semiconductor

from leadloop.crm.records import Account, Activity, Person

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ACCOUNTS = [auto_account(), motor_account(), Account(id="acc-toys", industry="Consumer", application="Toys")]
TITLES = [
    "Sr. HW Eng.",
    "Buyer II",
    "VP Supply Chain",
    "Supplier Quality Engineer",
    "CTO",
    "PhD Student",
    "Wizard",
    None,
]
POSITIVE = [
    ("page_view", {"url": SITE + "/applications/automotive/bms"}),
    ("page_view", {"url": SITE + "/applications/motor-control/servo"}),
    ("page_view", {"url": SITE + "/docs/ds/pmic-77.pdf", "duration_seconds": 400.0}),
    ("page_view", {"url": SITE + "/pricing/pmic-77"}),
    ("page_view", {"url": SITE + "/careers"}),
    ("asset_download", {"url": SITE + "/docs/ds/pmic-77.pdf"}),
    ("asset_download", {"url": SITE + "/docs/an/an-230.pdf"}),
    ("asset_download", {"url": SITE + "/reference-designs/rd-4812"}),
    ("eval_kit_request", {"form_name": "EVK-7710 request"}),
    ("sample_request", {"form_name": "GD-40 sample request"}),
    ("contact_sales", {"form_name": "Contact sales"}),
    ("webinar_attended", {"campaign_name": "SiC gate-drive design pitfalls"}),
    ("webinar_registered", {"campaign_name": "roadmap webinar"}),
    ("workshop_attended", {"campaign_name": "BMS workshop Munich"}),
    ("trade_show_scan", {"campaign_name": "electronica 2026"}),
    ("partner_referral", {"campaign_name": "Distributor referral"}),
    ("email_click", {"url": SITE + "/products/gd-40"}),
    ("email_open", {"campaign_name": "Engineering newsletter"}),
]
NEGATIVE = [("unsubscribe", {}), ("hard_bounce", {})]

people_st = st.lists(
    st.builds(
        lambda i, title, account, email, owned: Person(
            id=f"p{i}", title=title, account_id=account, email=email, partner_owned=owned
        ),
        st.integers(0, 5),
        st.sampled_from(TITLES),
        st.sampled_from(["acc-auto", "acc-motor", "acc-toys", None]),
        st.sampled_from(["x@voltra-auto.de", "y@gmail.com", "z@vortexsemi.com", None]),
        st.booleans(),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda p: p.id,
)


def activity_st(kinds=POSITIVE + NEGATIVE, person_ids=("p0", "p1", "p2", "p3", "p4", "p5")):
    return st.builds(
        lambda kind, pid, days, n: Activity(
            id=f"a{n}", person_id=pid, kind=kind[0], occurred_at=NOW - timedelta(days=days), **kind[1]
        ),
        st.sampled_from(kinds),
        st.sampled_from(person_ids),
        st.floats(0, 400),
        st.integers(0, 10**9),
    )


@PROPERTY_SETTINGS
@given(
    st.lists(activity_st(person_ids=("p1",)), max_size=25),
    activity_st(POSITIVE, ("p1",)),
    st.sampled_from(["acc-auto", "acc-motor", None]),
)
def test_adding_a_positive_activity_never_lowers_intent(activities, extra, account):
    person = [Person(id="p1", title="Sr. HW Eng.", account_id=account)]
    before = score(person, activities, ACCOUNTS).cards["p1"]
    after = score(person, [*activities, extra], ACCOUNTS).cards["p1"]
    assert after.intent >= before.intent


@PROPERTY_SETTINGS
@given(st.sampled_from(POSITIVE), st.floats(0, 500), st.floats(0, 300), st.sampled_from(["acc-auto", None]))
def test_an_identical_activity_further_in_the_past_is_never_worth_more(kind, days, older_by, account):
    person = [Person(id="p1", title="Sr. HW Eng.", account_id=account)]

    def worth(days_ago: float) -> float:
        act = Activity(
            id="a", person_id="p1", kind=kind[0], occurred_at=NOW - timedelta(days=days_ago), **kind[1]
        )
        return score(person, [act], ACCOUNTS).cards["p1"].intent

    assert worth(days + older_by) <= worth(days)


@PROPERTY_SETTINGS
@given(people_st, st.lists(activity_st(), max_size=60))
def test_no_cap_is_ever_exceeded(people, activities):
    pb = semiconductor()
    result = score(people, activities, ACCOUNTS)
    for card in result.cards.values():
        assert 0 <= card.intent <= pb.intent.cap
        assert 0 <= card.contact_fit <= pb.contact_fit.cap
        assert 0 <= card.account_fit <= 100 and 0 <= card.fit <= 100
        static = (
            card.score - pb.blend.contact_intent * card.intent - pb.blend.account_intent * card.account_intent
        )
        assert static <= pb.blend.static_cap + 0.11
        assert 0 <= card.score <= 100
    for account in result.accounts.values():
        assert 0 <= account.intent <= pb.account.intent.cap


@PROPERTY_SETTINGS
@given(people_st, st.lists(activity_st(), max_size=60))
def test_a_disqualified_person_is_never_in_the_top_tier(people, activities):
    result = score(people, activities, ACCOUNTS)
    for card in result.cards.values():
        if card.disqualified:
            assert card.tier != semiconductor().top_tier and card.escalation is None


@PROPERTY_SETTINGS
@given(people_st, st.lists(activity_st(), max_size=60), st.integers(0, 1000))
def test_scoring_is_deterministic_and_independent_of_record_order(people, activities, seed):
    first = score(people, activities, ACCOUNTS)
    shuffled_people, shuffled_activities, shuffled_accounts = list(people), list(activities), list(ACCOUNTS)
    for items in (shuffled_people, shuffled_activities, shuffled_accounts):
        random.Random(seed).shuffle(items)
    again = score(shuffled_people, shuffled_activities, shuffled_accounts)
    assert first.cards == again.cards
    assert first.accounts == again.accounts
