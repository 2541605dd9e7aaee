"""API economy of the Salesforce connector on the sandbox: records per call against each API's
maximum (query 2,000 rows per page; sObject Collections 200 records per call), and the ratio against
a naive per-record approach (one GET per record read, one PATCH per record written, one POST per task).

    .venv/bin/python bench/bench_salesforce_api.py [--size medium] [--seed 7] [--updates 5000]

Prints one JSON document; the figures in the report come from this command.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date

from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.salesforce.client import salesforce_client
from leadloop.connectors.salesforce.setup import setup
from leadloop.connectors.salesforce.sink import COLLECTION_LIMIT, SalesforceSink
from leadloop.connectors.salesforce.source import SalesforceSource
from leadloop.connectors.settings import ConnectionSettings
from leadloop.crm.changes import FieldUpdate, ObjectType, Priority, TaskUpsert
from leadloop.crm.ports import CallCounter
from leadloop.crm.records import Crm
from leadloop.sandbox.server import running_sandbox

QUERY_MAX = 2000
UPDATE = "composite/sobjects:update"


def fewest(n: int, per_call: int) -> int:
    return max(1, -(-n // per_call))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="medium")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--updates", type=int, default=5000, help="records written back (two fields each)")
    args = parser.parse_args()

    started = time.perf_counter()
    with running_sandbox(size=args.size, seed=args.seed) as handle:
        loaded = time.perf_counter() - started
        settings = ConnectionSettings(**{k: v for k, v in handle.connection.items() if k != "hubspot"})
        mapping = load_mapping()
        setup(settings, mapping)
        counter = CallCounter()
        client = salesforce_client(settings.salesforce, settings.ca_cert, counter=counter)
        source = SalesforceSource(client, mapping.salesforce)

        pulls = {}
        lead_ids: list[str] = []
        t0 = time.perf_counter()
        for stream in source.streams():
            rows = 0
            for page in source.pull(stream, None):
                rows += len(page.records) + len(page.deleted) + len(page.rejected)
                if stream == "Lead":
                    lead_ids += [r.salesforce_lead_id for r in page.records]
            calls = counter.calls.get(f"query:{stream}", 0)
            pulls[stream] = {"rows": rows, "query_calls": calls, "rows_per_call": round(rows / calls, 1),
                             "efficiency_vs_fewest_calls": round(fewest(rows, QUERY_MAX) / calls, 3)}
        pull_seconds = time.perf_counter() - t0
        total_rows = sum(p["rows"] for p in pulls.values())
        query_calls = sum(p["query_calls"] for p in pulls.values())

        targets = lead_ids[: args.updates]
        updates = [FieldUpdate(crm=Crm.SALESFORCE, object_type=ObjectType.PERSON, record_id=i, field=f,
                               value=v) for i in targets for f, v in (("score", 61), ("tier", "B"))]
        owner = client.sf.query("SELECT Id FROM User WHERE IsActive = true LIMIT 1")["records"][0]["Id"]
        tasks = [TaskUpsert(crm=Crm.SALESFORCE, key=f"bench-{i}", owner_id=owner, subject="Follow up",
                            body="bench", due_date=date(2030, 1, 1), priority=Priority.NORMAL,
                            person_record_id=i) for i in targets[:1000]]
        before = dict(counter.calls)
        t0 = time.perf_counter()
        sink = SalesforceSink(client, mapping.salesforce)
        written = sink.write_fields(updates)
        upserted = sink.upsert_tasks(tasks)
        write_seconds = time.perf_counter() - t0
        update_calls = counter.calls.get(UPDATE, 0) - before.get(UPDATE, 0)
        task_calls = counter.calls.get("composite/sobjects:upsert Task", 0)

    report = {
        "command": f".venv/bin/python bench/bench_salesforce_api.py --size {args.size} --seed {args.seed} "
                   f"--updates {args.updates}",
        "sandbox_load_seconds": round(loaded, 1),
        "pull": {"streams": pulls, "rows": total_rows, "query_calls": query_calls,
                 "seconds": round(pull_seconds, 1),
                 "rows_per_call_over_max_where_a_full_page_exists": {
                     s: round(p["rows_per_call"] / QUERY_MAX, 3) for s, p in pulls.items()
                     if p["rows"] >= QUERY_MAX},
                 "naive_calls_one_get_per_row": total_rows,
                 "ratio_naive_to_actual": round(total_rows / query_calls, 1)},
        "write_fields": {"records": len(targets), "field_updates": len(updates), "calls": update_calls,
                         "records_per_call": round(len(targets) / update_calls, 1),
                         "fraction_of_max": round(len(targets) / update_calls / COLLECTION_LIMIT, 3),
                         "efficiency_vs_fewest_calls": round(
                             fewest(len(targets), COLLECTION_LIMIT) / update_calls, 3),
                         "ok": sum(r.ok for r in written), "naive_calls_one_patch_per_record": len(targets),
                         "ratio_naive_to_actual": round(len(targets) / update_calls, 1)},
        "upsert_tasks": {"tasks": len(tasks), "calls": task_calls,
                         "fraction_of_max": round(len(tasks) / task_calls / COLLECTION_LIMIT, 3),
                         "efficiency_vs_fewest_calls": round(
                             fewest(len(tasks), COLLECTION_LIMIT) / task_calls, 3),
                         "ok": sum(r.ok for r in upserted),
                         "ratio_naive_to_actual": round(len(tasks) / task_calls, 1)},
        "write_seconds": round(write_seconds, 1),
        "api_usage": f"{client.usage.used}/{client.usage.limit}" if client.usage else None,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
