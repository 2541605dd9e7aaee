"""The CRM connectors. Importing the package masks email addresses in the connectors' and the
sync's logs (see redaction.py)."""

from connectors.redaction import install_email_masking

install_email_masking()
