"""Opening the state store: an engine tuned for SQLite or PostgreSQL, migrated to the current schema.

SQLite (the default, `.leadloop/state.db`) runs in WAL mode with foreign keys on and a busy
timeout, and leadloop issues its own `BEGIN` so that DDL is transactional and writers take the
write lock up front; its file (and so its -wal and -shm files, which SQLite creates with the same
mode) is readable by its owner alone. PostgreSQL gets a small pre-pinged connection pool.

A URL's password is never logged or shown: every message uses the redacted form. It need not be in
the URL at all: a URL that names a user but no password takes it from `LEADLOOP_STORE_PASSWORD`, so
the URL can travel as a flow parameter (which Prefect stores and shows) and the password cannot.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from datetime import date, datetime
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from leadloop.store.facade import Store, StoreError
from leadloop.store.migrations import SchemaError, migrate

log = logging.getLogger(__name__)

DEFAULT_STORE_URL = "sqlite:///.leadloop/state.db"
STORE_PASSWORD_ENV = "LEADLOOP_STORE_PASSWORD"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


json_dumps = partial(json.dumps, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def redact(url: str | URL) -> str:
    """The URL as it may be shown: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable store URL>"


def parse_store_url(url: str) -> URL:
    """A SQLAlchemy URL from `url`; a bare path means a SQLite file. Raises StoreError when unusable."""
    if "://" not in url:
        url = "sqlite:///" + url
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StoreError("the store URL is not a valid database URL (expected e.g. "
                         "sqlite:///.leadloop/state.db or postgresql+psycopg://user@host/db)") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"unsupported store database {parsed.get_backend_name()!r} in {redact(parsed)}: "
                         "use sqlite:///PATH or postgresql+psycopg://...")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without its password, the password or None). A URL that cannot be parsed is returned
    as it is: opening it reports the problem."""
    try:
        parsed = make_url(url) if "://" in url else None
    except (ArgumentError, ValueError):
        return url, None
    if parsed is None or not parsed.password:
        return url, None
    # URL.set() ignores password=None; the URL is a named tuple, so _replace is its public API
    return parsed._replace(password=None).render_as_string(hide_password=False), str(parsed.password)


def _password_from_environment(url: URL) -> URL:
    """The URL with the password of `LEADLOOP_STORE_PASSWORD` when it names a user but no password
    (what `split_password` leaves, and what a deployment's parameters should hold)."""
    if url.username and url.password is None and (password := os.environ.get(STORE_PASSWORD_ENV)):
        return url.set(password=password)
    return url


def _switch_to_wal(cursor: Any, attempts: int = 200) -> None:
    """WAL mode, which a database keeps once set. Switching a new database takes an exclusive lock
    that SQLite's busy timeout does not wait for, so a second process opening the same new store at
    that moment is told "database is locked" at once: wait for the first to finish instead."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _create_private(path: Path) -> None:
    """Create the store's folder (0700) and empty file (0600) unless they exist, before SQLite opens
    it: scores, emails and the ledger are nobody else's business on a shared machine. An existing
    file keeps its mode (its owner chose it)."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process created it a moment ago
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory:
        _create_private(Path(database).expanduser())
    engine = create_engine(
        url,
        json_serializer=json_dumps,
        connect_args={"check_same_thread": False, "timeout": 30},
        **({"poolclass": StaticPool} if in_memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: leadloop emits BEGIN itself (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        if not in_memory:
            _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: URL) -> Engine:
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
    return create_engine(
        url,
        json_serializer=json_dumps,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def create_store_engine(url: str) -> Engine:
    """An engine for `url` without touching the schema (migrations and tests use it directly)."""
    parsed = _password_from_environment(parse_store_url(url))
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        return _postgres_engine(parsed)
    except NoSuchModuleError:
        raise StoreError(f"no database driver for {redact(parsed)}: install psycopg[binary]") from None
    except OSError as error:
        raise StoreError(f"cannot create the store at {redact(parsed)}: {error.strerror or error}") from None


def open_store(url: str = DEFAULT_STORE_URL) -> Store:
    """Open (creating or upgrading as needed) the state store at `url`.

    Raises StoreError with a message safe to show when the database cannot be reached or used.
    """
    engine = create_store_engine(url)
    shown = redact(engine.url)
    try:
        applied = migrate(engine)
    except SchemaError as error:
        engine.dispose()
        raise StoreError(str(error)) from None
    except SQLAlchemyError as error:
        engine.dispose()
        cause = (str(getattr(error, "orig", None) or error).strip().splitlines() or ["unknown error"])[0]
        if engine.url.password:
            cause = cause.replace(str(engine.url.password), "***")
        raise StoreError(f"cannot open the state store at {shown}: {cause}") from None
    if applied:
        log.info("state store at %s migrated to schema version %s", shown, applied[-1])
    else:
        log.debug("opened state store at %s", shown)
    return Store(engine)
