"""The state store: what was pulled, who is who, what was scored and what was written.

`open_store(url)` gives a `Store` on SQLite (default `.leadloop/state.db`) or PostgreSQL.
`store.identity` and `store.writeplan` are pure helpers that work without a database.
"""

from store.db import DEFAULT_STORE_URL, open_store, redact
from store.facade import Store, StoreError

__all__ = ["DEFAULT_STORE_URL", "Store", "StoreError", "open_store", "redact"]
