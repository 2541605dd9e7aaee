"""A writing run sends a Prefect event `leadloop.person.tier-changed` for each person it moved into the
playbook's top tier, read back here from the Prefect API: one per person its summary and artifact
count, with the tier, the person and the owner; none from a dry run, none from a run that moves no one.
A real Prefect engine (the session's harness), a sandbox (size small) and a fresh SQLite store."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(PROJECT / "playbooks" / "semiconductor.yaml")
TIER_CHANGED = "leadloop.person.tier-changed"


@pytest.fixture(scope="module")
def runs(crm_sandbox, prefect_harness: str, workdir: Path) -> Iterator[dict[str, Any]]:
    """On a sandbox after `crm setup`, into a fresh store: a dry run, a sync, and a sync right after it
    (the same moment to score at, so no tier can move)."""
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.options import SyncOptions
    from leadloop.flows.steps import summary_of
    from leadloop.playbook.load import load_playbook

    connection = workdir / "connection.json"
    with crm_sandbox(connection, size="small", seed=7) as handle:
        options = SyncOptions(connection_file=str(connection), playbook=PLAYBOOK, at=datetime.now(UTC),
                              store_url=f"sqlite:///{workdir / 'state.db'}")
        dry = summary_of(hourly_sync(options.model_copy(update={"dry_run": True})))
        first = summary_of(hourly_sync(options))
        second = summary_of(hourly_sync(options))
        yield {"dry": dry, "first": first, "second": second, "handle": handle, "connection": connection,
               "top": load_playbook(PLAYBOOK).top_tier, "store_url": options.store_url}


def run_events(flow_run_id: str, name: str = TIER_CHANGED) -> list[Any]:
    """Every event named `name` that the flow run sent, from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

    wanted = EventFilter(event=EventNameFilter(name=[name]),
                         related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]))
    with get_client(sync_client=True) as client:
        page = client.read_events(filter=wanted, limit=50)  # the most the API gives at once
        events = list(page.events)
        while page.next_page is not None:
            page = client.read_events_page(str(page.next_page))
            events += page.events
    return events


def events_once(flow_run_id: str, count: int, timeout: float = 90.0) -> list[Any]:
    """The run's tier-changed events once `count` of them are in (the server stores events in the
    background), or whatever is in at the deadline."""
    deadline = time.monotonic() + timeout
    while len(events := run_events(flow_run_id)) < count and time.monotonic() < deadline:
        time.sleep(1)
    return events


def events_after_the_run_ended(flow_run_id: str, timeout: float = 90.0) -> list[Any]:
    """The run's tier-changed events, read once the API holds the event of its end: it sends its own
    before it reports its state, so by then they are in."""
    deadline = time.monotonic() + timeout
    while not run_events_of_resource(flow_run_id) and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(2)  # the server stores what it received in batches: leave the last one time to land
    return run_events(flow_run_id)


def run_events_of_resource(flow_run_id: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    ended = EventFilter(event=EventNameFilter(name=["prefect.flow-run.Completed"]),
                        resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]))
    with get_client(sync_client=True) as client:
        return list(client.read_events(filter=ended, limit=10).events)


def into_top(summary: Any, top: str) -> int:
    """People the run moved into the top tier, by its summary's tier changes (`old → new`)."""
    return sum(n for move, n in summary.tier_changes.items()
               if move.endswith(f"→ {top}") and not move.startswith(f"{top} →"))


def artifact_rows(flow_run_id: str, key: str) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


def test_a_sync_sends_one_event_per_person_it_moved_into_the_top_tier(runs):
    first, top = runs["first"], runs["top"]
    expected = into_top(first, top)
    assert expected > 0, first.tier_changes
    events = events_once(first.run_id, expected)
    assert len(events) == expected
    assert len({e.resource.id for e in events}) == expected  # one each
    # the same people the run's artifact lists as moved into the top tier (it lists the best first)
    listed = [row["name"] for row in artifact_rows(first.run_id, "hourly-sync-tier-changes")
              if row["new tier"] == top]
    assert Counter(listed) == Counter(e.resource.name for e in events)


def test_each_event_names_the_tier_the_person_and_their_owner(runs):
    first, top = runs["first"], runs["top"]
    events = events_once(first.run_id, into_top(first, top))
    assert events
    for event in events:
        payload = event.payload
        assert payload["tier"] == top and payload["old_tier"] == ""  # a fresh store: everyone is new
        assert payload["person"] == event.resource.name and payload["person"]
        assert event.resource.id == f"leadloop.person.{payload['crm']}.{payload['record_id']}"
        assert payload["crm"] in ("salesforce", "hubspot") and payload["record_id"]
        assert payload["run_id"] == first.run_id and payload["model_version"] == first.model_version
        # a number, not always the top tier's min_score: an escalation forces the top tier below it
        assert isinstance(payload["score"], float) and payload["top_reason"]
        owners = [r for r in event.related if r.role == "owner"]
        assert [o.id for o in owners] == [f"leadloop.owner.{payload['owner_id']}"], event.related
        assert payload["owner_id"] and payload["owner_name"] == owners[0].name
        assert any(r.role == "flow-run" for r in event.related)  # Prefect adds the run that sent it
    routed_to_reps = [e for e in events if "@" in e.payload["owner_id"]]
    assert routed_to_reps and all(e.payload["owner_name"] != e.payload["owner_id"] for e in routed_to_reps)


def test_an_event_holds_no_email_of_a_person_and_no_credential(runs):
    from leadloop.store.db import open_store

    first = runs["first"]
    events = events_once(first.run_id, into_top(first, runs["top"]))
    with open_store(runs["store_url"]) as store:
        emails = {p.email for p in store.load_records().people if p.email}
    connection = json.loads(runs["connection"].read_text())
    secrets = [connection["salesforce"]["session_id"], connection["hubspot"]["access_token"]]
    for event in events:
        text = event.model_dump_json()
        assert not [e for e in emails if e in text], event.resource.id
        assert not [s for s in secrets if s in text], event.resource.id


def test_a_dry_run_and_a_run_that_moves_no_one_send_none(runs):
    dry, second, top = runs["dry"], runs["second"], runs["top"]
    assert dry.dry_run and into_top(dry, top) > 0  # it would have: everyone was new to it too
    assert events_after_the_run_ended(dry.run_id) == []
    assert not second.tier_changes and second.top_tier_moves == []
    assert events_after_the_run_ended(second.run_id) == []
