"""Assignment state: who got which lead when, kept between runs so round robin stays fair, and which
buying committees already got an account task, so one is raised again only when it grows.

A plain, JSON-serializable value: the store persists `to_dict()` and hands `from_dict()` back on
the next run. Routing never mutates the state it is given; it returns an updated copy.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


def day_key(day: date) -> str:
    return f"d:{day.isoformat()}"


def week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"w:{year}-W{week:02d}"


@dataclass(slots=True)
class AssignmentState:
    """`credits`: pool → rep → smooth weighted round-robin credit. `counts`: rep → day/week key →
    new leads assigned. `owners`: person id → {"owner", "at", "via"} of leadloop's last assignment.
    `committees`: account id → the buying committee its account tasks have covered so far: {"tier":
    the highest account tier raised, "roles": every role raised, "key": the last task's key, "at"}.
    """

    credits: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    owners: dict[str, dict[str, str]] = field(default_factory=dict)
    committees: dict[str, dict[str, Any]] = field(default_factory=dict)

    def assigned(self, rep: str, local_day: date) -> tuple[int, int]:
        """New leads given to `rep` on that local day and in its ISO week."""
        counts = self.counts.get(rep, {})
        return counts.get(day_key(local_day), 0), counts.get(week_key(local_day), 0)

    def record(self, person_id: str, owner: str, via: str, at: datetime | str, local_day: date,
               keys: tuple[str, str] | None = None) -> None:
        """Count a new lead for `owner` on its local day and week, and remember who owns the person.
        `at` may be given already in ISO form and `keys` as (day_key, week_key), to save work in a batch."""
        counts = self.counts.setdefault(owner, {})
        for key in keys or (day_key(local_day), week_key(local_day)):
            counts[key] = counts.get(key, 0) + 1
        self.owners[person_id] = {"owner": owner, "at": at if isinstance(at, str) else at.isoformat(),
                                  "via": via}

    def raised_committee(self, account_id: str, tier: str, roles: Iterable[str], key: str,
                         at: datetime) -> None:
        """Remember that an account task `key` was raised for this committee: `tier` is the highest
        tier raised so far (the caller compares), the roles join those raised before."""
        before = self.committees.get(account_id)
        known = set(before["roles"]) if before is not None else set()
        self.committees[account_id] = {"tier": tier, "roles": sorted(known | set(roles)), "key": key,
                                       "at": at.isoformat()}

    def prune(self, today: date, keep_days: int = 14) -> None:
        """Forget day and week counters older than `keep_days` (caps only look at the current ones)."""
        oldest_day = day_key(date.fromordinal(today.toordinal() - keep_days))
        oldest_week = week_key(date.fromordinal(today.toordinal() - keep_days))
        for counts in self.counts.values():
            for key in [k for k in counts if (k < oldest_day if k[0] == "d" else k < oldest_week)]:
                del counts[key]

    def copy(self) -> AssignmentState:
        return AssignmentState(copy.deepcopy(self.credits), copy.deepcopy(self.counts),
                               {k: dict(v) for k, v in self.owners.items()}, copy.deepcopy(self.committees))

    def to_dict(self) -> dict[str, Any]:
        return {"credits": self.credits, "counts": self.counts, "owners": self.owners,
                "committees": self.committees}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AssignmentState:
        """Rebuild from `to_dict()` output; None or {} gives a fresh state."""
        data = data or {}
        return cls(
            credits={pool: {r: float(c) for r, c in reps.items()}
                     for pool, reps in data.get("credits", {}).items()},
            counts={r: {k: int(n) for k, n in c.items()} for r, c in data.get("counts", {}).items()},
            owners={p: dict(v) for p, v in data.get("owners", {}).items()},
            committees={a: {"tier": str(v["tier"]), "roles": [str(r) for r in v.get("roles", ())],
                            "key": str(v.get("key", "")), "at": str(v.get("at", ""))}
                        for a, v in data.get("committees", {}).items()},
        )
