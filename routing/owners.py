"""Owner assignment: account owner, territory pools, capacity-aware weighted round robin, fallback.

Round robin is smooth weighted round robin (the nginx algorithm): every eligible rep earns its
weight in credit at each pick, the richest is picked and pays the total. Over any run of picks a
weight-2 rep gets twice the leads of a weight-1 rep, interleaved rather than in bursts; a rep who is
away or at a cap earns nothing meanwhile, so coming back does not flood them with catch-up leads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import NamedTuple

from leadloop.crm.records import Account, Crm, Person
from leadloop.playbook.routing import Pool, Rep, RoutingSection
from leadloop.routing.calendar import zone
from leadloop.routing.state import AssignmentState, day_key, week_key


class OwnerPick(NamedTuple):
    """Who owns a lead and why; `counts_as_new` when it is a new assignment (caps count it)."""

    owner: str
    source: str
    counts_as_new: bool = True


class OwnerDirectory:
    """Owner key (rep email or queue id) → the owner's id in each CRM, and back.

    Account and opportunity owners arrive from the CRMs as CRM user ids (or emails); the reverse
    map names them by the owner key routing uses.
    """

    __slots__ = ("_by_key", "_reverse")

    def __init__(self, entries: Mapping[str, Mapping[Crm | str, str]] | None = None) -> None:
        self._by_key: dict[str, dict[Crm, str]] = {}
        self._reverse: dict[str, str] = {}
        for key, ids in (entries or {}).items():
            norm = key.strip().lower() if "@" in key else key.strip()
            self._by_key[norm] = {Crm(crm): str(owner_id) for crm, owner_id in ids.items()}
            for owner_id in self._by_key[norm].values():
                self._reverse[owner_id] = norm

    def crm_owner_id(self, owner: str, crm: Crm) -> str | None:
        return self._by_key.get(owner, {}).get(crm)

    def owner_key_for(self, crm_owner_id: str) -> str | None:
        return self._reverse.get(crm_owner_id)

    def __contains__(self, owner: object) -> bool:
        return owner in self._by_key

    def entries(self) -> dict[str, dict[Crm, str]]:
        """Owner key → {CRM: owner id}, a copy."""
        return {key: dict(ids) for key, ids in self._by_key.items()}

    @classmethod
    def from_section(cls, section: RoutingSection,
                     more: Mapping[str, Mapping[Crm | str, str]] | None = None) -> OwnerDirectory:
        """The CRM ids the playbook gives its reps and queues, plus `more` (e.g. CRM users pulled by
        email), which wins where both name the same owner in the same CRM."""
        entries: dict[str, dict[Crm | str, str]] = {}
        for owner in (*section.reps, *section.queues):
            key = owner.email if isinstance(owner, Rep) else owner.id
            entries[key] = dict(owner.crm_ids)
        for key, ids in (more or {}).items():
            norm = key.strip().lower() if "@" in key else key.strip()
            entries.setdefault(norm, {}).update(ids)
        return cls(entries)


class OwnerRules:
    """The owner-related parts of a routing section, indexed for fast lookups."""

    def __init__(self, section: RoutingSection, directory: OwnerDirectory | None = None) -> None:
        self.section = section
        # The playbook's own crm_ids always count; a given directory (e.g. pulled CRM users) adds to them.
        self.directory = OwnerDirectory.from_section(section, directory.entries() if directory else None)
        self.reps: dict[str, Rep] = {r.email: r for r in section.reps}
        self.queue_zones: dict[str, str] = {q.id: q.time_zone for q in section.queues}
        self.pools: dict[str, Pool] = {p.name: p for p in section.pools}
        self.fallback = section.owner_key(section.fallback_owner) if section.fallback_owner else None
        self._days: dict[tuple[str, datetime], tuple[date, str, str]] = {}
        self._away: dict[tuple[str, datetime], str | None] = {}
        self._pool_present: dict[tuple[str, datetime], tuple[list[tuple[Rep, str, str]], list[str]]] = {}
        self._territories: dict[tuple[str | None, str | None, str | None], tuple[str | None, str]] = {}

    def known(self, owner: str) -> bool:
        return owner in self.reps or owner in self.queue_zones

    def time_zone(self, owner: str) -> str:
        rep = self.reps.get(owner)
        if rep is not None:
            return rep.time_zone
        return self.queue_zones.get(owner, "UTC")

    def _local(self, owner: str, now: datetime) -> tuple[date, str, str]:
        """`now` as the owner's local day, with its day and week counter keys (cached per batch)."""
        key = (self.time_zone(owner), now)
        local = self._days.get(key)
        if local is None:
            if len(self._days) > 4096:
                self._days.clear()
            day = now.astimezone(zone(key[0])).date()
            local = self._days[key] = (day, day_key(day), week_key(day))
        return local

    def local_day(self, owner: str, now: datetime) -> date:
        return self._local(owner, now)[0]

    def local_keys(self, owner: str, now: datetime) -> tuple[date, str, str]:
        """The owner's local day at `now`, with its day and ISO-week counter keys."""
        return self._local(owner, now)

    def unavailable(self, owner: str, now: datetime) -> str | None:
        """Why `owner` cannot take a lead now (inactive, out of office), or None. Queues always can."""
        key = (owner, now)
        if key not in self._away:
            if len(self._away) > 4096:
                self._away.clear()
            self._away[key] = self._unavailable(owner, now)
        return self._away[key]

    def _unavailable(self, owner: str, now: datetime) -> str | None:
        rep = self.reps.get(owner)
        if rep is None:
            return None
        if not rep.active:
            return f"{owner} is inactive"
        away = rep.away_on(self.local_day(owner, now))
        if away is not None:
            return f"{owner} is out of office until {away.end.isoformat()}"
        return None

    @staticmethod
    def full(rep: Rep, counts: dict[str, int] | None, today_key: str, week_key_: str) -> str | None:
        """Why `rep` can take no more new leads now (a cap reached), or None."""
        if not counts:
            return None
        if rep.daily_cap is not None and counts.get(today_key, 0) >= rep.daily_cap:
            return f"{rep.email} reached the daily cap of {rep.daily_cap}"
        if rep.weekly_cap is not None and counts.get(week_key_, 0) >= rep.weekly_cap:
            return f"{rep.email} reached the weekly cap of {rep.weekly_cap}"
        return None

    def _present(self, pool_name: str, now: datetime) -> tuple[list[tuple[Rep, str, str]], list[str]]:
        """The pool's reps who are active and in office at `now` (with their local day and week
        counter keys), and why the others are not; cached, since a batch shares one `now`."""
        key = (pool_name, now)
        cached = self._pool_present.get(key)
        if cached is None:
            present: list[tuple[Rep, str, str]] = []
            away: list[str] = []
            for email in self.pools[pool_name].reps:
                blocked = self.unavailable(email, now)
                if blocked:
                    away.append(blocked)
                else:
                    _, today_key, week = self._local(email, now)
                    present.append((self.reps[email], today_key, week))
            if len(self._pool_present) > 1024:
                self._pool_present.clear()
            cached = self._pool_present[key] = (present, away)
        return cached

    def resolve(self, crm_owner: str | None) -> str | None:
        """A CRM owner reference (user id or email) as a known owner key, or None."""
        if not crm_owner:
            return None
        key = crm_owner.strip().lower() if "@" in crm_owner else crm_owner.strip()
        if self.known(key):
            return key
        mapped = self.directory.owner_key_for(crm_owner.strip())
        return mapped if mapped and self.known(mapped) else None

    def territory_pool(self, person: Person, account: Account | None, profile: str | None,
                       ) -> tuple[str | None, str]:
        region = (account.region if account else None) or person.region
        segment = account.segment if account else None
        key = (region, profile, segment)
        if key not in self._territories:
            self._territories[key] = self._match_territory(region, profile, segment)
        return self._territories[key]

    def _match_territory(self, region: str | None, profile: str | None, segment: str | None,
                         ) -> tuple[str | None, str]:
        for territory in self.section.territories:
            if territory.matches(region, profile, segment):
                return territory.pool, f"territory {territory.name!r}"
        if self.section.default_pool:
            return self.section.default_pool, "no territory matched: default pool"
        return None, "no territory matched and no default pool"

    def round_robin(self, pool_name: str, now: datetime, state: AssignmentState,
                    notes: list[str]) -> str | None:
        """Pick the next rep of a pool by smooth weighted round robin among available reps under
        their caps; None when everyone is away or full (the reasons are appended to `notes`)."""
        present, away = self._present(pool_name, now)
        notes.extend(away)
        eligible: list[Rep] = []
        all_counts = state.counts
        for rep, today_key, week in present:
            if rep.daily_cap is not None or rep.weekly_cap is not None:
                blocked = self.full(rep, all_counts.get(rep.email), today_key, week)
                if blocked:
                    notes.append(blocked)
                    continue
            eligible.append(rep)
        if not eligible:
            return None
        credits = state.credits.setdefault(pool_name, {})
        total = 0.0
        best: Rep | None = None
        best_credit = 0.0
        for rep in eligible:
            credit = credits.get(rep.email, 0.0) + rep.weight
            credits[rep.email] = credit
            total += rep.weight
            if best is None or credit > best_credit:
                best, best_credit = rep, credit
        assert best is not None
        credits[best.email] = best_credit - total
        return best.email

    def assign(self, person: Person, account: Account | None, profile: str | None, now: datetime,
               state: AssignmentState, notes: list[str]) -> OwnerPick:
        """The owner of a sales-ready lead, in order: the account's owner, leadloop's previous
        assignment, the person's current CRM owner, the territory pool's round robin, the pool's
        fallback, the playbook's fallback owner. Never None when a fallback owner is configured."""
        account_owner = self.resolve(account.owner_id) if account else None
        if account_owner:
            blocked = self.unavailable(account_owner, now)
            if blocked is None:
                return OwnerPick(account_owner, "account owner")
            notes.append(f"account owner {blocked}")
        elif account is not None and account.owner_id:
            notes.append(f"account owner {account.owner_id!r} is not a known rep")
        previous = state.owners.get(person.id)
        if previous and self.known(previous["owner"]) and self.unavailable(previous["owner"], now) is None:
            return OwnerPick(previous["owner"], f"kept from {previous['at'][:10]} ({previous['via']})",
                             counts_as_new=False)
        current = self.resolve(person.owner_id)
        if current and current in self.reps and self.unavailable(current, now) is None:
            return OwnerPick(current, "current CRM owner", counts_as_new=False)
        pool_name, why = self.territory_pool(person, account, profile)
        if pool_name is not None:
            rep = self.round_robin(pool_name, now, state, notes)
            if rep is not None:
                return OwnerPick(rep, f"round robin in pool {pool_name!r} ({why})")
            fallback = self.pools[pool_name].fallback
            if fallback:
                key = self.section.owner_key(fallback)
                if self.unavailable(key, now) is None:
                    return OwnerPick(key, f"pool {pool_name!r} is full or away: its fallback")
        else:
            notes.append(why)
        if self.fallback is None:
            raise ValueError("routing.fallback_owner is required to assign owners")
        return OwnerPick(self.fallback, "fallback owner (nobody else available)")

    def available_or_fallback(self, owner: str | None, source: str, now: datetime,
                              notes: list[str]) -> OwnerPick:
        """`owner` when known and available, else the playbook's fallback owner."""
        if owner is not None:
            blocked = self.unavailable(owner, now)
            if blocked is None:
                return OwnerPick(owner, source)
            notes.append(blocked)
        if self.fallback is None:
            raise ValueError("routing.fallback_owner is required to assign owners")
        return OwnerPick(self.fallback, f"fallback owner ({source} unavailable)")
