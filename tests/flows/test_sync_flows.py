"""The flows end to end on a real Prefect engine, a real sandbox (size small) and a real store:
hourly sync, a run with no changes, a run killed during write-back, rescore dry run, data quality,
model review, and the deployments on a process worker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadloop.sandbox.server import SandboxHandle

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(PROJECT / "playbooks" / "semiconductor.yaml")
READ_POSTS = ("/search", "/batch/read", "/jobs/query", "oauth2/token")


def stats(handle: SandboxHandle) -> dict[str, Any]:
    return handle.session().get(f"{handle.admin_url}/stats", timeout=30).json()


def reset_stats(handle: SandboxHandle) -> None:
    handle.session().post(f"{handle.admin_url}/stats/reset", json={}, timeout=30).raise_for_status()


def write_calls(report: dict[str, Any]) -> dict[str, int]:
    """Calls that change something in a CRM (HubSpot's searches and batch reads are POSTs that read)."""
    writes = {}
    for crm, endpoints in report["by_endpoint"].items():
        for endpoint, n in endpoints.items():
            method = endpoint.split(" ", 1)[0]
            if method in ("PATCH", "PUT", "DELETE") or (
                    method == "POST" and not any(marker in endpoint for marker in READ_POSTS)):
                writes[f"{crm} {endpoint}"] = n
    return writes


def owned_snapshot(handle: SandboxHandle) -> dict[str, dict[str, Any]]:
    """Every Salesforce Lead/Contact/Account field leadloop does not own, by record id."""
    sf = handle.salesforce()
    snapshot = {}
    for sobject in ("Lead", "Contact", "Account"):
        skip = ("SystemModstamp", "LastModifiedDate", "LastModifiedById")
        fields = [f["name"] for f in sf.__getattr__(sobject).describe()["fields"]
                  if not f["name"].startswith("LL_") and f["name"] not in skip]
        for row in sf.query_all(f"SELECT {', '.join(fields)} FROM {sobject}")["records"]:
            row.pop("attributes", None)
            snapshot[row["Id"]] = row
    return snapshot


@pytest.fixture(scope="module")
def synced(crm_sandbox, prefect_harness: str, workdir: Path) -> Iterator[dict[str, Any]]:
    """A small sandbox after `crm setup` and one full hourly sync."""
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.options import SyncOptions
    from leadloop.sync import workspace

    connection = workdir / "connection.json"
    with crm_sandbox(connection, size="small", seed=11) as handle:
        before = owned_snapshot(handle)
        store_url = f"sqlite:///{workdir / 'state.db'}"
        options = SyncOptions(connection_file=str(connection), playbook=PLAYBOOK, store_url=store_url)
        reset_stats(handle)
        with pytest.MonkeyPatch.context() as patch:  # a progress line per page, not per ten
            patch.setattr("leadloop.sync.pipeline.PAGES_PER_PROGRESS_LINE", 1)
            summary = hourly_sync(options)
        assert workspace.open_keys() == [], "the run's workspace outlived it"
        yield {"handle": handle, "options": options, "summary": summary, "before": before,
               "store_url": store_url, "connection": connection, "first_stats": stats(handle)}


# -- what the Prefect API shows of a run ----------------------------------------------------------------


def task_run_names(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                     task_run_filter=TaskRunFilter())
    return [r.name for r in runs]


def flow_run_logs(flow_run_id: str, wanted: str, timeout: float = 20.0) -> list[Any]:
    """The flow run's log lines, once one says `wanted` (logs reach the API in the background)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = time.monotonic() + timeout
    this_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
    while True:
        logs: list[Any] = []
        with get_client(sync_client=True) as client:
            while page := client.read_logs(log_filter=this_run, limit=200, offset=len(logs)):
                logs += page
        if any(wanted in log.message for log in logs) or time.monotonic() > deadline:
            return logs
        time.sleep(0.5)


def artifact_rows(flow_run_id: str, key: str) -> list[dict[str, Any]]:
    """The rows of the flow run's table artifact `key`."""
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


def test_the_hourly_sync_writes_scores_and_tasks_that_the_official_clients_see(synced):
    from leadloop.store.db import open_store

    summary = synced["summary"]
    assert summary.people_scored > 1000 and summary.fields_written > 0 and summary.tasks_created > 0
    store = open_store(synced["store_url"])
    try:
        ledger = store.ledger("salesforce")
        tasks = store.task_ledger("hubspot")
    finally:
        store.close()
    sf = synced["handle"].salesforce()
    scored = sf.query("SELECT Id, LL_Score__c, LL_Tier__c, LL_Reasons__c FROM Lead WHERE LL_Tier__c != null "
                      "LIMIT 50")["records"]
    assert scored, "no Lead carries a tier"
    for row in scored:
        assert ledger[(row["Id"], "LL_Tier__c")] == row["LL_Tier__c"]
        assert ledger[(row["Id"], "LL_Score__c")] == str(int(row["LL_Score__c"]))
    sf_tasks = sf.query_all("SELECT Id, LL_Key__c, OwnerId, ActivityDate, Description FROM Task "
                            "WHERE LL_Key__c != null")["records"]
    assert sf_tasks and all(t["OwnerId"] and t["ActivityDate"] and t["Description"] for t in sf_tasks)
    # tasks_in: owner_crm (the default): one task per person and decision, in one CRM only
    assert tasks and not {t["LL_Key__c"] for t in sf_tasks} & set(tasks), "a task landed in both CRMs"
    hs = synced["handle"].hubspot()
    some_task = next(iter(tasks.values()))
    task = hs.crm.objects.basic_api.get_by_id("tasks", some_task.crm_task_id,
                                              properties=["ll_key", "hs_task_body", "hubspot_owner_id"])
    assert task.properties["ll_key"] == some_task.key and task.properties["hs_task_body"]


def test_each_task_run_is_named_by_what_it_does(synced):
    summary = synced["summary"]
    names = task_run_names(summary.run_id)
    for pull in summary.pulls:
        assert f"pull {pull.crm} {pull.stream}" in names
    assert {"pull salesforce Contact", "pull hubspot contacts", "identity", "score", "route", "plan",
            "save identity", "save scores"} <= set(names), names
    writes = {w.crm: w for w in summary.writes}
    assert writes["hubspot"].fields_written and "write hubspot contacts" in names
    assert writes["salesforce"].fields_written and "write salesforce Lead" in names
    for crm, stats in writes.items():
        assert (f"write {crm} tasks" in names) == bool(stats.tasks_written), (crm, names)
    assert not [n for n in names if n in ("pull", "write") or n.startswith(("pull-", "write-"))], names


def test_leadloop_log_lines_are_in_the_flow_run_logs_with_the_task_run_that_logged_them(synced):
    summary = synced["summary"]
    logs = flow_run_logs(summary.run_id, "pulled salesforce Lead")
    ours = [log for log in logs if log.name.startswith("leadloop.")]
    [pulled] = [log for log in ours if log.message.startswith("pulled salesforce Lead:")]
    assert pulled.name == "leadloop.sync" and pulled.task_run_id is not None
    lead_pages = next(p.pages for p in summary.pulls if (p.crm, p.stream) == ("salesforce", "Lead"))
    so_far = [log for log in ours if log.message.startswith("pull salesforce Lead:")]
    assert len(so_far) == lead_pages >= 1  # a progress line per page here (PAGES_PER_PROGRESS_LINE = 1)
    assert any(log.message.startswith("plan hubspot:") for log in ours)
    assert not [log for log in ours if re.search(r"[\w.+-]{2,}@[\w-]+\.[\w.]+", log.message)], "an email"


def test_the_run_artifact_lists_who_changed_tier_by_name_with_the_reason_that_counted_most(synced):
    summary = synced["summary"]
    rows = artifact_rows(summary.run_id, "hourly-sync-tier-changes")
    people = stored_people(synced)
    names = {name_of(person) for person in people}
    companies = {person.company_name for person in people} | {a.name for a in stored_accounts(synced)}
    assert len(rows) == min(500, sum(summary.tier_changes.values())) > 0
    assert {r["old tier"] for r in rows} == {"(new)"}  # the first sync: everyone is new
    assert {r["name"] for r in rows} <= names
    assert {r["company"] for r in rows} - {""} <= companies
    assert all(r["new tier"] in summary.tier_counts and r["top reason"] for r in rows)
    best = next(iter(summary.tier_counts))
    assert rows[0]["new tier"] == best or not summary.tier_counts[best]
    assert artifact_rows(summary.run_id, "hourly-sync-rejected")[0]["reason"] == "nothing was refused"


def test_a_run_that_fails_mid_pull_lets_its_workspace_lease_and_run_record_go(synced, monkeypatch):
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.store.db import open_store
    from leadloop.sync import pipeline, workspace

    pull = pipeline.pull_stream

    def pull_then_fail(runtime: Any, crm: Any, stream: str) -> Any:
        if stream == "Contact":
            raise RuntimeError("the pull broke on purpose")
        return pull(runtime, crm, stream)

    monkeypatch.setattr(pipeline, "pull_stream", pull_then_fail)
    state = hourly_sync(synced["options"], return_state=True)
    assert state.is_failed() and "broke on purpose" in state.message
    assert workspace.open_keys() == []
    with open_store(synced["store_url"]) as store:
        assert store.lease() is None
        run = store.get_run(str(state.state_details.flow_run_id))
        assert run.status == "failed" and "broke on purpose" in run.error
    names = task_run_names(str(state.state_details.flow_run_id))
    assert "pull salesforce Contact" in names and "plan" not in names


def stored_people(synced: dict[str, Any]) -> list[Any]:
    from leadloop.store.db import open_store

    with open_store(synced["store_url"]) as store:
        return store.load_records().people


def stored_accounts(synced: dict[str, Any]) -> list[Any]:
    from leadloop.store.db import open_store

    with open_store(synced["store_url"]) as store:
        return store.load_records().accounts


def name_of(person: Any) -> str:
    return " ".join(p for p in (person.first_name, person.last_name) if p)


def let_an_hour_pass(handle: SandboxHandle) -> None:
    """The CRMs' clock moves on an hour, as between two scheduled hourly runs."""
    handle.session().post(f"{handle.admin_url}/clock", json={"advance_seconds": 3600},
                      timeout=30).raise_for_status()


def reads_by_object(report: dict[str, Any], crm: str) -> dict[str, int]:
    """Read calls to one CRM by the object they read, from the sandbox's count by object (a query's
    FROM object, HubSpot's object type)."""
    reads = {}
    for target, endpoints in report["by_object"].get(crm, {}).items():
        writes = write_calls({"by_endpoint": {crm: endpoints}})
        reads[target] = sum(endpoints.values()) - sum(writes.values())
    return {target: n for target, n in reads.items() if n}


def test_a_quiet_hourly_run_reads_each_object_once_and_writes_nothing(synced):
    from leadloop.flows.hourly_sync import hourly_sync

    handle = synced["handle"]
    let_an_hour_pass(handle)
    reset_stats(handle)
    hourly_sync(synced["options"])  # re-reads the records our own write-back changed in the CRMs
    echo = stats(handle)
    assert write_calls(echo) == {}
    let_an_hour_pass(handle)
    reset_stats(handle)
    summary = hourly_sync(synced["options"])
    report = stats(handle)
    assert write_calls(report) == {}
    assert summary.fields_written == 0 and summary.tasks_created == 0
    for crm in ("salesforce", "hubspot"):
        reads = reads_by_object(report, crm)
        assert len(reads) >= 7 and max(reads.values()) == 1, (crm, reads, report["by_object"][crm])
        assert all(status.startswith("2") for status in report["by_status"][crm]), report["by_status"]
    # HubSpot's activity sources outside the CRM objects: one call each, and one per form (the
    # submissions API is per form)
    session = handle.session()
    session.headers["Authorization"] = f"Bearer {handle.connection['hubspot']['access_token']}"
    forms = session.get(f"{handle.base_url}/marketing/v3/forms/", params={"limit": 100}, timeout=30).json()
    reset_stats(handle)  # (that listing is the test's, not the run's)
    activity = {e: n for e, n in report["by_endpoint"]["hubspot"].items() if "/crm/" not in e}
    assert activity.pop("GET /form-integrations/v1/submissions/forms/{form_guid}") == len(forms["results"])
    assert activity and set(activity.values()) == {1}, activity
    # the run before, which read the echo of the first run's write-back, cost more than one call
    # only where the echo filled more than a page
    assert report["calls"] < echo["calls"] < synced["first_stats"]["calls"] * 0.2


def test_a_run_that_dies_before_saving_its_scores_makes_the_next_hourly_run_rescore_everyone(synced):
    """Identity is saved before the write-back, scores and due times after it: a run that dies in
    between leaves the next one no way to tell what changed since, so it rescores everyone."""
    from leadloop.flows.hourly_sync import hourly_sync

    let_an_hour_pass(synced["handle"])
    hourly_sync(synced["options"])
    let_an_hour_pass(synced["handle"])
    quiet = hourly_sync(synced["options"])
    assert not quiet.rescored["everyone"] and quiet.people_scored < quiet.rescored["of"], quiet.rescored

    def killed(*args, **kwargs):
        raise RuntimeError("killed before saving its scores")

    let_an_hour_pass(synced["handle"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("leadloop.sync.pipeline.save_scores", killed)
        state = hourly_sync(synced["options"], return_state=True)
    assert state.is_failed()
    after = hourly_sync(synced["options"])
    assert after.rescored["everyone"] and after.people_scored == after.rescored["of"], after.rescored
    assert "no finished hourly run" in after.rescored["why"]
    let_an_hour_pass(synced["handle"])
    again = hourly_sync(synced["options"])
    assert not again.rescored["everyone"] and again.people_scored < again.rescored["of"], again.rescored


def test_a_contact_deleted_in_hubspot_leaves_the_store_at_the_next_deletion_check(synced):
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.store.db import open_store

    handle = synced["handle"]
    contacts = handle.hubspot().crm.contacts
    gone = str(contacts.basic_api.get_page(limit=1).results[0].id)
    contacts.basic_api.archive(gone)

    def stored() -> bool:
        store = open_store(synced["store_url"])
        try:
            return any(p.hubspot_id == gone for p in store.load_records().people)
        finally:
            store.close()

    let_an_hour_pass(handle)
    hourly_sync(synced["options"])  # within six hours of the last check: no listing of archived records
    assert stored()
    for _ in range(5):
        let_an_hour_pass(handle)
    reset_stats(handle)
    hourly_sync(synced["options"])
    assert not stored()
    listings = stats(handle)["by_object"]["hubspot"]
    listed = {o: listings.get(o, {}).get("GET /crm/v3/objects/{object_type}", 0) for o in listings}
    # the archived records, once per object; the streams read with associations are listed whole
    # again too (HubSpot moves an association without changing the record's modification time)
    assert listed["contacts"] == listed["companies"] == 1, listings
    assert all(listed[o] >= 2 for o in ("deals", "calls", "emails", "meetings")), listings


def test_every_crm_field_outside_the_owned_ones_is_unchanged_after_a_sync(synced):
    after = owned_snapshot(synced["handle"])
    assert after == synced["before"]


def test_a_rescore_dry_run_writes_nothing_and_lists_what_would_change(synced, workdir):
    from prefect.client.orchestration import get_client

    from leadloop.flows.options import RescoreOptions
    from leadloop.flows.rescore import rescore

    book = yaml.safe_load(Path(PLAYBOOK).read_text())
    for tier in book["tiers"]:
        if tier.get("min_score"):
            tier["min_score"] = max(1, tier["min_score"] - 15)
    changed = workdir / "lower-thresholds.yaml"
    changed.write_text(yaml.safe_dump(book, sort_keys=False))
    handle = synced["handle"]
    reset_stats(handle)
    options = synced["options"]
    summary = rescore(RescoreOptions(connection_file=options.connection_file, playbook=str(changed),
                                     store_url=options.store_url, dry_run=True, reason="test thresholds"))
    assert write_calls(stats(handle)) == {}
    assert summary.changes and any(c["field"] in ("LL_Tier__c", "ll_tier") for c in summary.changes)
    assert all(c["old"] != c["new"] for c in summary.changes if c["field"] != "new task")

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["rescore-would-change"])))
    assert found and "field" in str(found[-1].data)
    rows = artifact_rows(str(summary.run_id), "rescore-would-change")
    assert rows and set(rows[0]) == {"crm", "person", "email", "field", "old", "new"}  # no record id
    people = stored_people(synced)
    assert {r["person"] for r in rows} <= {name_of(p) for p in people}
    assert {r["email"] for r in rows} - {""} <= {p.email for p in people} and any(r["email"] for r in rows)


def test_a_rescore_in_account_partitions_runs_each_as_a_task_and_plans_what_one_pass_does(synced):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter

    from leadloop.flows.options import RescoreOptions
    from leadloop.flows.rescore import rescore

    options = synced["options"]
    common = dict(connection_file=options.connection_file, playbook=options.playbook,
                  store_url=options.store_url, dry_run=True, at=datetime(2026, 12, 1, tzinfo=UTC))
    whole = rescore(RescoreOptions(**common))
    state = rescore(RescoreOptions(**common, people_per_partition=500), return_state=True)
    split = state.result()
    assert split.people_scored == whole.people_scored > 1000
    assert split.tier_counts == whole.tier_counts and split.planned == whole.planned
    assert split.changes == whole.changes and split.handoff_notes == whole.handoff_notes

    with get_client(sync_client=True) as client:
        this_run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        runs = client.read_task_runs(flow_run_filter=this_run,
                                     task_run_filter=TaskRunFilter())
    partitions = [r for r in runs if r.name.startswith("score partition")]
    expected = -(-whole.people_scored // 500)
    assert len(partitions) >= expected - 1 and all(r.state_type.value == "COMPLETED" for r in partitions)
    assert not [r for r in runs if r.name.startswith("score-") or r.name == "score"]


def test_data_quality_finds_the_planted_problems(synced):
    from leadloop.flows.data_quality import data_quality
    from leadloop.flows.options import DataQualityOptions

    options = synced["options"]
    dq = DataQualityOptions(connection_file=options.connection_file, playbook=options.playbook,
                            store_url=options.store_url, steward_tasks=True)
    findings = {f.check: f for f in data_quality(dq)}
    assert findings["duplicates.people"].count > 0
    assert findings["invalid_emails"].count > 0
    assert findings["unknown_titles"].count > 0
    machine = findings["machine_email"]  # the world's link scanners, as HubSpot's email events carry them
    assert machine.count > 0 and machine.examples[0].startswith("link_sweep ×")
    data_quality(dq)  # the same week again: the steward's tasks are there already, none is added
    keys = Counter(t["LL_Key__c"] for t in synced["handle"].salesforce().query_all(
        "SELECT LL_Key__c FROM Task WHERE LL_Key__c LIKE 'dq:%'")["records"])
    assert keys and set(keys.values()) == {1}, keys


def test_model_review_finds_real_signal_and_a_bad_candidate_scores_worse(synced, workdir):
    from leadloop.flows.model_review import model_review
    from leadloop.flows.options import ModelReviewOptions
    from leadloop.playbook.load import load_playbook
    from leadloop.store.db import open_store

    book = yaml.safe_load(Path(PLAYBOOK).read_text())
    for rule in book["intent"]["rules"]:
        rule["points"] = -rule["points"]  # rewards the opposite of buying behaviour
    bad = workdir / "bad-candidate.yaml"
    bad.write_text(yaml.safe_dump(book, sort_keys=False))
    options = synced["options"]
    # The sandbox's buyers open an opportunity 20–60 days after their evaluation starts, so a 60-day
    # look-back is the horizon on which intent at the cut-off can be judged.
    moment = datetime.now(UTC)  # both reviews below look back from the same moment
    reviews = model_review(ModelReviewOptions(
        connection_file=options.connection_file, playbook=options.playbook, store_url=options.store_url,
        candidate_playbook=str(bad), reports_dir=str(workdir / "reports"), lookback_days=60, at=moment))
    assert len(reviews) == 3  # the current playbook, the one learned from outcomes, the user's candidate
    current, learned, candidate = reviews.values()
    assert current.converted > 10
    assert current.auc is not None and current.auc > 0.6
    assert candidate.auc is not None and candidate.auc < current.auc - 0.05
    assert current.top_tier_precision is not None and current.top_tier_recall is not None
    report = next((workdir / "reports").glob("model-review-*.html")).read_text()
    assert "<svg" in report and "Conversion by tier" in report

    # learned on the cohort scored 120 days ago, reviewed on the same people as the current playbook
    how = learned.learned
    assert how is not None and current.learned is None and candidate.learned is None
    assert how.test_cutoff == moment - timedelta(days=60) and how.train_cutoff == moment - timedelta(days=120)
    assert learned.people == current.people == how.test_people and learned.labels == current.labels
    assert learned.auc is not None and learned.auc > 0.6
    assert how.ceiling_auc is not None and 0.5 < how.ceiling_auc <= 1
    assert how.calibration and how.calibration_error is not None and how.calibration_error <= 0.05
    assert current.likelihoods is not None and len(current.likelihoods) == current.people
    assert learned.likelihoods is not None and learned.calibration_error == how.calibration_error
    written = Path(how.yaml_path)
    assert written.parent == workdir / "reports"
    assert written.name == f"candidate-playbook-{moment.date()}.yaml"
    proposed = load_playbook(written)  # a complete playbook, never made live by the review
    assert proposed.calibration is not None and proposed.calibration.horizon_days == 60
    assert "candidate learned on" in proposed.name
    with open_store(options.store_url) as store:
        live = store.live_playbook()
    assert live is not None and live.model_version != proposed.model_version
    changed = {c.rule: c.candidate for c in how.changes}
    rules = {r.id: r.points for r in proposed.intent.rules}
    assert all(rules[rule] == points for rule, points in changed.items() if rule in rules)

    # the same review with the activities left in the store and read partition by partition
    split = model_review(ModelReviewOptions(
        connection_file=options.connection_file, playbook=options.playbook, store_url=options.store_url,
        candidate_playbook=str(bad), reports_dir=str(workdir / "split"), lookback_days=60, at=moment,
        people_per_partition=500))
    split_written = Path(list(split.values())[1].learned.yaml_path)
    assert split_written.read_text() == written.read_text()
    for each in (reviews, split):  # the one difference: where each wrote its candidate
        list(each.values())[1].learned.yaml_path = None
    assert split == reviews
    split_report = next((workdir / "split").glob("model-review-*.html")).read_text()
    assert split_report.replace(str(split_written), str(written)) == report


def test_a_run_killed_during_write_back_then_a_normal_run_duplicates_nothing(crm_sandbox, prefect_harness,
                                                                              workdir):
    """SIGKILL while the first write-back batches are in flight; the next run completes the work."""
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.options import SyncOptions
    from leadloop.store.db import open_store

    connection = workdir / "killed" / "connection.json"
    connection.parent.mkdir()
    with crm_sandbox(connection, size="tiny", seed=5) as handle:
        store_url = f"sqlite:///{connection.parent / 'state.db'}"
        # the tiny world holds few sales-ready people: a lower bar gives write-back tasks to create
        book = yaml.safe_load(Path(PLAYBOOK).read_text())
        book["tiers"][0].update(min_score=12, min_fit=0, min_intent=0)
        book["tiers"][1].update(min_score=6)
        playbook = connection.parent / "low-bar.yaml"
        playbook.write_text(yaml.safe_dump(book, sort_keys=False))
        session = handle.session()
        session.post(f"{handle.admin_url}/faults", json={"rules": [
            {"endpoint": "composite/sobjects", "latency_ms": 1500},
            {"endpoint": "batch/update", "latency_ms": 1500},
        ]}, timeout=30).raise_for_status()
        reset_stats(handle)
        env = dict(os.environ, PREFECT_API_URL=prefect_harness)
        process = subprocess.Popen(
            [sys.executable, "-m", "leadloop.cli.app", "sync", "--connection-file", str(connection),
             "--playbook", str(playbook), "--store-url", store_url], env=env, cwd=PROJECT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while not write_calls(stats(handle)):
            assert process.poll() is None, "the sync ended before it wrote anything"
            assert time.monotonic() < deadline, "the sync never reached write-back"
            time.sleep(0.2)
        time.sleep(0.5)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        session.delete(f"{handle.admin_url}/faults", timeout=30).raise_for_status()

        hourly_sync(SyncOptions(connection_file=str(connection), playbook=str(playbook), store_url=store_url))
        sf = handle.salesforce()
        keys = Counter(t["LL_Key__c"] for t in sf.query_all(
            "SELECT LL_Key__c FROM Task WHERE LL_Key__c != null")["records"])
        assert keys, "the normal run after the kill created no task"
        assert max(keys.values()) == 1, "a task was created twice"
        store = open_store(store_url)
        try:
            ledger = store.ledger("salesforce")
        finally:
            store.close()
        rows = {r["Id"]: r for r in sf.query_all("SELECT Id, LL_Score__c, LL_Tier__c FROM Lead")["records"]}
        for (record_id, field), value in ledger.items():
            if record_id in rows and field in ("LL_Tier__c", "LL_Score__c"):
                shown = rows[record_id][field]
                assert (str(int(shown)) if isinstance(shown, float) else shown) == value
        written = stats(handle)["records_written"]["salesforce"]
        updates = sum(n for endpoint, n in written.items() if "composite/sobjects" in endpoint
                      and "Task" not in endpoint and "upsert" not in endpoint)
        assert updates <= len({r for r, _ in ledger}) + 200  # at most the one batch in flight again


def test_the_deployments_register_and_a_triggered_rescore_completes_on_a_process_worker(
        synced, prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    env = dict(os.environ, PREFECT_API_URL=prefect_harness, LEADLOOP_PROJECT_DIR=str(PROJECT))
    prefect = str(Path(sys.executable).with_name("prefect"))
    subprocess.run([prefect, "work-pool", "create", "leadloop-process", "--type", "process"], env=env,
                   cwd=PROJECT, capture_output=True, timeout=120)
    deployed = subprocess.run([prefect, "--no-prompt", "deploy", "--all", "--prefect-file",
                               "deployments/prefect.yaml"], env=env, cwd=PROJECT, capture_output=True,
                              text=True, timeout=300)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    with get_client(sync_client=True) as client:
        names = {d.name for d in client.read_deployments()}
    assert {"hourly-sync", "rescore", "data-quality", "model-review"} <= names

    options = synced["options"]
    run = run_deployment("rescore/rescore", timeout=0, parameters={"options": {
        "connection_file": options.connection_file, "playbook": options.playbook,
        "store_url": options.store_url, "dry_run": True, "reason": "from the deployment test",
        "scope": {"kind": "all", "values": []}}})
    worker = subprocess.run([prefect, "worker", "start", "--pool", "leadloop-process", "--run-once"],
                            env=env, cwd=PROJECT, capture_output=True, text=True, timeout=600)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state is not None and state.is_completed(), (state, worker.stdout[-2000:], worker.stderr[-2000:])
    # leadloop's own lines reach the run's logs from a worker's process too
    logs = flow_run_logs(str(run.id), "identity:")
    assert [log for log in logs if log.name == "leadloop.sync.workspace" and "identity:" in log.message]


def make_live(options: Any, playbook: Path) -> Any:
    """`playbook` made the live one by a rescore that activates it and writes nothing (its scope is
    nobody), so the next hourly sync is the run that rewrites every score; that sync's options."""
    from leadloop.flows.options import RescoreOptions, RescoreScope
    from leadloop.flows.rescore import rescore

    live = rescore(RescoreOptions(connection_file=options.connection_file, playbook=str(playbook),
                                  store_url=options.store_url, activate=True, reason="the test's new model",
                                  scope=RescoreScope(kind="emails", values=["nobody@nowhere.invalid"])))
    assert live.playbook["activated"] and live.fields_written == 0
    return options.model_copy(update={"playbook": str(playbook)})


def test_rejected_writes_end_the_flow_run_completed_with_rejections_and_the_next_run_writes_them(
        synced, workdir):
    """Runs last: it rewrites every score under a playbook one point different."""
    from prefect.client.orchestration import get_client

    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.store.db import open_store

    handle, options = synced["handle"], synced["options"]
    book = yaml.safe_load(Path(PLAYBOOK).read_text())
    book["contact_fit"]["rules"][0]["points"] += 1  # a new model version: every score is rewritten
    changed = workdir / "one-point-more.yaml"
    changed.write_text(yaml.safe_dump(book, sort_keys=False, allow_unicode=True))
    options = make_live(options, changed)
    [row] = handle.salesforce().query("SELECT Id FROM Lead WHERE LL_Tier__c != null LIMIT 1")["records"]
    lead = row["Id"]
    session = handle.session()
    session.post(f"{handle.admin_url}/faults", json={"crm": "salesforce", "reject": [
        {"object": "Lead", "id": lead, "message": "FIELD_CUSTOM_VALIDATION_EXCEPTION: flow state test"}]},
        timeout=30).raise_for_status()
    try:
        state = hourly_sync(options, return_state=True)
    finally:
        session.delete(f"{handle.admin_url}/faults", timeout=30).raise_for_status()
    assert state.is_completed() and state.name == "Completed with rejections", state
    with get_client(sync_client=True) as client:
        shown = client.read_flow_run(state.state_details.flow_run_id).state
    assert shown.name == "Completed with rejections" and "flow state test" in shown.message
    summary = state.result()
    [group] = [g for g in summary.rejection_groups() if g["crm"] == "salesforce"]
    assert group["examples"][0].startswith(lead) and group["count"] >= 1
    [named] = handle.salesforce().query(
        f"SELECT FirstName, LastName FROM Lead WHERE Id = '{lead}'")["records"]
    rows = artifact_rows(summary.run_id, "hourly-sync-rejected")
    refused = [r for r in rows if "flow state test" in r["reason"]]
    assert refused and {r["who"] for r in refused} == {f"{named['FirstName']} {named['LastName']}"}
    assert {r["crm"] for r in refused} == {"salesforce"} and refused[0]["what"].startswith("LL_")
    with open_store(options.store_url) as store:
        assert store.get_run(summary.run_id).status == "rejections"

    again = hourly_sync(options, return_state=True)
    assert again.is_completed() and again.name == "Completed"
    with open_store(options.store_url) as store:
        assert [key for key in store.ledger("salesforce") if key[0] == lead]
        assert not store.failures("salesforce")


def test_a_whole_crm_write_outage_ends_the_flow_run_failed_and_the_next_run_writes_everything(
        synced, workdir, monkeypatch):
    """Runs last: HubSpot's batch update answers 5xx for the whole run (retried quickly here), so every
    HubSpot field write fails; the flow run ends Failed, with the summary still recorded."""
    from prefect.client.orchestration import get_client

    from leadloop.connectors.retry import RetryPolicy
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.steps import WritesFailed
    from leadloop.store.db import open_store

    handle, options = synced["handle"], synced["options"]
    book = yaml.safe_load(Path(PLAYBOOK).read_text())
    book["contact_fit"]["rules"][0]["points"] += 2  # another model version: every score is rewritten
    changed = workdir / "two-points-more.yaml"
    changed.write_text(yaml.safe_dump(book, sort_keys=False, allow_unicode=True))
    options = make_live(options, changed)
    monkeypatch.setattr("leadloop.connectors.hubspot.client.RetryPolicy",
                        lambda: RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02))
    session = handle.session()
    session.post(f"{handle.admin_url}/faults", json={"crm": "hubspot", "endpoint": "batch/update",
                                                     "error_5xx_ratio": 1.0}, timeout=30).raise_for_status()
    try:
        state = hourly_sync(options, return_state=True)
    finally:
        session.delete(f"{handle.admin_url}/faults", timeout=30).raise_for_status()
    assert state.is_failed(), state
    with get_client(sync_client=True) as client:
        shown = client.read_flow_run(state.state_details.flow_run_id).state
    assert shown.is_failed() and "writes failed for all of: hubspot" in shown.message
    failed = state.result(raise_on_failure=False)
    assert isinstance(failed, WritesFailed) and failed.summary.fields_written > 0  # Salesforce's went through
    with open_store(options.store_url) as store:
        assert store.get_run(failed.summary.run_id).status == "failed"

    again = hourly_sync(options, return_state=True)
    assert again.is_completed() and again.name == "Completed"
    assert again.result().fields_written >= failed.summary.rejections > 0
