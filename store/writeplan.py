"""The write plan: which owned CRM fields actually need writing, diffed against the written ledger.

Pure functions, no database. `desired_person_fields` / `desired_account_fields` render a score as
the CRM will store it; `plan_writes` keeps only the updates that change something the CRM shows:

- a field is written only when its rendered value differs from the last value written (the ledger);
- a decaying score (`score`, `intent_score`, `account_intent`) is written only when the record's
  tier changed or the score moved by at least `min_change` points since it was last written;
- `scored_at` and `reasons` ride along only when some other field of the same record is written,
  so the passing of time alone rewrites nothing; and `score` rides along with them when it moved at
  all, because the written reasons add up to the written score (the same update call: no extra
  request);
- `likelihood` (the calibrated conversion rate of the score, in percent) rides along the same way, so
  the written likelihood is always the written score's, and a score drifting across a calibration
  bin's edge costs no request of its own. Without a calibration it is empty: cleared with the next
  write where leadloop wrote one before, never written where it never did;
- an account's `buying_roles` is written when a role joins (someone new engaged) or the tier
  changes; a role that only drops out (its engagement aged past the window: decay again) rides along
  with the account's next write instead of costing one of its own.

`reasons_text` writes what each reason adds to the score today, in whole score points, so that the
written lines (with one "other signals" line) add up to the written score: see its docstring.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Protocol

from leadloop.crm.changes import FieldUpdate, ObjectType, field_updates_for
from leadloop.crm.records import Crm

DECAYING_FIELDS = frozenset({"score", "intent_score", "account_intent"})
ACCOMPANYING_FIELDS = frozenset({"scored_at", "reasons", "likelihood"})
SHRINKING_FIELDS = frozenset({"buying_roles"})  # comma-separated sets that lose members with time
SUMMED_FIELDS = frozenset({"score"})  # what the reasons add up to: written whenever they are
TIER_FIELDS = {ObjectType.PERSON: "tier", ObjectType.ACCOUNT: "account_tier"}
# Both CRMs keep the reasons in a long-text field (Salesforce LongTextArea(32768), HubSpot textarea,
# 65,536 characters); a rep reads the first lines in the record's layout, so the text stays short.
REASONS_MAX_CHARS = 1000
TOP_REASONS = 6
OTHER_SIGNALS = "other signals"
DEFAULT_MIN_CHANGE = 5.0

FieldNamer = Callable[[FieldUpdate], str]
Ledger = Mapping[tuple[str, str], str]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_FIRST_KINDS = frozenset({"disqualifier", "escalation"})  # a StrEnum kind hashes as its text


class ReasonLike(Protocol):
    kind: str
    points: float  # the rule's own points (what `text` starts with)
    text: str
    contribution: float  # what it adds to the score today, in score points
    says: str  # `text` without its leading points


class CardLike(Protocol):
    """What the plan reads from a person's ScoreCard."""

    fit: float
    intent: float
    score: float
    tier: str
    model_version: str
    scored_at: datetime
    disqualified: str | None
    reasons: Sequence[ReasonLike]
    likelihood: float | None


class AccountScoreLike(Protocol):
    fit: float
    intent: float
    tier: str
    buying_roles: Sequence[str]


def logical_field(update: FieldUpdate) -> str:
    """Name ledger fields by leadloop's logical name (when no CRM mapping is at hand)."""
    return update.field


def mapped_fields(person: Mapping[str, str], account: Mapping[str, str]) -> FieldNamer:
    """Name ledger fields as the CRM does, from a mapping's `owned_person` / `owned_account`."""

    def crm_field(update: FieldUpdate) -> str:
        return (person if update.object_type == ObjectType.PERSON else account)[update.field]

    return crm_field


def whole_points(value: float) -> int:
    """Scores as the CRM shows them: whole points, halves rounded up (72.5 → 73)."""
    if not math.isfinite(value):
        raise ValueError(f"score is not a finite number: {value!r}")
    return int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percent_points(share: float | None) -> float | None:
    """A share (0–1) as both CRMs' percent fields store it: percentage points with one decimal
    (0.4512 → 45.1, shown as 45.1%); None stays None (the field is cleared)."""
    if share is None:
        return None
    if not math.isfinite(share):
        raise ValueError(f"likelihood is not a finite number: {share!r}")
    return float(Decimal(repr(share * 100.0)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@lru_cache(maxsize=256)  # a run's cards share one scoring moment
def iso_utc(moment: datetime) -> str:
    """`2024-05-01T12:00:00Z`: whole seconds, UTC, the form both CRMs accept for datetime fields."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def ledger_text(value: str | int | float | bool | None) -> str:
    """The text form a written value is remembered by (and compared in) the ledger."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plain(text: str) -> str:
    return (text if text.isprintable() else _CONTROL.sub(" ", text)).strip()


def _tenths(value: float) -> int:
    """`value` in tenths of a point, halves away from zero."""
    tenths = math.floor(abs(value) * 10.0 + 0.5)
    return -tenths if value < 0 else tenths


def _shown_points(contribution: float) -> tuple[int, str]:
    """(tenths, text) of a contribution as a line shows it: whole points (`+7`, `-2`), one decimal
    below a point (`-0.4`), `±0` when it rounds to nothing."""
    tenths = _tenths(contribution)
    if abs(tenths) >= 10:
        whole = _tenths(contribution / 10.0)  # whole points, halves away from zero
        return whole * 10, f"{whole:+d}"
    return tenths, "±0" if tenths == 0 else f"{tenths / 10:+.1f}"


def _signed_tenths(tenths: int) -> str:
    return f"{tenths // 10:+d}" if tenths % 10 == 0 else f"{tenths / 10:+.1f}"


def reasons_text(reasons: Sequence[ReasonLike], disqualified: str | None = None,
                 limit: int = REASONS_MAX_CHARS, top: int = TOP_REASONS, score: int | None = None) -> str:
    """The reasons a rep reads, as one plain line of at most `limit` characters, e.g.
    "+15 activity at their account: 3 engaged people (engineering, quality); +7 requested the
    VoltEdge SiC MOSFET evaluation kit on 2026-10-30; -2 uses a personal email address; other signals +4".

    Each line starts with what it adds to the score today (`contribution`: after decay, caps and the
    blend weights), in whole points, and dates are absolute. Disqualifiers and escalations come first
    (an escalation moves the tier, not the score, so it carries no number; a disqualifier carries
    what it takes off to hold the score at the bottom of the lowest tier); then the largest contributions
    either way, `top` lines in all; every negative line is written, however small. Lines that
    contribute nothing (decay, relevance, caps: the lines they adjust carry them) are left out.
    Given the whole-point `score` written next to it, a last line "other signals ±x" holds what the
    written lines leave out (smaller lines, rounding), so the written numbers add up to the score;
    when the text would pass `limit`, the smallest lines go into it first.
    """
    first = [r for r in reasons if r.kind in _FIRST_KINDS]
    # a disqualifier that holds the score down shows (and counts) what it takes off, like any line
    held = [_shown_points(r.contribution) if r.contribution else (0, "") for r in first]
    heads = [f"{shown} {_plain(r.says)}" if shown else _plain(r.text)
             for r, (_, shown) in zip(first, held, strict=True)]
    held_tenths = sum(tenths for tenths, _ in held)
    if disqualified and not any(r.kind == "disqualifier" for r in first):
        heads.insert(0, "disqualified: " + _CONTROL.sub(" ", disqualified).strip())
    ranked = sorted((r for r in reasons if r.kind not in _FIRST_KINDS), key=lambda r: -abs(r.contribution))
    room = max(0, top - len(first))
    lines: list[tuple[bool, int, str]] = []  # (always written, tenths, line)
    for r in ranked:
        negative = r.kind == "negative"
        tenths, shown = _shown_points(r.contribution)
        if negative or (room > 0 and tenths != 0):
            room -= not negative
            lines.append((negative, tenths, f"{shown} {_plain(r.says)}"))

    def render() -> str:
        parts = [*heads, *(line for _, _, line in lines)]
        if score is not None:
            other = score * 10 - held_tenths - sum(tenths for _, tenths, _ in lines)
            if other:
                parts.append(f"{OTHER_SIGNALS} {_signed_tenths(other)}")
        return "; ".join(p for p in parts if p)

    text = render()
    while len(text) > limit:
        optional = [k for k, (always, _, _) in enumerate(lines) if not always]
        if not optional or len(heads) + len(lines) == 1:  # one line too long on its own: cut it
            return text[: limit - 1].rstrip() + "…"
        del lines[optional[-1]]  # the smallest of the optional lines
        text = render()
    return text


def desired_person_fields(card: CardLike, *, reasons: bool = True) -> dict[str, str | int | float | None]:
    """The owned person fields for one ScoreCard, by logical name (nurture_track comes from routing);
    `likelihood` is None when the playbook has no calibration. With `reasons=False` the reasons are
    left out (`person_reasons` renders them): they only ride along with another field's write, so a
    plan renders them for the records it writes, not for everyone it compares."""
    values: dict[str, str | int | float | None] = {
        "fit_score": whole_points(card.fit),
        "intent_score": whole_points(card.intent),
        "score": whole_points(card.score),
        "tier": card.tier,
    }
    if reasons:
        values["reasons"] = person_reasons(card)
    values["model_version"] = card.model_version
    values["scored_at"] = iso_utc(card.scored_at)
    values["likelihood"] = percent_points(card.likelihood)
    return values


def person_reasons(card: CardLike) -> str:
    """The `reasons` field of one ScoreCard: its lines add up to the whole-point score written with it."""
    return reasons_text(card.reasons, card.disqualified, score=whole_points(card.score))


def desired_account_fields(score: AccountScoreLike) -> dict[str, str | int]:
    """The owned account fields for one AccountScore, by logical name."""
    return {
        "account_fit": whole_points(score.fit),
        "account_intent": whole_points(score.intent),
        "account_tier": score.tier,
        "buying_roles": ", ".join(score.buying_roles),
    }


def field_updates(crm: Crm, object_type: ObjectType, record_id: str, fields: Mapping[str, str | int | None],
                  person_id: str | None = None, reason: str = "") -> list[FieldUpdate]:
    """One FieldUpdate per logical field of one CRM record, e.g. from `desired_person_fields`."""
    return field_updates_for(crm, object_type, record_id, fields, person_id=person_id, reason=reason)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _members(text: str) -> set[str]:
    return {part.strip() for part in text.split(",") if part.strip()}


def plan_writes(
    desired: Sequence[FieldUpdate],
    ledger: Ledger,
    previous_tiers: Mapping[str, str] | None = None,
    min_change: float = DEFAULT_MIN_CHANGE,
    crm_field: FieldNamer = logical_field,
    decaying: frozenset[str] = DECAYING_FIELDS,
) -> list[FieldUpdate]:
    """The subset of `desired` worth writing, in the input order.

    `ledger` maps (CRM record id, field name as `crm_field` names it) to the last value written, for
    the one CRM all of `desired` targets. `previous_tiers` (CRM record id → tier) overrides the tier
    the ledger remembers, e.g. when tiers come from the score history.
    """
    kept = kept_indices(desired, ledger, previous_tiers, min_change, crm_field, decaying)
    return [desired[i] for i in kept]


def rides_along(update: FieldUpdate, ledger: Ledger, crm_field: FieldNamer = logical_field) -> bool:
    """Whether an accompanying field's update (`ACCOMPANYING_FIELDS`) goes with its record's write:
    when its value is not the ledger's. An empty value where leadloop never wrote one has nothing
    to clear."""
    old = ledger.get((update.record_id, crm_field(update)))
    return old != ledger_text(update.value) and not (old is None and update.value is None)


def kept_indices(
    desired: Sequence[FieldUpdate],
    ledger: Ledger,
    previous_tiers: Mapping[str, str] | None = None,
    min_change: float = DEFAULT_MIN_CHANGE,
    crm_field: FieldNamer = logical_field,
    decaying: frozenset[str] = DECAYING_FIELDS,
) -> list[int]:
    """`plan_writes` as the positions in `desired` of the updates it keeps, ascending."""
    crms = {u.crm for u in desired}
    if len(crms) > 1:
        raise ValueError(f"plan_writes works on one CRM at a time; got {sorted(crms)}")
    previous_tiers = previous_tiers or {}

    by_record: dict[tuple[ObjectType, str], list[int]] = {}
    for index, update in enumerate(desired):
        by_record.setdefault((update.object_type, update.record_id), []).append(index)

    keep: set[int] = set()
    for (object_type, record_id), indexes in by_record.items():
        updates = [desired[i] for i in indexes]
        tier_field = TIER_FIELDS.get(object_type)
        new_tier = next((u for u in updates if u.field == tier_field), None)
        tier_changed = False
        if new_tier is not None:
            old_tier = previous_tiers.get(record_id, ledger.get((record_id, crm_field(new_tier))))
            tier_changed = old_tier != ledger_text(new_tier.value)

        chosen: list[int] = []
        riding: list[int] = []
        for index, update in zip(indexes, updates, strict=True):
            if update.field in ACCOMPANYING_FIELDS:
                continue
            old = ledger.get((record_id, crm_field(update)))
            new = ledger_text(update.value)
            if old == new:
                continue
            if update.field in SHRINKING_FIELDS and not tier_changed and old is not None \
                    and _members(new) < _members(old):
                riding.append(index)
                continue
            if update.field in decaying and not tier_changed:
                old_points, new_points = _number(old), _number(new)
                if old_points is not None and new_points is not None \
                        and abs(new_points - old_points) < min_change:
                    if update.field in SUMMED_FIELDS:
                        riding.append(index)
                    continue
            chosen.append(index)
        if not chosen:
            continue
        keep.update(chosen)
        keep.update(riding)
        for index, update in zip(indexes, updates, strict=True):
            if update.field in ACCOMPANYING_FIELDS and rides_along(update, ledger, crm_field):
                keep.add(index)
    return sorted(keep)
