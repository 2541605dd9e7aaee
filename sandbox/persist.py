"""State kept across restarts in DATA_DIR/sandbox.db (SQLite): one JSON blob per part (the core's
metadata, the sessions, each backend's snapshot), written in one transaction. It holds the world's
personal data and the session tokens, so the file is 0600 (and DATA_DIR 0700 when created here)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from leadloop.sandbox.files import make_private_dir, private_file

DB_NAME = "sandbox.db"


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(private_file(path))
    db.execute("CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, body BLOB NOT NULL, saved_at TEXT)")
    return db


def save_state(data_dir: Path, state: dict[str, Any]) -> Path:
    """Replace the stored state with `state`; returns the database path."""
    make_private_dir(data_dir)
    path = data_dir / DB_NAME
    saved_at = datetime.now(UTC).isoformat()
    rows = [
        (name, orjson.dumps(part, option=orjson.OPT_NON_STR_KEYS), saved_at) for name, part in state.items()
    ]
    db = _connect(path)
    try:
        with db:
            db.execute("DELETE FROM state")
            db.executemany("INSERT INTO state (name, body, saved_at) VALUES (?, ?, ?)", rows)
    finally:
        db.close()
    return path


def load_state(data_dir: Path) -> dict[str, Any] | None:
    """The stored state, or None when there is none yet."""
    path = data_dir / DB_NAME
    if not path.exists():
        return None
    try:
        db = _connect(path)
        try:
            rows = db.execute("SELECT name, body FROM state").fetchall()
        finally:
            db.close()
        return {name: orjson.loads(body) for name, body in rows} or None
    except (sqlite3.DatabaseError, orjson.JSONDecodeError) as error:
        raise StateError(f"{path} is not a readable sandbox state database ({error}); move it away to "
                         "start afresh") from None


class StateError(ValueError):
    """The stored state cannot be read."""
