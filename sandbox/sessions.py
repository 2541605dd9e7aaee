"""Bearer tokens for both CRMs, and the sandbox's Salesforce login credentials.

A token is valid, expired (a fault expired every token issued before it) or unknown. Expiry by a
fault is undone when faults are cleared, so a long test session keeps its connection file usable.
A token may belong to a user (a Salesforce session is always some user's); one issued without a
user belongs to the CRM's integration user.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any, Literal

TokenState = Literal["valid", "expired", "unknown"]
CRMS = ("salesforce", "hubspot")


def _new_token(crm: str) -> str:
    if crm == "salesforce":
        # Salesforce session ids start with the org id (00D…), then "!" and an opaque part.
        return "00D" + secrets.token_hex(6).upper()[:12] + "!" + secrets.token_urlsafe(48)
    return "pat-na1-" + secrets.token_hex(16)


class TokenSessions:
    """The tokens the sandbox accepts (implements the `Sessions` seam)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._valid: dict[str, set[str]] = {crm: set() for crm in CRMS}
        self._expired: dict[str, set[str]] = {crm: set() for crm in CRMS}
        self._owners: dict[str, str] = {}  # token -> the CRM user id it belongs to
        self._credentials: dict[str, dict[str, str]] = {
            "salesforce": {
                "username": "admin@leadloop-sandbox.example.com",
                "password": secrets.token_urlsafe(12),
                "security_token": secrets.token_hex(12),
            }
        }

    def issue(self, crm: str, user: str | None = None) -> str:
        """A new valid token for `crm`, belonging to `user` (None: the integration user)."""
        token = _new_token(crm)
        with self._lock:
            self._valid[crm].add(token)
            if user is not None:
                self._owners[token] = user
        return token

    def user_of(self, crm: str, token: str) -> str | None:
        """The user a token belongs to; None for the integration user's (and for unknown tokens)."""
        return self._owners.get(token)

    def is_valid(self, crm: str, token: str) -> bool:
        return token in self._valid.get(crm, ())

    def state(self, crm: str, token: str) -> TokenState:
        if token in self._valid.get(crm, ()):
            return "valid"
        if token in self._expired.get(crm, ()):
            return "expired"
        return "unknown"

    def expire_all(self, crm: str | None = None) -> int:
        """Expire every token issued so far (for one CRM or both); returns how many."""
        n = 0
        with self._lock:
            for name in CRMS if crm is None else (crm,):
                n += len(self._valid[name])
                self._expired[name] |= self._valid[name]
                self._valid[name] = set()
        return n

    def revive_expired(self) -> None:
        """Make tokens expired by a fault valid again (faults cleared)."""
        with self._lock:
            for name in CRMS:
                self._valid[name] |= self._expired[name]
                self._expired[name] = set()

    def credentials(self, crm: str) -> dict[str, str]:
        """Login credentials for `crm` (Salesforce: username, password, security_token), or {}."""
        return dict(self._credentials.get(crm, {}))

    def check_login(self, crm: str, username: str, password: str) -> bool:
        """Salesforce's username-password flow: `password` is the password followed by the security
        token (the token may be left off, as for a trusted IP range)."""
        creds = self._credentials.get(crm)
        if not creds or not secrets.compare_digest(username, creds["username"]):
            return False
        return secrets.compare_digest(password, creds["password"]) or secrets.compare_digest(
            password, creds["password"] + creds["security_token"]
        )

    def first_token(self, crm: str) -> str:
        """A valid token for `crm`, issuing one when none exists (for the connection file)."""
        with self._lock:
            existing = sorted(self._valid[crm])
        return existing[0] if existing else self.issue(crm)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "valid": {crm: sorted(tokens) for crm, tokens in self._valid.items()},
                "expired": {crm: sorted(tokens) for crm, tokens in self._expired.items()},
                "owners": dict(self._owners),
                "credentials": self._credentials,
            }

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._valid = {crm: set(data.get("valid", {}).get(crm, ())) for crm in CRMS}
            self._expired = {crm: set(data.get("expired", {}).get(crm, ())) for crm in CRMS}
            self._owners = dict(data.get("owners") or {})
            self._credentials = data.get("credentials") or self._credentials

    def __repr__(self) -> str:
        counts = {crm: len(tokens) for crm, tokens in self._valid.items()}
        return f"TokenSessions(valid={counts})"
