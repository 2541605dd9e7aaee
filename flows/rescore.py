"""On-demand rescoring, started from the Prefect UI or `leadloop rescore`: no pull, the stored
records rescored under a playbook (a new model version rescores everyone and still writes only
what changed), for a scope; as a dry run it lists every change it would make and writes nothing."""

from __future__ import annotations

from prefect import flow, get_run_logger

from leadloop.flows import artifacts, cancel, distributed, events
from leadloop.flows.options import RescoreOptions
from leadloop.flows.run_logs import leadloop_logs_in_run
from leadloop.flows.steps import SyncSummary, final_state, recorded_run, score_route_write
from leadloop.sync import pipeline, workspace


@flow(name="rescore", log_prints=False, on_crashed=[cancel.cancelled_if_interrupted],
      on_failure=[cancel.cancelled_if_interrupted])
def rescore(options: RescoreOptions | None = None) -> SyncSummary:
    """Rescore stored records for a scope; with dry_run, only show what would change."""
    options = options or RescoreOptions()
    now = options.at or pipeline.utc_now()
    extra = {"reason": options.reason, "scope": options.scope.model_dump()}
    with leadloop_logs_in_run(), cancel.cancel_watch(), \
            recorded_run(options, "rescore", extra) as (runtime, summary):
        # Dask workers open the store as the run found it: a URL without its password, or the block
        workspace.get(summary.run_id).values[distributed.STORE_SOURCE] = distributed.store_source(
            runtime.store, options.store_url, options.connection)
        score_route_write(summary, now, dry_run=summary.dry_run, min_change=options.min_change,
                          people_per_partition=options.people_per_partition, scope=options.scope)
    artifacts.publish(summary)
    events.emit_tier_changes(summary)
    planned_fields = sum(p["fields"] for p in summary.planned.values())
    planned_tasks = sum(p["tasks"] for p in summary.planned.values())
    get_run_logger().info("rescored %d people (%s); %d field changes and %d tasks %s", summary.people_scored,
                          options.reason or "no reason given", planned_fields, planned_tasks,
                          "would be written" if summary.dry_run else "planned")
    return final_state(summary)
