"""The sandbox's SOQL subset, parsed and evaluated against an in-memory org (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadloop.sandbox.salesforce.ids import make_id, normalize_id
from leadloop.sandbox.salesforce.org import Org
from leadloop.sandbox.salesforce.query import Renderer, compile_query, execute
from leadloop.sandbox.salesforce.soql import SoqlError, parse

NOW = datetime(2025, 3, 12, 15, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def org() -> Org:
    clock = Clock()
    org = Org(clock, "integration@sandbox.example")
    acme = org.insert("Account", org.prepare_create("Account", {"Name": "Acme Power", "Industry": "Energy"}))
    zeta = org.insert("Account", org.prepare_create("Account", {"Name": "Zeta Motors"}))
    people = [
        ("Ada", "Lovelace", "ada@acme.com", acme, "Design Engineer"),
        ("Bob", "Byte", "BOB@acme.com", acme, None),
        ("Cy", "Circuit", None, zeta, "Buyer II"),
        (None, "Dee", "dee@zeta.io", None, "100% Engineer_x"),
    ]
    for first, last, email, account, title in people:
        clock.now += timedelta(minutes=5)
        org.insert(
            "Contact",
            org.prepare_create(
                "Contact",
                {"FirstName": first, "LastName": last, "Email": email, "AccountId": account, "Title": title},
            ),
        )
    return org


def run(org: Org, text: str, include_deleted: bool = False) -> list[dict[str, Any]]:
    compiled = compile_query(org, parse(text), org.now())
    renderer = Renderer(org, compiled, "59.0")
    return [renderer.render(row) for row in execute(org, compiled, include_deleted)]


def names(org: Org, text: str) -> list[str]:
    return [record["Name"] for record in run(org, text)]


def refusal(org: Org, text: str) -> SoqlError:
    with pytest.raises(SoqlError) as caught:
        run(org, text)
    return caught.value


def test_parent_relationship_fields_come_back_as_nested_records(org: Org) -> None:
    records = run(org, "SELECT Name, Account.Name, Owner.Email FROM Contact WHERE LastName = 'Lovelace'")
    assert records[0]["Account"]["Name"] == "Acme Power"
    assert records[0]["Account"]["attributes"]["type"] == "Account"
    assert records[0]["Owner"]["Email"] == "integration@sandbox.example"
    orphan = run(org, "SELECT Account.Name FROM Contact WHERE LastName = 'Dee'")
    assert orphan[0]["Account"] is None


def test_text_comparisons_ignore_case_as_salesforce_does(org: Org) -> None:
    assert names(org, "SELECT Name FROM Contact WHERE Email = 'bob@ACME.com'") == ["Bob Byte"]


def test_not_equal_and_not_in_also_match_nulls(org: Org) -> None:
    assert "Cy Circuit" in names(org, "SELECT Name FROM Contact WHERE Email != 'ada@acme.com'")
    assert "Cy Circuit" in names(org, "SELECT Name FROM Contact WHERE Email NOT IN ('ada@acme.com')")
    assert names(org, "SELECT Name FROM Contact WHERE Email = null") == ["Cy Circuit"]


def test_like_treats_escaped_wildcards_literally(org: Org) -> None:
    assert names(org, "SELECT Name FROM Contact WHERE Email LIKE '%@acme.com'") == [
        "Ada Lovelace",
        "Bob Byte",
    ]
    assert names(org, r"SELECT Name FROM Contact WHERE Title LIKE '100\% engineer\_%'") == ["Dee"]
    assert names(org, r"SELECT Name FROM Contact WHERE Title LIKE '100\%design%'") == []


def test_quoted_strings_keep_their_escapes(org: Org) -> None:
    org.insert("Account", org.prepare_create("Account", {"Name": "O'Brien \\ Sons"}))
    assert names(org, r"SELECT Name FROM Account WHERE Name = 'O\'Brien \\ Sons'") == ["O'Brien \\ Sons"]


def test_and_or_need_parentheses_to_mix(org: Org) -> None:
    error = refusal(
        org, "SELECT Id FROM Contact WHERE LastName = 'Dee' OR LastName = 'Byte' AND Email = null"
    )
    assert error.code == "MALFORMED_QUERY"
    assert names(
        org,
        "SELECT Name FROM Contact WHERE (LastName = 'Dee' OR LastName = 'Byte') AND NOT Email LIKE '%acme%'",
    ) == ["Dee"]


def test_order_by_several_fields_with_nulls_placement(org: Org) -> None:
    assert names(org, "SELECT Name FROM Contact ORDER BY Account.Name DESC NULLS FIRST, LastName") == [
        "Dee",
        "Cy Circuit",
        "Bob Byte",
        "Ada Lovelace",
    ]
    assert (
        names(org, "SELECT Name FROM Contact ORDER BY Title ASC NULLS LAST LIMIT 2 OFFSET 2")[-1]
        == "Bob Byte"
    )


def test_datetime_literals_with_offsets_compare_as_instants(org: Org) -> None:
    # Contacts were created at 15:35, 15:40, 15:45 and 15:50 UTC; 16:42+01:00 is 15:42 UTC.
    assert names(org, "SELECT Name FROM Contact WHERE CreatedDate > 2025-03-12T16:42:00+01:00") == [
        "Cy Circuit",
        "Dee",
    ]


def test_last_n_days_spans_today_and_the_n_days_before(org: Org) -> None:
    assert len(run(org, "SELECT Id FROM Contact WHERE CreatedDate = LAST_N_DAYS:1")) == 4
    assert run(org, "SELECT Id FROM Contact WHERE CreatedDate < YESTERDAY") == []
    assert len(run(org, "SELECT Id FROM Contact WHERE CreatedDate = TODAY")) == 4


def test_values_of_the_wrong_type_are_refused_not_coerced(org: Org) -> None:
    error = refusal(org, "SELECT Id FROM Contact WHERE CreatedDate > '2025-01-01'")
    assert error.code == "INVALID_FIELD" and "must be of type dateTime" in error.message
    assert refusal(org, "SELECT Id FROM Contact WHERE CreatedDate > 2025-01-01").code == "INVALID_FIELD"
    assert refusal(org, "SELECT Id FROM Contact WHERE HasOptedOutOfEmail = 'true'").code == "INVALID_FIELD"


def test_unknown_names_are_reported_where_they_appear(org: Org) -> None:
    error = refusal(org, "SELECT Id, Foo__c FROM Contact")
    assert error.code == "INVALID_FIELD"
    assert "No such column 'Foo__c' on entity 'Contact'" in error.message
    assert "ERROR at Row:1:Column:12" in error.message
    assert refusal(org, "SELECT Acount.Name FROM Contact").code == "INVALID_FIELD"
    assert refusal(org, "SELECT Id FROM Contacts").code == "INVALID_TYPE"


@pytest.mark.parametrize(
    "text",
    [
        "SELECT Id FROM Contact GROUP BY Id",
        "SELECT COUNT(Id) FROM Contact",
        "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
        "SELECT Id FROM Contact WHERE AccountId IN (SELECT Id FROM Account)",
        "SELECT Id FROM Contact WITH SECURITY_ENFORCED",
        "SELECT Id FROM Contact FOR UPDATE",
        "SELECT MAX(CreatedDate) FROM Contact",
        "SELECT Id FROM Contact c",
        "SELECT Id FROM Contact WHERE Name = 'unterminated",
        "SELECT Id FROM Contact LIMIT",
        "",
    ],
)
def test_syntax_outside_the_subset_is_malformed_never_misanswered(org: Org, text: str) -> None:
    assert refusal(org, text).code == "MALFORMED_QUERY"


def test_count_only_counts(org: Org) -> None:
    compiled = compile_query(org, parse("SELECT COUNT() FROM Contact WHERE Email != null"), NOW)
    assert compiled.query.count_only and len(execute(org, compiled, False)) == 3


def test_deleted_rows_are_only_seen_by_query_all(org: Org) -> None:
    dee = run(org, "SELECT Id FROM Contact WHERE LastName = 'Dee'")[0]["Id"]
    org.delete("Contact", dee)
    assert run(org, "SELECT Id FROM Contact WHERE LastName = 'Dee'") == []
    assert (
        run(org, "SELECT Id, IsDeleted FROM Contact WHERE LastName = 'Dee'", include_deleted=True)[0][
            "IsDeleted"
        ]
        is True
    )


def test_the_modstamp_index_answers_like_a_full_scan(org: Org) -> None:
    bob = run(org, "SELECT Id FROM Contact WHERE LastName = 'Byte'")[0]["Id"]
    org.now = lambda: NOW + timedelta(hours=1)  # type: ignore[method-assign]
    org.update("Contact", bob, org.prepare_update("Contact", bob, {"Title": "Lead Engineer"}))
    indexed = names(
        org,
        "SELECT Name FROM Contact WHERE SystemModstamp >= 2025-03-12T15:45:00Z "
        "ORDER BY SystemModstamp ASC, Id ASC",
    )
    assert indexed == ["Cy Circuit", "Dee", "Bob Byte"]
    scanned = sorted(
        run(org, "SELECT Name, SystemModstamp, Id FROM Contact"), key=lambda r: (r["SystemModstamp"], r["Id"])
    )
    assert indexed == [r["Name"] for r in scanned if r["SystemModstamp"] >= "2025-03-12T15:45:00.000+0000"]
    assert names(
        org,
        "SELECT Name FROM Contact WHERE SystemModstamp > 2025-03-12T15:45:00Z "
        "AND SystemModstamp < 2025-03-12T16:00:00Z ORDER BY SystemModstamp",
    ) == ["Dee"]


def test_ids_are_18_characters_with_a_case_checksum() -> None:
    assert normalize_id("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    record_id = make_id("00Q", 12345)
    assert len(record_id) == 18 and record_id.startswith("00Q")
    assert normalize_id(record_id[:15]) == record_id
    assert normalize_id("not an id") is None
