"""Benchmark: when each card is next due (`scoring.due.due_times`), two checkouts side by side.

An hourly sync scores the people it rescores, then probes when each of their cards is next due (it
scores them again at later moments until their key moves). At size M the probes were a third of an
hourly run's score step. This times exactly that: a seeded canonical world (bench/generate_canonical.py,
not timed) is scored once as of its reference time, then `due_times` of everyone is timed, in worker
processes that alternate between the code before (`--before-root`, a checkout of another commit:
`git worktree add --detach /tmp/leadloop-before <commit>`) and this checkout. It prints the medians,
their ratio, and whether both computed the same due times (a digest of every person's).

    .venv/bin/python bench/bench_due.py               # 20k people, 4k accounts, 400k activities
    .venv/bin/python bench/bench_due.py --people 100000 --accounts 20000 --activities 2000000 --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args: argparse.Namespace) -> None:
    root = Path(args.worker).resolve()
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_outbox import _import_prefix  # `leadloop` resolves to `root`'s folders

    prefix = _import_prefix(root)
    from generate_canonical import REFERENCE_TIME, generate

    ActivityColumns = importlib.import_module(f"{prefix}crm.activity_columns").ActivityColumns
    load_playbook = importlib.import_module(f"{prefix}playbook.load").load_playbook
    score_dataset = importlib.import_module(f"{prefix}scoring.engine").score_dataset
    due = importlib.import_module(f"{prefix}scoring.due")
    if not Path(due.__file__).resolve().is_relative_to(root):
        raise SystemExit(f"worker for {root} imported {due.__file__}")

    dataset = generate(args.people, args.accounts, args.activities, args.seed)
    playbook = load_playbook(args.playbook)
    columns = ActivityColumns.from_records(dataset.activities)
    result = score_dataset(playbook, dataset, REFERENCE_TIME, activity_columns=columns)
    wall, cpu = time.perf_counter(), time.process_time()
    times = due.due_times(playbook, dataset, columns, REFERENCE_TIME, result)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    digest = hashlib.sha256(repr(sorted((p, t.isoformat()) for p, t in times.items())).encode()).hexdigest()
    hours = [(t - REFERENCE_TIME).total_seconds() / 3600 for t in times.values()]
    print(json.dumps({"seconds": wall, "cpu": cpu, "digest": digest[:16], "people": len(times),
                      "due_now": sum(h == 0 for h in hours), "due_within_9h": sum(h <= 9 for h in hours)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=4_000)
    parser.add_argument("--activities", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="measured runs per checkout, alternating")
    parser.add_argument("--playbook", type=Path, default=ROOT / "bench" / "northwind.yaml")
    parser.add_argument("--before-root", type=Path, default=Path("/tmp/leadloop-before"))
    parser.add_argument("--after-root", type=Path, default=ROOT)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    if not (args.before_root / "scoring" / "due.py").exists():
        print(f"error: no code at {args.before_root}; git -C {ROOT} worktree add --detach {args.before_root} "
              "<commit>", file=sys.stderr)
        return 2
    heads = {name: subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True).stdout.strip()
             for name, root in (("before", args.before_root), ("after", args.after_root))}
    print(f"due_times of everyone: {args.people:,} people, {args.accounts:,} accounts, {args.activities:,} "
          f"activities (seed {args.seed}); before {args.before_root} at {heads['before']}, after "
          f"{args.after_root} at {heads['after']}; load average {os.getloadavg()[0]:.1f}")
    figures: dict[str, list[dict[str, float | str]]] = {"before": [], "after": []}
    for run in range(1, args.runs + 1):
        for name, root in (("before", args.before_root), ("after", args.after_root)):
            command = [sys.executable, __file__, "--worker", str(root.resolve()),
                       "--people", str(args.people), "--accounts", str(args.accounts),
                       "--activities", str(args.activities),
                       "--seed", str(args.seed), "--playbook", str(args.playbook)]
            done = subprocess.run(command, capture_output=True, text=True, cwd=root,
                                  env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
            if done.returncode:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            figure = json.loads(done.stdout.strip().splitlines()[-1])
            figures[name].append(figure)
            print(f"run {run} {name:<6} {figure['seconds']:6.2f} s wall {figure['cpu']:6.2f} s CPU | "
                  f"due now {figure['due_now']:,}, within 9 h {figure['due_within_9h']:,} | "
                  f"digest {figure['digest']}", flush=True)
    print("\n| measure | before | after | after / before |\n|---|---:|---:|---:|")
    for measure in ("seconds", "cpu"):
        before = statistics.median(float(f[measure]) for f in figures["before"])
        after = statistics.median(float(f[measure]) for f in figures["after"])
        print(f"| due_times, {'wall' if measure == 'seconds' else 'CPU'} (s, median of {args.runs}) | "
              f"{before:.2f} | {after:.2f} | {after / before:.2f} |")
    digests = {str(f["digest"]) for runs in figures.values() for f in runs}
    same = "yes" if len(digests) == 1 else "NO: " + ", ".join(sorted(digests))
    print(f"\nsame due times before and after: {same}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
