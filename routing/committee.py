"""Buying committees that reach a rep: who counts as an engaged member, the account task's key, and
its note.

An account meets the playbook's committee condition (`routing.committee`) when its roll-up tier is
one of `account_tiers` and at least `min_roles` distinct roles that count have a member who engaged
in the last `window_days`: a person, not disqualified, whose intent is at least `min_intent` and who
has a dated intent signal (something they did, not a bonus) in the window. The engine
(`Router.committee`) then gives the account owner one account task when nobody at the account is
routed individually.

Exactly once, as person tasks: the key is derived from the account, its tier and its engaged roles
(`committee_key`), so a rerun upserts the same task and the ledger keeps it from being sent twice;
the assignment state remembers the highest tier and every role raised per account, so the same (or
a smaller) committee raises nothing, and only a role not raised before or a higher tier raises a new
task under a new key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from leadloop.crm.records import Account, Person
from leadloop.playbook.routing import CommitteeRule
from leadloop.routing.model import CommitteeMember, TaskKind
from leadloop.scoring.scorecard import AccountScore, Reason, ReasonKind, ScoreCard

MEMBER_LINES = 8  # members a note names; the rest are counted
_DONE_KINDS = frozenset({ReasonKind.INTENT, ReasonKind.ESCALATION})


def committee_key(account_id: str, tier: str, roles: Collection[str]) -> str:
    """Deterministic per (account, account tier, set of engaged roles): the same committee at the
    same tier always has the same key; one more role or another tier gives another."""
    level = f"{account_id}|{TaskKind.BUYING_COMMITTEE.value}|{tier}|{','.join(sorted(set(roles)))}"
    return f"ll-{hashlib.sha1(level.encode()).hexdigest()[:24]}"


def things_done(card: ScoreCard) -> list[Reason]:
    """The person's dated intent signals: things they did (not bonuses, caps or decay)."""
    return [r for r in card.reasons if r.kind in _DONE_KINDS and r.points > 0 and r.occurred_at is not None]


def what_they_did(done: Sequence[Reason], since: datetime) -> str:
    """The strongest thing done since `since` (an escalation first, then the most points), as its
    reason line, dated."""
    recent = [r for r in done if r.occurred_at is not None and r.occurred_at >= since] or list(done)
    top = min(recent, key=lambda r: (r.kind is not ReasonKind.ESCALATION, -r.points, r.rule))
    day = top.occurred_at.date().isoformat() if top.occurred_at is not None else ""
    return top.text if day in top.text else f"{top.text} ({day})"


def engaged_members(people: Sequence[tuple[Person, ScoreCard | None]], rule: CommitteeRule,
                    roles: Collection[str], now: datetime) -> list[CommitteeMember]:
    """The account's people who count as engaged committee members (see the module's docstring),
    most engaged first, ties by person id."""
    since = now - timedelta(days=rule.window_days)
    members = []
    for person, card in people:
        if (card is None or card.disqualified or card.role not in roles or card.intent <= 0
                or card.intent < rule.min_intent):
            continue
        done = things_done(card)
        when = max((r.occurred_at for r in done if r.occurred_at is not None), default=None)
        if when is None or when < since:
            continue
        members.append(CommitteeMember(person.id, person.name, person.title, card.role or "", card.intent,
                                       when.date(), what_they_did(done, since)))
    members.sort(key=lambda m: (-m.intent, m.person_id))
    return members


def engaged_roles(members: Sequence[CommitteeMember]) -> tuple[str, ...]:
    return tuple(sorted({m.role for m in members}))


def role_names(roles: Sequence[str]) -> str:
    """`engineering, product management, procurement`: roles as a rep reads them."""
    return ", ".join(r.replace("_", " ") for r in roles)


def committee_trigger(rule: CommitteeRule, tier: str, roles: Sequence[str],
                      raised: Mapping[str, Any] | None) -> str | None:
    """Why the committee warrants a new account task now, or None when a task already raised for the
    account covers it (no role it did not name, no higher tier)."""
    if raised is None:
        return f"buying committee formed: {len(roles)} roles engaged ({role_names(roles)})"
    joined = [r for r in roles if r not in raised["roles"]]
    if joined:
        return f"buying committee grew: {role_names(joined)} joined"
    if rule.rank(tier) < rule.rank(raised["tier"]):
        return f"account moved up from {raised['tier']} to {tier}"
    return None


def committee_subject(rule: CommitteeRule, account: Account | None, account_id: str, tier: str,
                      roles: Sequence[str], members: Sequence[CommitteeMember]) -> str:
    name = (account.name if account is not None else None) or account_id
    return rule.subject.format(account=name, tier=tier, roles=role_names(roles), count=len(members))[:255]


def committee_note(rule: CommitteeRule, account: Account | None, score: AccountScore, roles: Sequence[str],
                   members: Sequence[CommitteeMember], trigger: str) -> str:
    """The account task's body, plain text like a handoff note: why now, who is engaging (name,
    title, role, and what each did most recently of note), the account, and the next step."""
    name = (account.name if account is not None else None) or score.account_id
    headline = (f"Buying committee at {name} ({score.tier}): {len(roles)} roles engaged in the last"
                f" {rule.window_days} days, and nobody there is routed to a rep yet.")
    who = []
    for member in members[:MEMBER_LINES]:
        about = " · ".join(x for x in (member.title, member.role.replace("_", " ")) if x)
        who.append(f"- {member.name} · {about} · intent {member.intent:.0f}")
        who.append(f"  {member.did}")
    if len(members) > MEMBER_LINES:
        who.append(f"- and {len(members) - MEMBER_LINES} more")
    firmographics = (account.segment, account.application, account.region) if account is not None else ()
    about_account = [f"- {name}" + "".join(f" · {p}" for p in firmographics if p)]
    about_account.append(f"- Account fit {score.fit:.0f}, account intent {score.intent:.0f} ({score.tier})")
    sections = [headline, f"Why now\n- {trigger}", "Who is engaging\n" + "\n".join(who),
                "Account\n" + "\n".join(about_account), f"Next step\n- {rule.next_step}"]
    return "\n\n".join(sections)
