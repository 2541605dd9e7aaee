"""One person across Salesforce Lead, Contact and HubSpot contact; one account across both CRMs;
conflicts recorded, never silently merged into the wrong record."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

from leadloop.crm.identity import (
    CONVERTED_LEAD_WITHOUT_CONTACT,
    CROSS_ID_DOMAIN_MISMATCH,
    CROSS_ID_EMAIL_MISMATCH,
    DUPLICATE_DOMAIN,
    DUPLICATE_EMAIL,
    resolve_identity,
)
from leadloop.crm.records import Account, Activity, ActivityKind, CustomerType, Opportunity, Person

T0 = datetime(2024, 5, 1, tzinfo=UTC)
LEAD_ID = "00Q5e00000AbCdEEAZ"
CONTACT_ID = "0035e00000XyZaBCDE"
ACCOUNT_ID = "0015e00000AcMeSEMI"


def sf_lead(raw: str = LEAD_ID, **fields) -> Person:
    return Person(id=f"sf-lead:{raw}", salesforce_lead_id=raw, **fields)


def sf_contact(raw: str = CONTACT_ID, **fields) -> Person:
    return Person(id=f"sf-contact:{raw}", salesforce_contact_id=raw, **fields)


def hs_contact(raw: str = "501", **fields) -> Person:
    return Person(id=f"hs-contact:{raw}", hubspot_id=raw, **fields)


def only(people: list[Person]) -> Person:
    assert len(people) == 1, [p.id for p in people]
    return people[0]


def kinds(result) -> list[str]:
    return sorted(c.kind for c in result.conflicts)


# -- people ------------------------------------------------------------------------------------

def test_a_lead_and_a_hubspot_contact_with_one_email_are_one_person_carrying_both_ids():
    people = [sf_lead(email="Ana.Li@Acme-Semi.com"), hs_contact(email="ana.li@acme-semi.com")]
    result = resolve_identity(people, [])

    person = only(result.people)
    assert person.id == "person:ana.li@acme-semi.com"
    assert (person.salesforce_lead_id, person.hubspot_id) == (LEAD_ID, "501")
    assert result.links == {f"sf-lead:{LEAD_ID}": person.id, "hs-contact:501": person.id}
    assert result.conflicts == []


def test_salesforce_contact_beats_lead_beats_hubspot_for_profile_fields():
    result = resolve_identity([
        hs_contact(email="a@acme-semi.com", title="Engineer", department="R&D", country="DE",
                   first_name="A."),
        sf_lead(email="a@acme-semi.com", title="Senior Engineer", country="Germany"),
        sf_contact(email="a@acme-semi.com", title="Principal Engineer"),
    ], [])

    person = only(result.people)
    assert person.title == "Principal Engineer"  # contact
    assert person.country == "Germany"  # lead, the contact has none
    assert (person.department, person.first_name) == ("R&D", "A.")  # only HubSpot knows
    assert (person.salesforce_contact_id, person.salesforce_lead_id, person.hubspot_id) == (
        CONTACT_ID, LEAD_ID, "501")


def test_an_opt_out_or_bounce_in_any_source_holds_for_the_person():
    result = resolve_identity([sf_contact(email="a@acme-semi.com"),
                               hs_contact(email="a@acme-semi.com", unsubscribed=True, bounced=True)], [])
    person = only(result.people)
    assert person.unsubscribed and person.bounced


def test_lifecycle_status_comes_from_the_most_recently_updated_source_and_lead_source_from_the_first():
    result = resolve_identity([
        sf_lead(email="a@acme-semi.com", lifecycle_status="Open", lead_source="Trade Show", updated_at=T0,
                created_at=T0 - timedelta(days=90)),
        hs_contact(email="a@acme-semi.com", lifecycle_status="marketingqualifiedlead",
                   lead_source="ORGANIC_SEARCH",
                   updated_at=T0 + timedelta(days=1), created_at=T0 - timedelta(days=10)),
    ], [])
    person = only(result.people)
    assert person.lifecycle_status == "marketingqualifiedlead"
    assert person.lead_source == "Trade Show"
    assert (person.created_at, person.updated_at) == (T0 - timedelta(days=90), T0 + timedelta(days=1))


def test_a_converted_lead_is_followed_to_its_contact_and_its_activities_come_along():
    lead = sf_lead(email="old.address@acme-semi.com", attributes={"converted_to": f"sf-contact:{CONTACT_ID}"})
    contact = sf_contact(email="ana@acme-semi.com", title="Director")
    download = Activity(id="sf-cm:1", person_id=lead.id, kind=ActivityKind.ASSET_DOWNLOAD, occurred_at=T0)

    result = resolve_identity([lead, contact], [], [download])

    person = only(result.people)
    assert person.id == "person:ana@acme-semi.com"
    assert person.salesforce_lead_id is None  # a converted lead can no longer be written to
    assert "converted_to" not in person.attributes
    assert result.activities[0].person_id == person.id
    assert result.links[lead.id] == person.id


def test_a_re_pointed_activity_keeps_every_other_field_and_the_pulled_one_is_untouched():
    contact = sf_contact(email="ana@acme-semi.com")
    pulled = Activity(id="sf-task:1", person_id=contact.id, kind=ActivityKind.SAMPLE_REQUEST, occurred_at=T0,
                      url="https://acme.example/s", form_name="Sample", campaign_id="c1", campaign_name="Q3",
                      asset_id="EVK-1", duration_seconds=12.5, source="salesforce")
    stranger = Activity(id="sf-task:2", person_id="sf-contact:unknown", kind=ActivityKind.PAGE_VIEW,
                        occurred_at=T0)

    result = resolve_identity([contact], [], [pulled, stranger])

    moved, kept = result.activities
    assert moved == dataclasses.replace(pulled, person_id="person:ana@acme-semi.com")
    assert pulled.person_id == contact.id  # the input record is not changed
    assert kept is stranger


def test_re_pointing_in_place_gives_the_same_activities_without_copying_them():
    contact = sf_contact(email="ana@acme-semi.com")
    pulled = [Activity(id=f"sf-task:{n}", person_id=contact.id if n % 2 else "sf-contact:unknown",
                       kind=ActivityKind.SAMPLE_REQUEST, occurred_at=T0, url=f"https://acme.example/{n}",
                       asset_id="EVK-1", duration_seconds=float(n)) for n in range(6)]
    copied = resolve_identity([contact], [], pulled).activities
    owned = [dataclasses.replace(a) for a in pulled]

    in_place = resolve_identity([contact], [], owned, repoint_in_place=True).activities

    assert in_place == copied
    assert all(a is b for a, b in zip(in_place, owned, strict=True))
    assert [a.person_id for a in owned] == ["sf-contact:unknown", "person:ana@acme-semi.com"] * 3


def test_a_converted_lead_naming_its_contact_by_raw_id_is_followed_too():
    lead = sf_lead(email="old@acme-semi.com", attributes={"converted_to": CONTACT_ID})
    result = resolve_identity([lead, sf_contact(email="ana@acme-semi.com")], [])
    assert only(result.people).id == "person:ana@acme-semi.com"


def test_a_converted_lead_whose_contact_was_not_pulled_is_recorded():
    lead = sf_lead(email="ana@acme-semi.com", attributes={"converted_to": "sf-contact:003MISSING"})
    result = resolve_identity([lead], [])
    assert kinds(result) == [CONVERTED_LEAD_WITHOUT_CONTACT]
    assert only(result.people).id == "person:ana@acme-semi.com"


def test_the_integration_cross_id_joins_a_hubspot_contact_without_email_to_its_salesforce_contact():
    contact = sf_contact(email="ana@acme-semi.com")
    hubspot = hs_contact(attributes={"salesforcecontactid": CONTACT_ID[:15]})  # 15-char form

    result = resolve_identity([contact, hubspot], [])

    person = only(result.people)
    assert person.id == "person:ana@acme-semi.com"
    assert person.hubspot_id == "501"


def test_a_cross_id_naming_someone_with_another_email_is_recorded_and_not_merged():
    contact = sf_contact(email="ana@acme-semi.com")
    hubspot = hs_contact(email="bob@acme-semi.com", attributes={"salesforcecontactid": CONTACT_ID})

    result = resolve_identity([contact, hubspot], [])

    assert sorted(p.id for p in result.people) == ["person:ana@acme-semi.com", "person:bob@acme-semi.com"]
    assert kinds(result) == [CROSS_ID_EMAIL_MISMATCH]
    assert set(result.conflicts[0].record_ids) == {hubspot.id, contact.id}


def test_two_contacts_with_one_email_are_one_person_written_through_the_most_recent_and_recorded():
    older = sf_contact("0035e00000OLDERAAA", email="ana@acme-semi.com", updated_at=T0)
    newer = sf_contact("0035e00000NEWERAAA", email="ana@acme-semi.com", updated_at=T0 + timedelta(days=3))

    result = resolve_identity([older, newer], [])

    assert only(result.people).salesforce_contact_id == "0035e00000NEWERAAA"
    assert kinds(result) == [DUPLICATE_EMAIL]
    assert result.links[older.id] == result.links[newer.id] == "person:ana@acme-semi.com"


def test_a_person_without_email_keeps_their_crm_id():
    result = resolve_identity([sf_lead(first_name="Ana")], [])
    assert only(result.people).id == f"sf-lead:{LEAD_ID}"


# -- accounts --------------------------------------------------------------------------------------

def test_a_salesforce_account_and_a_hubspot_company_with_one_domain_are_one_account():
    sf = Account(id=f"sf-account:{ACCOUNT_ID}", name="Acme Semiconductor", website="https://www.acme-semi.com",
                 customer_type=CustomerType.CUSTOMER, employees=1200, salesforce_id=ACCOUNT_ID)
    hs = Account(id="hs-company:9001", name="ACME semi", domain="acme-semi.com", industry="Semiconductors",
                 employees=1000, hubspot_id="9001")

    result = resolve_identity([], [hs, sf])

    [account] = result.accounts
    assert account.id == "account:acme-semi.com"
    assert (account.name, account.employees, account.industry) == (
        "Acme Semiconductor", 1200, "Semiconductors")
    assert (account.salesforce_id, account.hubspot_id, account.customer_type) == (
        ACCOUNT_ID, "9001", CustomerType.CUSTOMER)


def test_two_salesforce_accounts_with_one_domain_stay_apart_and_the_busier_one_owns_the_domain():
    west = Account(id="sf-account:001WEST", name="Acme (West)", website="acme-semi.com")
    east = Account(id="sf-account:001EAST", name="Acme (East)", website="acme-semi.com")
    people = [sf_contact(f"003C{n}", email=f"p{n}@acme-semi.com", account_id="001WEST") for n in range(2)]

    result = resolve_identity(people, [east, west])

    assert sorted(a.id for a in result.accounts) == ["account:acme-semi.com", "sf-account:001EAST"]
    assert result.links["sf-account:001WEST"] == "account:acme-semi.com"
    assert kinds(result) == [DUPLICATE_DOMAIN]
    assert {p.account_id for p in result.people} == {"account:acme-semi.com"}


def test_a_company_cross_id_with_another_domain_is_recorded_and_not_merged():
    sf = Account(id=f"sf-account:{ACCOUNT_ID}", website="acme-semi.com")
    hs = Account(id="hs-company:9001", domain="other.com", attributes={"salesforceaccountid": ACCOUNT_ID})
    result = resolve_identity([], [sf, hs])
    assert len(result.accounts) == 2
    assert kinds(result) == [CROSS_ID_DOMAIN_MISMATCH]


def test_the_company_cross_id_joins_a_hubspot_company_without_a_domain():
    sf = Account(id=f"sf-account:{ACCOUNT_ID}", website="acme-semi.com")
    hs = Account(id="hs-company:9001", name="Acme", attributes={"salesforceaccountid": ACCOUNT_ID})
    result = resolve_identity([], [sf, hs])
    [account] = result.accounts
    assert (account.id, account.hubspot_id) == ("account:acme-semi.com", "9001")


def test_leads_are_matched_to_accounts_by_email_domain_but_never_by_a_personal_domain():
    account = Account(id=f"sf-account:{ACCOUNT_ID}", website="acme-semi.com")
    work = sf_lead("00QWORK", email="ana@acme-semi.com")
    personal = sf_lead("00QHOME", email="ana.li@gmail.com")
    gmail_account = Account(id="sf-account:001GMAIL", website="gmail.com")

    result = resolve_identity([work, personal], [account, gmail_account])

    by_id = {p.id: p for p in result.people}
    assert by_id["person:ana@acme-semi.com"].account_id == "account:acme-semi.com"
    assert by_id["person:ana@acme-semi.com"].attributes["account_match"] == "email_domain"
    assert by_id["person:ana.li@gmail.com"].account_id is None


def test_a_contacts_own_account_wins_over_email_domain_matching():
    acme = Account(id=f"sf-account:{ACCOUNT_ID}", website="acme-semi.com")
    distributor = Account(id="sf-account:001DISTRI", website="distri.com")
    contact = sf_contact(email="ana@acme-semi.com", account_id="001DISTRI")
    result = resolve_identity([contact], [acme, distributor])
    assert only(result.people).account_id == "account:distri.com"


def test_hubspot_associations_and_opportunities_are_re_pointed_to_canonical_ids():
    sf = Account(id=f"sf-account:{ACCOUNT_ID}", website="acme-semi.com")
    hs = Account(id="hs-company:9001", domain="acme-semi.com")
    contact = sf_contact(email="ana@acme-semi.com", account_id=ACCOUNT_ID)
    hubspot = hs_contact(email="ana@acme-semi.com", account_id="hs-company:9001")
    deal = Opportunity(id="hs-deal:77", account_id="9001", contact_ids=("501",))
    opp = Opportunity(id="sf-opp:006A", account_id=f"sf-account:{ACCOUNT_ID}", contact_ids=(CONTACT_ID,))

    result = resolve_identity([contact, hubspot], [sf, hs], [], [deal, opp])

    assert [(o.account_id, o.contact_ids) for o in result.opportunities] == [
        ("account:acme-semi.com", ("person:ana@acme-semi.com",))] * 2
    assert only(result.people).account_id == "account:acme-semi.com"


def test_resolving_ten_thousand_records_across_both_crms_takes_seconds():
    people = []
    for n in range(5_000):
        people.append(sf_lead(f"00Q{n:015d}", email=f"p{n}@company{n % 500}.com", updated_at=T0))
        people.append(hs_contact(str(n), email=f"P{n}@company{n % 500}.com", updated_at=T0))
    accounts = [Account(id=f"sf-account:001{n:015d}", website=f"company{n}.com") for n in range(500)]
    visits = [Activity(id=f"hs-pageview:{n}", person_id=f"hs-contact:{n}", kind=ActivityKind.PAGE_VIEW,
                       occurred_at=T0) for n in range(5_000)]

    started = time.perf_counter()
    result = resolve_identity(people, accounts, visits)
    elapsed = time.perf_counter() - started

    assert len(result.people) == 5_000
    assert all(p.account_id for p in result.people)
    assert elapsed < 5, f"took {elapsed:.1f}s"
