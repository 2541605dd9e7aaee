"""SLA due moments are exact, in the owner's time zone, business hours and public holidays (from the
maintained `holidays` library, per the owner's country or region as the playbook sets it)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from leadloop.crm.records import Account, Crm, Person
from leadloop.playbook.load import parse_playbook
from leadloop.playbook.model import PlaybookError
from leadloop.playbook.routing import BusinessHours, RoutingSection, Sla, routing_problems
from leadloop.routing import AssignmentState, OwnerDirectory, PersonContext, route_person, to_crm_changes
from leadloop.routing.calendar import BusinessCalendar
from leadloop.scoring.scorecard import Escalation, ScoreCard

PROJECT = Path(__file__).resolve().parents[2]
SINGAPORE = ZoneInfo("Asia/Singapore")
CHICAGO = ZoneInfo("America/Chicago")
BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_FIVE = BusinessHours(start="09:00", end="17:00")
FOUR_HOURS = Sla(business_hours=4, priority="high", why="a quote request is a buying step")
ONE_DAY = Sla(business_days=1, why="a day for a warm lead")


def sg(*moment: int) -> datetime:
    return datetime(*moment, tzinfo=SINGAPORE)


def chicago(*moment: int) -> datetime:
    return datetime(*moment, tzinfo=CHICAGO)


def due(sla: Sla, received: datetime, time_zone: str, calendar: str | None,
        hours: BusinessHours = NINE_TO_FIVE, closures: frozenset[date] = frozenset()) -> datetime:
    return BusinessCalendar(hours, closures, calendar).due(sla, received, time_zone)


# -- the calendar -------------------------------------------------------------------------------------


def test_a_singapore_reps_four_hour_sla_from_friday_afternoon_is_due_monday_morning_singapore_time():
    friday_4pm = sg(2026, 3, 6, 16, 0)
    # one open hour on Friday (16:00-17:00), three more from Monday's 09:00 opening
    assert due(FOUR_HOURS, friday_4pm, "Asia/Singapore", "SG") == sg(2026, 3, 9, 12, 0)
    # with 08:30-17:30 (the semiconductor playbook's hours): 1.5 h on Friday, 2.5 h on Monday
    long_day = BusinessHours(start="08:30", end="17:30")
    assert due(FOUR_HOURS, friday_4pm, "Asia/Singapore", "SG", long_day) == datetime(
        2026, 3, 9, 11, 0, tzinfo=SINGAPORE)


def test_the_due_moment_is_the_same_instant_whatever_zone_the_lead_arrived_in():
    friday_4pm_singapore = datetime(2026, 3, 6, 8, 0, tzinfo=UTC)
    moment = due(FOUR_HOURS, friday_4pm_singapore, "Asia/Singapore", "SG")
    assert moment.astimezone(UTC) == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)
    assert moment.utcoffset() is not None and moment.tzinfo == SINGAPORE


def test_a_singapore_public_holiday_is_skipped():
    # Deepavali falls on Sunday 8 November 2026; Singapore observes it on Monday the 9th
    friday_4pm = sg(2026, 11, 6, 16, 0)
    assert due(FOUR_HOURS, friday_4pm, "Asia/Singapore", "SG") == sg(2026, 11, 10, 12, 0)
    assert due(ONE_DAY, friday_4pm, "Asia/Singapore", "SG") == sg(2026, 11, 10, 17, 0)


def test_a_us_reps_thanksgiving_is_skipped():
    wednesday_4pm = chicago(2026, 11, 25, 16, 0)
    assert due(FOUR_HOURS, wednesday_4pm, "America/Chicago", "US") == chicago(2026, 11, 27, 12, 0)
    assert due(ONE_DAY, wednesday_4pm, "America/Chicago", "US") == chicago(2026, 11, 27, 17, 0)


def test_one_countrys_holiday_does_not_close_another_countrys_rep():
    # Singapore's observed Deepavali is an ordinary Monday in the United States
    friday_4pm = chicago(2026, 11, 6, 16, 0)
    assert due(FOUR_HOURS, friday_4pm, "America/Chicago", "US") == chicago(2026, 11, 9, 12, 0)


def test_public_holidays_hold_in_every_year_not_just_the_years_someone_typed_in():
    christmas_eve_2031 = datetime(2031, 12, 24, 16, 0, tzinfo=BERLIN)  # a Wednesday
    # 25 and 26 December are German public holidays; Saturday and Sunday follow
    assert due(ONE_DAY, christmas_eve_2031, "Europe/Berlin", "DE") == datetime(
        2031, 12, 29, 17, 0, tzinfo=BERLIN)


def test_a_closure_closes_every_owner_and_no_calendar_means_closures_only():
    friday_4pm = sg(2026, 11, 6, 16, 0)
    shutdown = frozenset({date(2026, 11, 10)})
    assert due(ONE_DAY, friday_4pm, "Asia/Singapore", "SG", closures=shutdown) == datetime(
        2026, 11, 11, 17, 0, tzinfo=SINGAPORE)
    assert due(ONE_DAY, friday_4pm, "Asia/Singapore", None) == sg(2026, 11, 9, 17, 0)


def test_a_subdivision_adds_its_regional_holidays():
    # Epiphany (6 January) is a public holiday in Bavaria, not in Germany as a whole
    monday_4pm = datetime(2025, 1, 6, 16, 0, tzinfo=BERLIN)
    assert due(ONE_DAY, monday_4pm, "Europe/Berlin", "DE").date() == date(2025, 1, 7)
    assert due(ONE_DAY, monday_4pm, "Europe/Berlin", "DE-BY").date() == date(2025, 1, 8)


# -- the playbook setting -------------------------------------------------------------------------------


def section(holidays: Any, **rep: Any) -> RoutingSection:
    reps = [{"email": "priya@vendor.com", "name": "Priya", "time_zone": "Asia/Singapore", **rep},
            {"email": "dee@vendor.com", "name": "Dee", "time_zone": "America/Chicago"}]
    return RoutingSection.model_validate({
        "actions": [{"tier": "Sales", "do": "assign", "sla": "quick", "why": "ready for sales"}],
        "slas": {"quick": {"business_hours": 4, "priority": "high", "why": "a buying step"}},
        "business_hours": {"start": "09:00", "end": "17:00"},
        "holidays": holidays,
        "reps": reps,
        "queues": [{"id": "desk", "name": "Desk", "time_zone": "Asia/Singapore", "why": "always staffed"}],
        "fallback_owner": "desk",
    })


def test_an_owner_observes_their_own_calendar_else_their_time_zones_else_the_default():
    mapped = section({"by_time_zone": {"Asia/Singapore": "sg", "America/Chicago": "US"}},
                     holiday_calendar="my")
    assert mapped.holidays.calendar_for("Asia/Singapore") == "SG"  # codes are case-insensitive
    assert mapped.holidays.calendar_for("Asia/Singapore", mapped.reps[0].holiday_calendar) == "MY"
    defaulted = section({"by_time_zone": {"Asia/Singapore": "SG"}, "default": "US"})
    assert defaulted.holidays.calendar_for("America/Chicago") == "US"
    opted_out = section({"by_time_zone": {"Asia/Singapore": "none"}, "default": "US"})
    assert opted_out.holidays.calendar_for("Asia/Singapore") is None


def test_the_old_list_of_dates_still_reads_as_closures_without_public_holidays():
    old = section([{"date": "2026-12-24", "name": "Christmas Eve"}])
    assert [h.date for h in old.holidays.closures] == [date(2026, 12, 24)]
    assert not old.holidays.uses_calendars and old.holidays.calendar_for("Asia/Singapore") is None
    assert routing_problems(old, ["Sales"]) == []


@pytest.mark.parametrize(("code", "message"), [
    ("XX", "unknown country 'XX' for public holidays"),
    ("US-ZZ", "unknown subdivision 'ZZ' of US for public holidays"),
    (False, "for Norway write 'NO' in quotes"),  # what YAML makes of a bare NO
])
def test_an_unknown_country_or_region_is_refused(code: object, message: str):
    with pytest.raises(ValueError, match=message):
        section({"by_time_zone": {"Asia/Singapore": code, "America/Chicago": "US"}})


def test_once_calendars_are_used_every_owner_needs_one():
    partial = section({"by_time_zone": {"America/Chicago": "US"}})
    problems = routing_problems(partial, ["Sales"])
    assert problems == [
        "routing.reps[0].time_zone: no public-holiday calendar for time zone 'Asia/Singapore': add it to "
        "routing.holidays.by_time_zone (e.g. Asia/Singapore: SG), give this owner a holiday_calendar, or "
        "set routing.holidays.default",
        "routing.queues[0].time_zone: no public-holiday calendar for time zone 'Asia/Singapore': add it to "
        "routing.holidays.by_time_zone (e.g. Asia/Singapore: SG), give this owner a holiday_calendar, or "
        "set routing.holidays.default",
    ]
    assert routing_problems(section({"by_time_zone": {"America/Chicago": "US"}}, holiday_calendar="SG"),
                            ["Sales"])[0].startswith("routing.queues[0].time_zone")


def shipped(name: str) -> str:
    return (PROJECT / "playbooks" / f"{name}.yaml").read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_playbook_check_names_the_line_of_an_unknown_country_code():
    text = shipped("semiconductor").replace("Asia/Singapore: SG", "Asia/Singapore: QQ")
    with pytest.raises(PlaybookError) as raised:
        parse_playbook(text)
    line = line_of(text, "Asia/Singapore: QQ")
    assert any(p.startswith("routing.holidays.by_time_zone.Asia/Singapore: unknown country 'QQ'")
               and p.endswith(f"(line {line})") for p in raised.value.problems), raised.value.problems


def test_playbook_check_names_the_line_of_an_owner_without_a_calendar():
    text = shipped("semiconductor").replace("      Asia/Seoul: KR\n", "")
    with pytest.raises(PlaybookError) as raised:
        parse_playbook(text)
    line = line_of(text, "time_zone: Asia/Seoul")
    assert [p for p in raised.value.problems if "Asia/Seoul" in p] == [
        f"routing.reps[14].time_zone: no public-holiday calendar for time zone 'Asia/Seoul': add it to "
        "routing.holidays.by_time_zone (e.g. Asia/Singapore: SG), give this owner a holiday_calendar, or "
        f"set routing.holidays.default (line {line})"]


@pytest.mark.parametrize("name", ["semiconductor", "industrial"])
def test_every_owner_of_the_shipped_playbooks_has_a_public_holiday_calendar(name: str):
    routing = parse_playbook(shipped(name)).routing
    assert routing is not None and routing.holidays.uses_calendars
    for owner in (*routing.reps, *routing.queues):
        assert routing.holidays.calendar_for(owner.time_zone, owner.holiday_calendar) is not None, owner


# -- routing: the decision and its CRM tasks -----------------------------------------------------------


def test_a_routed_task_is_due_at_the_exact_moment_in_the_owners_time_zone_and_both_crms_get_it():
    rules = section({"by_time_zone": {"Asia/Singapore": "SG", "America/Chicago": "US"}})
    friday_4pm = sg(2026, 11, 6, 16, 0).astimezone(UTC)
    evk = Escalation(rule="evk", sla="quick", text="requested an evaluation kit")
    card = ScoreCard(person_id="p1", account_id="a1", model_version="m1", scored_at=friday_4pm, profile=None,
                     fit=60, intent=50, account_fit=40, account_intent=10, score=85, tier="Sales",
                     escalation=evk)
    person = Person(id="p1", first_name="Wei", last_name="Tan", salesforce_lead_id="00Qp1", hubspot_id="51")
    account = Account(id="a1", name="Lion Semi", owner_id="priya@vendor.com")
    decision, _ = route_person(PersonContext(card=card, person=person, account=account), rules,
                               AssignmentState(), friday_4pm)
    assert decision.task is not None and decision.owner == "priya@vendor.com"
    assert decision.task.due_at == sg(2026, 11, 10, 12, 0)  # Deepavali skipped
    directory = OwnerDirectory({"priya@vendor.com": {"salesforce": "005PRIYA", "hubspot": "7001"}})
    changes = to_crm_changes(decision, person, directory, tasks_in="both").changes
    tasks = {c.crm: c for c in changes if hasattr(c, "due_at")}
    assert set(tasks) == {Crm.SALESFORCE, Crm.HUBSPOT}
    for task in tasks.values():
        assert task.due_date == date(2026, 11, 10)  # the owner's local day
        assert task.due_at == datetime(2026, 11, 10, 4, 0, tzinfo=UTC)
