"""The sandbox's own speed: world generation and time-to-ready per size (in-process, and for
`leadloop sandbox serve` from process start to its connection file), and requests per second
for a 2,000-record SOQL page (simple-salesforce) and a 100-record HubSpot batch read
(hubspot-api-client), each also with a bare HTTPS client to separate server time from client parsing.

    .venv/bin/python bench/bench_sandbox.py [--sizes tiny,small,medium] [--large] [--requests 30]

Prints one JSON document; the figures in bench/RESULTS.md come from this command. `--large` adds the
generation time of the large world (100,000 people, about 2,000,000 events).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from hubspot import HubSpot
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId
from simple_salesforce import Salesforce

from leadloop.sandbox.server import running_sandbox
from leadloop.sandbox.world import generate_world

SOQL = "SELECT Id, FirstName, LastName, Email, Title, Company, Status, OwnerId, SystemModstamp FROM Lead"
HS_PROPERTIES = ["email", "firstname", "lastname", "jobtitle", "lifecyclestage", "hs_lastmodifieddate"]


def timed(call: Callable[[], Any], n: int) -> dict[str, float]:
    call()  # warm up: connection, TLS handshake
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return {"requests_per_s": round(n / sum(samples), 1),
            "median_ms": round(statistics.median(samples) * 1e3, 1),
            "p95_ms": round(sorted(samples)[int(0.95 * (n - 1))] * 1e3, 1)}


def throughput(size: str, seed: int, n: int) -> dict[str, Any]:
    with running_sandbox(size=size, seed=seed) as handle:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(handle.ca_path)
        sf_conn, hs_conn = handle.connection["salesforce"], handle.connection["hubspot"]
        sf = Salesforce(instance_url=sf_conn["instance_url"], session_id=sf_conn["session_id"],
                        session=session, version="59.0")
        first = sf.query(SOQL)
        assert len(first["records"]) == 2000, f"the {size} world has fewer than 2,000 leads"
        raw_headers = {"Authorization": f"Bearer {sf_conn['session_id']}"}
        query_url = f"{handle.base_url}/services/data/v59.0/query"

        hs = HubSpot(access_token=hs_conn["access_token"], host=hs_conn["host"],
                     ssl_ca_cert=str(handle.ca_path))
        page = hs.crm.contacts.basic_api.get_page(limit=100)
        ids = [c.id for c in page.results]
        batch = BatchReadInputSimplePublicObjectId(inputs=[{"id": i} for i in ids], properties=HS_PROPERTIES)
        hs_url = f"{handle.base_url}/crm/v3/objects/contacts/batch/read"
        hs_headers = {"Authorization": f"Bearer {hs_conn['access_token']}"}
        hs_body = {"inputs": [{"id": i} for i in ids], "properties": HS_PROPERTIES}
        # the HubSpot backend enforces HubSpot's burst limit (190 per 10 s); stay under it
        n_hs = min(n, 80)
        return {
            "soql_2000_rows_simple_salesforce": timed(lambda: sf.query(SOQL), n),
            "soql_2000_rows_bare_https": timed(
                lambda: session.get(query_url, params={"q": SOQL}, headers=raw_headers).content, n),
            "hubspot_batch_read_100_client": timed(lambda: hs.crm.contacts.batch_api.read(batch), n_hs // 2),
            "hubspot_batch_read_100_bare_https": timed(
                lambda: session.post(hs_url, json=hs_body, headers=hs_headers).content, n_hs // 2),
        }


def cli_ready_seconds(size: str, seed: int) -> float:
    """Wall time from `leadloop sandbox serve` starting to its connection file existing."""
    with tempfile.TemporaryDirectory() as tmp:
        connection_file = Path(tmp) / "connection.json"
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "leadloop.cli.app", "sandbox", "serve", "--size", size,
             "--seed", str(seed), "--port", "0", "--connection-file", str(connection_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).parents[1])
        try:
            while not connection_file.exists():
                if process.poll() is not None:
                    raise RuntimeError("leadloop sandbox serve exited early")
                time.sleep(0.02)
            return round(time.perf_counter() - started, 2)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny,small,medium")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--large", action="store_true", help="also time generating the large world")
    parser.add_argument("--throughput-size", default="medium")
    args = parser.parse_args()

    result: dict[str, Any] = {"generate_s": {}, "ready_s": {}, "cli_ready_s": {}}
    for size in args.sizes.split(","):
        started = time.perf_counter()
        world = generate_world(size, args.seed)
        result["generate_s"][size] = {"seconds": round(time.perf_counter() - started, 2),
                                      "people": len(world.humans), "accounts": len(world.companies),
                                      "events": len(world.events)}
        del world
        started = time.perf_counter()
        with running_sandbox(size=size, seed=args.seed):
            result["ready_s"][size] = round(time.perf_counter() - started, 2)
        result["cli_ready_s"][size] = cli_ready_seconds(size, args.seed)
    if args.large:
        started = time.perf_counter()
        world = generate_world("large", args.seed)
        result["generate_s"]["large"] = {"seconds": round(time.perf_counter() - started, 2),
                                         "people": len(world.humans), "accounts": len(world.companies),
                                         "events": len(world.events)}
        del world
    result["throughput"] = {"size": args.throughput_size,
                            **throughput(args.throughput_size, args.seed, args.requests)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
