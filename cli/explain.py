"""`leadloop explain --email X` (or `--crm-id`): why a live lead is where it is, read from the store.

It answers from what the syncs kept, without calling a CRM: the person (merged across their CRM
records), what leadloop last wrote to each of their CRM records (the written ledger: the tier, scores
and reason line a rep sees), the latest score and what changed since the one before (the score
history), the tasks routing created (the task ledger) and the live playbook.

`read_explanation` gathers it all into a `LiveExplanation`, `print_explanation` prints one; a
problem the user can fix (no store there, nobody with that email, several people with it) is an
`ExplainError`, which the command shows in one message with exit code 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from leadloop.connectors.mapping import PERSON_FIELDS, MappingError, load_mapping
from leadloop.crm.changes import TaskUpsert
from leadloop.crm.dataset import validate_payloads
from leadloop.crm.identity import resolve_identity
from leadloop.crm.records import Crm, Person
from leadloop.playbook.load import parse_playbook
from leadloop.playbook.model import PlaybookError
from leadloop.scoring.diff import explain_diff
from leadloop.scoring.scorecard import ScoreCard
from leadloop.store import lookup
from leadloop.store.db import DEFAULT_STORE_URL, open_store, parse_store_url, redact
from leadloop.store.facade import Store, StoreError
from leadloop.store.lookup import StoredRecord
from leadloop.store.models import PlaybookActivation, Run, TaskLedger, WriteFailure, WrittenValue
from leadloop.store.writeplan import whole_points
from leadloop.sync.pipeline import scorecards_from_stored

STORE_URL_ENV = "LEADLOOP_STORE_URL"
_CRM_NAMES = {"salesforce": "Salesforce", "hubspot": "HubSpot"}
_SEPARATOR = "; "  # how store.writeplan.reasons_text joins the reasons it writes
_TASKS_SHOWN = 5


class ExplainError(Exception):
    """Something the user can correct (the store, the email or id); `lines` say more."""

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or []


@dataclass(frozen=True, slots=True)
class WrittenRecord:
    """One CRM record of the person and what leadloop last wrote to it."""

    record: StoredRecord
    written: dict[str, WrittenValue]  # leadloop's logical field name (or the CRM's, if unmapped) → row
    crm_fields: dict[str, str]  # logical field name → the CRM's field name
    refused: list[WriteFailure]

    @property
    def label(self) -> str:
        return record_label(self.record)

    def value(self, field: str) -> str | None:
        row = self.written.get(field)
        return row.value if row is not None else None

    def shown(self) -> tuple[str | None, ...]:
        """What a rep sees here, to tell two records apart (the moment written aside)."""
        return tuple(self.value(f) for f in PERSON_FIELDS)


@dataclass(frozen=True, slots=True)
class TaskView:
    entry: TaskLedger
    task: TaskUpsert | None  # the payload, while the outbox still holds it (until the CRM confirms)
    owner: str  # the CRM user, named when the store knows them


@dataclass(frozen=True, slots=True)
class LiveExplanation:
    store: str  # the store's URL, without a password
    person: Person
    records: list[WrittenRecord]
    account: str | None
    card: ScoreCard | None
    previous: ScoreCard | None
    scored_by: Run | None
    run_id: str | None  # the run that stored the latest score
    tasks: list[TaskView]
    live: PlaybookActivation | None
    last_run: Run | None

    @property
    def changes(self) -> list[str]:
        """What changed from the previous stored score to the latest (scoring.diff's sentences)."""
        return explain_diff(self.previous, self.card) if self.card is not None else []


def record_label(record: StoredRecord) -> str:
    """`Salesforce Lead 00Q…`, `HubSpot contact 1234`."""
    crm = _CRM_NAMES.get(record.crm, record.crm)
    obj = record.stream.removesuffix("s") if record.crm == Crm.HUBSPOT else record.stream
    return f"{crm} {obj} {record.crm_id}"


# -- finding the store and the person ------------------------------------------------------------------


def store_url_from(option: str | None) -> str:
    """--store-url, else LEADLOOP_STORE_URL, else the default SQLite file (as `sync` finds it)."""
    return option or os.environ.get(STORE_URL_ENV) or DEFAULT_STORE_URL


def open_existing_store(url: str) -> Store:
    """The store at `url`. A SQLite file that does not exist is an error, not a new empty store."""
    try:
        parsed = parse_store_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            path = Path(parsed.database).expanduser()
            if not path.is_file():
                raise ExplainError(f"there is no store at {path}", [
                    f"give --store-url (or {STORE_URL_ENV}) the store the syncs write to; "
                    "`make demo` keeps its store in .leadloop/demo/state.db"])
        return open_store(url)
    except StoreError as error:
        raise ExplainError(str(error), [f"check --store-url (or {STORE_URL_ENV})"]) from None


def find_person(store: Store, shown: str, *, email: str | None, crm_id: str | None,
                ) -> tuple[str, list[StoredRecord]]:
    """(canonical person id, their stored CRM records) for the email or CRM id; with both, the CRM id
    picks among the email's people. Raises ExplainError for nobody, or for several people."""
    wanted = email.strip().lower() if email else None
    if crm_id:
        found = lookup.people_with_crm_id(store, crm_id.strip())
        asked = f"CRM id {crm_id.strip()!r}"
        if wanted:
            found = [r for r in found if r.field("email") == wanted]
            asked += f" and email {wanted!r}"
    else:
        found = lookup.people_with_email(store, wanted or "")
        asked = f"email {wanted!r}"
    if not found:
        hint = ("nothing has been synced into this store yet: run `leadloop sync` first, or give --store-url"
                if not store.cursors() else "check the spelling, or give --store-url another store")
        raise ExplainError(f"no person with {asked} in the store at {shown}", [hint])
    links = lookup.canonical_ids(store, (r.record_id for r in found))
    people: dict[str, list[StoredRecord]] = {}
    for record in found:
        people.setdefault(links.get(record.record_id, record.record_id), []).append(record)
    if len(people) > 1:
        raise ExplainError(f"{len(people)} people have the {asked} in the store at {shown}: "
                           "give --crm-id to pick one", [_candidate(pid, records) for pid, records in
                                                         sorted(people.items())])
    [(person_id, records)] = people.items()
    return person_id, lookup.linked_records(store, person_id) or records


def _candidate(person_id: str, records: list[StoredRecord]) -> str:
    names = {f"{r.field('first_name') or ''} {r.field('last_name') or ''}".strip() for r in records} - {""}
    return f"{person_id} ({', '.join(sorted(names)) or 'no name'}): " + ", ".join(
        f"--crm-id {r.crm_id} ({record_label(r)})" for r in records)


# -- reading what the store knows of them ----------------------------------------------------------------


def _merged_person(person_id: str, records: list[StoredRecord]) -> Person:
    """The person as a sync sees them: their records merged by identity resolution."""
    people, _invalid = validate_payloads("people", [(r.record_id, r.payload) for r in records])
    merged = resolve_identity(people, []).people if people else []
    if len(merged) == 1:
        return merged[0]
    return Person(id=person_id)  # payloads that no longer validate, or an unmerged group: the id alone


def _field_names(live: PlaybookActivation | None) -> dict[str, dict[str, str]]:
    """CRM → {the CRM's field name: leadloop's logical name} for person fields, from the live
    playbook's mapping (the default mapping before any playbook went live)."""
    try:
        override = parse_playbook(live.text, source="the live playbook").mapping if live else None
        mapping = load_mapping(override)
    except (PlaybookError, MappingError):
        mapping = load_mapping(None)
    return {crm.value: {name: logical for logical, name in getattr(mapping, crm.value).owned_person.items()}
            for crm in Crm}


def _written_records(store: Store, records: list[StoredRecord], live: PlaybookActivation | None,
                     ) -> list[WrittenRecord]:
    names = _field_names(live)
    shown = []
    for record in records:
        logical = names.get(record.crm, {})
        rows = lookup.written_values(store, record.crm, [record.crm_id])
        shown.append(WrittenRecord(
            record, {logical.get(row.field, row.field): row for row in rows},
            {name: crm_name for crm_name, name in logical.items()},
            lookup.open_write_failures(store, record.crm, [record.crm_id])))
    # the records a sync writes to first (a Contact before its Lead), then the others
    return sorted(shown, key=lambda w: (not w.written, w.record.crm != Crm.SALESFORCE,
                                        w.record.stream != "Contact", w.record.record_id))


def _account_name(store: Store, account_id: str | None) -> str | None:
    if not account_id:
        return None
    names = [r.field("name") for r in lookup.linked_records(store, account_id, "accounts")]
    return next((n for n in names if n), account_id)


def _tasks(store: Store, person_id: str) -> list[TaskView]:
    entries = lookup.tasks_of_person(store, person_id)
    users: dict[str, dict[str, StoredRecord]] = {}
    for crm in {e.crm for e in entries}:
        users[crm] = lookup.crm_users(store, crm, (e.owner for e in entries if e.crm == crm and e.owner))
    views = []
    for entry in entries:
        user = users.get(entry.crm, {}).get(entry.owner or "")
        name, email = (user.field("name"), user.field("email")) if user else (None, None)
        owner = " ".join(p for p in (name, f"<{email}>" if email else None) if p)
        owner = f"{owner} ({entry.owner})" if owner else (entry.owner or "no owner")
        views.append(TaskView(entry, store.outbox_task(entry), owner))
    return views


def read_explanation(store: Store, shown: str, *, email: str | None, crm_id: str | None) -> LiveExplanation:
    """Everything the store knows of the person with this email (or CRM id) that explains their score."""
    person_id, records = find_person(store, shown, email=email, crm_id=crm_id)
    history = store.score_history(person_id, limit=2)
    cards = scorecards_from_stored({str(i): card for i, card in enumerate(history)})
    card, previous = cards.get("0"), cards.get("1")
    run_id = history[0].get("run_id") if history else None
    live = store.live_playbook()
    last_runs = store.runs(limit=1)
    return LiveExplanation(
        store=shown, person=_merged_person(person_id, records),
        records=_written_records(store, records, live),
        account=_account_name(store, card.account_id if card else None),
        card=card, previous=previous, scored_by=store.get_run(run_id) if run_id else None, run_id=run_id,
        tasks=_tasks(store, person_id),
        live=live, last_run=last_runs[0] if last_runs else None)


def explain_live(*, email: str | None, crm_id: str | None, store_url: str | None) -> LiveExplanation:
    """Open the store (never creating one), read the explanation, close the store."""
    url = store_url_from(store_url)
    shown = redact(url)
    with open_existing_store(url) as store:
        try:
            return read_explanation(store, shown, email=email, crm_id=crm_id)
        except StoreError as error:
            raise ExplainError(str(error), [f"check --store-url (or {STORE_URL_ENV})"]) from None


# -- printing --------------------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "?"


def _run(run: Run | None, run_id: str | None = None) -> str:
    if run is None:
        return f"run {run_id}" if run_id else "an unrecorded run"
    return f"{run.kind} run {run.id} at {_when(run.started_at)}"


def reason_lines(text: str) -> list[str]:
    """The written reasons field as the lines it joins (`store.writeplan.reasons_text`)."""
    return [part for part in text.split(_SEPARATOR) if part] if text else []


def _print_written(console: Console, written: WrittenRecord, same_as: WrittenRecord | None) -> None:
    out = console.print
    if not written.written:
        out(f"  {escape(written.label)}: nothing written by leadloop yet")
    elif same_as is not None:
        when = max(row.written_at for row in written.written.values())
        out(f"  {escape(written.label)}: the same values as {escape(same_as.label)} (written {_when(when)})")
    else:
        when = max(row.written_at for row in written.written.values())
        runs = sorted({row.run_id for row in written.written.values() if row.run_id})
        out(f"  {escape(written.label)} (last written {_when(when)}"
            + (f", run {escape(runs[-1])}" if len(runs) == 1 else "") + ")")
        value = written.value
        facts = [("Tier", value("tier")),
                 ("Score", value("score") and f"{value('score')} (fit {value('fit_score') or '?'}, "
                                               f"intent {value('intent_score') or '?'})"),
                 ("Likelihood", value("likelihood") and f"{value('likelihood')}%"),
                 ("Nurture track", value("nurture_track")),
                 ("Model", value("model_version")),
                 ("Scored at", value("scored_at"))]
        for label, text in facts:
            if text:
                out(f"    {label:<14}{escape(text)}")
        field = written.crm_fields.get("reasons", "reasons")
        lines = reason_lines(value("reasons") or "")
        out(f"    Reasons ({escape(field)}):" + ("" if lines else " none written"))
        for line in lines:
            out(f"      {escape(line)}")
    for failure in written.refused:
        out(f"    [yellow]refused[/yellow] {escape(failure.target)}: {escape(failure.reason)} "
            f"({failure.attempts} attempt(s), last {_when(failure.last_seen)})")


def _print_card(console: Console, found: LiveExplanation, card: ScoreCard) -> None:
    out = console.print
    out(f"[bold]Latest score[/bold], {escape(_run(found.scored_by, found.run_id))}")
    facts = [("Tier", card.tier + (f" (grade {card.grade})" if card.grade else "")),
             ("Score", f"{card.score:.1f} (fit {card.fit:.1f}, intent {card.intent:.1f})"),
             ("Profile", card.profile or "none applies"),
             ("Role", " / ".join(p for p in (card.role, card.seniority) if p) or "—"),
             ("Stage", card.stage or "—")]
    if card.escalation:
        facts.append(("Escalation", f"{card.escalation.rule} (SLA {card.escalation.sla})"))
    if card.disqualified:
        facts.append(("Disqualified", card.disqualified))
    facts.append(("Model", f"{card.model_version}, as of {_when(card.scored_at)}"))
    for label, text in facts:
        out(f"  {label:<14}{escape(text)}")
    written = next((w for w in found.records if w.value("score") is not None), None)
    if written is not None and (written.value("score") != str(whole_points(card.score))
                                or written.value("tier") != card.tier):
        crm_says = f"{written.value('tier') or '?'} {written.value('score') or '?'}"
        out(f"  [dim]The CRMs show {escape(crm_says)}:"
            " a sync rewrites a score only when its tier changes or it moves by --min-change points "
            "(5 by default), or a write was refused (below).[/dim]")
    out(f"  Reasons       {len(card.reasons)} in all; the CRMs get the ones that weigh most (above)")


def _print_tasks(console: Console, found: LiveExplanation) -> None:
    out = console.print
    out("[bold]Routing[/bold]")
    tracks = {w.value("nurture_track") for w in found.records} - {None, ""}
    for track in sorted(tracks):
        out(f"  Nurture track {escape(track)}")
    if not found.tasks:
        out("  No task: routing has created none for this person" + (
            " (a nurture track instead)" if tracks else ""))
    for view in found.tasks[:_TASKS_SHOWN]:
        entry, task = view.entry, view.task
        where = _CRM_NAMES.get(entry.crm, entry.crm)
        ident = f" {entry.crm_task_id}" if entry.crm_task_id else ""
        out(f"  Task in {escape(where)}{escape(ident)} ({escape(entry.status)}): to {escape(view.owner)}, "
            f"due {entry.due or '?'}; created {_when(entry.created_at)} "
            f"by {escape(_run(None, entry.run_id))}")
        out(f"    key {escape(entry.key)}")
        if entry.last_error:
            out(f"    [yellow]the CRM said[/yellow]: {escape(entry.last_error)}")
        if task is None:
            out("    subject and handoff note: in the CRM task (the store keeps them only until the CRM "
                "confirms the task)")
            continue
        out(f"    Subject       {escape(task.subject)}")
        why = f" ({task.reason})" if task.reason else ""
        out(f"    Priority      {escape(task.priority.value + why)}")
        out("    Handoff note:")
        for line in task.body.splitlines():
            out(f"      {escape(line)}")
    if len(found.tasks) > _TASKS_SHOWN:
        out(f"  … and {len(found.tasks) - _TASKS_SHOWN} older task(s)")


def print_explanation(console: Console, found: LiveExplanation) -> None:
    """The explanation, in the order a rep's question runs: who, what the CRM shows, why, what next."""
    out = console.print
    person = found.person
    company = found.account or person.company_name
    at = f" at {company}" if company else ""
    title = f", {person.title}" if person.title else ""
    out(f"[bold]{escape(person.name)}[/bold]{escape(title + at)} <{escape(person.email or person.id)}>")
    out(f"  Person        {escape(person.id)}")
    out("  CRM records   " + escape(", ".join(w.label for w in found.records)))
    out("")
    out("[bold]In the CRMs[/bold] (what leadloop last wrote: what a rep sees)")
    previous: list[WrittenRecord] = []
    for written in found.records:
        same = next((p for p in previous if p.written and p.shown() == written.shown()), None)
        _print_written(console, written, same)
        previous.append(written)
    out("")
    if found.card is None:
        out("[bold]Latest score[/bold]: none stored (this person has not been scored yet)")
    else:
        _print_card(console, found, found.card)
        out("")
        since = f" since the previous score ({_when(found.previous.scored_at)})" if found.previous else ""
        out(f"[bold]What changed[/bold]{since}")
        for line in found.changes:
            out(f"  {escape(line)}")
    out("")
    _print_tasks(console, found)
    out("")
    if found.live is not None:
        live = found.live
        out(f"[bold]Live playbook[/bold] {escape(live.name)} (model version {escape(live.model_version)}), "
            f"live since {_when(live.activated_at)}")
        if found.card is not None and found.card.model_version != live.model_version:
            out(f"  the latest score is from model version {escape(found.card.model_version)}: "
                "the next sync scores with the live playbook")
    if found.last_run is not None:
        run = found.last_run
        out(f"[dim]Store {escape(found.store)}; last run: {escape(run.kind)} {escape(run.status)} "
            f"at {_when(run.started_at)}[/dim]")
