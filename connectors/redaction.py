"""Email addresses out of leadloop's logs: `mask_emails` and the logging filter that applies it.

A sync logs rejected records and the CRMs' own error messages, and both may quote an address
(`not an email address: 'jane.doe@'`, `INVALID_EMAIL_ADDRESS: bob@acme.com`). The filter masks each
local part to its first character (`j***@acme-semi.com`): the domain stays, since it is what
lead-to-account matching works by and what an operator needs to find the record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# a local part right before an @, whether or not a valid domain follows it
_LOCAL_PART = re.compile(r"(?<![\w.%+-])([\w%+-])[\w.%+-]*@")

MASKED_LOGGERS = ("leadloop.connectors.salesforce", "leadloop.connectors.hubspot", "leadloop.sync")


def mask_emails(text: str) -> str:
    """`text` with every email's local part cut to its first character and `***`."""
    return _LOCAL_PART.sub(r"\1***@", text)


class EmailMaskingFilter(logging.Filter):
    """Rewrites each record's message with its emails masked (the arguments are merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_emails(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_email_masking(names: Iterable[str] = MASKED_LOGGERS) -> None:
    """Attach the filter to each named logger once (a filter on a logger sees only its own records)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, EmailMaskingFilter) for f in logger.filters):
            logger.addFilter(EmailMaskingFilter())
