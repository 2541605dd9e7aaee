"""The monthly model review: score everyone as of `lookback_days` ago with only what was known then,
compare with what happened since (opportunities created and won), and report conversion by tier,
profile and segment, AUC and lift, each signal's lift, a threshold backtest, follow-up speed and
suggested weight changes — for the current playbook and, side by side, a candidate one."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from leadloop.crm.dataset import Dataset
from leadloop.crm.identity import repoint_activities
from leadloop.crm.records import Activity
from leadloop.flows import blocks, cancel
from leadloop.flows.options import ModelReviewOptions
from leadloop.flows.reports import review_markdown, write_review_html
from leadloop.flows.run_logs import leadloop_logs_in_run
from leadloop.flows.steps import run_id_for
from leadloop.flows.tasks import step
from leadloop.playbook.load import load_playbook
from leadloop.playbook.model import Playbook
from leadloop.scoring.engine import score_dataset
from leadloop.scoring.review import (
    SALES_TOUCHES,
    ModelReview,
    Outcome,
    TaskOutcome,
    outcomes_after,
    review_model,
    sla_report,
)
from leadloop.store.facade import Store
from leadloop.sync import pipeline, workspace


def as_of(dataset: Dataset, cutoff: datetime) -> Dataset:
    """The dataset as it stood at `cutoff`: people and activities that existed by then, and the
    opportunities already created (outcomes come from the later ones)."""
    people = [p for p in dataset.people if p.created_at is None or p.created_at <= cutoff]
    return Dataset(
        accounts=dataset.accounts, people=people,
        activities=[a for a in dataset.activities if a.occurred_at <= cutoff],
        opportunities=[o for o in dataset.opportunities if o.created_at is None or o.created_at <= cutoff],
        campaigns=dataset.campaigns, assets=dataset.assets, owners=dataset.owners,
        contact_roles=dataset.contact_roles,
    )


def rule_points(playbook: Playbook) -> dict[str, float]:
    return {rule.id: float(rule.points) for rule in playbook.intent.rules}


@dataclass(frozen=True, slots=True)
class StoredActivities:
    """Where a dataset's activities are when they were left in the store (a store above one
    partition: see `pipeline.load_and_resolve`), and how to split it to read them."""

    store: Store
    links: Mapping[str, str]
    people_per_partition: int


@step("review a playbook", run_name="review the {which} playbook")
def review_playbook(key: str, which: str, cutoff: datetime) -> ModelReview:
    """Score the run's dataset as it stood at `cutoff` under one of the run's playbooks (`which`:
    current or candidate) and compare with the outcomes since (both in the run's workspace)."""
    held = workspace.get(key)
    playbook: Playbook = held.values["playbooks"][which]
    outcomes: dict[str, Outcome] = held.values["outcomes"]
    stored: StoredActivities | None = held.values["stored"]
    past = as_of(held.need("dataset"), cutoff)
    if stored is None:
        result = score_dataset(playbook, past, cutoff)
    else:  # each partition reads its own activities, those that happened by the cut-off
        parts = pipeline.partitions_for(past, stored.people_per_partition)
        result = pipeline.score_from_store(playbook, stored.store, past, stored.links, cutoff, parts,
                                           until=cutoff)
    segments = {a.id: a.segment for a in past.accounts}
    return review_model(list(result.cards.values()), outcomes,
                        lambda card: segments.get(card.account_id or ""), rule_points(playbook),
                        tiers=[tier.name for tier in playbook.tiers])


def sla_summary(runtime: pipeline.Runtime, activities: Sequence[Activity], now: datetime) -> str:
    """Follow-up on leadloop's tasks. The CRMs' task status is not pulled, so a task counts as done
    at the person's first sales touch (call, sales email, meeting) after it was created; only the
    sales touches among `activities` count."""
    touches: dict[str, list[datetime]] = {}
    for activity in activities:
        if activity.kind in SALES_TOUCHES:
            touches.setdefault(activity.person_id, []).append(activity.occurred_at)
    tasks = []
    for crm in runtime.sinks:
        for row in runtime.store.task_ledger(crm.value).values():
            if row.person_id and row.due:
                due = datetime.combine(row.due, datetime.max.time(), tzinfo=row.created_at.tzinfo)
                first = min((t for t in touches.get(row.person_id, []) if t >= row.created_at), default=None)
                tasks.append(TaskOutcome(row.person_id, row.created_at, due, first))
    if not tasks:
        return "No leadloop tasks yet, so no follow-up to measure."
    report = sla_report(tasks, activities, now)
    hours = report.median_hours_to_first_touch
    return (f"{report.completed_on_time} of {report.tasks} tasks got a sales touch before their due date "
            f"({report.adherence:.0%}); {report.open_overdue} are overdue without one; median time to first "
            f"touch {'n/a' if hours is None else f'{hours:.1f} h'}.")


def _review_and_record(options: ModelReviewOptions, now: datetime, cutoff: datetime
                       ) -> tuple[dict[str, ModelReview], str, Path]:
    """Open the runtime, load and resolve the stored records into the run's workspace, review each
    playbook (a task each), write the HTML report and record the run (its failure too)."""
    runtime = pipeline.open_runtime(blocks.connection_settings(options), options.playbook, options.store_url,
                                    kind="model_review")
    run_id = run_id_for("model-review")
    runtime.store.start_run("model_review", run_id=run_id)
    try:
        with workspace.held(run_id, runtime) as held:
            store = runtime.store
            raw, identity = pipeline.load_and_resolve(store, options.people_per_partition)
            dataset = held.dataset = pipeline.merged_dataset(raw, identity)
            # Salesforce contact roles name the CRM's contact: point them at the merged person
            dataset.contact_roles = [dataclasses.replace(r, person_id=identity.person_links.get(r.person_id,
                                                                                                 r.person_id))
                                     for r in dataset.contact_roles]
            pipeline.release_pulled(raw)
            stored = None
            touches: Sequence[Activity] = dataset.activities
            if pipeline.partitions_for(dataset, options.people_per_partition) > 1:  # activities still stored
                stored = StoredActivities(store, identity.person_links, options.people_per_partition)
                touches = repoint_activities([a for a in store.iter_activities() if a.kind in SALES_TOUCHES],
                                             identity.person_links)
            held.values["stored"] = stored
            held.values["outcomes"] = outcomes_after(dataset.people, dataset.opportunities, cutoff,
                                                     now - cutoff, dataset.contact_roles)
            held.values["playbooks"] = {"current": runtime.playbook}
            current = (Path(options.playbook).name if options.playbook
                       else f"live: {runtime.playbook.model_version}")
            reviews = {f"current ({current})": review_playbook(run_id, "current", cutoff)}
            if options.candidate_playbook:
                held.values["playbooks"]["candidate"] = load_playbook(options.candidate_playbook)
                reviews[f"candidate ({Path(options.candidate_playbook).name})"] = review_playbook(
                    run_id, "candidate", cutoff)
            follow_up = sla_summary(runtime, touches, now)
        path = write_review_html(reviews, options.lookback_days, options.reports_dir, now, follow_up)
        runtime.store.finish_run(run_id, counts={
            name: {"auc": r.auc, "people": r.people, "converted": r.converted} for name, r in reviews.items()
        } | {"report": str(path)})
    except BaseException as exc:  # Ctrl-C and SIGTERM too: the run is then `cancelled` (flows.cancel)
        status, error = cancel.run_ended_by(run_id, exc)
        runtime.store.finish_run(run_id, status=status, error=error)
        if (interrupt := cancel.interrupt_behind(exc)) not in (None, exc):
            raise interrupt from None  # what stopped the run, not what it broke on the way out
        raise
    finally:
        runtime.close()
    return reviews, follow_up, path


@flow(name="model-review", log_prints=False, on_crashed=[cancel.cancelled_if_interrupted],
      on_failure=[cancel.cancelled_if_interrupted])
def model_review(options: ModelReviewOptions | None = None) -> dict[str, ModelReview]:
    options = options or ModelReviewOptions()
    logger = get_run_logger()
    started = time.monotonic()
    now = options.at or pipeline.utc_now()
    cutoff = now - timedelta(days=options.lookback_days)
    with leadloop_logs_in_run(), cancel.cancel_watch():
        reviews, follow_up, path = _review_and_record(options, now, cutoff)
    report = f"HTML report (also the threshold backtest, stages, profiles and segments): `{path}`"
    create_markdown_artifact(review_markdown(reviews, options.lookback_days) + f"\n\n{follow_up}\n\n{report}",
                             key="model-review",
                             description="scores against outcomes, current vs candidate playbook")
    for name, review in reviews.items():
        logger.info("%s: AUC %s over %d people (%d converted)", name,
                    "n/a" if review.auc is None else f"{review.auc:.3f}", review.people, review.converted)
    logger.info("report written to %s in %.1f s", path, time.monotonic() - started)
    return reviews
