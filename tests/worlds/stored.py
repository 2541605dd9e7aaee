"""A store filled with both CRMs' records and the awkward activities a partitioned read must get right,
for the tests that score from the store (tests/unit/test_partition_store.py, on SQLite and PostgreSQL;
tests/flows/test_dask_partitions.py, on a Dask cluster)."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from leadloop.crm.records import Activity, ActivityKind, Crm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_reload import crm_records


def fill_awkward_world(store: Any, now: datetime, *, people: int, accounts: int, activities: int,
                       kits: int = 0) -> dict[Crm, Any]:
    """People and accounts in both CRMs (identity merges a fifth of the people), their activities,
    and awkward ones: activities of nobody, one stored under two streams whose newer copy names
    another person (read once for all partitions, then skipped), one tombstoned; with `kits`, that
    many evaluation-kit requests, some people asking twice (routing reads which assets a person
    already had). Returns the records made, by CRM."""
    crms = crm_records(people, accounts, activities, seed=5)
    for crm, data in crms.items():
        for stream, records in (("accounts", data.accounts), ("people", data.people),
                                ("activities", data.activities)):
            store.upsert_snapshots(crm.value, stream, records, cursor=now, now=now)
    sf = crms[Crm.SALESFORCE]
    ghosts = [Activity(id=f"sf-task:ghost-{i}", person_id=f"sf-contact:ghost-{i % 7}",
                       kind=ActivityKind.SAMPLE_REQUEST, occurred_at=now - timedelta(days=i))
              for i in range(20)]
    store.upsert_snapshots(Crm.SALESFORCE.value, "activities", ghosts, cursor=now, now=now)
    if kits:
        asked = [Activity(id=f"sf-task:kit-{i}", person_id=sf.people[i % 97].id, asset_id="evk_7710",
                          kind=ActivityKind.EVAL_KIT_REQUEST, occurred_at=now - timedelta(days=1 + i % 90))
                 for i in range(kits)]
        store.upsert_snapshots(Crm.SALESFORCE.value, "activities", asked, cursor=now, now=now)
    moved = replace(sf.activities[10], person_id=sf.people[-1].id)
    store.upsert_snapshots(Crm.SALESFORCE.value, "activities-archive", [moved], cursor=now,
                           now=now + timedelta(minutes=5))
    store.tombstone(Crm.SALESFORCE.value, "activities", [sf.activities[11].id.split(":", 1)[1]])
    return crms
