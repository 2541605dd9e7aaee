"""Email opens and clicks made by link scanners and privacy proxies are not intent: dropped before
scoring with a reason, counted in data quality; people's own clicks stay."""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import count

import pytest
import typer
from test_cli_scoring import SEMI
from test_data_quality import _inputs
from test_scoring_support import (
    NOW,
    SITE,
    auto_account,
    engineer,
    motor_account,
    score,
    semiconductor,
    texts,
)
from typer.testing import CliRunner

from leadloop.cli import scoring as cli_scoring
from leadloop.crm.dataset import Dataset, dataset_from_dict, dataset_to_dict
from leadloop.crm.records import Activity
from leadloop.sandbox import world as sandbox_world
from leadloop.sandbox.export import world_to_dataset
from leadloop.scoring.machine_email import (
    INSTANT_CLICK,
    LINK_SWEEP,
    OPEN_BURST,
    MachineEmail,
    filter_machine_email,
)
from leadloop.scoring.partition import partition_dataset, score_partitioned
from leadloop.scoring.quality import assess_quality

_ids = count()
DELIVERED = NOW - timedelta(days=3)
LINKS = [f"{SITE}/products/pmic-77", f"{SITE}/applications/automotive/bms", f"{SITE}/docs/ds/pmic-77.pdf",
         f"{SITE}/events/webinar-gan"]


def email_event(kind: str, seconds: float, person_id: str = "p1", campaign: str = "cmp-nov-newsletter",
                url: str | None = None) -> Activity:
    return Activity(id=f"e{next(_ids)}", person_id=person_id, kind=kind,
                    occurred_at=DELIVERED + timedelta(seconds=seconds), campaign_id=campaign, url=url)


def scanner_sweep(person_id: str = "p1", campaign: str = "cmp-nov-newsletter", at: float = 0.0,
                  steps: tuple[float, ...] = (3, 11, 2, 19)) -> list[Activity]:
    """What a gateway does on delivery: render (the open), then every link, 2–20 s apart."""
    events = [email_event("email_open", at, person_id, campaign)]
    for url, step in zip(LINKS, steps, strict=False):
        at += step
        events.append(email_event("email_click", at, person_id, campaign, url))
    return events


def test_a_scanner_clicking_every_link_within_seconds_is_dropped_with_its_opens_and_its_reason():
    sweep = scanner_sweep()
    kept, dropped = filter_machine_email(sweep)
    assert kept == []
    assert dropped.total == 5 and dropped.by_reason == {LINK_SWEEP: 5} and dropped.people == 1
    assert dropped.examples == ("p1: 4 links of cmp-nov-newsletter clicked within 35 s",)


def test_a_person_clicking_two_links_a_minute_apart_stays_human():
    read = [email_event("email_open", 0), email_event("email_click", 40, url=LINKS[0]),
            email_event("email_click", 100, url=LINKS[1])]
    kept, dropped = filter_machine_email(read)
    assert kept is read  # nothing dropped, nothing copied
    assert dropped == MachineEmail()


def test_a_mixed_person_keeps_the_clicks_they_made_after_the_scanner_swept_the_email():
    human = [email_event("email_open", 7200), email_event("email_click", 7260, url=LINKS[2])]
    other = Activity(id="pv", person_id="p1", kind="page_view", occurred_at=DELIVERED, url=LINKS[0])
    activities = [*scanner_sweep(), other, *human]
    kept, dropped = filter_machine_email(activities)
    assert kept == [other, *human]
    assert dropped.by_reason == {LINK_SWEEP: 5}


def test_a_click_seconds_after_the_emails_first_event_is_dropped_but_one_with_it_is_kept():
    instant = [email_event("email_open", 0), email_event("email_click", 3, url=LINKS[0])]
    kept, dropped = filter_machine_email(instant)
    assert kept == instant[:1] and dropped.by_reason == {INSTANT_CLICK: 1}
    # an ESP that could not load images records the open with the person's click, at one instant
    inferred = [email_event("email_click", 0, url=LINKS[0]), email_event("email_open", 0)]
    assert filter_machine_email(inferred)[1].total == 0


def test_three_opens_within_ten_seconds_are_a_burst_no_person_makes_but_two_are_not():
    burst = [email_event("email_open", s, campaign=f"cmp-{s}") for s in (0, 4, 9)]
    kept, dropped = filter_machine_email(burst)
    assert kept == [] and dropped.by_reason == {OPEN_BURST: 3}
    preview_then_open = [email_event("email_open", 0), email_event("email_open", 4)]
    assert filter_machine_email(preview_then_open)[1].total == 0


def test_the_engine_gives_a_person_only_a_scanner_touched_no_email_intent():
    people = [engineer("p-scanned"), engineer("p-reader")]
    reader = [email_event("email_open", 0, "p-reader"),
              email_event("email_click", 60, "p-reader", url=LINKS[0])]
    result = score(people, [*scanner_sweep("p-scanned"), *scanner_sweep("p-scanned", "cmp-dec"), *reader])
    scanned, human = result.cards["p-scanned"], result.cards["p-reader"]
    assert not [t for t in texts(scanned) if "email" in t] and scanned.intent == 0
    assert [t for t in texts(human) if "email" in t] and human.intent > 0
    assert result.machine_email.total == 10 and result.machine_email.people == 1


def test_partitions_scored_apart_add_up_to_the_same_machine_email_counts():
    people = [engineer("p-scanned"), engineer("p-other", "acc-motor", email="k.roth@sunmotion.com")]
    activities = [*scanner_sweep("p-scanned"), *scanner_sweep("p-other", steps=(2, 2))]
    dataset = Dataset(accounts=[auto_account(), motor_account()], people=people, activities=activities)
    assert len({i for i, part in enumerate(partition_dataset(dataset, 2)) if part.dataset.people}) == 2
    merged = score_partitioned(semiconductor(), dataset, NOW, 2)
    assert merged.machine_email.total == 8 and merged.machine_email.people == 2
    assert merged.machine_email.by_reason == {LINK_SWEEP: 8}


def test_data_quality_counts_machine_email_with_its_reasons_and_examples_without_addresses():
    activities = [*scanner_sweep("hs-contact:1"), email_event("email_open", 600, "hs-contact:2"),
                  email_event("email_click", 700, "hs-contact:2", url=LINKS[0])]
    finding = {f.check: f for f in assess_quality(_inputs(activities=activities))}["machine_email"]
    assert (finding.count, finding.total) == (5, 7)
    assert finding.examples[0].startswith("link_sweep ×5: several links of one email clicked within 30 s")
    assert "hs-contact:1: 4 links of cmp-nov-newsletter clicked within 35 s" in finding.examples
    assert not any("@" in example for example in finding.examples)


@pytest.mark.parametrize("seed", [7, 23])
def test_the_sandbox_worlds_scanner_sweeps_are_all_dropped_and_nobody_elses_email(seed, monkeypatch):
    world = sandbox_world.generate_world("small", seed, NOW)
    with monkeypatch.context() as patched:
        patched.setattr(sandbox_world, "_link_scanners", lambda builder, seed: None)
        without = sandbox_world.generate_world("small", seed, NOW)
    assert [e.key for e in world.events[: len(without.events)]] == [e.key for e in without.events]
    scanner_events = {e.key for e in world.events[len(without.events):]}
    assert scanner_events and {e.kind for e in world.events if e.key in scanner_events} == {
        "email_open", "email_click"}
    dataset = dataset_from_dict(world_to_dataset(world))
    _, dropped = filter_machine_email(dataset.activities)
    assert set(dropped.reasons) == scanner_events


def test_leadloop_score_reports_what_it_left_out(tmp_path):
    app = typer.Typer()
    cli_scoring.register(app)
    data = tmp_path / "dataset.json"
    dataset = Dataset(people=[engineer("p-scanned")], activities=scanner_sweep("p-scanned"))
    data.write_text(json.dumps({"generated_at": "2026-11-01T12:00:00Z", **dataset_to_dict(dataset)}))
    result = CliRunner().invoke(app, ["score", "--playbook", SEMI, "--data", str(data)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    machine = json.loads(result.stdout)["machine_email"]
    assert machine == {"total": 5, "by_reason": {LINK_SWEEP: 5}, "people": 1,
                       "examples": ["p-scanned: 4 links of cmp-nov-newsletter clicked within 35 s"]}
