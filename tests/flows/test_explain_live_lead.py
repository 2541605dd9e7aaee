"""`leadloop explain --email` on a store two real syncs filled: a lead requests an evaluation kit between
the syncs (as in `make demo`), and explain, run as a command, prints the reason lines each CRM holds
(read back through simple-salesforce and the HubSpot client), the task with its owner, and the tier
change the request caused."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(PROJECT / "playbooks" / "semiconductor.yaml")
_RECORD = re.compile(r"^  (Salesforce \w+|HubSpot contact) ([^\s:]+)")


@pytest.fixture(scope="module")
def evaluated(crm_sandbox, prefect_harness: str, workdir: Path) -> Iterator[dict[str, Any]]:
    """A small sandbox after `crm setup`, a full sync, an evaluation-kit request logged the way
    marketing automation logs it, and an incremental sync."""
    from leadloop.cli.demo import MarketingAutomation, pick_people
    from leadloop.connectors.settings import load_connection
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.options import SyncOptions
    from leadloop.playbook.load import load_playbook
    from leadloop.store.db import open_store
    from leadloop.sync import pipeline

    connection = workdir / "connection.json"
    with crm_sandbox(connection, size="small", seed=11) as handle:
        settings = load_connection(connection)
        store_url = f"sqlite:///{workdir / 'state.db'}"
        options = SyncOptions(connection_file=str(connection), playbook=PLAYBOOK, store_url=store_url)
        hourly_sync(options)
        with open_store(store_url) as store:
            raw, identity = pipeline.load_and_resolve(store)
            dataset = pipeline.merged_dataset(raw, identity)
            cards = pipeline.previous_cards(store)
        lead = pick_people(load_playbook(PLAYBOOK), dataset, cards)["evk"]
        MarketingAutomation(settings).request_evaluation_kit(
            lead.salesforce_contact_id or lead.salesforce_lead_id)
        hourly_sync(options)
        yield {"handle": handle, "store_url": store_url, "lead": lead, "tier_before": cards[lead.id].tier}


def explain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leadloop.cli.app", "explain", *args],
                          capture_output=True, text=True, timeout=300, cwd=PROJECT)


def printed_reasons(output: str) -> dict[str, list[str]]:
    """CRM record id → the reason lines explain printed for it (a record printed as "the same values
    as" another gets that one's lines)."""
    found: dict[str, list[str]] = {}
    current, reading = None, False
    for line in output.splitlines():
        record = _RECORD.match(line)
        if record:
            current, reading = record.group(2), False
            same = re.search(r": the same values as (?:Salesforce \w+|HubSpot contact) (\S+)", line)
            if same:
                found[current] = found[same.group(1)]
            continue
        if current and line.startswith("    Reasons ("):
            reading, found[current] = True, []
        elif reading and line.startswith("      "):
            found[current].append(line.strip())
        else:
            reading = False
    return found


def test_explain_prints_the_reason_lines_each_crm_holds_and_the_task_with_its_owner(evaluated):
    from leadloop.store.db import open_store
    from leadloop.store.lookup import tasks_of_person

    lead = evaluated["lead"]
    with open_store(evaluated["store_url"]) as store:
        tasks = [t for t in tasks_of_person(store, lead.id) if t.status == "open"]
    assert tasks, f"{lead.email} got no task after requesting the evaluation kit"

    result = explain("--email", lead.email.upper(), "--store-url", evaluated["store_url"])

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(lead.name) and f"<{lead.email}>" in out
    printed = printed_reasons(out)
    sf, hs = evaluated["handle"].salesforce(), evaluated["handle"].hubspot()
    in_crm = {}
    if lead.salesforce_contact_id:
        in_crm[lead.salesforce_contact_id] = sf.Contact.get(lead.salesforce_contact_id)["LL_Reasons__c"]
    elif lead.salesforce_lead_id:
        in_crm[lead.salesforce_lead_id] = sf.Lead.get(lead.salesforce_lead_id)["LL_Reasons__c"]
    if lead.hubspot_id:
        contact = hs.crm.contacts.basic_api.get_by_id(lead.hubspot_id, properties=["ll_reasons"])
        in_crm[lead.hubspot_id] = contact.properties["ll_reasons"]
    assert in_crm and all(in_crm.values())
    for record_id, reasons in in_crm.items():
        assert "; ".join(printed.get(record_id, [])) == reasons, out

    for task in tasks:
        if task.crm == "salesforce":
            owner = sf.Task.get(task.crm_task_id)["OwnerId"]
            name = sf.User.get(owner)["Name"]
        else:
            owner = hs.crm.objects.basic_api.get_by_id(
                "tasks", task.crm_task_id, properties=["hubspot_owner_id"]).properties["hubspot_owner_id"]
            name = ""
        crm = {"salesforce": "Salesforce", "hubspot": "HubSpot"}[task.crm]
        assert owner == task.owner
        shown = rf"Task in {crm} {task.crm_task_id} \(open\): to {re.escape(name)}.*\({owner}\), "
        shown += f"due {task.due}"
        assert re.search(shown, out), out

    assert f"tier: {evaluated['tier_before']} → " in out
    assert "evaluation kit" in out.split("What changed", 1)[1].split("Routing", 1)[0]
