"""The account roll-up: the engaged people of each account, their intent with diminishing returns
by rank, the buying-committee coverage bonus, and the account's score and reasons."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import repeat
from typing import NamedTuple, Protocol

import numpy as np

from leadloop.crm.batch import build_many
from leadloop.crm.records import Account
from leadloop.playbook.compiled import CompiledPlaybook, compile_playbook
from leadloop.playbook.model import Committee, Playbook
from leadloop.playbook.wording import number, signed
from leadloop.scoring.fit import AccountFit, _account_fit
from leadloop.scoring.scorecard import AccountScore, Reason, ReasonKind
from leadloop.scoring.tiers import _r, _tiers_reached, whole


class Member(Protocol):
    """What the account roll-up needs from each person (a ScoreCard qualifies)."""

    @property
    def person_id(self) -> str: ...
    @property
    def intent(self) -> float: ...
    @property
    def role(self) -> str | None: ...
    @property
    def disqualified(self) -> str | None: ...


class _Engaged(NamedTuple):
    """The people an account roll-up counts (intent above zero, not disqualified), per account: most
    engaged first, ties by person id. Arrays over those people, grouped by account."""

    member: np.ndarray  # position in the caller's member order
    account: np.ndarray
    intent: np.ndarray
    share: np.ndarray  # intent × the diminishing factor of its rank (counted up to max_people)
    starts: np.ndarray  # per account: first position in the arrays above
    counts: np.ndarray  # per account: how many engaged people


def _engaged(
    cp: CompiledPlaybook, n_accounts: int, account: np.ndarray, intent: np.ndarray, disqualified: np.ndarray
) -> tuple[_Engaged, list[float]]:
    """`account[i]` is member i's account position (-1: none); members come in person-id order. Also
    returns the diminishing factors by rank, multiplied out one by one as a running product."""
    section = cp.playbook.account.intent
    member = np.nonzero((account >= 0) & ~disqualified & (intent > 0))[0]
    order = np.lexsort((member, -intent[member], account[member]))
    member = member[order]
    acc = account[member]
    value = intent[member]
    counts = np.bincount(acc, minlength=n_accounts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(member)) - starts[acc]
    factors = [1.0]
    for _ in range(section.max_people - 1):
        factors.append(factors[-1] * section.decay_factor)
    share = value * np.array(factors)[np.minimum(rank, section.max_people - 1)]
    return _Engaged(member, acc, value, share, starts, counts), factors


def _rollups(
    cp: CompiledPlaybook,
    account_ids: list[str],
    fits: list[AccountFit],
    account: np.ndarray,
    intent: np.ndarray,
    disqualified: np.ndarray,
    person_ids: list[str],
    roles: list[str | None],
    name_of: Callable[[int], str],
) -> list[AccountScore]:
    """Every account's intent (its people's intent with diminishing returns, plus buying-committee
    coverage) and tier, with reasons. Members are given column-wise, in person-id order: their
    account position (-1: none), intent, whether disqualified, id and role; `name_of(i)` is how a
    reason names member i (asked only for the three people an account line shows)."""
    pb = cp.playbook
    n_accounts = len(account_ids)
    engaged, factors = _engaged(cp, n_accounts, account, intent, disqualified)
    rolled = _rolled_shares(engaged, n_accounts, pb.account.intent.max_people)
    committee = _committee_roles(pb.account.committee, engaged, n_accounts, roles)
    finals, roles_of, reasons_of = _account_intents(
        cp, engaged, factors, rolled, committee, fits, person_ids, roles, name_of
    )
    fit = np.array([f.fit for f in fits], dtype=np.float64)
    # placed on the whole points the CRMs show, as people's tiers are
    tiers = _tiers_reached(
        pb.account.tiers, n_accounts, fit=whole(fit), intent=whole(np.array(finals, dtype=np.float64))
    )
    return build_many(
        AccountScore,
        n_accounts,
        {
            "account_id": account_ids,
            "model_version": repeat(pb.model_version, n_accounts),
            "fit": fit.tolist(),
            "intent": finals,
            "tier": tiers,
            "buying_roles": roles_of,
            "engaged_people": engaged.counts.tolist(),
            "reasons": reasons_of,
            "profile": [f.profile.profile.id if f.profile else None for f in fits],
        },
    )


def _rolled_shares(engaged: _Engaged, n_accounts: int, max_people: int) -> list[float]:
    """Per account, the sum of its counted shares, added in rank order (as a running total would),
    for all accounts at once."""
    rolled = np.zeros(n_accounts)
    most = int(engaged.counts.max()) if n_accounts else 0
    for k in range(min(most, max_people)):
        with_k = np.nonzero(engaged.counts > k)[0]
        rolled[with_k] += engaged.share[engaged.starts[with_k] + k]
    return rolled.tolist()


class _CommitteeRoles(NamedTuple):
    """The committee roles each account has engaged: a bit set per account over `wanted` (the sorted
    role names), and the role names of each bit set met so far."""

    wanted: list[str]
    bits: list[int]
    names_of: dict[int, tuple[str, ...]]

    def names(self, bit_set: int) -> tuple[str, ...]:
        found = self.names_of.get(bit_set)
        if found is None:
            found = self.names_of[bit_set] = tuple(r for j, r in enumerate(self.wanted) if bit_set >> j & 1)
        return found


def _committee_roles(
    committee: Committee | None, engaged: _Engaged, n_accounts: int, roles: list[str | None]
) -> _CommitteeRoles:
    wanted = sorted(set(committee.roles)) if committee is not None else []
    bits_type = np.int64 if len(wanted) < 63 else object  # Python ints past 62 roles
    role_bits = np.zeros(n_accounts, dtype=bits_type)
    if committee is not None:
        bit = {role: 1 << j for j, role in enumerate(wanted)}
        member_bit = np.array([bit.get(roles[m], 0) for m in engaged.member.tolist()], dtype=bits_type)
        member_bit[engaged.intent < committee.min_intent] = 0
        np.bitwise_or.at(role_bits, engaged.account, member_bit)
    return _CommitteeRoles(wanted, role_bits.tolist(), {})


def _account_intents(
    cp: CompiledPlaybook,
    engaged: _Engaged,
    factors: list[float],
    rolled: list[float],
    committee_roles: _CommitteeRoles,
    fits: list[AccountFit],
    person_ids: list[str],
    roles: list[str | None],
    name_of: Callable[[int], str],
) -> tuple[list[float], list[tuple[str, ...]], list[tuple[Reason, ...]]]:
    """Per account: its intent (capped), its engaged committee roles and its reasons (fit's, then
    the three most engaged people by name, the rest in one line, the committee bonus, the account
    signals and the cap)."""
    section = cp.playbook.account
    committee, max_people = section.committee, section.intent.max_people
    decay_why, intent_cap = section.intent.why, section.intent.cap
    member_list, intent_list = engaged.member.tolist(), engaged.intent.tolist()
    share_list = engaged.share.tolist()
    finals: list[float] = []
    roles_of: list[tuple[str, ...]] = []
    reasons_of: list[tuple[Reason, ...]] = []
    for a, (start, count) in enumerate(zip(engaged.starts.tolist(), engaged.counts.tolist(), strict=True)):
        reasons: list[Reason] = []
        total = rolled[a]
        for position in range(min(count, 3, max_people)):  # three named, the rest summed in one line
            j = start + position
            m = member_list[j]
            share = share_list[j]
            weight = "" if position == 0 else f" × {factors[position]:.3g}"
            reasons.append(
                Reason(
                    ReasonKind.ACCOUNT,
                    person_ids[m],
                    _r(share),
                    f"{signed(share)} {name_of(m)} ({(roles[m] or 'other').replace('_', ' ')}, "
                    f"intent {number(intent_list[j])}{weight})",
                    why=decay_why,
                )
            )
        if count > 3:
            rest = total - sum(r.points for r in reasons)
            reasons.append(
                Reason(
                    ReasonKind.ACCOUNT,
                    "more_people",
                    _r(rest),
                    f"{signed(rest)} {count - 3} more engaged people (diminishing)",
                )
            )
        engaged_roles: tuple[str, ...] = ()
        if committee is not None and count:
            engaged_roles = committee_roles.names(committee_roles.bits[a])
            if len(engaged_roles) > 1:
                bonus, line = _committee_line(committee, engaged_roles)
                total += bonus
                reasons.append(line)
        for line in fits[a].signals:  # what the account itself says (an existing customer), engaged or not
            total += line.points
            reasons.append(line)
        if total > intent_cap:
            reasons.append(_cap_line(intent_cap, total))
            total = intent_cap
        finals.append(_r(total))
        roles_of.append(engaged_roles)
        reasons_of.append((*fits[a].reasons, *reasons) if reasons else fits[a].reasons)
    return finals, roles_of, reasons_of


def _committee_line(committee: Committee, engaged_roles: tuple[str, ...]) -> tuple[float, Reason]:
    """The buying-committee bonus for engaging more than one of its roles, and its reason."""
    bonus = min(committee.cap, committee.points_per_role * (len(engaged_roles) - 1))
    capped = " (capped)" if bonus == committee.cap else ""
    return bonus, Reason(
        ReasonKind.ACCOUNT,
        "committee",
        _r(bonus),
        f"{signed(bonus)} buying committee: "
        f"{', '.join(r.replace('_', ' ') for r in engaged_roles)} engaged{capped}",
        why=committee.why,
    )


def _cap_line(intent_cap: float, total: float) -> Reason:
    return Reason(
        ReasonKind.CAP,
        "account_intent",
        _r(intent_cap - total),
        f"{signed(intent_cap - total)} capped at {number(intent_cap)}: account intent",
    )


def score_account(playbook: Playbook, account: Account, members: Iterable[Member]) -> AccountScore:
    """An account's fit and intent from its people's scorecards (or anything with intent and role)."""
    ordered = sorted(members, key=lambda m: m.person_id)
    n = len(ordered)
    return _rollups(
        compile_playbook(playbook),
        [account.id],
        [_account_fit(compile_playbook(playbook), account)],
        np.zeros(n, dtype=np.int64),
        np.array([m.intent for m in ordered], dtype=np.float64),
        np.array([bool(m.disqualified) for m in ordered], dtype=bool),
        [m.person_id for m in ordered],
        [m.role for m in ordered],
        lambda i: _name(ordered[i]),
    )[0]


def _name(member: Member) -> str:
    """A person as an account line names them: by name when the member carries its Person."""
    person = getattr(member, "person", None)
    return person.name if person is not None else member.person_id


