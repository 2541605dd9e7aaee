"""`leadloop explain --email/--crm-id`: a live lead explained from the store, on SQLite and PostgreSQL;
every mistake a user can make is one message and exit code 2, never a traceback or a new store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from leadloop.cli import scoring as cli_scoring
from leadloop.cli.explain import reason_lines
from leadloop.connectors.mapping import load_mapping
from leadloop.crm.changes import ObjectType, TaskUpsert
from leadloop.crm.ports import WriteResult
from leadloop.crm.records import Account, Crm, Owner, Person
from leadloop.playbook.load import load_playbook_and_text
from leadloop.playbooks import DEFAULT
from leadloop.scoring.scorecard import Escalation, Reason, ReasonKind, ScoreCard
from leadloop.store import Store, lookup, open_store
from leadloop.store.writeplan import desired_person_fields, field_updates, mapped_fields

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ANNA = "anna.keller@voltra-auto.de"
ANNA_ID = f"person:{ANNA}"
SF_CONTACT, HS_CONTACT, REP = "003Dn0000000AnnaIAA", "5011", "005Dn0000000RitaIAA"
TASK_NOTE = "Why now:\n- +30 requested the EVK-7710 evaluation kit\nFit:\n- Profile: automotive_power"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    cli_scoring.register(app)
    return app


def run(app: typer.Typer, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), catch_exceptions=False, env=env)


def card(score: float, tier: str, reasons: tuple[Reason, ...], at: datetime, **fields) -> ScoreCard:
    return ScoreCard(person_id=ANNA_ID, account_id="account:voltra-auto.de", model_version=fields.pop(
        "model_version", "semi-1"), scored_at=at, profile="automotive_power", fit=62, intent=score - 30,
        account_fit=70, account_intent=12, score=score, tier=tier, reasons=reasons, **fields)


FIT = Reason(ReasonKind.FIT, "segment", 20, "+20 segment: automotive power")
WEBINAR = Reason(ReasonKind.INTENT, "webinar", 12, "+12 attended the BMS webinar 3 weeks ago", T0)
EVK = Reason(ReasonKind.ESCALATION, "evaluation_request", 30,
             "escalated to Sales priority (SLA 4h): requested the EVK-7710 evaluation kit 1 day ago", T0)
BEFORE = card(48, "Marketing qualified", (FIT, WEBINAR), T0 - timedelta(days=7))
AFTER = card(86, "Sales priority", (EVK, FIT, WEBINAR), T0,
             escalation=Escalation("evaluation_request", "4h", "escalated to Sales priority (SLA 4h)"))


def write_back(store: Store, crm: Crm, record_id: str, scored: ScoreCard, run_id: str) -> None:
    """What a sync's write-back leaves in the ledger for one person record."""
    crm_mapping = getattr(load_mapping(), crm.value)
    updates = field_updates(crm, ObjectType.PERSON, record_id, desired_person_fields(scored),
                            person_id=ANNA_ID)
    accepted = [WriteResult(key=u.field, ok=True) for u in updates]
    store.record_writes(crm.value, updates, accepted, run_id=run_id,
                        crm_field=mapped_fields(crm_mapping.owned_person, crm_mapping.owned_account))


@pytest.fixture
def synced_url(store_url: str) -> str:
    return as_two_syncs_leave_it(store_url)


def as_two_syncs_leave_it(store_url: str) -> str:
    """A store as two syncs leave it: Anna in Salesforce and HubSpot, scored twice (the second time
    after an evaluation-kit request), written back, and a task for her rep still in the outbox."""
    playbook, text = load_playbook_and_text(DEFAULT)
    with open_store(store_url) as store:
        store.upsert_snapshots(Crm.SALESFORCE, "Contact", [Person(
            id=f"sf-contact:{SF_CONTACT}", email=ANNA, first_name="Anna", last_name="Keller",
            title="Sr. HW Eng.", account_id="sf-account:001Dn0000000VoltIAA",
            salesforce_contact_id=SF_CONTACT)])
        store.upsert_snapshots(Crm.HUBSPOT, "contacts", [Person(
            id=f"hs-contact:{HS_CONTACT}", email=ANNA, first_name="Anna", last_name="Keller",
            hubspot_id=HS_CONTACT)])
        store.upsert_snapshots(Crm.SALESFORCE, "Account", [Account(
            id="sf-account:001Dn0000000VoltIAA", name="Voltra Automotive", website="https://voltra-auto.de")])
        store.upsert_snapshots(Crm.SALESFORCE, "User", [Owner(
            id=f"sf-user:{REP}", email="rita.rep@voltaris-semi.com", name="Rita Rep", crm_id=REP)])
        store.set_cursor(Crm.SALESFORCE, "Contact", T0)
        store.save_identity({f"sf-contact:{SF_CONTACT}": ANNA_ID, f"hs-contact:{HS_CONTACT}": ANNA_ID,
                             "sf-account:001Dn0000000VoltIAA": "account:voltra-auto.de"})
        store.activate_playbook(name=playbook.name, model_version=playbook.model_version, source=DEFAULT,
                                text=text, activated_by="test")
        first = store.start_run("hourly_sync", "run-1", now=T0 - timedelta(days=7))
        store.save_scorecards(first, [BEFORE])
        second = store.start_run("hourly_sync", "run-2", now=T0)
        store.save_scorecards(second, [AFTER])
        write_back(store, Crm.SALESFORCE, SF_CONTACT, AFTER, second)
        write_back(store, Crm.HUBSPOT, HS_CONTACT, AFTER, second)
        store.queue_tasks(Crm.SALESFORCE, [TaskUpsert(
            crm=Crm.SALESFORCE, key="ll-0123456789abcdef01234567", owner_id=REP,
            subject="Call Anna Keller: EVK-7710 evaluation kit request", body=TASK_NOTE,
            due_date=date(2026, 11, 2), person_record_id=SF_CONTACT, person_id=ANNA_ID,
            reason="evaluation_request, SLA 4h")], run_id=second, now=T0)
    return store_url


def test_explain_prints_the_reason_lines_the_crms_got_the_tier_change_and_the_task(app, synced_url):
    result = run(app, "explain", "--email", "Anna.Keller@Voltra-Auto.de", "--store-url", synced_url)

    assert result.exit_code == 0, result.output
    out = result.output
    lines = out.splitlines()
    assert lines[0] == f"Anna Keller, Sr. HW Eng. at Voltra Automotive <{ANNA}>"
    assert f"Salesforce Contact {SF_CONTACT}, HubSpot contact {HS_CONTACT}" in out
    written = str(desired_person_fields(AFTER)["reasons"])
    start = lines.index("    Reasons (LL_Reasons__c):") + 1
    assert [line.strip() for line in lines[start:start + len(reason_lines(written))]] == reason_lines(written)
    assert f"HubSpot contact {HS_CONTACT}: the same values as Salesforce Contact {SF_CONTACT}" in out
    assert "    Tier          Sales priority" in lines and "    Score         86 (fit 62, intent 56)" in lines
    assert "  tier: Marketing qualified → Sales priority" in lines
    assert "  +38 since last score: escalated to Sales priority (SLA 4h): requested the EVK-7710" in out
    assert f"to Rita Rep <rita.rep@voltaris-semi.com> ({REP}), due 2026-11-02" in out
    assert "Call Anna Keller: EVK-7710 evaluation kit request" in out
    assert "      - +30 requested the EVK-7710 evaluation kit" in lines
    assert "Live playbook " in out and "latest score is from model version semi-1" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("crm_id", [SF_CONTACT, HS_CONTACT, f"sf-contact:{SF_CONTACT}"])
def test_a_salesforce_or_hubspot_record_id_finds_the_same_person(app, synced_url, crm_id):
    result = run(app, "explain", "--crm-id", crm_id, "--store-url", synced_url)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Anna Keller")
    assert "tier: Marketing qualified → Sales priority" in result.output


def test_the_store_url_comes_from_the_environment_when_not_given(app, synced_url):
    result = run(app, "explain", "--email", ANNA, env={"LEADLOOP_STORE_URL": synced_url})
    assert result.exit_code == 0, result.output
    assert "Anna Keller" in result.output


def test_an_email_several_people_share_lists_them_and_a_crm_id_picks_one(app, store_url):
    shared = "purchasing@voltra-auto.de"
    with open_store(store_url) as store:
        store.upsert_snapshots(Crm.SALESFORCE, "Lead", [Person(
            id="sf-lead:00QDn0000000MaxXIAA", email=shared, first_name="Max", last_name="Vogt")])
        store.upsert_snapshots(Crm.HUBSPOT, "contacts", [Person(
            id="hs-contact:777", email=shared, first_name="Mia", last_name="Vogt")])
        # identity left them apart (a conflict it records for a person to settle)
        store.save_identity({"sf-lead:00QDn0000000MaxXIAA": "sf-lead:00QDn0000000MaxXIAA",
                             "hs-contact:777": "hs-contact:777"})

    result = run(app, "explain", "--email", shared, "--store-url", store_url)

    assert result.exit_code == 2
    assert "2 people have the email 'purchasing@voltra-auto.de'" in result.output
    assert "give --crm-id to pick one" in result.output
    assert "--crm-id 00QDn0000000MaxXIAA (Salesforce Lead 00QDn0000000MaxXIAA)" in result.output
    assert "--crm-id 777 (HubSpot contact 777)" in result.output and "Traceback" not in result.output
    picked = run(app, "explain", "--email", shared, "--crm-id", "777", "--store-url", store_url)
    assert picked.exit_code == 0, picked.output
    assert picked.output.startswith("Mia Vogt") and "Latest score: none stored" in picked.output


def test_an_unknown_email_exits_2_naming_the_store(app, synced_url):
    result = run(app, "explain", "--email", "nobody@voltra-auto.de", "--store-url", synced_url)
    assert result.exit_code == 2
    assert "no person with email 'nobody@voltra-auto.de' in the store at" in result.output
    assert "Traceback" not in result.output


def test_a_crm_id_of_someone_else_than_the_email_exits_2(app, synced_url):
    result = run(app, "explain", "--email", "nobody@voltra-auto.de", "--crm-id", SF_CONTACT,
                 "--store-url", synced_url)
    assert result.exit_code == 2
    assert f"no person with CRM id '{SF_CONTACT}' and email 'nobody@voltra-auto.de'" in result.output


def test_a_missing_store_file_exits_2_and_creates_no_store(app, tmp_path: Path):
    missing = tmp_path / "nowhere" / "state.db"
    result = run(app, "explain", "--email", ANNA, "--store-url", f"sqlite:///{missing}")
    assert result.exit_code == 2
    assert f"there is no store at {missing}" in result.output and "Traceback" not in result.output
    assert not missing.exists() and not missing.parent.exists()


def test_a_store_nothing_was_synced_into_says_so(app, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(url).close()
    result = run(app, "explain", "--email", ANNA, "--store-url", url)
    assert result.exit_code == 2
    assert "nothing has been synced into this store yet" in result.output


def test_a_store_url_that_is_no_database_exits_2(app):
    result = run(app, "explain", "--email", ANNA, "--store-url", "mysql://db/leadloop")
    assert result.exit_code == 2 and "unsupported store database 'mysql'" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (("explain",), "explain needs --email EMAIL (or --crm-id ID)"),
    (("explain", "--email", ANNA, "--data", "d.json"), "not both"),
    (("explain", "--crm-id", SF_CONTACT, "--at", "2026-11-01"), "not both"),
    (("explain", "--person", ANNA, "--store-url", "sqlite:///x.db"), "--store-url goes with --email"),
    (("explain", "--person", ANNA), "explain needs --email EMAIL"),
])
def test_options_of_the_two_modes_are_not_mixed(app, args, message):
    result = run(app, *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_finding_by_email_takes_the_address_literally_not_as_a_pattern(store_url):
    with open_store(store_url) as store:
        store.upsert_snapshots(Crm.SALESFORCE, "Lead", [
            Person(id="sf-lead:1", email="a_b@voltra-auto.de"),
            Person(id="sf-lead:2", email="axb@voltra-auto.de"),
            Person(id="sf-lead:3", email="xa_b@voltra-auto.de")])
        assert [r.record_id for r in lookup.people_with_email(store, "a_b@voltra-auto.de")] == ["sf-lead:1"]
        assert lookup.people_with_email(store, "a%b@voltra-auto.de") == []


def test_deleted_records_are_not_found(store_url):
    with open_store(store_url) as store:
        store.upsert_snapshots(Crm.SALESFORCE, "Lead", [Person(id="sf-lead:1", email=ANNA)])
        store.tombstone(Crm.SALESFORCE, "Lead", ["sf-lead:1"])
        assert lookup.people_with_email(store, ANNA) == []
        assert lookup.people_with_crm_id(store, "1") == []
