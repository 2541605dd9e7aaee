"""Benchmark: state-store bulk operations on SQLite (and PostgreSQL when a URL is given).

    .venv/bin/python bench/bench_store.py                       # SQLite in a temporary directory
    .venv/bin/python bench/bench_store.py --n 100000 --url postgresql+psycopg://user@/db?host=/sock

Prints seconds for: a first upsert of N person snapshots, the same upsert again (the overlap
re-read of an incremental pull), loading them back as canonical records, tombstoning 10%, and
recording N ledger writes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leadloop.crm.changes import FieldUpdate, ObjectType
from leadloop.crm.ports import WriteResult
from leadloop.crm.records import Crm, Person
from leadloop.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp(prefix='leadloop-bench-')}/state.db"
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    people = [Person(id=f"sf-lead:00Q{n:015d}", email=f"person{n}@acme-semi.com", title="Design Engineer",
                     updated_at=t0, salesforce_lead_id=f"00Q{n:015d}") for n in range(args.n)]
    figures: dict[str, float] = {}
    with open_store(url) as store:
        def timed(name: str, action) -> None:  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            action()
            figures[name] = time.perf_counter() - started

        timed("first upsert", lambda: store.upsert_snapshots(Crm.SALESFORCE, "Lead", people, cursor=t0))
        timed("re-upsert (overlap)",
              lambda: store.upsert_snapshots(Crm.SALESFORCE, "Lead", people, cursor=t0))
        timed("load_records", store.load_records)
        timed("tombstone 10%", lambda: store.tombstone(Crm.SALESFORCE, "Lead",
                                                       [p.id for p in people[: args.n // 10]]))
        updates = [FieldUpdate(crm=Crm.SALESFORCE, object_type=ObjectType.PERSON, record_id=p.id[8:],
                               field="score", value=n % 100) for n, p in enumerate(people)]
        results = [WriteResult(u.record_id, True, u.record_id) for u in updates]
        timed("record_writes", lambda: store.record_writes(Crm.SALESFORCE, updates, results))
        timed("ledger read", lambda: store.ledger(Crm.SALESFORCE))
    print(f"state store, {args.n:,} records, {url.split(':', 1)[0]}")
    for name, seconds in figures.items():
        print(f"  {name:<22} {seconds:6.2f} s   {args.n / seconds:>10,.0f} records/s")


if __name__ == "__main__":
    main()
