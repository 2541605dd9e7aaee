"""The monthly model review: score everyone as of `lookback_days` ago with only what was known then,
compare with what happened since (opportunities created and won), and report conversion by tier,
profile and segment, AUC and lift, each signal's lift, a threshold backtest, follow-up speed and
suggested weight changes — for the current playbook and, side by side, a candidate one.

It also learns from outcomes (scoring/learn.py), on a time-based split: trained on the cohort scored
2 × lookback ago (outcomes up to lookback ago), measured on the cohort the review reports (scored
lookback ago, outcomes since). It writes a candidate playbook, re-weighted where the evidence is clear
and calibrated (`candidate-playbook-<date>.yaml` in the reports folder, never made live), reviews it
next to the current one, calibrates both into likelihoods, and measures the ceiling a
gradient-boosting model on raw features reaches on the same people."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from leadloop.crm.dataset import Dataset
from leadloop.crm.identity import repoint_activities
from leadloop.crm.records import Account, Activity, CustomerType, Opportunity
from leadloop.flows import blocks, cancel, distributed
from leadloop.flows.options import ModelReviewOptions
from leadloop.flows.reports import review_markdown, write_review_html
from leadloop.flows.run_logs import leadloop_logs_in_run
from leadloop.flows.steps import run_id_for
from leadloop.flows.tasks import step
from leadloop.playbook.load import load_playbook, parse_playbook
from leadloop.playbook.model import Playbook
from leadloop.scoring import learn
from leadloop.scoring.calibration import rates_at
from leadloop.scoring.engine import score_dataset
from leadloop.scoring.review import (
    SALES_TOUCHES,
    CalibrationBin,
    LearnedCandidate,
    ModelReview,
    Outcome,
    TaskOutcome,
    outcomes_after,
    review_model,
    sla_report,
)
from leadloop.scoring.scorecard import ScoreCard
from leadloop.store.facade import Store
from leadloop.sync import pipeline, workspace


def as_of(dataset: Dataset, cutoff: datetime) -> Dataset:
    """The dataset as it stood at `cutoff`: people and activities that existed by then, the
    opportunities already created (outcomes come from the later ones), and accounts as customers only
    if they were customers then (`customers_then`)."""
    people = [p for p in dataset.people if p.created_at is None or p.created_at <= cutoff]
    return Dataset(
        accounts=customers_then(dataset.accounts, dataset.opportunities, cutoff), people=people,
        activities=[a for a in dataset.activities if a.occurred_at <= cutoff],
        opportunities=[o for o in dataset.opportunities if o.created_at is None or o.created_at <= cutoff],
        campaigns=dataset.campaigns, assets=dataset.assets, owners=dataset.owners,
        contact_roles=dataset.contact_roles,
    )


def customers_then(accounts: Sequence[Account], opportunities: Sequence[Opportunity], cutoff: datetime
                   ) -> list[Account]:
    """`accounts` with the customer type they had at `cutoff`, as far as the opportunities tell: an
    account that is a customer today, and whose every won opportunity closed after the cut-off, became
    one since (the CRM flips the type at the first win), so it was a prospect then. Without this the
    outcome leaks into the review: the wins it is meant to predict would make their accounts customers
    at the cut-off. An account with no won opportunity on record keeps its type (a customer from
    before the records)."""
    first_win: dict[str, date] = {}
    for opp in opportunities:
        if opp.is_won and opp.account_id:
            closed = opp.close_date or (opp.created_at.date() if opp.created_at else None)
            if closed is not None and (opp.account_id not in first_win or closed < first_win[opp.account_id]):
                first_win[opp.account_id] = closed
    day = cutoff.date()
    return [dataclasses.replace(a, customer_type=CustomerType.PROSPECT)
            if a.customer_type == CustomerType.CUSTOMER and a.id in first_win and first_win[a.id] > day else a
            for a in accounts]


def rule_points(playbook: Playbook) -> dict[str, float]:
    return {rule.id: float(rule.points) for rule in playbook.intent.rules}


@dataclass(frozen=True, slots=True)
class StoredActivities:
    """Where a dataset's activities are when they were left in the store (a store above one
    partition: see `pipeline.load_and_resolve`), and how to split it to read them."""

    store: Store
    links: Mapping[str, str]
    people_per_partition: int


def _cards_at(held: workspace.Workspace, playbook: Playbook, cutoff: datetime
              ) -> tuple[Dataset, list[ScoreCard]]:
    """The run's dataset as it stood at `cutoff`, and everyone's card under `playbook` then."""
    stored: StoredActivities | None = held.values["stored"]
    past = as_of(held.need("dataset"), cutoff)
    if stored is None:
        result = score_dataset(playbook, past, cutoff)
    else:  # each partition reads its own activities, those that happened by the cut-off
        parts = pipeline.partitions_for(past, stored.people_per_partition)
        dask = distributed.dask_settings()  # on Dask workers, all at once; else here, one after the other
        run = None if dask is None else distributed.stored_run(
            dask, held.values.get(distributed.STORE_SOURCE) or distributed.store_source(stored.store),
            playbook, stored.links, cutoff)
        result = pipeline.score_from_store(playbook, stored.store, past, stored.links, cutoff, parts, run=run,
                                           until=cutoff)
    return past, list(result.cards.values())


@step("review a playbook", run_name="review the {which} playbook")
def review_playbook(key: str, which: str, cutoff: datetime) -> ModelReview:
    """Score the run's dataset as it stood at `cutoff` under one of the run's playbooks (`which`:
    current, learned or candidate) and compare with the outcomes since (both in the run's workspace).
    With a calibration for it (learned on the older cohort), each person's likelihood and the
    calibration error on this cohort."""
    held = workspace.get(key)
    playbook: Playbook = held.values["playbooks"][which]
    outcomes: dict[str, Outcome] = held.values["outcomes"]
    past, cards = _cards_at(held, playbook, cutoff)
    segments = {a.id: a.segment for a in past.accounts}
    reviewed = sorted(card.person_id for card in cards  # the people `review_model` pairs, in its order
                      if card.person_id in outcomes and not outcomes[card.person_id].in_open_opportunity)
    held.values.setdefault("reviewed", {})[which] = reviewed
    review = review_model(cards, outcomes, lambda card: segments.get(card.account_id or ""),
                          rule_points(playbook), tiers=[tier.name for tier in playbook.tiers])
    bins: list[CalibrationBin] = held.values.get("calibrations", {}).get(which, [])
    if bins:
        review.calibration = bins
        review.likelihoods = rates_at(review.scores, bins)
        review.calibration_error = learn.calibration_error(bins, review.scores, review.labels)
    return review


@dataclass(frozen=True, slots=True)
class Split:
    """The review's time-based split: train on the cohort scored at `train_cutoff` (outcomes up to
    `test_cutoff`), test on the one scored at `test_cutoff` (outcomes up to `now`)."""

    train_cutoff: datetime
    test_cutoff: datetime
    now: datetime


def _labelled(held: workspace.Workspace, cards: Sequence[ScoreCard], cutoff: datetime, end: datetime
              ) -> tuple[list[ScoreCard], list[bool]]:
    """The cards in person order and whether each person converted within (cutoff, end]; people
    already on an open opportunity at `cutoff` are left out, as in `review_model`."""
    dataset: Dataset = held.need("dataset")
    outcomes = outcomes_after((p for p in dataset.people if p.id in {c.person_id for c in cards}),
                              dataset.opportunities, cutoff, end - cutoff, dataset.contact_roles)
    ordered = sorted((c for c in cards if not outcomes[c.person_id].in_open_opportunity),
                     key=lambda card: card.person_id)
    return ordered, [outcomes[card.person_id].converted for card in ordered]


@step("learn a candidate playbook")
def learn_candidate(key: str, split: Split, horizon_days: int, reports_dir: str) -> LearnedCandidate | None:
    """Fit the candidate on the older cohort (scoring/learn.py), calibrate it and the current playbook
    on that cohort, and write the candidate's YAML into `reports_dir`. The candidate and both
    calibrations are left in the run's workspace for `review_playbook`. None when the older cohort
    has nothing to learn from (nobody converted, or everybody did)."""
    held = workspace.get(key)
    runtime = held.runtime
    current: Playbook = held.values["playbooks"]["current"]
    _, cards = _cards_at(held, current, split.train_cutoff)
    cards, labels = _labelled(held, cards, split.train_cutoff, split.test_cutoff)
    if not 0 < sum(labels) < len(labels):
        get_run_logger().warning("no learned candidate: of the %d people scored on %s, %d converted by %s",
                                 len(labels), split.train_cutoff.date(), sum(labels),
                                 split.test_cutoff.date())
        return None
    learned_on = split.now.date()
    text = runtime.choice.text if runtime.choice is not None else None
    if text is None:
        raise RuntimeError("the current playbook's text is not known, so no candidate can be written from it")
    candidate_text, changes, kept = learn.fit_candidate(text, current, cards, labels, learned_on=learned_on,
                                                        horizon_days=horizon_days)
    candidate = parse_playbook(candidate_text, source="the learned candidate")
    _, candidate_cards = _cards_at(held, candidate, split.train_cutoff)
    candidate_cards, _ = _labelled(held, candidate_cards, split.train_cutoff, split.test_cutoff)
    calibration = learn.fit_calibration([c.score for c in candidate_cards], labels)
    candidate_text = learn.with_calibration(candidate_text, calibration, horizon_days=horizon_days,
                                            learned_on=learned_on)
    path = Path(reports_dir) / f"candidate-playbook-{learned_on.isoformat()}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(candidate_text, encoding="utf-8")
    held.values["playbooks"]["learned"] = parse_playbook(candidate_text, source=str(path))
    held.values["calibrations"] = {"current": learn.fit_calibration([c.score for c in cards], labels),
                                   "learned": calibration}
    held.values["train"] = [c.person_id for c in cards], labels
    return LearnedCandidate(split.train_cutoff, split.test_cutoff, len(cards), 0, str(path), changes, kept,
                            calibration)


@step("measure the ceiling")
def measure_ceiling(key: str, split: Split) -> float | None:
    """Held-out AUC of gradient boosting on raw features (no playbook points): trained on the older
    cohort (`learn_candidate`'s), measured on the people the current playbook's review paired with an
    outcome. None when a cohort lacks converters or non-converters. With the activities left in the
    store, they are read from it once here."""
    held = workspace.get(key)
    train_people, train_labels = held.values["train"]
    outcomes: dict[str, Outcome] = held.values["outcomes"]
    test_people = held.values["reviewed"]["current"]
    test_labels = [outcomes[person].converted for person in test_people]
    if not (0 < sum(train_labels) < len(train_labels) and 0 < sum(test_labels) < len(test_labels)):
        return None
    dataset: Dataset = held.need("dataset")
    stored: StoredActivities | None = held.values["stored"]
    if stored is not None:
        activities = repoint_activities([a for a in stored.store.iter_activities()
                                         if a.occurred_at <= split.test_cutoff], stored.links)
        dataset = dataclasses.replace(dataset, activities=activities)
    train_X = learn.raw_features(as_of(dataset, split.train_cutoff), train_people, split.train_cutoff)
    test_X = learn.raw_features(as_of(dataset, split.test_cutoff), test_people, split.test_cutoff)
    return learn.ceiling_auc(train_X, train_labels, test_X, test_labels)


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
            held.values[distributed.STORE_SOURCE] = distributed.store_source(store, options.store_url,
                                                                             options.connection)
            held.values["outcomes"] = outcomes_after(dataset.people, dataset.opportunities, cutoff,
                                                     now - cutoff, dataset.contact_roles)
            held.values["playbooks"] = {"current": runtime.playbook}
            current = (Path(options.playbook).name if options.playbook
                       else f"live: {runtime.playbook.model_version}")
            split = Split(cutoff - (now - cutoff), cutoff, now)
            learned = learn_candidate(run_id, split, options.lookback_days, options.reports_dir)
            reviews = {f"current ({current})": review_playbook(run_id, "current", cutoff)}
            if learned is not None:
                tested = review_playbook(run_id, "learned", cutoff)
                learned.test_people = tested.people
                learned.calibration_error = tested.calibration_error
                learned.ceiling_auc = measure_ceiling(run_id, split)
                tested.learned = learned
                reviews[f"learned candidate ({Path(learned.yaml_path or '').name})"] = tested
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
