"""Accounts: sign-up, verification, sign-in, password reset and staff/patient invitations.

Anything an anonymous visitor can call answers the same whether or not an address is known,
so nobody can learn through FamilyLink that a person has an account (or is in care).
"""

from __future__ import annotations

from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import Role, TokenPurpose, User
from familylink.services import audit, mailer, tokens
from familylink.services.errors import InvalidToken, ValidationError
from familylink.services.passwords import check_password_rules, hash_password, verify_password
from familylink.services.program import get_program
from familylink.services.timefmt import is_valid_timezone

SIGN_IN_FAILED = "That email and password don't match an account."


def normalize_email(raw: str | None, field: str = "email") -> str:
    """Return the address lower-cased, or raise ValidationError for something that isn't one."""
    raw = (raw or "").strip()
    if not raw:
        raise ValidationError("Enter your email address.", field=field)
    if len(raw) > 254:
        raise ValidationError("That email address is too long.", field=field)
    try:
        valid = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        raise ValidationError("Enter an email address like name@example.com.", field=field)
    return valid.normalized.lower()


def clean_name(raw: str | None, field: str = "name") -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise ValidationError("Enter your name.", field=field)
    if len(name) > 120:
        raise ValidationError("Use at most 120 characters.", field=field)
    if any(ord(ch) < 32 for ch in name):
        raise ValidationError("Use letters, spaces and punctuation only.", field=field)
    return name


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))


def _check_timezone(zone: str | None) -> str:
    if not is_valid_timezone(zone):
        raise ValidationError("Choose your time zone from the list.", field="timezone")
    return zone


def register_family_member(
    *, name: str, email: str, password: str, timezone: str, now: datetime
) -> User | None:
    """Create an unverified family account and email a verification link.

    For an address that already has an account nothing is created; that person gets an
    email saying so instead. The caller shows the same page in both cases.
    """
    name = clean_name(name)
    email = normalize_email(email)
    timezone = _check_timezone(timezone)
    check_password_rules(password, email=email, program_name=get_program().name)
    existing = find_user_by_email(email)
    if existing is not None:
        mailer.queue_email(
            "already_registered",
            to=existing,
            dedupe_key=f"already_registered:{existing.id}:{now:%Y%m%d%H}",
            now=now,
        )
        audit.record("account.register_existing", actor=existing, outcome="ignored", now=now)
        return None
    user = User(
        email=email,
        name=name,
        role=Role.FAMILY,
        timezone=timezone,
        password_hash=hash_password(password),
        created_at=now,
    )
    db.session.add(user)
    db.session.flush()
    send_verification(user, now=now)
    audit.record("account.registered", actor=user, obj=user, now=now)
    return user


def send_verification(user: User, *, now: datetime) -> None:
    tokens.revoke_tokens(TokenPurpose.VERIFY, email=user.email, now=now)
    raw = tokens.issue_token(TokenPurpose.VERIFY, email=user.email, user=user, now=now)
    mailer.queue_email(
        "verify_email",
        to=user,
        dedupe_key=f"verify_email:{user.id}:{raw[:12]}",
        now=now,
        context={"link": mailer.external_url("auth.verify_email", token=raw)},
    )


def verify_email(raw_token: str | None, *, now: datetime) -> User:
    """Mark the address verified; raises InvalidToken for a used, expired or unknown link."""
    token = tokens.consume_token(raw_token, TokenPurpose.VERIFY, now=now)
    user = db.session.get(User, token.user_id)
    if user is None or user.email != token.email:
        raise InvalidToken(tokens.EXPIRED_OR_INVALID)
    user.verified_at = user.verified_at or now
    audit.record("account.verified", actor=user, obj=user, now=now)
    return user


def authenticate(email: str, password: str, *, now: datetime) -> User:
    """Return the user for a correct email and password; raise ValidationError otherwise.

    Unknown address, wrong password, unverified address or disabled account all give the
    same message, and take the same time.
    """
    try:
        address = normalize_email(email)
    except ValidationError:
        address = None
    user = find_user_by_email(address) if address else None
    password_ok = verify_password(user.password_hash if user else None, password or "")
    if user is None or not password_ok or not user.active or user.verified_at is None:
        audit.record(
            "auth.sign_in_failed",
            actor=user,
            outcome="failure",
            detail={"reason": _failure_reason(user, password_ok)},
            now=now,
        )
        raise ValidationError(SIGN_IN_FAILED, field="password")
    audit.record("auth.signed_in", actor=user, now=now)
    return user


def _failure_reason(user: User | None, password_ok: bool) -> str:
    if user is None:
        return "unknown address"
    if not password_ok:
        return "wrong password"
    if not user.active:
        return "disabled"
    return "unverified"


def request_password_reset(email: str, *, now: datetime) -> None:
    """Email a reset link when the address has an active account; otherwise do nothing."""
    try:
        address = normalize_email(email)
    except ValidationError:
        raise
    user = find_user_by_email(address)
    if user is None or not user.active:
        audit.record("auth.reset_requested", outcome="ignored", now=now)
        return
    tokens.revoke_tokens(TokenPurpose.RESET, email=user.email, now=now)
    raw = tokens.issue_token(TokenPurpose.RESET, email=user.email, user=user, now=now)
    mailer.queue_email(
        "password_reset",
        to=user,
        dedupe_key=f"password_reset:{user.id}:{raw[:12]}",
        now=now,
        context={"link": mailer.external_url("auth.reset_password", token=raw)},
    )
    audit.record("auth.reset_requested", actor=user, now=now)


def _set_password_with_token(
    raw_token: str | None, purpose: str, password: str, *, now: datetime
) -> User:
    token = tokens.find_valid_token(raw_token, purpose, now=now)
    user = db.session.get(User, token.user_id)
    if user is None or user.email != token.email or not user.active:
        raise InvalidToken(tokens.EXPIRED_OR_INVALID)
    check_password_rules(password, email=user.email, program_name=get_program().name)
    tokens.consume_token(raw_token, purpose, now=now)
    user.password_hash = hash_password(password)
    # The link came to this address, so following it proves the address.
    user.verified_at = user.verified_at or now
    return user


def reset_password(raw_token: str | None, password: str, *, now: datetime) -> User:
    """Set a new password from a reset link (single use, one hour)."""
    user = _set_password_with_token(raw_token, TokenPurpose.RESET, password, now=now)
    audit.record("auth.password_reset", actor=user, obj=user, now=now)
    return user


def invite_user(
    *,
    role: Role,
    name: str,
    email: str,
    invited_by: User,
    now: datetime,
    timezone: str | None = None,
    therapist: User | None = None,
    episode_start: datetime | None = None,
) -> User:
    """Create a therapist (by an admin) or a patient (by a therapist) and email an invitation."""
    name = clean_name(name)
    email = normalize_email(email)
    if find_user_by_email(email) is not None:
        raise ValidationError("An account with this email address already exists.", field="email")
    program = get_program()
    user = User(
        email=email,
        name=name,
        role=role,
        timezone=timezone or program.timezone,
        therapist_id=therapist.id if therapist else None,
        episode_start=episode_start,
        created_at=now,
    )
    db.session.add(user)
    db.session.flush()
    raw = tokens.issue_token(TokenPurpose.INVITE, email=email, user=user, now=now)
    mailer.queue_email(
        "staff_invitation" if role == Role.THERAPIST else "patient_invitation",
        to=user,
        dedupe_key=f"invitation:{user.id}:{raw[:12]}",
        now=now,
        actor=invited_by,
        context={
            "link": mailer.external_url("auth.accept_invitation", token=raw),
            "inviter": invited_by,
        },
    )
    audit.record(
        "account.invited",
        actor=invited_by,
        obj=user,
        patient_id=user.id if role == Role.PATIENT else None,
        detail={"role": str(role)},
        now=now,
    )
    return user


def accept_invitation(raw_token: str | None, password: str, *, now: datetime) -> User:
    """Set the invited person's first password; the link proves their address."""
    user = _set_password_with_token(raw_token, TokenPurpose.INVITE, password, now=now)
    audit.record("account.invitation_accepted", actor=user, obj=user, now=now)
    return user
