"""Chaos: the hourly sync under the sandbox's faults, each case followed by normal runs, and the same
invariants checked after every case:

- no duplicate task (tasks counted per `LL_Key__c` / `ll_key` through the official clients);
- every desired field value written exactly once (each completed run's written count, plus what a
  killed run ledgered, equals the ledger entries the case changed), or rejected with the CRM's reason;
  the ledger equals what the CRMs show, and a run after the rejection is cleared writes the value;
- no record skipped by the cursors: every record in the CRMs is in the store at its latest version;
- the store and the CRMs agree (the ledgers, the task ledgers and the snapshots).

One sandbox (size tiny, small pages so that paging faults land mid-query) and one store serve the whole
module; every case switches between two playbooks that differ in one rule's points, so each case has a
model-version rewrite of every scored record to push through the faults. Fault cases run the hourly
sync's flow body in-process with its Prefect tasks called as plain functions; the SIGKILL cases run
the same body in a child process (this file run as a script) that stops at the named step and waits
to be killed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = PROJECT / "playbooks" / "semiconductor.yaml"
SALESFORCE_PAGE = 200  # the smallest page Salesforce allows: paging faults land mid-query
HUBSPOT_PAGE = 25
PERSON_OBJECTS = {"Lead": "00Q", "Contact": "003", "Account": "001"}
HUBSPOT_OBJECTS = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate",
                   "deals": "hs_lastmodifieddate", "calls": "hs_lastmodifieddate",
                   "meetings": "hs_lastmodifieddate", "tasks": "hs_lastmodifieddate"}
SALESFORCE_OBJECTS = ("Lead", "Contact", "Account", "Opportunity", "Campaign", "CampaignMember", "Task",
                      "Event")
KILL_PHASES = ("pull", "score", "write-fields", "write-tasks")


# -- the sync under test -----------------------------------------------------------------------------


def _fast_policies() -> tuple[Any, Any]:
    """Retry policies with the production shape but short waits, and a 1.5 s read timeout so that a
    slow response counts as a timeout."""
    from connectors.hubspot.retry import RetryPolicy as HubSpotPolicy
    from connectors.salesforce.retry import RetryPolicy as SalesforcePolicy

    fast = {"attempts": 6, "initial_wait": 0.2, "max_wait": 2.0, "max_retry_after": 3.0, "timeout": (5, 1.5)}
    return SalesforcePolicy(**fast), HubSpotPolicy(**fast)


@contextlib.contextmanager
def flow_body_without_prefect(hooks: dict[str, Callable[..., Any]] | None = None) -> Iterator[None]:
    """The hourly_sync flow body with its Prefect tasks as plain calls, artifacts dropped, small pages
    and fast retry policies on the connectors; `hooks` wrap pipeline steps by name."""
    from connectors.hubspot.source import HubSpotSource
    from connectors.salesforce.source import SalesforceSource
    from crm.records import Crm
    from flows import artifacts, hourly_sync, pipeline, tasks

    opened = pipeline.open_runtime
    salesforce_policy, hubspot_policy = _fast_policies()

    def open_runtime(*args: Any, **kwargs: Any) -> Any:
        runtime = opened(*args, **kwargs)
        sf = runtime.sources.get(Crm.SALESFORCE)
        if isinstance(sf, SalesforceSource):
            sf.client.policy = salesforce_policy
            runtime.sources[Crm.SALESFORCE] = SalesforceSource(
                sf.client, runtime.mapping.salesforce, page_size=SALESFORCE_PAGE, bulk_threshold=None)
        hs = runtime.sources.get(Crm.HUBSPOT)
        if isinstance(hs, HubSpotSource):
            hs.client.policy = hubspot_policy
            runtime.sources[Crm.HUBSPOT] = HubSpotSource(hs.client, runtime.mapping.hubspot,
                                                         page_size=HUBSPOT_PAGE, list_page_size=HUBSPOT_PAGE)
        for name, hook in (hooks or {}).items():
            if name.startswith("runtime."):
                hook(runtime)
        return runtime

    with pytest.MonkeyPatch.context() as patch:
        for name in ("pull_stream", "load_and_resolve", "save_identity", "score", "save_scores", "route",
                     "plan_changes", "write_plan"):
            step = getattr(tasks, name).fn
            hook = (hooks or {}).get(name)
            patch.setattr(tasks, name, hook(step) if hook else step)
        patch.setattr(pipeline, "open_runtime", open_runtime)
        patch.setattr(hourly_sync, "get_run_logger", lambda: logging.getLogger("leadloop.flow"))
        patch.setattr(artifacts, "publish", lambda summary: None)
        yield


def run_sync(connection: Path, store_url: str, playbook: Path, at: datetime,
             hooks: dict[str, Callable[..., Any]] | None = None) -> Any:
    from flows.hourly_sync import hourly_sync
    from flows.options import SyncOptions

    options = SyncOptions(connection_file=str(connection), playbook=str(playbook), store_url=store_url, at=at)
    with flow_body_without_prefect(hooks):
        return hourly_sync.fn(options)


# -- the sandbox, the CRMs through their official clients, the store ------------------------------------


@dataclasses.dataclass
class Chaos:
    """The module's sandbox and store, and the case being run."""

    handle: Any
    connection: Path
    store_url: str
    workdir: Path
    playbooks: tuple[Path, Path]
    flip: int = 0
    at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    ledger_before: dict[str, dict[tuple[str, str], str]] = dataclasses.field(default_factory=dict)
    summaries: list[Any] = dataclasses.field(default_factory=list)
    started: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    fresh: int = 0

    @property
    def playbook(self) -> Path:
        return self.playbooks[self.flip % 2]

    def http(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.handle.ca_path)
        return session

    def faults(self, *rules: dict[str, Any]) -> None:
        self.http().post(f"{self.handle.admin_url}/faults", json={"rules": list(rules)},
                         timeout=30).raise_for_status()

    def clear_faults(self) -> None:
        self.http().delete(f"{self.handle.admin_url}/faults", timeout=30).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return self.http().get(f"{self.handle.admin_url}/stats", timeout=30).json()

    def reset_stats(self) -> None:
        self.http().post(f"{self.handle.admin_url}/stats/reset", json={}, timeout=30).raise_for_status()

    def sandbox_now(self) -> datetime:
        health = self.http().get(f"{self.handle.admin_url}/health", timeout=30).json()
        return datetime.fromisoformat(health["now"])

    def let_time_pass(self, seconds: float) -> None:
        """Move the sandbox's clock forward (the CRMs' timestamps and search index follow it)."""
        self.http().post(f"{self.handle.admin_url}/clock", json={"advance_seconds": seconds},
                         timeout=30).raise_for_status()

    def backend(self, name: str) -> Any:
        return next(b for b in self.handle.core.backends if b.name == name)

    def store(self) -> Any:
        from store.db import open_store

        return open_store(self.store_url)

    def salesforce(self) -> Any:
        from simple_salesforce import Salesforce

        conn = self.handle.connection["salesforce"]
        return Salesforce(instance_url=conn["instance_url"], session_id=conn["session_id"],
                          session=self.http(), version=conn.get("api_version", "59.0"))

    def hubspot(self) -> Any:
        from hubspot import HubSpot

        return HubSpot(access_token=self.handle.connection["hubspot"]["access_token"],
                       host=self.handle.base_url, ssl_ca_cert=str(self.handle.ca_path))

    # -- a case ----------------------------------------------------------------------------------------

    def begin(self) -> None:
        """A new case: the other playbook (every scored record gets a new model version), a fixed
        scoring moment (the CRMs' now), the ledgers as they are."""
        self.clear_faults()
        self.flip += 1
        self.at = self.sandbox_now().replace(microsecond=0)
        with contextlib.closing(self.store()) as store:
            self.ledger_before = {crm: store.ledger(crm) for crm in ("salesforce", "hubspot")}
        self.summaries = []
        self.started = datetime.now(UTC)
        self.reset_stats()

    def sync(self, hooks: dict[str, Callable[..., Any]] | None = None) -> Any:
        summary = run_sync(self.connection, self.store_url, self.playbook, self.at, hooks)
        self.summaries.append(summary)
        return summary

    def failing_sync(self, hooks: dict[str, Callable[..., Any]] | None = None) -> BaseException | None:
        """A run under faults that may give up; returns what it raised, if anything."""
        try:
            self.sync(hooks)
        except Exception as error:  # the run gave up: the next ones must pick up
            return error
        return None

    def recover(self, runs: int = 4) -> None:
        """Normal runs until one has nothing left to write."""
        self.clear_faults()
        for _ in range(runs):
            summary = self.sync()
            if summary.fields_written == 0 and summary.tasks_created == 0 and summary.rejections == 0:
                return
        raise AssertionError(f"still writing after {runs} normal runs: {summary.counts()}")


# -- invariants --------------------------------------------------------------------------------------


def _moment(value: str) -> datetime | None:
    text = value.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def same_value(ledgered: str, shown: Any) -> bool:
    """A ledger text against a CRM value: numbers by value, datetimes by instant, empty as None."""
    if shown is None or shown == "":
        return ledgered == ""
    if isinstance(shown, bool):
        return ledgered == ("true" if shown else "false")
    if isinstance(shown, int | float):
        try:
            return float(ledgered) == float(shown)
        except ValueError:
            return False
    text = str(shown)
    if text == ledgered:
        return True
    try:
        return float(text) == float(ledgered)
    except ValueError:
        pass
    left, right = _moment(ledgered), _moment(text)
    return left is not None and left == right


def salesforce_rows(chaos: Chaos, sobject: str, fields: list[str], where: str = ""
                    ) -> dict[str, dict[str, Any]]:
    soql = f"SELECT Id, {', '.join(fields)} FROM {sobject} {where}"
    return {r["Id"]: r for r in chaos.salesforce().query_all(soql)["records"]}


def hubspot_rows(chaos: Chaos, object_type: str, properties: list[str]) -> dict[str, dict[str, Any]]:
    api = chaos.hubspot().crm.objects.basic_api
    rows: dict[str, dict[str, Any]] = {}
    after = None
    while True:
        page = api.get_page(object_type, limit=100, after=after, properties=properties)
        for item in page.results:
            rows[str(item.id)] = item.properties or {}
        if page.paging is None or page.paging.next is None:
            return rows
        after = page.paging.next.after


def crm_tasks(chaos: Chaos) -> dict[str, Counter[str]]:
    """Task key → how many tasks carry it, in each CRM."""
    sf = chaos.salesforce().query_all("SELECT LL_Key__c FROM Task WHERE LL_Key__c != null")["records"]
    hs = hubspot_rows(chaos, "tasks", ["ll_key"])
    return {"salesforce": Counter(t["LL_Key__c"] for t in sf),
            "hubspot": Counter(p["ll_key"] for p in hs.values() if p.get("ll_key"))}


def check_no_duplicate_task(chaos: Chaos) -> None:
    tasks = crm_tasks(chaos)
    with contextlib.closing(chaos.store()) as store:
        for crm, keys in tasks.items():
            twice = {k: n for k, n in keys.items() if n > 1}
            assert not twice, f"{crm}: tasks created more than once: {twice}"
            ledgered = set(store.task_ledger(crm))
            assert ledgered == set(keys), (f"{crm}: task ledger and CRM differ: only ledgered "
                                           f"{sorted(ledgered - set(keys))[:5]}, only in the CRM "
                                           f"{sorted(set(keys) - ledgered)[:5]}")


def check_ledger_matches_the_crms(chaos: Chaos) -> None:
    with contextlib.closing(chaos.store()) as store:
        ledgers = {crm: store.ledger(crm) for crm in ("salesforce", "hubspot")}
    assert ledgers["salesforce"] and ledgers["hubspot"]
    sf_fields = sorted({field for _, field in ledgers["salesforce"]})
    shown: dict[str, dict[str, Any]] = {}
    for sobject in PERSON_OBJECTS:
        described = {f["name"] for f in chaos.salesforce().__getattr__(sobject).describe()["fields"]}
        shown |= salesforce_rows(chaos, sobject, [f for f in sf_fields if f in described])
    hs_fields = sorted({field for _, field in ledgers["hubspot"]})
    for object_type in ("contacts", "companies"):
        shown |= hubspot_rows(chaos, object_type, hs_fields)
    wrong = []
    for crm, ledger in ledgers.items():
        for (record_id, field), value in ledger.items():
            if record_id in shown and not same_value(value, shown[record_id].get(field)):
                wrong.append((crm, record_id, field, value, shown[record_id].get(field)))
    assert not wrong, f"ledger and CRM differ ({len(wrong)}), e.g. {wrong[:3]}"


def check_written_exactly_once(chaos: Chaos, killed_runs: int = 0) -> None:
    """Every ledger entry the case changed was reported written by exactly one run (a killed run's
    entries are counted from the ledger's run ids), and nothing was left unwritten or unreported."""
    from sqlalchemy import select

    from store.facade import LEDGER, RUNS

    reported = sum(s.fields_written for s in chaos.summaries)
    with contextlib.closing(chaos.store()) as store:
        changed = 0
        by_run: Counter[str] = Counter()
        for crm in ("salesforce", "hubspot"):
            before = chaos.ledger_before[crm]
            with store.engine.connect() as conn:
                for record_id, field, value, run_id in conn.execute(
                        select(LEDGER.c.record_id, LEDGER.c.field, LEDGER.c.value, LEDGER.c.run_id)
                        .where(LEDGER.c.crm == crm)):
                    if before.get((record_id, field)) != value:
                        changed += 1
                        by_run[run_id] += 1
        with store.engine.connect() as conn:
            unfinished = [r for (r,) in conn.execute(select(RUNS.c.id).where(
                RUNS.c.finished_at.is_(None), RUNS.c.started_at >= chaos.started))]
        open_failures = store.failures()
    assert changed > 0, "the case wrote nothing: it exercised nothing"
    by_killed = sum(by_run[r] for r in unfinished)
    assert len(unfinished) == killed_runs, unfinished
    assert reported + by_killed == changed, (reported, by_killed, changed)
    assert not open_failures, [(f.record_id, f.target, f.reason) for f in open_failures[:3]]


def check_store_holds_every_crm_record(chaos: Chaos) -> None:
    """Every live record of the CRMs is in the store, at the version the CRM shows now."""
    from sqlalchemy import select

    from store.facade import QUARANTINE, SNAPSHOTS

    with contextlib.closing(chaos.store()) as store, store.engine.connect() as conn:
        stored = {(crm, crm_id): (updated_at, deleted) for crm, crm_id, updated_at, deleted in conn.execute(
            select(SNAPSHOTS.c.crm, SNAPSHOTS.c.crm_id, SNAPSHOTS.c.updated_at, SNAPSHOTS.c.deleted))}
        held = {(crm, crm_id.split(":", 1)[-1]) for crm, crm_id in conn.execute(
            select(QUARANTINE.c.crm, QUARANTINE.c.crm_id).where(QUARANTINE.c.resolved_at.is_(None)))}
    expected: dict[tuple[str, str], datetime | None] = {}
    for sobject in SALESFORCE_OBJECTS:
        own = "WHERE LL_Key__c = null" if sobject == "Task" else ""  # leadloop's own tasks are no activity
        for record_id, row in salesforce_rows(chaos, sobject, ["SystemModstamp"], own).items():
            expected[("salesforce", record_id)] = _moment(row["SystemModstamp"])
    for object_type, cursor in HUBSPOT_OBJECTS.items():
        for record_id, props in hubspot_rows(chaos, object_type, [cursor, "ll_key"]).items():
            if not props.get("ll_key"):
                expected[("hubspot", record_id)] = _moment(props[cursor]) if props.get(cursor) else None
    missing = [key for key in expected if key not in stored and key not in held]
    # records whose canonical form keeps no modification time (campaigns, opportunities) show presence
    stale = [(key, stored[key][0], moment) for key, moment in expected.items()
             if key in stored and key not in held
             and (stored[key][1] or (stored[key][0] is not None and stored[key][0] != moment))]
    versioned = sum(stored[key][0] is not None for key in expected if key in stored)
    assert sum(crm == 'salesforce' for crm, _ in expected) > 50 and len(expected) > 120 and versioned > 80
    assert not missing, f"{len(missing)} CRM records never reached the store, e.g. {missing[:5]}"
    assert not stale, f"{len(stale)} stored records are not the CRM's latest version, e.g. {stale[:3]}"


def check_invariants(chaos: Chaos, killed_runs: int = 0) -> None:
    check_no_duplicate_task(chaos)
    check_written_exactly_once(chaos, killed_runs)
    check_ledger_matches_the_crms(chaos)
    check_store_holds_every_crm_record(chaos)


# -- the module's sandbox --------------------------------------------------------------------------


def chaos_playbooks(workdir: Path, owners: list[tuple[str, str, str]]) -> tuple[Path, Path]:
    """The example playbook with a low bar for the top tier (the tiny world's people are mostly a
    poor fit, and the cases need tasks to write) and its reps replaced by the sandbox's; and the same
    with one fit rule worth a point more, so switching between the two changes every model version."""
    text = PLAYBOOK.read_text()
    reps = list(dict.fromkeys(re.findall(r"[\w.]+@northwind-semi\.com", text)))
    for index, rep in enumerate(reps):
        text = text.replace(rep, owners[index % len(owners)][0])
    book = yaml.safe_load(text)
    book["tiers"][0].update(min_score=20, min_fit=15, min_intent=0)
    by_email = {email: (sf, hs) for email, sf, hs in owners}
    for rep in book["routing"]["reps"]:
        if rep.get("email") in by_email:
            rep["crm_ids"] = dict(zip(("salesforce", "hubspot"), by_email[rep["email"]], strict=True))
    paths = []
    for name in ("a", "b"):
        path = workdir / f"chaos-{name}.yaml"
        path.write_text(yaml.safe_dump(book, sort_keys=False, allow_unicode=True))
        paths.append(path)
        book["contact_fit"]["rules"][0]["points"] += 1
    return paths[0], paths[1]


def sandbox_owners(handle: Any) -> list[tuple[str, str, str]]:
    """(email, Salesforce user id, HubSpot owner id) of the sandbox's reps."""
    env = Chaos(handle, Path(), "", Path(), (PLAYBOOK, PLAYBOOK))
    users = {u["Email"]: u["Id"] for u in env.salesforce().query_all(
        "SELECT Id, Email FROM User WHERE IsActive = true")["records"]}
    owners = env.hubspot().crm.owners.owners_api.get_page(limit=100).results
    return sorted((o.email, users[o.email], str(o.id)) for o in owners if o.email in users)


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    """A tiny sandbox after `crm setup` and one full sync, and its store."""
    from connectors.hubspot.setup import setup as hubspot_setup
    from connectors.mapping import load_mapping
    from connectors.salesforce.setup import setup as salesforce_setup
    from connectors.settings import load_connection
    from sandbox.server import running_sandbox

    workdir = tmp_path_factory.mktemp("chaos")
    connection = workdir / "connection.json"
    with running_sandbox(size="tiny", seed=5, connection_file=connection) as handle:
        settings, mapping = load_connection(connection), load_mapping()
        salesforce_setup(settings, mapping)
        hubspot_setup(settings, mapping)
        env = Chaos(handle, connection, f"sqlite:///{workdir / 'state.db'}", workdir,
                    chaos_playbooks(workdir, sandbox_owners(handle)))
        env.begin()
        env.sync()
        env.recover()
        yield env


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def log() -> Iterator[LogCapture]:
    capture = logging.getLogger("leadloop")
    handler = LogCapture()
    level = capture.level
    capture.addHandler(handler)
    capture.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        capture.removeHandler(handler)
        capture.setLevel(level)


# -- the cases -------------------------------------------------------------------------------------


def test_the_first_sync_leaves_every_invariant_holding(chaos):
    assert chaos.summaries[0].fields_written > 0 and chaos.summaries[0].tasks_created > 0
    assert all(s.fields_written == s.tasks_created == 0 for s in chaos.summaries[2:])
    check_invariants(chaos)


def fresh_leads(chaos: Chaos, n: int = 2) -> list[str]:
    """New people in both CRMs, like the best-scored lead, each requesting an evaluation kit: new
    records to pull and new tasks to write. Returns their emails."""
    sf = chaos.salesforce()
    model = sf.query("SELECT Email, Title, Company, Country FROM Lead WHERE Email != null "
                     "ORDER BY LL_Score__c DESC LIMIT 1")["records"][0]
    domain = model["Email"].split("@", 1)[1]
    contacts = chaos.hubspot().crm.contacts.basic_api
    emails = []
    for _ in range(n):
        chaos.fresh += 1
        email = f"chaos.{chaos.fresh}@{domain}"
        lead = sf.Lead.create({"LastName": f"Chaos {chaos.fresh}", "Email": email, "Title": model["Title"],
                               "Company": model["Company"], "Country": model["Country"]})
        sf.Task.create({"WhoId": lead["id"], "Subject": "Form fill: EVK-7710 evaluation kit",
                        "Status": "Completed", "ActivityDate": chaos.at.date().isoformat()})
        contacts.create({"properties": {"email": email, "lastname": f"Chaos {chaos.fresh}",
                                        "jobtitle": model["Title"], "company": model["Company"]}})
        emails.append(email)
    return emails


def retry_waits(log: LogCapture, crm: str) -> list[float]:
    pattern = rf"^{crm} .* retry \d+/\d+ in ([\d.]+)s$"
    return [float(m.group(1)) for m in re.finditer(pattern, log.text(), re.M)]


def test_a_429_burst_with_retry_after_loses_nothing(chaos, log):
    chaos.begin()
    fresh_leads(chaos)
    chaos.faults({"crm": "salesforce", "status_429_every": 4, "retry_after": 1})
    chaos.sync()
    assert chaos.stats()["faults_injected"].get("status_429", 0) >= 3
    waits = retry_waits(log, "salesforce")
    assert waits and min(waits) >= 1.0, waits  # the server's Retry-After is honoured
    chaos.recover()
    check_invariants(chaos)
    assert chaos.summaries[0].tasks_created > 0


def test_a_429_burst_without_retry_after_loses_nothing(chaos, log):
    chaos.begin()
    fresh_leads(chaos)
    chaos.faults({"crm": "hubspot", "status_429_every": 3})
    chaos.sync()
    assert chaos.stats()["faults_injected"].get("status_429", 0) >= 5
    waits = retry_waits(log, "hubspot")
    assert waits and max(waits) < 1.0, waits  # our own backoff, from its short first wait
    chaos.recover()
    check_invariants(chaos)


def test_server_errors_lose_nothing(chaos):
    chaos.begin()
    fresh_leads(chaos)
    chaos.faults({"error_5xx_ratio": 0.25, "seed": 3}, {"crm": "hubspot", "error_5xx_ratio": 0.25,
                                                         "error_5xx_status": 502, "seed": 4})
    chaos.failing_sync()
    injected = chaos.stats()["faults_injected"]
    assert injected.get("status_503", 0) + injected.get("status_502", 0) >= 5
    chaos.recover()
    check_invariants(chaos)


def test_dropped_connections_lose_nothing(chaos):
    chaos.begin()
    fresh_leads(chaos)
    chaos.faults({"drop_connection_every": 4})
    chaos.failing_sync()
    assert chaos.stats()["faults_injected"].get("dropped_connection", 0) >= 5
    chaos.recover()
    check_invariants(chaos)


def test_responses_slower_than_the_client_timeout_lose_nothing(chaos, log):
    """Writes answered after the client gave up were applied by the CRM all the same: the next
    attempt sends the same values, and the ledger records them once."""
    chaos.begin()
    fresh_leads(chaos)
    chaos.faults({"endpoint": "composite", "slow_response_ms": 2500},
                 {"endpoint": "batch/update", "slow_response_ms": 2500},
                 {"endpoint": "query", "slow_response_ms": 2500})
    clear = threading.Timer(4.0, chaos.clear_faults)
    clear.start()
    try:
        chaos.failing_sync()
    finally:
        clear.cancel()
    assert "Timeout" in log.text() or "TIMEOUT" in log.text()
    chaos.recover()
    check_invariants(chaos)


def test_a_salesforce_session_expiring_mid_query_is_renewed_and_loses_nothing(chaos, log):
    chaos.begin()
    fresh_leads(chaos)
    chaos.faults({"crm": "salesforce", "endpoint": "query", "session_expire_after": 6})
    chaos.sync()
    assert "salesforce session renewed" in log.text()
    chaos.recover()
    check_invariants(chaos)


def test_a_hubspot_token_expiring_mid_run_fails_the_run_and_the_next_one_loses_nothing(chaos):
    chaos.begin()
    fresh_leads(chaos)
    chaos.faults({"crm": "hubspot", "session_expire_after": 8})
    error = chaos.failing_sync()
    assert error is not None and "401" in str(error)
    chaos.recover()
    check_invariants(chaos)


def test_records_rejected_in_a_batch_are_reported_with_the_crm_reason_and_written_once_cleared(chaos):
    chaos.begin()
    emails = fresh_leads(chaos)
    sf_lead = chaos.salesforce().query(f"SELECT Id FROM Lead WHERE Email = '{emails[0]}'")["records"][0]["Id"]
    hs_contact = hubspot_rows(chaos, "contacts", ["email"])
    contact_id = next(i for i, p in hs_contact.items() if p.get("email") == emails[1])
    chaos.faults({"crm": "salesforce", "reject": [{"object": "Lead", "id": sf_lead,
                                                   "message": "FIELD_CUSTOM_VALIDATION_EXCEPTION: chaos"}]},
                 {"crm": "hubspot", "reject": [{"object": "contacts", "id": contact_id,
                                                "message": "Property values were not valid: chaos"}]})
    summary = chaos.sync()
    assert summary.rejections > 0
    with contextlib.closing(chaos.store()) as store:
        failures = {(f.crm, f.record_id): f.reason for f in store.failures()}
        ledgers = {crm: store.ledger(crm) for crm in ("salesforce", "hubspot")}
    assert "chaos" in failures[("salesforce", sf_lead)] and "chaos" in failures[("hubspot", contact_id)]
    assert not [k for k in ledgers["salesforce"] if k[0] == sf_lead]
    assert not [k for k in ledgers["hubspot"] if k[0] == contact_id]
    chaos.recover()  # the rejection is lifted: the next run writes what was refused
    check_invariants(chaos)
    with contextlib.closing(chaos.store()) as store:
        assert [k for k in store.ledger("salesforce") if k[0] == sf_lead]
        assert [k for k in store.ledger("hubspot") if k[0] == contact_id]


# -- records tied at one timestamp, changed during a run, hidden by search lag --------------------------


@contextlib.contextmanager
def frozen_crm_clocks(chaos: Chaos) -> Iterator[datetime]:
    """Both CRMs stamp every write with one instant (whole seconds, as Salesforce does), just ahead of
    the sandbox's clock (which other cases may have moved ahead of the real one) so that no record's
    modification time goes back; on leaving, that clock has passed it."""
    moment = chaos.sandbox_now().replace(microsecond=0) + timedelta(seconds=1)
    org, portal = chaos.backend("salesforce").org, chaos.backend("hubspot").portal.store
    saved = org.now, portal.now
    org.now = portal.now = lambda: moment
    try:
        yield moment
    finally:
        org.now, portal.now = saved
        time.sleep(max(0.0, (moment - chaos.sandbox_now()).total_seconds() + 0.05))


def touch_salesforce(chaos: Chaos, sobject: str, rows: list[dict[str, Any]]) -> None:
    """Insert or update rows through the composite sObject collections API, 200 per call."""
    sf = chaos.salesforce()
    for start in range(0, len(rows), 200):
        chunk = [{"attributes": {"type": sobject}, **row} for row in rows[start:start + 200]]
        method = "PATCH" if "Id" in chunk[0] else "POST"
        answers = sf.restful("composite/sobjects", method=method, json={"allOrNone": True, "records": chunk})
        assert all(a["success"] for a in answers), answers[:2]


def test_records_tied_at_one_timestamp_across_pages_and_at_the_cursor_are_all_stored(chaos):
    chaos.begin()
    fresh_leads(chaos)
    sf = chaos.salesforce()
    who = [r["Id"] for r in sf.query_all("SELECT Id FROM Lead")["records"]]
    contacts = hubspot_rows(chaos, "contacts", ["email"])
    with frozen_crm_clocks(chaos):
        # more than a page of Salesforce tasks and HubSpot contacts, all at the same instant
        touch_salesforce(chaos, "Task", [{"WhoId": who[i % len(who)], "Subject": f"Call {i}",
                                          "Status": "Completed", "ActivityDate": chaos.at.date().isoformat()}
                                         for i in range(230)])
        api = chaos.hubspot().crm.contacts.batch_api
        ids = sorted(contacts, key=int)
        api.update({"inputs": [{"id": i, "properties": {"firstname": f"Tied {i}"}}
                               for i in ids[:HUBSPOT_PAGE + 5]]})
        chaos.sync()  # the cursors end at the tied instant
        # more records committed at that same instant after the run read it
        touch_salesforce(chaos, "Task", [{"WhoId": who[i % len(who)], "Subject": f"Late call {i}",
                                          "Status": "Completed", "ActivityDate": chaos.at.date().isoformat()}
                                         for i in range(5)])
        api.update({"inputs": [{"id": i, "properties": {"firstname": f"Late {i}"}} for i in ids[-3:]]})
    chaos.recover()
    check_invariants(chaos)
    with contextlib.closing(chaos.store()) as store:
        people = {p.hubspot_id: p.first_name for p in store.load_records().people if p.hubspot_id}
    assert all(people[i] == f"Late {i}" for i in ids[-3:])


def test_records_changed_during_a_run_reach_the_store_by_the_next_run(chaos):
    chaos.begin()
    fresh_leads(chaos)
    sf = chaos.salesforce()
    leads = [r["Id"] for r in sf.query_all("SELECT Id FROM Lead ORDER BY Id LIMIT 3")["records"]]
    contacts = sorted(hubspot_rows(chaos, "contacts", ["email"]), key=int)[:3]

    def change_what_was_just_pulled(step: Callable[..., Any]) -> Callable[..., Any]:
        def pull(runtime: Any, crm: Any, stream: str) -> Any:
            stats = step(runtime, crm, stream)
            if stream == "Lead":
                touch_salesforce(chaos, "Lead", [{"Id": i, "FirstName": "Changed"} for i in leads])
            if stream == "contacts":
                chaos.hubspot().crm.contacts.batch_api.update(
                    {"inputs": [{"id": i, "properties": {"firstname": "Changed"}} for i in contacts]})
            return stats
        return pull

    chaos.sync({"pull_stream": change_what_was_just_pulled})
    chaos.recover()
    check_invariants(chaos)
    with contextlib.closing(chaos.store()) as store:
        names = {p.id.split(":", 1)[1]: p.first_name for p in store.load_records().people}
    assert [names[i] for i in leads + contacts] == ["Changed"] * 6


def test_hubspot_search_lag_hides_nothing_from_the_next_run(chaos):
    """Records HubSpot's search does not show yet (including the run's own write-back, which lags
    too) reach the store on the next run, once the index has caught up. The sandbox's clock moves
    instead of the test sleeping, so the lag outlasts a slow run and the catch-up is exact."""
    lag = 120
    chaos.begin()
    fresh_leads(chaos)
    chaos.faults({"crm": "hubspot", "search_lag_seconds": lag})
    lagged = sorted(hubspot_rows(chaos, "contacts", ["email"]), key=int)[-4:]
    chaos.hubspot().crm.contacts.batch_api.update(
        {"inputs": [{"id": i, "properties": {"firstname": "Lagged"}} for i in lagged]})
    chaos.sync()
    with contextlib.closing(chaos.store()) as store:
        names = {p.hubspot_id: p.first_name for p in store.load_records().people if p.hubspot_id}
    assert [names.get(i) for i in lagged] != ["Lagged"] * 4, "the search showed lagging records at once"
    chaos.let_time_pass(lag + 1)
    chaos.recover()
    check_invariants(chaos)
    with contextlib.closing(chaos.store()) as store:
        names = {p.hubspot_id: p.first_name for p in store.load_records().people if p.hubspot_id}
    assert [names[i] for i in lagged] == ["Lagged"] * 4


# -- the sync killed (SIGKILL) -------------------------------------------------------------------------


def kill_during(chaos: Chaos, phase: str) -> None:
    """Run the sync in a child process that stops inside `phase` and SIGKILL it there."""
    marker = chaos.workdir / f"reached-{phase}-{chaos.flip}"
    command = [sys.executable, __file__, "--phase", phase, "--connection", str(chaos.connection),
               "--store-url", chaos.store_url, "--playbook", str(chaos.playbook),
               "--at", chaos.at.isoformat(), "--marker", str(marker)]
    child = subprocess.Popen(command, cwd=PROJECT, env=dict(os.environ, PYTHONPATH=str(PROJECT)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not marker.exists():
            if child.poll() is not None:
                raise AssertionError(f"the sync ended before reaching {phase}: "
                                     f"{child.stderr.read().decode()[-2000:] if child.stderr else ''}")
            assert time.monotonic() < deadline, f"the sync never reached {phase}"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def test_a_sync_killed_during_the_pull_loses_nothing(chaos):
    chaos.begin()
    fresh_leads(chaos)
    kill_during(chaos, "pull")
    chaos.recover()
    check_invariants(chaos, killed_runs=1)


def test_a_sync_killed_during_scoring_loses_nothing(chaos):
    chaos.begin()
    fresh_leads(chaos)
    kill_during(chaos, "score")
    chaos.recover()
    check_invariants(chaos, killed_runs=1)


def test_a_sync_killed_between_a_field_batch_and_its_ledger_writes_each_value_once(chaos):
    chaos.begin()
    fresh_leads(chaos)
    kill_during(chaos, "write-fields")
    with contextlib.closing(chaos.store()) as store:
        assert store.ledger("salesforce") == chaos.ledger_before["salesforce"], "the batch was ledgered"
    chaos.recover()
    check_invariants(chaos, killed_runs=1)
    with contextlib.closing(chaos.store()) as store:
        ledger = store.ledger("salesforce")
    before = chaos.ledger_before["salesforce"]
    records = len({record for key, value in ledger.items() if before.get(key) != value for record in key[:1]})
    written = chaos.stats()["records_written"]["salesforce"]
    updates = sum(n for endpoint, n in written.items() if "composite/sobjects" in endpoint
                  and "upsert" not in endpoint and "Task" not in endpoint)
    assert records > 0 and updates <= records + 200  # the batch in flight sent once more, at most


def search_politely(api: Any, object_type: str, body: dict[str, Any]) -> Any:
    """One search through the official client, waiting out HubSpot's 5 searches/second, which this
    check shares with the syncs under test."""
    from hubspot.crm.objects.exceptions import ApiException

    for _ in range(10):
        try:
            return api.do_search(object_type, body)
        except ApiException as error:
            if error.status != 429:
                raise
            time.sleep(1.0)
    raise AssertionError("HubSpot search stayed rate-limited for 10 s")


def hidden_from_search(chaos: Chaos, object_type: str, has_property: str) -> set[str]:
    """Ids of the records carrying `has_property` that are listed but that search does not show yet."""
    listed = {i for i, p in hubspot_rows(chaos, object_type, [has_property]).items() if p.get(has_property)}
    api, found, after = chaos.hubspot().crm.objects.search_api, set(), "0"
    while after is not None:
        page = search_politely(api, object_type, {
            "filterGroups": [{"filters": [{"propertyName": has_property, "operator": "HAS_PROPERTY"}]}],
            "properties": [has_property], "limit": 200, "after": after})
        found |= {str(r.id) for r in page.results}
        after = page.paging.next.after if page.paging and page.paging.next else None
    return listed - found


def test_a_sync_killed_after_hubspot_created_its_tasks_under_search_lag_duplicates_none(chaos):
    """HubSpot answered the task creation, the process died before the task ledger saw it, and the
    search index has not caught up when the next run asks for those keys.

    The killed run also wrote fields of HubSpot contacts under the lag; no search can show those
    versions until the index catches up, so the recovery runs (inside the lag) cannot store them. The
    store is compared with the CRMs once the index has caught up and one more normal run has pulled."""
    lag = 30
    chaos.begin()
    fresh_leads(chaos, 3)
    chaos.faults({"crm": "hubspot", "search_lag_seconds": lag})
    kill_during(chaos, "write-tasks")
    assert hidden_from_search(chaos, "tasks", "ll_key"), "the killed run's tasks were searchable at once"
    chaos.recover()
    check_no_duplicate_task(chaos)
    chaos.let_time_pass(lag + 1)
    assert not hidden_from_search(chaos, "contacts", "lastmodifieddate")
    assert chaos.sync().fields_written == 0
    check_invariants(chaos, killed_runs=1)


def _kill_hooks(phase: str, marker: Path) -> dict[str, Callable[..., Any]]:
    """Hooks that stop the sync inside `phase` (after the CRM took a write, before the ledger did)."""

    def stop_here() -> None:
        marker.write_text(phase)
        time.sleep(600)

    if phase == "score":
        def score(step: Callable[..., Any]) -> Callable[..., Any]:
            return lambda *args, **kwargs: (step(*args, **kwargs), stop_here())[0]
        return {"score": score}

    def runtime_hook(runtime: Any) -> None:
        from crm.records import Crm

        if phase == "pull":
            store, pages = runtime.store, [0]
            upsert = store.upsert_snapshots

            def upsert_snapshots(*args: Any, **kwargs: Any) -> Any:
                stored = upsert(*args, **kwargs)
                pages[0] += 1
                if pages[0] == 12:  # a page stored, its cursor not yet moved
                    stop_here()
                return stored
            store.upsert_snapshots = upsert_snapshots
        elif phase == "write-fields":
            sink = runtime.sinks[Crm.SALESFORCE]
            write_fields = sink.write_fields
            sink.write_fields = lambda updates: (write_fields(updates), stop_here())[0]
        elif phase == "write-tasks":
            sink = runtime.sinks[Crm.HUBSPOT]
            upsert_tasks = sink.upsert_tasks
            sink.upsert_tasks = lambda tasks: (upsert_tasks(tasks), stop_here())[0]
    return {"runtime.kill": runtime_hook}


def main() -> None:
    parser = argparse.ArgumentParser(description="One hourly sync that stops inside a step, to be killed.")
    parser.add_argument("--phase", choices=KILL_PHASES, required=True)
    for name in ("--connection", "--store-url", "--playbook", "--at", "--marker"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    run_sync(Path(args.connection), args.store_url, Path(args.playbook), datetime.fromisoformat(args.at),
             _kill_hooks(args.phase, Path(args.marker)))


if __name__ == "__main__":
    main()
