"""Benchmark: the sync against the sandbox CRMs — API economy, wall time per step, memory, the cost under
latency and rate limits, writes caused by decay alone, and a naive per-record connector side by side.

    .venv/bin/python bench/bench_sync.py                                  # size medium, every phase
    .venv/bin/python bench/bench_sync.py --size large --phases full       # size L: the full sync only
    .venv/bin/python bench/bench_sync.py --size small --phases full,incremental,decay --decay-runs 24

The sandbox runs in its own process (as a remote CRM would), so the peak RSS is the sync's own. Phases,
in this order on one sandbox and one state store (choose with `--phases`):

- `full`: the first sync, through the flow's own sequence (`flows.steps.score_route_write`, as the
  `hourly_sync` flow calls it: an hourly run, which rescores everyone when no hourly run finished
  before) with each Prefect task replaced by its plain function under a timer;
- `incremental`: ~1% of people and accounts changed through the CRM APIs, then the same sync again;
- `engine`: a sync with no changes as plain steps, then the same through the `hourly_sync` flow
  (Prefect's engine), after Prefect's local server has been started by a no-op flow;
- `latency`: 100 ms added to every call (HubSpot's rate limits stay on, as always in the sandbox),
  ~1% changed again, then an incremental sync; or with `--latency-sync full`, a full sync into a new
  store; wall time against the floor the APIs set, and the HubSpot pull against its own floor;
- `decay`: N hourly runs with no new activity, `at` and the sandbox clock one hour later each time;
  the writes each caused, by cause (tier crossing, score moved past the minimum change, other);
- `naive`: the per-record connector (bench/naive.py) on a sample of the same records and write plans;
  its calls are counted exactly for the whole data and its wall time extrapolated from the sample.

Prints a table per phase and writes the figures as JSON (`--json`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="leadloop-bench-prefect-"))
for _name, _value in (("PREFECT_LOGGING_LEVEL", "WARNING"), ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
                      ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"),
                      ("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")):
    os.environ.setdefault(_name, _value)

import requests  # noqa: E402
from naive import NaiveHubSpot, NaiveSalesforce, spread  # noqa: E402

from leadloop.connectors.mapping import Mapping, load_mapping  # noqa: E402
from leadloop.connectors.settings import ConnectionSettings, load_connection  # noqa: E402
from leadloop.crm.changes import FieldUpdate, ObjectType  # noqa: E402
from leadloop.crm.records import Crm  # noqa: E402
from leadloop.flows import steps  # noqa: E402
from leadloop.flows.options import SyncOptions  # noqa: E402
from leadloop.flows.steps import SyncSummary  # noqa: E402
from leadloop.playbook.load import load_playbook  # noqa: E402
from leadloop.store.writeplan import DECAYING_FIELDS, TIER_FIELDS  # noqa: E402
from leadloop.sync import pipeline, workspace  # noqa: E402
from leadloop.sync.pipeline import Runtime  # noqa: E402
from leadloop.sync.writeback import CrmPlan  # noqa: E402

PHASES = ("full", "incremental", "engine", "latency", "decay", "naive")

# HubSpot's limits the sandbox enforces (private app, Professional).
HUBSPOT_BURST, HUBSPOT_BURST_SECONDS, HUBSPOT_SEARCH_PER_SECOND = 190, 10.0, 5


# -- measuring ------------------------------------------------------------------------------------------


def reset_peak_rss() -> None:
    """Linux: start a new peak (VmHWM) for this process; elsewhere peaks stay cumulative."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


class TimedSteps:
    """Stands in for `flows.tasks` inside `flows.steps`: each Prefect task's plain function from
    `sync.workspace` (it takes the run's key), timed. The sequence run is the flow's own, without
    Prefect's engine; `score_partitions` scores its partitions here, one after the other."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        function = _score_partitions if name == "score_partitions" else getattr(workspace, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed


def _score_partitions(key: str, now: datetime, people_per_partition: int) -> workspace.Scored:
    """`flows.tasks.score_partitions` without task runs: one pass, or each partition in turn."""
    parts = workspace.partitions_needed(key, people_per_partition)
    if parts == 1:
        return workspace.score(key, now)
    return workspace.score_in_partitions(key, now, parts)


# -- the sandbox in its own process ---------------------------------------------------------------------


@dataclass(slots=True)
class Sandbox:
    connection_file: Path
    settings: ConnectionSettings
    admin: requests.Session = field(repr=False)
    ready_seconds: float = 0.0

    @property
    def admin_url(self) -> str:
        return str(self.settings.sandbox_admin_url)

    def stats(self) -> dict[str, Any]:
        return dict(self.admin.get(f"{self.admin_url}/stats", timeout=60).json())

    def reset_stats(self) -> None:
        self.admin.post(f"{self.admin_url}/stats/reset", timeout=60).raise_for_status()

    def faults(self, body: dict[str, Any]) -> None:
        self.admin.post(f"{self.admin_url}/faults", json=body, timeout=60).raise_for_status()

    def clear_faults(self) -> None:
        self.admin.delete(f"{self.admin_url}/faults", timeout=60).raise_for_status()

    def advance_clock(self, seconds: float) -> datetime:
        """Move the CRMs' clock on (an hour between runs, as on the hourly schedule); returns its time."""
        answer = self.admin.post(f"{self.admin_url}/clock", json={"advance_seconds": seconds}, timeout=60)
        answer.raise_for_status()
        return datetime.fromisoformat(answer.json()["now"])

    def now(self) -> datetime:
        return datetime.fromisoformat(self.admin.get(f"{self.admin_url}/health", timeout=60).json()["now"])


@contextlib.contextmanager
def sandbox_process(size: str, seed: int, workdir: Path, timeout: float) -> Iterator[Sandbox]:
    connection_file = workdir / "connection.json"
    log = (workdir / "sandbox.log").open("w")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "leadloop.cli.app", "sandbox", "serve", "--size", size, "--seed", str(seed),
         "--port", "0", "--connection-file", str(connection_file)],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        while not connection_file.exists():
            if process.poll() is not None:
                raise RuntimeError(f"the sandbox stopped at start; see {workdir / 'sandbox.log'}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the sandbox was not ready within {timeout:.0f} s")
            time.sleep(0.1)
        settings = load_connection(str(connection_file))
        admin = requests.Session()
        admin.trust_env = False
        admin.verify = str(settings.ca_cert)
        yield Sandbox(connection_file, settings, admin, time.perf_counter() - started)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


# -- one sync, step by step -----------------------------------------------------------------------------


@dataclass(slots=True)
class SyncRun:
    name: str
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)
    summary: SyncSummary | None = None
    plans: dict[str, CrmPlan] = field(default_factory=dict)
    sandbox_stats: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    limiter_wait_seconds: float = 0.0
    pull_calls: dict[str, dict[str, int]] = field(default_factory=dict)  # CRM → endpoint → calls
    concurrent_calls: dict[str, int] = field(default_factory=dict)  # CRM → calls its client lets fly
    pull_cpu_seconds: dict[str, float] = field(default_factory=dict)  # CRM → this process's CPU time


def run_sync(sandbox: Sandbox, store_url: str, playbook: str, name: str, at: datetime | None,
             min_change: float = 5.0) -> SyncRun:
    """One hourly sync as plain steps (what `hourly_sync` runs, minus Prefect), timed per step."""
    sandbox.reset_stats()
    reset_peak_rss()
    run = SyncRun(name)
    timed = TimedSteps()
    plans: dict[str, CrmPlan] = {}
    plan_changes = timed.plan_changes

    def keep_plans(key: str, *args: Any, **kwargs: Any) -> workspace.Planned:
        planned = plan_changes(key, *args, **kwargs)
        # the plans stay in the run's workspace (dropped when the run ends): keep them for the tables
        plans.update({crm.value: plan for crm, plan in workspace.get(key).plans.items()})
        return planned

    options = SyncOptions(connection_file=str(sandbox.connection_file), playbook=playbook,
                          store_url=store_url, at=at, min_change=min_change)
    started = time.perf_counter()
    with steps.recorded_run(options, "hourly_sync") as (runtime, summary):
        open_seconds = time.perf_counter() - started
        run.step_seconds.update(pull_all(runtime, summary, run.pull_cpu_seconds))
        run.pull_calls = {crm.value: dict(counter.calls) for crm, counter in runtime.counters.items()}
        run.concurrent_calls = {crm.value: int(getattr(source.client, "concurrent_calls", 1))  # type: ignore[attr-defined]
                                for crm, source in runtime.sources.items()}
        timed.plan_changes = keep_plans  # type: ignore[method-assign]
        with mock.patch.object(steps, "tasks", timed):
            steps.score_route_write(summary, at or pipeline.utc_now(), dry_run=False, min_change=min_change,
                                    people_per_partition=options.people_per_partition, hourly=True)
        run.limiter_wait_seconds = _limiter_wait(runtime)
    run.seconds = time.perf_counter() - started
    run.step_seconds = {"open runtime": open_seconds, **run.step_seconds,
                        **{_STEP_NAMES.get(k, k): v for k, v in timed.seconds.items()}}
    run.step_seconds["other (merge, tiers, state)"] = max(0.0, run.seconds - sum(run.step_seconds.values()))
    run.summary = summary
    run.plans = plans
    run.peak_rss_mb = peak_rss_mb()
    run.sandbox_stats = sandbox.stats()
    return run


def pull_all(runtime: Runtime, summary: SyncSummary, cpu: dict[str, float]) -> dict[str, float]:
    """Every stream of every CRM, one CRM after the other, timed per CRM (wall time returned, this
    process's CPU time in `cpu`): each CRM's streams at once where `pipeline.pull_streams` exists
    (the flow pulls both CRMs at once too), else one by one."""
    seconds: dict[str, float] = defaultdict(float)
    at_once = getattr(pipeline, "pull_streams", None)
    by_crm: dict[str, list[str]] = defaultdict(list)
    for crm, stream in workspace.streams(summary.run_id):
        by_crm[crm].append(stream)
    for crm, names in by_crm.items():
        t0, c0 = time.perf_counter(), time.process_time()
        if at_once is not None:
            summary.pulls.extend(at_once(runtime, [(Crm(crm), s) for s in names]))
        else:
            summary.pulls.extend(workspace.pull_stream(summary.run_id, crm, s) for s in names)
        seconds[f"pull {crm}"] += time.perf_counter() - t0
        cpu[crm] = time.process_time() - c0
    return seconds


_STEP_NAMES = {"load_and_resolve": "load + identity", "score": "score", "route": "route",
               "score_partitions": "score",  # with more than one partition, reading their activities too
               "plan_changes": "plan", "save_identity": "save identity", "save_scores": "save scores",
               "write_plan": "write back"}


def api_step_seconds(run: SyncRun) -> float:
    """The steps that talk to the CRMs: the pulls and the write-back."""
    return sum(v for k, v in run.step_seconds.items() if k.startswith("pull") or k == "write back")


def _limiter_wait(runtime: Runtime) -> float:
    source = runtime.sources.get(Crm.HUBSPOT)
    limiter = getattr(getattr(source, "client", None), "limiter", None)
    return float(getattr(limiter, "waited", 0.0))


# -- API economy: calls from the connectors' CallCounters, records from the sandbox's stats -------------


# Each API's maximum records per call. The issue's five (Salesforce REST query page and sObject
# Collections; HubSpot list, search and batch), plus the maxima of the other paged HubSpot APIs read.
API_GROUPS = {"salesforce query": 2000, "salesforce collections": 200, "hubspot list": 100,
              "hubspot search": 200, "hubspot batch": 100, "hubspot associations batch": 1000,
              "hubspot web events": 100, "hubspot email events": 1000, "hubspot form submissions": 50}
ISSUE_APIS = ("salesforce query", "salesforce collections", "hubspot list", "hubspot search", "hubspot batch")


def api_group(crm: str, endpoint: str) -> str | None:
    """Which API maximum an endpoint's calls are held to (None: no per-call maximum applies)."""
    if crm == "salesforce":
        if endpoint.startswith("query:"):
            return "salesforce query"
        if endpoint.startswith("composite/sobjects:"):
            return "salesforce collections"
        return None
    method, _, path = endpoint.partition(" ")
    if path.startswith("/crm/v4/associations/") and path.endswith("/batch/read"):
        return "hubspot associations batch"
    if path.startswith("/crm/v3/objects/") and "/batch/" in path:
        return "hubspot batch"
    if path.startswith("/crm/v3/objects/") and path.endswith("/search"):
        return "hubspot search"
    if method == "GET" and ((path.count("/") == 4 and path.startswith("/crm/v3/objects/"))
                            or path == "/crm/v3/owners"):
        return "hubspot list"
    if path == "/events/v3/events":
        return "hubspot web events"
    if path == "/email/public/v1/events":
        return "hubspot email events"
    if path.startswith("/form-integrations/v1/submissions/forms/"):
        return "hubspot form submissions"
    return None


def _endpoint_name(crm: str, endpoint: str) -> str:
    """Counter names folded for the table: a Bulk API job's several calls, and describes, as one row."""
    if crm == "salesforce" and endpoint.startswith("bulk2/ingest"):
        return "Bulk API 2.0 ingest jobs (create, upload, close, poll, results)"
    if crm == "salesforce" and endpoint.startswith("bulk2/query"):
        return f"Bulk API 2.0 query job:{endpoint.rsplit(':', 1)[1]} (create, poll, result pages)"
    if crm == "salesforce" and endpoint.startswith("describe:"):
        return "describe (one per object)"
    return endpoint


def _records_moved(crm: str, endpoint: str, counted: dict[str, int], sf_rows: dict[str, int],
                   moved: dict[str, Counter[str]]) -> int:
    if crm == "hubspot":
        return int(moved["hubspot"].get(endpoint, 0))
    if endpoint.startswith("query:"):
        sobject = endpoint.split(":", 1)[1]
        # a stream read by a Bulk API job: its REST call only counted the rows (first page discarded)
        return 0 if f"bulk2/query:{sobject}" in counted else sf_rows.get(sobject, 0)
    if endpoint.startswith("Bulk API 2.0 query job:"):
        return sf_rows.get(endpoint.split(":", 1)[1].split(" ", 1)[0], 0)
    if endpoint.startswith("Bulk API 2.0 ingest"):
        return sum(n for k, n in moved["salesforce"].items() if "/jobs/ingest" in k)
    if endpoint == "composite/sobjects:update":
        return int(moved["salesforce"].get("PATCH /services/data/vXX.X/composite/sobjects", 0))
    if endpoint.startswith("composite/sobjects:upsert "):
        return sum(n for k, n in moved["salesforce"].items()
                   if k.startswith("PATCH /services/data/vXX.X/composite/sobjects/"))
    return 0


def economy(run: SyncRun) -> list[dict[str, Any]]:
    """Per endpoint the connectors called (their CallCounters): calls, records moved (the sandbox's
    stats), records per call, share of the API's maximum, and the fewest calls that could have moved
    those records (at least one per endpoint)."""
    assert run.summary is not None
    stats = run.sandbox_stats
    moved = {crm: Counter(stats.get("records_read", {}).get(crm, {}))
             + Counter(stats.get("records_written", {}).get(crm, {})) for crm in ("salesforce", "hubspot")}
    sf_rows = {p.stream: p.records + p.deleted + p.rejected for p in run.summary.pulls
               if p.crm == "salesforce"}
    rows = []
    for crm, counted in sorted(run.summary.api_calls.items()):
        folded: Counter[str] = Counter()
        for endpoint, calls in counted.items():
            folded[_endpoint_name(crm, endpoint)] += calls
        for endpoint, calls in sorted(folded.items()):
            group = api_group(crm, endpoint)
            records = _records_moved(crm, endpoint, counted, sf_rows, moved)
            row: dict[str, Any] = {"crm": crm, "endpoint": endpoint, "calls": calls, "records": records,
                                   "api": group or "", "per_call": round(records / calls, 1) if calls else 0}
            if group is not None and calls:
                maximum = API_GROUPS[group]
                row["share_of_max"] = round(records / calls / maximum, 3)
                row["fewest_calls"] = max(1, math.ceil(records / maximum))
                row["fewest_over_actual"] = round(row["fewest_calls"] / calls, 3)
            rows.append(row)
    return rows


def economy_by_api(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for group, maximum in API_GROUPS.items():
        mine = [r for r in rows if r["api"] == group]
        if not mine:
            continue
        calls = sum(r["calls"] for r in mine)
        records = sum(r["records"] for r in mine)
        fewest = sum(r["fewest_calls"] for r in mine)
        out[group] = {"calls": calls, "records": records, "per_call": round(records / calls, 1),
                      "max": maximum, "share_of_max": round(records / calls / maximum, 3),
                      "fewest_calls": fewest, "fewest_over_actual": round(fewest / calls, 3)}
    return out


# -- changing ~1% of the CRM records, as the CRMs' other users would ------------------------------------


def change_records(sandbox: Sandbox, store_url: str, fraction: float, seed: int) -> dict[str, int]:
    """Edit a fraction of people (title) and accounts (industry) in both CRMs through their APIs
    (Salesforce sObject Collections, HubSpot batch update): data leadloop reads, never writes."""
    from leadloop.store.db import open_store

    store = open_store(store_url)
    try:
        data = store.load_records()
    finally:
        store.close()
    rng = random.Random(seed)
    titles = sorted({p.title for p in data.people if p.title})
    industries = sorted({a.industry for a in data.accounts if getattr(a, "industry", None)}) or ["Industrial"]
    sf_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    hs_inputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for person in data.people:
        if rng.random() >= fraction:
            continue
        title = rng.choice(titles)
        if person.salesforce_contact_id:
            sf_rows["Contact"].append({"attributes": {"type": "Contact"}, "Id": person.salesforce_contact_id,
                                       "Title": title})
        elif person.salesforce_lead_id:
            sf_rows["Lead"].append({"attributes": {"type": "Lead"}, "Id": person.salesforce_lead_id,
                                    "Title": title})
        if person.hubspot_id:
            hs_inputs["contacts"].append({"id": person.hubspot_id, "properties": {"jobtitle": title}})
    for account in data.accounts:
        if rng.random() >= fraction:
            continue
        industry = rng.choice(industries)
        if account.salesforce_id:
            sf_rows["Account"].append({"attributes": {"type": "Account"}, "Id": account.salesforce_id,
                                       "Industry": industry})
        if account.hubspot_id:
            hs_inputs["companies"].append({"id": account.hubspot_id, "properties": {"industry": industry}})
    http = requests.Session()
    http.trust_env = False
    http.verify = str(sandbox.settings.ca_cert)
    sf, hs = sandbox.settings.salesforce, sandbox.settings.hubspot
    changed: dict[str, int] = {}
    if sf is not None and sf.session_id is not None:
        headers = {"Authorization": f"Bearer {sf.session_id.get_secret_value()}"}
        url = f"{sf.instance_url}/services/data/v{sf.api_version}/composite/sobjects"
        for sobject, rows in sf_rows.items():
            for start in range(0, len(rows), 200):
                answer = http.patch(url, json={"allOrNone": False, "records": rows[start:start + 200]},
                                    headers=headers, timeout=120)
                answer.raise_for_status()
            changed[f"salesforce {sobject}"] = len(rows)
    if hs is not None:
        headers = {"Authorization": f"Bearer {hs.access_token.get_secret_value()}"}
        for object_type, inputs in hs_inputs.items():
            for start in range(0, len(inputs), 100):
                while True:
                    answer = http.post(f"{hs.host}/crm/v3/objects/{object_type}/batch/update",
                                       json={"inputs": inputs[start:start + 100]}, headers=headers,
                                       timeout=120)
                    if answer.status_code != 429:
                        break
                    time.sleep(float(answer.headers.get("Retry-After") or 1))
                answer.raise_for_status()
            changed[f"hubspot {object_type}"] = len(inputs)
    changed["people in the store"] = len(data.people)
    changed["accounts in the store"] = len(data.accounts)
    return changed


# -- the engine's overhead ------------------------------------------------------------------------------


def run_flow(sandbox: Sandbox, store_url: str, playbook: str) -> dict[str, float]:
    """Start Prefect's local server with a no-op flow, then time one `hourly_sync` flow run."""
    from prefect import flow

    from leadloop.flows.hourly_sync import hourly_sync

    @flow(name="bench-noop")
    def noop() -> int:
        return 0

    started = time.perf_counter()
    noop()
    startup = time.perf_counter() - started
    sandbox.reset_stats()
    reset_peak_rss()
    started = time.perf_counter()
    options = SyncOptions(connection_file=str(sandbox.connection_file), playbook=playbook,
                          store_url=store_url, at=sandbox.now())
    summary = hourly_sync(options)
    seconds = time.perf_counter() - started
    return {"prefect_startup_s": round(startup, 1), "flow_s": round(seconds, 1),
            "flow_records_pulled": summary.records_pulled, "flow_fields_written": summary.fields_written,
            "flow_api_calls": sandbox.stats().get("calls", 0), "flow_peak_rss_mb": round(peak_rss_mb())}


# -- decay ----------------------------------------------------------------------------------------------


def decay_causes(plans: dict[str, CrmPlan]) -> Counter[str]:
    """Records written in a run by cause: a tier crossing, a decaying score moved past the minimum
    change (no tier change), or anything else (which decay alone should never cause)."""
    causes: Counter[str] = Counter()
    for crm, plan in plans.items():
        by_record: dict[tuple[ObjectType, str], set[str]] = defaultdict(set)
        for update in plan.updates:
            by_record[(update.object_type, update.record_id)].add(update.field)
        for (object_type, _), fields in by_record.items():
            if TIER_FIELDS[object_type] in fields:
                causes[f"{crm} tier crossing"] += 1
            elif fields & DECAYING_FIELDS:
                causes[f"{crm} moved ≥ min change"] += 1
            else:
                causes[f"{crm} other: {','.join(sorted(fields))}"] += 1
        if plan.tasks:
            causes[f"{crm} tasks"] += len(plan.tasks)
    return causes


def run_decay(bench: Bench, runs: int) -> list[dict[str, Any]]:
    rows = []
    for hour in range(1, runs + 1):
        run = bench.sync(f"decay {hour}")
        assert run.summary is not None
        causes = decay_causes(run.plans)
        rows.append({
            "hour": hour, "seconds": round(run.seconds, 1), "records_pulled": run.summary.records_pulled,
            "fields_written": run.summary.fields_written, "tasks_created": run.summary.tasks_created,
            "tier_changes": sum(run.summary.tier_changes.values()),
            "records_written": {k: v for k, v in causes.items() if not k.endswith("tasks")},
            "write_calls": _write_calls(run.sandbox_stats), "api_calls": run.sandbox_stats.get("calls", 0),
        })
        print(f"  decay hour {hour}: {rows[-1]}", flush=True)
    return rows


def _write_calls(stats: dict[str, Any]) -> int:
    total = 0
    for endpoints in stats.get("by_endpoint", {}).values():
        for endpoint, n in endpoints.items():
            text = endpoint.lower()
            writing = ("composite/sobjects" in text or "/batch/update" in text or "/batch/create" in text
                       or "/batch/upsert" in text or "ingest" in text)
            total += n if writing else 0
    return total


# -- the naive per-record connector ---------------------------------------------------------------------


def naive_phase(sandbox: Sandbox, mapping: Mapping, full: SyncRun, incremental: SyncRun | None,
                store_url: str, sample: int) -> dict[str, Any]:
    """Measure per-call times of the naive connector on a sample, count its calls for the whole runs."""
    from leadloop.store.db import open_store

    settings = sandbox.settings
    sf_conn, hs_conn = settings.salesforce, settings.hubspot
    naive_sf = naive_hs = None
    if sf_conn is not None and sf_conn.session_id is not None:
        naive_sf = NaiveSalesforce(str(sf_conn.instance_url), sf_conn.session_id.get_secret_value(),
                                   str(settings.ca_cert), sf_conn.api_version)
    if hs_conn is not None:
        naive_hs = NaiveHubSpot(str(hs_conn.host), hs_conn.access_token.get_secret_value(),
                                str(settings.ca_cert))
    store = open_store(store_url)
    try:
        data = store.load_records()
    finally:
        store.close()
    per_call: dict[str, float] = {}
    sandbox.reset_stats()

    def timed(label: str, actions: list[Callable[[], Any]]) -> None:
        if not actions:
            return
        started = time.perf_counter()
        for action in actions:
            action()
        per_call[label] = (time.perf_counter() - started) / len(actions)

    if naive_sf is not None:
        leads = [p.salesforce_lead_id for p in data.people
                 if p.salesforce_lead_id and not p.salesforce_contact_id]
        contacts = [p.salesforce_contact_id for p in data.people if p.salesforce_contact_id]
        gets = [(lambda i=i: naive_sf.get("Lead", i)) for i in spread(leads, sample // 2)]
        gets += [(lambda i=i: naive_sf.get("Contact", i)) for i in spread(contacts, sample // 2)]
        timed("salesforce GET record", gets)
        updates = [u for u in full.plans.get("salesforce", CrmPlan(Crm.SALESFORCE)).updates]
        patches = [(lambda u=u: naive_sf.patch_field(_sf_sobject(u), u.record_id, _crm_field(mapping, u),
                                                      u.value)) for u in spread(updates, sample)]
        timed("salesforce PATCH field", patches)
        tasks = full.plans.get("salesforce", CrmPlan(Crm.SALESFORCE)).tasks
        posts = [(lambda t=t: naive_sf.post_task(t, mapping.salesforce.task_key, suffix="-naive"))
                 for t in spread(tasks, max(1, sample // 4))]
        timed("salesforce POST task", posts)
    if naive_hs is not None:
        contacts_hs = [p.hubspot_id for p in data.people if p.hubspot_id]
        # below HubSpot's burst (190 per 10 s) so the sample measures the call, not the limit; the
        # limit is applied to the extrapolation instead
        hs_sample = min(sample, 150)
        timed("hubspot GET record", [(lambda i=i: naive_hs.get("contacts", i))
                                     for i in spread(contacts_hs, hs_sample)])
        time.sleep(HUBSPOT_BURST_SECONDS + 1)
        updates = full.plans.get("hubspot", CrmPlan(Crm.HUBSPOT)).updates
        timed("hubspot PATCH field", [(lambda u=u: naive_hs.patch_field(_hs_object(u), u.record_id,
                                                                          _crm_field(mapping, u), u.value))
                                        for u in spread(updates, hs_sample)])
        time.sleep(HUBSPOT_BURST_SECONDS + 1)
        tasks = full.plans.get("hubspot", CrmPlan(Crm.HUBSPOT)).tasks
        timed("hubspot POST task", [(lambda t=t: naive_hs.post_task(t, mapping.hubspot.task_key,
                                                                     suffix="-naive"))
                                      for t in spread(tasks, max(1, hs_sample // 4))])
    result: dict[str, Any] = {
        "sample_per_call_ms": {k: round(v * 1000, 1) for k, v in per_call.items()},
        "sample_calls": {"salesforce": dict(naive_sf.calls) if naive_sf else {},
                         "hubspot": dict(naive_hs.calls) if naive_hs else {}},
    }
    for run in (full, incremental):
        if run is None:
            continue
        result[run.name] = naive_estimate(run, per_call)
    return result


def _sf_sobject(update: FieldUpdate) -> str:
    from naive import sf_sobject

    return sf_sobject(update)


def _hs_object(update: FieldUpdate) -> str:
    return "contacts" if update.object_type == ObjectType.PERSON else "companies"


def _crm_field(mapping: Mapping, update: FieldUpdate) -> str:
    crm_mapping = getattr(mapping, update.crm.value)
    owned = crm_mapping.owned_person if update.object_type == ObjectType.PERSON else crm_mapping.owned_account
    return str(owned[update.field])


def naive_estimate(run: SyncRun, per_call: dict[str, float]) -> dict[str, Any]:
    """The naive connector's calls for the same records and plans as `run` (exact), and its wall time
    (per-call times from the sample; HubSpot's calls no faster than its burst limit allows)."""
    assert run.summary is not None
    calls: dict[str, Counter[str]] = {"salesforce": Counter(), "hubspot": Counter()}
    for pull in run.summary.pulls:
        rows = pull.records + pull.deleted + pull.rejected
        page = 2000 if pull.crm == "salesforce" else 100
        calls[pull.crm]["list ids"] += max(1, math.ceil(rows / page))
        calls[pull.crm]["GET record"] += rows
    for crm, plan in run.plans.items():
        calls[crm]["PATCH field"] += len(plan.updates)
        calls[crm]["POST task"] += len(plan.tasks)
    api_seconds: dict[str, float] = {}
    for crm, kinds in calls.items():
        get = per_call.get(f"{crm} GET record", 0.0)
        seconds = sum(n * per_call.get(f"{crm} {kind}", get) for kind, n in kinds.items())
        if crm == "hubspot":
            seconds = max(seconds, sum(kinds.values()) / (HUBSPOT_BURST / HUBSPOT_BURST_SECONDS))
        api_seconds[crm] = seconds
    pulled_write_seconds = api_step_seconds(run)
    rest = run.seconds - pulled_write_seconds
    naive_total = sum(api_seconds.values()) + rest
    sync_calls = run.sandbox_stats.get("calls", 0)
    naive_calls = sum(sum(c.values()) for c in calls.values())
    return {"calls": {crm: dict(c) for crm, c in calls.items()}, "naive_calls": naive_calls,
            "sync_calls": sync_calls,
            "calls_ratio": round(naive_calls / sync_calls, 1) if sync_calls else None,
            "naive_api_seconds": {k: round(v) for k, v in api_seconds.items()},
            "naive_wall_seconds": round(naive_total), "sync_wall_seconds": round(run.seconds, 1),
            "wall_ratio": round(naive_total / run.seconds, 1)}


# -- printing -------------------------------------------------------------------------------------------


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    print(f"\n{title}")
    cells = [header, *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.rjust(w) if _numeric(c) else c.ljust(w)
                                for c, w in zip(row, widths, strict=True)) + " |")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("%", "").lstrip("-").isdigit()


def print_run(run: SyncRun) -> dict[str, Any]:
    assert run.summary is not None
    summary = run.summary
    table(f"{run.name}: wall time per step ({run.seconds:.1f} s in all; peak RSS {run.peak_rss_mb:,.0f} MB; "
          f"HubSpot limiter waited {run.limiter_wait_seconds:.1f} s)",
          ["step", "seconds"], [[k, round(v, 2)] for k, v in run.step_seconds.items()])
    rows = economy(run)
    table(f"{run.name}: API calls by endpoint (sandbox stats: {run.sandbox_stats.get('calls', 0):,} calls)",
          ["crm", "endpoint", "calls", "records", "per call", "share of max", "fewest possible / actual"],
          [[r["crm"], r["endpoint"], r["calls"], r["records"], r["per_call"],
            f"{r['share_of_max']:.1%}" if "share_of_max" in r else "",
            f"{r['fewest_over_actual']:.1%}" if "fewest_over_actual" in r else ""] for r in rows])
    by_api = economy_by_api(rows)
    table(f"{run.name}: records per call by API", ["API", "calls", "records", "per call", "max",
                                                   "share of max", "fewest possible / actual"],
          [[g, v["calls"], v["records"], v["per_call"], v["max"], f"{v['share_of_max']:.1%}",
            f"{v['fewest_over_actual']:.1%}"] for g, v in by_api.items()])
    counters = summary.api_calls
    print("connector CallCounters: " + "; ".join(f"{crm} {sum(c.values()):,}" for crm, c in counters.items()))
    causes = decay_causes(run.plans)
    written = ", ".join(f"{k} {v:,}" for k, v in sorted(causes.items()))
    print(f"records written by cause: {written or 'none'}")
    print(f"records pulled {summary.records_pulled:,}; people scored {summary.people_scored:,}; "
          f"fields written {summary.fields_written:,}; tasks created {summary.tasks_created:,}; "
          f"rejections {summary.rejections:,}")
    if summary.rescored:
        print("rescored: " + ", ".join(f"{k} {v}" for k, v in summary.rescored.items()))
    cpu = "; ".join(f"{crm} {seconds:.1f} s" for crm, seconds in run.pull_cpu_seconds.items())
    print(f"pull CPU time in this process: {cpu}")
    return {"seconds": round(run.seconds, 2), "steps": {k: round(v, 2) for k, v in run.step_seconds.items()},
            "pull_cpu_s": {k: round(v, 2) for k, v in run.pull_cpu_seconds.items()},
            "peak_rss_mb": round(run.peak_rss_mb), "limiter_wait_s": round(run.limiter_wait_seconds, 1),
            "sandbox_calls": run.sandbox_stats.get("calls", 0), "by_crm": run.sandbox_stats.get("by_crm", {}),
            "economy": rows, "economy_by_api": by_api, "connector_calls": counters,
            "counts": summary.counts(), "written_by_cause": dict(causes),
            "sandbox_stats": run.sandbox_stats,
            "pulled_by_stream": {f"{p.crm} {p.stream}": p.records + p.deleted + p.rejected
                                 for p in summary.pulls}}


def hubspot_rate_floor(calls: dict[str, int]) -> float:
    """The least time HubSpot's limits allow for these calls (by endpoint): its burst and search
    limits, however many calls fly at once."""
    searches = sum(n for e, n in calls.items() if e.lower().endswith("/search"))
    return max(sum(calls.values()) / (HUBSPOT_BURST / HUBSPOT_BURST_SECONDS),
               searches / HUBSPOT_SEARCH_PER_SECOND)


def floor_seconds(stats: dict[str, Any], latency_s: float, concurrency: int) -> dict[str, float]:
    """The least time the APIs allow for these calls: per CRM, calls ÷ concurrency × latency, or for
    HubSpot its burst and search limits if slower; the CRMs are synced one after the other."""
    floors: dict[str, float] = {}
    for crm, endpoints in stats.get("by_endpoint", {}).items():
        calls = sum(endpoints.values())
        latency_floor = calls / concurrency * latency_s
        if crm == "hubspot":
            searches = sum(n for e, n in endpoints.items() if e.lower().endswith("/search"))
            rate_floor = max(calls / (HUBSPOT_BURST / HUBSPOT_BURST_SECONDS),
                             searches / HUBSPOT_SEARCH_PER_SECOND)
            floors[crm] = max(latency_floor, rate_floor)
        else:
            floors[crm] = latency_floor
    return floors


# -- the phases -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Bench:
    """One sandbox and one state store, shared by the phases in order; `figures` collects the results."""

    args: argparse.Namespace
    sandbox: Sandbox
    store_url: str
    playbook: str
    mapping: Mapping
    figures: dict[str, Any]
    full: SyncRun | None = None
    incremental: SyncRun | None = None

    def sync(self, name: str, *, hours_later: int = 1, store_url: str | None = None) -> SyncRun:
        """A sync as of the CRMs' clock, `hours_later` hours after the previous one (into `store_url`
        instead of the bench's store when given)."""
        at = self.sandbox.advance_clock(3600 * hours_later) if hours_later else self.sandbox.now()
        return run_sync(self.sandbox, store_url or self.store_url, self.playbook, name, at,
                        self.args.min_change)

    def change(self, round_: int) -> dict[str, int]:
        self.sandbox.advance_clock(3600)
        changed = change_records(self.sandbox, self.store_url, self.args.change_fraction,
                                 self.args.seed + round_)
        print(f"\nchanged through the CRM APIs: {changed}")
        return changed


def phase_full(bench: Bench) -> None:
    bench.full = bench.sync("full sync", hours_later=0)
    bench.figures["full"] = print_run(bench.full)


def phase_incremental(bench: Bench) -> None:
    """The first hourly run after a full sync re-reads what the full sync wrote (its write-back moved
    every record's modification stamp); the next runs, each after ~1% of records changed, show the
    steady state. The last one is the incremental compared against the naive connector."""
    echo = bench.sync("first hourly run after the full sync (no changes)")
    bench.figures["after_full"] = print_run(echo)
    runs = []
    for round_ in range(1, bench.args.incremental_rounds + 1):
        changed = bench.change(round_)
        run = bench.sync(f"incremental {round_} (~{bench.args.change_fraction:.0%} changed)", hours_later=0)
        runs.append({"changed": changed, **print_run(run)})
        bench.incremental = run
    bench.figures["incremental"] = runs


def phase_engine(bench: Bench) -> None:
    plain = bench.sync("no-change sync as plain steps")
    engine = run_flow(bench.sandbox, bench.store_url, bench.playbook)
    assert plain.summary is not None
    engine.update({"steps_s": round(plain.seconds, 1), "steps_api_calls": plain.sandbox_stats.get("calls", 0),
                   "steps_records_pulled": plain.summary.records_pulled,
                   "overhead_s": round(engine["flow_s"] - plain.seconds, 1)})
    table("engine: a sync with no changes, plain steps then the hourly_sync flow", ["measure", "value"],
          [[k, v] for k, v in engine.items()])
    bench.figures["engine"] = engine


def phase_latency(bench: Bench) -> None:
    args = bench.args
    full = args.latency_sync == "full"
    changed = {} if full else bench.change(99)
    # a full sync reads into a store of its own, as a first run would
    store_url = f"sqlite:///{Path(bench.store_url.removeprefix('sqlite:///')).parent / 'latency.db'}" \
        if full else None
    bench.sandbox.faults({"latency_ms": args.latency_ms})
    try:
        slow = bench.sync(f"{args.latency_sync} sync at {args.latency_ms:.0f} ms per call", hours_later=0,
                          store_url=store_url)
    finally:
        bench.sandbox.clear_faults()
    figures = print_run(slow)
    concurrency = slow.concurrent_calls.get("hubspot", 1)
    floors = floor_seconds(slow.sandbox_stats, args.latency_ms / 1000, concurrency)
    api_steps = api_step_seconds(slow)
    hubspot_pull = slow.step_seconds.get("pull hubspot", 0.0)
    pull_floor = hubspot_rate_floor(slow.pull_calls.get("hubspot", {}))
    figures.update({"changed": changed, "floor_s": {k: round(v, 1) for k, v in floors.items()},
                    "floor_total_s": round(sum(floors.values()), 1), "api_steps_s": round(api_steps, 1),
                    "sync": args.latency_sync, "hubspot_concurrent_calls": concurrency,
                    "hubspot_pull_s": round(hubspot_pull, 2),
                    "hubspot_pull_calls": sum(slow.pull_calls.get("hubspot", {}).values()),
                    "hubspot_pull_rate_floor_s": round(pull_floor, 2),
                    "hubspot_pull_over_floor": round(hubspot_pull / pull_floor, 2) if pull_floor else None})
    rows = [["floor salesforce", floors.get("salesforce", 0)], ["floor hubspot", floors.get("hubspot", 0)],
            ["floor total", sum(floors.values())], ["pull + write steps", api_steps],
            ["whole sync", slow.seconds],
            [f"HubSpot pull ({figures['hubspot_pull_calls']} calls, {concurrency} at once)", hubspot_pull],
            ["its rate-limit floor (19 calls/s, 5 searches/s)", pull_floor]]
    if bench.incremental is not None and not full:
        fast = bench.incremental
        fast_api = api_step_seconds(fast)
        rows += [["same steps without latency (last incremental)", fast_api],
                 ["added by latency (pull + write)", api_steps - fast_api]]
        figures["api_steps_without_latency_s"] = round(fast_api, 1)
    table(f"latency {args.latency_ms:.0f} ms per call, HubSpot limits on: wall time against the floor "
          f"(HubSpot calls {concurrency} at a time)", ["measure", "seconds"], rows)
    bench.figures["latency"] = figures


def phase_decay(bench: Bench) -> None:
    args = bench.args
    print(f"\ndecay: {args.decay_runs} hourly runs with no new activity")
    rows = run_decay(bench, args.decay_runs)
    bench.figures["decay"] = rows
    causes: Counter[str] = Counter()
    for row in rows:
        causes.update(row["records_written"])
    table(f"decay: {args.decay_runs} hourly runs, records written by cause (min change {args.min_change:g})",
          ["cause", "records"], [[k, v] for k, v in sorted(causes.items())])
    table("decay per run", ["hour", "seconds", "pulled", "fields written", "tasks", "tier changes",
                            "write calls", "api calls"],
          [[r["hour"], r["seconds"], r["records_pulled"], r["fields_written"], r["tasks_created"],
            r["tier_changes"], r["write_calls"], r["api_calls"]] for r in rows])


def phase_naive(bench: Bench) -> None:
    assert bench.full is not None
    naive = naive_phase(bench.sandbox, bench.mapping, bench.full, bench.incremental, bench.store_url,
                        bench.args.naive_sample)
    bench.figures["naive"] = naive
    table("naive per-record connector (calls exact; wall time extrapolated from the sample)",
          ["run", "sync calls", "naive calls", "ratio", "sync wall s", "naive wall s (est.)", "ratio"],
          [[name, v["sync_calls"], v["naive_calls"], v["calls_ratio"], v["sync_wall_seconds"],
            v["naive_wall_seconds"], v["wall_ratio"]]
           for name, v in naive.items() if isinstance(v, dict) and "naive_calls" in v])
    print(f"naive per-call times on the sample (ms): {naive['sample_per_call_ms']}")


PHASE_RUNNERS: dict[str, Callable[[Bench], None]] = {
    "full": phase_full, "incremental": phase_incremental, "engine": phase_engine, "latency": phase_latency,
    "decay": phase_decay, "naive": phase_naive,
}


# -- main -----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", default="medium", choices=("tiny", "small", "medium", "large"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--playbook", default="playbooks/semiconductor.yaml")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated: {', '.join(PHASES)}")
    parser.add_argument("--change-fraction", type=float, default=0.01)
    parser.add_argument("--incremental-rounds", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--latency-sync", default="incremental", choices=("incremental", "full"),
                        help="the latency phase measures an incremental, or a full sync into a new store")
    parser.add_argument("--decay-runs", type=int, default=24)
    parser.add_argument("--min-change", type=float, default=5.0)
    parser.add_argument("--naive-sample", type=int, default=400, help="calls per naive call kind at most")
    parser.add_argument("--ready-timeout", type=float, default=600)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        print(f"error: unknown phase {', '.join(unknown)}; expected {', '.join(PHASES)}", file=sys.stderr)
        return 2
    phases = [p for p in PHASES if p in phases or p == "full"]  # every phase starts from a full sync

    # a time-out (SIGTERM) unwinds like Ctrl-C, so the sandbox process is stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.getLogger("leadloop").setLevel(logging.ERROR)  # rejected hostile records are expected here
    command = " ".join([".venv/bin/python bench/bench_sync.py", *sys.argv[1:]])
    print(f"command: {command}")
    print(f"machine: {os.cpu_count()} cores; load average at start {load_average()}")
    workdir = Path(tempfile.mkdtemp(prefix="leadloop-bench-sync-"))
    figures: dict[str, Any] = {"command": command, "size": args.size, "seed": args.seed,
                               "load_average_start": load_average()}
    try:
        with sandbox_process(args.size, args.seed, workdir, args.ready_timeout) as sandbox:
            figures["sandbox_ready_s"] = round(sandbox.ready_seconds, 1)
            print(f"sandbox ({args.size}) ready in {sandbox.ready_seconds:.1f} s")
            from leadloop.connectors.hubspot.setup import setup as hubspot_setup
            from leadloop.connectors.salesforce.setup import setup as salesforce_setup

            # one copy for the whole run: the scores stay comparable if the file is edited meanwhile
            playbook = str(workdir / Path(args.playbook).name)
            shutil.copyfile(ROOT / args.playbook, playbook)
            book = load_playbook(playbook)
            figures["model_version"] = book.model_version
            mapping = load_mapping(book.mapping)
            started = time.perf_counter()
            salesforce_setup(sandbox.settings, mapping)
            hubspot_setup(sandbox.settings, mapping)
            figures["crm_setup_s"] = round(time.perf_counter() - started, 1)
            bench = Bench(args, sandbox, f"sqlite:///{workdir / 'state.db'}", playbook, mapping, figures)
            for phase in phases:
                started = time.perf_counter()
                PHASE_RUNNERS[phase](bench)
                figures.setdefault("phase_seconds", {})[phase] = round(time.perf_counter() - started)
    finally:
        figures["load_average_end"] = load_average()
        print(f"\nload average at end {load_average()}")
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
