"""Machine email activity: opens and clicks made by link scanners and privacy proxies, not people.

Corporate mail gateways (Microsoft Defender Safe Links, Proofpoint URL Defense, Mimecast URL
Protect, Barracuda, Cisco Secure Email) follow every link of an incoming message to check it before
or as it is delivered, and render it, which loads the open pixel; Apple Mail Privacy Protection and
similar proxies fetch the pixel of every message on delivery, read or not. Their "opens" and
"clicks" arrive as ordinary email events and read as intent ("+24 clicked through a marketing
email"). Senders' own audits describe what gives them away (sources: the `pages` corpus of the tool
library, e.g. "Bot clicks from security scanners: a field guide", check.live-direct-marketing.online;
Arternal's "clickthroughs triggered by email security scanners"; MetaCompliance's "is a click genuine
or caused by scanning software"; Word to the Wise and Cleanbox on Apple MPP): every link of a message
clicked together, within seconds; clicks a few seconds after delivery ("humans are not that fast",
5 s is the audit's cut-off); clicks minutes or hours later are people. Our events carry no delivery
time, user agent or IP, so the first event of an email (the scanner's render, the proxy's fetch)
stands in for delivery, and time gaps are all there is to go on.

An activity is dropped, with the first reason that applies, when it is:
- `link_sweep`: in a burst of one person's events of one email (each within `SWEEP_GAP_SECONDS`,
  30 s, of the one before) in which two or more different links were clicked: the whole burst,
  its opens too. Scanners click link after link within seconds (2–20 s in the sandbox's model);
  a person who reads, returns to the mail and picks another link takes a minute or more, and that
  stays human;
- `instant_click`: a click `INSTANT_CLICK_SECONDS` (5 s) or less after the email's first event (a
  click at the very moment of the first event is kept: an ESP that cannot load images records the
  open together with a person's click);
- `open_burst`: one of `OPEN_BURST_MIN` (3) or more opens of one person within
  `OPEN_BURST_SECONDS` (10 s) of each other, of any emails: nobody reads three messages in ten
  seconds, a proxy fetching a mailbox does. Two opens close together (a preview pane, then the
  message) stay human.

Pure: activities (columns, or records) in, the kept ones and counts out. An email is its campaign
(id, else name); events without a campaign form one email per person. Everything but email opens
and clicks passes through.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any, overload

import numpy as np

from leadloop.crm.activity_columns import ActivityColumns
from leadloop.crm.records import Activity, ActivityKind

SWEEP_GAP_SECONDS = 30.0
INSTANT_CLICK_SECONDS = 5.0
OPEN_BURST_SECONDS = 10.0
OPEN_BURST_MIN = 3

LINK_SWEEP = "link_sweep"
INSTANT_CLICK = "instant_click"
OPEN_BURST = "open_burst"
REASONS: dict[str, str] = {  # short: a data-quality report shows them in one line with examples
    LINK_SWEEP: f"several links of one email clicked within {SWEEP_GAP_SECONDS:g} s of each other",
    INSTANT_CLICK: f"a click within {INSTANT_CLICK_SECONDS:g} s of the email's first event",
    OPEN_BURST: f"{OPEN_BURST_MIN}+ opens within {OPEN_BURST_SECONDS:g} s, a burst no person makes",
}

_REASON_CODE = {LINK_SWEEP: 1, INSTANT_CLICK: 2, OPEN_BURST: 3}  # in `REASONS` order
_EMAIL_KINDS = frozenset({ActivityKind.EMAIL_OPEN, ActivityKind.EMAIL_CLICK})


@dataclass(frozen=True, slots=True)
class MachineEmail:
    """Email activity dropped as machine-made: how many, by reason (`REASONS`), how many people it
    touched, and a few examples (person ids and campaigns, never an address)."""

    total: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    people: int = 0
    examples: tuple[str, ...] = ()
    # every dropped activity's reason, by activity id: for merging and for tests, not for display
    reasons: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def merged(cls, parts: Iterable[MachineEmail], examples: int = 5) -> MachineEmail:
        """Several results' counts as one (partitions hold disjoint people)."""
        parts = list(parts)
        by_reason: Counter[str] = Counter()
        for part in parts:
            by_reason.update(part.by_reason)
        return cls(
            total=sum(p.total for p in parts), by_reason=dict(sorted(by_reason.items())),
            people=sum(p.people for p in parts),
            examples=tuple(sorted(e for p in parts for e in p.examples))[:examples],
            reasons={k: v for p in parts for k, v in p.reasons.items()},
        )


@overload
def filter_machine_email(activities: ActivityColumns, examples: int = 5
                         ) -> tuple[ActivityColumns, MachineEmail]: ...


@overload
def filter_machine_email(activities: Sequence[Activity], examples: int = 5
                         ) -> tuple[Sequence[Activity], MachineEmail]: ...


def filter_machine_email(activities: ActivityColumns | Sequence[Activity], examples: int = 5
                         ) -> tuple[ActivityColumns | Sequence[Activity], MachineEmail]:
    """(the activities a person made, what was dropped): the given activities themselves when nothing
    is dropped, else the same kind (columns, or a new list) in the same order without the
    machine-made email events."""
    columns = (activities if isinstance(activities, ActivityColumns)
               else ActivityColumns.from_records(activities))
    keep, found = machine_made(columns, examples)
    if keep is None:
        return activities, found
    if isinstance(activities, ActivityColumns):
        return activities.take(keep), found
    return list(compress(activities, keep.tolist())), found


def machine_made(columns: ActivityColumns, examples: int = 5) -> tuple[np.ndarray | None, MachineEmail]:
    """Which activities a person made (a mask; None when all of them) and what was dropped.

    On arrays: a scoring run passes millions of activities through here, a third of them email."""
    keys = columns.keys
    email_key = np.array([k[0] in _EMAIL_KINDS for k in keys], dtype=bool)
    click_key = np.array([k[0] == ActivityKind.EMAIL_CLICK for k in keys], dtype=bool)
    positions = np.flatnonzero(email_key[columns.key]) if len(keys) else np.zeros(0, dtype=np.int64)
    if not len(positions):
        return None, MachineEmail()
    events = _Events(columns, positions)
    n = len(positions)
    person = columns.person[positions]
    campaign, campaigns = _codes(events.campaigns())
    email = person * len(campaigns) + campaign  # one number per (person, campaign), not dense
    ts = columns.seconds()[positions]
    is_click = click_key[columns.key[positions]]
    reason = np.zeros(n, dtype=np.int8)

    # link sweeps: bursts of one email's events, two or more links clicked in one
    burst = _bursts(email, ts, SWEEP_GAP_SECONDS)
    clicks = np.nonzero(is_click)[0]
    link, links = _codes(events.link(j) for j in clicks.tolist())
    clicked = np.unique(burst[clicks] * max(1, len(links)) + link) // max(1, len(links))
    distinct_links = np.bincount(clicked, minlength=int(burst.max()) + 1)
    reason[distinct_links[burst] >= 2] = _REASON_CODE[LINK_SWEEP]

    # instant clicks: after the email's first event, by no more than a person's reaction time
    _, dense = np.unique(email, return_inverse=True)
    dense = dense.reshape(-1)
    first = np.full(int(dense.max()) + 1, np.inf)
    np.minimum.at(first, dense, ts)
    after = ts - first[dense]
    instant = (reason == 0) & is_click & (after > 0) & (after <= INSTANT_CLICK_SECONDS)
    reason[instant] = _REASON_CODE[INSTANT_CLICK]
    cluster = burst.copy()  # what an example line describes: a sweep, one instant click, an open burst
    cluster[instant] = -1 - np.nonzero(instant)[0]

    # open bursts: a person's remaining opens, of any email, close together
    opens = np.nonzero((reason == 0) & ~is_click)[0]
    if len(opens):
        open_burst = _bursts(person[opens], ts[opens], OPEN_BURST_SECONDS)
        crowded = np.bincount(open_burst)[open_burst] >= OPEN_BURST_MIN
        reason[opens[crowded]] = _REASON_CODE[OPEN_BURST]
        cluster[opens[crowded]] = open_burst[crowded] + n

    dropped = np.nonzero(reason)[0]
    if not len(dropped):
        return None, MachineEmail()
    keep = np.ones(len(columns), dtype=bool)
    keep[positions[dropped]] = False
    names = list(_REASON_CODE)
    per_code = np.bincount(reason[dropped], minlength=len(names) + 1).tolist()
    counts = {name: per_code[code] for name, code in _REASON_CODE.items() if per_code[code]}
    dropped_people = sorted({columns.persons[k] for k in np.unique(person[dropped]).tolist()})
    return keep, MachineEmail(
        total=len(dropped),
        by_reason=dict(sorted(counts.items())),
        people=len(dropped_people),
        examples=_examples(events, reason, cluster, after, dropped_people[:examples])[:examples],
        reasons={events.id(j): names[reason[j] - 1] for j in dropped.tolist()},
    )


class _Events:
    """The email events among the columns (`positions`), read one field at a time."""

    def __init__(self, columns: ActivityColumns, positions: np.ndarray) -> None:
        self.columns, self.positions = columns, positions.tolist()
        self.key = columns.key[positions].tolist()
        self.campaign = columns.campaign[positions].tolist()

    def id(self, j: int) -> str:
        return self.columns.ids[self.positions[j]]

    def person_id(self, j: int) -> str:
        return self.columns.persons[int(self.columns.person[self.positions[j]])]

    def kind(self, j: int) -> ActivityKind:
        return self.columns.keys[self.key[j]][0]

    def link(self, j: int) -> str:
        """The clicked link: its URL, else the event itself."""
        return self.columns.keys[self.key[j]][1] or self.id(j)

    def micros(self, j: int) -> int:
        return int(self.columns.micros[self.positions[j]])

    def campaigns(self) -> list[str | None]:
        """Which email each event belongs to: its campaign (id, else name)."""
        ids, keys = self.columns.campaign_ids, self.columns.keys
        return [ids[c] or keys[k][3] for c, k in zip(self.campaign, self.key, strict=True)]

    def campaign_of(self, j: int) -> str | None:
        return self.columns.campaign_ids[self.campaign[j]] or self.columns.keys[self.key[j]][3]


def _codes(values: Iterable[Any]) -> tuple[np.ndarray, list[Any]]:
    """Each value's number (in order of first appearance) and the values by number."""
    values = list(values)
    distinct = list(dict.fromkeys(values))
    index = dict(zip(distinct, range(len(distinct)), strict=True))
    return np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values)), distinct


def _bursts(group: np.ndarray, ts: np.ndarray, gap: float) -> np.ndarray:
    """Each event's burst number: a burst is events of one group, each within `gap` s of the one
    before (by time; which of two simultaneous events comes first changes no burst)."""
    order = np.lexsort((ts, group))
    in_order = np.ones(len(order), dtype=bool)
    in_order[1:] = (np.diff(group[order]) != 0) | (np.diff(ts[order]) > gap)
    burst = np.empty(len(order), dtype=np.int64)
    burst[order] = np.cumsum(in_order) - 1
    return burst


def _examples(events: _Events, reason: np.ndarray, cluster: np.ndarray, after: np.ndarray,
              people: list[str]) -> tuple[str, ...]:
    """One line per dropped cluster (a sweep, an instant click, an open burst) of the first few
    people, sorted."""
    chosen = set(people)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for j in np.nonzero(reason)[0].tolist():
        if events.person_id(j) in chosen:
            groups[(int(reason[j]), int(cluster[j]))].append(j)
    lines = []
    for (code, _), members in groups.items():
        person_id, campaign = events.person_id(members[0]), events.campaign_of(members[0]) or "an email"
        when = sorted(events.micros(j) for j in members)
        seconds = (when[-1] - when[0]) / 1e6
        if code == _REASON_CODE[LINK_SWEEP]:
            links = {events.link(j) for j in members if events.kind(j) == ActivityKind.EMAIL_CLICK}
            lines.append(f"{person_id}: {len(links)} links of {campaign} clicked within {seconds:.0f} s")
        elif code == _REASON_CODE[INSTANT_CLICK]:
            lines.append(f"{person_id}: a click {after[members[0]]:g} s after the first event of {campaign}")
        else:
            lines.append(f"{person_id}: {len(members)} opens within {seconds:.0f} s")
    return tuple(sorted(lines))


__all__ = [
    "INSTANT_CLICK",
    "INSTANT_CLICK_SECONDS",
    "LINK_SWEEP",
    "OPEN_BURST",
    "OPEN_BURST_MIN",
    "OPEN_BURST_SECONDS",
    "REASONS",
    "SWEEP_GAP_SECONDS",
    "MachineEmail",
    "filter_machine_email",
    "machine_made",
]
