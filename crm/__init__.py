"""Shared vocabulary: canonical records, CRM changes and the connector ports."""
