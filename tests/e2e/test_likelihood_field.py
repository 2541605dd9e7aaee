"""Issue #21, item 2: a calibrated playbook writes a "likelihood" reps read next to the score.

`crm setup` creates Salesforce's `LL_Likelihood__c` (a Percent field) on leads and contacts and
HubSpot's `ll_likelihood` (a number shown as a percentage) on contacts. The story, through real flow
runs on a Prefect engine against a sandbox world (size tiny) and a temporary SQLite store:

1. the first hourly sync scores with the shipped semiconductor playbook, which has no calibration:
   the likelihood field stays empty;
2. a calibrated copy of it (the shipped playbook with a `calibration` section appended, as the model
   review writes one) goes live with `rescore --activate`: every scored record gets the likelihood of
   its score, which a rep reads through simple-salesforce and hubspot-api-client;
3. the next hourly sync keeps each likelihood with its written score;
4. going back live with the uncalibrated playbook clears the field again.

The bins' edges sit on half points, as the review learns them, so the whole-point score a rep reads
(halves rounded up) always falls in the same bin as the exact score the likelihood was taken from:
each record's likelihood can be checked against its written score.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadloop.sandbox.server import SandboxHandle

PROJECT = Path(__file__).resolve().parents[2]
SHIPPED = PROJECT / "playbooks" / "semiconductor.yaml"
BINS = [(0, 0.004), (22.5, 0.031), (39.5, 0.12), (59.5, 0.45)]  # (min_score, rate)
CALIBRATION = (
    "\ncalibration:\n  horizon_days: 90\n  learned: 2026-12-06\n"
    "  why: Share of people at each score who had an opportunity within 90 days, learned from outcomes.\n"
    "  bins:\n"
) + "".join(f"    - {{min_score: {m}, rate: {r}, people: 400, converted: {int(r * 400)}}}\n" for m, r in BINS)


def percent_for(written_score: float) -> float:
    """What a rep should read next to a written score: the rate of its bin, in percent."""
    rate = ([r for m, r in BINS if m <= written_score] or [BINS[0][1]])[-1]  # below 0: the first bin
    return round(rate * 100, 1)


def run(flow_name: str, options: Any) -> Any:
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.rescore import rescore
    from leadloop.flows.steps import summary_of

    return summary_of((hourly_sync if flow_name == "hourly_sync" else rescore)(options))


def salesforce_people(handle: SandboxHandle) -> list[dict[str, Any]]:
    """Every scored Lead and Contact, as a report reads them."""
    sf = handle.salesforce()
    rows = []
    for sobject in ("Lead", "Contact"):
        rows += sf.query_all(f"SELECT Id, LL_Score__c, LL_Likelihood__c, LL_Model_Version__c FROM {sobject} "
                             "WHERE LL_Score__c != null")["records"]
    return rows


def hubspot_people(handle: SandboxHandle) -> list[dict[str, Any]]:
    properties = ["ll_score", "ll_likelihood", "ll_model_version"]
    contacts = handle.hubspot().crm.contacts.get_all(properties=properties)
    return [c.properties for c in contacts if c.properties.get("ll_score") not in (None, "")]


def read_both(handle: SandboxHandle) -> dict[str, list[dict[str, Any]]]:
    return {"salesforce": salesforce_people(handle), "hubspot": hubspot_people(handle)}


@pytest.fixture(scope="module")
def rollout(crm_sandbox, prefect_harness: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The CRMs as a rep reads them after each step of the story."""
    from leadloop.flows.options import RescoreOptions, SyncOptions
    from leadloop.playbook.load import load_playbook

    workdir = tmp_path_factory.mktemp("likelihood")
    calibrated = workdir / "semiconductor-calibrated.yaml"
    calibrated.write_text(SHIPPED.read_text(encoding="utf-8") + CALIBRATION, encoding="utf-8")
    common = {"connection_file": str(workdir / "connection.json"),
              "store_url": f"sqlite:///{workdir / 'state.db'}"}
    seen: dict[str, Any] = {"calibrated_version": load_playbook(calibrated).model_version,
                            "shipped_version": load_playbook(SHIPPED).model_version}
    with crm_sandbox(workdir / "connection.json", size="tiny", seed=7) as handle:
        seen["handle"] = handle
        seen["first"] = run("hourly_sync", SyncOptions(playbook=str(SHIPPED), **common))
        seen["after_first"] = read_both(handle)
        seen["rollout"] = run("rescore", RescoreOptions(playbook=str(calibrated), activate=True,
                                                        reason="calibration learned", **common))
        seen["after_rollout"] = read_both(handle)
        seen["next"] = run("hourly_sync", SyncOptions(**common))
        seen["after_next"] = read_both(handle)
        seen["rollback"] = run("rescore", RescoreOptions(playbook=str(SHIPPED), activate=True,
                                                         reason="calibration withdrawn", **common))
        seen["after_rollback"] = read_both(handle)
        yield seen


def test_crm_setup_makes_the_likelihood_a_percentage_in_both_crms(rollout):
    handle = rollout["handle"]
    for sobject in ("Lead", "Contact"):
        [field] = [f for f in getattr(handle.salesforce(), sobject).describe()["fields"]
                   if f["name"] == "LL_Likelihood__c"]
        assert (field["type"], field["scale"], field["updateable"]) == ("percent", 1, True)
    prop = handle.hubspot().crm.properties.core_api.get_by_name("contacts", "ll_likelihood")
    assert (prop.type, prop.field_type, prop.group_name) == ("number", "number", "leadloop")
    token = handle.connection["hubspot"]["access_token"]
    raw = handle.session().get(f"{handle.base_url}/crm/v3/properties/contacts/ll_likelihood",
                               headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert raw["numberDisplayHint"] == "percentage"


def test_the_sandbox_refuses_a_display_hint_hubspot_does_not_know(rollout):
    from hubspot.crm.properties import ApiException

    body = {"name": "ll_test_share", "label": "share", "type": "number", "fieldType": "number",
            "groupName": "leadloop", "numberDisplayHint": "percent"}
    with pytest.raises(ApiException) as refused:
        rollout["handle"].hubspot().crm.properties.core_api.create("contacts", body)
    assert refused.value.status == 400 and "numberDisplayHint" in refused.value.body


def test_without_calibration_the_first_sync_leaves_the_likelihood_empty(rollout):
    assert rollout["first"].outcome == "ok"
    people = rollout["after_first"]
    assert people["salesforce"] and people["hubspot"]
    assert {row["LL_Likelihood__c"] for row in people["salesforce"]} == {None}
    assert {row.get("ll_likelihood") for row in people["hubspot"]} <= {None, ""}


def scores_and_likelihoods(people: dict[str, list[dict[str, Any]]]) -> list[tuple[float, float]]:
    """(written score, written likelihood) of every scored record in both CRMs."""
    return [(row["LL_Score__c"], row["LL_Likelihood__c"]) for row in people["salesforce"]] + [
        (float(row["ll_score"]), float(row["ll_likelihood"])) for row in people["hubspot"]]


def test_once_calibrated_every_scored_record_shows_the_likelihood_of_its_score(rollout):
    assert rollout["rollout"].outcome == "ok"
    people = rollout["after_rollout"]
    written = scores_and_likelihoods(people)

    assert people["salesforce"] and people["hubspot"]
    assert all(row["LL_Model_Version__c"] == rollout["calibrated_version"] for row in people["salesforce"])
    assert [(score, percent_for(score)) for score, _ in written] == written
    assert len({likelihood for _, likelihood in written}) >= 2  # the world spans bins


def test_the_next_sync_keeps_each_likelihood_with_its_written_score(rollout):
    assert rollout["next"].outcome == "ok"
    written = scores_and_likelihoods(rollout["after_next"])
    assert written and [(score, percent_for(score)) for score, _ in written] == written


def test_going_live_without_calibration_clears_the_likelihood_it_wrote(rollout):
    assert rollout["rollback"].outcome == "ok"
    people = rollout["after_rollback"]
    assert all(row["LL_Model_Version__c"] == rollout["shipped_version"] for row in people["salesforce"])
    assert {row["LL_Likelihood__c"] for row in people["salesforce"]} == {None}
    assert {row.get("ll_likelihood") for row in people["hubspot"]} <= {None, ""}
