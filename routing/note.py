"""The handoff note: the task body a rep reads in a few seconds before calling.

Plain text with short lines and five titled sections (Why now / Fit / Buying committee /
Stage & next step / Qualification questions), identical in Salesforce and HubSpot: no markdown,
no tables, no HTML, nothing either CRM would render differently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from leadloop.crm.records import Account, Asset, Person
from leadloop.playbook.routing import StageGuidance
from leadloop.playbook.wording import signed
from leadloop.scoring.scorecard import ReasonKind, ScoreCard

TOP_SIGNALS = 3
COMMITTEE_LINES = 4
_SIGNAL_KINDS = frozenset({ReasonKind.INTENT, ReasonKind.ESCALATION})


def why_now_lines(card: ScoreCard, limit: int = TOP_SIGNALS) -> list[str]:
    """The strongest intent signals, strongest first, each with what it adds to the score today (the
    number the CRM's reason lines show) and its asset; the reason's text carries its date."""
    positive = [r for r in card.reasons if r.kind in _SIGNAL_KINDS and r.points > 0]
    # Dated reasons are things the person did; undated ones (bonuses) explain points, not timing.
    dated = [r for r in positive if r.occurred_at is not None or r.kind is ReasonKind.ESCALATION]
    signals = sorted(dated or positive,
                     key=lambda r: (r.kind is not ReasonKind.ESCALATION, -r.contribution, -r.points, r.rule))
    lines = []
    for reason in signals[:limit]:
        shown = f"{signed(round(reason.contribution))} {reason.says}" if reason.contribution else reason.says
        asset = f" (asset {reason.asset})" if reason.asset and reason.asset not in reason.text else ""
        lines.append(f"- {shown}{asset}")
    if card.escalation and not any(r.kind is ReasonKind.ESCALATION for r in signals[:limit]):
        lines.insert(0, f"- {card.escalation.text}")
    return lines or [f"- intent {card.intent:.0f} (no single strong signal)"]


def fit_lines(card: ScoreCard, person: Person, account: Account | None) -> list[str]:
    lines = [f"- Profile: {card.profile or 'none'} · fit {card.fit:.0f}, intent {card.intent:.0f},"
             f" score {card.score:.0f} ({card.tier})"]
    if account is not None:
        parts = [p for p in (account.segment, account.application, account.region) if p]
        lines.append(f"- Account: {account.name or account.id}" + (f" · {' · '.join(parts)}" if parts else "")
                     + f" · account fit {card.account_fit:.0f}")
    elif person.company_name:
        lines.append(f"- Company: {person.company_name} (not matched to an account)")
    role = " · ".join(p for p in (card.role, card.seniority) if p) or "role unknown"
    lines.append(f"- Role: {role}" + (f" · {person.title}" if person.title else ""))
    return lines


class Committee(Sequence[tuple[Person, "ScoreCard | None"]]):
    """An account's people with their scorecards, as the buying-committee picture of a note.

    The engaged members, their order and their note lines are worked out once per account and
    shared by the notes of all its people (each note leaves out its own person).
    """

    __slots__ = ("_lines", "_members")

    def __init__(self, members: Sequence[tuple[Person, ScoreCard | None]]) -> None:
        self._members = members
        self._lines: list[tuple[str, str | None, str]] | None = None

    def __len__(self) -> int:
        return len(self._members)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self._members[index]

    def __iter__(self) -> Iterator[tuple[Person, ScoreCard | None]]:
        return iter(self._members)

    def engaged_lines(self) -> list[tuple[str, str | None, str]]:
        """(person id, role, line) of every engaged member, most engaged first."""
        if self._lines is None:
            engaged = sorted(((p, c) for p, c in self._members if c is not None and c.intent > 0),
                             key=lambda pc: (-pc[1].intent, pc[0].id))
            lines = []
            for colleague, card in engaged:
                what = " · ".join(x for x in (card.role, colleague.title) if x) or "role unknown"
                lines.append((colleague.id, card.role,
                              f"- {colleague.name}: {what} (intent {card.intent:.0f}, {card.tier})"))
            self._lines = lines
        return self._lines


def committee_lines(person: Person, colleagues: Sequence[tuple[Person, ScoreCard | None]],
                    limit: int = COMMITTEE_LINES) -> list[str]:
    """The other engaged people of the account: roles covered, then the most engaged few."""
    committee = colleagues if isinstance(colleagues, Committee) else Committee(colleagues)
    others = [(role, line) for pid, role, line in committee.engaged_lines() if pid != person.id]
    if not others:
        return ["- No one else at this account has engaged yet."]
    roles = sorted({role for role, _ in others if role})
    lines = [f"- {len(others)} other engaged; roles: {', '.join(roles) or 'unknown'}"]
    lines += [line for _, line in others[:limit]]
    if len(others) > limit:
        lines.append(f"- and {len(others) - limit} more")
    return lines


def handoff_note(
    card: ScoreCard,
    person: Person,
    account: Account | None,
    colleagues: Sequence[tuple[Person, ScoreCard | None]],
    guidance: StageGuidance | None,
    next_asset: Asset | None,
    headline: str | None = None,
) -> str:
    """The task body. `headline` (e.g. the open opportunity) goes first when given."""
    sections: list[str] = [headline] if headline else []
    sections.append("Why now\n" + "\n".join(why_now_lines(card)))
    sections.append("Fit\n" + "\n".join(fit_lines(card, person, account)))
    sections.append("Buying committee\n" + "\n".join(committee_lines(person, colleagues)))
    stage = [f"- Stage: {card.stage or 'not yet known'}"]
    if guidance is not None:
        stage.append(f"- Next step: {guidance.next_step}")
    if next_asset is not None:
        stage.append(f"- Suggested asset: {next_asset.name} ({next_asset.type}"
                     + (f", {next_asset.url}" if next_asset.url else "") + ")")
    sections.append("Stage & next step\n" + "\n".join(stage))
    questions = guidance.questions if guidance is not None else ()
    sections.append("Qualification questions\n" + ("\n".join(f"- {q}" for q in questions)
                                                    or "- (none in the playbook for this stage)"))
    return "\n\n".join(sections)
