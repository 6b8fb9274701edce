"""Email: queue into the outbox inside the caller's transaction (`outbox`); deliver later,
reliably (`delivery`, whose steps tests and benchmarks import from it). Callers write
`from familylink.services import mail`."""

from familylink.services.mail.delivery import (
    CONSENT_CHECK,
    send_pending,
)
from familylink.services.mail.outbox import (
    SUBJECTS,
    Attachment,
    Queued,
    cancel_pending,
    external_url,
    failed_emails,
    outbox_counts,
    queue_email,
    queue_many,
    retry_failed,
)

__all__ = [
    "CONSENT_CHECK",
    "SUBJECTS",
    "Attachment",
    "Queued",
    "cancel_pending",
    "external_url",
    "failed_emails",
    "outbox_counts",
    "queue_email",
    "queue_many",
    "retry_failed",
    "send_pending",
]
