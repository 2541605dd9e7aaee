"""The demo's fresh activity is one the bundled playbook understands: the evaluation-kit request it logs
in Salesforce is recognized as an evaluation kit, and it goes to someone fitting enough to escalate."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadloop.cli.demo import MarketingAutomation, escalation_min_fit, pick_people
from leadloop.connectors.salesforce.records import to_task
from leadloop.crm.dataset import Dataset, load_dataset
from leadloop.crm.records import ActivityKind
from leadloop.playbook.compiled import classify_activity
from leadloop.playbook.load import load_playbook
from leadloop.scoring.engine import score_dataset

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def demo_task(who_id: str, at: datetime) -> dict:
    """The Task row the demo's marketing automation creates, as Salesforce returns it."""
    kit, url = MarketingAutomation.EVALUATION_KIT, MarketingAutomation.EVALUATION_KIT_URL
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {"Id": "00TDEMO000000001", "WhoId": who_id, "Subject": f"Form fill: Request {kit}",
            "Status": "Completed", "CreatedDate": stamp, "SystemModstamp": stamp,
            "Description": f"URL: {url}\nAsset: {kit}\nAsset type: evaluation_kit\n"
                           "Form: Evaluation kit request"}


def test_the_demos_evaluation_kit_request_is_recognized_as_an_evaluation_kit():
    playbook = load_playbook(PLAYBOOKS / "semiconductor.yaml")
    activity = to_task(demo_task("00QDEMO000000001", NOW), "LL_Key__c")
    assert activity is not None and activity.kind == ActivityKind.EVAL_KIT_REQUEST
    asset = classify_activity(playbook, activity)
    assert asset is not None
    assert (asset.type, asset.product_family) == ("evaluation_kit", "VoltEdge SiC MOSFETs")


def test_the_demo_gives_the_evaluation_kit_request_to_someone_it_escalates_to_the_top_tier():
    playbook = load_playbook(PLAYBOOKS / "semiconductor.yaml")
    dataset = load_dataset(PLAYBOOKS / "example_dataset.json")
    before = score_dataset(playbook, dataset, NOW).cards
    chosen = pick_people(playbook, dataset, before)
    person = chosen["evk"]
    min_fit = escalation_min_fit(playbook, ActivityKind.EVAL_KIT_REQUEST, "evaluation_kit")
    assert min_fit is not None and before[person.id].fit >= min_fit
    assert before[person.id].tier != playbook.top_tier

    row = demo_task(person.salesforce_lead_id or person.salesforce_contact_id, NOW + timedelta(hours=1))
    request = replace(to_task(row, "LL_Key__c"), person_id=person.id)
    after = score_dataset(playbook, Dataset(accounts=dataset.accounts, people=dataset.people,
                                            activities=[*dataset.activities, request]),
                          NOW + timedelta(hours=2)).cards[person.id]
    assert after.tier == playbook.top_tier
    assert after.escalation is not None and after.escalation.rule == "evaluation_request"
