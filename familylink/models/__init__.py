"""Every model, imported here so Alembic and the app see the whole schema."""

from familylink.models.accounts import AccountToken, Program, Role, TokenPurpose, User
from familylink.models.audit import AuditEvent
from familylink.models.consent import (
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    ExpiryKind,
    FamilyLink,
    Scope,
)
from familylink.models.mail import OutboxEmail, OutboxStatus
from familylink.models.security import RecoveryCode, UserSession

__all__ = [
    "AccountToken",
    "AuditEvent",
    "ClosureReason",
    "ConsentClosure",
    "ConsentRecord",
    "ExpiryKind",
    "FamilyLink",
    "Scope",
    "OutboxEmail",
    "OutboxStatus",
    "Program",
    "Role",
    "TokenPurpose",
    "User",
    "RecoveryCode",
    "UserSession",
]
