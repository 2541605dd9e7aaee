"""The hourly sync: pull what changed in each CRM → store → identity → score → route → write back the
difference → record the run. A run that dies halfway loses nothing and duplicates nothing: cursors
move only after records are stored, field writes are diffed against the ledger, and tasks are
upserted by their deterministic key."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.futures import wait

from leadloop.flows import artifacts, cancel, events, tasks
from leadloop.flows.options import SyncOptions
from leadloop.flows.run_logs import leadloop_logs_in_run
from leadloop.flows.steps import SyncSummary, final_state, recorded_run, score_route_write
from leadloop.sync import pipeline, workspace
from leadloop.sync.pipeline import PullStats


@flow(name="hourly-sync", log_prints=False, on_crashed=[cancel.cancelled_if_interrupted],
      on_failure=[cancel.cancelled_if_interrupted])
def hourly_sync(options: SyncOptions | None = None) -> SyncSummary:
    """One incremental sync of every configured CRM; the pulls run at once, then the rest in order."""
    options = options or SyncOptions()
    now = options.at or pipeline.utc_now()
    with leadloop_logs_in_run(), cancel.cancel_watch(), \
            recorded_run(options, "hourly_sync") as (_runtime, summary):
        summary.pulls.extend(pull_every_stream(summary.run_id))
        score_route_write(summary, now, dry_run=options.dry_run, min_change=options.min_change,
                          people_per_partition=options.people_per_partition, hourly=True,
                          everyone=options.rescore_everyone)
    artifacts.publish(summary)
    events.emit_tier_changes(summary)
    get_run_logger().info("pulled %d records, scored %d people, wrote %d fields and %d tasks in %.1f s",
                          summary.records_pulled, summary.people_scored, summary.fields_written,
                          summary.tasks_created, summary.seconds)
    return final_state(summary)


def pull_every_stream(run_id: str) -> list[PullStats]:
    """Every stream of every CRM, each its own task run, all at once: a stream's pages follow one
    another, so streams side by side are what keeps the calls each CRM's client lets fly busy (a
    source takes as many of its streams at once as it can: `pipeline.pull_stream`). Returns their
    stats in pull order once all have ended; the first that failed raises then. Where the step is a
    plain function (the flow's body run without Prefect's engine), one stream after the other."""
    pull = tasks.pull_stream
    streams = workspace.streams(run_id)
    if not hasattr(pull, "submit"):
        return [pull(run_id, crm, stream) for crm, stream in streams]
    futures = []
    try:
        futures += [pull.submit(run_id, crm, stream) for crm, stream in streams]
        wait(futures)
    except BaseException:  # Ctrl-C, SIGTERM, a cancel: the streams still pulling end at their next call
        pipeline.stop_pulls(workspace.get(run_id).runtime,
                            lambda: wait(futures, timeout=pipeline.STOP_GRACE_SECONDS))
        raise
    return [future.result() for future in futures]
