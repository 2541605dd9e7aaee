"""The write plan writes what changed and nothing else: time alone rewrites nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadloop.crm.changes import FieldUpdate, ObjectType
from leadloop.crm.ports import WriteResult
from leadloop.crm.records import Crm
from leadloop.scoring.scorecard import AccountScore, Reason, ReasonKind, ScoreCard
from leadloop.store import open_store
from leadloop.store.writeplan import (
    REASONS_MAX_CHARS,
    desired_account_fields,
    desired_person_fields,
    field_updates,
    mapped_fields,
    plan_writes,
    reasons_text,
    whole_points,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
SF = Crm.SALESFORCE
SF_PERSON = {"fit_score": "LL_Fit_Score__c", "intent_score": "LL_Intent_Score__c", "score": "LL_Score__c",
             "tier": "LL_Tier__c", "reasons": "LL_Reasons__c", "model_version": "LL_Model_Version__c",
             "scored_at": "LL_Scored_At__c", "nurture_track": "LL_Nurture_Track__c",
             "likelihood": "LL_Likelihood__c"}
SF_ACCOUNT = {"account_fit": "LL_Account_Fit__c", "account_intent": "LL_Account_Intent__c",
              "account_tier": "LL_Account_Tier__c", "buying_roles": "LL_Buying_Roles__c"}


def reason(points: float, text: str, kind: ReasonKind = ReasonKind.INTENT,
           contribution: float | None = None) -> Reason:
    """A reason line; it adds its own points to the score unless `contribution` says otherwise."""
    return Reason(kind=kind, rule=text[:10], points=points, text=text,
                  contribution=points if contribution is None else contribution)


def card(fit: float = 40, intent: float = 35.5, tier: str = "warm", at: datetime = T0,
         reasons: tuple[Reason, ...] = (), model: str = "semi-2024.05") -> ScoreCard:
    reasons = reasons or (reason(25, "+25 requested EVK-7710 evaluation kit on 2024-04-29"),)
    return ScoreCard(person_id="person:ana@acme-semi.com", account_id=None, model_version=model, scored_at=at,
                     profile=None, fit=fit, intent=intent, account_fit=0, account_intent=0,
                     score=fit + intent, tier=tier, reasons=reasons)


def desired(c: ScoreCard, record_id: str = "00QA") -> list[FieldUpdate]:
    return field_updates(SF, ObjectType.PERSON, record_id, desired_person_fields(c), person_id=c.person_id)


def ledger_after(updates: list[FieldUpdate], ledger: dict | None = None) -> dict[tuple[str, str], str]:
    from leadloop.store.writeplan import ledger_text

    ledger = dict(ledger or {})
    for u in updates:
        ledger[(u.record_id, u.field)] = ledger_text(u.value)
    return ledger


def fields(updates: list[FieldUpdate]) -> list[str]:
    return [u.field for u in updates]


# -- rendering -----------------------------------------------------------------------------------

def test_person_fields_are_rendered_as_the_crm_stores_them():
    values = desired_person_fields(card(fit=40.4, intent=32.1))

    assert values == {
        "fit_score": 40, "intent_score": 32, "score": 73, "tier": "warm",
        "reasons": "+25 requested EVK-7710 evaluation kit on 2024-04-29; other signals +48",
        "model_version": "semi-2024.05",
        "scored_at": "2024-05-01T12:00:00Z",
        "likelihood": None,  # the card's playbook has no calibration
    }


def test_scores_round_half_up_to_whole_points():
    assert [whole_points(v) for v in (72.5, 72.49, 0.5, -2.5, 100.0)] == [73, 72, 1, -3, 100]


def test_scored_at_is_utc_in_whole_seconds():
    cest = datetime(2024, 5, 1, 14, 0, 59, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert desired_person_fields(card(at=cest))["scored_at"] == "2024-05-01T12:00:59Z"


def test_reasons_put_disqualifiers_first_then_the_biggest_contributions_and_stay_plain_text():
    text = reasons_text([
        reason(5, "+5 opened the newsletter"),
        reason(-20, "-20 competitor domain", ReasonKind.NEGATIVE),
        reason(30, "+30 asked for samples\nof the MCU"),
        reason(0, "disqualified: student email", ReasonKind.DISQUALIFIER),
    ])
    assert text == ("disqualified: student email; +30 asked for samples of the MCU; -20 competitor domain; "
                    "+5 opened the newsletter")


def test_reasons_state_what_each_line_adds_to_the_score_today_and_add_up_to_it():
    lines = [
        reason(30, "+30 requested the EVK-7710 evaluation kit on 2026-11-28", contribution=6.6),
        reason(91.9, "+91.9 activity at their account: 3 engaged people", ReasonKind.ACCOUNT, 36.76),
        reason(-252.1, "-252.1 decay: older activity counts less", ReasonKind.DECAY, 0.0),
        reason(-15, "-15 uses a personal email address", ReasonKind.NEGATIVE, -2.25),
        *[reason(5, f"+5 downloaded app note {n} on 2026-11-2{n}", contribution=0.4) for n in range(9)],
    ]
    text = reasons_text(lines, top=3, score=45)
    assert text == ("+37 activity at their account: 3 engaged people; "
                    "+7 requested the EVK-7710 evaluation kit on 2026-11-28; "
                    "-2 uses a personal email address; +0.4 downloaded app note 0 on 2026-11-20; "
                    "other signals +2.6")  # 37 + 7 - 2 + 0.4 + 2.6 = 45: the rest and the rounding


def test_every_negative_is_written_however_small_and_however_many_lines_weigh_more():
    lines = [reason(10 + n, f"+{10 + n} visited page {n}") for n in range(12)]
    lines.append(reason(-15, "-15 unsubscribed from marketing email on 2026-11-02", ReasonKind.NEGATIVE,
                        -0.3))
    lines.append(reason(-10, "-10 email address hard-bounces", ReasonKind.NEGATIVE, 0.0))
    text = reasons_text(lines, score=120)
    assert "-0.3 unsubscribed from marketing email on 2026-11-02" in text
    assert "±0 email address hard-bounces" in text
    assert text.count("visited page") == 6 and text.endswith("other signals +9.3")  # 120 - 111 + 0.3


def test_reasons_never_exceed_the_field_limit_and_cut_between_reasons():
    many = [reason(100 - n, f"+{100 - n} " + "visited the SiC MOSFET reference design page " * 2)
            for n in range(60)]
    text = reasons_text(many, top=60)
    assert len(text) <= REASONS_MAX_CHARS
    assert text.endswith("page")
    long_one = reasons_text([reason(10, "x" * 5000)])
    assert len(long_one) == REASONS_MAX_CHARS and long_one.endswith("…")


def test_lines_cut_for_the_field_limit_go_into_other_signals_so_the_sum_still_holds():
    many = [reason(100 - n, f"+{100 - n} " + "visited the SiC MOSFET reference design page " * 2)
            for n in range(60)]
    text = reasons_text(many, top=60, score=4230)
    assert len(text) <= REASONS_MAX_CHARS
    shown = [int(part.split(" ", 1)[0]) for part in text.split("; ")[:-1]]
    assert shown == list(range(100, 100 - len(shown), -1))  # the largest lines, the rest in "other signals"
    assert text.endswith(f"other signals +{4230 - sum(shown)}")


def test_account_fields_are_rendered_as_the_crm_stores_them():
    score = AccountScore(account_id="account:acme-semi.com", model_version="m1", fit=71.5, intent=44.2,
                         tier="engaged", buying_roles=("engineer", "procurement"))
    assert desired_account_fields(score) == {
        "account_fit": 72, "account_intent": 44, "account_tier": "engaged",
        "buying_roles": "engineer, procurement",
    }


# -- planning ----------------------------------------------------------------------------------------

def test_a_record_never_written_gets_every_field():
    updates = desired(card())
    # but an empty likelihood (no calibration): there is nothing to clear where nothing was written
    assert plan_writes(updates, {}) == [u for u in updates if u.field != "likelihood"]


def test_the_passing_of_time_alone_writes_nothing():
    first = desired(card())
    later = desired(card(at=T0 + timedelta(hours=1)))
    assert plan_writes(later, ledger_after(first)) == []


def test_a_decaying_score_that_moved_less_than_the_minimum_in_the_same_tier_is_not_rewritten():
    first = desired(card(intent=35))
    decayed = desired(card(intent=32, at=T0 + timedelta(hours=5),
                           reasons=(reason(22, "+22 requested EVK-7710 evaluation kit 3 days ago"),)))
    assert plan_writes(decayed, ledger_after(first), min_change=5) == []


def test_a_decaying_score_that_moved_by_the_minimum_is_written_with_its_time_and_reasons():
    first = desired(card(intent=35))
    decayed = desired(card(intent=30, at=T0 + timedelta(hours=9),
                           reasons=(reason(20, "+20 requested EVK-7710 evaluation kit 4 days ago"),)))
    planned = plan_writes(decayed, ledger_after(first), min_change=5)
    assert fields(planned) == ["intent_score", "score", "reasons", "scored_at"]


def test_a_tier_change_writes_the_scores_even_when_they_moved_a_little():
    first = desired(card(intent=35, tier="warm"))
    crossed = desired(card(intent=34, tier="cold", at=T0 + timedelta(hours=1)))
    planned = plan_writes(crossed, ledger_after(first), min_change=5)
    assert fields(planned) == ["intent_score", "score", "tier", "reasons", "scored_at"]  # reasons: the sum


def test_fit_is_not_a_decaying_score_so_any_change_is_written():
    first = desired(card(fit=40))
    refit = desired(card(fit=41, intent=34.5, at=T0 + timedelta(hours=1)))
    assert fields(plan_writes(refit, ledger_after(first), min_change=5)) == ["fit_score", "scored_at"]


def test_a_score_that_moved_a_little_rides_along_with_the_reasons_that_add_up_to_it():
    first = desired(card(fit=40, intent=35))
    refit = desired(card(fit=42, intent=34, at=T0 + timedelta(hours=1)))  # score 75 → 76, reasons too
    planned = plan_writes(refit, ledger_after(first), min_change=5)
    assert fields(planned) == ["fit_score", "score", "reasons", "scored_at"]
    assert dict((u.field, u.value) for u in planned)["reasons"].endswith("other signals +51")


def test_a_new_model_version_is_written():
    first = desired(card())
    assert fields(plan_writes(desired(card(model="semi-2024.06")), ledger_after(first))) == ["model_version"]


def test_previous_tiers_from_the_score_history_override_the_ledger():
    first = desired(card(intent=35, tier="warm"))
    ledger = ledger_after(first)
    ledger[("00QA", "tier")] = "warm"
    same_tier_small_move = desired(card(intent=33, tier="warm"))
    assert plan_writes(same_tier_small_move, ledger, previous_tiers={"00QA": "hot"}, min_change=5) != []


def test_fields_are_compared_by_their_crm_names_when_the_ledger_holds_them():
    namer = mapped_fields(SF_PERSON, SF_ACCOUNT)
    first = desired(card())
    ledger = {(u.record_id, namer(u)): str(u.value) for u in first}
    assert plan_writes(desired(card(at=T0 + timedelta(days=1))), ledger, crm_field=namer) == []


def test_account_intent_decays_like_a_person_score():
    def account(intent: float, tier: str) -> list[FieldUpdate]:
        score = AccountScore(account_id="account:acme-semi.com", model_version="m1", fit=70, intent=intent,
                             tier=tier)
        return field_updates(SF, ObjectType.ACCOUNT, "001A", desired_account_fields(score))

    ledger = ledger_after(account(50, "engaged"))
    assert plan_writes(account(47, "engaged"), ledger) == []
    assert fields(plan_writes(account(47, "aware"), ledger)) == ["account_intent", "account_tier"]


def test_a_buying_role_that_only_ages_out_rides_along_with_the_accounts_next_write():
    def account(roles: tuple[str, ...], fit: float = 70, tier: str = "engaged") -> list[FieldUpdate]:
        score = AccountScore(account_id="account:acme-semi.com", model_version="m1", fit=fit, intent=50,
                             tier=tier, buying_roles=roles)
        return field_updates(SF, ObjectType.ACCOUNT, "001A", desired_account_fields(score))

    ledger = ledger_after(account(("design_engineer", "procurement")))
    assert plan_writes(account(("design_engineer",)), ledger) == []  # procurement aged out: decay
    assert fields(plan_writes(account(("design_engineer", "procurement", "quality")), ledger)) == [
        "buying_roles"]  # someone new engaged: written at once
    assert fields(plan_writes(account(("procurement", "quality")), ledger)) == ["buying_roles"]
    assert set(fields(plan_writes(account(("design_engineer",), fit=80), ledger))) == {
        "account_fit", "buying_roles"}  # rides along with another change
    assert set(fields(plan_writes(account(("design_engineer",), tier="aware"), ledger))) == {
        "account_tier", "buying_roles"}


def test_each_record_is_planned_on_its_own():
    a, b = desired(card(), "00QA"), desired(card(), "00QB")
    planned = plan_writes(a + desired(card(fit=50), "00QB"), ledger_after(a + b))
    assert {u.record_id for u in planned} == {"00QB"}


def test_one_plan_covers_one_crm():
    hubspot = FieldUpdate(crm=Crm.HUBSPOT, object_type=ObjectType.PERSON, record_id="501", field="score",
                          value=1)
    mixed = [*desired(card()), hubspot]
    with pytest.raises(ValueError, match="one CRM at a time"):
        plan_writes(mixed, {})


def test_after_writing_through_the_store_ledger_the_next_hourly_run_writes_nothing(store_url):
    namer = mapped_fields(SF_PERSON, SF_ACCOUNT)
    with open_store(store_url) as store:
        first = plan_writes(desired(card()), store.ledger(SF), crm_field=namer)
        store.record_writes(SF, first, [WriteResult(u.record_id, True, u.record_id) for u in first],
                            crm_field=namer)

        next_hour = plan_writes(desired(card(intent=34, at=T0 + timedelta(hours=1))), store.ledger(SF),
                                crm_field=namer)

        assert len(first) == 7
        assert next_hour == []


_VALUES = st.one_of(st.none(), st.text(max_size=30), st.integers(), st.booleans(),
                    st.floats(allow_nan=False), st.dates(), st.lists(st.integers(), max_size=2))


@given(fields=st.dictionaries(st.text(max_size=12), _VALUES, max_size=6),
       record_id=st.one_of(st.text(max_size=12), st.integers()),
       person_id=st.one_of(st.none(), st.text(max_size=12)), crm=st.sampled_from([SF, "hubspot"]))
@settings(max_examples=300, deadline=None)
def test_desired_updates_built_without_validation_equal_validated_ones_or_fail_like_them(
        fields, record_id, person_id, crm):
    def validated():
        return [FieldUpdate(crm=crm, object_type=ObjectType.PERSON, record_id=record_id, field=name,
                            value=value, person_id=person_id) for name, value in fields.items()]

    try:
        expected = validated()
    except ValidationError as error:
        with pytest.raises(ValidationError) as raised:
            field_updates(crm, ObjectType.PERSON, record_id, fields, person_id=person_id)
        assert raised.value.errors() == error.errors()
        return
    built = field_updates(crm, ObjectType.PERSON, record_id, fields, person_id=person_id)
    assert built == expected
    assert [(type(u.crm), type(u.value)) for u in built] == [(type(u.crm), type(u.value)) for u in expected]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(max_size=40), min_size=1, max_size=8))
def test_reasons_text_never_carries_a_control_character_and_keeps_a_printable_reason_as_it_is(texts):
    lines = [reason(10 - n, t) for n, t in enumerate(texts)]
    text = reasons_text(lines)

    assert not any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in text)
    first = lines[0].says.strip()
    if first and first.isprintable():  # the strongest reason comes first, its words unchanged
        assert text.startswith(f"+10 {first}")


# -- reasons rendered only where a record is written -----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 60), st.floats(0, 60), st.sampled_from(["hot", "warm", "cold"]),
                          st.integers(0, 3), st.floats(-3, 3), st.booleans()), min_size=1, max_size=12),
       st.sampled_from([1.0, 5.0]))
def test_reasons_rendered_only_for_written_records_give_the_same_plan(people, min_change):
    """`sync.writeback` renders a person's reasons only for a record that gets a write: its plan is
    the plan of every person's full desired fields (reasons in place), in the same order."""
    from leadloop.sync.writeback import _plan_fields, _Reasons

    namer = mapped_fields(SF_PERSON, SF_ACCOUNT)
    full, light, pending, ledger = [], [], [], {}
    for n, (fit, intent, tier, lines, drift, written) in enumerate(people):
        record, before = f"00Q{n:03d}", card(fit=fit, intent=intent, tier=tier,
                                             reasons=tuple(reason(5 + k, f"+{5 + k} line {k} of {n}")
                                                           for k in range(lines + 1)))
        if written:  # the ledger holds an earlier card of this person, some points away
            earlier = card(fit=max(0.0, fit + drift), intent=intent, tier=tier)
            ledger = ledger_after([named(u, namer) for u in desired(earlier, record)], ledger)
        full += desired(before, record)
        values = desired_person_fields(before, reasons=False)
        pending.append(_Reasons(len(light) + list(values).index("model_version"), record, before.person_id,
                                before))
        light += field_updates(SF, ObjectType.PERSON, record, values, person_id=before.person_id)
    expected = plan_writes(full, ledger, min_change=min_change, crm_field=namer)
    assert _plan_fields(SF, light, pending, ledger, min_change, namer) == expected
    assert any(u.field == "reasons" for u in expected) == bool(expected)


def named(update: FieldUpdate, namer) -> FieldUpdate:
    """`update` as the ledger names it (the CRM's field name), for `ledger_after`."""
    import dataclasses

    return dataclasses.replace(update, field=namer(update))
