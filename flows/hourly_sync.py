"""The hourly sync: pull what changed in each CRM → store → identity → score → route → write back the
difference → record the run. A run that dies halfway loses nothing and duplicates nothing: cursors
move only after records are stored, field writes are diffed against the ledger, and tasks are
upserted by their deterministic key."""

from __future__ import annotations

from prefect import flow, get_run_logger

from leadloop.flows import artifacts, cancel, events, tasks
from leadloop.flows.options import SyncOptions
from leadloop.flows.run_logs import leadloop_logs_in_run
from leadloop.flows.steps import SyncSummary, final_state, recorded_run, score_route_write
from leadloop.sync import pipeline, workspace


@flow(name="hourly-sync", log_prints=False, on_crashed=[cancel.cancelled_if_interrupted],
      on_failure=[cancel.cancelled_if_interrupted])
def hourly_sync(options: SyncOptions | None = None) -> SyncSummary:
    """One incremental sync of every configured CRM."""
    options = options or SyncOptions()
    now = options.at or pipeline.utc_now()
    with leadloop_logs_in_run(), cancel.cancel_watch(), \
            recorded_run(options, "hourly_sync") as (_runtime, summary):
        for crm, stream in workspace.streams(summary.run_id):
            summary.pulls.append(tasks.pull_stream(summary.run_id, crm, stream))
        score_route_write(summary, now, dry_run=options.dry_run, min_change=options.min_change,
                          people_per_partition=options.people_per_partition)
    artifacts.publish(summary)
    events.emit_tier_changes(summary)
    get_run_logger().info("pulled %d records, scored %d people, wrote %d fields and %d tasks in %.1f s",
                          summary.records_pulled, summary.people_scored, summary.fields_written,
                          summary.tasks_created, summary.seconds)
    return final_state(summary)
