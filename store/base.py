"""The store's engine and plumbing: read and write transactions, dialect-aware upserts in batches,
JSON of records and scores."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

from pydantic import TypeAdapter
from sqlalchemy import (
    Connection,
    Engine,
    Table,
)
from sqlalchemy.dialects import postgresql, sqlite

from leadloop.store.tables import (
    _BATCH,
    _chunks,
    _Fields,
    _json,
)


class StoreBase:
    """Engine and plumbing shared by every part of the store."""



    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._adapters: dict[type, TypeAdapter[Any]] = {}

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (SQLite takes its write lock up front, so it never fails halfway)."""
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _insert(self, table: Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def _upsert(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                keys: Sequence[str], updates: Mapping[str, Any] | Sequence[str],
                where: Any = None) -> None:
        """executemany of INSERT ... ON CONFLICT (keys) DO UPDATE, in batches.

        `updates` lists columns taken from the new row, or maps columns to SQL expressions built
        from `stmt.excluded` via a callable.
        """
        if not rows:
            return
        stmt = self._insert(table)
        if isinstance(updates, Mapping):
            set_ = {name: (value(stmt) if callable(value) else value) for name, value in updates.items()}
        else:
            set_ = {name: stmt.excluded[name] for name in updates}
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=set_,
                                          where=where(stmt) if callable(where) else where)
        for batch in _chunks(rows, _BATCH):
            conn.execute(stmt, list(batch))

    def _adapter(self, cls: type) -> TypeAdapter[Any]:
        """pydantic's (de)serializer for `cls`, built once per store."""
        adapter = self._adapters.get(cls)
        if adapter is None:
            adapter = self._adapters[cls] = TypeAdapter(cls)
        return adapter

    def _dump(self, record: Any) -> str:
        if isinstance(record, Mapping):
            return json.dumps(record, default=str, separators=(",", ":"))
        return self._adapter(type(record)).dump_json(record).decode()

    def _as_json(self, value: Any) -> tuple[Mapping[str, Any], str]:
        """A score (dataclass or dict) → (its fields, its JSON text). pydantic's serializer is
        far faster than `dataclasses.asdict` + `json.dumps`, which deep-copies every reason."""
        if isinstance(value, Mapping):
            return value, _json(value)
        return _Fields(value), self._adapter(type(value)).dump_json(value).decode()
