"""Data quality finds the problems that keep the playbook from scoring well."""

from datetime import UTC, datetime, timedelta

from leadloop.crm.records import Account, Activity, Person
from leadloop.scoring.quality import QualityInputs, assess_quality, mask_email, trends

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _inputs(**overrides):
    base = dict(
        people=[], accounts=[], activities=[], fields_used={"person": ["title"], "account": ["segment"]},
        classify_title=lambda title: "eng" in title.lower(),
        classify_activity=lambda activity: activity.url is not None and "/products/" in activity.url,
        now=NOW,
    )
    base.update(overrides)
    return QualityInputs(**base)


def _by_check(findings):
    return {f.check: f for f in findings}


def test_people_sharing_an_email_within_one_crm_are_duplicates_but_across_crms_they_are_linked():
    people = [
        Person(id="sf-lead:1", email="a@x.com"), Person(id="sf-contact:2", email="a@x.com"),
        Person(id="hs-contact:3", email="a@x.com"), Person(id="hs-contact:4", email="b@x.com"),
    ]
    found = _by_check(assess_quality(_inputs(people=people)))
    assert found["duplicates.people"].count == 2
    assert found["duplicates.people_across_crms"].count == 1


def test_accounts_sharing_a_domain_within_one_crm_are_duplicates():
    accounts = [Account(id="sf-account:1", website="https://acme.com"),
                Account(id="sf-account:2", domain="www.acme.com"),
                Account(id="hs-company:3", domain="acme.com")]
    assert _by_check(assess_quality(_inputs(accounts=accounts)))["duplicates.accounts"].count == 2


def test_unknown_titles_are_reported_with_their_counts():
    people = [Person(id="sf-lead:1", title="Wizard"), Person(id="sf-lead:2", title="Wizard"),
              Person(id="sf-lead:3", title="HW Engineer")]
    finding = _by_check(assess_quality(_inputs(people=people)))["unknown_titles"]
    assert finding.count == 2 and finding.examples == ("Wizard ×2",)


def test_qualified_people_without_activity_for_ninety_days_are_stale():
    people = [Person(id="sf-lead:1", lifecycle_status="Qualified"),
              Person(id="sf-lead:2", lifecycle_status="Qualified")]
    recent = Activity(id="a", person_id="sf-lead:2", kind="page_view", occurred_at=NOW - timedelta(days=3))
    found = _by_check(assess_quality(_inputs(people=people, activities=[recent])))
    assert found["stale_status"].examples == ("sf-lead:1",)


def test_missing_fields_the_playbook_uses_are_counted_per_crm():
    people = [Person(id="sf-lead:1", title="HW Engineer"), Person(id="sf-lead:2"), Person(id="hs-contact:3")]
    found = _by_check(assess_quality(_inputs(people=people)))
    assert found["completeness.salesforce.person.title"].count == 1
    assert found["completeness.hubspot.person.title"].count == 1


def test_activities_no_asset_rule_understands_are_reported():
    acts = [Activity(id="1", person_id="p", kind="page_view", occurred_at=NOW, url="https://x.com/careers"),
            Activity(id="2", person_id="p", kind="page_view", occurred_at=NOW, url="https://x.com/products/a")]
    assert _by_check(assess_quality(_inputs(activities=acts)))["unmatched_activities"].count == 1


def test_activities_streamed_once_in_any_order_give_the_same_findings():
    people = [Person(id="sf-lead:1", lifecycle_status="Qualified"), Person(id="sf-lead:2")]
    acts = [Activity(id=str(i), person_id=f"sf-lead:{1 + i % 2}", kind="page_view",
                     occurred_at=NOW - timedelta(days=100 - i), url=f"https://x.com/page-{i % 4}")
            for i in range(12)]
    listed = assess_quality(_inputs(people=people, activities=acts))
    streamed = assess_quality(_inputs(people=people, activities=iter(acts[::-1])))  # a one-pass iterator
    assert streamed == listed
    found = _by_check(streamed)
    assert found["unmatched_activities"].total == 12
    # four URLs tied at three each: the examples are ordered by name, not by arrival
    assert found["unmatched_activities"].examples[:2] == ("https://x.com/page-0 ×3",
                                                          "https://x.com/page-1 ×3")
    assert found["stale_status"].count == 0  # sf-lead:1's newest activity is recent


def test_invalid_emails_come_from_the_quarantine():
    found = _by_check(assess_quality(_inputs(quarantined=[("hs-contact:9", "email: not an email address"),
                                                        ("sf-lead:3", "created_at: bad date")])))
    assert found["invalid_emails"].count == 1 and found["quarantined"].count == 2


def test_examples_never_show_a_whole_email_address():
    assert mask_email("jane.doe@acme.com") == "j***@acme.com"
    people = [Person(id="sf-lead:1", email="jane@x.com"), Person(id="sf-lead:2", email="jane@x.com")]
    finding = _by_check(assess_quality(_inputs(people=people)))["duplicates.people"]
    assert "jane@x.com" not in " ".join(finding.examples)


def test_trend_compares_with_the_previous_run():
    people = [Person(id="sf-lead:1", title="Wizard")]
    current = [f for f in assess_quality(_inputs(people=people)) if f.check == "unknown_titles"]
    (trend,) = trends(current, {"unknown_titles": 4})
    assert trend.change == -3


def test_the_fields_a_playbook_reads_are_found_wherever_its_conditions_are():
    from leadloop.playbook.load import load_playbook
    from leadloop.scoring.quality import fields_used

    used = fields_used(load_playbook("playbooks/semiconductor.yaml"))
    assert "industry" in used["account"]
    assert "role" not in used.get("person", [])  # derived from the title, not a record field
