"""Reviewable documentation of a playbook: one Markdown table row per signal.

Each row says what the signal means (its `why`), its points, cap, decay and routing consequence, so
sales and revenue operations can review the model without reading YAML.
"""

from __future__ import annotations

from leadloop.playbook.model import Condition, FitRule, Playbook
from leadloop.playbook.wording import days, number, signed


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _row(*cells: object) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _when(conditions: list[Condition]) -> str:
    return " and ".join(c.describe() for c in conditions) or "always"


def _routing_action(pb: Playbook, tier: str) -> str:
    """`route to owner (SLA 1bd)` from the routing section when it names the tier, else ''."""
    if pb.routing is None:
        return ""
    action_for = getattr(pb.routing, "action_for", None)
    action = action_for(tier) if callable(action_for) else None
    if action is None:
        return ""
    what = getattr(action, "do", None)
    sla = getattr(action, "sla", None)
    text = str(getattr(what, "value", what) or "").replace("_", " ")
    return text + (f" (SLA {sla})" if sla else "")


def _tier_consequence(pb: Playbook, tier: str) -> str:
    action = _routing_action(pb, tier)
    return f"{tier}" + (f" → {action}" if action else "")


def _fit_points(rule: FitRule) -> str:
    if rule.bands is not None:
        return ", ".join(f"{b.label or f'{b.min}–{b.max}'}: {signed(b.points)}" for b in rule.bands)
    return signed(rule.points or 0)


def playbook_markdown(pb: Playbook) -> str:
    """The playbook as Markdown: a table of every signal, then tiers, blend and account roll-up."""
    raises = f"raises the score toward {_tier_consequence(pb, pb.top_tier)}"
    lines = [
        f"# {pb.name}",
        "",
        f"Model version `{pb.model_version}`." + (f" {pb.description.strip()}" if pb.description else ""),
        "",
        "## Signals",
        "",
        _row("Signal", "Kind", "What it means", "Points", "Cap", "Decay", "Routing consequence"),
        _row(*["---"] * 7),
    ]
    lines += _fit_rows(pb, raises)
    lines += _intent_rows(pb, raises)
    lines += _override_rows(pb)
    lines += _tier_rows(pb)
    lines += _calibration_rows(pb)
    lines += _blend_and_rollup(pb)
    lines.append("")
    return "\n".join(lines)


def _fit_rows(pb: Playbook, raises: str) -> list[str]:
    """Account fit per profile, personas (role and seniority) and contact fit rules."""
    rows = []
    for profile in pb.profiles:
        scope = f"profile {profile.name} (when {_when(profile.applies_when)})"
        for rule in profile.fit:
            rows.append(_row(f"`{rule.id}`: {rule.describe() if rule.bands is None else rule.field}",
                             f"account fit, {scope}", rule.why, _fit_points(rule),
                             f"{number(profile.cap)} per profile", "none (static field)", raises))
    for persona in pb.personas.roles:
        rows.append(_row(f"role `{persona.role}`", "contact fit (persona)", persona.why,
                         signed(persona.weight), number(pb.contact_fit.cap), "none", raises))
    for level in pb.personas.seniority:
        rows.append(_row(f"seniority `{level.level}`", "contact fit (persona)", "seniority from the title",
                         signed(level.weight), number(pb.contact_fit.cap), "none", raises))
    for rule in pb.contact_fit.rules:
        rows.append(_row(f"`{rule.id}`: {rule.describe() if rule.bands is None else rule.field}",
                         "contact fit", rule.why, _fit_points(rule), number(pb.contact_fit.cap),
                         "none (static field)", raises))
    return rows


def _intent_rows(pb: Playbook, raises: str) -> list[str]:
    """Intent rules with their caps and decay, depth rules and the relevance bonus."""
    rows = []
    groups = {g.id: g for g in pb.intent.groups}
    for rule in pb.intent.rules:
        group = groups.get(rule.group or "")
        what = ", ".join(k.value for k in rule.kinds)
        if rule.asset_types:
            what += f" of {', '.join(rule.asset_types)}"
        caps = []
        if rule.frequency:
            caps.append(f"{rule.frequency.max_count} per {days(rule.frequency.window_days)}")
        if rule.cap is not None:
            caps.append(f"{number(rule.cap)} for the rule")
        if group is not None and group.cap is not None:
            caps.append(f"{number(group.cap)} for {group.name}")
        half_life = (
            rule.half_life_days
            or (group.half_life_days if group else None)
            or pb.intent.default_half_life_days
        )
        decay = f"half-life {days(half_life)}" if half_life else "none"
        rows.append(_row(f"`{rule.id}`: {what}", "contact intent", rule.why, signed(rule.points),
                         "; ".join(caps) or "—", decay, raises))
    for rule in pb.intent.depth:
        threshold = (
            f"≥ {rule.min_visits} visits"
            if rule.min_visits is not None
            else f"≥ {number((rule.min_seconds or 0) / 60)} minutes"
        )
        group = groups.get(rule.group or "")
        rows.append(_row(f"`{rule.id}`: {threshold} in {days(rule.window_days)}", "contact intent (depth)",
                         rule.why, signed(rule.points),
                         f"{number(group.cap)} for {group.name}" if group and group.cap is not None else "—",
                         f"window {days(rule.window_days)}", raises))
    if pb.intent.relevance is not None:
        rows.append(_row("relevance bonus", "contact intent", pb.intent.relevance.why,
                         f"+{number(pb.intent.relevance.bonus_percent)}% on assets of the profile's segments",
                         "as the rule", "as the rule", raises))
    return rows


def _override_rows(pb: Playbook) -> list[str]:
    """Negatives, disqualifiers and escalations: what lowers a score or forces a tier."""
    rows = []
    for negative in pb.negatives:
        trigger = _when(negative.when) if negative.when else ", ".join(k.value for k in negative.kinds)
        if negative.within_days:
            trigger += f" within {days(negative.within_days)}"
        rows.append(_row(f"`{negative.id}`: {trigger}", f"negative ({negative.target})", negative.why,
                         signed(negative.points), "—", "none", f"lowers {negative.target}"))
    for rule in pb.disqualifiers:
        rows.append(_row(f"`{rule.id}`: {_when(rule.when)}", "disqualifier", rule.why, _held(pb), "—", "—",
                         f"forces {_tier_consequence(pb, pb.lowest_tier)}; never {pb.top_tier}"))
    if pb.non_buying is not None:
        for entry in pb.non_buying.accounts:
            rows.append(_row(f"non-buying `{entry.type}`: {_non_buying_when(pb, entry.type)}",
                             "disqualifier (non-buying account)",
                             f"{entry.why} Reps read: “{entry.sentence}”.",
                             _held(pb), "—", "—",
                             f"forces {_tier_consequence(pb, pb.lowest_tier)}; never {pb.top_tier}"))
    for rule in pb.escalations:
        tier = rule.tier or pb.top_tier
        what = ", ".join(k.value for k in rule.kinds) + f" within {days(rule.within_days)}"
        rows.append(_row(f"`{rule.id}`: {what}, fit ≥ {number(rule.min_fit)}", "escalation", rule.why,
                         "—", "—", "—", f"forces {_tier_consequence(pb, tier)}, escalation SLA {rule.sla}"))
    return rows


def _held(pb: Playbook) -> str:
    """What a disqualifier does to the score: holds it at the bottom of the tier it forces."""
    lowest = next(t for t in pb.tiers if t.name == pb.lowest_tier)
    return f"score at most {number(lowest.min_score or 0)}"


def _non_buying_when(pb: Playbook, kind: str) -> str:
    """How leadloop tells a non-buying account type, in the words of a condition."""
    if kind != "university":
        return f"account.customer_type is {kind}"
    universities = pb.non_buying.universities if pb.non_buying is not None else None
    if universities is None:
        return "never"
    tests = []
    if universities.industries:
        tests.append(f"account.industry is one of {', '.join(universities.industries)}")
    if universities.email_domains:
        domains = " or ".join(f"/{p}/" for p in universities.email_domains)
        tests.append(f"person.email_domain matches {domains}")
    return " or ".join(tests) or "never"


def _tier_rows(pb: Playbook) -> list[str]:
    def show(value: float | None) -> str:
        return number(value) if value is not None else "—"

    rows = ["", "## Tiers", "", _row("Tier", "Score ≥", "Fit ≥", "Intent ≥", "Meaning", "Routing"),
            _row(*["---"] * 6)]
    for tier in pb.tiers:
        rows.append(_row(tier.name, show(tier.min_score), show(tier.min_fit), show(tier.min_intent),
                         tier.why or "", _routing_action(pb, tier.name) or "—"))
    return rows


def _calibration_rows(pb: Playbook) -> list[str]:
    """The likelihood reps read next to the score (CRM field `likelihood`), bin by bin."""
    calibration = pb.calibration
    if calibration is None:
        return []
    rows = ["", "## Likelihood", "",
            f"What share of people at a score had an opportunity within {days(calibration.horizon_days)}, "
            f"learned from outcomes on {calibration.learned.isoformat()}. {calibration.why.strip()}", "",
            _row("Score ≥", "Likelihood", "People", "Converted"), _row(*["---"] * 4)]
    for b in calibration.bins:
        rows.append(_row(number(b.min_score), f"{number(b.rate * 100)}%", b.people, b.converted))
    return rows


def _blend_and_rollup(pb: Playbook) -> list[str]:
    blend, committee = pb.blend, pb.account.committee
    rows = [
        "",
        "## Blend",
        "",
        f"Lead score = min({number(blend.static_cap)}, {blend.contact_fit:g} × contact fit + "
        f"{blend.account_fit:g} × account fit) + {blend.contact_intent:g} × contact intent + "
        f"{blend.account_intent:g} × account intent. {blend.why.strip()}",
        "",
        "## Account roll-up",
        "",
        "Account intent: the most engaged person counts fully, "
        f"each next one × {pb.account.intent.decay_factor:g} "
        f"(at most {pb.account.intent.max_people} people), capped at {number(pb.account.intent.cap)}.",
    ]
    if committee is not None:
        rows.append(
            f"Buying committee: {signed(committee.points_per_role)} per distinct role engaged beyond the "
            f"first among {', '.join(committee.roles)} (intent ≥ {number(committee.min_intent)}), "
            f"capped at {number(committee.cap)}. {committee.why}"
        )
    for signal in pb.account.signals:
        rows.append(f"Account signal `{signal.id}` ({_when(signal.when)}): {signed(signal.points)} account "
                    f"intent before anyone engages. {signal.why}")
    rule = pb.routing.committee if pb.routing is not None else None
    if rule is not None:
        counted = rule.roles or (committee.roles if committee is not None else ())
        intent = f" (intent ≥ {number(rule.min_intent)})" if rule.min_intent else ""
        rows += [
            "",
            "## Buying-committee task",
            "",
            f"When an account is {' or '.join(rule.account_tiers)} and at least {rule.min_roles} roles among "
            f"{', '.join(counted)} have a member who engaged in the last {days(rule.window_days)}{intent}, "
            "and nobody at the account is routed individually, the account owner gets one account task "
            f"(SLA {rule.sla or '1bd'}) naming the members, their roles and what each did. It is raised "
            f"again only when a new role joins or the account tier rises. Next step: {rule.next_step} "
            f"{rule.why}",
        ]
    return rows
