"""Data quality: what in the CRM data keeps the playbook from scoring well.

Pure checks over the records as each CRM holds them (before identity merges them), returning
findings with counts and a few examples. The daily flow stores them and shows the trend.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadloop.crm.records import Account, Activity, ActivityKind, Person
from leadloop.scoring.machine_email import REASONS, filter_machine_email

_EMAIL_KINDS = frozenset({ActivityKind.EMAIL_OPEN, ActivityKind.EMAIL_CLICK})
STALE_STATUSES = frozenset({
    "working - contacted", "qualified", "marketingqualifiedlead", "salesqualifiedlead", "sql", "mql",
    "in_progress", "open_deal", "connected",
})


@dataclass(frozen=True, slots=True)
class Finding:
    """One class of problem. `examples` hold record ids and masked emails only."""

    check: str
    title: str
    count: int
    total: int
    examples: tuple[str, ...] = ()
    severity: str = "warning"  # "info" | "warning" | "error"
    fix: str = ""

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class Trend:
    check: str
    count: int
    previous: int | None

    @property
    def change(self) -> int | None:
        return None if self.previous is None else self.count - self.previous


@dataclass(slots=True)
class QualityInputs:
    people: Sequence[Person]
    accounts: Sequence[Account]
    activities: Iterable[Activity]  # read once, in any order: a store can stream them in pieces
    fields_used: dict[str, Sequence[str]]  # {"person": [...], "account": [...]} canonical field names
    classify_title: Callable[[str], bool]  # True when the persona taxonomy places the title
    classify_activity: Callable[[Activity], bool]  # True when some asset or rule understands it
    quarantined: Sequence[tuple[str, str]] = ()  # (record id, reason)
    now: datetime | None = None
    stale_after: timedelta = timedelta(days=90)
    examples: int = 5
    extra: list[Finding] = field(default_factory=list)


def mask_email(email: str | None) -> str:
    """`jane.doe@acme.com` → `j***@acme.com`: enough to recognise, not enough to harvest."""
    if not email or "@" not in email:
        return "(no email)"
    local, domain = email.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"


def crm_of(record_id: str) -> str:
    """`sf-lead:00Q…` → `salesforce`; `hs-contact:51` → `hubspot`; anything else → `canonical`."""
    if record_id.startswith("sf-"):
        return "salesforce"
    if record_id.startswith("hs-"):
        return "hubspot"
    return "canonical"


def _value(record: object, name: str) -> object:
    if hasattr(record, name):
        return getattr(record, name)
    return getattr(record, "attributes", {}).get(name)


def completeness(kind: str, records: Sequence[object], fields: Iterable[str], examples: int) -> list[Finding]:
    findings = []
    by_crm: dict[str, list[object]] = defaultdict(list)
    for record in records:
        by_crm[crm_of(record.id)].append(record)  # type: ignore[attr-defined]
    for crm, group in sorted(by_crm.items()):
        for name in sorted(set(fields)):
            missing = [r for r in group if _value(r, name) in (None, "", {})]
            if missing:
                findings.append(Finding(
                    check=f"completeness.{crm}.{kind}.{name}",
                    title=f"{kind} records in {crm} without {name}",
                    count=len(missing), total=len(group),
                    examples=tuple(r.id for r in missing[:examples]),  # type: ignore[attr-defined]
                    severity="info" if len(missing) < 0.2 * len(group) else "warning",
                    fix=f"fill {name} in {crm} or map it from another field in the playbook's mapping",
                ))
    return findings


def assess_quality(inputs: QualityInputs) -> list[Finding]:
    """Every finding, in a stable order."""
    n = inputs.examples
    people, accounts = list(inputs.people), list(inputs.accounts)
    findings: list[Finding] = []
    findings += completeness("person", people, inputs.fields_used.get("person", ()), n)
    findings += completeness("account", accounts, inputs.fields_used.get("account", ()), n)
    findings += _duplicates(people, accounts, n)
    last_activity, unmatched, activity_count, email_events = _read_activities_once(inputs)
    if inputs.now is not None:
        findings.append(_stale_status(inputs, people, last_activity, inputs.now))
    findings += _unplaced(inputs, people, unmatched, activity_count)
    findings += _quarantined(inputs, people, accounts, activity_count)
    findings += _leads_and_sources(people, n)
    findings.append(_machine_email(email_events, n))
    findings.extend(inputs.extra)
    return findings


def _duplicates(people: list[Person], accounts: list[Account], n: int) -> list[Finding]:
    """People sharing an email within one CRM, people in both CRMs, accounts sharing a domain."""
    by_email: dict[tuple[str, str], list[Person]] = defaultdict(list)
    for person in people:
        if person.email:
            by_email[(crm_of(person.id), person.email)].append(person)
    dupes = [group for group in by_email.values() if len(group) > 1]
    across = {email for (crm, email) in by_email if crm == "salesforce"} & {
        email for (crm, email) in by_email if crm == "hubspot"}
    by_domain: dict[tuple[str, str], list[Account]] = defaultdict(list)
    for account in accounts:
        if account.domain:
            by_domain[(crm_of(account.id), account.domain)].append(account)
    account_dupes = [g for g in by_domain.values() if len(g) > 1]
    return [
        Finding(
            "duplicates.people", "people sharing one email within one CRM", sum(len(g) for g in dupes),
            len(people), tuple(f"{mask_email(g[0].email)} ×{len(g)}" for g in dupes[:n]), "warning",
            "merge the duplicates in the CRM; leadloop scores them as one person meanwhile",
        ),
        Finding(
            "duplicates.people_across_crms", "people present in both CRMs (linked by email)", len(across),
            len(people), tuple(mask_email(e) for e in sorted(across)[:n]), "info",
        ),
        Finding(
            "duplicates.accounts", "accounts sharing one domain within one CRM",
            sum(len(g) for g in account_dupes), len(accounts),
            tuple(f"{g[0].domain} ×{len(g)}" for g in account_dupes[:n]), "warning",
            "merge the accounts, or mark one as a subsidiary with its own domain",
        ),
    ]


def _read_activities_once(inputs: QualityInputs
                          ) -> tuple[dict[str, datetime], Counter[str], int, list[Activity]]:
    """One pass over the activities (they may be streamed): each person's latest activity, what no
    asset rule understands (by URL, form, campaign or kind), how many there were, and the email opens
    and clicks (kept for the machine-activity check, which needs each person's together)."""
    last_activity: dict[str, datetime] = {}
    unmatched: Counter[str] = Counter()
    activity_count = 0
    email_events: list[Activity] = []
    for activity in inputs.activities:
        activity_count += 1
        if activity.kind in _EMAIL_KINDS:
            email_events.append(activity)
        seen = last_activity.get(activity.person_id)
        if seen is None or activity.occurred_at > seen:
            last_activity[activity.person_id] = activity.occurred_at
        if not inputs.classify_activity(activity):
            a = activity
            unmatched[a.url or a.form_name or a.campaign_name or a.kind.value] += 1
    return last_activity, unmatched, activity_count, email_events


def _machine_email(email_events: list[Activity], n: int) -> Finding:
    """Email opens and clicks made by link scanners and privacy proxies (`scoring.machine_email`),
    which scoring leaves out: how many of all email events, each reason with its count, and a few
    people's bursts (record ids, no addresses)."""
    _, dropped = filter_machine_email(email_events, examples=n)
    reasons = tuple(f"{reason} ×{count}: {REASONS[reason]}" for reason, count in dropped.by_reason.items())
    return Finding(
        "machine_email", "email opens and clicks made by link scanners or privacy proxies, not scored",
        dropped.total, len(email_events), reasons + dropped.examples, "info",
        "nothing to fix in the CRM: scoring leaves them out; a sudden rise means a recipient's mail "
        "gateway started scanning links",
    )


def _stale_status(inputs: QualityInputs, people: list[Person], last_activity: dict[str, datetime],
                  now: datetime) -> Finding:
    cutoff = now - inputs.stale_after
    stale = [p for p in people
             if (p.lifecycle_status or "").lower() in STALE_STATUSES
             and last_activity.get(p.id, datetime.min.replace(tzinfo=cutoff.tzinfo)) < cutoff]
    return Finding(
        "stale_status", f"people marked qualified with no activity for {inputs.stale_after.days} days",
        len(stale), len(people), tuple(p.id for p in stale[:inputs.examples]), "warning",
        "recycle them to nurture or close them out",
    )


def _unplaced(inputs: QualityInputs, people: list[Person], unmatched: Counter[str],
              activity_count: int) -> list[Finding]:
    """Titles the persona taxonomy cannot place, and activities no asset rule understands."""
    n = inputs.examples
    titles = Counter(p.title for p in people if p.title and not inputs.classify_title(p.title))
    # ties by name, so the examples do not depend on the order the activities came in
    commonest = sorted(unmatched.items(), key=lambda kc: (-kc[1], kc[0]))[:n]
    return [
        Finding(
            "unknown_titles", "titles the persona taxonomy cannot place", sum(titles.values()), len(people),
            tuple(f"{t} ×{c}" for t, c in titles.most_common(n)), "warning",
            "add patterns for them under personas in the playbook",
        ),
        Finding(
            "unmatched_activities", "activities no asset rule understands", sum(unmatched.values()),
            activity_count, tuple(f"{k} ×{c}" for k, c in commonest), "info",
            "add the URL, form or campaign to the asset catalog if it signals intent",
        ),
    ]


def _quarantined(inputs: QualityInputs, people: list[Person], accounts: list[Account],
                 activity_count: int) -> list[Finding]:
    """Records quarantined for an invalid email, and for any bad value."""
    n = inputs.examples
    invalid = [(rid, why) for rid, why in inputs.quarantined if "email" in why.lower()]
    return [
        Finding(
            "invalid_emails", "records quarantined for an invalid email", len(invalid), len(people),
            tuple(rid for rid, _ in invalid[:n]), "error", "correct the email in the CRM",
        ),
        Finding(
            "quarantined", "records quarantined for bad values", len(inputs.quarantined),
            len(people) + len(accounts) + activity_count,
            tuple(f"{rid}: {why[:80]}" for rid, why in inputs.quarantined[:n]), "error",
            "fix the values in the CRM; the next sync picks them up",
        ),
    ]


def _leads_and_sources(people: list[Person], n: int) -> list[Finding]:
    """Leads matched to no account, and people without source tracking."""
    leads = [p for p in people if p.id.startswith("sf-lead:") or p.id.startswith("hs-contact:")]
    orphans = [p for p in leads if not p.account_id]
    no_source = [p for p in people if not p.lead_source]
    return [
        Finding(
            "unmatched_leads", "leads not matched to any account", len(orphans), len(leads),
            tuple(f"{p.id} ({p.email_domain or 'no domain'})" for p in orphans[:n]), "info",
            "create the account, or add the company's domain to it",
        ),
        Finding(
            "missing_source", "people without source tracking", len(no_source), len(people),
            tuple(p.id for p in no_source[:n]), "info", "set the lead source on every inbound form",
        ),
    ]


def trends(current: Sequence[Finding], previous: dict[str, int]) -> list[Trend]:
    """Each finding's count against the previous run's count for the same check."""
    return [Trend(f.check, f.count, previous.get(f.check)) for f in current]


def fields_used(model: object) -> dict[str, list[str]]:
    """Every record field a playbook's conditions read, by record kind: `{"account": ["industry", …],
    "person": ["title", …]}` (from `account.industry`-style field paths anywhere in the playbook)."""
    from pydantic import BaseModel

    found: dict[str, set[str]] = defaultdict(set)

    def walk(value: object) -> None:
        if isinstance(value, BaseModel):
            field_path = getattr(value, "field", None)
            if isinstance(field_path, str) and "." in field_path:
                kind, name = field_path.split(".", 1)
                found[kind].add(name)
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(model)
    records = {"person": Person, "account": Account}
    return {kind: sorted(n for n in names if n in records[kind].__dataclass_fields__)
            for kind, names in sorted(found.items()) if kind in records}
