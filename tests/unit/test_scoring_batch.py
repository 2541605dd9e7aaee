"""Reasons and scorecards built in batches are the same objects the constructor would build."""

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadloop.crm import batch as crm_batch
from leadloop.crm.batch import build_many
from leadloop.playbook.wording import signed
from leadloop.scoring.intent import stable_argsort
from leadloop.scoring.intent_lines import (
    _block_order,
    _day_words,
    _sentences,
    _signed_words,
    _value_words,
    _Words,
    on_day,
)
from leadloop.scoring.scorecard import Reason, ReasonKind, ScoreCard

WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

def test_batch_built_reasons_equal_constructed_ones():
    built = build_many(
        Reason,
        2,
        {
            "kind": repeat(ReasonKind.INTENT, 2),
            "rule": ["evk_request", "datasheet"],
            "points": [25.0, 4.5],
            "text": ["+25 requested EVK-7710 2 days ago", "+4.5 downloaded DS-1 (3 times), last 1 day ago"],
            "occurred_at": [WHEN, None],
        },
    )
    assert built == [
        Reason(ReasonKind.INTENT, "evk_request", 25.0, "+25 requested EVK-7710 2 days ago", WHEN),
        Reason(ReasonKind.INTENT, "datasheet", 4.5, "+4.5 downloaded DS-1 (3 times), last 1 day ago", None),
    ]
    assert built[0].why is None and built[1].asset is None


def test_batch_built_scorecards_take_defaults_for_fields_without_a_column():
    [card] = build_many(
        ScoreCard,
        1,
        {
            "person_id": ["p-1"],
            "account_id": [None],
            "model_version": ["abc"],
            "scored_at": [WHEN],
            "profile": [None],
            "fit": [10.0],
            "intent": [0.0],
            "account_fit": [0.0],
            "account_intent": [0.0],
            "score": [5.0],
            "tier": ["Nurture"],
        },
    )
    assert card == ScoreCard("p-1", None, "abc", WHEN, None, 10.0, 0.0, 0.0, 0.0, 5.0, "Nurture")
    assert card.reasons == () and card.contact_fit == 0.0


def test_a_column_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match=r"Reason\.rule"):
        build_many(
            Reason,
            2,
            {"kind": repeat(ReasonKind.FIT, 2), "rule": ["a"], "points": [1.0, 2.0], "text": ["x", "y"]},
        )


def test_a_class_whose_init_does_more_than_assign_is_refused():
    @dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")

    with pytest.raises(TypeError, match="only assigns"):
        build_many(Checked, 1, {"value": [-1]})


def test_batch_built_instances_hold_their_values_and_let_go_of_them():
    first, second = ("".join(["a reason line no one else holds", mark]) for mark in "!?")
    held = sys.getrefcount(first), sys.getrefcount(second)
    built = build_many(
        Reason,
        1000,
        {
            "kind": repeat(ReasonKind.FIT, 1000),
            "rule": repeat("r", 1000),
            "points": repeat(1.0, 1000),
            "text": repeat(first, 1000),
        },
    )
    assert sys.getrefcount(first) == held[0] + 1000
    assert all(reason.text is first for reason in built)
    crm_batch.fill_slot(built, Reason.text, repeat(second, 1000))  # overwriting lets go of the old
    assert (sys.getrefcount(first), sys.getrefcount(second)) == (held[0], held[1] + 1000)
    del built
    assert sys.getrefcount(second) == held[1]


@given(
    st.lists(
        st.one_of(st.floats(1.79e9, 1.79e9 + 7200), st.floats(1.79e9, 1.79e9 + 90 * 86400),
                  st.floats(0, 3000 * 86400), st.floats(-86400, 86400)),
        max_size=300,
    )
)
@settings(max_examples=200, deadline=None)
def test_days_worded_for_many_hits_at_once_read_as_each_alone(seconds):
    assert _day_words(np.array(seconds, dtype=np.float64)).expand() == [on_day(s) for s in seconds]


def test_a_day_is_named_by_its_utc_date_never_by_its_age():
    assert on_day(datetime(2026, 11, 28, 23, 59, 59, tzinfo=UTC).timestamp()) == "on 2026-11-28"
    assert on_day(datetime(2026, 11, 29, tzinfo=UTC).timestamp()) == "on 2026-11-29"


@given(st.lists(st.integers(min_value=0, max_value=6), max_size=300))
@settings(max_examples=300, deadline=None)
def test_the_fast_stable_sort_orders_like_numpys_stable_sort_ties_included(values):
    keys = np.array(values, dtype=np.int64)
    assert stable_argsort(keys).tolist() == np.argsort(keys, kind="stable").tolist()


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=5),
            st.sampled_from([0.0, 1.5, 2.25, 7.0, 30.0]),
            st.integers(min_value=0, max_value=3),
        ),
        max_size=200,
    ).map(sorted),
    st.permutations(["datasheet", "evk_request", "app_note", "webinar"]),
)
@settings(max_examples=300, deadline=None)
def test_reason_blocks_order_by_person_then_value_then_rule_id(hits, rule_ids):
    hp = np.array([h[0] for h in hits], dtype=np.int64)
    kept = np.array([h[1] for h in hits], dtype=np.float64)
    r = np.array([h[2] for h in hits], dtype=np.int64)
    by_id = np.array([sorted(rule_ids).index(x) for x in rule_ids], dtype=np.int64)
    expected = np.lexsort((by_id[r] if len(r) else r, -kept, hp))
    assert _block_order(hp, kept, rule_ids, r).tolist() == expected.tolist()


@given(
    st.lists(
        st.one_of(
            st.floats(-1e6, 1e6),
            st.integers(-2000, 2000).map(lambda k: k * 0.05),  # on or beside the x.x5 boundaries
            st.sampled_from(
                [0.0, -0.0, -0.04, 0.05, -0.05, 0.25, 2.45, 0.45, 1e9, 123456789.25, -1e13, float("inf")]
            ),
        ),
        max_size=300,
    )
)
@settings(max_examples=300, deadline=None)
def test_signed_points_worded_once_per_tenth_read_exactly_as_each_alone(values):
    assert _signed_words(np.array(values, dtype=np.float64)).expand() == [signed(v) for v in values]


@given(
    st.lists(
        st.tuples(st.sampled_from([1.0, 2.5, 4.0]), st.integers(1, 4), st.integers(0, 3)),
        max_size=200,
    )
)
@settings(max_examples=200, deadline=None)
def test_sentences_built_once_per_combination_read_as_each_built_alone(rows):
    points = np.array([row[0] for row in rows], dtype=np.float64)
    counts = np.array([row[1] for row in rows], dtype=np.int64)
    # four keys, two wordings: as with asset wordings, different keys may read the same
    names = _Words(["DS-1", "DS-1", "EVK-7", "DS-1"], np.array([row[2] for row in rows], dtype=np.int64))

    def make(p, n, x):
        return f"{p} {x} ({n} times)"

    texts = _sentences([_value_words(points, signed), _value_words(counts), names], make)
    assert texts == [make(signed(p), n, names.words[k]) for p, n, k in rows]
    assert len({id(t) for t in texts}) == len(set(texts))  # equal sentences are one string
