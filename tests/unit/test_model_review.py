"""Model review: the score is judged against what happened afterwards."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from leadloop.crm.records import Activity, Opportunity, Person
from leadloop.scoring.review import (
    SignalLift,
    TaskOutcome,
    backtest,
    outcomes_after,
    roc_auc,
    sla_report,
    suggest_weights,
)

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def test_auc_is_one_when_every_converter_outscores_every_other():
    assert roc_auc([90, 80, 10, 5], [True, True, False, False]) == 1.0


def test_auc_is_zero_when_the_score_is_exactly_backwards():
    assert roc_auc([10, 5, 90, 80], [True, True, False, False]) == 0.0


def test_auc_counts_ties_as_half():
    assert roc_auc([50, 50], [True, False]) == 0.5


def test_auc_is_undefined_without_both_classes():
    assert roc_auc([1, 2, 3], [True, True, True]) is None


@given(st.lists(st.tuples(st.integers(0, 100), st.booleans()), min_size=2, max_size=40))
def test_auc_matches_the_pairwise_definition(pairs):
    scores = [s for s, _ in pairs]
    labels = [y for _, y in pairs]
    pos = [s for s, y in pairs if y]
    neg = [s for s, y in pairs if not y]
    expected = None
    if pos and neg:
        wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
        expected = wins / (len(pos) * len(neg))
    result = roc_auc(scores, labels)
    assert result == expected or abs(result - expected) < 1e-9


def test_an_opportunity_after_the_cutoff_counts_as_conversion_and_one_before_does_not():
    people = [Person(id="a", account_id="acc1"), Person(id="b", account_id="acc2")]
    opps = [
        Opportunity(id="o1", account_id="acc1", created_at=T0 + timedelta(days=10), is_won=True),
        Opportunity(id="o2", account_id="acc2", created_at=T0 - timedelta(days=1)),
    ]
    outcomes = outcomes_after(people, opps, T0, timedelta(days=90))
    assert outcomes["a"].converted and outcomes["a"].won
    assert not outcomes["b"].converted


def test_backtest_shows_tier_size_and_conversion_at_each_threshold():
    rows = backtest([90, 70, 50, 10], [True, False, True, False], [60, 40])
    assert (rows[0].selected, rows[0].converted) == (2, 1)
    assert (rows[1].selected, rows[1].converted, rows[1].recall) == (3, 2, 1.0)


def test_weights_are_suggested_only_where_lift_is_clear_and_never_more_than_half_a_change():
    lifts = [
        SignalLift("webinar", 50, 0.30, 0.10, 3.0, 10),
        SignalLift("page_view", 50, 0.10, 0.10, 1.0, 2),
        SignalLift("brand_webinar", 50, 0.02, 0.12, 0.2, 10),
    ]
    by_rule = {s.rule: s for s in suggest_weights(lifts)}
    assert set(by_rule) == {"webinar", "brand_webinar"}
    assert by_rule["webinar"].suggested_points == 15
    assert by_rule["brand_webinar"].suggested_points == 5
    assert "lift" in by_rule["webinar"].why


def test_sla_adherence_counts_tasks_completed_by_their_due_date():
    tasks = [
        TaskOutcome("p1", T0, T0 + timedelta(days=1), T0 + timedelta(hours=5)),
        TaskOutcome("p2", T0, T0 + timedelta(days=1), T0 + timedelta(days=3)),
        TaskOutcome("p3", T0, T0 + timedelta(days=1), None),
    ]
    calls = [Activity(id="c1", person_id="p1", kind="sales_call", occurred_at=T0 + timedelta(hours=4))]
    report = sla_report(tasks, calls, now=T0 + timedelta(days=10))
    assert (report.completed_on_time, report.completed_late, report.open_overdue) == (1, 1, 1)
    assert report.median_hours_to_first_touch == 4.0
