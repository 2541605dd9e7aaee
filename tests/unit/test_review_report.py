"""The model review as people read it: charts drawn with matplotlib (ROC, gains, calibration, score
distributions, conversion by tier with intervals) inlined as SVG, the playbooks side by side, a red
flag when a lower tier converts above a higher one, the signals that lost their power, what a learned
candidate changes, and the same headline in the artifact and the terminal."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from matplotlib.text import Text

from leadloop.cli.output import console
from leadloop.cli.review import print_review
from leadloop.flows import charts
from leadloop.flows.reports import render_review_html, review_markdown, write_review_html
from leadloop.scoring.review import (
    CalibrationBin,
    LearnedCandidate,
    ModelReview,
    Outcome,
    SignalLift,
    WeightChange,
    review_model,
    roc_auc,
    tier_inversions,
    wilson_interval,
)
from leadloop.scoring.scorecard import ScoreCard

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TIERS = ("Sales priority", "Nurture", "Unqualified for now")


def a_review(
    version: str, tiers: dict[str, tuple[int, int]], *, seed: int = 1, order=TIERS, likelihoods: bool = False
) -> ModelReview:
    """A review of people in `tiers` ({tier: (people, converted)}), scored in bands by tier order
    (best tier highest), through `review_model` as the flow makes it."""
    draw = random.Random(seed)
    cards, outcomes = [], {}
    for rank, (tier, (people, converted)) in enumerate(tiers.items()):
        top = 90 - 30 * (order.index(tier) if tier in order else rank)
        for k in range(people):
            person = f"{tier[:3]}-{k:04d}"
            cards.append(
                ScoreCard(
                    person, None, version, NOW, None, 0, 0, 0, 0, round(draw.uniform(top - 29, top), 1), tier
                )
            )
            outcomes[person] = Outcome(person, converted=k < converted)
    review = review_model(cards, outcomes, lambda card: None, {}, tiers=order)
    if likelihoods:  # the tier's rate, as a calibration by tier would give
        rate = {tier: converted / people for tier, (people, converted) in tiers.items()}
        by_person = {card.person_id: rate[card.tier] for card in cards}
        review.likelihoods = [by_person[c.person_id] for c in sorted(cards, key=lambda c: c.person_id)]
        review.calibration_error = 0.021
    return review


def ranked() -> ModelReview:
    return a_review(
        "semi-1", {"Sales priority": (40, 18), "Nurture": (160, 24), "Unqualified for now": (400, 8)}
    )


def inverted() -> ModelReview:
    """The sandbox's own case: the top tier converts below the middle one."""
    return a_review(
        "semi-2", {"Sales priority": (120, 6), "Nurture": (200, 60), "Unqualified for now": (300, 6)}, seed=2
    )


def learned_review() -> ModelReview:
    review = a_review(
        "semi-1-learned",
        {"Sales priority": (50, 22), "Nurture": (150, 20), "Unqualified for now": (400, 8)},
        seed=3,
        likelihoods=True,
    )
    review.learned = LearnedCandidate(
        NOW - timedelta(days=240),
        NOW - timedelta(days=120),
        1734,
        review.people,
        "reports/candidate-playbook-2026-12-01.yaml",
        [
            WeightChange(
                "sample_request",
                "intent rule",
                28,
                40,
                "57 people asked for samples; 7.0% converted against 3.3% without (fitted ×1.6 ±0.3)",
                0.97,
            ),
            WeightChange("contact_fit", "blend", 0.15, 0.09, "no clear evidence of its own; rescaled", 0.0),
        ],
        kept=66,
        calibration_error=0.021,
        ceiling_auc=0.871,
    )
    review.calibration = [CalibrationBin(0, 40, 0.02, 400, 8), CalibrationBin(40, 100, 0.21, 200, 42)]
    return review


# ------------------------------------------------------------------------------------------ inversions


def test_a_middle_tier_converting_above_the_top_tier_is_an_inversion_beyond_the_intervals():
    (found,) = tier_inversions(inverted())
    assert (found.higher.group, found.higher.converted, found.higher.people) == ("Sales priority", 6, 120)
    assert (found.lower.group, found.lower.converted, found.lower.people) == ("Nurture", 60, 200)
    assert found.beyond_intervals  # 5% (2.3–10.5%) against 30% (24–37%)
    assert found.higher_interval == wilson_interval(6, 120) and found.lower_interval == wilson_interval(
        60, 200
    )


def test_tiers_that_convert_in_their_order_raise_no_flag():
    assert tier_inversions(ranked()) == []


def test_an_inversion_on_a_handful_of_people_is_flagged_as_possibly_chance():
    review = a_review("x", {"Sales priority": (10, 1), "Nurture": (12, 3), "Unqualified for now": (50, 1)})
    (found,) = tier_inversions(review)
    assert found.lower.group == "Nurture" and not found.beyond_intervals


def test_every_pair_out_of_order_is_listed_best_ranked_first_and_empty_tiers_are_left_out():
    review = a_review("x", {"Sales priority": (50, 1), "Nurture": (50, 5), "Unqualified for now": (50, 10)})
    assert [(i.higher.group, i.lower.group) for i in tier_inversions(review)] == [
        ("Sales priority", "Nurture"),
        ("Sales priority", "Unqualified for now"),
        ("Nurture", "Unqualified for now"),
    ]
    nobody_on_top = a_review(
        "x", {"Sales priority": (0, 0), "Nurture": (50, 5), "Unqualified for now": (50, 1)}
    )
    assert tier_inversions(nobody_on_top) == []


def test_without_a_tier_order_nothing_is_compared():
    review = a_review("x", {"Sales priority": (50, 1), "Nurture": (50, 25)}, order=())
    assert review.tiers == () and tier_inversions(review) == []


def test_the_wilson_interval_holds_the_rate_and_stays_within_zero_and_one():
    assert wilson_interval(0, 5)[0] == 0.0 and 0.4 < wilson_interval(0, 5)[1] < 0.5
    low, high = wilson_interval(60, 200)
    assert low < 0.3 < high and round(low, 3) == 0.241 and round(high, 3) == 0.367
    assert wilson_interval(0, 0) == (0.0, 1.0)


# ------------------------------------------------------------------------------------------ curves


def test_the_roc_curve_steps_through_the_scores_and_takes_ties_together():
    fpr, tpr = charts.roc_points([9, 7, 7, 1], [True, True, False, False])
    assert list(zip(fpr, tpr, strict=True)) == [(0, 0), (0, 0.5), (0.5, 1.0), (1.0, 1.0)]


def test_the_area_under_the_drawn_roc_curve_is_the_reviews_auc():
    review = inverted()
    fpr, tpr = charts.roc_points(review.scores, review.labels)
    area = sum((fpr[k + 1] - fpr[k]) * (tpr[k + 1] + tpr[k]) / 2 for k in range(len(fpr) - 1))
    assert area == pytest.approx(roc_auc(review.scores, review.labels))


def test_cumulative_gains_reach_every_converter_when_everyone_is_contacted():
    review = ranked()
    contacted, captured = charts.gains_points(review.scores, review.labels)
    assert (contacted[0], captured[0], contacted[-1], captured[-1]) == (0, 0, 1, 1)
    assert captured == sorted(captured)
    tenth = next(c for x, c in zip(contacted, captured, strict=True) if x >= 0.1)
    assert tenth == pytest.approx(review.lift_by_decile[0].converted / review.converted, abs=0.02)


def test_calibration_points_are_deciles_by_likelihood_with_their_counts():
    points = charts.calibration_points([k / 100 for k in range(100)], [k % 10 == 0 for k in range(100)])
    assert len(points) == 10 and all(p.people == 10 and p.converted == 1 for p in points)
    assert [round(p.predicted, 3) for p in points[:2]] == [0.045, 0.145]


# ------------------------------------------------------------------------------------------ charts


def svg_text(svg: str) -> str:
    """What the chart says: matplotlib writes each text as glyph outlines after a comment with it."""
    return " ".join(re.findall(r"<!-- (.*?) -->", svg))


def test_each_chart_is_an_svg_element_with_its_curves_and_labels():
    reviews = {"current (live: semi-1)": ranked(), "learned candidate (candidate.yaml)": learned_review()}
    drawn = charts.review_charts(reviews)
    assert set(drawn) == {"roc", "gains", "tiers", "calibration", "scores"}
    for kind, svg in drawn.items():
        root = ET.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("width") == "100%", kind
        assert root.get("viewBox") and root.get("height") is None, kind  # scales with the page
    roc = svg_text(drawn["roc"])
    for name, review in reviews.items():
        assert f"{name} (AUC {review.auc:.3f})" in roc
    assert "chance (AUC 0.500)" in roc and "ROC curve" in roc
    assert drawn["roc"].count('<g id="roc-line2d_') >= 3 + 10  # the diagonal, two curves, the ticks
    gains = svg_text(drawn["gains"])
    assert "share of converters reached" in gains and "contacting at random" in gains
    tiers = svg_text(drawn["tiers"])
    assert "18/40" in tiers and "22/50" in tiers and "Sales priority" in tiers
    assert "<!-- Unqualified -->" in drawn["tiers"] and "<!-- for now -->" in drawn["tiers"]  # wrapped
    calibration = svg_text(drawn["calibration"])
    assert "Calibration by decile of likelihood" in calibration and "perfectly calibrated" in calibration
    assert "learned candidate (candidate.yaml)" in calibration and "current" not in calibration
    scores = svg_text(drawn["scores"])
    assert "converted (50)" in scores and "did not convert (550)" in scores


def test_a_review_without_likelihoods_has_no_calibration_chart_and_without_outcomes_no_curves():
    assert "calibration" not in charts.review_charts({"current": ranked()})
    nobody = a_review("x", {"Sales priority": (10, 0), "Nurture": (40, 0)})
    assert set(charts.review_charts({"current": nobody})) == {"tiers"}
    assert charts.review_charts({"current": ModelReview("x", 0, 0, 0.0, None)}) == {}


def test_the_same_reviews_draw_byte_identical_charts():
    assert charts.review_charts({"current": ranked()}) == charts.review_charts({"current": ranked()})


def undrawn_tick_labels(figure) -> set[int]:
    """Tick labels matplotlib keeps for ticks beyond the axes' limits but does not draw."""
    skipped = set()
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    skipped |= {id(tick.label1), id(tick.label2)}
    return skipped


def overflowing_text(figure) -> list[str]:
    """The texts drawn (partly) outside the figure."""
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    box = figure.bbox
    skipped = undrawn_tick_labels(figure)
    out = []
    for text in figure.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or id(text) in skipped:
            continue
        extent = text.get_window_extent(renderer)
        if (
            extent.x0 < box.x0 - 1
            or extent.y0 < box.y0 - 1
            or extent.x1 > box.x1 + 1
            or extent.y1 > box.y1 + 1
        ):
            out.append(text.get_text())
    return out


LONG_NAMES = {
    "current (live: voltaris-semiconductor-ac963b9, the playbook the sync scores with)": ranked(),
    "learned candidate (candidate-playbook-2026-12-01.yaml)": learned_review(),
    "candidate (a-much-longer-experimental-industrial-playbook-name.yaml)": inverted(),
}


@pytest.mark.parametrize("draw", list(charts.CHARTS.values()), ids=list(charts.CHARTS))
def test_no_text_is_cut_off_even_with_long_playbook_and_tier_names(draw):
    long_tiers = a_review(
        "x",
        {
            "Sales priority for the account team": (40, 10),
            "Nurture with marketing programmes": (100, 10),
            "Unqualified for now": (200, 2),
        },
        order=(
            "Sales priority for the account team",
            "Nurture with marketing programmes",
            "Unqualified for now",
        ),
    )
    for reviews in (LONG_NAMES, {"current": long_tiers}):
        figure = draw(reviews)
        if figure is not None:
            assert overflowing_text(figure) == []


def test_the_overflow_check_sees_a_label_pushed_off_the_figure():
    figure = charts.roc_figure({"current": ranked()})
    figure.axes[0].set_xlabel("a label far too long for the figure " * 6)
    figure.set_layout_engine("none")
    assert overflowing_text(figure)


def test_the_playbooks_colours_differ_in_greyscale_and_in_line_style():
    grey = [
        0.299 * int(s["color"][1:3], 16) + 0.587 * int(s["color"][3:5], 16) + 0.114 * int(s["color"][5:], 16)
        for s in charts.STYLES
    ]
    assert min(abs(a - b) for i, a in enumerate(grey) for b in grey[i + 1 :]) > 25
    assert len({s["linestyle"] for s in charts.STYLES}) == len({s["hatch"] for s in charts.STYLES}) == 4


# ------------------------------------------------------------------------------------------ the report


def test_the_report_puts_the_playbooks_side_by_side_with_a_learned_candidate():
    reviews = {
        "current (live: semi-1)": ranked(),
        "learned candidate (candidate.yaml)": learned_review(),
        "candidate (upside-down.yaml)": inverted(),
    }
    page = render_review_html(reviews, 60, NOW, "3 of 4 tasks got a sales touch before their due date (75%).")
    headline = page[page.index("<h2>Headline</h2>") : page.index("<h2>Charts</h2>")]
    for name in reviews:
        assert f"<th>{name}</th>" in headline
    for label, cells in [
        ("ROC AUC", [f"{r.auc:.3f}" for r in reviews.values()]),
        ("ceiling AUC", ["-", "0.871", "-"]),
        ("top-tier precision", ["45.0% (18 of 40)", "44.0% (22 of 50)", "5.0% (6 of 120)"]),
        ("top-tier recall", ["36.0% (18 of 50)", "44.0% (22 of 50)", "8.3% (6 of 72)"]),
        ("calibration error", ["-", "0.021", "-"]),
        ("Nurture", ["24 of 160 (15.0%)", "20 of 150 (13.3%)", "60 of 200 (30.0%)"]),
    ]:
        row = re.search(rf"<td>{label}</td>(.*?)</tr>", headline, re.S).group(1)
        assert re.findall(r"<td[^>]*>(.*?)</td>", row) == cells, label
    assert "Nurture above Sales priority" in headline
    flag = page[page.index("Red flag") : page.index("<h2>Headline</h2>")]
    assert "candidate (upside-down.yaml)" in flag and "Nurture converted at 30.0% (60 of 200" in flag
    assert "above Sales priority at 5.0% (6 of 120" in flag and "beyond the 95% intervals" in flag
    assert page.count("<svg") == 5 and "No calibration chart" not in page
    learned = page[page.index("What the learned candidate changes") :]
    assert (
        "reports/candidate-playbook-2026-12-01.yaml" in learned and "never activated automatically" in learned
    )
    assert "sample_request" in learned and "57 people asked for samples" in learned and "97%" in learned
    assert "66 weights kept" in learned and "1,734 people" in learned
    assert "Likelihood by score" in page and "3 of 4 tasks" in page
    for heading in (
        "Threshold backtest",
        "<h3>Signals</h3>",
        "Where leads stall",
        "By profile and segment",
        "Suggested weight changes",
        "Signals that lost predictive power",
    ):
        assert heading in page, heading


def test_without_a_learned_candidate_the_report_has_no_ceiling_and_says_there_is_no_calibration():
    page = render_review_html({"current (live: semi-1)": ranked()}, 60, NOW)
    assert "ceiling AUC" not in page and "calibration error" not in page
    assert "What the learned candidate changes" not in page and "Red flag" not in page
    assert "No calibration chart" in page and page.count("<svg") == 4


def test_a_review_of_a_store_without_outcomes_still_writes_a_report_that_says_why(tmp_path):
    nobody = a_review(
        "semi-1", {"Sales priority": (10, 0), "Nurture": (40, 0), "Unqualified for now": (50, 0)}
    )
    path = write_review_html({"current (live: semi-1)": nobody}, 60, tmp_path / "reports", NOW)
    page = path.read_text()
    assert path.name == "model-review-2026-12-01.html"
    assert "Nobody converted since the cut-off, so there is nothing to rank against" in page
    assert "ROC curve" not in page and "n/a" in page
    empty = render_review_html({"current": ModelReview("semi-1", 0, 0, 0.0, None)}, 60, NOW)
    assert "Nobody in the store existed 60 days ago" in empty and "<svg" not in empty


def test_the_charts_on_one_page_share_no_ids():
    reviews = {"current": ranked(), "learned candidate": learned_review()}
    ids = Counter(re.findall(r' id="([^"]+)"', render_review_html(reviews, 60, NOW)))
    assert ids and max(ids.values()) == 1
    page = render_review_html(reviews, 60, NOW)
    for reference in set(re.findall(r'(?:href="|url\()#([^")]+)', page)):
        assert ids[reference] == 1, reference  # every clip path, marker and glyph used is defined


def test_signals_that_lost_their_power_are_listed_apart_with_each_playbooks_points():
    current, candidate = ranked(), inverted()
    base = current.base_rate
    current.signals = [
        SignalLift("sample_request", 40, 0.2, 0.05, 0.2 / base, 28),
        SignalLift("partner_referral", 42, base * 0.69, base, 0.69, 15),
        SignalLift("workshop", 66, base, base, 1.0, 20),
    ]
    candidate.signals = [SignalLift("partner_referral", 42, base * 0.69, base, 0.69, 5)]
    reviews = {"current": current, "candidate": candidate}
    page = render_review_html(reviews, 60, NOW)
    lost = page[page.index("Signals that lost predictive power") : page.index("<h2>current</h2>")]
    assert "partner_referral" in lost and "workshop" in lost and "sample_request" not in lost
    assert lost.index("partner_referral") < lost.index("workshop")  # the weakest first
    assert lost.count("partner_referral") == 1
    markdown = review_markdown(reviews, 60)
    assert "| partner_referral | 42 | " in markdown and "| 0.69 | 15 | 5 |" in markdown
    assert "| workshop | 66 | " in markdown and "| 1.00 | 20 | - |" in markdown


def test_the_artifact_has_the_headline_the_red_flag_and_the_learned_changes():
    reviews = {
        "current (live: semi-1)": ranked(),
        "learned candidate (c.yaml)": learned_review(),
        "candidate (upside-down.yaml)": inverted(),
    }
    markdown = review_markdown(reviews, 60)
    aucs = " | ".join(f"{r.auc:.3f}" for r in reviews.values())
    assert f"| ROC AUC | {aucs} |" in markdown
    assert (
        "| ceiling AUC | - | 0.871 | - |" in markdown and "| calibration error | - | 0.021 | - |" in markdown
    )
    assert "| top-tier precision | 45.0% (18 of 40) |" in markdown
    assert "| tier: Nurture | 24 of 160 (15.0%) | 20 of 150 (13.3%) | 60 of 200 (30.0%) |" in markdown
    assert "Ceiling AUC: a gradient-boosting model on the raw features" in markdown
    assert "## Red flag: tiers convert out of order" in markdown
    assert "**candidate (upside-down.yaml)**: Nurture converted at 30.0%" in markdown
    assert (
        "reports/candidate-playbook-2026-12-01.yaml" in markdown
        and "never activated automatically" in markdown
    )
    assert "| sample_request | intent rule | 28 → 40 | 97% |" in markdown
    assert (
        markdown.count(": conversion by tier") == 3
        and "| Nurture | 200 | 60 | 30.0% | 24.1%–36.7% |" in markdown
    )


def test_the_terminal_shows_auc_against_the_ceiling_calibration_inversions_and_the_candidate(monkeypatch):
    monkeypatch.setattr(console, "width", 120)  # as the sandbox test's terminal
    reviews = {
        "current (live: semi-1)": ranked(),
        "learned candidate (c.yaml)": learned_review(),
        "candidate (upside-down.yaml)": inverted(),
    }
    with console.capture() as captured:
        print_review(reviews, 60, "reports/model-review-2026-12-01.html", "model-review on flow run f00")
    shown = captured.get()
    lines = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in shown.splitlines()
        if line.startswith("│")
    }
    assert lines["ROC AUC"] == [f"{r.auc:.3f}" for r in reviews.values()]
    assert lines["ceiling AUC"] == ["-", "0.871", "-"] and lines["calibration error"] == ["-", "0.021", "-"]
    assert (
        lines["top-tier precision"][0] == "45.0% (18 of 40)"
        and lines["top-tier recall"][0] == "36.0% (18 of 50)"
    )
    assert lines["Sales priority"] == ["18 of 40 (45.0%)", "22 of 50 (44.0%)", "6 of 120 (5.0%)"]
    unwrapped = " ".join(shown.split())
    assert (
        "red flag candidate (upside-down.yaml): Nurture 30.0% (60 of 200) above Sales priority 5.0% "
        "(6 of 120), beyond the 95% intervals"
    ) in unwrapped
    assert (
        "candidate reports/candidate-playbook-2026-12-01.yaml (2 weights changed, 66 kept; never activated "
        "automatically)"
    ) in unwrapped
    assert "reports/model-review-2026-12-01.html" in shown
    assert len(shown.splitlines()) < 30


def test_the_terminal_raises_no_flag_when_the_tiers_convert_in_order():
    with console.capture() as captured:
        print_review({"current": ranked()}, 60, "r.html", "a")
    assert "red flag" not in captured.get() and "ceiling AUC" not in captured.get()
