"""An hourly sync rescores only what changed or came due, and over a simulated day it plans exactly the
fields and tasks that rescoring everyone would have planned at each hour.

A small sandbox world, one full sync, then 24 hours: each hour the CRMs' clock moves on, marketing
automation logs fresh activity now and then (an evaluation-kit request, a webinar, an unsubscribe)
through the CRMs' own APIs, a rep once moves a request logged against the wrong lead to the right
one, and three runs see the same store and the same CRMs: a dry run rescoring everyone and a dry
run of the hourly sync (each on a copy of the store), whose listings of what would change (every
field, old → new, and every task) must be equal, then the real hourly sync, which writes and moves
on to the next hour. Rescoring everyone merges identity again; the hourly run keeps the last merge
when no person, account or opportunity changed since, and merges again only the groups that changed
when nothing identity reads did (the unsubscribe), so all three ways are compared.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

PLAYBOOK = str(Path(__file__).resolve().parents[2] / "playbooks" / "semiconductor.yaml")
HOURS = 24
ACTIVITY_AT = {2: "evaluation kit", 5: "webinar", 9: "unsubscribe", 14: "evaluation kit", 17: "moved",
               20: "webinar"}


def _writes(summary) -> dict[str, tuple[int, int]]:
    """Per CRM, the field updates and tasks to send (not the open tasks routing found already there:
    an hourly run leaves the people it does not rescore alone)."""
    return {crm: (counts["fields"], counts["tasks"]) for crm, counts in summary.planned.items()}


def _listing(summary) -> list[tuple[str, ...]]:
    assert len(summary.changes) < 500, "the dry run's listing was cut: compare fewer changes"
    return sorted(tuple(row[k] for k in ("crm", "record", "field", "old", "new")) for row in summary.changes)


def _salesforce_as_a_rep(settings):
    """The official Salesforce client, on the sandbox's session, trusting its CA."""
    import requests
    from simple_salesforce import Salesforce

    session = requests.Session()
    session.trust_env = False
    session.verify = str(settings.ca_cert)
    sf = settings.salesforce
    return Salesforce(instance_url=sf.instance_url, session_id=sf.session_id.get_secret_value(),
                      version=sf.api_version, session=session)


def test_hourly_runs_over_a_day_plan_exactly_what_rescoring_everyone_plans(crm_sandbox, prefect_harness,
                                                                          tmp_path):
    from leadloop.cli.demo import MarketingAutomation
    from leadloop.connectors.settings import load_connection
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.options import SyncOptions
    from leadloop.store.db import open_store
    from leadloop.sync import pipeline

    connection = tmp_path / "connection.json"
    db = tmp_path / "state.db"
    with crm_sandbox(connection, size="small", seed=11) as handle:
        clock = handle.core.clock
        at = clock.now()

        def options(path: Path, **more) -> SyncOptions:
            return SyncOptions(connection_file=str(connection), playbook=PLAYBOOK, store_url=f"sqlite:///{path}",
                               at=at, **more)

        first = hourly_sync(options(db))
        assert first.rescored["everyone"] and first.fields_written > 1000

        store = open_store(f"sqlite:///{db}")
        raw, identity = pipeline.load_and_resolve(store, activities=False)
        people = [p for p in pipeline.merged_dataset(raw, identity).people if p.salesforce_lead_id]
        hubspot = [p for p in pipeline.merged_dataset(raw, identity).people
                   if p.hubspot_id and not p.unsubscribed]
        store.close()
        settings = load_connection(connection)
        automation = MarketingAutomation(settings)
        rep = _salesforce_as_a_rep(settings)
        kits: dict[int, str] = {}

        rescored, planned_fields, planned_tasks = [], 0, 0
        identity: dict[str, list[int]] = {"kept": [], "changed": [], "merged": []}
        for hour in range(1, HOURS + 1):
            clock.offset += timedelta(hours=1)
            at = clock.now()
            what = ACTIVITY_AT.get(hour)
            if what == "evaluation kit":
                kits[hour] = automation.request_evaluation_kit(people[hour].salesforce_lead_id)
            elif what == "moved":  # the hour-2 request was logged against the wrong lead
                rep.Task.update(kits[2], {"WhoId": people[hour].salesforce_lead_id})
            elif what == "webinar":
                automation.attend_webinar(people[hour].salesforce_lead_id)
            elif what == "unsubscribe":
                automation.unsubscribe(hubspot[hour].hubspot_id.split(":")[-1])

            everyone_db, hourly_db = tmp_path / f"everyone-{hour}.db", tmp_path / f"hourly-{hour}.db"
            shutil.copy(db, everyone_db)
            shutil.copy(db, hourly_db)
            everyone = hourly_sync(options(everyone_db, dry_run=True, rescore_everyone=True))
            hourly = hourly_sync(options(hourly_db, dry_run=True))
            assert everyone.rescored["everyone"] and not hourly.rescored["everyone"], hour
            assert _listing(hourly) == _listing(everyone), f"hour {hour}: the plans differ"
            assert _writes(hourly) == _writes(everyone), hour
            if what == "moved":  # the lead it was taken from loses its score, the one it went to gains
                changed = {row[1] for row in _listing(hourly)}
                assert {people[2].salesforce_lead_id, people[hour].salesforce_lead_id} <= changed, changed
            real = hourly_sync(options(db))
            assert real.outcome == "ok", hour
            assert _writes(real) == _writes(hourly), hour
            assert hourly.rescored["identity"] == real.rescored["identity"], hour
            rescored.append((hour, real.rescored["people"], real.rescored["of"]))
            identity[real.rescored["identity"]].append(hour)
            planned_fields += sum(p["fields"] for p in real.planned.values())
            planned_tasks += sum(p["tasks"] for p in real.planned.values())
            everyone_db.unlink()
            hourly_db.unlink()

    print("hour, people rescored, of:", rescored, "identity:", identity)
    # the full sync's write-back changed every record in the CRMs: only their modification times, so
    # from the first hour on an hourly run rescores a part
    assert all(people < of for hour, people, of in rescored), rescored
    # the unsubscribe changed a person, not what identity reads: that hour merges that person's group
    # again; hours of activity alone keep the merge
    assert 9 in identity["changed"] and len(identity["kept"]) >= HOURS // 2, identity
    assert planned_fields > 0 and planned_tasks > 0, "the day wrote nothing: the comparison compared nothing"
