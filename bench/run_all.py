"""`make bench`: every benchmark, one after the other, at sizes that finish in reasonable time on a
2-core machine; the heavy ones (size L and XL) only when asked.

    .venv/bin/python bench/run_all.py                     # standard set (~30-40 min on 2 cores)
    .venv/bin/python bench/run_all.py --heavy             # plus size L sync, L and XL scoring, L generation
    .venv/bin/python bench/run_all.py --only sync,scoring # a subset, by name
    .venv/bin/python bench/run_all.py --list              # the commands, without running them

Each benchmark runs in its own process with a time limit and prints its own figures and the command
that reproduces them; this runner adds a summary line per benchmark (exit status and wall time). It
exits non-zero when any benchmark failed or ran out of time. `make bench ARGS=--heavy` passes flags.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass(frozen=True, slots=True)
class Bench:
    name: str
    args: tuple[str, ...]
    timeout_s: int
    heavy: bool = False
    why: str = ""

    def command(self) -> list[str]:
        return [PYTHON, *self.args]


BENCHES: tuple[Bench, ...] = (
    Bench("routing", ("bench/bench_routing.py", "--people", "100000", "--runs", "5"), 600,
          why="route 100,000 scored people (target ≤ 3 s)"),
    Bench("scoring", ("bench/bench_scoring.py", "--people", "20000", "--accounts", "4000",
                      "--activities", "400000", "--runs", "3"), 900, why="full rescore at size M"),
    Bench("store", ("bench/bench_store.py", "--n", "20000"), 900, why="state-store bulk operations, SQLite"),
    Bench("reload", ("bench/bench_reload.py", "--runs", "3"), 1200,
          why="reload the whole store and resolve identity at 20k people, as every sync does"),
    Bench("sandbox", ("bench/bench_sandbox.py", "--sizes", "tiny,small,medium", "--requests", "30"), 1200,
          why="sandbox generation, time to ready, requests/s"),
    Bench("salesforce-api", ("bench/bench_salesforce_api.py", "--size", "medium"), 1200,
          why="Salesforce connector records per call vs per-record calls"),
    Bench("sync", ("bench/bench_sync.py", "--size", "medium",
                   "--phases", "full,incremental,engine,latency,naive"), 3600,
          why="sync at size M: steps, API economy, engine overhead, latency floor, naive ratio"),
    Bench("sync-decay", ("bench/bench_sync.py", "--size", "small", "--phases", "full,decay",
                         "--decay-runs", "24"), 1800,
          why="24 hourly runs with no new activity: writes caused by decay alone"),
    Bench("scoring-L", ("bench/bench_scoring.py",), 1800, heavy=True,
          why="full rescore at size L (target ≤ 10 s, ≤ 1.5 GB)"),
    Bench("scoring-XL", ("bench/bench_scoring.py", "--people", "1000000", "--accounts", "200000",
                         "--activities", "20000000", "--runs", "1", "--chunks", "10", "--json-fraction", "0"),
          3600, heavy=True, why="full rescore at size XL in ten account partitions (target ≤ 100 s, ≤ 8 GB)"),
    Bench("store-L", ("bench/bench_store.py", "--n", "100000"), 1800, heavy=True, why="store at 100,000"),
    Bench("reload-L", ("bench/bench_reload.py", "--people", "100000", "--accounts", "20000",
                       "--activities", "2000000", "--runs", "1"), 1800, heavy=True,
          why="reload and identity at size L"),
    Bench("sandbox-L", ("bench/bench_sandbox.py", "--sizes", "tiny", "--large", "--requests", "10"), 1200,
          heavy=True, why="generating the large world"),
    Bench("sync-L", ("bench/bench_sync.py", "--size", "large", "--phases", "full,incremental",
                     "--ready-timeout", "900"),
          5400, heavy=True, why="full initial and incremental syncs at size L"),
)


def run(bench: Bench, env: dict[str, str]) -> str:
    """Run one benchmark in its own process group, so that on time-out the sandbox it started stops too."""
    process = subprocess.Popen(bench.command(), cwd=ROOT, env=env, start_new_session=True)
    try:
        code = process.wait(timeout=bench.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return f"stopped after {bench.timeout_s} s"
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise
    return "ok" if code == 0 else f"failed (exit {code})"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--heavy", action="store_true", help="also the size L and XL benchmarks")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--list", action="store_true", help="print the commands and exit")
    args = parser.parse_args()
    names = {b.name for b in BENCHES}
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in only if n not in names]
    if unknown:
        print(f"error: no benchmark named {', '.join(unknown)}; expected some of {', '.join(sorted(names))}",
              file=sys.stderr)
        return 2
    if only:
        chosen = [b for b in BENCHES if b.name in only]
    else:
        chosen = [b for b in BENCHES if args.heavy or not b.heavy]
    if args.list:
        for bench in chosen:
            print(f"{bench.name:15} {' '.join(['.venv/bin/python', *bench.args])}  # {bench.why}")
        return 0

    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    outcomes: list[tuple[str, str, float]] = []
    for bench in chosen:
        print(f"\n=== {bench.name}: {bench.why}\n$ {' '.join(['.venv/bin/python', *bench.args])}", flush=True)
        started = time.monotonic()
        outcomes.append((bench.name, run(bench, env), time.monotonic() - started))

    print("\n=== summary")
    for name, status, seconds in outcomes:
        print(f"{name:15} {status:28} {seconds:8.0f} s")
    return 0 if all(status == "ok" for _, status, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
