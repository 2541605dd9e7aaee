"""A Prefect event for each person a writing run moved into the playbook's top tier, so a team can
automate on it in Prefect (a Slack message, a webhook, a run of another deployment) without code.

The hourly sync and a rescore that writes send them once the run has saved its scores: those are what
the next run compares against, so each move is announced by exactly one run. A dry run or a preview
sends none. Into the top tier means from a lower tier or, for someone scored for the first time, from
none: a store's first sync (or a new playbook) can announce many people at once.

    event     leadloop.person.tier-changed
    resource  leadloop.person.<crm>.<record id>: the person's CRM record (a Salesforce Contact, else
              their Lead, else their HubSpot contact), named with the person's name
    related   leadloop.owner.<owner id> in the role `owner`; leadloop.account.<crm>.<record id> in
              the role `account` when the person has an account; Prefect adds the flow run, flow and
              deployment that sent it
    payload   tier, old_tier ("" for someone new), person, company, crm, record_id, owner_id,
              owner_name, score, top_reason, account_crm, account_record_id, model_version, run_id

The owner is routing's owner for the person in this run, else their owner in the CRM; its id is
routing's owner key (a rep's email, a queue's id) where routing knows the owner, else the CRM user id.
An event holds no email of the person and no credential.

A team's automation (Automations → + in the UI, or `prefect automation create --from-file`; README,
"A Prefect event when someone reaches the top tier"): trigger on the event
`leadloop.person.tier-changed` (narrowed with `match_related` to one owner, if wanted), action *Send a
notification* through a Slack webhook block, with a body such as `{{ event.payload.person }} at {{
event.payload.company }} is now {{ event.payload.tier }}: {{ event.payload.top_reason }} (owner {{
event.payload.owner_name }})`.
"""

from __future__ import annotations

import threading
from typing import Any

from prefect import get_run_logger
from prefect.events import emit_event
from prefect.events.worker import EventsWorker

from leadloop.flows.steps import SyncSummary
from leadloop.sync.workspace import TopTierMove

TIER_CHANGED = "leadloop.person.tier-changed"
FLUSH_SECONDS = 30.0


def emit_tier_changes(summary: SyncSummary) -> int:
    """Send one event per person the run moved into the top tier (none for a dry run or a preview)
    and wait for them to reach the Prefect API; returns how many were sent."""
    if summary.dry_run or not summary.top_tier_moves:
        return 0
    sent = sum(emit_event(**tier_changed(move, summary)) is not None for move in summary.top_tier_moves)
    if sent:
        _flush(sent)
    return sent


def tier_changed(move: TopTierMove, summary: SyncSummary) -> dict[str, Any]:
    """The arguments of `emit_event` for one move."""
    related = []
    if move.owner_id:
        related.append({"prefect.resource.id": f"leadloop.owner.{move.owner_id}",
                        "prefect.resource.role": "owner", "prefect.resource.name": move.owner_name})
    if move.account_record_id:
        account = f"leadloop.account.{move.account_crm}.{move.account_record_id}"
        related.append({"prefect.resource.id": account, "prefect.resource.role": "account",
                        "prefect.resource.name": move.company})
    return {
        "event": TIER_CHANGED,
        "resource": {"prefect.resource.id": f"leadloop.person.{move.crm}.{move.record_id}",
                     "prefect.resource.name": move.name},
        "related": related,
        "payload": {
            "tier": move.tier, "old_tier": move.old_tier, "person": move.name, "company": move.company,
            "crm": move.crm, "record_id": move.record_id, "owner_id": move.owner_id,
            "owner_name": move.owner_name, "score": move.score, "top_reason": move.top_reason,
            "account_crm": move.account_crm, "account_record_id": move.account_record_id,
            "model_version": summary.model_version, "run_id": summary.run_id,
        },
    }


def _flush(sent: int) -> None:
    """Wait (at most FLUSH_SECONDS) until Prefect's events worker, which sends from a thread of its
    own, has handed every event to the API: then they are there before the run ends, for whatever
    reacts to the run's end, and a flow-run process that exits right away drops none."""
    waiting = threading.Thread(target=EventsWorker.instance().wait_until_empty, name="leadloop-events",
                               daemon=True)
    waiting.start()
    waiting.join(FLUSH_SECONDS)
    logger = get_run_logger()
    if waiting.is_alive():
        logger.warning("%d %s events are still on their way to the Prefect API after %.0f s", sent,
                       TIER_CHANGED, FLUSH_SECONDS)
    else:
        logger.info("sent %d %s events (people into the top tier)", sent, TIER_CHANGED)
