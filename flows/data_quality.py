"""The daily data-quality flow: what in the CRM data keeps the playbook from scoring well, with
counts, examples and the trend against earlier runs; optionally a data-steward task per finding."""

from __future__ import annotations

import time
from datetime import date, datetime

from prefect import flow, get_run_logger

from leadloop.crm.changes import Priority, TaskUpsert
from leadloop.crm.records import Crm
from leadloop.flows.options import DataQualityOptions
from leadloop.flows.reports import quality_markdown
from leadloop.flows.steps import run_id_for
from leadloop.flows.tasks import step
from leadloop.playbook.compiled import classify_activity, classify_title
from leadloop.scoring.quality import Finding, QualityInputs, assess_quality, fields_used, trends
from leadloop.store.facade import Store
from leadloop.sync import pipeline


@step("assess data quality")
def assess(runtime: pipeline.Runtime, now: datetime) -> list[Finding]:
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


@flow(name="data-quality", log_prints=False)
def data_quality(options: DataQualityOptions | None = None) -> list[Finding]:
    options = options or DataQualityOptions()
    logger = get_run_logger()
    started = time.monotonic()
    now = options.at or pipeline.utc_now()
    runtime = pipeline.open_runtime(options.connection_file, options.playbook, options.store_url)
    run_id = run_id_for("data-quality")
    runtime.store.start_run("data_quality", run_id=run_id)
    try:
        findings = assess(runtime, now)
        previous = previous_counts(runtime.store)
        history = trends(findings, previous)
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
    except Exception as exc:
        runtime.store.finish_run(run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        runtime.close()
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

