"""Which playbook a run scores with: the live one, kept in the store, unless the run says otherwise.

The store records every activation (the playbook's text, when, by whom, by which run). Hourly syncs,
data-quality runs and model reviews score with the live playbook, so what a rescore made live is not
undone an hour later by a sync still configured with the old file. A rescore with another playbook is
a preview (computed, shown, nothing written) unless it activates it; then it is live from that run
on. The first writing run of a store makes its playbook (the default one unless named) live.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from datetime import datetime

from leadloop.playbook.load import load_playbook_and_text, parse_playbook
from leadloop.playbook.model import Playbook
from leadloop.playbooks import DEFAULT
from leadloop.store.facade import Store
from leadloop.store.models import PlaybookActivation


class PlaybookNotLive(ValueError):
    """A sync was asked to score with a playbook that is not the live one; the message says what to do."""


@dataclass(frozen=True, slots=True)
class PlaybookChoice:
    playbook: Playbook
    text: str
    source: str  # the file or shipped name as given, or "live"
    live: PlaybookActivation | None  # the activation in force before this run
    activate: bool  # this run makes it live (first run of a store, or a rescore told to)
    preview: bool  # another playbook than the live one, not activated: nothing is written

    @property
    def summary(self) -> dict[str, object]:
        """What a run reports about its playbook (all plain values)."""
        return {"name": self.playbook.name, "model_version": self.playbook.model_version,
                "source": self.source, "activated": self.activate, "preview": self.preview,
                "was_live": self.live.model_version if self.live else None}


def describe(activation: PlaybookActivation) -> str:
    when = activation.activated_at.strftime("%Y-%m-%d %H:%M UTC")
    run = f", run {activation.run_id}" if activation.run_id else ""
    return f"{activation.name!r} (model version {activation.model_version}, live since {when}, " \
           f"by {activation.activated_by}{run})"


def choose_playbook(store: Store, requested: str | None, *, kind: str, activate: bool = False,
                    loaded: tuple[Playbook, str] | None = None) -> PlaybookChoice:
    """The playbook a run of `kind` scores with, given what it asked for (`None`: the live one).

    Raises PlaybookNotLive when a sync names another playbook than the live one: a sync never
    changes which playbook is live (a rescore with `activate` does), and scoring with another one
    would rewrite every changed score the next run writes back. `loaded`: the requested playbook,
    already read (`load_playbook_and_text`)."""
    live = store.live_playbook()
    if requested is None and live is not None:
        return PlaybookChoice(parse_playbook(live.text, source=f"the live playbook {live.name!r}"),
                              live.text, "live", live, activate=False, preview=False)
    playbook, text = loaded or load_playbook_and_text(requested or DEFAULT)
    source = requested or DEFAULT
    if live is None:  # the store's first run: what it scores with becomes live if it writes
        return PlaybookChoice(playbook, text, source, None, activate=kind in ("hourly_sync", "rescore"),
                              preview=False)
    if playbook.model_version == live.model_version:
        return PlaybookChoice(playbook, text, source, live, activate=False, preview=False)
    if kind == "rescore":
        return PlaybookChoice(playbook, text, source, live, activate=activate, preview=not activate)
    if kind == "hourly_sync":
        raise PlaybookNotLive(
            f"the live playbook is {describe(live)}; {source!r} (model version "
            f"{playbook.model_version}) is not. A sync scores with the live playbook: leave the playbook "
            f"out, or make {source!r} live with a rescore: leadloop rescore --playbook {source} --activate "
            f"(add --dry-run first to preview what would change)")
    return PlaybookChoice(playbook, text, source, live, activate=False, preview=False)  # read-only runs


def who() -> str:
    """user@host of this process, for the activation record."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def record_activation(store: Store, choice: PlaybookChoice, *, run_id: str | None, reason: str = "",
                      by: str | None = None, now: datetime | None = None) -> PlaybookActivation | None:
    """Make the chosen playbook live when the run activates it; returns the new activation."""
    if not choice.activate:
        return None
    return store.activate_playbook(name=choice.playbook.name, model_version=choice.playbook.model_version,
                                   source=choice.source, text=choice.text, activated_by=by or who(),
                                   run_id=run_id, reason=reason or ("first run of this store"
                                                                    if choice.live is None else ""), now=now)
