"""The live playbook on a real Prefect engine, sandbox and store: a rescore with another playbook is
a preview that changes nothing live; activated, it is live and the next hourly syncs keep its scores;
a sync naming another playbook is refused. The CRM is read through the official client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sync_flows import reset_stats, stats, write_calls

from leadloop.playbooks import resolve


def crm_scores(handle: Any) -> dict[str, tuple[Any, Any]]:
    """Every scored Contact's (LL_Score__c, LL_Model_Version__c), as a rep's CRM shows them."""
    rows = handle.salesforce().query_all(
        "SELECT Id, LL_Score__c, LL_Model_Version__c FROM Contact WHERE LL_Model_Version__c != null")
    return {row["Id"]: (row["LL_Score__c"], row["LL_Model_Version__c"]) for row in rows["records"]}


@pytest.fixture(scope="module")
def world(crm_sandbox, prefect_harness: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("live")
    # the shipped playbook with the account's intent weighed more: many scores move
    changed = folder / "pilot.yaml"
    was, now = "contact_intent: 0.25\n  account_intent: 0.40", "contact_intent: 0.45\n  account_intent: 0.20"
    changed.write_text(resolve("semiconductor").read_text().replace(was, now, 1))
    connection = folder / "connection.json"
    with crm_sandbox(connection, size="tiny", seed=5) as handle:
        yield {"handle": handle, "connection": str(connection), "changed": str(changed),
               "store_url": f"sqlite:///{folder / 'state.db'}"}


def test_a_preview_changes_nothing_live_and_an_activated_playbook_stays_live(world, tmp_path: Path):
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.options import RescoreOptions, SyncOptions
    from leadloop.flows.rescore import rescore
    from leadloop.store.db import open_store
    from leadloop.sync.live import PlaybookNotLive

    handle = world["handle"]
    common = {"connection_file": world["connection"], "store_url": world["store_url"]}
    # no playbook named: a store's first run makes the default one live
    first = hourly_sync(SyncOptions(**common))
    assert first.playbook["activated"] and first.playbook["source"] == "semiconductor"
    shipped = first.playbook["model_version"]
    assert shipped.startswith("voltaris-semiconductor-")
    before = crm_scores(handle)
    assert before and {version for _, version in before.values()} == {shipped}

    # a rescore with another playbook, not activated: a preview, whatever dry_run says
    reset_stats(handle)
    preview = rescore(RescoreOptions(**common, playbook=world["changed"], dry_run=False, reason="try"))
    assert preview.dry_run and preview.playbook["preview"] and not preview.playbook["activated"]
    assert sum(p["fields"] for p in preview.planned.values()) > 0  # it would change scores ...
    assert write_calls(stats(handle)) == {}  # ... and wrote nothing
    pilot = preview.playbook["model_version"]
    with open_store(world["store_url"]) as store:
        assert store.live_playbook().model_version == shipped
    # so the next hourly sync has nothing to revert
    reset_stats(handle)
    hourly_sync(SyncOptions(**common))
    assert write_calls(stats(handle)) == {} and crm_scores(handle) == before

    # activated, it is live from that run on
    activated = rescore(RescoreOptions(**common, playbook=world["changed"], activate=True,
                                       reason="Q1 pilot weights"))
    assert activated.playbook["activated"] and not activated.dry_run and activated.fields_written > 0
    after = crm_scores(handle)
    assert {version for _, version in after.values()} == {pilot} and after != before
    with open_store(world["store_url"]) as store:
        live = store.live_playbook()
        assert (live.model_version, live.reason, live.run_id) == (pilot, "Q1 pilot weights", activated.run_id)
    # the next hourly syncs keep the new scores: nothing to rewrite
    reset_stats(handle)
    kept = hourly_sync(SyncOptions(**common))
    assert kept.playbook["model_version"] == pilot and not kept.playbook["activated"]
    assert write_calls(stats(handle)) == {} and crm_scores(handle) == after

    # a sync naming the old playbook is refused before it writes: the live one stays
    with pytest.raises(PlaybookNotLive, match="leadloop rescore --playbook semiconductor --activate"):
        hourly_sync(SyncOptions(**common, playbook="semiconductor"))
    assert crm_scores(handle) == after
    # and so is the CLI's, on one screen, before any CRM call (exit 2)
    from test_cli_errors import leadloop

    reset_stats(handle)
    cli = leadloop("sync", "--connection-file", world["connection"], "--store-url", world["store_url"],
                   "--playbook", "industrial", home=tmp_path)
    output = cli.stdout + cli.stderr
    assert cli.returncode == 2 and "Traceback" not in output, output
    assert "the live playbook is" in output and "leadloop rescore --playbook industrial --activate" in output
    assert sum(sum(c.values()) for c in stats(handle)["by_endpoint"].values()) == 0
