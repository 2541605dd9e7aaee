"""Benchmark: the task outbox and the writer lease on a quiet hourly run, the code before the outbox
and the current code side by side on one sandbox.

    git -C /work/main worktree add --detach /tmp/leadloop-before 9ec81f0   # the code before the outbox
    .venv/bin/python bench/bench_outbox.py --json /tmp/outbox.json          # size medium, 10 runs each
    .venv/bin/python bench/bench_outbox.py --size small --runs 8

One sandbox (its own process, as in bench_sync.py) after `crm setup`; per version its own SQLite store
and a full first sync. Then two warm-up quiet runs per version (the first after a full sync re-reads
what both full syncs wrote back), the CRMs' clock one hour on, and the measured quiet hourly runs
alternating before, after, before, after, ... all with the same `at`. Each run is a fresh process
whose import path starts with its version's root (`--worker`), running the `hourly_sync` flow body
with each Prefect task as its plain function (as tests/e2e/test_chaos.py does), the steps and the
store's ledger/outbox/lease methods under timers; the API calls are the connectors' own counters,
checked against the sandbox's `/_sandbox/stats`.

Then, with the current code only, the outbox with work in it: a few HubSpot task-ledger entries put
back to `pending` with their payload (as a run killed between queueing a batch and ledgering
HubSpot's answer leaves them): first within PENDING_GRACE (looked up by key only), then past it (looked
up, then updated) for each `--pending` figure, each of those followed by a quiet run (it re-reads
the tasks the update touched); the CRMs' clock 15 minutes on before each of these runs.

By default the current code is a copy of the checkout's files taken at the start (others may edit the
checkout meanwhile); `--no-snapshot` runs the checkout itself.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import importlib
import importlib.machinery
import json
import logging
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "9ec81f0"

# the steps of the flow body (flows.tasks), timed in the worker
STEPS = ("pull_stream", "load_and_resolve", "score", "route", "plan_changes", "save_identity", "write_plan",
         "save_scores")
STEP_NAMES = {"load_and_resolve": "load + identity", "score": "score", "route": "route",
              "plan_changes": "plan", "save_identity": "save identity", "write_plan": "write back",
              "save_scores": "save scores"}
# store methods timed and counted (those absent from a version are skipped)
STORE_METHODS = ("task_ledger", "task_outbox", "task_rows", "outbox_task", "queue_tasks",
                 "record_task_results",
                 "confirm_tasks", "acquire_lease", "renew_lease", "release_lease", "start_run", "finish_run",
                 "ledger")


# -- the worker: one sync in its own process, with one version's code -----------------------------------


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User and system CPU of this process so far (imports included): on a shared machine whose speed
    drifts, the CPU a run costs compares better across runs than its wall time."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < 20:
            self.messages.append(f"{record.levelname} {record.name}: {record.getMessage()[:300]}")


def worker(args: argparse.Namespace) -> int:
    root = Path(args.worker).resolve()
    sys.path.insert(0, str(root))
    os.chdir(root)
    collect = _Collect()
    logging.getLogger("leadloop").addHandler(collect)
    logging.getLogger("leadloop").setLevel(logging.WARNING)
    logging.getLogger("leadloop").propagate = False

    prefix = _import_prefix(root)
    flows = importlib.import_module(f"{prefix}flows")
    artifacts = importlib.import_module(f"{prefix}flows.artifacts")
    steps = importlib.import_module(f"{prefix}flows.steps")
    tasks = importlib.import_module(f"{prefix}flows.tasks")
    hourly_module = importlib.import_module(f"{prefix}flows.hourly_sync")
    SyncOptions = importlib.import_module(f"{prefix}flows.options").SyncOptions
    Store = importlib.import_module(f"{prefix}store.facade").Store
    try:
        pipeline = importlib.import_module(f"{prefix}sync.pipeline")
    except ImportError:  # the code before sync/ was its own package: flows/pipeline.py
        pipeline = importlib.import_module(f"{prefix}flows.pipeline")

    here = Path(flows.__file__).resolve()
    if not here.is_relative_to(root):
        raise SystemExit(f"worker for {root} imported flows from {here}")
    c_modules = _c_modules(prefix)
    imported = time.perf_counter() - STARTED

    seconds: dict[str, float] = defaultdict(float)
    calls: Counter[str] = Counter()
    captured: dict[str, dict[str, str]] = defaultdict(dict)

    def timed(name: str, function: Any, key: Any = None) -> Any:
        @functools.wraps(function)
        def call(*a: Any, **k: Any) -> Any:
            label = key(*a, **k) if key else name
            started = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                seconds[label] += time.perf_counter() - started
                calls[label] += 1

        return call

    try:  # the current code: tasks take the run's key, the large values stay in the run's workspace
        run_workspace = importlib.import_module(f"{prefix}sync.workspace")
    except ImportError:  # the code before it: tasks take the runtime, the dataset, the plans
        run_workspace = None
    for name in STEPS:
        step = getattr(tasks, name).fn
        # crm: a Crm before, its name (a str) with the workspace
        label = ((lambda _first, crm, *_a, **_k: f"pull {getattr(crm, 'value', crm)}")
                 if name == "pull_stream" else None)
        setattr(tasks, name, timed(STEP_NAMES.get(name, name), step, label))
    if hasattr(hourly_module, "pull_every_stream"):  # streams pulled at once, as the flow's task runs are
        hourly_module.tasks.pull_stream = _Submittable(tasks.pull_stream)
        hourly_module.wait = concurrent.futures.wait  # type: ignore[attr-defined]
    if run_workspace is not None and hasattr(tasks, "_partition_task_runs"):
        # above one partition: each partition's plain function in turn, as `score` (no task runs)
        score_partition = timed("score", tasks.score_partition.fn)

        def partitions_here(key: str, indices: Any, parts: int, now: datetime) -> None:
            for index in indices:
                score_partition(key, index, parts, now)

        tasks._partition_task_runs = partitions_here
    if args.capture_tasks:
        write_plan = tasks.write_plan

        def capture(plan: Any) -> None:
            from pydantic import TypeAdapter

            TaskUpsert = importlib.import_module(f"{prefix}crm.changes").TaskUpsert

            adapter = TypeAdapter(TaskUpsert)
            for task in plan.tasks:  # outside the timer: the payloads a killed run would leave queued
                captured[plan.crm.value][task.key] = adapter.dump_json(task).decode()

        def capturing(runtime: Any, plan: Any, *a: Any, **k: Any) -> Any:
            capture(plan)
            return write_plan(runtime, plan, *a, **k)

        seen: set[str] = set()

        def capturing_from_workspace(key: str, crm: str, part: str, *a: Any, **k: Any) -> Any:
            Crm = importlib.import_module(f"{prefix}crm.records").Crm

            if crm not in seen:  # a CRM's plan is written in parts (`write_plan` per part): once each
                seen.add(crm)
                assert run_workspace is not None
                capture(run_workspace.get(key).plans[Crm(crm)])
            return write_plan(key, crm, part, *a, **k)

        tasks.write_plan = capturing if run_workspace is None else capturing_from_workspace
    pipeline.open_runtime = timed("open runtime", pipeline.open_runtime)
    for method in STORE_METHODS:
        if hasattr(Store, method):
            setattr(Store, method, timed(f"store.{method}", getattr(Store, method)))
    hourly_module.get_run_logger = lambda: logging.getLogger("leadloop.flow")  # type: ignore[attr-defined]
    artifacts.publish = lambda summary: None  # type: ignore[assignment]
    with contextlib.suppress(ImportError):  # Prefect events need a flow run: none without the engine
        importlib.import_module(f"{prefix}flows.events").emit_tier_changes = lambda summary: 0

    at = datetime.fromisoformat(args.at) if args.at else None
    options = SyncOptions(connection_file=args.connection, playbook=args.playbook, store_url=args.store_url,
                          at=at)
    started = time.perf_counter()
    result = hourly_module.hourly_sync.fn(options)
    wall = time.perf_counter() - started
    summary_of = getattr(steps, "summary_of", None)
    summary = summary_of(result) if summary_of is not None else result
    state = type(result).__name__ if result is not summary else "summary"
    if state != "summary":
        state += f" {getattr(result, 'name', '')}: {getattr(result, 'message', '')}"[:300]
    writes = [{k: v for k, v in _fields(w).items() if isinstance(v, int | str)} for w in summary.writes]
    out = {
        "root": str(root), "c_modules": c_modules, "import_s": imported, "sync_s": wall,
        "summary_s": summary.seconds, "result": state, "steps_s": dict(seconds), "calls": dict(calls),
        "api_calls": summary.api_calls, "counts": summary.counts(), "planned": summary.planned,
        "writes": writes,
        "pulled": {f"{p.crm} {p.stream}": p.records for p in summary.pulls},
        "peak_rss_mb": peak_rss_mb(), "cpu_s": cpu_seconds(), "warnings": collect.messages,
        "tasks_by_crm": {crm: len(keys) for crm, keys in captured.items()},
    }
    Path(args.out).write_text(json.dumps(out, default=str))
    if args.capture_tasks:
        Path(args.capture_tasks).write_text(json.dumps(captured))
    return 0


class _Submittable:
    """A plain step that a flow body can also `submit`: on a thread, as Prefect's default task runner
    runs a flow's submitted task runs."""

    def __init__(self, step: Any) -> None:
        self.step = step
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="bench-step")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.step(*args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        return self.pool.submit(self.step, *args, **kwargs)


def _fields(obj: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _import_prefix(root: Path) -> str:
    """How `root`'s code imports its packages: `leadloop.<folder>` (setup.py maps them to the
    folders; `leadloop` is a namespace package) or, in the code before that, `<folder>` alone. For
    the former, `leadloop` is made to resolve to `root`'s folders, not the editable install's
    (the checkout), so a copy or another commit runs its own code."""
    if "from leadloop." not in (root / "flows" / "steps.py").read_text():
        return ""
    package = types.ModuleType("leadloop")
    package.__path__ = [str(root)]
    package.__spec__ = importlib.machinery.ModuleSpec("leadloop", None, is_package=True)
    package.__spec__.submodule_search_locations = [str(root)]
    sys.modules["leadloop"] = package
    return "leadloop."


def _c_modules(prefix: str = "leadloop.") -> list[str]:
    built = []
    with contextlib.suppress(Exception):
        intent = importlib.import_module(f"{prefix}scoring.intent")

        if getattr(intent, "_read_activities_c", None):
            built.append("scoring._columns")
    with contextlib.suppress(Exception):
        batch = importlib.import_module(f"{prefix}crm.batch")

        if batch.fill_slot is not batch._fill_slot:
            built.append("crm._batch")
    return built


# -- the parent: the sandbox, the runs, the tables --------------------------------------------------------


def snapshot_checkout(source: Path, target: Path) -> dict[str, Any]:
    """Copy the checkout's files (tracked and untracked, not ignored) and its built C modules."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    listed = subprocess.run(["git", "-C", str(source), "ls-files", "-z", "-co", "--exclude-standard"],
                            capture_output=True, check=True, env=env).stdout.decode().split("\0")
    files = [f for f in listed if f] + [str(p.relative_to(source)) for p in source.glob("*/*.so")]
    for name in files:
        path = source / name
        if path.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / name)
    head = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True, env=env).stdout.strip()
    changed = subprocess.run(["git", "-C", str(source), "diff", "--name-only", "HEAD"], capture_output=True,
                             text=True, check=True, env=env).stdout.split()
    untracked = subprocess.run(["git", "-C", str(source), "ls-files", "-o", "--exclude-standard"],
                               capture_output=True, text=True, check=True, env=env).stdout.split()
    return {"head": head, "uncommitted": changed, "untracked": untracked, "files": len(files)}


class Runner:
    def __init__(self, sandbox: Any, workdir: Path, roots: dict[str, Path], timeout: float) -> None:
        self.sandbox, self.workdir, self.roots, self.timeout = sandbox, workdir, roots, timeout
        self.count = 0

    def store_url(self, version: str) -> str:
        return f"sqlite:///{self.workdir / f'state-{version}.db'}"

    def run(self, version: str, label: str, at: datetime, capture: Path | None = None,
            kind: str = "") -> dict[str, Any]:
        self.count += 1
        root = self.roots[version]
        out = self.workdir / f"run-{self.count}.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(root),
                   "--store-url", self.store_url(version), "--connection", str(self.sandbox.connection_file),
                   "--playbook", str(root / "playbooks" / "semiconductor.yaml"), "--at", at.isoformat(),
                   "--out", str(out)]
        if capture is not None:
            command += ["--capture-tasks", str(capture)]
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
        self.sandbox.reset_stats()
        started = time.perf_counter()
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                              timeout=self.timeout)
        process_s = time.perf_counter() - started
        stats = self.sandbox.stats()
        if done.returncode != 0:
            raise RuntimeError(f"{label} ({version}) failed:\n{done.stderr[-4000:]}")
        run = json.loads(out.read_text())
        run.update({"version": version, "label": label, "kind": kind or label, "process_s": process_s,
                    "at": at.isoformat(),
                    "sandbox_calls": stats.get("calls", 0),
                    "sandbox_by_endpoint": stats.get("by_endpoint", {}),
                    "load_average": load_average()})
        counted = sum(sum(c.values()) for c in run["api_calls"].values())
        counts = run["counts"]
        steps = run["steps_s"]
        print(f"  {label:<22} {version:<6} sync {run['sync_s']:6.1f} s (process {process_s:5.1f} s) "
              f"plan {steps.get('plan', 0):5.2f} s write {steps.get('write back', 0):5.2f} s | calls "
              f"{counted} (sandbox {run['sandbox_calls']}) | pulled {counts['records_pulled']:,} | fields "
              f"{counts['fields_written']:,} tasks {counts['tasks_created']:,} | "
              f"{run['peak_rss_mb']:,.0f} MB "
              f"| {run['result'][:60]} | load {run['load_average']}", flush=True)
        for message in run["warnings"][:3]:
            print(f"      {message[:200]}")
        return run


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def total_calls(run: dict[str, Any], crm: str | None = None) -> int:
    return sum(sum(c.values()) for k, c in run["api_calls"].items() if crm is None or k == crm)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}" if values else ""


def mark_pending(db: Path, crm: str, keys: list[str], payloads: dict[str, str], updated_at: datetime) -> int:
    """Put ledger entries back to `pending` with their payload, as a run killed after queueing them
    (store.queue_tasks) and before ledgering the CRM's answer leaves them."""
    stamp = updated_at.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        sample = conn.execute("SELECT updated_at FROM task_ledger LIMIT 1").fetchone()
        if sample and len(str(sample[0])) != len(stamp):
            raise RuntimeError(f"unexpected timestamp format in the task ledger: {sample[0]!r}")
        changed = 0
        for key in keys:
            changed += conn.execute(
                "UPDATE task_ledger SET status='pending', crm_task_id='', payload=?, attempts=1, "
                "last_error=NULL, updated_at=? WHERE crm=? AND key=?",
                (payloads[key], stamp, crm, key)).rowcount
    return changed


def ledger_status(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {f"{crm} {status}": n for crm, status, n in conn.execute(
            "SELECT crm, status, count(*) FROM task_ledger GROUP BY crm, status ORDER BY crm, status")}


def open_hubspot_keys(db: Path, payloads: dict[str, str]) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        keys = {k for (k,) in conn.execute(
            "SELECT key FROM task_ledger WHERE crm='hubspot' AND status='open' AND crm_task_id != ''")}
    return sorted(k for k in payloads if k in keys)


def endpoint_rows(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[list[Any]]:
    """Per CRM and endpoint: the calls of each version's quiet runs (one figure when every run made the
    same number, else min–max)."""
    names = sorted({(crm, e) for r in before + after for crm, c in r["api_calls"].items() for e in c})

    def cell(runs: list[dict[str, Any]], crm: str, endpoint: str) -> tuple[str, float]:
        values = [r["api_calls"].get(crm, {}).get(endpoint, 0) for r in runs]
        text = str(values[0]) if len(set(values)) == 1 else f"{min(values)}–{max(values)}"
        return text, median(values)

    rows = []
    for crm, endpoint in names:
        b, bm = cell(before, crm, endpoint)
        a, am = cell(after, crm, endpoint)
        rows.append([crm, endpoint, b, a, f"{am - bm:+g}" if am != bm else "0"])
    for crm in ("salesforce", "hubspot", None):
        b, bm = _total_cell(before, crm)
        a, am = _total_cell(after, crm)
        rows.append([crm or "both", "total", b, a, f"{am - bm:+g}" if am != bm else "0"])
    return rows


def _total_cell(runs: list[dict[str, Any]], crm: str | None) -> tuple[str, float]:
    values = [total_calls(r, crm) for r in runs]
    return (str(values[0]) if len(set(values)) == 1 else f"{min(values)}–{max(values)}"), median(values)


def time_rows(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[list[Any]]:
    def pick(run: dict[str, Any], what: str) -> float:
        if what == "sync":
            return run["sync_s"]
        if what == "process":
            return run["process_s"]
        if what == "rss":
            return run["peak_rss_mb"]
        if what == "cpu":
            return run.get("cpu_s", 0.0)
        if what == "other":
            return run["sync_s"] - sum(v for k, v in run["steps_s"].items()
                                       if not k.startswith("store.") and k != "open runtime") \
                - run["steps_s"].get("open runtime", 0.0)
        if what == "lease":
            return 1000 * sum(run["steps_s"].get(f"store.{m}", 0.0) for m in ("acquire_lease", "renew_lease",
                                                                               "release_lease"))
        if what == "outbox":
            return 1000 * sum(run["steps_s"].get(f"store.{m}", 0.0) for m in ("task_outbox", "task_rows",
                                                                               "outbox_task", "queue_tasks"))
        if what.startswith("store."):
            return 1000 * run["steps_s"].get(what, 0.0)
        return run["steps_s"].get(what, 0.0)

    measures = [("whole sync (in the process)", "sync"), ("process (imports + sync)", "process"),
                ("open runtime (store, clients, HubSpot task ledger)", "open runtime"),
                ("pull salesforce", "pull salesforce"), ("pull hubspot", "pull hubspot"),
                ("load + identity", "load + identity"), ("score", "score"), ("route", "route"),
                ("plan", "plan"), ("— store.task_ledger, whole-ledger reads (ms)", "store.task_ledger"),
                ("— outbox: task_outbox, task_rows, outbox_task, queue_tasks (ms)", "outbox"),
                ("save identity", "save identity"), ("write back", "write back"),
                ("save scores", "save scores"),
                ("lease: acquire, renew, release (ms)", "lease"),
                ("other (merge, tiers, state, run record)", "other"),
                ("CPU of the process (user + system, imports included)", "cpu"), ("peak RSS (MB)", "rss")]
    rows = []
    for title, what in measures:
        b = [pick(r, what) for r in before]
        a = [pick(r, what) for r in after]
        bm, am = median(b), median(a)
        ratio = f"{am / bm:.2f}" if bm > 0.0005 else ""
        rows.append([title, round(bm, 3 if bm < 1 else 2), spread(b), round(am, 3 if am < 1 else 2),
                     spread(a), ratio])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--store-url", help=argparse.SUPPRESS)
    parser.add_argument("--connection", help=argparse.SUPPRESS)
    parser.add_argument("--playbook", help=argparse.SUPPRESS)
    parser.add_argument("--at", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--capture-tasks", help=argparse.SUPPRESS)
    parser.add_argument("--size", default="medium", choices=("tiny", "small", "medium", "large"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=10, help="measured quiet runs per version")
    parser.add_argument("--warmups", type=int, default=2, help="quiet runs per version before measuring")
    parser.add_argument("--pending", default="20,250",
                        help="HubSpot outbox entries put back to pending, one after-run per figure")
    parser.add_argument("--before-root", default="/tmp/leadloop-before")
    parser.add_argument("--after-root", default=str(ROOT))
    parser.add_argument("--no-snapshot", action="store_true", help="run the checkout itself, not a copy")
    parser.add_argument("--ready-timeout", type=float, default=600)
    parser.add_argument("--run-timeout", type=float, default=1800)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--tables-from", default=None, help="print the tables of a JSON file written before")
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    if args.tables_from:
        report(json.loads(Path(args.tables_from).read_text()))
        return 0
    from bench_sync import sandbox_process

    command = " ".join([".venv/bin/python bench/bench_outbox.py", *sys.argv[1:]])
    started_at = datetime.now().astimezone()
    print(f"command: {command}")
    print(f"started {started_at:%Y-%m-%d %H:%M %Z}; {os.cpu_count()} cores; load average {load_average()}")
    workdir = Path(tempfile.mkdtemp(prefix="leadloop-bench-outbox-"))
    before_root = Path(args.before_root).resolve()
    if not (before_root / "flows" / "steps.py").exists():
        print(f"error: no code at {before_root}; git -C {ROOT} worktree add --detach {before_root} "
              f"{BEFORE_COMMIT}", file=sys.stderr)
        return 2
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    before_head = subprocess.run(["git", "-C", str(before_root), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, env=env).stdout.strip()
    after_root = Path(args.after_root).resolve()
    after_code: dict[str, Any] = {"root": str(after_root)}
    if not args.no_snapshot:
        snapshot = workdir / "after-code"
        after_code.update(snapshot_checkout(after_root, snapshot))
        after_root = snapshot
    figures: dict[str, Any] = {
        "command": command, "started": started_at.isoformat(timespec="seconds"), "size": args.size,
        "seed": args.seed, "cores": os.cpu_count(), "load_average_start": load_average(),
        "before_code": {"root": str(before_root), "head": before_head}, "after_code": after_code,
        "runs": [],
    }
    print(f"before: {before_root} at {before_head}; after: {after_code}")
    roots = {"before": before_root, "after": after_root}
    try:
        with sandbox_process(args.size, args.seed, workdir, args.ready_timeout) as sandbox:
            figures["sandbox_ready_s"] = round(sandbox.ready_seconds, 1)
            print(f"sandbox ({args.size}) ready in {sandbox.ready_seconds:.1f} s")
            from leadloop.connectors.hubspot.setup import setup as hubspot_setup
            from leadloop.connectors.mapping import load_mapping
            from leadloop.connectors.salesforce.setup import setup as salesforce_setup
            from leadloop.playbook.load import load_playbook

            mapping = load_mapping(load_playbook(str(ROOT / "playbooks" / "semiconductor.yaml")).mapping)
            t0 = time.perf_counter()
            salesforce_setup(sandbox.settings, mapping)
            hubspot_setup(sandbox.settings, mapping)
            figures["crm_setup_s"] = round(time.perf_counter() - t0, 1)
            runner = Runner(sandbox, workdir, roots, args.run_timeout)
            runs: list[dict[str, Any]] = figures["runs"]

            print("\nfull syncs (same `at`)")
            at_full = sandbox.now()
            captured = workdir / "tasks-after.json"
            for version in ("before", "after"):
                runs.append(runner.run(version, "full sync", at_full,
                                       capture=captured if version == "after" else None))
            sandbox.advance_clock(3600)
            at = sandbox.now()
            print(f"\nwarm-up quiet runs (clock +1 h; at {at.isoformat(timespec='seconds')})")
            for n in range(1, args.warmups + 1):
                for version in ("before", "after"):
                    runs.append(runner.run(version, f"warm-up {n}", at))
            sandbox.advance_clock(3600)
            print(f"\nmeasured quiet runs (clock +1 h more; same at {at.isoformat(timespec='seconds')})")
            for n in range(1, args.runs + 1):
                for version in ("before", "after"):
                    runs.append(runner.run(version, f"quiet {n}", at, kind="measured"))

            print("\nthe outbox with work in it (current code only; the CRMs' clock 15 min on before each "
                  "run, past the pull's overlap, so a run re-reads only what the run before it wrote)")
            db = workdir / "state-after.db"
            payloads = json.loads(captured.read_text()).get("hubspot", {}) if captured.exists() else {}
            figures["ledger_after_full"] = ledger_status(db)
            figures["ledger_before_full"] = ledger_status(workdir / "state-before.db")
            counts = [int(x) for x in args.pending.split(",") if x.strip()]
            # within the grace first (a look-up, no write), then past it (a look-up and an update), each
            # update followed by a quiet run: the next run re-reads the tasks the update touched
            cases = ([(counts[0], "within grace")] if counts else []) + [(n, "past grace") for n in counts]
            for n, grace in cases:
                keys = open_hubspot_keys(db, payloads)[:n]
                if len(keys) < n:
                    print(f"  only {len(keys)} HubSpot tasks to put back (asked {n})")
                moment = datetime.now(UTC) - (timedelta(hours=1) if grace == "past grace" else timedelta(0))
                marked = mark_pending(db, "hubspot", keys, payloads, moment)
                sandbox.advance_clock(900)
                run = runner.run("after", f"{marked} pending, {grace}", at, kind="pending")
                run.update({"pending": marked, "grace": grace, "ledger_after": ledger_status(db)})
                runs.append(run)
                if grace == "past grace":
                    sandbox.advance_clock(900)
                    runs.append(runner.run("after", "next run (quiet)", at, kind="pending"))
                    runs[-1]["ledger_after"] = ledger_status(db)
    finally:
        figures["load_average_end"] = load_average()
        figures["finished"] = datetime.now().astimezone().isoformat(timespec="seconds")
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
        shutil.rmtree(workdir, ignore_errors=True)

    report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0


def report(figures: dict[str, Any]) -> None:
    from bench_sync import table

    runs = figures["runs"]
    before = [r for r in runs if r["version"] == "before" and r["kind"] == "measured"]
    after = [r for r in runs if r["version"] == "after" and r["kind"] == "measured"]
    full = {r["version"]: r for r in runs if r["label"] == "full sync"}
    print(f"\nC modules: before {full['before']['c_modules']}, after {full['after']['c_modules']}")
    table("full syncs (one each; context only)", ["version", "sync s", "API calls (SF + HS)", "pulled",
                                                  "fields written", "tasks created", "peak RSS MB"],
          [[v, round(r["sync_s"], 1), f"{total_calls(r)} ({total_calls(r, 'salesforce')} + "
            f"{total_calls(r, 'hubspot')})", r["counts"]["records_pulled"], r["counts"]["fields_written"],
            r["counts"]["tasks_created"], round(r["peak_rss_mb"])] for v, r in full.items()])
    rows = time_rows(before, after)
    figures["time_table"] = rows
    table(f"quiet hourly runs: medians of {len(before)} before / {len(after)} after, alternating (seconds)",
          ["measure", "before", "before min–max", "after", "after min–max", "after / before"], rows)
    for name, version_runs in (("before", before), ("after", after)):
        names = sorted({k for r in version_runs for k in r["calls"] if k.startswith("store.")})
        store_calls = {k[len("store."):]: median([r["calls"].get(k, 0) for r in version_runs]) for k in names}
        print(f"store methods called per quiet run, {name} (median): {store_calls}")
    print(f"task ledger after the full syncs: before {figures.get('ledger_before_full')}, "
          f"after {figures.get('ledger_after_full')}")
    calls = endpoint_rows(before, after)
    figures["calls_table"] = calls
    table("quiet hourly runs: API calls per endpoint (connector counters; every run)",
          ["crm", "endpoint", "before", "after", "after − before"], calls)
    table("quiet hourly runs: what each run did", ["run", "version", "sync s", "plan s", "write s", "calls",
                                                   "sandbox calls", "pulled", "fields", "tasks", "RSS MB"],
          [[r["label"], r["version"], round(r["sync_s"], 2), round(r["steps_s"].get("plan", 0), 2),
            round(r["steps_s"].get("write back", 0), 3), total_calls(r), r["sandbox_calls"],
            r["counts"]["records_pulled"], r["counts"]["fields_written"], r["counts"]["tasks_created"],
            round(r["peak_rss_mb"])] for r in before + after])
    pending = [r for r in runs if r["kind"] == "pending"]
    if pending and after:
        base = {(crm, e): statistics.median([r["api_calls"].get(crm, {}).get(e, 0) for r in after])
                for r0 in after for crm, c in r0["api_calls"].items() for e in c}
        prows = []
        for r in pending:
            extra: Counter[str] = Counter()
            for crm, c in r["api_calls"].items():
                for e, n in c.items():
                    if n != base.get((crm, e), 0):
                        extra[f"{crm} {e}"] += n - base.get((crm, e), 0)
            for key, n in base.items():
                if key[1] not in r["api_calls"].get(key[0], {}) and n:
                    extra[f"{key[0]} {key[1]}"] -= n
            writes = {k: sum(w.get(k, 0) for w in r["writes"]) for k in ("tasks_written", "tasks_confirmed",
                                                                          "tasks_unconfirmed")}
            prows.append([r["label"], round(r["sync_s"], 1), round(r["steps_s"].get("plan", 0), 2),
                          round(r["steps_s"].get("write back", 0), 2), total_calls(r),
                          "; ".join(f"{k} {v:+g}" for k, v in sorted(extra.items()) if v) or "none",
                          f"{writes['tasks_written']} / {writes['tasks_confirmed']}",
                          r.get("ledger_after", {}).get("hubspot pending", 0)])
        figures["pending_table"] = prows
        table("the outbox with work in it (current code; extra calls against the median quiet after-run)",
              ["run", "sync s", "plan s", "write s", "calls", "extra calls by endpoint",
               "tasks updated / confirmed", "hubspot pending left"], prows)
    print(f"\nload average at end {figures['load_average_end']}")


if __name__ == "__main__":
    sys.exit(main())
