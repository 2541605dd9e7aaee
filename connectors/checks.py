"""What `leadloop crm check` reports: one line per thing checked, with how to fix what is missing.
Declared with the setup port in `crm.ports`; named here too for the code that reads the report."""

from __future__ import annotations

from leadloop.crm.ports import CheckItem

__all__ = ["CheckItem"]
