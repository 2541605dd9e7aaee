"""Routing decisions: tier → action, owner, suppression, SLA, handoff note and nurture, per person.

`route_person` decides for one person; `route_all` routes a batch in a fixed order (score
descending, then person id) so that round robin is fair and the same inputs always give the same
decisions. Neither reads a clock or mutates its inputs: the assignment state comes in and an
updated copy goes out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from operator import attrgetter

from leadloop.crm.changes import Priority
from leadloop.crm.records import Account, Activity, Asset, CustomerType, Opportunity, Person
from leadloop.playbook.routing import (
    ActionKind,
    NurtureTrack,
    PartnerAction,
    PartnerRule,
    Rep,
    RoutingSection,
    Sla,
    sla_from_label,
)
from leadloop.routing.calendar import BusinessCalendar, zone
from leadloop.routing.committee import (
    committee_key,
    committee_note,
    committee_subject,
    committee_trigger,
    engaged_members,
    engaged_roles,
    role_names,
)
from leadloop.routing.model import (
    AccountDecision,
    Action,
    Decision,
    OpenTask,
    PlannedTask,
    RoutingResult,
    Suppression,
    SuppressionKind,
    SuppressionReport,
    TaskKind,
)
from leadloop.routing.note import Committee, handoff_note
from leadloop.routing.nurture import AssetCatalog, nurture_track
from leadloop.routing.owners import OwnerDirectory, OwnerPick, OwnerRules
from leadloop.routing.state import AssignmentState
from leadloop.scoring.scorecard import AccountScore, ScoreCard

_PRIORITY = {"low": Priority.LOW, "normal": Priority.NORMAL, "high": Priority.HIGH}
_COMMITTEE_DEFAULT_SLA = Sla(business_days=1, why="default when the committee rule names no SLA")


@dataclass(slots=True)
class PersonContext:
    """Everything routing may look at for one person. `colleagues` are the account's people with
    their scorecards (the person may be among them); `open_tasks` are leadloop's open tasks.
    Routing only reads it."""

    card: ScoreCard
    person: Person
    previous: ScoreCard | None = None
    account: Account | None = None
    opportunities: Sequence[Opportunity] = ()
    colleagues: Sequence[tuple[Person, ScoreCard | None]] = ()
    activities: Sequence[Activity] = ()
    open_tasks: Sequence[OpenTask] = ()


@lru_cache(maxsize=64)
def _iso_week(now: datetime) -> str:
    year, week, _ = now.astimezone(zone("UTC")).isocalendar()
    return f"{year}-W{week:02d}"


def task_key(person_id: str, kind: TaskKind, now: datetime) -> str:
    """Deterministic per (person, reason, ISO week): reruns in the same week upsert the same task."""
    digest = hashlib.sha1(f"{person_id}|{kind.value}|{_iso_week(now)}".encode()).hexdigest()
    return f"ll-{digest[:24]}"


def open_opportunity(opportunities: Iterable[Opportunity], person_id: str) -> Opportunity | None:
    """The open opportunity a new lead's activity belongs to: one naming the person as a contact
    first, then the most recently created, then the smallest id."""
    open_ones = [o for o in opportunities if not o.is_closed]
    if not open_ones:
        return None
    return min(open_ones, key=lambda o: (person_id not in o.contact_ids,
                                         -(o.created_at.timestamp() if o.created_at else 0.0), o.id))


class Router:
    """A routing section prepared once (indexes, calendar, catalog) to route many people."""

    def __init__(self, section: RoutingSection, *, assets: Iterable[Asset] = (),
                 directory: OwnerDirectory | None = None,
                 profile_segments: Mapping[str, Sequence[str]] | None = None,
                 committee_roles: Sequence[str] = ()) -> None:
        self.section = section
        # the roles a buying committee counts: the committee rule's own, else the account roll-up's
        rule = section.committee
        self.committee_roles = frozenset((rule.roles or committee_roles) if rule is not None else ())
        self.profile_segments = {k: v[0] for k, v in (profile_segments or {}).items() if v}
        self.owners = OwnerRules(section, directory)
        self._closures = frozenset(h.date for h in section.holidays.closures)
        self._calendars: dict[str | None, BusinessCalendar] = {}
        self._holiday_calendars = {owner.email if isinstance(owner, Rep) else owner.id:
                                   section.holidays.calendar_for(owner.time_zone, owner.holiday_calendar)
                                   for owner in (*section.reps, *section.queues)}
        self.catalog = AssetCatalog(assets, section.stage_order, section.nurture.asset_types)
        self.guidance = {k.lower(): v for k, v in section.stages.items()}
        self.actions = {a.tier: a for a in section.actions}
        self._tracks: dict[tuple[str | None, str | None, str | None], NurtureTrack | None] = {}
        self._dues: dict[tuple[str, str, str | None, datetime], datetime] = {}
        self._texts: dict[object, tuple[str, ...]] = {}  # sentences many decisions of a batch share
        self._evaluating = frozenset(s.lower() for s in section.suppression.customer_evaluation.stages)

    def calendar_of(self, owner: str) -> tuple[str | None, BusinessCalendar]:
        """The owner's public-holiday calendar (None: closures only) and their business calendar."""
        public = self._holiday_calendars.get(owner)
        if owner not in self._holiday_calendars:
            public = self.section.holidays.calendar_for(self.owners.time_zone(owner))
        calendar = self._calendars.get(public)
        if calendar is None:
            calendar = self._calendars[public] = BusinessCalendar(self.section.business_hours, self._closures,
                                                                  public)
        return public, calendar

    def _segment(self, card: ScoreCard, account: Account | None) -> str | None:
        """The application segment content is chosen by: the scoring profile's, else the account's."""
        segment = self.profile_segments.get(card.profile) if card.profile else None
        return segment or (account.segment if account else None)

    def _iso(self, now: datetime) -> str:
        text = self._texts.get(now)
        if text is None:
            text = self._texts[now] = (now.isoformat(),)
        return text[0]

    def _kind(self, card: ScoreCard | None) -> ActionKind:
        action = self.actions.get(card.tier) if card is not None else None
        return action.do if action is not None else ActionKind.NONE

    def decide(self, ctx: PersonContext, state: AssignmentState, now: datetime) -> Decision:
        """Route one person, updating `state` in place (callers pass their own copy)."""
        card, person = ctx.card, ctx.person
        kind = self._kind(card)
        was_nurtured = ctx.previous is not None and self._kind(ctx.previous) is ActionKind.NURTURE
        if card.disqualified:
            why = Suppression(SuppressionKind.DISQUALIFIED, f"disqualified: {card.disqualified}")
            return Decision(person.id, card.tier, Action.NONE, clear_nurture_track=was_nurtured,
                            suppressions=(why,), reasons=("no action for a disqualified person",))
        partner = self._partner_rule(person)
        if partner is not None:
            return self._partner(ctx, partner, kind, state, now, was_nurtured)
        if kind is ActionKind.ASSIGN:
            return self._assign(ctx, state, now, was_nurtured)
        if kind is ActionKind.NURTURE:
            return self._nurture(ctx)
        return self._no_action(card, was_nurtured)

    def _no_action(self, card: ScoreCard, was_nurtured: bool) -> Decision:
        reasons = self._texts.get(card.tier)
        if reasons is None:
            action = self.actions.get(card.tier)
            why = action.why if action else f"no action configured for tier {card.tier!r}"
            reasons = self._texts[card.tier] = (f"{card.tier}: {why}",)
        return Decision(card.person_id, card.tier, Action.NONE, clear_nurture_track=was_nurtured,
                        reasons=reasons)

    def quiet(self, card: ScoreCard, person: Person, previous: ScoreCard | None) -> Decision | None:
        """The decision for a person whose tier asks for nothing and who needs no suppression
        (most people, most runs), without building their context; None for everyone else."""
        if (self._kind(card) is not ActionKind.NONE or card.disqualified or person.partner_owned
                or person.distributor_registered):
            return None
        return self._no_action(card, previous is not None and self._kind(previous) is ActionKind.NURTURE)

    # --- partners -------------------------------------------------------------------------------

    def _partner_rule(self, person: Person) -> tuple[SuppressionKind, PartnerRule] | None:
        rules = self.section.suppression
        if person.partner_owned:
            return SuppressionKind.PARTNER_OWNED, rules.partner_owned
        if person.distributor_registered:
            return SuppressionKind.DISTRIBUTOR_REGISTERED, rules.distributor_registered
        return None

    def _partner(self, ctx: PersonContext, partner: tuple[SuppressionKind, PartnerRule],
                 kind: ActionKind, state: AssignmentState, now: datetime, was_nurtured: bool) -> Decision:
        code, rule = partner
        label = code.value.replace("_", " ")
        if kind is not ActionKind.ASSIGN or rule.action is PartnerAction.EXCLUDE:
            why = Suppression(code, f"{label}: excluded from leadloop outreach ({rule.why})")
            return Decision(ctx.person.id, ctx.card.tier, Action.EXCLUDED, clear_nurture_track=was_nurtured,
                            suppressions=(why,), reasons=(why.text,))
        notes: list[str] = []
        manager = self.section.owner_key(rule.partner_manager or "")
        pick = self.owners.available_or_fallback(manager, "partner manager", now, notes)
        why = Suppression(code, f"{label}: routed to the partner manager, not to sales ({rule.why})")
        return self._with_task(ctx, TaskKind.PARTNER, pick, [why], now, notes, was_nurtured)

    # --- sales-ready ----------------------------------------------------------------------------

    def _assign(self, ctx: PersonContext, state: AssignmentState, now: datetime, was_nurtured: bool,
                ) -> Decision:
        card, person, account = ctx.card, ctx.person, ctx.account
        notes: list[str] = []
        suppressions: list[Suppression] = []
        headline = None
        evaluation = self.section.suppression.customer_evaluation
        opportunity = open_opportunity(ctx.opportunities, person.id)
        in_evaluation = (card.stage or "").lower() in self._evaluating or card.escalation is not None
        if account is not None and account.customer_type is CustomerType.CUSTOMER and in_evaluation:
            team = self.owners.resolve(account.owner_id) or (
                self.section.owner_key(evaluation.fallback) if evaluation.fallback else None)
            pick = self.owners.available_or_fallback(team, "account team", now, notes)
            task_kind = TaskKind.ACCOUNT_TEAM
            suppressions.append(Suppression(
                SuppressionKind.CUSTOMER_EVALUATION,
                f"active customer in an evaluation: account team instead of prospecting ({evaluation.why})"))
        elif opportunity is not None:
            holder = self.owners.resolve(opportunity.owner_id) or self.owners.resolve(
                account.owner_id if account else None)
            pick = self.owners.available_or_fallback(holder, "opportunity owner", now, notes)
            task_kind = TaskKind.OPPORTUNITY_ACTIVITY
            where = account.name if account and account.name else (person.company_name or "the account")
            headline = (f"New activity from {person.name} at {where} on your open opportunity"
                        f" {opportunity.name or opportunity.id}.")
            suppressions.append(Suppression(
                SuppressionKind.OPEN_OPPORTUNITY,
                f"open opportunity {opportunity.name or opportunity.id}: no prospecting task for a new rep;"
                f" the opportunity owner is told ({self.section.suppression.open_opportunity_why})"))
        else:
            pick = self.owners.assign(person, account, card.profile, now, state, notes)
            task_kind = TaskKind.SALES_HANDOFF
        previous_owner = state.owners.get(person.id, {}).get("owner")
        if pick.counts_as_new and previous_owner != pick.owner:
            day, today_key, week = self.owners.local_keys(pick.owner, now)
            state.record(person.id, pick.owner, pick.source, self._iso(now), day, (today_key, week))
        return self._with_task(ctx, task_kind, pick, suppressions, now, notes, was_nurtured, headline)

    def _sla(self, card: ScoreCard) -> tuple[Sla, str, Priority, str | None]:
        """The SLA that applies: the escalation's own (high priority) or the tier's."""
        action = self.actions.get(card.tier)
        tier_sla_name = action.sla if action and action.sla else None
        if card.escalation is not None:
            sla = sla_from_label(self.section, card.escalation.sla)
            if sla is not None:
                return sla, card.escalation.sla, Priority.HIGH, None
            note = f"escalation SLA {card.escalation.sla!r} is not in the playbook: tier SLA, high priority"
            if tier_sla_name:
                return self.section.slas[tier_sla_name], tier_sla_name, Priority.HIGH, note
        if tier_sla_name is None:
            fallback = Sla(business_days=1, why="default when a tier names no SLA")
            return fallback, "1bd", Priority.NORMAL, "no SLA configured: one business day"
        sla = self.section.slas[tier_sla_name]
        return sla, tier_sla_name, _PRIORITY[sla.priority], None

    def _due(self, owner: str, time_zone: str, sla: Sla, sla_name: str, now: datetime) -> datetime:
        """When a task for `owner` under `sla` is due, in the owner's time zone and business calendar."""
        public, calendar = self.calendar_of(owner)
        due_key = (sla_name, time_zone, public, now)
        due_at = self._dues.get(due_key)
        if due_at is None:  # a batch shares one `now`: few distinct (SLA, time zone, calendar) deadlines
            if len(self._dues) > 4096:
                self._dues.clear()
            due_at = self._dues[due_key] = calendar.due(sla, now, time_zone)
        return due_at

    def _trigger(self, ctx: PersonContext) -> str | None:
        """Why a new task is warranted now, or None when nothing new happened since the last score."""
        card, previous = ctx.card, ctx.previous
        if card.escalation and (previous is None or previous.escalation is None
                                or previous.escalation.rule != card.escalation.rule):
            return card.escalation.text
        if previous is None:
            return f"new {card.tier} lead"
        if previous.tier != card.tier:
            return f"moved from {previous.tier} to {card.tier}"
        gain = card.intent - previous.intent
        if gain >= self.section.suppression.retrigger_intent_delta and gain > 0:
            return f"new activity (+{gain:.0f} intent)"
        return None

    def _with_task(self, ctx: PersonContext, kind: TaskKind, pick: OwnerPick, suppressions: list[Suppression],
                   now: datetime, notes: list[str], was_nurtured: bool, headline: str | None = None,
                   ) -> Decision:
        """An ASSIGN decision for `pick`, with a new task, an update of an open one, or no task when
        nothing new happened since the last handoff."""
        card, person = ctx.card, ctx.person
        reasons = [f"owner {pick.owner}: {pick.source}", *notes]
        trigger = self._trigger(ctx)
        open_task = None
        if ctx.open_tasks:
            window = now - timedelta(days=self.section.suppression.duplicate_task_days)
            recent = [t for t in ctx.open_tasks if t.person_id == person.id and t.created_at >= window]
            open_task = max(recent, key=lambda t: (t.created_at, t.key), default=None)
        if open_task is None and trigger is None:
            suppressions.append(Suppression(SuppressionKind.NO_NEW_SIGNAL,
                                            "already handed off; nothing new since the last score"))
            return Decision(person.id, card.tier, Action.ASSIGN, pick.owner, pick.source,
                            clear_nurture_track=was_nurtured, suppressions=tuple(suppressions),
                            reasons=tuple(reasons))
        sla, sla_name, priority, sla_note = self._sla(card)
        if sla_note:
            reasons.append(sla_note)
        time_zone = self.owners.time_zone(pick.owner)
        due_at = self._due(pick.owner, time_zone, sla, sla_name, now)
        new_due = due_at
        key = task_key(person.id, kind, now)
        if open_task is not None:
            kept = datetime.combine(open_task.due, self.section.business_hours.end, tzinfo=zone(time_zone))
            due_at = min(kept, due_at) if trigger else kept
            key = open_task.key
            suppressions.append(Suppression(
                SuppressionKind.DUPLICATE_TASK,
                f"task {open_task.key} opened {open_task.created_at.date().isoformat()} is still open:"
                " updated, not duplicated"))
        account = ctx.account
        guidance = self.guidance.get((card.stage or "").lower())
        asset = self.catalog.next_asset(card.stage, self._segment(card, account), _consumed(ctx))
        note = handoff_note(card, person, account, ctx.colleagues, guidance, asset, headline)
        where = (account.name if account and account.name else None) or person.company_name or "no account"
        if kind is TaskKind.OPPORTUNITY_ACTIVITY:
            subject = f"New activity from {person.name} at {where} on your open opportunity"
        else:
            subject = self.section.task_subject.format(
                name=person.name, account=where, tier=card.tier, title=person.title or "",
                trigger=trigger or "update")
        task = PlannedTask(key=key, kind=kind, owner=pick.owner, subject=subject[:255], note=note,
                           due_at=due_at, priority=priority, sla=sla_name,
                           updates_open_task=open_task is not None)
        due_text = self._texts.get((due_at, sla_name)) if due_at is new_due else None
        if due_text is None:
            due_text = (f"task due {due_at.isoformat(timespec='minutes')} ({sla_name})",)
            if due_at is new_due:
                self._texts[(due_at, sla_name)] = due_text
        reasons.append(due_text[0] + (f": {trigger}" if trigger else ""))
        return Decision(person.id, card.tier, Action.ASSIGN, pick.owner, pick.source, task,
                        clear_nurture_track=was_nurtured, next_asset=asset, suppressions=tuple(suppressions),
                        reasons=tuple(reasons))

    # --- buying committees ----------------------------------------------------------------------

    def committee(self, account_id: str, account: Account | None, score: AccountScore,
                  people: Sequence[tuple[Person, ScoreCard | None]], decisions: Mapping[str, Decision],
                  state: AssignmentState, now: datetime,
                  open_tasks: Mapping[str, Sequence[OpenTask]] | None = None) -> AccountDecision | None:
        """The account decision when the account's buying committee meets the playbook's condition
        (None otherwise): an account task for the account owner, unless someone at the account is
        routed individually (assigned now, or with an open task of leadloop's: `open_tasks` by
        person) or an account task already raised covers this committee. Records a raised committee
        in `state` (in place, as `decide` does)."""
        rule = self.section.committee
        if rule is None or score.tier not in rule.account_tiers:
            return None
        members = engaged_members(people, rule, self.committee_roles, now)
        roles = engaged_roles(members)
        if len(roles) < rule.min_roles:
            return None
        since = now - timedelta(days=self.section.suppression.duplicate_task_days)
        routed = _routed_individually(people, decisions, open_tasks or {}, since)
        if routed is not None:
            return AccountDecision(account_id, score.tier, roles, tuple(members),
                                   reasons=(f"no account task: {routed}",))
        raised = state.committees.get(account_id)
        trigger = committee_trigger(rule, score.tier, roles, raised)
        if trigger is None:
            assert raised is not None
            return AccountDecision(account_id, score.tier, roles, tuple(members), reasons=(
                f"no account task: task {raised['key']} raised {raised['at'][:10]} covers this committee"
                f" ({raised['tier']}; {role_names(raised['roles'])})",))
        notes: list[str] = []
        holder = self.owners.resolve(account.owner_id) if account is not None else None
        if holder is None and account is not None and account.owner_id:
            notes.append(f"account owner {account.owner_id!r} is not a known rep")
        pick = self.owners.available_or_fallback(holder, "account owner", now, notes)
        sla_name = rule.sla or "1bd"
        sla = self.section.slas[rule.sla] if rule.sla else _COMMITTEE_DEFAULT_SLA
        due_at = self._due(pick.owner, self.owners.time_zone(pick.owner), sla, sla_name, now)
        key = committee_key(account_id, score.tier, roles)
        task = PlannedTask(key=key, kind=TaskKind.BUYING_COMMITTEE, owner=pick.owner,
                           subject=committee_subject(rule, account, account_id, score.tier, roles, members),
                           note=committee_note(rule, account, score, roles, members, trigger),
                           due_at=due_at, priority=_PRIORITY[sla.priority], sla=sla_name)
        higher = raised is None or rule.rank(score.tier) < rule.rank(raised["tier"])
        state.raised_committee(account_id, score.tier if higher else raised["tier"], roles, key, now)
        return AccountDecision(account_id, score.tier, roles, tuple(members), pick.owner, pick.source, task,
                               (f"owner {pick.owner}: {pick.source}", *notes,
                                f"task due {due_at.isoformat(timespec='minutes')} ({sla_name}): {trigger}"))

    # --- nurture --------------------------------------------------------------------------------

    def _nurture(self, ctx: PersonContext) -> Decision:
        card, person, account = ctx.card, ctx.person, ctx.account
        segment = self._segment(card, account)
        key = (segment, card.stage, card.profile)
        if key not in self._tracks:
            self._tracks[key] = nurture_track(self.section, *key)
        track = self._tracks[key]
        if track is None:
            return Decision(person.id, card.tier, Action.NONE,
                            reasons=("no nurture track matches and there is no default track",))
        if track.channel == "email" and (person.unsubscribed or person.bounced):
            code = SuppressionKind.UNSUBSCRIBED if person.unsubscribed else SuppressionKind.BOUNCED
            why = Suppression(code, f"{code.value}: no email nurture"
                                    f" ({self.section.suppression.unsubscribed_why})")
            return Decision(person.id, card.tier, Action.NONE, clear_nurture_track=True, suppressions=(why,),
                            reasons=(why.text,))
        asset = self.catalog.next_asset(card.stage, segment, _consumed(ctx))
        text_key = (track.name, asset.id if asset else None)
        reasons = self._texts.get(text_key)
        if reasons is None:  # the same few sentences for everyone on a track: build them once
            reasons = self._texts[text_key] = (
                f"nurture track {track.name}: {track.why}",
                f"next asset {asset.id} {asset.name}" if asset else "no unconsumed asset for the next stage")
        return Decision(person.id, card.tier, Action.NURTURE, nurture_track=track.name, next_asset=asset,
                        reasons=reasons)


def _routed_individually(people: Sequence[tuple[Person, ScoreCard | None]], decisions: Mapping[str, Decision],
                         open_tasks: Mapping[str, Sequence[OpenTask]], since: datetime) -> str | None:
    """Who at the account a rep already follows up, said for the account decision; None: nobody. A
    person counts when routed now, or when they got a task of leadloop's since `since` (the
    duplicate-task window: the ledger knows a task was delivered, not whether the rep closed it)."""
    for person, _ in people:
        decision = decisions.get(person.id)
        if decision is not None and decision.action is Action.ASSIGN:
            return (f"{person.name} is routed individually to {decision.owner}, whose handoff note lists"
                    " the buying committee")
    for person, _ in people:
        recent = [t for t in open_tasks.get(person.id, ()) if t.created_at >= since]
        task = max(recent, key=lambda t: (t.created_at, t.key), default=None)
        if task is not None:
            return (f"{person.name} got task {task.key} on {task.created_at.date().isoformat()}"
                    f" ({task.owner or 'a rep'})")
    return None


def _consumed(ctx: PersonContext) -> set[str]:
    """Asset ids (or names) the person already had: from their activities and the score's reasons."""
    ids = {r.asset for r in ctx.card.reasons if r.asset}
    if ctx.activities:
        ids.update(a.asset_id for a in ctx.activities if a.asset_id)
    return ids


def route_person(ctx: PersonContext, section: RoutingSection, state: AssignmentState, now: datetime, *,
                 assets: Iterable[Asset] = (), directory: OwnerDirectory | None = None,
                 profile_segments: Mapping[str, Sequence[str]] | None = None,
                 ) -> tuple[Decision, AssignmentState]:
    """One person's decision and the updated assignment state (the given state is left untouched)."""
    new_state = state.copy()
    router = Router(section, assets=assets, directory=directory, profile_segments=profile_segments)
    decision = router.decide(ctx, new_state, now)
    return decision, new_state


def routing_order(cards: Iterable[ScoreCard]) -> list[ScoreCard]:
    """Score descending, then person id: the order round robin sees leads in."""
    ordered = sorted(cards, key=attrgetter("person_id"))
    ordered.sort(key=attrgetter("score"), reverse=True)  # stable: equal scores keep person-id order
    return ordered


def route_all(
    cards: Iterable[ScoreCard],
    *,
    people: Mapping[str, Person],
    section: RoutingSection,
    state: AssignmentState,
    now: datetime,
    accounts: Mapping[str, Account] | None = None,
    previous: Mapping[str, ScoreCard] | None = None,
    opportunities: Iterable[Opportunity] = (),
    activities: Iterable[Activity] = (),
    open_tasks: Iterable[OpenTask] = (),
    assets: Iterable[Asset] = (),
    directory: OwnerDirectory | None = None,
    profile_segments: Mapping[str, Sequence[str]] | None = None,
    account_scores: Mapping[str, AccountScore] | None = None,
    committee_roles: Sequence[str] = (),
) -> RoutingResult:
    """Route every scored person (cards without a known person are skipped) in routing order, then
    every account whose buying committee meets the playbook's committee condition.

    `assets` is the catalog nurture and handoff notes pick the next asset from; `directory` maps
    CRM owner ids of accounts and opportunities to reps, on top of the CRM ids the routing section
    gives its reps and queues;
    `profile_segments` maps scoring profile ids to their application segments;
    `account_scores` are the account roll-ups (without them no account is routed) and
    `committee_roles` the roll-up's committee roles, which a committee rule naming no roles counts.

    Returns the decisions in that order, the account decisions in account-id order, the updated
    assignment state (the given one is left untouched) and the suppression report.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return _route_all(cards, people, section, state, now, accounts or {}, previous or {}, opportunities,
                      activities, open_tasks, assets, directory, profile_segments, account_scores or {},
                      committee_roles)


def _route_all(cards: Iterable[ScoreCard], people: Mapping[str, Person], section: RoutingSection,
               state: AssignmentState, now: datetime, accounts: Mapping[str, Account],
               previous: Mapping[str, ScoreCard], opportunities: Iterable[Opportunity],
               activities: Iterable[Activity], open_tasks: Iterable[OpenTask], assets: Iterable[Asset],
               directory: OwnerDirectory | None, profile_segments: Mapping[str, Sequence[str]] | None,
               account_scores: Mapping[str, AccountScore], committee_roles: Sequence[str],
               ) -> RoutingResult:
    router = Router(section, assets=assets, directory=directory, profile_segments=profile_segments,
                    committee_roles=committee_roles)
    new_state = state.copy()
    new_state.prune(now.date())
    opportunities_by_account: dict[str, list[Opportunity]] = {}
    for opportunity in opportunities:
        if opportunity.account_id:
            opportunities_by_account.setdefault(opportunity.account_id, []).append(opportunity)
    activities_by_person: dict[str, list[Activity]] = {}
    for activity in activities:
        activities_by_person.setdefault(activity.person_id, []).append(activity)
    tasks_by_person: dict[str, list[OpenTask]] = {}
    for task in open_tasks:
        tasks_by_person.setdefault(task.person_id, []).append(task)
    ordered: list[tuple[ScoreCard, Person]] = []
    members: dict[str, list[tuple[Person, ScoreCard | None]]] = {}
    for card in routing_order(cards):
        person = people.get(card.person_id)
        if person is None:
            continue
        ordered.append((card, person))
        if card.account_id:
            members.setdefault(card.account_id, []).append((person, card))
    committee = {account_id: Committee(people_of) for account_id, people_of in members.items()}
    report = SuppressionReport()
    decisions: list[Decision] = []
    append = decisions.append
    decide = router.decide
    none: tuple[()] = ()
    quiet = router.quiet
    for card, person in ordered:
        pid, aid = card.person_id, card.account_id
        decision = quiet(card, person, previous.get(pid))
        if decision is not None:
            append(decision)
            continue
        if aid:
            ctx = PersonContext(card, person, previous.get(pid), accounts.get(aid),
                                opportunities_by_account.get(aid, none), committee[aid],
                                activities_by_person.get(pid, none), tasks_by_person.get(pid, none))
        else:
            ctx = PersonContext(card, person, previous.get(pid), None, none, none,
                                activities_by_person.get(pid, none), tasks_by_person.get(pid, none))
        decision = decide(ctx, new_state, now)
        if decision.suppressions:
            for suppression in decision.suppressions:
                report.add(pid, suppression)
        append(decision)
    committees = _route_committees(router, members, accounts, account_scores, decisions, tasks_by_person,
                                   new_state, now)
    return RoutingResult(decisions=decisions, state=new_state, report=report, accounts=committees)


def _route_committees(router: Router, members: Mapping[str, list[tuple[Person, ScoreCard | None]]],
                      accounts: Mapping[str, Account], account_scores: Mapping[str, AccountScore],
                      decisions: Sequence[Decision], open_tasks: Mapping[str, Sequence[OpenTask]],
                      state: AssignmentState, now: datetime) -> list[AccountDecision]:
    """`Router.committee` for every account at a qualifying tier, in account-id order."""
    rule = router.section.committee
    if rule is None:
        return []
    qualifying = sorted(aid for aid, score in account_scores.items()
                        if score.tier in rule.account_tiers and aid in members)
    if not qualifying:
        return []
    by_person = {d.person_id: d for d in decisions}
    found = []
    for account_id in qualifying:
        decision = router.committee(account_id, accounts.get(account_id), account_scores[account_id],
                                    members[account_id], by_person, state, now, open_tasks)
        if decision is not None:
            found.append(decision)
    return found
