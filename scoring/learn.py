"""Learning from outcomes: a candidate playbook re-weighted from evidence, a calibration of scores
into likelihoods, and the ceiling a model free of the playbook reaches on the same people.

Pure: score cards, labels, records and playbook text in; YAML text, weight changes, calibration bins
and figures out. The model review (flows/model_review.py) trains on an older cohort and measures on
the newest one; nothing here reads a file, a clock or a CRM, and nothing activates a playbook.

- `fit_candidate`: a logistic regression of the outcome on the score and on what each of the
  playbook's own weights gave each person (the `contribution` of its reason lines, the blend
  components of the card): logit p = a + β·score + Σ δ_r·c_r, an L2 penalty on the δ only, so that a
  weight with little evidence stays where it is. A weight's candidate is current × (β+δ_r)/β, within
  ×0.5…×2 per review, changed only where the fit is sure of the direction. The candidate is the live
  YAML with those numbers edited in place (comments and order stay), marked as a candidate, with its
  calibration appended.
- `fit_calibration` / `calibration_error` / `likelihood`: isotonic regression of the outcome on the
  score, as score bins with the people behind each.
- `raw_features` / `ceiling_auc`: gradient boosting on raw activity counts, recency and firmographics
  (no playbook points), the ceiling to compare the playbook with.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import yaml

from leadloop.crm.dataset import Dataset
from leadloop.crm.records import ActivityKind, CustomerType
from leadloop.playbook.model import Playbook
from leadloop.scoring.calibration import rates_at
from leadloop.scoring.review import CalibrationBin, WeightChange
from leadloop.scoring.scorecard import ReasonKind, ScoreCard
from leadloop.scoring.tiers import whole

BLEND_COMPONENTS = ("contact_fit", "account_fit", "contact_intent", "account_intent")

# How far one review may move a weight, and how sure the fit must be of the direction to move it.
MAX_FACTOR = 2.0
MIN_FACTOR = 0.5
MIN_CONFIDENCE = 0.95
MIN_PEOPLE = 20  # a weight fewer people had is never changed, whatever the fit says
MIN_RELATIVE_CHANGE = 0.1  # a fitted change under 10 % is noise at the sizes a review sees
# The prior on the relative change of a weight, γ = δ/β: N(0, PRIOR_SD²). With 0.5, a weight moves a
# lot only when many people had it and their outcomes disagree clearly with the score.
PRIOR_SD = 0.5
MIN_BIN_PEOPLE = 30  # a calibration bin stands for at least this many people


# ---------------------------------------------------------------------------------------------
# The weights a review may learn


@dataclass(frozen=True, slots=True)
class _Weight:
    rule: str
    where: str  # "intent rule", "fit rule", "negative", "account signal", "blend"
    current: float


def _learnable(playbook: Playbook) -> list[_Weight]:
    """The playbook's weights the candidate may change: intent and depth rules, fit rules with
    `points` (banded rules stay), negatives, account signals, and the four blend weights."""
    weights = [_Weight(r.id, "intent rule", float(r.points)) for r in playbook.intent.rules]
    weights += [_Weight(r.id, "intent rule", float(r.points)) for r in playbook.intent.depth]
    fit_rules = [rule for profile in playbook.profiles for rule in profile.fit]
    fit_rules += playbook.contact_fit.rules
    weights += [_Weight(r.id, "fit rule", float(r.points)) for r in fit_rules if r.points is not None]
    weights += [_Weight(n.id, "negative", float(n.points)) for n in playbook.negatives]
    weights += [_Weight(a.id, "account signal", float(a.points)) for a in playbook.account.signals]
    seen: set[str] = set()
    unique = []
    for weight in weights:  # a rule id used twice (two profiles) is one weight only if its points agree
        if weight.rule in seen:
            continue
        seen.add(weight.rule)
        unique.append(weight)
    twice = {w.rule for w in weights if any(v.rule == w.rule and v.current != w.current for v in weights)}
    unique = [w for w in unique if w.rule not in twice and w.current != 0]
    blend = playbook.blend
    unique += [_Weight(name, "blend", float(getattr(blend, name))) for name in BLEND_COMPONENTS]
    return unique


_LINE_KINDS = (ReasonKind.INTENT, ReasonKind.FIT, ReasonKind.NEGATIVE)


def _features(cards: Sequence[ScoreCard], weights: Sequence[_Weight], playbook: Playbook) -> np.ndarray:
    """Per card and weight, the points of the lead score that weight gave: the contributions of the
    rule's reason lines, or a blend component's part of the score (fit after the static cap). An
    account signal's line on a card adds nothing itself (the account-intent line carries it): its
    points times the account-intent weight are what it gave (before the account-intent cap)."""
    column = {w.rule: j for j, w in enumerate(weights) if w.where not in ("blend", "account signal")}
    signal_column = {w.rule: j for j, w in enumerate(weights) if w.where == "account signal"}
    blend = playbook.blend
    out = np.zeros((len(cards), len(weights)))
    blend_at = {w.rule: j for j, w in enumerate(weights) if w.where == "blend"}
    for i, card in enumerate(cards):
        for reason in card.reasons:
            j = column.get(reason.rule)
            if j is not None and reason.kind in _LINE_KINDS:
                out[i, j] += reason.contribution
            elif reason.kind == ReasonKind.ACCOUNT and (k := signal_column.get(reason.rule)) is not None:
                out[i, k] += blend.account_intent * reason.points
        static = blend.contact_fit * card.contact_fit + blend.account_fit * card.account_fit
        share = min(1.0, blend.static_cap / static) if static > 0 else 1.0
        parts = {"contact_fit": blend.contact_fit * card.contact_fit * share,
                 "account_fit": blend.account_fit * card.account_fit * share,
                 "contact_intent": blend.contact_intent * card.intent,
                 "account_intent": blend.account_intent * card.account_intent}
        for name, j in blend_at.items():
            out[i, j] = parts[name]
    return out


# ---------------------------------------------------------------------------------------------
# Penalized logistic regression (Newton–Raphson), with its posterior covariance


def _logistic(X: np.ndarray, y: np.ndarray, penalty: np.ndarray, iterations: int = 50
              ) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients maximizing the log-likelihood − ½ Σ penalty_j w_j², and the inverse of the
    penalized Hessian at them (their approximate posterior covariance)."""
    w = np.zeros(X.shape[1])
    ridge = np.diag(penalty)
    hessian = ridge
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -35, 35)))
        gradient = X.T @ (y - p) - penalty * w
        hessian = (X * (p * (1 - p))[:, None]).T @ X + ridge
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        w += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w, np.linalg.pinv(hessian)


def _confidence(value: float, sd: float) -> float:
    """How sure the fit is of the sign of `value`: P(same sign) under a normal posterior."""
    if sd <= 0:
        return 1.0
    return 0.5 * (1 + math.erf(abs(value) / sd / math.sqrt(2)))


def _rounded(current: float, value: float, where: str) -> float:
    """`value` written as the playbook writes `current`: blend weights to hundredths, points as whole
    numbers (tenths below 5), or with as many decimals as the current points have."""
    if where == "blend":
        return round(value, 2)
    decimals = len(repr(float(current)).split(".")[1].rstrip("0")) if "." in repr(float(current)) else 0
    if decimals == 0 and abs(value) < 5:
        decimals = 1
    rounded = round(value, decimals)
    return float(int(rounded)) if rounded == int(rounded) else rounded


# ---------------------------------------------------------------------------------------------
# The candidate


def fit_candidate(playbook_text: str, playbook: Playbook, cards: Sequence[ScoreCard], labels: Sequence[bool],
                  *, learned_on: date, horizon_days: int) -> tuple[str, list[WeightChange], int]:
    """A candidate playbook learned from `cards` (scored with `playbook`, whose YAML is
    `playbook_text`) and their outcomes `labels` (an opportunity within `horizon_days`).

    Returns (the candidate's YAML text, the weights it changes with their evidence, how many
    learnable weights it keeps). The text is the live YAML with only the changed numbers edited, the
    name marked as a candidate learned on `learned_on`, and a `calibration:` section of its scores
    (estimated here from the cards; `with_calibration` replaces it with one fitted on real scores).
    When the score does not rank the outcomes at all, or one outcome is missing, nothing changes.

    Two fits, so that a rule and the blend weight of its component never share one effect: first the
    four blend weights (each component's part of the score), then the rules on the re-blended score,
    each rule's points relative to the new weight of its component."""
    weights = _learnable(playbook)
    blend_at = [j for j, w in enumerate(weights) if w.where == "blend"]
    rules_at = [j for j, w in enumerate(weights) if w.where != "blend"]
    y = np.asarray(labels, dtype=float)
    scores = np.array([card.score for card in cards], dtype=float)
    C = _features(cards, weights, playbook)
    changes: list[WeightChange] = []
    values: dict[str, float] = {}
    estimated = scores
    if len(cards) and 0 < y.sum() < len(y):
        blend_fit = _relative_fit(scores, C[:, blend_at], y)
        if blend_fit is not None:
            blend_changes, blend_values = _blend_changes([weights[j] for j in blend_at], C[:, blend_at], y,
                                                         blend_fit)
            changes += blend_changes
            values |= blend_values
        ratio = {weights[j].rule: values.get(weights[j].rule, weights[j].current) / weights[j].current
                 for j in blend_at}
        reblended = scores + C[:, blend_at] @ (np.array([ratio[weights[j].rule] for j in blend_at]) - 1)
        component = _components(playbook)
        rule_lines = C[:, rules_at] * np.array([ratio.get(component.get(weights[j].rule, ""), 1.0)
                                                for j in rules_at])
        rule_fit = _relative_fit(reblended, rule_lines, y)
        estimated = reblended
        if rule_fit is not None:
            rules = [weights[j] for j in rules_at]
            rule_changes, rule_values = _rule_changes(rules, rule_lines, y, rule_fit)
            changes += rule_changes
            values |= rule_values
            applied = np.array([values.get(weights[j].rule, weights[j].current) / weights[j].current
                                for j in rules_at])
            estimated = reblended + rule_lines @ (applied - 1)
    kept = len(weights) - len(changes)
    text = _edited(playbook_text, weights, values, learned_on)
    bins: list[CalibrationBin] = []
    if len(cards) and y.sum() > 0:  # on the candidate's scores as the changed weights would make them
        bins = fit_calibration(np.round(np.maximum(estimated, 0.0), 1).tolist(), [bool(v) for v in y])
    return with_calibration(text, bins, horizon_days=horizon_days, learned_on=learned_on), changes, kept


def _components(playbook: Playbook) -> dict[str, str]:
    """The blend component each learnable rule's points count in."""
    out = {rule.id: "account_fit" for profile in playbook.profiles for rule in profile.fit}
    out |= {rule.id: "contact_fit" for rule in playbook.contact_fit.rules}
    out |= {rule.id: "contact_intent" for rule in [*playbook.intent.rules, *playbook.intent.depth]}
    out |= {n.id: "contact_fit" if n.target == "fit" else "contact_intent" for n in playbook.negatives}
    out |= {a.id: "account_intent" for a in playbook.account.signals}
    return out


@dataclass(frozen=True, slots=True)
class _Fit:
    factors: np.ndarray  # (β+δ)/β per feature, unclipped
    factors_sd: np.ndarray
    confidence: np.ndarray  # how sure the fit is of the direction of each δ


def _relative_fit(base: np.ndarray, F: np.ndarray, y: np.ndarray) -> _Fit | None:
    """logit p = a + β·base + Σ δ_j·F_j with an L2 penalty on the δ only, fitted as γ = δ/β̂ (β̂ of
    the base alone), so that one prior on relative changes suits every weight whatever its size.
    None when the base does not rank the outcomes (β̂ or β not above 0)."""
    ones = np.ones(len(y))
    # the base in tens: the same optimum, a better-conditioned first Newton step
    alone, _ = _logistic(np.column_stack([ones, base / 10]), y, np.zeros(2))
    beta_hat = alone[1] / 10
    if beta_hat <= 0:
        return None
    X = np.column_stack([ones, base, F * beta_hat])
    penalty = np.concatenate([[0.0, 0.0], np.full(F.shape[1], 1 / PRIOR_SD**2)])
    w, covariance = _logistic(X, y, penalty)
    beta = w[1]
    if beta <= 0:
        return None
    gamma = w[2:]
    sd = np.sqrt(np.maximum(np.diag(covariance)[2:], 0.0))
    confidence = np.array([_confidence(float(g), float(s)) for g, s in zip(gamma, sd, strict=True)])
    return _Fit(1 + gamma * beta_hat / beta, sd * beta_hat / beta, confidence)


def _clear(fit: _Fit, j: int) -> tuple[bool, float]:
    """Whether the fit is clear about weight j, and its factor within the bounds of one review."""
    factor = float(np.clip(fit.factors[j], MIN_FACTOR, MAX_FACTOR))
    return bool(fit.confidence[j] >= MIN_CONFIDENCE and abs(factor - 1) >= MIN_RELATIVE_CHANGE), factor


def _rule_changes(weights: Sequence[_Weight], C: np.ndarray, y: np.ndarray, fit: _Fit
                  ) -> tuple[list[WeightChange], dict[str, float]]:
    """The rules whose evidence is clear (and enough people had), with their candidate points."""
    changes = []
    values: dict[str, float] = {}
    for j, weight in enumerate(weights):
        clear, factor = _clear(fit, j)
        if not clear or int((C[:, j] != 0).sum()) < MIN_PEOPLE:
            continue
        candidate = _rounded(weight.current, weight.current * factor, weight.where)
        if candidate == weight.current:
            continue
        values[weight.rule] = candidate
        changes.append(WeightChange(weight.rule, weight.where, weight.current, candidate,
                                    _evidence(weight, C[:, j], y, factor, float(fit.factors_sd[j]),
                                              candidate),
                                    round(float(fit.confidence[j]), 3)))
    return changes, values


def _blend_changes(weights: Sequence[_Weight], C: np.ndarray, y: np.ndarray, fit: _Fit
                   ) -> tuple[list[WeightChange], dict[str, float]]:
    """The blend weights: those the evidence is clear about move, then all four are rescaled to add
    up to 1 again (the playbook's rule), so a weight may change only by that rescaling."""
    raw = {}
    for j, weight in enumerate(weights):
        clear, factor = _clear(fit, j)
        raw[weight.rule] = weight.current * (factor if clear else 1.0)
    blend = _blend_summing_to_one(raw)
    changes = []
    for j, weight in enumerate(weights):
        if blend[weight.rule] == weight.current:
            continue
        clear, factor = _clear(fit, j)
        sd = float(fit.factors_sd[j])
        if clear:
            evidence = _evidence(weight, C[:, j], y, factor, sd, blend[weight.rule])
        else:
            evidence = (f"no clear evidence of its own (fitted ×{factor:.2f} ±{sd:.2f}); rescaled "
                        f"{weight.current:g} → {blend[weight.rule]:g} so that the four blend weights still "
                        "add up to 1")
        changes.append(WeightChange(weight.rule, "blend", weight.current, blend[weight.rule], evidence,
                                    round(float(fit.confidence[j]), 3) if clear else 0.0))
    return changes, {change.rule: change.candidate for change in changes}


def _blend_summing_to_one(raw: dict[str, float]) -> dict[str, float]:
    """`raw` scaled to add up to 1, in hundredths (the largest weight takes the rounding)."""
    total = sum(raw.values())
    if total <= 0:
        return raw
    out = {name: round(value / total, 2) for name, value in raw.items()}
    largest = max(out, key=lambda name: out[name])
    out[largest] = round(out[largest] + 1 - sum(out.values()), 2)
    return out


def _evidence(weight: _Weight, gave: np.ndarray, y: np.ndarray, factor: float, factor_sd: float,
              candidate: float) -> str:
    """Who had the weight, how they converted, and what the fit found, in words."""
    direction = "raise" if abs(candidate) > abs(weight.current) else "lower"
    fitted = (f"fitted: a point it gives is worth {factor:.2f}× a point of the score today "
              f"(±{factor_sd:.2f}), so {direction} {weight.current:g} → {candidate:g}")
    if weight.where == "blend":
        converters, others = gave[y == 1], gave[y == 0]
        return (f"{weight.rule.replace('_', ' ')} gave converters {converters.mean():.1f} points of their "
                f"score on average and everyone else {others.mean():.1f}; {fitted}")
    had = gave != 0
    with_rate = y[had].mean() if had.any() else 0.0
    without_rate = y[~had].mean() if (~had).any() else 0.0
    return (f"{int(had.sum())} people had it ({gave[had].mean():+.1f} points each on average); "
            f"{int(y[had].sum())} of them converted ({with_rate:.1%}) against {without_rate:.1%} of the "
            f"{int((~had).sum())} others; {fitted}")


# ---------------------------------------------------------------------------------------------
# Editing the YAML text in place


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _scalar_spans(text: str, weights: Sequence[_Weight]) -> dict[str, tuple[int, int]]:
    """Where in `text` each weight's number is written (character offsets), and the name's value
    (key `name`) and the calibration section (key `calibration`, key to end of its value)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)  # the Python loader: marks are character offsets
    spans: dict[str, tuple[int, int]] = {}
    if not isinstance(root, yaml.MappingNode):
        return spans
    top = {key.value: (key, value) for key, value in root.value}
    if "name" in top:
        node = top["name"][1]
        spans["name"] = (node.start_mark.index, node.end_mark.index)
    if "calibration" in top:
        key, value = top["calibration"]
        spans["calibration"] = (key.start_mark.index, value.end_mark.index)

    def items(*path: str) -> list[yaml.MappingNode]:
        nodes: list[yaml.Node] = [root]
        for part in path:
            found = []
            for node in nodes:
                node_items = node.value if isinstance(node, yaml.SequenceNode) else [node]
                for item in node_items:
                    if isinstance(item, yaml.MappingNode):
                        found += [v for k, v in item.value if k.value == part]
            nodes = found
        out = []
        for node in nodes:
            if isinstance(node, yaml.SequenceNode):
                out += [item for item in node.value if isinstance(item, yaml.MappingNode)]
        return out

    wanted = {w.rule for w in weights if w.where != "blend"}
    rules = (items("intent", "rules") + items("intent", "depth") + items("profiles", "fit")
             + items("contact_fit", "rules") + items("negatives") + items("account", "signals"))
    for rule in rules:
        fields = {k.value: v for k, v in rule.value}
        rule_id = getattr(fields.get("id"), "value", None)
        if rule_id in wanted and "points" in fields:
            node = fields["points"]
            spans.setdefault(f"rule:{rule_id}", (node.start_mark.index, node.end_mark.index))
    if "blend" in top and isinstance(blend := top["blend"][1], yaml.MappingNode):
        for key, value in blend.value:
            if key.value in BLEND_COMPONENTS:
                spans[f"blend:{key.value}"] = (value.start_mark.index, value.end_mark.index)
    return spans


def _edited(text: str, weights: Sequence[_Weight], values: dict[str, float], learned_on: date) -> str:
    """The live text with the changed weights' numbers replaced and the name marked as a candidate;
    every other character stays."""
    spans = _scalar_spans(text, weights)
    where = {w.rule: w.where for w in weights}
    edits: list[tuple[int, int, str]] = []
    for rule, value in values.items():
        key = f"blend:{rule}" if where[rule] == "blend" else f"rule:{rule}"
        if key not in spans:
            raise ValueError(f"the playbook text has no points for {rule!r}: is it this playbook's text?")
        edits.append((*spans[key], _number(value)))
    if "name" in spans:
        start, end = spans["name"]
        name = yaml.safe_load(text[start:end]) if text[start:end].strip() else ""
        name = re.sub(r"\s*\(candidate learned on [0-9-]+\)$", "", str(name))
        edits.append((start, end, json.dumps(f"{name} (candidate learned on {learned_on.isoformat()})",
                                             ensure_ascii=False)))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    header = (f"# CANDIDATE learned from outcomes on {learned_on.isoformat()} by the model review: it is\n"
              "# never made live by itself. Read the review's weight changes, then make it live with\n"
              "# `leadloop rescore --playbook <this file> --activate`.\n")
    return text if text.startswith("# CANDIDATE learned") else header + text


def calibration_yaml(bins: Sequence[CalibrationBin], *, horizon_days: int, learned_on: date) -> str:
    """The `calibration:` section for `bins`: what the CRM's likelihood field is read from."""
    lines = [
        "calibration:",
        f"  horizon_days: {horizon_days}          # the review's lookback: \"an opportunity within "
        f"{horizon_days} days\"",
        f"  learned: {learned_on.isoformat()}",
        f"  why: Share of people at each score who had an opportunity within {horizon_days} days, "
        "learned from outcomes.",
        "  bins:                     # ascending min_score; likelihood(score) = rate of the last bin with "
        "min_score <= score",
    ]
    lines += [f"    - {{min_score: {_number(round(b.min_score, 2))}, rate: {b.rate:.4g}, people: {b.people}, "
              f"converted: {b.converted}}}" for b in bins]
    return "\n".join(lines) + "\n"


def with_calibration(text: str, bins: Sequence[CalibrationBin], *, horizon_days: int, learned_on: date
                     ) -> str:
    """`text` with its `calibration:` section replaced by `bins` (appended when it has none; left
    out when there are no bins)."""
    spans = _scalar_spans(text, [])
    section = calibration_yaml(bins, horizon_days=horizon_days, learned_on=learned_on) if bins else ""
    if "calibration" in spans:
        start, end = spans["calibration"]
        rest = text[end:]
        return text[:start] + section + rest.lstrip("\n") if section else text[:start] + rest.lstrip("\n")
    if not section:
        return text
    comment = "# Likelihood of an opportunity by score, learned from outcomes by the model review.\n"
    return text.rstrip("\n") + "\n\n" + comment + section


# ---------------------------------------------------------------------------------------------
# Calibration


def fit_calibration(scores: Sequence[float], labels: Sequence[bool], min_people: int = MIN_BIN_PEOPLE
                    ) -> list[CalibrationBin]:
    """Score bins with the share of their people who converted: isotonic regression of the outcome on
    the score (rates never fall as scores rise), its steps merged until each bin stands for at least
    `min_people` people (or everyone, when there are fewer). It is fitted on the whole points the CRMs
    show (`scoring.tiers.whole`), so bin edges sit on half points (12.5: a 12 is in the bin below, a 13
    in the one above) and a rep never reads a score beside the likelihood of another score's bin; the
    first bin starts at 0 (a lower score takes its rate too)."""
    from sklearn.isotonic import IsotonicRegression

    if not len(scores):
        return []
    x = whole(np.asarray(scores, dtype=float))
    y = np.asarray(labels, dtype=float)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    fitted = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(x, y).predict(x)
    # blocks: runs of equal fitted value (equal scores always share one)
    blocks: list[list[float]] = []  # [first score, last score, people, converted]
    for i in range(len(x)):
        if blocks and (fitted[i] == fitted[i - 1] or x[i] == x[i - 1]):
            block = blocks[-1]
            block[1], block[2], block[3] = x[i], block[2] + 1, block[3] + y[i]
        else:
            blocks.append([x[i], x[i], 1, y[i]])
    while len(blocks) > 1 and (small := [k for k, b in enumerate(blocks) if b[2] < min_people]):
        k = min(small, key=lambda k: blocks[k][2])
        rate = blocks[k][3] / blocks[k][2]
        neighbours = [n for n in (k - 1, k + 1) if 0 <= n < len(blocks)]
        n = min(neighbours, key=lambda n: (abs(blocks[n][3] / blocks[n][2] - rate), blocks[n][2]))
        a, b = sorted((k, n))
        blocks[a] = [blocks[a][0], blocks[b][1], blocks[a][2] + blocks[b][2], blocks[a][3] + blocks[b][3]]
        del blocks[b]
    bins = []
    for k, (first, last, people, converted) in enumerate(blocks):
        low = 0.0 if k == 0 else max(first - 0.5, 0.0)
        high = last if k == len(blocks) - 1 else last + 0.5
        bins.append(CalibrationBin(round(low, 2), round(high, 2), converted / people, int(people),
                                   int(converted)))
    return bins


def likelihood(bins: Sequence[CalibrationBin], score: float) -> float:
    """The rate of the last bin whose min_score ≤ score (the first bin's below all of them), looked up
    as the engine looks up the live playbook's (`scoring.calibration.rates_at`); 0 without bins."""
    return rates_at([score], bins)[0] if bins else 0.0


def calibration_error(bins: Sequence[CalibrationBin], scores: Sequence[float], labels: Sequence[bool]
                      ) -> float:
    """Mean over the score deciles of |mean likelihood − share converted|: people sorted by score,
    split into ten groups as equal as they can be (fewer groups when there are fewer people)."""
    if not len(scores):
        return 0.0
    predicted = np.array(rates_at(scores, bins) if bins else [0.0] * len(scores))
    y = np.asarray(labels, dtype=float)
    order = np.argsort(np.asarray(scores, dtype=float), kind="stable")
    groups = [g for g in np.array_split(order, min(10, len(order))) if len(g)]
    return float(np.mean([abs(predicted[g].mean() - y[g].mean()) for g in groups]))


# ---------------------------------------------------------------------------------------------
# The ceiling: gradient boosting on raw features

WINDOWS = (7, 30, 90, 365)
_KINDS = tuple(ActivityKind)
_KIND_INDEX = {kind: i for i, kind in enumerate(_KINDS)}
_TOPIC_BUCKETS = 16
_WORD_BUCKETS = 32
_FIELD_BUCKETS = 8
_NEVER = 400.0  # days since the last activity of a kind nobody did (beyond the 365-day window)
_FREE_MAIL = frozenset({"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com",
                        "icloud.com", "gmx.de", "web.de", "qq.com", "163.com", "proton.me", "protonmail.com",
                        "aol.com", "live.com", "mail.ru", "naver.com", "yandex.ru"})


def _bucket(text: str | None, buckets: int) -> int:
    return zlib.crc32((text or "").strip().lower().encode("utf-8")) % buckets


def _topic(activity, asset_types: dict[str, str], campaign_types: dict[str, str]) -> str:
    """What an activity was about, from the records alone: its asset's type, else its campaign's
    type, else the last part of its URL's path, else its form's name."""
    if activity.asset_id and activity.asset_id in asset_types:
        return asset_types[activity.asset_id]
    if activity.campaign_id and activity.campaign_id in campaign_types:
        return campaign_types[activity.campaign_id]
    if activity.url:
        path = activity.url.split("?", 1)[0].rstrip("/")
        return path.rsplit("/", 1)[-1]
    return activity.form_name or activity.campaign_name or ""


def raw_features(dataset: Dataset, person_ids: Sequence[str], now: datetime) -> np.ndarray:
    """A row per person in `person_ids` of raw features known at `now`, none from a playbook:
    activity counts per kind and per topic (asset or campaign type, hashed) in 7/30/90/365-day
    windows, days since the last activity of each kind, the same counts for their whole account and
    how many of its people were active, account firmographics (employees, customer type, hashed
    industry, segment, region, application, device type), hashed title words and department,
    free-mail and other-domain flags, bounced/unsubscribed/partner flags. Columns are the same for
    any dataset, so a model trained on one cohort applies to another."""
    now_ts = now.timestamp()
    people = {p.id: p for p in dataset.people}
    accounts = {a.id: a for a in dataset.accounts}
    asset_types = {a.id: a.type for a in dataset.assets}
    campaign_types = {c.id: c.type or c.name for c in dataset.campaigns}
    n_kinds = len(_KINDS)
    person_counts: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((n_kinds, len(WINDOWS))))
    person_topics: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((_TOPIC_BUCKETS, 2)))
    last_seen: dict[str, np.ndarray] = defaultdict(lambda: np.full(n_kinds, _NEVER))
    seconds: dict[str, float] = defaultdict(float)
    for activity in dataset.activities:
        age = (now_ts - activity.occurred_at.timestamp()) / 86400
        if age < 0 or age > WINDOWS[-1]:
            continue
        pid = activity.person_id
        k = _KIND_INDEX[activity.kind]
        counts = person_counts[pid]
        for w, days in enumerate(WINDOWS):
            if age <= days:
                counts[k, w] += 1
        topic = _bucket(_topic(activity, asset_types, campaign_types), _TOPIC_BUCKETS)
        person_topics[pid][topic, 0 if age <= 30 else 1] += 1
        last = last_seen[pid]
        last[k] = min(last[k], age)
        if activity.duration_seconds and age <= 30:
            seconds[pid] += activity.duration_seconds
    account_counts: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((n_kinds, 2)))
    account_active: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(3))
    for person in dataset.people:
        if not person.account_id:
            continue
        account_active[person.account_id][2] += 1
        if person.id in person_counts:
            counts = person_counts[person.id]
            account_counts[person.account_id] += counts[:, 1:3]
            account_active[person.account_id][:2] += (counts[:, 1:3].sum(axis=0) > 0)
    rows = []
    for pid in person_ids:
        person = people.get(pid)
        account = accounts.get(person.account_id or "") if person else None
        row: list[float] = []
        row += (person_counts[pid].ravel().tolist() if pid in person_counts
                else [0.0] * (n_kinds * len(WINDOWS)))
        row += person_topics[pid].ravel().tolist() if pid in person_topics else [0.0] * (_TOPIC_BUCKETS * 2)
        row += last_seen[pid].tolist() if pid in last_seen else [_NEVER] * n_kinds
        row.append(seconds.get(pid, 0.0))
        key = account.id if account else ""
        row += account_counts[key].ravel().tolist() if key in account_counts else [0.0] * (n_kinds * 2)
        row += account_active[key].tolist() if key in account_active else [0.0] * 3
        row.append(-1.0 if account is None or account.employees is None else float(account.employees))
        row += [float(account is not None and account.customer_type == t) for t in CustomerType]
        for name in ("industry", "segment", "region", "application", "device_type"):
            one_hot = [0.0] * _FIELD_BUCKETS
            value = getattr(account, name) if account else None
            if value:
                one_hot[_bucket(value, _FIELD_BUCKETS)] = 1.0
            row += [*one_hot, float(value is None)]
        words = [0.0] * _WORD_BUCKETS
        title = (person.title or "") if person else ""
        for word in re.findall(r"\w+", title.lower()):
            words[_bucket(word, _WORD_BUCKETS)] = 1.0
        row += [*words, float(not title)]
        department = [0.0] * _FIELD_BUCKETS
        if person and person.department:
            department[_bucket(person.department, _FIELD_BUCKETS)] = 1.0
        row += department
        domain = person.email_domain if person else None
        row += [float(domain in _FREE_MAIL),
                float(bool(domain and account and account.domain and domain != account.domain)),
                float(account is None)]
        row += [float(bool(person and getattr(person, flag)))
                for flag in ("bounced", "unsubscribed", "partner_owned", "distributor_registered")]
        created = person.created_at if person else None
        row.append(-1.0 if created is None else max(0.0, (now_ts - created.timestamp()) / 86400))
        rows.append(row)
    width = len(rows[0]) if rows else raw_feature_count()
    return np.asarray(rows, dtype=float).reshape(len(rows), width)


def raw_feature_count() -> int:
    """How many columns `raw_features` returns."""
    n_kinds = len(_KINDS)
    return (n_kinds * len(WINDOWS) + _TOPIC_BUCKETS * 2 + n_kinds + 1 + n_kinds * 2 + 3 + 1
            + len(CustomerType) + 5 * (_FIELD_BUCKETS + 1) + _WORD_BUCKETS + 1 + _FIELD_BUCKETS + 3 + 4 + 1)


def ceiling_auc(train_X: np.ndarray, train_y: Sequence[bool], test_X: np.ndarray, test_y: Sequence[bool]
                ) -> float:
    """Held-out ROC AUC of a gradient-boosting model (HistGradientBoostingClassifier) trained on
    `train_X`/`train_y` and measured on `test_X`/`test_y`: what a model free of the playbook reaches.
    Raises ValueError when either cohort lacks converters or non-converters."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    train_labels = np.asarray(train_y, dtype=int)
    test_labels = np.asarray(test_y, dtype=int)
    if len(set(train_labels.tolist())) < 2 or len(set(test_labels.tolist())) < 2:
        raise ValueError("the ceiling needs converters and non-converters in both cohorts")
    # Slow learning, large leaves and a third of the features per split: on the buying-cycle worlds
    # (tests/worlds) this held out best of the settings tried (0.88/0.79/0.89 on seeds 4–6, trained
    # on 1–3); with ~200 converters per cohort, smaller leaves learn the noise of one world.
    model = HistGradientBoostingClassifier(learning_rate=0.02, max_iter=600, max_leaf_nodes=31,
                                           min_samples_leaf=80, l2_regularization=5.0, max_features=0.3,
                                           early_stopping=False, random_state=0)
    model.fit(train_X, train_labels)
    return float(roc_auc_score(test_labels, model.predict_proba(test_X)[:, 1]))
