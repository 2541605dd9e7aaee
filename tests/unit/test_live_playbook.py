"""Which playbook a run scores with (sync/live.py), on a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadloop.playbooks import resolve
from leadloop.store.db import open_store
from leadloop.sync.live import PlaybookNotLive, choose_playbook, record_activation

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture()
def store(tmp_path: Path):
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        yield opened


def test_the_first_writing_run_makes_its_playbook_live_and_later_syncs_score_with_it(store):
    first = choose_playbook(store, None, kind="hourly_sync")
    assert (first.source, first.activate, first.preview) == ("semiconductor", True, False)
    made = record_activation(store, first, run_id="r1", by="ops@host", now=T0)
    assert made is not None and store.live_playbook().model_version == first.playbook.model_version
    assert store.live_playbook().reason == "first run of this store"

    later = choose_playbook(store, None, kind="hourly_sync")
    assert (later.source, later.activate, later.preview) == ("live", False, False)
    assert later.playbook.model_version == first.playbook.model_version
    assert record_activation(store, later, run_id="r2") is None  # nothing new is recorded
    assert len(store.playbook_history()) == 1


def test_a_read_only_run_on_a_new_store_makes_nothing_live(store):
    review = choose_playbook(store, None, kind="model_review")
    assert not review.activate and record_activation(store, review, run_id="r0") is None
    assert store.live_playbook() is None


def test_a_sync_naming_another_playbook_is_refused_with_what_to_do(store):
    record_activation(store, choose_playbook(store, "semiconductor", kind="hourly_sync"), run_id="r1", now=T0)
    with pytest.raises(PlaybookNotLive) as refused:
        choose_playbook(store, "industrial", kind="hourly_sync")
    message = str(refused.value)
    assert "the live playbook is 'Voltaris Semiconductor" in message and "2026-11-02 09:00 UTC" in message
    assert "leadloop rescore --playbook industrial --activate" in message
    # naming the live playbook itself is fine
    assert not choose_playbook(store, "semiconductor", kind="hourly_sync").preview


def test_a_rescore_with_another_playbook_is_a_preview_unless_it_activates_it(store):
    record_activation(store, choose_playbook(store, None, kind="hourly_sync"), run_id="r1", now=T0)
    live_before = store.live_playbook().model_version

    preview = choose_playbook(store, "industrial", kind="rescore")
    assert (preview.preview, preview.activate) == (True, False)
    assert record_activation(store, preview, run_id="r2") is None
    assert store.live_playbook().model_version == live_before  # nothing live changed

    activated = choose_playbook(store, "industrial", kind="rescore", activate=True)
    assert (activated.preview, activated.activate) == (False, True)
    record_activation(store, activated, run_id="r3", by="rev@ops", reason="Q1 pilot weights")
    live = store.live_playbook()
    assert (live.source, live.run_id, live.activated_by, live.reason) == ("industrial", "r3", "rev@ops",
                                                                          "Q1 pilot weights")
    # the next hourly sync keeps the new playbook
    assert choose_playbook(store, None, kind="hourly_sync").playbook.model_version == live.model_version


def test_the_live_playbook_is_its_stored_text_not_whatever_the_file_says_now(store, tmp_path):
    mine = tmp_path / "mine.yaml"  # the shipped playbook with one weight changed
    mine.write_text(resolve("semiconductor").read_text().replace("points: 20", "points: 25", 1))
    record_activation(store, choose_playbook(store, str(mine), kind="hourly_sync"), run_id="r1")
    version = store.live_playbook().model_version
    shipped = choose_playbook(store, "semiconductor", kind="rescore").playbook.model_version
    assert version != shipped
    mine.unlink()  # gone from this worker altogether
    chosen = choose_playbook(store, None, kind="hourly_sync")
    assert (chosen.playbook.model_version, chosen.source) == (version, "live")
