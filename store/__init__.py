"""The state store: what was pulled, who is who, what was scored and what was written.

`open_store(url)` gives a `Store` on SQLite (default `.leadloop/state.db`) or PostgreSQL.
`store.writeplan` is a pure helper that works without a database (identity resolution, pure too,
is `crm.identity`).
"""

from leadloop.store.db import DEFAULT_STORE_URL, open_store, redact
from leadloop.store.facade import Store, StoreError

__all__ = ["DEFAULT_STORE_URL", "Store", "StoreError", "open_store", "redact"]
