"""Digest the demo world's scorecards and what one sync writes to the CRMs, to prove a refactor changed
neither.

Everything goes through the command line in subprocesses, so the same tool runs against an older
commit whose modules had other names (`--module flows.cli --pythonpath /tmp/old`). On a sandbox of
size small, seed 7, whose world is placed relative to the scoring time rather than the wall clock (the
generator places every activity relative to its `now`, so a world generated a minute later scores
differently; the sandbox's admin API sets its clock to `--at`, regenerates the world, then lets the
clock run from real time again):

1. `crm setup`, `sandbox export`, then `score` the exported world at a fixed time: the cards digest is
   the sha256 of the scorecards JSON made canonical (sorted keys, people and accounts sorted by id).
2. One real `sync` at the same time into a fresh SQLite store; the sandbox is then stopped with its
   state saved in a data directory (`sandbox export` writes the generated world, not the CRMs' records,
   so it cannot show what was written). The writes digest covers every leadloop field value (`LL_*` in
   Salesforce, `ll_*` in HubSpot) of each person, keyed by CRM, object and email, of each account, keyed
   by name and website, and every task leadloop created (it has an `LL_Key__c` / `ll_key`), keyed by
   its person's email and that key, owners by email. CRM record ids and creation or modification times
   stay out.

    .venv/bin/python bench/digest_demo.py                      # this checkout
    .venv/bin/python bench/digest_demo.py --json
    git worktree add /tmp/old-f62a841 f62a841              # the last commit before the restructure
    .venv/bin/python bench/digest_demo.py --module flows.cli --pythonpath /tmp/old-f62a841

The sandbox's commands come from the `leadloop.commands` entry point of the installed leadloop, so an
older CLI serves this checkout's sandbox: the world is the same on both sides of a comparison. Before
58c37e5 (`routing.tasks_in`) a task went to every CRM holding its person, so older commits write more
tasks by design.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = Path("playbooks") / "semiconductor.yaml"
AT = "2026-11-02T09:00:00+00:00"
SERVE_TIMEOUT_SECONDS = 120


def canonical_sha256(value: Any) -> str:
    """sha256 of `value` as JSON with sorted keys and no whitespace."""
    body = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


class Cli:
    """Runs `python -m <module> ...` with the chosen PYTHONPATH, logging each command's output."""

    def __init__(self, module: str, pythonpath: str | None, workdir: Path) -> None:
        self.module, self.workdir = module, workdir
        self.env = dict(os.environ)
        if pythonpath:
            self.env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, os.environ.get("PYTHONPATH"))
                                                     if p)
        # A Prefect home of its own: the sync's ephemeral API does not share a database with other runs.
        self.env.setdefault("PREFECT_HOME", str(workdir / "prefect"))

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", self.module, *args]

    def run(self, *args: str) -> None:
        words = [arg for arg in args[:2] if not arg.startswith("-")]
        log = self.workdir / f"{'-'.join(words)}.log"
        with log.open("ab") as out:
            done = subprocess.run(self.command(*args), cwd=self.workdir, env=self.env, stdout=out,
                                  stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            sys.exit(f"`{' '.join(words)}` exited {done.returncode}; its output:\n"
                     f"{log.read_text()[-3000:]}")

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(self.command(*args), cwd=self.workdir, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT)


def serve_sandbox(cli: Cli, connection: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    """Start `sandbox serve` (small, seed 7, a free port); returns once the connection file exists."""
    log = cli.workdir / "sandbox.log"
    server = cli.start("sandbox", "serve", "--size", "small", "--seed", "7", "--port", "0",
                       "--connection-file", str(connection), "--data-dir", str(data_dir), log=log)
    deadline = time.monotonic() + SERVE_TIMEOUT_SECONDS
    while not (connection.exists() and b"sandbox ready" in log.read_bytes()):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            sys.exit(f"the sandbox did not start; its output:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return server


def pin_world(connection: Path) -> None:
    """Regenerate the sandbox's world as of `AT` (small, seed 7) through its admin API."""
    import requests

    settings = json.loads(connection.read_text())
    admin, session = settings["sandbox_admin_url"], requests.Session()
    session.trust_env = False

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = session.post(f"{admin}{path}", json=body, verify=settings["ca_cert"], timeout=120)
        response.raise_for_status()
        return response.json()

    for _ in range(3):  # the clock runs on between the two calls: under a second keeps the same `now`
        post("/clock", {"now": AT})
        post("/seed", {"size": "small", "seed": 7})
        world = session.get(f"{admin}/export", verify=settings["ca_cert"], timeout=300)
        placed = world.json()["generated_at"]
        if datetime.fromisoformat(placed) == datetime.fromisoformat(AT):
            break
    else:
        sys.exit(f"the sandbox placed its world at {placed}, not {AT}")
    post("/clock", {})


def stop_sandbox(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM: the sandbox saves its state in its data directory, then exits."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ---- the scorecards -------------------------------------------------------------------------------

def canonical_cards(cards: dict[str, Any]) -> dict[str, Any]:
    """The `score` output with people, accounts and skipped records in a stable order."""
    ordered = dict(cards)
    ordered["people"] = sorted(cards.get("people", []), key=lambda card: card["person_id"])
    ordered["accounts"] = sorted(cards.get("accounts", []), key=lambda card: card["account_id"])
    ordered["invalid_records"] = sorted(cards.get("invalid_records", []), key=str)
    return ordered


# ---- what leadloop wrote --------------------------------------------------------------------------

def _leadloop_fields(record: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name.startswith(prefix) and value is not None}


def _grouped(entries: Iterable[tuple[tuple[str, ...], dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per key, sorted; values sharing a key (duplicate emails) in a stable order."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for key, values in entries:
        groups[key].append(values)
    return [{"key": list(key), "values": sorted(values, key=canonical_sha256)}
            for key, values in sorted(groups.items())]


def _email(value: Any) -> str:
    return str(value).strip().lower() if value else "(no email)"


def salesforce_writes(org: dict[str, Any]) -> tuple[list, list, list]:
    """(people entries, account entries, task entries) of the Salesforce org's tables."""
    tables = {name: table["rows"] for name, table in org["tables"].items()}
    people = [(("salesforce", obj, _email(row.get("Email"))), fields)
              for obj in ("Lead", "Contact") for row in tables.get(obj, [])
              if (fields := _leadloop_fields(row, "LL_"))]
    accounts = [(("salesforce", "Account", str(row.get("Name")), str(row.get("Website"))), fields)
                for row in tables.get("Account", []) if (fields := _leadloop_fields(row, "LL_"))]
    email_of = {row["Id"]: _email(row.get("Email"))
                for obj in ("Lead", "Contact", "User") for row in tables.get(obj, [])}
    tasks = [(("salesforce", email_of.get(row.get("WhoId"), "(no person)"), row["LL_Key__c"]), {
        "subject": row.get("Subject"), "description": row.get("Description"),
        "due": row.get("ActivityDate"), "priority": row.get("Priority"), "status": row.get("Status"),
        "owner": email_of.get(row.get("OwnerId"), row.get("OwnerId")), "deleted": row.get("IsDeleted"),
        **_leadloop_fields(row, "LL_"),
    }) for row in tables.get("Task", []) if row.get("LL_Key__c")]
    return people, accounts, tasks


def hubspot_writes(portal: dict[str, Any]) -> tuple[list, list, list]:
    """(people entries, account entries, task entries) of the HubSpot portal's records."""
    # A stored record is [id, properties, created ms, modified ms, archived, ...].
    records = {kind: {str(rec[0]): (rec[1], rec[4]) for rec in recs}
               for kind, recs in portal["records"].items()}
    contacts, companies = records.get("contacts", {}), records.get("companies", {})
    people = [(("hubspot", "contact", _email(props.get("email"))), fields)
              for props, _ in contacts.values() if (fields := _leadloop_fields(props, "ll_"))]
    accounts = [(("hubspot", "company", str(props.get("name")), str(props.get("domain"))), fields)
                for props, _ in companies.values() if (fields := _leadloop_fields(props, "ll_"))]
    contact_emails = {cid: _email(props.get("email")) for cid, (props, _) in contacts.items()}
    task_people: dict[str, list[str]] = defaultdict(list)
    for from_kind, to_kind, from_id, to_id, *_ in portal["associations"]:
        if (from_kind, to_kind) == ("tasks", "contacts"):
            task_people[str(from_id)].append(contact_emails.get(str(to_id), "(unknown contact)"))
    owner_email = {oid: owner.get("email") for oid, owner in portal.get("owners", {}).items()}
    tasks = [(("hubspot", ",".join(sorted(task_people.get(tid, ["(no person)"]))), props["ll_key"]), {
        "subject": props.get("hs_task_subject"), "body": props.get("hs_task_body"),
        "due": props.get("hs_timestamp"), "priority": props.get("hs_task_priority"),
        "status": props.get("hs_task_status"), "type": props.get("hs_task_type"),
        "owner": owner_email.get(props.get("hubspot_owner_id"), props.get("hubspot_owner_id")),
        "archived": archived, **_leadloop_fields(props, "ll_"),
    }) for tid, (props, archived) in records.get("tasks", {}).items() if props.get("ll_key")]
    return people, accounts, tasks


def crm_writes(state_db: Path) -> dict[str, list[dict[str, Any]]]:
    """Every leadloop field value and task in the saved sandbox state, keyed without CRM ids."""
    with sqlite3.connect(state_db) as db:
        state = {name: json.loads(body) for name, body in db.execute("SELECT name, body FROM state")}
    people: list = []
    accounts: list = []
    tasks: list = []
    for part in (salesforce_writes(state["backend:salesforce"]["org"]),
                 hubspot_writes(state["backend:hubspot"])):
        people += part[0]
        accounts += part[1]
        tasks += part[2]
    return {"people": _grouped(people), "accounts": _grouped(accounts), "tasks": _grouped(tasks)}


# ---- the run --------------------------------------------------------------------------------------

def digest(module: str, pythonpath: str | None, playbook: Path, workdir: Path) -> dict[str, Any]:
    """Set up the sandbox, score its exported world, sync once; the two digests and their counts."""
    cli = Cli(module, pythonpath, workdir)
    connection, data_dir = workdir / "conn.json", workdir / "sandbox-data"
    world, cards_file = workdir / "world.json", workdir / "cards.json"
    server = serve_sandbox(cli, connection, data_dir)
    try:
        pin_world(connection)
        cli.run("crm", "setup", "--connection-file", str(connection))
        cli.run("sandbox", "export", "--connection-file", str(connection), "--out", str(world))
        cli.run("score", "--playbook", str(playbook), "--data", str(world), "--at", AT,
                "--out", str(cards_file))
        cli.run("sync", "--connection-file", str(connection), "--playbook", str(playbook), "--at", AT,
                "--store-url", f"sqlite:///{workdir / 'state.db'}")
    finally:
        stop_sandbox(server)
    cards = canonical_cards(json.loads(cards_file.read_text()))
    writes = crm_writes(data_dir / "sandbox.db")
    return {
        "module": module, "pythonpath": pythonpath, "playbook": str(playbook), "at": AT,
        "cards_sha256": canonical_sha256(cards),
        "cards": {"people": len(cards["people"]), "accounts": len(cards["accounts"]),
                  "invalid_records": len(cards["invalid_records"])},
        "writes_sha256": canonical_sha256(writes),
        "writes": {name: sum(len(entry["values"]) for entry in entries) for name, entries in writes.items()},
        "writes_by_part_sha256": {name: canonical_sha256(entries) for name, entries in writes.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--module", default="leadloop.cli.app",
                        help="the CLI module to run with `python -m` (an old commit: cli.app or flows.cli)")
    parser.add_argument("--pythonpath", help="prepended to PYTHONPATH for the CLI's subprocesses")
    parser.add_argument("--playbook", type=Path,
                        help="default: playbooks/semiconductor.yaml under --pythonpath, else this checkout's")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the digests as JSON")
    args = parser.parse_args(argv)
    playbook = args.playbook or next(
        p for p in (Path(args.pythonpath or ROOT) / PLAYBOOK, ROOT / PLAYBOOK) if p.exists())
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = digest(args.module, args.pythonpath, playbook.resolve(), args.workdir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="leadloop-digest-") as tmp:
            result = digest(args.module, args.pythonpath, playbook.resolve(), Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"cards  {result['cards_sha256']}  {result['cards']}")
        print(f"writes {result['writes_sha256']}  {result['writes']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
