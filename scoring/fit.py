"""Fit: an account's under its best applicable profile, a person's from persona and person rules,
each with its reasons; the static part of a person's card (everything activities do not change),
including whether they are disqualified (a disqualifier rule, or an account type the playbook marks
as non-buying)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from leadloop.crm.records import Account, CustomerType, Person
from leadloop.playbook.compiled import CompiledPlaybook, CompiledProfile, compile_playbook
from leadloop.playbook.conditions import Subject
from leadloop.playbook.model import NonBuying, Playbook
from leadloop.playbook.patterns import compile_patterns
from leadloop.playbook.personas import TitleMatch
from leadloop.playbook.wording import number, signed
from leadloop.scoring.contributions import contributions, scaled, share
from leadloop.scoring.scorecard import Reason, ReasonKind
from leadloop.scoring.tiers import _r


@dataclass(frozen=True, slots=True)
class AccountFit:
    profile: CompiledProfile | None
    fit: float
    reasons: tuple[Reason, ...] = ()
    # the playbook's account signals this account shows (`account.signals`): account-intent lines
    signals: tuple[Reason, ...] = ()


class _Static(NamedTuple):
    """Everything about a person that does not depend on activities (one per person: a tuple is the
    cheapest to build)."""

    role: str
    seniority: str
    title_matched: bool
    contact_fit: float
    reasons: tuple[Reason, ...]
    intent_negatives: tuple[tuple[float, Reason], ...]
    disqualifier: Reason | None


def _label(field_name: str) -> str:
    return field_name.partition(".")[2].removeprefix("attributes.").replace("_", " ")


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _fit_lines(
    rules, subject: Subject, kind: ReasonKind, weight: float, cache: dict | None = None
) -> tuple[float, list[Reason]]:
    """Points and reason lines of fit rules, each contributing its points × `weight` (the blend
    weight of this fit) before any cap; lines are shared through `cache` by (rule, value)."""
    total, reasons = 0.0, []
    for compiled in rules:
        hit = compiled.evaluate(subject)
        if hit is None:
            continue
        total += hit.points
        if not hit.points:
            continue
        rule = compiled.rule
        key = (id(compiled), type(hit.value), hit.value, hit.points)
        reason = cache.get(key) if cache is not None else None
        if reason is None:
            band = f" ({hit.band.label})" if hit.band is not None and hit.band.label else ""
            text = f"{signed(hit.points)} {_label(rule.field)}: {_show(hit.value)}{band}"
            reason = Reason(
                kind, rule.id, _r(hit.points), text, why=rule.why, contribution=weight * hit.points
            )
            if cache is not None:
                cache[key] = reason
        reasons.append(reason)
    return total, reasons


def account_fit(playbook: Playbook, account: Account | None) -> AccountFit:
    """The best account fit over the profiles that apply (ties: the profile listed first)."""
    return _account_fit(compile_playbook(playbook), account)


def _account_fit(cp: CompiledPlaybook, account: Account | None, cache: dict | None = None) -> AccountFit:
    """`account_fit`; identical reason lines are shared through `cache` across accounts."""
    if account is None:
        return AccountFit(None, 0.0)
    subject = Subject(None, account)
    weight = cp.playbook.blend.account_fit
    best: AccountFit | None = None
    for profile in cp.profiles:
        if not profile.applies(subject):
            continue
        total, reasons = _fit_lines(profile.rules, subject, ReasonKind.FIT, weight, cache)
        cap = profile.profile.cap
        if total > cap or total < 0:  # the cap cuts the lines in proportion, zero is the floor
            counted = weight * max(0.0, min(total, cap))
            reasons = list(scaled(reasons, *share(*contributions(reasons), counted)))
        if total > cap:
            reasons.append(
                Reason(
                    ReasonKind.CAP,
                    profile.profile.id,
                    _r(cap - total),
                    f"{signed(cap - total)} capped at {number(cap)}: account fit points",
                )
            )
        fit = _r(max(0.0, min(total, cap)))
        if best is None or fit > best.fit:
            key = ("profile", profile.index, fit)
            header = cache.get(key) if cache is not None else None
            if header is None:
                header = Reason(
                    ReasonKind.FIT,
                    profile.profile.id,
                    0.0,
                    f"best profile: {profile.profile.name} (account fit {number(fit)})",
                    why=profile.profile.why,
                )
                if cache is not None:
                    cache[key] = header
            best = AccountFit(profile, fit, (header, *reasons))
    best = best or AccountFit(None, 0.0)
    signals = _account_signals(cp, subject, cache)
    return replace(best, signals=signals) if signals else best


def _account_signals(cp: CompiledPlaybook, subject: Subject, cache: dict | None) -> tuple[Reason, ...]:
    """The account-intent lines of the account signals `subject`'s account shows, shared through
    `cache` (one object per signal)."""
    lines = []
    for signal, test in cp.account_signals:
        if not test(subject):
            continue
        key = ("account signal", signal.id)
        line = cache.get(key) if cache is not None else None
        if line is None:
            says = signal.says or signal.id.replace("_", " ")
            line = Reason(ReasonKind.ACCOUNT, signal.id, _r(signal.points), f"{signed(signal.points)} {says}",
                          why=signal.why)
            if cache is not None:
                cache[key] = line
        lines.append(line)
    return tuple(lines)


_BY_CUSTOMER_TYPE = {
    CustomerType.DISTRIBUTOR: "distributor",
    CustomerType.PARTNER: "partner",
    CustomerType.COMPETITOR: "competitor",
}


class AccountTypes:
    """Which non-buying account type a person works at, under a playbook's `non_buying` section:
    distributor, partner or competitor by their account's customer type; university by the account's
    industry or their own academic email domain. Only the types the playbook lists count."""

    def __init__(self, non_buying: NonBuying | None) -> None:
        self.listed = {entry.type: entry for entry in non_buying.accounts} if non_buying else {}
        universities = non_buying.universities if non_buying else None
        self.university_industries = (
            {i.strip().casefold() for i in universities.industries} if universities else set()
        )
        domains = universities.email_domains if universities else []
        self.academic_domain = compile_patterns(domains) if domains else None

    def __call__(self, person: Person | None, account: Account | None) -> str | None:
        """The listed non-buying type of the person's account, or None (a buying account)."""
        if not self.listed:
            return None
        if account is not None:
            kind = _BY_CUSTOMER_TYPE.get(account.customer_type)
            if kind in self.listed:
                return kind
        if "university" in self.listed and self._is_university(person, account):
            return "university"
        return None

    def _is_university(self, person: Person | None, account: Account | None) -> bool:
        industry = account.industry if account is not None else None
        if industry and industry.casefold() in self.university_industries:
            return True
        domain = person.email_domain if person is not None else None
        return bool(domain and self.academic_domain is not None and self.academic_domain.search(domain))


class _PersonFit:
    """Contact fit, field negatives and disqualifiers per person; shares identical reason lines."""

    def __init__(self, cp: CompiledPlaybook) -> None:
        self.cp = cp
        blend = cp.playbook.blend
        self.weight = blend.contact_fit
        self.blend = {"fit": blend.contact_fit, "intent": blend.contact_intent}  # by negative target
        self.lines: dict = {}
        self.persona: dict[str | None, tuple[TitleMatch, tuple[Reason, ...], float]] = {}
        self.account_types = AccountTypes(cp.playbook.non_buying)

    def _persona(self, title: str | None) -> tuple[TitleMatch, tuple[Reason, ...], float]:
        found = self.persona.get(title)
        if found is not None:
            return found
        titles = self.cp.titles
        match = titles(title)
        reasons = []
        role_weight = titles.role_weight.get(match.role, 0.0)
        level_weight = titles.level_weight.get(match.seniority, 0.0)
        shown = f" ({title})" if title else ""
        if role_weight:
            reasons.append(
                Reason(
                    ReasonKind.PERSONA,
                    f"role:{match.role}",
                    _r(role_weight),
                    f"{signed(role_weight)} role: {match.role.replace('_', ' ')}{shown}",
                    why=titles.role_why.get(match.role),
                    contribution=self.weight * role_weight,
                )
            )
        if level_weight:
            reasons.append(
                Reason(
                    ReasonKind.PERSONA,
                    f"seniority:{match.seniority}",
                    _r(level_weight),
                    f"{signed(level_weight)} seniority: {match.seniority.replace('_', ' ')}",
                    contribution=self.weight * level_weight,
                )
            )
        found = self.persona[title] = (match, tuple(reasons), role_weight + level_weight)
        return found

    def __call__(self, person: Person, account: Account | None) -> _Static:
        cp = self.cp
        weight = self.weight
        match, persona_reasons, persona_points = self._persona(person.title)
        subject = Subject(person, account, match.role, match.seniority)
        total, reasons = _fit_lines(cp.contact_rules, subject, ReasonKind.FIT, weight, self.lines)
        reasons[:0] = persona_reasons
        total += persona_points
        cap = cp.playbook.contact_fit.cap
        if total > cap:
            reasons = list(scaled(reasons, *share(*contributions(reasons), weight * cap)))
            reasons.append(
                Reason(
                    ReasonKind.CAP,
                    "contact_fit",
                    _r(cap - total),
                    f"{signed(cap - total)} capped at {number(cap)}: contact fit points",
                )
            )
            total = cap
        intent_negatives = []
        for negative, test in cp.field_negatives:
            if test(subject):
                reason = self.lines.get(negative.id)
                if reason is None:
                    text = f"{signed(negative.points)} {negative.says or negative.id.replace('_', ' ')}"
                    reason = self.lines[negative.id] = Reason(
                        ReasonKind.NEGATIVE,
                        negative.id,
                        _r(negative.points),
                        text,
                        why=negative.why,
                        contribution=self.blend[negative.target] * negative.points,
                    )
                if negative.target == "fit":
                    total += negative.points
                    reasons.append(reason)
                else:
                    intent_negatives.append((negative.points, reason))
        if total < 0:  # contact fit stops at zero: the negatives count only down to it
            reasons = list(scaled(reasons, *share(*contributions(reasons), 0.0)))
        return _Static(
            match.role,
            match.seniority,
            match.matched,
            _r(max(0.0, total)),
            tuple(reasons),
            tuple(intent_negatives),
            self._disqualifier(subject, person, account),
        )

    def _disqualifier(self, subject: Subject, person: Person, account: Account | None) -> Reason | None:
        """The first disqualifier rule that holds, else the non-buying type of their account, as the
        line that heads their reasons (the engine adds what it takes off the score)."""
        for rule, test in self.cp.disqualifiers:
            if test(subject):
                key = ("disqualifier", rule.id)
                line = self.lines.get(key)
                if line is None:
                    line = self.lines[key] = Reason(
                        ReasonKind.DISQUALIFIER,
                        rule.id,
                        0.0,
                        f"disqualified: {rule.says or rule.id.replace('_', ' ')}",
                        why=rule.why,
                    )
                return line
        kind = self.account_types(person, account)
        if kind is None:
            return None
        key = ("non_buying", kind)
        line = self.lines.get(key)
        if line is None:
            entry = self.account_types.listed[kind]
            line = self.lines[key] = Reason(
                ReasonKind.DISQUALIFIER, f"non_buying:{kind}", 0.0, f"disqualified: {entry.sentence}",
                why=entry.why,
            )
        return line


