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
KILL_PHASES = ("pull", "score", "write-fields", "write-tasks", "task-search", "tasks-sent-salesforce")


# -- the sync under test -----------------------------------------------------------------------------


def _fast_policies() -> tuple[Any, Any]:
    """Retry policies with the production shape but short waits, and a 1.5 s read timeout so that a
    slow response counts as a timeout."""
    from leadloop.connectors.hubspot.retry import RetryPolicy as HubSpotPolicy
    from leadloop.connectors.salesforce.retry import RetryPolicy as SalesforcePolicy

    fast = {"attempts": 6, "initial_wait": 0.2, "max_wait": 2.0, "max_retry_after": 3.0, "timeout": (5, 1.5)}
    return SalesforcePolicy(**fast), HubSpotPolicy(**fast)


@contextlib.contextmanager
def flow_body_without_prefect(hooks: dict[str, Callable[..., Any]] | None = None) -> Iterator[None]:
    """The hourly_sync flow body with its Prefect tasks as plain calls, artifacts and events dropped,
    small pages and fast retry policies on the connectors; `hooks` wrap pipeline steps by name."""
    from leadloop.connectors.hubspot.source import HubSpotSource
    from leadloop.connectors.salesforce.source import SalesforceSource
    from leadloop.crm.records import Crm
    from leadloop.flows import artifacts, events, hourly_sync, tasks
    from leadloop.sync import pipeline

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
        patch.setattr(events, "emit_tier_changes", lambda summary: 0)
        yield


def run_sync(connection: Path, store_url: str, playbook: Path, at: datetime,
             hooks: dict[str, Callable[..., Any]] | None = None, grace: float = 0.0) -> Any:
    """One hourly sync; returns its summary (also when the flow ends Failed for failed writes).
    `grace`: seconds a task whose create may have reached HubSpot waits for the search index before it
    is sent again. The sandbox's search has no lag unless a case injects one, so 0 unless a case says."""
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.options import SyncOptions
    from leadloop.flows.steps import summary_of
    from leadloop.store.db import open_store
    from leadloop.sync import writeback
    from leadloop.sync.live import choose_playbook, record_activation

    # Each case scores under a playbook one point apart from the last case's, so that every score is
    # rewritten through the case's faults: revops has made it live (as `rescore --activate` does).
    with open_store(store_url) as store:
        record_activation(store, choose_playbook(store, str(playbook), kind="rescore", activate=True),
                          run_id=None, reason="the chaos case's playbook")
    options = SyncOptions(connection_file=str(connection), playbook=str(playbook), store_url=store_url, at=at)
    with flow_body_without_prefect(hooks), pytest.MonkeyPatch.context() as patch:
        patch.setattr(writeback, "PENDING_GRACE", timedelta(seconds=grace))
        return summary_of(hourly_sync.fn(options))


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
    fresh_before: int = 0  # fresh leads made before this case
    fresh_domain: str = ""

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
        from leadloop.store.db import open_store

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
        self.fresh_before = self.fresh
        self.started = datetime.now(UTC)
        self.reset_stats()

    def sync(self, hooks: dict[str, Callable[..., Any]] | None = None, grace: float = 0.0) -> Any:
        summary = run_sync(self.connection, self.store_url, self.playbook, self.at, hooks, grace)
        self.summaries.append(summary)
        return summary

    def failing_sync(self, hooks: dict[str, Callable[..., Any]] | None = None, grace: float = 0.0
                     ) -> BaseException | None:
        """A run under faults that may give up; returns what it raised, if anything. A run that
        completes must say in its outcome (the exit code's source) whether anything was left unwritten."""
        try:
            summary = self.sync(hooks, grace)
        except Exception as error:  # the run gave up: the next ones must pick up
            return error
        self.check_outcome_tells_the_truth(summary)
        return None

    def check_outcome_tells_the_truth(self, summary: Any) -> None:
        from leadloop.cli.output import exit_code

        left = summary.rejections + summary.tasks_unconfirmed + len(summary.tasks_unplaced)
        code = exit_code(summary)
        assert (code == 0) == (left == 0), (code, summary.counts())
        if summary.failed_writes():
            assert code == 1
        if summary.rejections:
            assert sum(g["count"] for g in summary.rejection_groups()) >= summary.rejections

    def recover(self, runs: int = 4, grace: float = 0.0) -> None:
        """Normal runs until one has nothing left to write."""
        self.clear_faults()
        for _ in range(runs):
            summary = self.sync(grace=grace)
            self.check_outcome_tells_the_truth(summary)
            if summary.fields_written == 0 and summary.tasks_created == 0 and summary.rejections == 0 \
                    and summary.tasks_unconfirmed == 0:
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

    from leadloop.store.facade import LEDGER, RUNS

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
            runs = {run_id: status for run_id, status in conn.execute(
                select(RUNS.c.id, RUNS.c.status).where(RUNS.c.started_at >= chaos.started))}
        open_failures = store.failures()
    assert changed > 0, "the case wrote nothing: it exercised nothing"
    # a killed run is marked crashed by the run that took the store over after it; none stays running
    assert "running" not in runs.values(), runs
    crashed = [r for r, status in runs.items() if status == "crashed"]
    by_killed = sum(by_run[r] for r in crashed)
    assert len(crashed) == killed_runs, runs
    assert reported + by_killed == changed, (reported, by_killed, changed)
    assert not open_failures, [(f.record_id, f.target, f.reason) for f in open_failures[:3]]


def check_store_holds_every_crm_record(chaos: Chaos) -> None:
    """Every live record of the CRMs is in the store, at the version the CRM shows now."""
    from sqlalchemy import select

    from leadloop.store.facade import QUARANTINE, SNAPSHOTS

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


def check_every_routed_task_delivered(chaos: Chaos) -> None:
    """Nothing is left in the outbox, every ledgered task is open in the CRM under its key, each
    person's task stands in every CRM the playbook's `tasks_in` names (here: both) and nowhere twice,
    and each of the case's fresh leads (evaluation-kit requests: the hottest kind) has its task."""
    from sqlalchemy import select

    from leadloop.store.facade import TASKS

    tasks = crm_tasks(chaos)
    with contextlib.closing(chaos.store()) as store:
        with store.engine.connect() as conn:
            rows = list(conn.execute(select(TASKS.c.crm, TASKS.c.key, TASKS.c.status, TASKS.c.person_id,
                                            TASKS.c.last_error)))
        links = store.identity_links()
        ids_by_email: dict[str, set[str]] = {}
        for p in store.load_records().people:
            if p.email:
                ids_by_email.setdefault(p.email, set()).update({p.id, links.get(p.id, p.id)})
    outstanding = [(crm, key, status, error) for crm, key, status, _, error in rows if status != "open"]
    assert not outstanding, f"{len(outstanding)} tasks never delivered, e.g. {outstanding[:3]}"
    for crm, key, _, _, _ in rows:
        assert tasks[crm][key] == 1, (crm, key, tasks[crm][key])
    for n in range(chaos.fresh_before + 1, chaos.fresh + 1):
        email = f"chaos.{n}@{chaos.fresh_domain}"
        mine = {crm for crm, _, _, pid, _ in rows if pid in ids_by_email[email]}
        assert mine == {"salesforce", "hubspot"}, (email, mine)


def check_invariants(chaos: Chaos, killed_runs: int = 0) -> None:
    check_every_routed_task_delivered(chaos)
    check_no_duplicate_task(chaos)
    check_written_exactly_once(chaos, killed_runs)
    check_ledger_matches_the_crms(chaos)
    check_store_holds_every_crm_record(chaos)


# -- the module's sandbox --------------------------------------------------------------------------


def chaos_playbooks(workdir: Path, owners: list[tuple[str, str, str]]) -> tuple[Path, Path]:
    """The example playbook with a low bar for the top tier (the tiny world's people are mostly a
    poor fit, and the cases need tasks to write), tasks in both CRMs, and its reps replaced by the
    sandbox's; and the same
    with one fit rule worth a point more, so switching between the two changes every model version."""
    text = PLAYBOOK.read_text()
    reps = list(dict.fromkeys(re.findall(r"[\w.]+@northwind-semi\.com", text)))
    for index, rep in enumerate(reps):
        text = text.replace(rep, owners[index % len(owners)][0])
    book = yaml.safe_load(text)
    book["tiers"][0].update(min_score=20, min_fit=15, min_intent=0)
    # every task in both CRMs: each case then drives both task sinks through its faults
    book["routing"]["tasks_in"] = "both"
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
def chaos(crm_sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    """A tiny sandbox after `crm setup` and one full sync, and its store."""

    workdir = tmp_path_factory.mktemp("chaos")
    connection = workdir / "connection.json"
    with crm_sandbox(connection, size="tiny", seed=5) as handle:
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
    domain = chaos.fresh_domain = model["Email"].split("@", 1)[1]
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


@contextlib.contextmanager
def held_child(chaos: Chaos, phase: str, connection: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A sync in a child process, held inside `phase` while the block runs, then SIGKILLed there."""
    marker = chaos.workdir / f"reached-{phase}-{chaos.flip}-{time.monotonic_ns()}"
    command = [sys.executable, __file__, "--phase", phase,
               "--connection", str(connection or chaos.connection), "--store-url", chaos.store_url,
               "--playbook", str(chaos.playbook),
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
        yield child
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def kill_during(chaos: Chaos, phase: str) -> None:
    """Run the sync in a child process that stops inside `phase` and SIGKILL it there; the killed
    run's lease stays behind in the store."""
    with held_child(chaos, phase):
        pass
    with contextlib.closing(chaos.store()) as store:
        lease = store.lease()
    assert lease is not None and lease.kind == "hourly_sync", "the killed run held no lease"


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

    Inside the search grace the next run looks the keys up, finds nothing yet, and creates nothing:
    the tasks await confirmation, and the summary says so. Once the index has caught up, a run finds
    and ledgers them.

    The killed run also wrote fields of HubSpot contacts under the lag; no search can show those
    versions until the index catches up, so the recovery runs (inside the lag) cannot store them. The
    store is compared with the CRMs once the index has caught up and one more normal run has pulled."""
    lag, grace = 30, 600.0
    chaos.begin()
    fresh_leads(chaos, 3)
    chaos.faults({"crm": "hubspot", "search_lag_seconds": lag})
    kill_during(chaos, "write-tasks")
    assert hidden_from_search(chaos, "tasks", "ll_key"), "the killed run's tasks were searchable at once"
    waiting = chaos.sync(grace=grace)
    assert waiting.tasks_unconfirmed >= 3 and waiting.outcome == "rejections"
    check_no_duplicate_task(chaos)
    chaos.let_time_pass(lag + 1)
    assert not hidden_from_search(chaos, "contacts", "lastmodifieddate")
    chaos.recover(grace=grace)
    assert sum(w.tasks_confirmed for s in chaos.summaries for w in s.writes) >= 3
    check_invariants(chaos, killed_runs=1)


@pytest.mark.parametrize(("phase", "crm"), [
    ("task-search", "hubspot"),  # queued, the search by key in flight, nothing created yet
    ("tasks-sent-salesforce", "salesforce"),  # Salesforce took the upserts, the ledger did not
])
def test_a_sync_killed_while_writing_tasks_delivers_each_task_once(chaos, phase, crm):
    chaos.begin()
    fresh_leads(chaos)
    kill_during(chaos, phase)
    with contextlib.closing(chaos.store()) as store:
        assert store.task_outbox(crm), "the killed run left no task pending"
    chaos.recover()
    check_invariants(chaos, killed_runs=1)


# -- tasks: rejected, answered late, an outage, two runs at once -----------------------------------------


TASK_RULES = (
    {"crm": "salesforce", "reject": [{"object": "Task", "field": "Status", "value": "Not Started",
                                      "message": "FIELD_CUSTOM_VALIDATION_EXCEPTION: chaos task rule"}]},
    {"crm": "hubspot", "reject": [{"object": "tasks", "field": "hs_task_type", "value": "TODO",
                                   "message": "Property values were not valid: chaos task rule"}]},
)


def test_tasks_both_crms_reject_are_reported_and_delivered_once_the_rule_is_lifted(chaos):
    """Routing asks for a task once (the score does not change again): the outbox keeps asking."""
    chaos.begin()
    fresh_leads(chaos)
    chaos.faults(*TASK_RULES)
    summary = chaos.sync()
    assert summary.tasks_created == 0 and summary.outcome == "rejections"
    [group] = [g for g in summary.rejection_groups() if g["object"] == "task" and g["crm"] == "hubspot"]
    assert "chaos task rule" in group["reason"] and group["examples"]
    again = chaos.sync()  # still rejected: still visible, still queued, nothing created
    assert again.tasks_created == 0 and again.outcome == "rejections"
    with contextlib.closing(chaos.store()) as store:
        outbox = {crm: store.task_outbox(crm) for crm in ("salesforce", "hubspot")}
    assert all(row.status == "rejected" and row.attempts == 2
               for rows in outbox.values() for row in rows.values())
    assert outbox["salesforce"] and outbox["hubspot"]
    chaos.recover()
    assert chaos.summaries[2].tasks_created == sum(len(rows) for rows in outbox.values())
    check_invariants(chaos)


def test_a_task_create_answered_after_the_client_gave_up_is_confirmed_by_key_never_sent_twice(chaos):
    """HubSpot created the tasks and answered after the client's timeout. The create is not retried;
    the next run, inside the search grace, finds them by key and ledgers them."""
    chaos.begin()
    fresh_leads(chaos, 3)
    chaos.faults({"crm": "hubspot", "endpoint": "tasks/batch/create", "answer_late_ms": 2500})
    grace = 600.0
    summary = chaos.sync(grace=grace)
    assert chaos.stats()["faults_injected"].get("answered_late") == 1, "the create was retried blindly"
    assert summary.tasks_unconfirmed >= 3 and summary.outcome == "rejections"
    chaos.check_outcome_tells_the_truth(summary)
    chaos.recover(grace=grace)
    confirmed = sum(w.tasks_confirmed for s in chaos.summaries[1:] for w in s.writes)
    assert confirmed == summary.tasks_unconfirmed
    check_invariants(chaos)


def test_a_whole_crm_write_outage_fails_the_run_and_the_next_run_writes_everything(chaos):
    from leadloop.cli.output import exit_code

    chaos.begin()
    fresh_leads(chaos)
    chaos.faults({"crm": "hubspot", "endpoint": "batch/update", "error_5xx_ratio": 1.0})
    summary = chaos.sync()
    assert summary.outcome == "failed" and exit_code(summary) == 1
    assert "hubspot person" in summary.failed_writes()
    with contextlib.closing(chaos.store()) as store:
        assert store.get_run(summary.run_id).status == "failed"
    chaos.recover()
    check_invariants(chaos)


def test_a_salesforce_session_expiring_without_renewal_credentials_fails_the_run_and_loses_nothing(chaos):
    import json

    chaos.begin()
    fresh_leads(chaos)
    settings = json.loads(chaos.connection.read_text())
    settings["salesforce"] = {k: v for k, v in settings["salesforce"].items()
                              if k in ("instance_url", "session_id", "api_version")}
    bare = chaos.workdir / "connection-session-only.json"
    bare.write_text(json.dumps(settings))
    chaos.faults({"crm": "salesforce", "endpoint": "query", "session_expire_after": 6})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chaos, "connection", bare)
        error = chaos.failing_sync()
    assert error is not None and "expired" in str(error) and "renew" in str(error)
    chaos.recover()
    check_invariants(chaos)


def test_a_second_sync_exits_at_once_naming_the_holder_and_a_killed_holders_lease_is_taken_over(chaos):
    """Two syncs on one store: the second (the CLI, as a user or a second scheduler starts it) fails
    at once and says who holds the store; the holder is then killed, and the next run takes its lease
    over and marks it crashed."""
    chaos.begin()
    fresh_leads(chaos)
    with held_child(chaos, "score") as holder:
        started = time.monotonic()
        from leadloop.store.facade import StoreLocked
        with pytest.raises(StoreLocked, match=f"process {holder.pid} on"):
            chaos.sync()
        assert time.monotonic() - started < 30
        cli = subprocess.run(
            [str(Path(sys.executable).with_name("leadloop")), "sync",
             "--connection-file", str(chaos.connection), "--store-url", chaos.store_url,
             "--playbook", str(chaos.playbook)],
            cwd=chaos.workdir, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, PREFECT_HOME=str(chaos.workdir / "prefect-cli")))
        assert cli.returncode == 1, (cli.returncode, cli.stdout[-1500:], cli.stderr[-1500:])
        assert "in use by run" in cli.stderr and "Traceback" not in cli.stderr + cli.stdout
        assert "run it again once that run has finished" in cli.stderr
    chaos.recover()
    check_invariants(chaos, killed_runs=1)


# -- seeded random schedules ---------------------------------------------------------------------------


def _random_rule(rng: Any) -> dict[str, Any]:
    crm = rng.choice(["salesforce", "hubspot"])
    kind = rng.choice(["429", "5xx", "drop", "late-create", "reject-tasks", "outage", "slow"])
    if kind == "429":
        return {"crm": crm, "status_429_every": rng.randint(3, 6), "retry_after": rng.choice([None, 1])}
    if kind == "5xx":
        return {"crm": crm, "error_5xx_ratio": rng.choice([0.1, 0.2]), "seed": rng.randint(0, 999)}
    if kind == "drop":
        return {"crm": crm, "drop_connection_every": rng.randint(5, 9)}
    if kind == "late-create":
        return {"crm": "hubspot", "endpoint": "tasks/batch/create", "answer_late_ms": 2500}
    if kind == "reject-tasks":
        return TASK_RULES[0] if crm == "salesforce" else TASK_RULES[1]
    if kind == "outage":
        return {"crm": crm, "endpoint": "composite/sobjects" if crm == "salesforce" else "batch/update",
                "error_5xx_ratio": 1.0}
    return {"crm": crm, "endpoint": rng.choice(["composite", "batch/update", "query", "search"]),
            "slow_response_ms": 2500}


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_a_seeded_random_schedule_of_faults_ends_with_every_invariant_holding(chaos, seed):
    import random

    rng = random.Random(seed)
    chaos.begin()
    fresh_leads(chaos, rng.randint(1, 2))
    rules = [_random_rule(rng) for _ in range(rng.randint(1, 3))]
    chaos.faults(*rules)
    for _ in range(rng.randint(1, 2)):
        chaos.failing_sync(grace=rng.choice([0.0, 600.0]))
    chaos.recover()
    check_invariants(chaos)


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
        from leadloop.crm.records import Crm

        if phase == "pull":
            store, batches = runtime.store, [0]
            store_pages = store.store_pages

            def stored_then_killed(*args: Any, **kwargs: Any) -> Any:
                stored = store_pages(*args, **kwargs)
                batches[0] += 1
                if batches[0] == 3:  # some pages committed with their cursors, the streams still pulling
                    stop_here()
                return stored
            store.store_pages = stored_then_killed
        elif phase == "write-fields":
            sink = runtime.sinks[Crm.SALESFORCE]
            write_fields = sink.write_fields
            sink.write_fields = lambda updates: (write_fields(updates), stop_here())[0]
        elif phase == "write-tasks":
            sink = runtime.sinks[Crm.HUBSPOT]
            upsert_tasks = sink.upsert_tasks
            sink.upsert_tasks = lambda tasks: (upsert_tasks(tasks), stop_here())[0]
        elif phase == "task-search":  # tasks queued, the search by key in flight, nothing created yet
            sink = runtime.sinks[Crm.HUBSPOT]
            sink.find_tasks = lambda keys: stop_here()
        elif phase == "tasks-sent-salesforce":  # Salesforce took the upserts, the ledger did not
            sink = runtime.sinks[Crm.SALESFORCE]
            upsert = sink.upsert_tasks
            sink.upsert_tasks = lambda tasks: (upsert(tasks), stop_here())[0]
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
