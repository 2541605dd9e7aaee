"""Benchmark: reload the whole store and resolve identity, the step every sync runs before scoring.

At size L an incremental hourly sync spends most of its time here (bench/RESULTS.md, Sync, size L):
every stored snapshot is read back, validated into canonical records and merged across the CRMs.
This fills a SQLite store once with seeded canonical records under CRM-qualified ids (people and
accounts in Salesforce and HubSpot, a fifth of the people in both, so identity has merging to do),
then times `Store.load_records` and `resolve_identity` several times, and prints medians and the
peak RSS.

    .venv/bin/python bench/bench_reload.py                                   # 20k people, 400k activities
    .venv/bin/python bench/bench_reload.py --people 100000 --accounts 20000 --activities 2000000 --runs 3
    .venv/bin/python bench/bench_reload.py --store /tmp/reload.db             # keep (or reuse) the store
    .venv/bin/python bench/bench_reload.py --store /tmp/reload.db --partitioned 50000

With `--partitioned N`, it times what a sync does from the store to the score cards instead, twice
side by side, each in its own process so that each reports its own peak RSS: every activity loaded
and the store scored in one pass, then the activities left in the store and read partition by
partition (about N people each, `sync.pipeline.score_from_store`), as a sync above N people does.

The store file is reused when it exists, so two versions of the code can be timed on the same data
one after the other. With `--against FOLDER` (another checkout, e.g. `git archive HEAD | tar -x -C
FOLDER`), `--partitioned` runs each path of both versions in turn, alternating, each child with
that version's code first on the import path, and prints medians and after / before ratios; each
child prints a digest of every card, which must be the same for both.

    .venv/bin/python bench/bench_reload.py --people 20000 --accounts 4000 --activities 400000 \
        --store /tmp/reloadM.db --partitioned 10000 --runs 3 --against /tmp/before
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _code_from(root: str) -> None:
    """Make `leadloop` resolve to `root`'s folders (setup.py maps the packages to them; `leadloop` is a
    namespace package), not to the editable install's, so a child runs another checkout's code."""
    import importlib.machinery
    import types

    package = types.ModuleType("leadloop")
    package.__path__ = [root]
    package.__spec__ = importlib.machinery.ModuleSpec("leadloop", None, is_package=True)
    package.__spec__.submodule_search_locations = [root]
    sys.modules["leadloop"] = package


if len(sys.argv) == 5 and sys.argv[1] == "--score-child":  # before anything imports leadloop
    _code_from(sys.argv[4])

from bench_scoring import peak_mb, rss_mb  # noqa: E402
from generate_canonical import REFERENCE_TIME, generate  # noqa: E402

from leadloop.crm.dataset import Dataset, dataset_from_dict, dataset_to_dict  # noqa: E402
from leadloop.crm.identity import resolve_identity  # noqa: E402
from leadloop.crm.records import Crm  # noqa: E402
from leadloop.store.db import open_store  # noqa: E402

PAGE = 10_000


def crm_records(people: int, accounts: int, activities: int, seed: int) -> dict[Crm, Dataset]:
    """The generated world as the two CRMs would hold it: every account and person in one CRM by
    parity, a fifth of the people (and their accounts) also in the other; activities stay with
    the CRM their person came from."""
    world = dataset_to_dict(generate(people, accounts, activities, seed=seed))
    both = {p["id"] for n, p in enumerate(world["people"]) if n % 5 == 0}
    home = {p["id"]: Crm.SALESFORCE if n % 2 else Crm.HUBSPOT for n, p in enumerate(world["people"])}
    prefix = {Crm.SALESFORCE: ("sf-account:", "sf-contact:", "sf-task:"),
              Crm.HUBSPOT: ("hs-company:", "hs-contact:", "hs-event:")}
    out: dict[Crm, dict[str, list]] = {crm: {"accounts": [], "people": [], "activities": []} for crm in Crm}
    for crm, (account, contact, event) in prefix.items():
        out[crm]["accounts"] = [{**a, "id": account + a["id"]} for a in world["accounts"]]
        for person in world["people"]:
            if home[person["id"]] is crm or person["id"] in both:
                out[crm]["people"].append({
                    **person, "id": contact + person["id"],
                    "account_id": account + person["account_id"] if person.get("account_id") else None})
        out[crm]["activities"] = [
            {**a, "id": event + a["id"], "person_id": contact + a["person_id"]}
            for a in world["activities"] if home.get(a["person_id"]) is crm]
    return {crm: dataset_from_dict(data) for crm, data in out.items()}


def fill(url: str, people: int, accounts: int, activities: int, seed: int) -> None:
    started = time.perf_counter()
    with open_store(url) as store:
        for crm, dataset in crm_records(people, accounts, activities, seed).items():
            for stream, records in (("accounts", dataset.accounts), ("people", dataset.people),
                                    ("activities", dataset.activities)):
                for start in range(0, len(records), PAGE):
                    page = records[start:start + PAGE]
                    store.upsert_snapshots(crm.value, stream, page, cursor=REFERENCE_TIME)
    print(f"store filled in {time.perf_counter() - started:.1f} s (not timed below)", flush=True)


def score_once(url: str, people_per_partition: int | None) -> None:
    """Child-process entry: load, resolve and score the store once, then print the figures as JSON."""
    import json

    from leadloop.playbook.load import load_playbook
    from leadloop.scoring.engine import score_dataset
    from leadloop.sync import pipeline

    playbook = load_playbook(ROOT / "bench" / "northwind.yaml")
    started, cpu = time.perf_counter(), time.process_time()
    with open_store(url) as store:
        raw, identity = pipeline.load_and_resolve(store, people_per_partition)
        dataset = pipeline.merged_dataset(raw, identity)
        pipeline.release_pulled(raw)
        loaded = time.perf_counter()
        parts = 1 if people_per_partition is None else pipeline.partitions_for(dataset, people_per_partition)
        if parts == 1:
            result = score_dataset(playbook, dataset, REFERENCE_TIME)
        else:
            result = pipeline.score_from_store(playbook, store, dataset, identity.person_links,
                                               REFERENCE_TIME, parts)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu,
                      "load": loaded - started, "parts": parts, "peak_mb": peak_mb(),
                      "cards": len(result.cards), "tiers": result.tier_counts(),
                      "kept_activities": len(dataset.activities), "digest": cards_digest(result)}))


def cards_digest(result: object) -> str:
    """sha256 of every card and account score, sorted by id, as canonical JSON."""
    import dataclasses
    import hashlib
    import json

    cards = [dataclasses.asdict(result.cards[k]) for k in sorted(result.cards)]
    accounts = [dataclasses.asdict(result.accounts[k]) for k in sorted(result.accounts)]
    body = json.dumps({"cards": cards, "accounts": accounts}, sort_keys=True, default=str,
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def compare_partitioned(url: str, people_per_partition: int, runs: int) -> None:
    import json
    import subprocess

    figures: dict[str, list[dict]] = {"one pass": [], "partitioned": []}
    for run in range(1, runs + 1):
        for label, arg in (("one pass", "0"), ("partitioned", str(people_per_partition))):
            out = subprocess.run([sys.executable, __file__, "--score-child", url, arg], check=True,
                                 capture_output=True, text=True).stdout
            figures[label].append(json.loads(out.strip().splitlines()[-1]))
            f = figures[label][-1]
            print(f"run {run}, {label}: {f['seconds']:.2f} s wall ({f['cpu']:.2f} s CPU; store read and"
                  f" identity {f['load']:.2f} s), {f['parts']} partition(s), {f['cards']:,} cards,"
                  f" tiers {f['tiers']},"
                  f" activities kept after scoring {f['kept_activities']:,}, peak RSS {f['peak_mb']:,.0f} MB",
                  flush=True)
    for label, rows in figures.items():
        print(f"{label}: median {statistics.median(r['seconds'] for r in rows):.2f} s, peak RSS"
              f" {max(r['peak_mb'] for r in rows):,.0f} MB (max of {runs})")
    assert figures["one pass"][0]["tiers"] == figures["partitioned"][0]["tiers"], "results differ"


def compare_versions(url: str, people_per_partition: int, runs: int, before: Path) -> None:
    """Both paths (one pass, partitioned) of the code in `before` and of this checkout, alternating,
    each run in a fresh process; medians, after / before ratios and peaks."""
    import json
    import subprocess

    versions = (("before", before.resolve()), ("after", ROOT))
    paths = (("one pass", "0"), ("partitioned", str(people_per_partition)))
    figures: dict[tuple[str, str], list[dict]] = {(v, p): [] for v, _ in versions for p, _ in paths}
    for run in range(1, runs + 1):
        for path, arg in paths:
            for version, root in versions:
                out = subprocess.run([sys.executable, __file__, "--score-child", url, arg, str(root)],
                                     check=True, capture_output=True, text=True).stdout
                f = json.loads(out.strip().splitlines()[-1])
                figures[(version, path)].append(f)
                print(f"run {run}, {path}, {version}: {f['seconds']:.2f} s wall, {f['cpu']:.2f} s CPU"
                      f" (store read and identity {f['load']:.2f} s), {f['parts']} partition(s),"
                      f" peak RSS {f['peak_mb']:,.0f} MB, cards {f['digest'][:16]}", flush=True)
    digests = {f["digest"] for rows in figures.values() for f in rows}
    same = "the same" if len(digests) == 1 else "DIFFER"
    print(f"card digests: {sorted(d[:16] for d in digests)} ({same})")
    for path, _ in paths:
        row = {}
        for version, _ in versions:
            rows = figures[(version, path)]
            row[version] = (statistics.median(r["seconds"] for r in rows),
                            statistics.median(r["cpu"] for r in rows),
                            max(r["peak_mb"] for r in rows), statistics.median(r["load"] for r in rows))
        (bw, bc, bp, bl), (aw, ac, ap, al) = row["before"], row["after"]
        print(f"{path}: wall {bw:.2f} -> {aw:.2f} s ({aw / bw:.2f}x),"
              f" CPU {bc:.2f} -> {ac:.2f} s ({ac / bc:.2f}x),"
              f" peak RSS {bp:,.0f} -> {ap:,.0f} MB ({ap / bp:.2f}x),"
              f" store read + identity {bl:.2f} -> {al:.2f} s (medians of {runs})")


def main() -> None:
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--score-child":
        score_once(sys.argv[2], int(sys.argv[3]) or None)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=4_000)
    parser.add_argument("--activities", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", type=Path, default=None,
                        help="SQLite file to fill, or to reuse when it exists")
    parser.add_argument("--partitioned", type=int, default=None, metavar="N",
                        help="time store → score cards in one pass and in partitions of about N people")
    parser.add_argument("--against", type=Path, default=None, metavar="FOLDER",
                        help="with --partitioned: time another checkout's code too, alternating")
    args = parser.parse_args()
    path = args.store or Path(tempfile.mkdtemp(prefix="leadloop-reload-")) / "state.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        fill(url, args.people, args.accounts, args.activities, args.seed)
    if args.partitioned and args.against:
        compare_versions(url, args.partitioned, args.runs, args.against)
        return
    if args.partitioned:
        compare_partitioned(url, args.partitioned, args.runs)
        return
    gc.collect()
    print(f"RSS before the runs: {rss_mb():,.0f} MB", flush=True)
    loads, resolves = [], []
    with open_store(url) as store:
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            raw = store.load_records()
            loaded = time.perf_counter()
            identity = resolve_identity(raw.people, raw.accounts, raw.activities, raw.opportunities,
                                        repoint_in_place=True)  # as a sync does (sync.pipeline)
            resolved = time.perf_counter()
            loads.append(loaded - started)
            resolves.append(resolved - loaded)
            print(f"run {run}: load {loads[-1]:.2f} s ({len(raw.people):,} people, {len(raw.accounts):,}"
                  f" accounts, {len(raw.activities):,} activities, {len(raw.invalid)} invalid),"
                  f" identity {resolves[-1]:.2f} s ({len(identity.people):,} people,"
                  f" {len(identity.accounts):,} accounts)", flush=True)
            del raw, identity
            gc.collect()
    together = [a + b for a, b in zip(loads, resolves, strict=True)]
    print(f"median of {args.runs}: load {statistics.median(loads):.2f} s,"
          f" identity {statistics.median(resolves):.2f} s, together {statistics.median(together):.2f} s;"
          f" peak RSS {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
