"""What changed between two scorecards of the same person, in sentences a rep can read.

`explain_diff(old, new)` starts with the headline (`+18 since last score: requested PMIC-77
samples on 2026-10-31`), then the tier change and each reason that appeared, disappeared or moved.
Reasons are compared by what they add to the score (`Reason.contribution`, whole points), the numbers
the CRM's reason lines show, so the lines here and there speak the same units.
"""

from __future__ import annotations

import re

from leadloop.playbook.wording import number, signed
from leadloop.scoring.scorecard import Reason, ReasonKind, ScoreCard

_DIRECT = frozenset({ReasonKind.INTENT, ReasonKind.NEGATIVE, ReasonKind.FIT, ReasonKind.PERSONA})
_LEADING_POINTS = re.compile(r"^[+-]\d+(\.\d)?\s+")


def _points(reason: Reason) -> int:
    """What the line adds to the score, in the whole points the CRM's reason lines show."""
    return round(reason.contribution)


def _line(reason: Reason) -> str:
    """The line with its contribution in front, or without a number for a line that only explains
    (an escalation, a decay or a cap: it moves the tier or the lines it adjusts, not the score)."""
    return f"{signed(_points(reason))} {reason.says}" if reason.contribution else reason.says


def _by_key(card: ScoreCard | None) -> dict[tuple[ReasonKind, str], Reason]:
    found: dict[tuple[ReasonKind, str], Reason] = {}
    for reason in card.reasons if card else ():
        found.setdefault((reason.kind, reason.rule), reason)
    return found


def explain_diff(old: ScoreCard | None, new: ScoreCard) -> list[str]:
    """Lines explaining the change from `old` (None for a first score) to `new`."""
    if old is None:
        return [f"first score: {number(new.score)} ({new.tier})"]
    delta = round(new.score - old.score, 1)
    before, after = _by_key(old), _by_key(new)
    changes: list[tuple[float, str, ReasonKind]] = []
    for key, reason in after.items():
        previous = before.get(key)
        if previous is None:
            if reason.contribution or reason.kind not in _DIRECT:
                changes.append((_points(reason), f"new: {_line(reason)}", reason.kind))
        elif _points(reason) != _points(previous):
            moved = _points(reason) - _points(previous)
            changes.append((moved, f"{signed(moved)} {reason.says} (was {signed(_points(previous))})",
                            reason.kind))
    for key, reason in before.items():
        if key not in after and (reason.contribution or reason.kind not in _DIRECT):
            changes.append((-_points(reason), f"gone: {_line(reason)}", reason.kind))
    if delta == 0 and new.tier == old.tier:
        headline = "no change since last score"
    else:
        # The headline names something the person did (or a rule about them), not a roll-up or cap.
        direct = [c for c in changes if c[2] in _DIRECT and (c[0] > 0) == (delta >= 0)]
        wanted = direct or [c for c in changes if (c[0] > 0) == (delta >= 0)] or changes
        cause = max(wanted, key=lambda c: abs(c[0]))[1] if wanted else "decay and roll-up"
        cause = cause.removeprefix("new: ")
        headline = f"{signed(delta)} since last score: {_LEADING_POINTS.sub('', cause)}"
    lines = [headline]
    if new.tier != old.tier:
        lines.append(f"tier: {old.tier} → {new.tier}")
    if new.model_version != old.model_version:
        lines.append(f"model changed: {old.model_version} → {new.model_version}")
    lines += [text for _, text, _ in sorted(changes, key=lambda c: (-abs(c[0]), c[1]))]
    return lines
