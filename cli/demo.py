"""`leadloop demo`: the whole loop on the embedded sandbox, end to end, in a few minutes.

It starts the sandbox CRMs in a separate process (leadloop then talks to them over HTTPS exactly as
it would to Salesforce and HubSpot), creates leadloop's fields, runs a full sync, plays a marketing
automation system that logs fresh activity (an evaluation-kit request, a webinar attendance, an
unsubscribe) straight through the CRM APIs, runs an incremental sync, and prints what changed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.settings import ConnectionSettings, load_connection
from leadloop.crm.dataset import Dataset
from leadloop.crm.records import ActivityKind
from leadloop.playbook.load import load_playbook
from leadloop.playbook.model import Playbook
from leadloop.scoring.scorecard import ScoreCard


class DemoError(RuntimeError):
    """The demo could not run (the sandbox did not start, a step failed); the message says why."""


@contextmanager
def sandbox_process(workdir: Path, size: str) -> Iterator[Path]:
    """The sandbox CRMs in their own process; yields the connection file once they serve."""
    connection = workdir / "connection.json"
    connection.unlink(missing_ok=True)
    log = (workdir / "sandbox.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "leadloop.cli.app",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--size",
            size,
            "--connection-file",
            str(connection),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not connection.exists():
            if process.poll() is not None:
                said = (workdir / "sandbox.log").read_text(errors="replace").strip().splitlines()
                last = f": {said[-1]}" if said and said[-1].startswith("error:") else ""
                raise DemoError(f"the sandbox stopped at start{last}; see {workdir / 'sandbox.log'}")
            if time.monotonic() > deadline:
                raise DemoError("the sandbox did not start within 120 s")
            time.sleep(0.2)
        yield connection
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class MarketingAutomation:
    """Stands in for the marketing-automation system that logs activity into the sandbox CRMs, through
    the CRMs' own APIs. It is not leadloop: leadloop's own writes go through its allowlisted sinks."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = str(settings.ca_cert)
        self.sf = settings.salesforce
        self.hs = settings.hubspot

    def _sf(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self.sf is not None and self.sf.session_id is not None
        url = f"{self.sf.instance_url}/services/data/v{self.sf.api_version}/{path}"
        headers = {"Authorization": f"Bearer {self.sf.session_id.get_secret_value()}"}
        response = self.http.request(method, url, headers=headers, timeout=30, **kwargs)
        if response.status_code >= 300:
            raise DemoError(
                f"Salesforce {method} {path} answered {response.status_code}: {response.text[:200]}"
            )
        return response.json() if response.content else None

    # What marketing automation logs when someone asks for an evaluation kit on the product page.
    EVALUATION_KIT = "VoltEdge SiC MOSFETs evaluation kit"
    EVALUATION_KIT_URL = "https://www.voltaris-semi.com/products/voltedge-sic/evaluation-kit"

    def request_evaluation_kit(self, who_id: str) -> str:
        return self._sf(
            "POST",
            "sobjects/Task",
            json={
                "WhoId": who_id,
                "Subject": f"Form fill: Request {self.EVALUATION_KIT}",
                "Status": "Completed",
                "ActivityDate": datetime.now(UTC).date().isoformat(),
                "Description": f"URL: {self.EVALUATION_KIT_URL}\nAsset: {self.EVALUATION_KIT}\n"
                "Asset type: evaluation_kit\nForm: Evaluation kit request",
            },
        )["id"]

    def attend_webinar(self, who_id: str) -> str | None:
        rows = self._sf(
            "GET",
            "query",
            params={"q": "SELECT Id, Name FROM Campaign WHERE Type = 'Webinar' ORDER BY Name LIMIT 1"},
        )["records"]
        if not rows:
            return None
        key = "ContactId" if who_id.startswith("003") else "LeadId"
        self._sf(
            "POST",
            "sobjects/CampaignMember",
            json={"CampaignId": rows[0]["Id"], key: who_id, "Status": "Attended"},
        )
        return rows[0]["Name"]

    def unsubscribe(self, hubspot_id: str) -> None:
        assert self.hs is not None
        response = self.http.patch(
            f"{self.hs.host}/crm/v3/objects/contacts/{hubspot_id}",
            headers={"Authorization": f"Bearer {self.hs.access_token.get_secret_value()}"},
            json={"properties": {"hs_email_optout": "true"}},
            timeout=30,
        )
        if response.status_code >= 300:
            raise DemoError(f"HubSpot unsubscribe answered {response.status_code}: {response.text[:200]}")


def escalation_min_fit(playbook: Playbook, kind: ActivityKind, asset_type: str) -> float | None:
    """The lowest fit at which an activity of `kind` on an asset of `asset_type` escalates, or None."""
    fits = [
        rule.min_fit
        for rule in playbook.escalations
        if kind in rule.kinds and (rule.asset_types is None or asset_type in rule.asset_types)
    ]
    return min(fits, default=None)


def pick_people(playbook: Playbook, dataset: Dataset, cards: dict[str, ScoreCard]) -> dict[str, Any]:
    """Who gets the fresh activity: well-fitting people not yet in the top tier (one for the
    evaluation-kit request, fitting enough for the playbook to escalate it, one for the webinar)
    and a nurtured person who unsubscribes."""
    people = {p.id: p for p in dataset.people}
    ranked = sorted(
        (
            c
            for c in cards.values()
            if not c.disqualified and c.tier != playbook.top_tier and people.get(c.person_id)
        ),
        key=lambda c: (-c.fit, c.person_id),
    )
    in_salesforce = [
        c
        for c in ranked
        if people[c.person_id].salesforce_contact_id or people[c.person_id].salesforce_lead_id
    ]
    in_hubspot = [
        c for c in ranked if people[c.person_id].hubspot_id and not people[c.person_id].unsubscribed
    ]
    min_fit = escalation_min_fit(playbook, ActivityKind.EVAL_KIT_REQUEST, "evaluation_kit")
    escalating = [c for c in in_salesforce if min_fit is not None and c.fit >= min_fit and c.account_id]
    chosen: dict[str, Any] = {}
    evk = (escalating or in_salesforce)[:1]
    if evk:
        chosen["evk"] = people[evk[0].person_id]
    others = [c for c in in_salesforce if people[c.person_id] not in chosen.values()]
    if others:
        chosen["webinar"] = people[others[0].person_id]
    rest = [c for c in in_hubspot if people[c.person_id] not in chosen.values()]
    if rest:
        chosen["unsubscribe"] = people[rest[0].person_id]
    return chosen


def _sf_id(person: Any) -> str:
    return person.salesforce_contact_id or person.salesforce_lead_id


def _stats(settings: ConnectionSettings) -> dict[str, Any]:
    if not settings.sandbox_admin_url:
        return {}
    session = requests.Session()
    session.trust_env = False
    session.verify = str(settings.ca_cert)
    return session.get(f"{settings.sandbox_admin_url}/stats", timeout=30).json()


def run_demo(console: Console, *, size: str, playbook: str, workdir: str) -> None:
    from leadloop.cli.output import print_summary, progress_bars
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.options import SyncOptions
    from leadloop.sync import pipeline

    started = time.monotonic()
    folder = Path(workdir).resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    store_url = f"sqlite:///{(folder / 'state.db').resolve()}"
    book = load_playbook(playbook)
    console.rule("leadloop demo")
    console.print(f"Starting the sandbox CRMs (size {size}) ...")
    with sandbox_process(folder, size) as connection_file:
        settings = load_connection(connection_file)
        console.print(
            f"Sandbox ready at {settings.safe_summary()['salesforce']} "
            f"({time.monotonic() - started:.1f} s). Creating leadloop's fields (crm setup) ..."
        )
        mapping = load_mapping(book.mapping)
        from leadloop.connectors.hubspot.setup import setup as hubspot_setup
        from leadloop.connectors.salesforce.setup import setup as salesforce_setup

        actions = salesforce_setup(settings, mapping) + hubspot_setup(settings, mapping)
        console.print(f"  {len(actions)} set-up steps: fields, property groups, permission sets, list view")

        options = SyncOptions(connection_file=str(connection_file), playbook=playbook, store_url=store_url)
        console.print("Full sync (Prefect flow; the first run starts Prefect's local server) ...")
        with progress_bars():
            first = hourly_sync(options)
        print_summary(first, "Full sync")

        runtime = pipeline.open_runtime(str(connection_file), None, store_url, kind="demo")
        raw, identity = pipeline.load_and_resolve(runtime.store)
        dataset = pipeline.merged_dataset(raw, identity)
        cards = pipeline.previous_cards(runtime.store)
        runtime.close()
        chosen = pick_people(book, dataset, cards)
        automation = MarketingAutomation(settings)
        console.print("Fresh activity arrives in the CRMs:")
        if "evk" in chosen:
            automation.request_evaluation_kit(_sf_id(chosen["evk"]))
            console.print(
                f"  {chosen['evk'].name} requested the {automation.EVALUATION_KIT} (Salesforce Task)"
            )
        if "webinar" in chosen:
            webinar = automation.attend_webinar(_sf_id(chosen["webinar"]))
            if webinar:
                console.print(f"  {chosen['webinar'].name} attended the webinar {webinar!r} (CampaignMember)")
        if "unsubscribe" in chosen:
            automation.unsubscribe(chosen["unsubscribe"].hubspot_id)
            console.print(f"  {chosen['unsubscribe'].name} unsubscribed (HubSpot contact)")

        console.print("Incremental sync ...")
        with progress_bars():
            second = hourly_sync(options)
        print_summary(second, "Incremental sync")
        stats = _stats(settings)

    _print_outcome(console, book, store_url, first, second, stats, chosen)
    evk = chosen.get("evk")
    explain = (f"[bold]leadloop explain --email {evk.email} --store-url {store_url}[/bold] shows why "
               f"{evk.name} is where they are, from the store" if evk is not None and evk.email
               else "[bold]leadloop explain --email …[/bold] shows any person's reasons, from the store")
    console.print(
        f"\nDemo finished in {time.monotonic() - started:.0f} s. Look further: "
        "[bold]make serve[/bold] opens the Prefect UI at http://127.0.0.1:4200 with the four "
        f"deployments; {explain}."
    )


def _print_outcome(
    console: Console,
    book: Playbook,
    store_url: str,
    first: Any,
    second: Any,
    stats: dict[str, Any],
    chosen: dict[str, Any],
) -> None:
    from leadloop.store.db import open_store
    from leadloop.store.writeplan import desired_person_fields
    from leadloop.sync import pipeline

    store = open_store(store_url)
    try:
        _raw, identity = pipeline.load_and_resolve(store)
        people = {p.id: p for p in identity.people}
        accounts = {a.id: a for a in identity.accounts}
        cards = pipeline.previous_cards(store)
    finally:
        store.close()
    ranked = sorted(cards.values(), key=lambda c: (book.tier_rank(c.tier), -c.score, c.person_id))
    fresh = [cards[p.id] for p in chosen.values() if p.id in cards]
    top = [c for c in ranked if c not in fresh][: max(0, 5 - len(fresh))]
    console.rule("The people with fresh activity, then the top leads")
    for card in fresh + top:
        person = people.get(card.person_id)
        account = accounts.get(card.account_id or "")
        who = (
            f"{person.name if person else card.person_id} — {person.title if person else ''} at "
            f"{account.name if account else '(no account)'}"
        )
        lines = [
            f"[bold]{card.tier}[/bold] · score {card.score:.0f} (fit {card.fit:.0f}, intent "
            f"{card.intent:.0f}) · stage {card.stage or '-'} · profile {card.profile or '-'}"
        ]
        written = desired_person_fields(card)["reasons"]  # as the CRMs got them: they add up to the score
        lines += [f"  {line}" for line in str(written).split("; ")]
        note = second.handoff_notes.get(card.person_id) or first.handoff_notes.get(card.person_id)
        if note:
            lines += ["", "[dim]Handoff note (task body):[/dim]", note]
        console.print(Panel("\n".join(lines), title=who, title_align="left"))
    tasks = Counter(first.tasks_by_owner) + Counter(second.tasks_by_owner)
    if tasks:
        table = Table(title="Tasks created per rep", title_justify="left")
        table.add_column("rep")
        table.add_column("tasks", justify="right")
        for rep, n in tasks.most_common():
            table.add_row(rep, str(n))
        console.print(table)
    calls = stats.get("by_crm") or {}
    if calls:
        console.print(
            "API calls the sandbox counted: " + ", ".join(f"{crm} {n:,}" for crm, n in calls.items())
        )
    if chosen:
        console.print(
            "Fresh activity → new tier: "
            + "; ".join(
                f"{person.name}: {cards[person.id].tier if person.id in cards else '?'}"
                for person in chosen.values()
            )
        )
