"""One run's working set, held in this process while the run lasts, and the sync's steps by run key.

A run's steps hand each other a live runtime (the CRM clients, the store) and values of up to millions
of records: the canonical dataset, identity links, score cards, routing's decisions, the write plans.
Those stay here, in a `Workspace` registered under the run's key from the moment the run has opened
its runtime until it ends, however it ends (`held`). Each step below takes the run's key and a few
small values (a CRM's name, a stream, a partition's index, a threshold), reads what it needs from the
workspace, leaves what it makes there and returns a small summary of plain values (counts, names). So
whatever runs the steps and records, walks or serialises their arguments and results (Prefect does)
handles a few bytes, never the data.

Each step is one `sync.pipeline` or `sync.writeback` call; the flows run them as tasks, the CLI, the
tests and the benchmarks can call them as they are. The workspace lives in this process only: a step
run in another process finds none (`NoWorkspace`) rather than a copy of the data.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from leadloop.crm.dataset import Dataset
from leadloop.crm.identity import (
    IdentityResult,
    identity_key,
    merge_account_group,
    merge_person_group,
    repoint_opportunity,
)
from leadloop.crm.records import Account, Activity, Crm, Person
from leadloop.routing.crm_changes import person_records
from leadloop.routing.model import RoutingResult
from leadloop.routing.state import AssignmentState
from leadloop.scoring.engine import ScoringResult
from leadloop.scoring.scorecard import ScoreCard
from leadloop.store.facade import Store
from leadloop.store.writeplan import ledger_text, mapped_fields, reasons_text
from leadloop.sync import incremental, pipeline, writeback
from leadloop.sync.pipeline import PullStats, Runtime, StoredPartition
from leadloop.sync.writeback import CrmPlan, WriteStats

log = logging.getLogger(__name__)

# -- the workspace -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Workspace:
    """What one run's steps leave for the next: the runtime, then each step's large output."""

    key: str
    runtime: Runtime
    identity: IdentityResult | None = None
    dataset: Dataset | None = None  # canonical people and accounts, after identity
    previous: dict[str, ScoreCard] = field(default_factory=dict)  # last stored cards (`last_scores`)
    partitions: dict[int, StoredPartition] = field(default_factory=dict)
    partition_results: dict[int, tuple[ScoringResult, list[Activity]]] = field(default_factory=dict)
    result: ScoringResult | None = None  # the cards of the run (in its scope, once narrowed)
    routing: RoutingResult | None = None
    plans: dict[Crm, CrmPlan] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # a flow's own large values, by name

    def need(self, name: str) -> Any:
        value = getattr(self, name)
        if value is None:
            raise StepOrderError(f"run {self.key}: no {name} yet (a step ran before the one that makes it)")
        return value


class NoWorkspace(LookupError):
    """A step was given a run key with no workspace in this process: the run has ended, or the step
    runs in another process than its run."""


class StepOrderError(RuntimeError):
    """A step needs what an earlier step of the run makes, and that step has not run."""


_open: dict[str, Workspace] = {}
_lock = threading.Lock()


@contextmanager
def held(key: str, runtime: Runtime) -> Iterator[Workspace]:
    """Register a workspace for the run `key` over `runtime` while the block runs; on the way out
    (success, failure, cancellation) it is unregistered and its values dropped. The runtime itself
    stays its opener's to close."""
    workspace = Workspace(key, runtime)
    with _lock:
        if key in _open:
            raise RuntimeError(f"run {key} already has a workspace in this process")
        _open[key] = workspace
    try:
        yield workspace
    finally:
        with _lock:
            _open.pop(key, None)
        _drop_values(workspace)


def _drop_values(workspace: Workspace) -> None:
    """Let the run's large values go at once, even while something still holds the workspace (a
    traceback's frames do, after a failure)."""
    workspace.identity = workspace.dataset = workspace.result = workspace.routing = None
    workspace.previous, workspace.partitions, workspace.partition_results = {}, {}, {}
    workspace.plans, workspace.values = {}, {}


def get(key: str) -> Workspace:
    with _lock:
        workspace = _open.get(key)
    if workspace is None:
        raise NoWorkspace(f"run {key} has no workspace in this process: it has ended, or this step runs "
                          "in another process than the run (the run's data never leaves its process)")
    return workspace


def open_keys() -> list[str]:
    """The runs holding a workspace in this process (for tests and diagnostics)."""
    with _lock:
        return sorted(_open)


# -- what the steps return --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolved:
    people: int
    accounts: int
    conflicts: int
    previous_cards: int


@dataclass(frozen=True, slots=True)
class Scored:
    people: int
    accounts: int
    model_version: str
    tier_counts: dict[str, int] = field(default_factory=dict)
    tier_changes: dict[str, int] = field(default_factory=dict)  # "old → new" → people


@dataclass(frozen=True, slots=True)
class PartitionScored:
    index: int
    people: int
    accounts: int


@dataclass(frozen=True, slots=True)
class Routed:
    decisions: int
    suppressions: dict[str, int] = field(default_factory=dict)
    account_tasks: int = 0  # buying committees whose account owner gets a new account task


@dataclass(frozen=True, slots=True)
class Planned:
    """The write plan in numbers: per CRM what it holds and the parts to write (`write_plan`), and who
    gets the new tasks."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    parts: dict[str, list[str]] = field(default_factory=dict)  # CRM → objects with field updates, tasks
    tasks_by_owner: dict[str, int] = field(default_factory=dict)
    handoff_notes: dict[str, str] = field(default_factory=dict)  # person id → note, the first few tasks
    tasks_fallback: list[str] = field(default_factory=list)
    tasks_unplaced: dict[str, str] = field(default_factory=dict)


# -- pull ------------------------------------------------------------------------------------------------


def streams(key: str) -> list[tuple[str, str]]:
    """(CRM, stream) for every stream of every configured CRM, in pull order."""
    return [(crm.value, stream) for crm, source in get(key).runtime.sources.items()
            for stream in source.streams()]


def pull_stream(key: str, crm: str, stream: str) -> PullStats:
    """`pipeline.pull_stream` for the run: one stream from its cursor into the store."""
    return pipeline.pull_stream(get(key).runtime, Crm(crm), stream)


# -- identity and scoring ---------------------------------------------------------------------------------


def load_and_resolve(key: str, people_per_partition: int | None = None, previous: bool = True,
                     kept: bool = False) -> Resolved:
    """The stored records merged into canonical people and accounts (`pipeline.load_and_resolve`),
    and the last stored score cards (not with `previous=False`: an hourly run reads those of the
    people it rescores, `only_what_changed`). The activities stay in the store: scoring reads them as
    columns (`score`, `score_partition`), never as one record each.

    With `kept` (an hourly run), when no person, account or opportunity was stored since the last
    merge that saved its records (`Store.kept_identity`), nothing is merged again: the run keeps that
    merge, and `only_what_changed` reads from it only the part it rescores."""
    workspace = get(key)
    store = workspace.runtime.store
    through = store.stored_through()
    workspace.values[MERGED_THROUGH] = through
    if kept and (resolved := _keep_identity(workspace, merge_what_changed(store, through))) is not None:
        return resolved
    raw, identity = pipeline.load_and_resolve(store, people_per_partition, activities=False)
    workspace.identity = identity
    workspace.dataset = pipeline.merged_dataset(raw, identity)
    workspace.values[KEYS] = pipeline.identity_keys(raw)
    pipeline.release_pulled(raw)
    workspace.previous = pipeline.last_scores(store) if previous else {}
    dataset = workspace.dataset
    log.info("identity: %d people and %d accounts (%d conflicts to settle in the CRM); %d scored before",
             len(dataset.people), len(dataset.accounts), len(identity.conflicts), len(workspace.previous))
    return Resolved(len(dataset.people), len(dataset.accounts), len(identity.conflicts),
                    len(workspace.previous))


@dataclass(frozen=True, slots=True)
class IdentityPatch:
    """The canonical records of the groups a change touched, merged again (`merge_what_changed`): with
    the last merge kept in the store, the merge of the snapshots stored up to `through`. The run
    reads through it (`read`) and saves it with its identity (`save_identity`; a dry run does not)."""

    records: dict[str, list[Any]]  # kind → canonical records merged again
    dropped: dict[str, set[str]]  # kind → canonical ids gone (an opportunity deleted)
    through: datetime
    links: dict[str, str]  # the kept merge's links, which the patch leaves as they are

    def read(self, store: Store, kind: str, ids: Collection[str] | None = None) -> list[Any]:
        """`Store.canonical_records` as the patch has them."""
        mine = {r.id: r for r in self.records.get(kind, ()) if ids is None or r.id in ids}
        gone = self.dropped.get(kind, set())
        stored = [r for r in store.canonical_records(kind, ids) if r.id not in mine and r.id not in gone]
        return sorted([*stored, *mine.values()], key=lambda r: r.id)

    def save(self, store: Store) -> None:
        store.patch_identity(self.records, self.dropped, self.through)

    def __len__(self) -> int:
        return sum(map(len, self.records.values())) + sum(map(len, self.dropped.values()))


def merge_what_changed(store: Store, through: datetime | None) -> IdentityPatch | None:
    """The last merge kept in the store brought up to `through` by merging only the groups that
    changed: when every person and account stored since reads as it did to identity then
    (`identity_key`: the same email, account, cross-ids, domain), none was added, deleted or
    quarantined, and the changed people and accounts are at most `PARTIAL_MERGE_SHARE` of the links,
    every link and conflict stays as it was, and only the changed groups' canonical records (and the
    changed opportunities) are merged again from their members, as `resolve_identity` would merge
    them. None when the merge stays as it is (nothing changed) or the store must be merged whole."""
    merged = store.kept_identity()
    if merged is None or through is None:
        return None
    rows = store.rows_changed_since(merged, IDENTITY_KINDS)
    changed = {(kind, rid) for kind, rid, live in rows if kind != "opportunities"}
    if not rows or any(not live for kind, _rid, live in rows if kind != "opportunities"):
        return None
    links = store.identity_links()
    if len(changed) > PARTIAL_MERGE_SHARE * len(links) or any(rid not in links for _kind, rid in changed):
        return None  # many changed, or a record is new: merge the store
    groups = {kind: {links[rid] for k, rid in changed if k == kind} for kind in ("people", "accounts")}
    members = store.linked_to(groups["people"] | groups["accounts"])
    account_links = {rid: canonical for rid, canonical in links.items() if incremental.is_account(rid)}
    person_links = {rid: canonical for rid, canonical in links.items() if not incremental.is_account(rid)}
    domain_ids = {canonical.removeprefix("account:"): canonical for canonical in set(account_links.values())
                  if canonical.startswith("account:")}
    emails = {p.id: p.email for p in store.canonical_records("people", groups["people"])}
    keys = store.identity_keys(rid for _kind, rid in changed)
    merged_records: dict[str, list[Any]] = {"people": [], "accounts": []}
    for kind in ("people", "accounts"):
        # each group's members, the changed ones among them, read once
        ids = [rid for group in groups[kind] for rid in members.get(group, ())]
        records, invalid = store.records_by_id(kind, ids)
        if invalid or len(records) != len(ids):
            return None
        if any(keys.get(r.id) != identity_key(r) for r in records if (kind, r.id) in changed):
            return None  # something identity reads changed (or was never kept): merge the store
        by_group: dict[str, list[Any]] = {}
        for record in records:
            by_group.setdefault(links[record.id], []).append(record)
        for group in sorted(groups[kind]):
            of_group = by_group.get(group, [])
            one = (merge_person_group(group, emails.get(group), of_group, account_links, domain_ids)
                   if kind == "people" else merge_account_group(group, of_group))
            if one is None:
                return None
            merged_records[kind].append(one)
    deals = {rid for kind, rid, _live in rows if kind == "opportunities"}
    opportunities, _invalid = store.records_by_id("opportunities", deals)  # an invalid one is dropped
    merged_records["opportunities"] = [repoint_opportunity(o, account_links, person_links)
                                       for o in opportunities]
    dropped = deals - {o.id for o in opportunities}
    log.info("identity: merged again only the %d people and %d accounts that changed, and %d "
             "opportunities (nothing identity reads changed)", len(merged_records["people"]),
             len(merged_records["accounts"]), len(deals))
    return IdentityPatch(merged_records, {"opportunities": dropped}, through, links)


PARTIAL_MERGE_SHARE = 0.2  # past this share of the links changed, merging the whole store costs less


def _keep_identity(workspace: Workspace, patch: IdentityPatch | None = None) -> Resolved | None:
    """The last merge's links and canonical opportunities (with `patch`, that merge with the changed
    groups merged again), and who belongs to which account (not the people and accounts themselves:
    `only_what_changed` reads those it needs); None when that merge no longer holds (something it
    read was stored since and no patch covers it, or there is none)."""
    store = workspace.runtime.store
    merged = store.kept_identity()
    if merged is None or (patch is None and store.changed_kinds_since(merged) & IDENTITY_KINDS):
        return None
    links = patch.links if patch else store.identity_links()  # a patch read them already
    conflicts = store.identity_conflicts()
    # a patch moves no link, so no person's account and no account id
    kept = KeptIdentity(store.canonical_accounts_of_people(), frozenset(store.canonical_ids("accounts")),
                        patch)
    opportunities = kept.read(store, "opportunities")
    workspace.identity = IdentityResult(
        people=[], accounts=[], activities=[], opportunities=opportunities, links=links, conflicts=conflicts,
        person_links={rid: canonical for rid, canonical in links.items() if not incremental.is_account(rid)})
    others = store.load_records(skip=IDENTITY_KINDS | {"activities"})
    workspace.dataset = Dataset(opportunities=opportunities, campaigns=others.campaigns, assets=others.assets,
                                owners=others.owners, contact_roles=others.contact_roles)
    workspace.values[KEPT] = kept
    if patch is None:
        log.info("identity: kept from the last merge (%d people, %d accounts; nothing it read changed "
                 "since)", len(kept.people), len(kept.accounts))
    return Resolved(len(kept.people), len(kept.accounts), len(conflicts), 0)


@dataclass(frozen=True, slots=True)
class KeptIdentity:
    """Of the last merge kept in the store: each canonical person's account, and the accounts."""

    people: dict[str, str | None]
    accounts: frozenset[str]
    patch: IdentityPatch | None = None  # the groups a change touched, merged again

    def read(self, store: Store, kind: str, ids: Collection[str] | None = None) -> list[Any]:
        """The kept canonical records of one kind (`Store.canonical_records`), patched."""
        return self.patch.read(store, kind, ids) if self.patch else store.canonical_records(kind, ids)

    @property
    def how(self) -> str:
        """`Rescoring.identity`: "kept", or "changed" when the changed groups were merged again."""
        return "changed" if self.patch else "kept"


IDENTITY_KINDS = frozenset({"people", "accounts", "opportunities"})  # what identity merges
MERGED_THROUGH = "merged through"  # workspace value: the stored time the run's records were read at
KEPT = "kept identity"  # workspace value: the run keeps the last merge (`KeptIdentity`)
KEYS = "identity keys"  # workspace value: what identity read of each record it merged (`identity_key`)
DUE = "due"  # workspace value: the run records when each card is next due (an hourly sync)
PERSONS = "persons"  # workspace value: the CRM person ids whose activities the run reads (it rescores a part)


@dataclass(frozen=True, slots=True)
class Rescoring:
    """Whom an hourly run rescores: everyone (`everyone`, and why), or the people the change since
    the last hourly run touches (`sync.incremental`), counted by reason."""

    people: int
    of: int
    everyone: bool
    why: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    # or "kept": the last merge held (no person, account or opportunity changed); or "changed": it held
    # with the groups that changed merged again (nothing identity reads changed)
    identity: str = "merged"


def only_what_changed(key: str, now: datetime, min_change: float, everyone: bool = False) -> Rescoring:
    """Narrow the run to the people the change since the last hourly run touches, and the people
    whose score came due (`sync.incremental`); or keep everyone, when something every score reads
    changed (or `everyone`). Either way the run records when each card it scores is next due, and
    `save_scores` records the run as the last hourly one."""
    workspace = get(key)
    runtime, dataset = workspace.runtime, workspace.need("dataset")
    store = runtime.store
    expected = incremental.fingerprint(runtime.playbook, runtime.mapping, min_change)
    through = store.stored_through()
    workspace.values[DUE] = {"fingerprint": expected, "through": through.isoformat() if through else None,
                             "run_id": key}
    state = store.load_assignment_state(incremental.STATE)
    why = "asked to rescore everyone" if everyone else incremental.why_everyone(state, expected)
    identity = workspace.need("identity")
    kept: KeptIdentity | None = workspace.values.get(KEPT)
    found: incremental.Touched | str = why or incremental.touched(
        store, identity, state, now, identity.links if kept else None)
    total = len(kept.people) if kept else len(dataset.people)
    if isinstance(found, str):
        if kept:  # everyone, as the kept merge has them
            dataset.people = kept.read(store, "people")
            dataset.accounts = kept.read(store, "accounts")
        workspace.values[DUE]["everyone"] = True
        if not workspace.previous:
            workspace.previous = pipeline.last_scores(store)
        log.info("rescoring all %d people: %s", total, found)
        return Rescoring(total, total, True, found, identity=kept.how if kept else "merged")
    stored = store.latest_scorecards_json(found.people)
    previous = pipeline.scorecards_from_stored(stored, reasons=False)
    part = incremental.widen(found, dataset, {pid: card.account_id for pid, card in previous.items()},
                             **({"members": kept.people, "account_ids": kept.accounts,
                                 "read": partial(kept.read, store)} if kept else {}))
    in_part = {p.id for p in part.people}
    workspace.values[DUE]["forget"] = sorted(found.people - in_part)
    previous.update(pipeline.scorecards_from_stored(
        store.latest_scorecards_json(in_part - set(previous)), reasons=False))
    workspace.previous = {pid: card for pid, card in previous.items() if pid in in_part}
    workspace.dataset = part
    workspace.values[PERSONS] = incremental.crm_persons(identity.person_links, in_part)
    log.info("rescoring %d of %d people: %s", len(part.people), total,
             ", ".join(f"{n} {why}" for why, n in found.counts.items() if n) or "nothing changed or came due")
    return Rescoring(len(part.people), total, False, "", dict(found.counts), kept.how if kept else "merged")


def partitions_needed(key: str, people_per_partition: int) -> int:
    return pipeline.partitions_for(get(key).need("dataset"), people_per_partition)


def score(key: str, now: datetime) -> Scored:
    """Everyone scored in one pass, the activities read from the store as columns
    (`pipeline.score_from_store` in one partition)."""
    workspace = get(key)
    links = workspace.need("identity").person_links
    workspace.result = pipeline.score_from_store(workspace.runtime.playbook, workspace.runtime.store,
                                                 workspace.need("dataset"), links, now, 1,
                                                 due=DUE in workspace.values,
                                                 persons=workspace.values.get(PERSONS))
    return scored(key)


def score_partition(key: str, index: int, parts: int, now: datetime) -> PartitionScored:
    """One account partition (`pipeline.score_stored_partition`: it reads its own activities); its
    result waits in the workspace until `score_in_partitions` merges it."""
    workspace = get(key)
    partition = workspace.partitions[index]
    links = workspace.need("identity").person_links
    result, had = pipeline.score_stored_partition(workspace.runtime.playbook, workspace.runtime.store,
                                                  partition, links, now)
    workspace.partition_results[index] = (result, had)
    return PartitionScored(index, len(result.cards), len(result.accounts))


ScoreEach = Callable[[str, Sequence[int], int, datetime], None]


def _score_here(key: str, indices: Sequence[int], parts: int, now: datetime) -> None:
    for index in indices:
        score_partition(key, index, parts, now)


def score_in_partitions(key: str, now: datetime, parts: int, score_each: ScoreEach = _score_here,
                        at_once: int = pipeline.PARTITIONS_AT_ONCE) -> Scored:
    """Everyone scored in `parts` account partitions whose activities are still in the store
    (`pipeline.score_from_store`), `at_once` at a time: `score_each(key, indices, parts, now)` runs
    `score_partition` for each index (a flow: one task run each) and returns once they are done,
    each result left in `partition_results`. Partitions scored in other processes (a Dask cluster)
    go all at once; in this process one at a time (`pipeline.PARTITIONS_AT_ONCE` says why)."""
    workspace = get(key)
    dataset, identity = workspace.need("dataset"), workspace.need("identity")
    at_once = max(1, at_once)

    def run(partitions: Sequence[StoredPartition]) -> Iterator[tuple[ScoringResult, list[Activity]]]:
        workspace.partitions = {p.index: p for p in partitions}
        for start in range(0, len(partitions), at_once):
            indices = [p.index for p in partitions[start:start + at_once]]
            score_each(key, indices, parts, now)
            for index in indices:
                del workspace.partitions[index]
                yield workspace.partition_results.pop(index)

    workspace.result = pipeline.score_from_store(workspace.runtime.playbook, workspace.runtime.store, dataset,
                                                 identity.person_links, now, parts, run=run,
                                                 due=DUE in workspace.values,
                                                 persons=workspace.values.get(PERSONS))
    return scored(key)


def scope_filter(kind: str, values: Iterable[str], dataset: Dataset) -> Callable[[ScoreCard], bool] | None:
    """Which score cards a rescore scope keeps (`kind`: all, accounts, emails, profile or segment);
    None keeps everyone."""
    if kind == "all":
        return None
    wanted = {v.strip().lower() for v in values}
    if kind == "accounts":
        return lambda card: (card.account_id or "").lower() in wanted
    if kind == "emails":
        emails = {p.id: (p.email or "") for p in dataset.people}
        return lambda card: emails.get(card.person_id, "") in wanted
    if kind == "profile":
        return lambda card: (card.profile or "").lower() in wanted
    segments = {a.id: (a.segment or "").lower() for a in dataset.accounts}
    return lambda card: segments.get(card.account_id or "", "") in wanted


def narrow_to_scope(key: str, kind: str = "all", values: Sequence[str] = ()) -> Scored:
    """Keep only the cards (and their accounts) of a rescore's scope; the run routes, plans and saves
    only those."""
    workspace = get(key)
    keep = scope_filter(kind, values, workspace.need("dataset"))
    result = workspace.need("result")
    if keep is not None:
        cards = {pid: c for pid, c in result.cards.items() if keep(c)}
        in_scope = {c.account_id for c in cards.values()}
        accounts = {aid: a for aid, a in result.accounts.items() if aid in in_scope}
        workspace.result = dataclasses.replace(result, cards=cards, accounts=accounts)
    return scored(key)


def scored(key: str) -> Scored:
    workspace = get(key)
    result = workspace.need("result")
    moves = pipeline.tier_changes(result, workspace.previous)
    return Scored(len(result.cards), len(result.accounts), result.model_version, result.tier_counts(),
                  {f"{old or '(new)'} → {new}": n for (old, new), n in sorted(moves.items())})


# -- routing and the plan ----------------------------------------------------------------------------------


def route(key: str, now: datetime) -> Routed | None:
    """Routing's decisions for the run's cards (`pipeline.route`), or None without a routing section."""
    workspace = get(key)
    store = workspace.runtime.store
    state = AssignmentState.from_dict(store.load_assignment_state())
    workspace.routing = pipeline.route(workspace.runtime.playbook, workspace.need("dataset"),
                                       workspace.need("result"), workspace.previous,
                                       pipeline.open_tasks(store), state, now)
    if workspace.routing is None:
        return None
    committees = workspace.routing.accounts
    raised = [a for a in committees if a.task is not None]
    if committees:
        log.info("buying committees: %d accounts meet the committee condition, %d get an account task",
                 len(committees), len(raised))
    return Routed(len(workspace.routing.decisions),
                  {kind.value: n for kind, n in sorted(workspace.routing.report.counts.items())}, len(raised))


def plan_changes(key: str, min_change: float) -> Planned:
    """The write plan of every CRM (`writeback.plan_changes`), in numbers."""
    workspace = get(key)
    dataset = workspace.need("dataset")
    workspace.plans = writeback.plan_changes(workspace.runtime, dataset, workspace.need("result"),
                                             workspace.routing, min_change, part=PERSONS in workspace.values)
    directory = pipeline.routing_directory(workspace.runtime.playbook, dataset)
    counts, parts = {}, {}
    owners: Counter[str] = Counter()
    notes: dict[str, str] = {}
    seen_keys: set[str] = set()  # one task per person and reason, even when it lands in both CRMs
    for crm, plan in workspace.plans.items():
        log.info("plan %s: %d field updates (of %d values), %d tasks to send, %d to look for by key, "
                 "%d there already", crm.value, len(plan.updates), plan.desired_fields, len(plan.tasks),
                 len(plan.confirm), plan.skipped_tasks)
        counts[crm.value] = {"fields": len(plan.updates), "tasks": len(plan.tasks),
                             "tasks_already_there": plan.skipped_tasks, "tasks_retried": plan.retried_tasks,
                             "tasks_to_confirm": len(plan.confirm)}
        parts[crm.value] = writeback.write_parts(plan)
        for task in plan.tasks:
            if task.key in seen_keys:
                continue
            seen_keys.add(task.key)
            owners[directory.owner_key_for(task.owner_id) or task.owner_id] += 1
            if task.person_id and len(notes) < 20:
                notes.setdefault(task.person_id, task.body)
    placements = next(iter(workspace.plans.values())).placements if workspace.plans else []  # the run's
    return Planned(counts, parts, dict(owners.most_common()), notes,
                   sorted(p.person_id for p in placements if p.fallback),
                   {p.person_id: p.problem for p in placements if p.problem})


# -- write-back and saving -----------------------------------------------------------------------------------


def save_identity(key: str) -> int:
    """The run's identity links and conflicts into the store; returns how many links."""
    workspace = get(key)
    identity = workspace.need("identity")
    store = workspace.runtime.store
    # Until this run saves its scores, the next hourly run cannot tell what changed since: it rescores
    # everyone (a run that dies between here and `save_scores` leaves it so).
    store.save_assignment_state({}, incremental.STATE)
    kept: KeptIdentity | None = workspace.values.get(KEPT)
    if kept is None:
        values = workspace.values
        pipeline.save_identity(store, identity, values.get(MERGED_THROUGH), values.get(KEYS))
    elif kept.patch is not None:  # the kept merge, with the groups that changed merged again
        kept.patch.save(store)
    return len(identity.links)


def write_plan(key: str, crm: str, part: str) -> WriteStats:
    """One part of one CRM's plan written (`writeback.write_part`): the field updates of one CRM
    object (`Lead`, `contacts`, …) or the tasks (`writeback.TASKS`). The ledger records the run's key
    as the run id."""
    workspace = get(key)
    stats = writeback.write_part(workspace.runtime, workspace.plans[Crm(crm)], part, run_id=key)
    if part == writeback.TASKS:
        log.info("write %s tasks: %d written, %d rejected, %d confirmed, %d unconfirmed", crm,
                 stats.tasks_written, stats.tasks_rejected, stats.tasks_confirmed, stats.tasks_unconfirmed)
    else:
        log.info("write %s %s: %d fields written, %d rejected", crm, part, stats.fields_written,
                 stats.fields_rejected)
    return stats


def save_scores(key: str, now: datetime) -> int:
    """The run's cards become "the last score": those that changed go into the score history, every
    account score and routing's assignment state are saved. Returns the cards saved."""
    workspace = get(key)
    store, result = workspace.runtime.store, workspace.need("result")
    changed = pipeline.changed_cards(result, workspace.previous)
    saved = pipeline.save_scores(store, key, changed, result.accounts.values(), now)
    if workspace.routing is not None:
        store.save_assignment_state(workspace.routing.state.to_dict())  # type: ignore[attr-defined]
    state = workspace.values.get(DUE)
    if state is not None:  # an hourly run: when each card it scored is next due, then the run itself
        store.save_due(result.due, replace_all=bool(state.get("everyone")), forget=state.get("forget", ()))
        store.save_assignment_state({k: state[k] for k in ("fingerprint", "through", "run_id")},
                                    incremental.STATE)
    return saved


# -- what the run shows, by person ------------------------------------------------------------------------


def _name(first: str | None, last: str | None, fallback: str) -> str:
    return " ".join(p for p in (first, last) if p) or fallback


class _Who:
    """Names for CRM record ids: a person's name (and company), an account's name."""

    def __init__(self, dataset: Dataset) -> None:
        accounts = {a.id: a for a in dataset.accounts}
        self.people: dict[str, tuple[str, str, str]] = {}  # record id → (name, email, company)
        for person in dataset.people:
            account = accounts.get(person.account_id or "")
            company = person.company_name or (account.name if account else None) or ""
            entry = (_name(person.first_name, person.last_name, person.id), person.email or "", company)
            for _crm, record_id in person_records(person):
                self.people[record_id] = entry
            for record_id in (person.salesforce_lead_id, person.salesforce_contact_id):
                if record_id:
                    self.people.setdefault(record_id, entry)
        self.accounts = {record_id: a.name or a.id for a in dataset.accounts
                         for record_id in (a.salesforce_id, a.hubspot_id) if record_id}

    def of(self, record_id: str) -> tuple[str, str, str]:
        """(name, email, company) of a record; an account's name stands as both name and company."""
        if record_id in self.people:
            return self.people[record_id]
        if record_id in self.accounts:
            return self.accounts[record_id], "", self.accounts[record_id]
        return record_id, "", ""


def change_rows(key: str, limit: int = 500) -> list[dict[str, str]]:
    """The dry run's listing, by person: who (name, email), which field (old → new), and each task
    that would be created; up to `limit` rows per CRM. `record` keeps the CRM record id for the
    terminal's listing."""
    workspace = get(key)
    who = _Who(workspace.need("dataset"))
    every: list[dict[str, str]] = []
    for crm, plan in workspace.plans.items():
        crm_mapping = getattr(workspace.runtime.mapping, crm.value)
        namer = mapped_fields(crm_mapping.owned_person, crm_mapping.owned_account)
        ledger = workspace.runtime.store.ledger(crm.value)
        rows: list[dict[str, str]] = []
        for update in plan.updates[:limit]:
            name, email, _company = who.of(update.record_id)
            crm_field = namer(update)
            old = ledger.get((update.record_id, crm_field), "(never written)")
            rows.append({"crm": crm.value, "person": name, "email": email, "record": update.record_id,
                         "field": crm_field, "old": old, "new": ledger_text(update.value)[:120]})
        for task in plan.tasks[:max(0, limit - len(rows))]:
            record = task.person_record_id or task.account_record_id or ""
            name, email, _company = who.of(record)
            rows.append({"crm": crm.value, "person": name, "email": email, "record": record,
                         "field": "new task", "old": "",
                         "new": f"{task.subject} (due {task.due_date}, {task.priority.value})"})
        every += rows
    return every


def tier_change_rows(key: str, limit: int = 500) -> list[dict[str, str]]:
    """Who changed tier, best new tier and highest score first: name, company, old → new tier and the
    reason that counted most."""
    workspace = get(key)
    dataset, result = workspace.need("dataset"), workspace.need("result")
    accounts = {a.id: a for a in dataset.accounts}
    people = {p.id: p for p in dataset.people}
    rows = []
    for card in result.ranked():
        old = workspace.previous[card.person_id].tier if card.person_id in workspace.previous else ""
        if old == card.tier:
            continue
        person = people.get(card.person_id)
        account = accounts.get(card.account_id or "")
        company = (person.company_name if person else None) or (account.name if account else None) or ""
        rows.append({"name": _name(person.first_name, person.last_name, card.person_id) if person
                     else card.person_id,
                     "company": company, "old tier": old or "(new)", "new tier": card.tier,
                     "score": f"{card.score:.0f}", "top reason": reasons_text(card.reasons, card.disqualified,
                                                                              top=1)})
        if len(rows) >= limit:
            break
    return rows


@dataclass(frozen=True, slots=True)
class TopTierMove:
    """A person the run moved into the playbook's top tier, as a rep knows them: name, company, the
    CRM record they are best known by (a Salesforce Contact, then Lead, then HubSpot contact) and
    their owner. No email, and not the canonical id, which may hold one."""

    name: str
    company: str
    old_tier: str  # "" for someone scored for the first time
    tier: str
    score: float
    top_reason: str
    crm: str
    record_id: str
    owner_id: str  # routing's owner key (a rep's email, a queue's id), else the CRM user id; "" for none
    owner_name: str
    account_crm: str = ""
    account_record_id: str = ""


class _Owners:
    """Names an owner by routing's owner key (a rep's email, a queue's id) where routing knows them,
    so a rep is the same owner whether routing picked them or the CRM already had them."""

    def __init__(self, runtime: Runtime, dataset: Dataset) -> None:
        self.directory = pipeline.routing_directory(runtime.playbook, dataset)
        self.crm_names = {o.crm_id or o.id.split(":", 1)[-1]: o.name for o in dataset.owners if o.name}
        self.names = {o.email.lower(): o.name for o in dataset.owners if o.email and o.name}
        section = runtime.playbook.routing
        if section is not None:
            self.names |= {section.owner_key(r.email): r.name for r in section.reps}
            self.names |= {q.id: q.name for q in section.queues}

    def of(self, routed: str | None, crm_owner_id: str | None) -> tuple[str, str]:
        """(owner id, name): routing's owner when it named one, else the person's owner in the CRM."""
        key = routed or (self.directory.owner_key_for(crm_owner_id) if crm_owner_id else None)
        if key:
            return key, self.names.get(key, key)
        if crm_owner_id:
            return crm_owner_id, self.crm_names.get(crm_owner_id, crm_owner_id)
        return "", ""


def top_tier_moves(key: str) -> list[TopTierMove]:
    """Everyone the run moved into the playbook's top tier, from a lower tier or scored for the first
    time, highest score first."""
    workspace = get(key)
    top, result, previous = workspace.runtime.playbook.top_tier, workspace.need("result"), workspace.previous
    cards = sorted((c for c in result.cards.values()
                    if c.tier == top and (c.person_id not in previous or previous[c.person_id].tier != top)),
                   key=lambda c: (-c.score, c.person_id))
    if not cards:
        return []
    dataset = workspace.need("dataset")
    people, accounts = {p.id: p for p in dataset.people}, {a.id: a for a in dataset.accounts}
    owners = _Owners(workspace.runtime, dataset)
    routed = workspace.routing.by_person() if workspace.routing is not None else {}
    moves = []
    for card in cards:
        person = people.get(card.person_id)
        records = person_records(person) if person is not None else []
        if person is None or not records:  # a pulled person always has a record; without one, no name
            continue
        decision = routed.get(card.person_id)
        owner = owners.of(decision.owner if decision else None, person.owner_id)
        old = previous[card.person_id].tier if card.person_id in previous else ""
        account = accounts.get(card.account_id or "")
        moves.append(_top_tier_move(card, old, person, records[0], account, owner))
    return moves


def _top_tier_move(card: ScoreCard, old_tier: str, person: Person, record: tuple[Crm, str],
                   account: Account | None, owner: tuple[str, str]) -> TopTierMove:
    account_crm, account_record_id = _account_record(account)
    return TopTierMove(
        name=_name(person.first_name, person.last_name, record[1]),
        company=person.company_name or (account.name if account else None) or "",
        old_tier=old_tier, tier=card.tier, score=round(card.score, 1),
        top_reason=reasons_text(card.reasons, card.disqualified, top=1),
        crm=record[0].value, record_id=record[1], owner_id=owner[0], owner_name=owner[1],
        account_crm=account_crm, account_record_id=account_record_id)


def _account_record(account: Account | None) -> tuple[str, str]:
    if account is None:
        return "", ""
    if account.salesforce_id:
        return Crm.SALESFORCE.value, account.salesforce_id
    return (Crm.HUBSPOT.value, account.hubspot_id) if account.hubspot_id else ("", "")


def rejected_rows(key: str, writes: Sequence[WriteStats], unplaced: dict[str, str] | None = None,
                  limit: int = 500) -> list[dict[str, str]]:
    """Every write the CRMs refused (and every routed person no CRM could take a task for), by
    person: CRM, object, who, company, what and the CRM's reason."""
    rejections = [(w.crm, r) for w in writes for r in w.rejections]
    if not rejections and not unplaced:
        return []
    workspace = get(key)
    who = _Who(workspace.need("dataset"))
    rows = []
    for crm, rejection in rejections[:limit]:
        record_id, _, what = rejection.target.partition(" ")
        name, _email, company = who.of(record_id)
        rows.append({"crm": crm, "object": rejection.object_type, "who": name, "company": company,
                     "what": what if rejection.kind == "field" else "task", "reason": rejection.reason[:300]})
    people = {p.id: p for p in workspace.need("dataset").people}
    for person_id, why in list((unplaced or {}).items())[:max(0, limit - len(rows))]:
        person = people.get(person_id)
        name = _name(person.first_name, person.last_name, person_id) if person else person_id
        company = (person.company_name or "") if person else ""
        rows.append({"crm": "-", "object": "task", "who": name, "company": company, "what": "task",
                     "reason": f"no CRM can take the task: {why}"[:300]})
    return rows

