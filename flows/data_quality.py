"""The daily data-quality flow: what in the CRM data keeps the playbook from scoring well, with
counts, examples and the trend against earlier runs; optionally a data-steward task per finding."""

from __future__ import annotations

import time
from datetime import date, datetime

from prefect import flow, get_run_logger

from leadloop.crm.changes import Priority, TaskUpsert
from leadloop.crm.records import Crm
from leadloop.flows import blocks, cancel
from leadloop.flows.options import DataQualityOptions
from leadloop.flows.reports import quality_markdown
from leadloop.flows.run_logs import leadloop_logs_in_run
from leadloop.flows.steps import run_id_for
from leadloop.flows.tasks import step
from leadloop.playbook.compiled import classify_activity, classify_title
from leadloop.scoring.quality import Finding, QualityInputs, Trend, assess_quality, fields_used, trends
from leadloop.store.facade import Store
from leadloop.sync import pipeline, workspace


@step("assess data quality")
def assess(key: str, now: datetime) -> list[Finding]:
    """Every data-quality check over the stored records of the run `key` (its workspace's store)."""
    runtime = workspace.get(key).runtime
    store, playbook = runtime.store, runtime.playbook
    raw = store.load_records(skip=("activities",))  # the activities are read a few thousand people at a time
    quarantined = [(f"{q.crm}:{q.stream}:{q.crm_id}", q.reason) for q in store.quarantined()]
    conflicts = store.identity_conflicts()
    extra = [Finding("identity_conflicts", "records identity could not settle alone", len(conflicts),
                     len(raw.people) + len(raw.accounts),
                     tuple(f"{c.kind}: {c.detail}"[:120] for c in conflicts[:5]), "warning",
                     "fix the cross-ids or merge the records in the CRM")]
    return assess_quality(QualityInputs(
        people=raw.people, accounts=raw.accounts, activities=store.iter_activities(),
        fields_used=fields_used(playbook),
        classify_title=lambda title: classify_title(playbook, title).matched,
        classify_activity=lambda activity: classify_activity(playbook, activity) is not None,
        quarantined=quarantined, now=now, extra=extra,
    ))


def previous_counts(store: Store) -> dict[str, int]:
    latest: dict[str, int] = {}
    for row in sorted(store.dq_history(), key=lambda r: r.found_at):
        latest[row.finding_class] = row.count
    return latest


def steward_tasks(findings: list[Finding], crms: list[Crm], steward: dict[Crm, str], today: date
                  ) -> list[TaskUpsert]:
    """One task per finding class with problems, per CRM, keyed by class and ISO week (idempotent)."""
    year, week, _ = today.isocalendar()
    tasks = []
    for finding in findings:
        if finding.count == 0 or finding.severity == "info":
            continue
        for crm in crms:
            if crm not in steward:
                continue
            tasks.append(TaskUpsert(
                crm=crm, key=f"dq:{finding.check}:{year}-W{week:02d}"[:80], owner_id=steward[crm],
                subject=f"Data quality: {finding.count} {finding.title}"[:255],
                body=f"{finding.title}: {finding.count} of {finding.total}.\nExamples: "
                     f"{'; '.join(finding.examples)}\nFix: {finding.fix}",
                due_date=today, priority=Priority.NORMAL, reason=f"data quality {finding.check}"))
    return tasks


def _assess_and_record(options: DataQualityOptions, now: datetime) -> tuple[list[Finding], list[Trend]]:
    """Open the runtime, assess, save the findings, create the steward's tasks when asked, and record
    the run (its failure too); the runtime's workspace is held under the run's id meanwhile."""
    runtime = pipeline.open_runtime(blocks.connection_settings(options), options.playbook, options.store_url,
                                    kind="data_quality")
    run_id = run_id_for("data-quality")
    runtime.store.start_run("data_quality", run_id=run_id)
    try:
        with workspace.held(run_id, runtime):
            findings = assess(run_id, now)
        history = trends(findings, previous_counts(runtime.store))
        runtime.store.save_dq_findings(run_id, {f.check: (f.count, list(f.examples)) for f in findings}, now)
        created = 0
        if options.steward_tasks and runtime.playbook.routing and runtime.playbook.routing.fallback_owner:
            raw = runtime.store.load_records()
            directory = pipeline.owner_directory(raw)
            owner = runtime.playbook.routing.fallback_owner
            ids = {crm: i for crm in runtime.sinks if (i := directory.crm_owner_id(owner, crm))}
            for crm, sink in runtime.sinks.items():
                wanted = steward_tasks(findings, [crm], ids, now.date())
                known = runtime.store.task_rows(crm.value, [t.key for t in wanted])
                batch = [t for t in wanted if t.key not in known]
                if batch:  # through the outbox, as every task: a rejected one is sent again by the sync
                    runtime.store.queue_tasks(crm.value, batch, run_id)
                    results = sink.upsert_tasks(batch)
                    created += runtime.store.record_task_results(crm.value, batch, results, run_id).written
        runtime.store.finish_run(run_id, counts={"findings": sum(1 for f in findings if f.count),
                                                 "steward_tasks": created},
                                 api_calls=runtime.api_calls())
    except BaseException as exc:  # Ctrl-C and SIGTERM too: the run is then `cancelled` (flows.cancel)
        status, error = cancel.run_ended_by(run_id, exc)
        runtime.store.finish_run(run_id, status=status, error=error)
        if (interrupt := cancel.interrupt_behind(exc)) not in (None, exc):
            raise interrupt from None  # what stopped the run, not what it broke on the way out
        raise
    finally:
        runtime.close()
    return findings, history


@flow(name="data-quality", log_prints=False, on_crashed=[cancel.cancelled_if_interrupted],
      on_failure=[cancel.cancelled_if_interrupted])
def data_quality(options: DataQualityOptions | None = None) -> list[Finding]:
    options = options or DataQualityOptions()
    logger = get_run_logger()
    started = time.monotonic()
    now = options.at or pipeline.utc_now()
    with leadloop_logs_in_run(), cancel.cancel_watch():
        findings, history = _assess_and_record(options, now)
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(quality_markdown(findings, history), key="data-quality-summary",
                             description="data-quality findings with the trend against the last run")
    create_table_artifact(
        [{"check": f.check, "count": f.count, "of": f.total, "severity": f.severity,
          "change": "new" if t.change is None else t.change} for f, t in zip(findings, history, strict=True)],
        key="data-quality-findings", description="every data-quality check")
    logger.info("%d checks found problems in %.1f s", sum(1 for f in findings if f.count),
                time.monotonic() - started)
    return findings

