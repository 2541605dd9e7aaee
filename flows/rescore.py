"""On-demand rescoring, started from the Prefect UI or `leadloop rescore`: no pull, the stored
records rescored under a playbook (a new model version rescores everyone and still writes only
what changed), for a scope; as a dry run it lists every change it would make and writes nothing."""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from flows import artifacts, pipeline
from flows.hourly_sync import run_id_for
from flows.options import RescoreOptions
from flows.steps import SyncSummary, score_route_write


@flow(name="rescore", log_prints=False)
def rescore(options: RescoreOptions | None = None) -> SyncSummary:
    """Rescore stored records for a scope; with dry_run, only show what would change."""
    options = options or RescoreOptions()
    logger = get_run_logger()
    started = time.monotonic()
    now = options.at or pipeline.utc_now()
    runtime = pipeline.open_runtime(options.connection_file, options.playbook, options.store_url)
    summary = SyncSummary("rescore", run_id_for("rescore"), options.dry_run)
    runtime.store.start_run("rescore", run_id=summary.run_id)
    status, error = "failed", None
    try:
        score_route_write(runtime, summary, now, dry_run=options.dry_run, min_change=options.min_change,
                          scope=options.scope)
        status = "ok"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        summary.api_calls = runtime.api_calls()
        summary.seconds = time.monotonic() - started
        counts = {**summary.counts(), "reason": options.reason, "scope": options.scope.model_dump()}
        runtime.store.finish_run(summary.run_id, status=status, counts=counts,
                                 api_calls=summary.api_calls, error=error)
        runtime.close()
    artifacts.publish(summary)
    planned_fields = sum(p["fields"] for p in summary.planned.values())
    planned_tasks = sum(p["tasks"] for p in summary.planned.values())
    logger.info("rescored %d people (%s); %d field changes and %d tasks %s", summary.people_scored,
                options.reason or "no reason given", planned_fields, planned_tasks,
                "would be written" if options.dry_run else "planned")
    return summary
