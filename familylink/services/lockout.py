"""The soft lockout: too many failed sign-ins (passwords, codes, passwords asked again)
within a while refuse the next, counted from the audit log so every process agrees."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import AuditEvent, User

# The audit actions that count toward the soft lockout (see is_locked_out).
LOCKOUT_ACTIONS = ("auth.sign_in_failed", "mfa.failed", "auth.password_recheck_failed")


def lock_account(user_id: int) -> None:
    """Lock the account's row to the end of the transaction: FOR NO KEY UPDATE on
    PostgreSQL, so rows inserted pointing at the user (audit rows, consents) need not wait;
    SQLite's write lock, held from the start of every action, does it there."""
    db.session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


def is_locked_out(user: User, *, now: datetime) -> bool:
    """True after LOCKOUT_FAILURES failed sign-ins within LOCKOUT_MINUTES (a soft lockout).

    The failures are the audit log's own rows, so every app process sees the same count;
    the lockout lifts by itself when the window has passed, or at a password reset. Each
    caller records a failure after asking, so the account's row stays locked to the end of
    the transaction: a guess racing another is counted after it (else parallel guesses all
    read the same count).
    """
    lock_account(user.id)
    since = now - timedelta(minutes=current_app.config["LOCKOUT_MINUTES"])
    # A reset from an emailed link proves the address: failures before it no longer count.
    last_reset = (
        select(func.max(AuditEvent.at))
        .where(AuditEvent.actor_id == user.id, AuditEvent.action == "auth.password_reset")
        .scalar_subquery()
    )
    failures = db.session.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.actor_id == user.id,
            AuditEvent.action.in_(LOCKOUT_ACTIONS),
            AuditEvent.at > since,
            AuditEvent.at > func.coalesce(last_reset, since),
        )
    )
    return failures >= current_app.config["LOCKOUT_FAILURES"]
