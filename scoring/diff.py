"""What changed between two scorecards of the same person, in sentences a rep can read.

`explain_diff(old, new)` starts with the headline (`+18 since last score: requested PMIC-77
samples 1 day ago`), then the tier change and each reason that appeared, disappeared or moved.
"""

from __future__ import annotations

import re

from leadloop.playbook.wording import number, signed
from leadloop.scoring.scorecard import Reason, ReasonKind, ScoreCard

_DIRECT = frozenset({ReasonKind.INTENT, ReasonKind.NEGATIVE, ReasonKind.FIT, ReasonKind.PERSONA})
_LEADING_POINTS = re.compile(r"^[+-]\d+(\.\d)?\s+")


def _sentence(reason: Reason) -> str:
    return _LEADING_POINTS.sub("", reason.text)


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
            changes.append((reason.points, f"new: {reason.text}", reason.kind))
        elif round(reason.points - previous.points, 1) != 0:
            moved = reason.points - previous.points
            changes.append((moved, f"{signed(moved)} {_sentence(reason)} (was {number(previous.points)})",
                            reason.kind))
    for key, reason in before.items():
        if key not in after:
            changes.append((-reason.points, f"gone: {reason.text}", reason.kind))
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
