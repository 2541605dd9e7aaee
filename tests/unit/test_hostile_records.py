"""Hostile CRM records through each connector's mapping (hypothesis): nulls where values are expected,
wrong types, 100,000-character strings, control characters and mixed scripts, HTML and SOQL in names,
impossible dates, duplicate ids, emails without `@`.

The promise: the mapping never raises; each row becomes a valid canonical record (one that survives
the store's JSON round trip), a tombstone, nothing (not an activity), or a rejection with a reason;
and a good row is never lost, whatever sits beside it on the page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from leadloop.connectors.hubspot.records import (
    BadRecord,
    RawObject,
    account_from_company,
    activities_from_engagement,
    opportunity_from_deal,
    person_from_contact,
    raw_object,
)
from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.salesforce.records import Mapped, map_row
from leadloop.connectors.salesforce.streams import STREAMS_BY_NAME, wanted_fields
from leadloop.crm.records import Account, Activity, Campaign, ContactRole, Opportunity, Owner, Person

MAPPING = load_mapping()
SF_READ = MAPPING.salesforce.read
HS_READ = MAPPING.hubspot.read
TASK_KEY = MAPPING.salesforce.task_key
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.large_base_example])

HUGE = ["x" * 100_000, "Ω" * 100_000, ("<b>" * 25_000)[:100_000]]
CONTROL = ["\x00", "\x07", "\x1b[31m", "\r\n", "\u202e", "\ufeff", "\u200b"]
SCRIPTS = ["Müller", "Дмитрий", "王小明", "محمد", "עברית", "ελληνικά", "🚀🔬", "Ｆｕｌｌ"]
INJECTIONS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "O'Brien' OR Id != null --",
              "\\' OR '1'='1", "%' AND Name LIKE '%", "'; DELETE FROM Lead; --", "{{7*7}}", "${jndi:x}"]
BAD_DATES = ["2024-02-30T10:00:00.000+0000", "2024-13-01", "0000-00-00", "9999-99-99T99:99:99Z",
             "yesterday", "-1", "1e30", "2024-05-01T25:61:00Z", "99999999999999999999"]
BAD_NUMBERS = ["nan", "NaN", "inf", "-Infinity", "1e400", "12,5", "0x1F", "1_000"]
BAD_EMAILS = ["jane.doe.acme.com", "@", "jane@", "@acme.com", "a@@b.com", "a b@c.com", "<a@b.com>"]

texty = st.one_of(
    st.sampled_from(HUGE + CONTROL + SCRIPTS + INJECTIONS + BAD_DATES + BAD_NUMBERS + BAD_EMAILS),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.lists(st.sampled_from(CONTROL + SCRIPTS + INJECTIONS), min_size=2, max_size=4).map("".join),
)
wrong_types = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
hostile = st.one_of(texty, wrong_types)

VALID = (Person, Account, Activity, Opportunity, Campaign, ContactRole, Owner)


def assert_valid_canonical(record: Any) -> None:
    """A record of a canonical type that comes back equal from the store's JSON round trip."""
    assert isinstance(record, VALID), type(record)
    adapter = TypeAdapter(type(record))
    assert adapter.validate_json(adapter.dump_json(record)) == record
    if isinstance(record, Person) and record.email is not None:
        assert "@" in record.email


# -- Salesforce ------------------------------------------------------------------------------------

def good_sf_row(sobject: str, n: int) -> dict[str, Any]:
    """A row as Salesforce's REST API sends it, valid for `sobject`."""
    stamp = f"2024-05-01T10:{n % 60:02d}:00.000+0000"
    common = {"attributes": {"type": sobject}, "SystemModstamp": stamp, "IsDeleted": False,
              "CreatedDate": "2024-04-01T09:00:00.000+0000"}
    rows: dict[str, dict[str, Any]] = {
        "Lead": {"Id": f"00Q{n:015d}", "Email": f"p{n}@acme-semi.com", "LastName": f"P{n}", "Company": "Acme",
                 "IsConverted": False, "Title": "Test Engineer"},
        "Contact": {"Id": f"003{n:015d}", "Email": f"c{n}@acme-semi.com", "LastName": f"C{n}",
                    "AccountId": "001000000000001AAA"},
        "Account": {"Id": f"001{n:015d}", "Name": f"Acme {n}", "Website": "https://acme-semi.com",
                    "NumberOfEmployees": 250, "AnnualRevenue": 1.5e7, "Type": "Prospect"},
        "Task": {"Id": f"00T{n:015d}", "WhoId": f"00Q{n:015d}", "Status": "Completed",
                 "Subject": "Form fill: Request EVK-7710 evaluation kit", "Description": "https://acme.example/evk"},
        "Event": {"Id": f"00U{n:015d}", "WhoId": f"003{n:015d}", "Subject": "Meeting",
                  "StartDateTime": "2024-05-02T15:00:00.000+0000", "DurationInMinutes": 30},
        "Opportunity": {"Id": f"006{n:015d}", "AccountId": "001000000000001AAA", "Name": "Design win",
                        "StageName": "Prospecting", "IsClosed": False, "IsWon": False, "Amount": 125000.0,
                        "CloseDate": "2024-09-30"},
        "CampaignMember": {"Id": f"00v{n:015d}", "CampaignId": "701000000000001AAA", "LeadId": f"00Q{n:015d}",
                           "Status": "Responded", "HasResponded": True, "FirstRespondedDate": "2024-05-01",
                           "Campaign": {"Name": "DAC webinar", "Type": "Webinar"}},
        "Campaign": {"Id": f"701{n:015d}", "Name": "DAC webinar", "Type": "Webinar",
                     "StartDate": "2024-05-01"},
        "User": {"Id": f"005{n:015d}", "Name": "Rep", "Email": f"rep{n}@leadloop.example", "IsActive": True},
        "OpportunityContactRole": {"Id": f"00K{n:015d}", "OpportunityId": "006000000000001AAA",
                                   "ContactId": f"003{n:015d}", "Role": "Decision Maker", "IsPrimary": True},
    }
    return {**common, **rows[sobject]}


SF_OBJECTS = ["Lead", "Contact", "Account", "Task", "Event", "Opportunity", "CampaignMember", "Campaign",
              "User", "OpportunityContactRole"]


def sf_fields(sobject: str) -> list[str]:
    return [*wanted_fields(STREAMS_BY_NAME[sobject], SF_READ), "Id", "Campaign"]


@st.composite
def hostile_sf_row(draw: st.DrawFn, sobject: str, n: int) -> dict[str, Any]:
    row = good_sf_row(sobject, n)
    row.update(draw(st.dictionaries(st.sampled_from(sf_fields(sobject)), hostile, min_size=1, max_size=6)))
    return row


def check_outcome(mapped: Mapped) -> None:
    outcomes = [mapped.record is not None, mapped.deleted is not None, mapped.rejected is not None]
    assert sum(outcomes) <= 1
    if mapped.record is not None:
        assert_valid_canonical(mapped.record)
    if mapped.rejected is not None:
        assert isinstance(mapped.rejected, str) and mapped.rejected.strip()


@FUZZ
@given(data=st.data(), sobject=st.sampled_from(SF_OBJECTS))
def test_salesforce_rows_never_raise_and_become_a_record_a_tombstone_nothing_or_a_rejection(data, sobject):
    row = data.draw(hostile_sf_row(sobject, 1))
    check_outcome(map_row(sobject, row, SF_READ, TASK_KEY))


@FUZZ
@given(data=st.data(), sobject=st.sampled_from(SF_OBJECTS), bad=st.integers(1, 5), good=st.integers(1, 5))
def test_good_salesforce_rows_are_never_lost_beside_hostile_ones_and_duplicates(data, sobject, bad, good):
    goods = [good_sf_row(sobject, 100 + i) for i in range(good)]
    page = [data.draw(hostile_sf_row(sobject, i)) for i in range(bad)] + goods + goods[:1]  # a duplicate id
    page = data.draw(st.permutations(page))
    mapped = {str(row.get("Id")): map_row(sobject, row, SF_READ, TASK_KEY) for row in page if row in goods}
    for row in goods:
        outcome = mapped[row["Id"]]
        assert outcome.record is not None and outcome.record.id.endswith(row["Id"]), outcome
        assert outcome.record == map_row(sobject, row, SF_READ, TASK_KEY).record


def test_an_email_without_an_at_sign_is_rejected_with_a_reason_naming_the_field():
    mapped = map_row("Lead", {**good_sf_row("Lead", 1), "Email": "jane.doe.acme.com"}, SF_READ, TASK_KEY)
    assert mapped.record is None and mapped.rejected.startswith("email: not an email address")


def test_soql_and_html_in_a_name_are_kept_as_inert_text():
    name = "O'Brien' OR Id != null -- <script>alert(1)</script>"
    mapped = map_row("Lead", {**good_sf_row("Lead", 1), "LastName": name}, SF_READ, TASK_KEY)
    assert mapped.record.last_name == name


# -- HubSpot ---------------------------------------------------------------------------------------

def good_hs_properties(kind: str, n: int) -> dict[str, Any]:
    stamp = f"2024-05-01T10:{n % 60:02d}:00.000Z"
    return {
        "contacts": {"email": f"h{n}@acme-semi.com", "firstname": "Ada", "lastname": f"L{n}",
                     "jobtitle": "Applications Engineer", "lastmodifieddate": stamp, "createdate": stamp,
                     "hs_email_optout": "false", "associatedcompanyid": "9001"},
        "companies": {"name": f"Acme {n}", "domain": "acme-semi.com", "numberofemployees": "250",
                      "annualrevenue": "15000000.5", "type": "PROSPECT", "hs_lastmodifieddate": stamp},
        "deals": {"dealname": "Design win", "dealstage": "appointmentscheduled", "amount": "125000",
                  "closedate": "2024-09-30T00:00:00Z", "createdate": stamp, "hs_lastmodifieddate": stamp},
        "calls": {"hs_timestamp": stamp, "hs_call_duration": "60000", "hs_lastmodifieddate": stamp},
        "meetings": {"hs_timestamp": stamp, "hs_meeting_start_time": stamp, "hs_meeting_end_time": stamp,
                     "hs_lastmodifieddate": stamp},
    }[kind]


HS_PROPERTIES = {
    "contacts": [*HS_READ["contacts"].values(), "lastmodifieddate", "createdate", "associatedcompanyid",
                 "hs_lead_status", "salesforcecontactid", "salesforceleadid"],
    "companies": [*HS_READ["companies"].values(), "hs_lastmodifieddate", "website", "type",
                  "salesforceaccountid"],
    "deals": ["dealname", "dealstage", "amount", "closedate", "createdate", "hs_is_closed",
              "hs_is_closed_won", "hubspot_owner_id", "hs_lastmodifieddate"],
    "calls": ["hs_timestamp", "hs_call_duration", "hs_call_title", "hs_lastmodifieddate"],
    "meetings": ["hs_timestamp", "hs_meeting_start_time", "hs_meeting_end_time", "hs_meeting_title"],
}
HS_MAP: dict[str, Callable[[RawObject], list[Any]]] = {
    "contacts": lambda raw: [person_from_contact(raw, HS_READ["contacts"])],
    "companies": lambda raw: [account_from_company(raw, HS_READ["companies"])],
    "deals": lambda raw: [opportunity_from_deal(raw)],
    "calls": lambda raw: activities_from_engagement(raw, "calls"),
    "meetings": lambda raw: activities_from_engagement(raw, "meetings"),
}


def hs_outcome(kind: str, raw: RawObject) -> list[Any] | str:
    """What the HubSpot source makes of one object: its records, or the rejection's reason."""
    try:
        return HS_MAP[kind](raw)
    except BadRecord as problem:
        return str(problem)


@st.composite
def hostile_hs_object(draw: st.DrawFn, kind: str, n: int) -> RawObject:
    properties = good_hs_properties(kind, n)
    properties.update(draw(st.dictionaries(st.sampled_from(HS_PROPERTIES[kind]), hostile, min_size=1,
                                           max_size=6)))
    contacts = draw(st.lists(st.sampled_from(["1", "22", "1", "", "x'); --"]), max_size=3))
    model = SimpleNamespace(  # the shape of the official client's SimplePublicObjectWithAssociations
        id=draw(st.sampled_from([n, str(n), "", "-1", "9" * 40])), properties=properties, archived=False,
        associations={"contacts": SimpleNamespace(results=[SimpleNamespace(id=c) for c in contacts]),
                      "companies": SimpleNamespace(results=[SimpleNamespace(id="9001")])})
    return raw_object(model)


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(HS_MAP)))
def test_hubspot_objects_never_raise_and_become_valid_records_or_a_rejection(data, kind):
    outcome = hs_outcome(kind, data.draw(hostile_hs_object(kind, 1)))
    if isinstance(outcome, str):
        assert outcome.strip()
    else:
        for record in outcome:
            assert_valid_canonical(record)


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(HS_MAP)), bad=st.integers(1, 4))
def test_good_hubspot_objects_are_never_lost_beside_hostile_ones(data, kind, bad):
    goods = [RawObject(id=str(500 + i), properties=good_hs_properties(kind, i),
                       associations={"contacts": ("77",), "companies": ("9001",)}) for i in range(3)]
    page = data.draw(st.permutations([data.draw(hostile_hs_object(kind, i)) for i in range(bad)] + goods))
    outcomes = {id(raw): hs_outcome(kind, raw) for raw in page}
    for raw in goods:
        records = outcomes[id(raw)]
        assert isinstance(records, list) and records, records
        assert all(r.id.split(":")[1] == raw.id for r in records)


@pytest.mark.parametrize("value", [float("nan"), "nan", float("inf"), "-inf", "1e400"])
def test_a_number_that_is_not_finite_is_rejected_not_stored(value):
    sf = map_row("Opportunity", {**good_sf_row("Opportunity", 1), "Amount": value}, SF_READ, TASK_KEY)
    assert sf.record is None and "amount" in sf.rejected
    raw = raw_object(SimpleNamespace(id=1, properties={**good_hs_properties("companies", 1),
                                                       "annualrevenue": value}, archived=False))
    assert "annualrevenue is not a finite number" in hs_outcome("companies", raw)


# -- through the sandbox CRMs into the store ---------------------------------------------------------

@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An empty sandbox with good and hostile people planted in both CRMs, pulled into a SQLite store
    by `pull_stream`. Hostile values go in through the backends, past the APIs' own validation."""
    from leadloop.connectors.hubspot.client import hubspot_client
    from leadloop.connectors.hubspot.source import HubSpotSource
    from leadloop.connectors.salesforce.client import salesforce_client
    from leadloop.connectors.salesforce.source import SalesforceSource
    from leadloop.connectors.settings import ConnectionSettings
    from leadloop.crm.records import Crm
    from leadloop.sandbox.server import running_sandbox
    from leadloop.store.db import open_store
    from leadloop.sync.pipeline import Runtime, pull_stream

    with running_sandbox(empty=True) as handle:
        backends = {b.name: b for b in handle.core.backends}
        org, portal = backends["salesforce"].org, backends["hubspot"]
        good_sf = {"O'Brien' OR Id != null --": "obrien@acme-semi.com",
                   "<script>alert(1)</script>": "html@acme-semi.com",
                   "Дмитрий 王 محمد\x07\u202e": "scripts@acme-semi.com", "x" * 100_000: "long@acme-semi.com"}
        sf_ids = {name: org.insert("Lead", {"LastName": name, "Company": "Acme", "Email": email})
                  for name, email in good_sf.items()}
        no_at = org.insert("Lead", {"LastName": "NoAt", "Company": "Acme", "Email": "jane.doe.acme.com"})
        bad_date = org.insert("Lead", {"LastName": "BadDate", "Company": "Acme",
                                       "Email": "date@acme-semi.com"})
        org.table("Lead").rows[bad_date]["CreatedDate"] = "2024-02-30T10:00:00.000+0000"

        hs_good = portal.bulk_insert("contacts", [
            {"email": "hs-obrien@acme-semi.com", "lastname": "O'Brien' OR Id != null --"},
            {"email": "hs-long@acme-semi.com", "lastname": "y" * 100_000, "firstname": "\x1b[31mΩ🚀"}])
        hs_bad = portal.bulk_insert("contacts", [{"email": "hs.no.at.acme.com", "lastname": "NoAt"}])
        hs_bad_company = portal.bulk_insert("companies", [{"name": "Lots Inc", "numberofemployees": "lots"}])

        settings = ConnectionSettings(**handle.connection)
        store = open_store(f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'state.db'}")
        sf_client = salesforce_client(settings.salesforce, settings.ca_cert)
        hs_client = hubspot_client(settings.hubspot, settings.ca_cert)
        sources = {Crm.SALESFORCE: SalesforceSource(sf_client, MAPPING.salesforce),
                   Crm.HUBSPOT: HubSpotSource(hs_client, MAPPING.hubspot)}
        # pulling needs no playbook
        runtime = Runtime(settings=settings, playbook=None, mapping=MAPPING, store=store,  # type: ignore[arg-type]
                          sources=sources)
        stats = [pull_stream(runtime, Crm.SALESFORCE, "Lead"), pull_stream(runtime, Crm.HUBSPOT, "contacts"),
                 pull_stream(runtime, Crm.HUBSPOT, "companies")]
        yield {"store": store, "stats": stats, "sf_good": sf_ids,
               "sf_bad": {no_at: "email", bad_date: "not a datetime"}, "hs_good": hs_good,
               "hs_bad": {hs_bad[0]: "email", hs_bad_company[0]: "numberofemployees"}}
        store.close()


def test_a_pull_of_hostile_crm_records_stores_every_good_one_and_quarantines_every_bad_one(planted):
    store = planted["store"]
    data = store.load_records()
    people = {p.id: p for p in data.people}
    for name, raw_id in planted["sf_good"].items():
        assert people[f"sf-lead:{raw_id}"].last_name == " ".join(name.split())
    for raw_id in planted["hs_good"]:
        assert f"hs-contact:{raw_id}" in people
    quarantined = {q.crm_id.split(":")[-1]: q.reason for q in store.quarantined()}
    expected = {**planted["sf_bad"], **{str(k): v for k, v in planted["hs_bad"].items()}}
    assert quarantined.keys() == expected.keys()
    for raw_id, words in expected.items():
        assert words in quarantined[raw_id]
    assert not {f"sf-lead:{i}" for i in planted["sf_bad"]} & people.keys()
    assert sum(s.rejected for s in planted["stats"]) == 4
