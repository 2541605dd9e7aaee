"""Benchmark: a full rescore from records already in memory, and loading them from a JSON dataset.

Generates seeded canonical records (bench/generate_canonical.py; generation is not timed), scores
them several times with the playbook the generator's vocabulary was written for (bench/northwind.yaml)
and prints the median wall time, CPU time, people/s, activities/s and peak RSS. Loading from JSON is
measured in a separate process (so its memory does not count against scoring) on a dataset written at
`--json-fraction` of the scale.

    .venv/bin/python bench/bench_scoring.py                      # 100k people, 20k accounts, 2M activities
    .venv/bin/python bench/bench_scoring.py --people 10000 --accounts 2000 --activities 200000 --runs 3
    .venv/bin/python bench/bench_scoring.py --people 1000000 --accounts 200000 --activities 20000000 \
        --chunks 10 --runs 1 --json-fraction 0              # XL, scored account partition by partition

With `--chunks K` the world is generated as K account partitions of equal size (ids prefixed per
partition, so together they are one world of the given size) and scored the way the flow scores a
large store: one partition at a time, its records dropped before the next is loaded, every card kept
and the results merged at the end (`scoring.partition.merge_results`). Generating a partition is not
timed; scoring and the merge are.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generate_canonical import REFERENCE_TIME, generate  # noqa: E402

from leadloop.crm.dataset import dataset_to_dict, load_dataset  # noqa: E402
from leadloop.playbook.load import load_playbook  # noqa: E402
from leadloop.scoring.engine import score_dataset  # noqa: E402
from leadloop.scoring.partition import merge_results  # noqa: E402


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc), else the peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_mb()


def peak_mb() -> float:
    """Peak RSS of this process in MB: VmHWM (ru_maxrss survives exec on Linux, so a child would
    report its parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reference_seconds() -> float:
    """Wall time of a fixed piece of interpreter work shaped like scoring's (string-keyed dict
    lookups in random order, sorting, small objects): the same work every time, so it shows how fast
    this machine ran around the runs (its speed drifts by up to 2x within an hour)."""
    draw = random.Random(1)
    keys = [f"person-{i:08d}" for i in range(100_000)]
    index = {key: i for i, key in enumerate(keys)}
    probes = [keys[draw.randrange(len(keys))] for _ in range(1_000_000)]
    started = time.perf_counter()
    total = sum(map(index.__getitem__, probes))
    sorted((str(total % (i + 7)), i) for i in range(200_000))
    return time.perf_counter() - started


def measure_json_load(path: Path) -> None:
    """Child-process entry: load a JSON dataset once and print the figures as JSON."""
    started, cpu = time.perf_counter(), time.process_time()
    dataset = load_dataset(path)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "cpu": time.process_time() - cpu,
                "peak_mb": peak_mb(),
                "people": len(dataset.people),
                "accounts": len(dataset.accounts),
                "activities": len(dataset.activities),
                "bytes": path.stat().st_size,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark a full rescore.")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--activities", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    # The generator speaks Northwind's vocabulary (URLs, forms, campaigns, titles); the bundled
    # example playbook is tuned for the demo's sandbox and would recognize little of it.
    parser.add_argument("--playbook", type=Path, default=ROOT / "bench" / "northwind.yaml")
    parser.add_argument(
        "--json-fraction",
        type=float,
        default=0.1,
        help="scale of the dataset written to JSON for the load measurement (0 to skip)",
    )
    parser.add_argument("--chunks", type=int, default=1,
                        help="score the world as this many account partitions")
    parser.add_argument("--load-json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_json:
        measure_json_load(args.load_json)
        return

    playbook = load_playbook(args.playbook)
    if args.chunks > 1:
        score_in_chunks(args, playbook)
        return
    started = time.perf_counter()
    dataset = generate(args.people, args.accounts, args.activities, args.seed)
    print(
        f"generated {len(dataset.people):,} people, {len(dataset.accounts):,} accounts, "
        f"{len(dataset.activities):,} activities in {time.perf_counter() - started:.1f} s (not timed below)"
    )
    loaded_rss = rss_mb()
    print(f"RSS with the records loaded: {loaded_rss:,.0f} MB (peak so far {peak_mb():,.0f} MB)")

    reference_before = reference_seconds()
    walls, cpus = [], []
    for run in range(1, args.runs + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        result = score_dataset(playbook, dataset, REFERENCE_TIME)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        print(
            f"run {run}: {walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU, {len(result.cards):,} scorecards, "
            f"tiers {result.tier_counts()}"
        )
        del result
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(
        f"median of {args.runs}: {wall:.2f} s wall ({cpu:.2f} s CPU); "
        f"{len(dataset.people) / wall:,.0f} people/s, {len(dataset.activities) / wall:,.0f} activities/s; "
        f"peak RSS {peak_mb():,.0f} MB; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"reference workload (fixed, for the machine's speed): {reference_before:.2f} s before the runs, "
          f"{reference_seconds():.2f} s after")

    if args.json_fraction > 0:
        small = generate(
            max(1, int(args.people * args.json_fraction)),
            max(1, int(args.accounts * args.json_fraction)),
            max(1, int(args.activities * args.json_fraction)),
            args.seed,
        )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "dataset.json"
            path.write_text(json.dumps(dataset_to_dict(small)), encoding="utf-8")
            del small
            child = subprocess.run(
                [sys.executable, __file__, "--load-json", str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
        figures = json.loads(child.stdout)
        records = figures["people"] + figures["accounts"] + figures["activities"]
        print(
            f"JSON load ({args.json_fraction:g} of the scale: {figures['activities']:,} activities, "
            f"{figures['bytes'] / 2**20:,.0f} MB): {figures['seconds']:.2f} s wall "
            f"({figures['cpu']:.2f} s CPU), "
            f"{records / figures['seconds']:,.0f} records/s, peak RSS {figures['peak_mb']:,.0f} MB"
        )


def score_in_chunks(args: argparse.Namespace, playbook: object) -> None:
    import gc

    k = args.chunks
    results, walls, cpus, generation = [], [], [], 0.0
    people = activities = 0
    for index in range(k):
        started = time.perf_counter()
        chunk = generate(args.people // k, args.accounts // k, args.activities // k, args.seed + index,
                         prefix=f"c{index}-")
        generation += time.perf_counter() - started
        people, activities = people + len(chunk.people), activities + len(chunk.activities)
        wall, cpu = time.perf_counter(), time.process_time()
        results.append(score_dataset(playbook, chunk, REFERENCE_TIME))
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        del chunk
        gc.collect()
        print(f"partition {index + 1}/{k}: {walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU; "
              f"RSS now {rss_mb():,.0f} MB, peak {peak_mb():,.0f} MB", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    merged = merge_results(results)
    merge_wall, merge_cpu = time.perf_counter() - wall, time.process_time() - cpu
    total = sum(walls) + merge_wall
    print(f"merged {len(merged.cards):,} scorecards and {len(merged.accounts):,} accounts "
          f"in {merge_wall:.2f} s; "
          f"tiers {merged.tier_counts()}")
    print(f"{people:,} people, {activities:,} activities in {k} partitions (generated in {generation:.0f} s, "
          f"not timed): scoring {sum(walls):.1f} s + merge {merge_wall:.1f} s = {total:.1f} s wall "
          f"({sum(cpus) + merge_cpu:.1f} s CPU); {people / total:,.0f} people/s, {activities / total:,.0f} "
          f"activities/s; peak RSS {peak_mb():,.0f} MB; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
