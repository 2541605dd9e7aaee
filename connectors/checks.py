"""What `leadloop crm check` reports: one line per thing checked, with how to fix what is missing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CheckItem:
    crm: str
    what: str  # e.g. "Lead.LL_Score__c exists and is writable"
    ok: bool
    fix: str | None = None  # e.g. "run `leadloop crm setup`, or deploy metadata/ with your change set"
