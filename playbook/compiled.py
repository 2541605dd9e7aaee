"""A playbook compiled for fast scoring: regexes, predicates and per-rule constants, built once.

`compile_playbook` builds this once per playbook object and keeps it on the object, so every run
with the same playbook reuses the compiled patterns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from leadloop.crm.records import Activity, ActivityKind
from leadloop.playbook.assets import AssetCatalog, AssetInfo, activity_key
from leadloop.playbook.conditions import FitHit, Subject, Test, compile_all, compile_fit_rule
from leadloop.playbook.model import FitRule, Playbook, Profile
from leadloop.playbook.personas import TitleClassifier, TitleMatch


@dataclass(frozen=True, slots=True)
class CompiledFitRule:
    rule: FitRule
    evaluate: Callable[[Subject], FitHit | None]


@dataclass(frozen=True, slots=True)
class CompiledProfile:
    index: int
    profile: Profile
    applies: Test
    rules: tuple[CompiledFitRule, ...]
    segments: frozenset[str]


class CompiledPlaybook:
    """Everything the engine needs from a playbook, in the form it needs it."""

    def __init__(self, playbook: Playbook) -> None:
        pb = self.playbook = playbook
        lists = pb.lists
        self.titles = TitleClassifier(pb.personas)
        self.assets = AssetCatalog(pb)
        self.stage_index = {stage: i for i, stage in enumerate(pb.stages)}
        self.profiles = tuple(
            CompiledProfile(
                i,
                profile,
                compile_all(profile.applies_when, lists),
                tuple(CompiledFitRule(r, compile_fit_rule(r, lists)) for r in profile.fit),
                frozenset(s.lower() for s in profile.segments),
            )
            for i, profile in enumerate(pb.profiles)
        )
        self.contact_rules = tuple(
            CompiledFitRule(r, compile_fit_rule(r, lists)) for r in pb.contact_fit.rules
        )
        self.field_negatives = tuple((n, compile_all(n.when, lists)) for n in pb.negatives if n.when)
        self.activity_negatives = tuple(n for n in pb.negatives if n.kinds)
        self.disqualifiers = tuple((d, compile_all(d.when, lists)) for d in pb.disqualifiers)
        self.account_signals = tuple((a, compile_all(a.when, lists)) for a in pb.account.signals)

        intent = pb.intent
        groups = {g.id: g for g in intent.groups}
        self.group_ids = [g.id for g in intent.groups]
        self.rule_group = [self.group_ids.index(r.group) if r.group else -1 for r in intent.rules]
        self.depth_group = [self.group_ids.index(d.group) if d.group else -1 for d in intent.depth]
        default_hl = intent.default_half_life_days

        def half_life(rule_hl: float | None, group: str | None) -> float:
            chosen = rule_hl or (groups[group].half_life_days if group else None) or default_hl
            return chosen if chosen else math.inf

        self.rule_half_life = [half_life(r.half_life_days, r.group) for r in intent.rules]
        self.rule_points = [float(r.points) for r in intent.rules]
        self.rule_max_count = [r.frequency.max_count if r.frequency else 0 for r in intent.rules]
        self.rule_window = [r.frequency.window_days if r.frequency else math.inf for r in intent.rules]
        self.max_age_days = intent.max_age_days or math.inf
        self.relevance_bonus = (intent.relevance.bonus_percent / 100.0) if intent.relevance else 0.0
        self.rule_kinds = [frozenset(r.kinds) for r in intent.rules]
        segments = {a.segment.lower() for a in pb.assets if a.segment}
        for profile in pb.profiles:
            segments.update(s.lower() for s in profile.segments)
        self.segments = sorted(segments)

    def rule_for(
        self, kind: ActivityKind, asset_type: str | None, stage: str | None, family: str | None
    ) -> int:
        """Index of the first intent rule that counts this activity, or -1."""
        for index, rule in enumerate(self.playbook.intent.rules):
            if kind not in self.rule_kinds[index]:
                continue
            if rule.asset_types is not None and asset_type not in rule.asset_types:
                continue
            if rule.stages is not None and stage not in rule.stages:
                continue
            if rule.product_families is not None and family not in rule.product_families:
                continue
            return index
        return -1


def compile_playbook(playbook: Playbook) -> CompiledPlaybook:
    """The playbook compiled, built on first use and kept with the playbook object (a frozen model:
    kept in its `__dict__`, as `functools.cached_property` would; dropped when it is pickled)."""
    found = playbook.__dict__.get("compiled")
    if found is None:
        found = playbook.__dict__["compiled"] = CompiledPlaybook(playbook)
    return found


def classify_activity(playbook: Playbook, activity: Activity) -> AssetInfo | None:
    """The catalog asset an activity was about, or None when no asset rule understands it."""
    return compile_playbook(playbook).assets.classify_key(activity_key(activity))


def classify_title(playbook: Playbook, title: str | None) -> TitleMatch:
    """(role, seniority, matched) of a job title under the playbook's personas."""
    return compile_playbook(playbook).titles(title)
