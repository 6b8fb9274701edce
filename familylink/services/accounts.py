"""Accounts: sign-up, verification, sign-in, password reset and staff/patient invitations.

Anything an anonymous visitor can call answers the same whether or not an address is known,
so nobody can learn through FamilyLink that a person has an account (or is in care).
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import Episode, Role, TokenPurpose, User
from familylink.services import audit, lockout, mail, screening, sessions, tokens
from familylink.services.errors import InvalidToken, NotFound, ValidationError
from familylink.services.passwords import check_password_rules, hash_password, verify_password
from familylink.services.program import check_day, get_program, start_of_day
from familylink.services.timefmt import is_valid_timezone

# Lazy: said in the language of the request that raises them (see DomainError).
SIGN_IN_FAILED = _l("That email and password don't match an account.")
WRONG_CURRENT_PASSWORD_MESSAGE = _l("That is not your current password.")


def normalize_email(raw: str | None, field: str = "email") -> str:
    """Return the address lower-cased, or raise ValidationError for something that isn't one."""
    raw = (raw or "").strip()
    if not raw:
        raise ValidationError(_("Enter your email address."), field=field)
    if len(raw) > 254:
        raise ValidationError(_("That email address is too long."), field=field)
    try:
        valid = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        raise ValidationError(_("Enter an email address like name@example.com."), field=field)
    return valid.normalized.lower()


def clean_name(raw: str | None, field: str = "name") -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise ValidationError(_("Enter your name."), field=field)
    if len(name) > 120:
        raise ValidationError(_("Use at most 120 characters."), field=field)
    if screening.has_control(name):
        raise ValidationError(_("Use letters, spaces and punctuation only."), field=field)
    return name


def clean_staff_name(raw: str | None, field: str = "name") -> str:
    """A therapist's or admin's name: on emails and calendar entries ("Family session with
    Grace Lee"), so it also goes through the one screen for clinical words."""
    return screening.screen(clean_name(raw, field), field=field)


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))


def _check_timezone(zone: str | None) -> str:
    if not is_valid_timezone(zone):
        raise ValidationError(_("Choose your time zone from the list."), field="timezone")
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
    # Hashed before we know whether the address is taken: an unknown address must not
    # answer faster than a known one (the hash is most of the time this takes).
    password_hash = hash_password(password)
    existing = find_user_by_email(email)
    if existing is not None:
        # The owner gets a link to set a new password (one hour, as from the reset page):
        # issuing it is also the same work as the new account's verification link, so
        # both branches take as long. A disabled account gets what the reset page sends it.
        if existing.active:
            tokens.revoke_tokens(TokenPurpose.RESET, email=existing.email, now=now)
            _send_link(
                "already_registered", existing, TokenPurpose.RESET, "auth.reset_password", now=now
            )
        else:
            request_password_reset(existing.email, now=now)
        audit.record("account.register_existing", actor=existing, outcome="ignored", now=now)
        return None
    user = User(
        email=email,
        name=name,
        role=Role.FAMILY,
        timezone=timezone,
        password_hash=password_hash,
        created_at=now,
    )
    db.session.add(user)
    db.session.flush()
    send_verification(user, now=now)
    audit.record("account.registered", actor=user, obj=user, now=now)
    return user


def create_admin(*, name: str, email: str, password: str, now: datetime) -> User:
    """Create a verified administrator account (the ``flask create-admin`` command).

    Audited with no actor: it is done on the server's command line, not by a signed-in person.
    """
    address = normalize_email(email)
    if find_user_by_email(address):
        raise ValidationError(_("An account with that address already exists."), field="email")
    check_password_rules(password, email=address)
    user = User(
        email=address,
        name=clean_staff_name(name),
        role=Role.ADMIN,
        password_hash=hash_password(password),
        verified_at=now,
        created_at=now,
    )
    db.session.add(user)
    db.session.flush()
    audit.record("account.created", actor=None, obj=user, detail={"role": Role.ADMIN}, now=now)
    return user


def send_verification(user: User, *, now: datetime) -> None:
    """Email a new account its verification link. An address new to FamilyLink has no
    earlier link to revoke, so this writes the user and the token, two statements, as the
    known-address branch of sign-up writes two (revoke and issue a reset link)."""
    _send_link("verify_email", user, TokenPurpose.VERIFY, "auth.verify_email", now=now)


def _send_link(
    kind: str,
    user: User,
    purpose: str,
    endpoint: str,
    *,
    now: datetime,
    to: str | None = None,
    dedupe: str | None = None,
    payload: dict | None = None,
    context: dict | None = None,
    **fields,
) -> None:
    """Email `user` (or the address `to`) the `kind` email with a single-use link to
    `endpoint`: a new `purpose` token for that address, one email per token (its dedupe key
    names `dedupe`, else `kind`), useful until the link ends. `fields`: as `mail.queue_email`."""
    raw = tokens.issue_token(purpose, email=to or user.email, user=user, payload=payload, now=now)
    mail.queue_email(
        kind,
        to=to or user,
        # Named by what the database keeps of the token, never by a piece of the token itself.
        dedupe_key=f"{dedupe or kind}:{user.id}:{tokens.digest(raw)[:16]}",
        now=now,
        context={"link": mail.external_url(endpoint, token=raw), **(context or {})},
        not_after=tokens.expires_at(purpose, now),
        locale=user.locale,  # sent `to` another address, it is still the account's email
        **fields,
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
    locked = user is not None and lockout.is_locked_out(user, now=now)
    if locked or user is None or not password_ok or not user.active or user.verified_at is None:
        audit.record(
            "auth.sign_in_failed",
            actor=user,
            outcome="failure",
            detail={"reason": "locked out" if locked else _failure_reason(user, password_ok)},
            now=now,
        )
        raise ValidationError(SIGN_IN_FAILED, field="password")
    # With two-step sign-in on, the password alone does not sign in yet.
    audit.record(
        "auth.password_accepted" if user.mfa_enabled else "auth.signed_in", actor=user, now=now
    )
    return user


def confirm_password(
    user: User, password: str | None, *, purpose: str, now: datetime, field: str = "password"
) -> None:
    """The one check of a password asked again by a signed-in person (email change,
    password change, two-step sign-in off, new recovery codes).

    A wrong password counts toward the sign-in lockout, and while the account is locked
    out even the right one is refused, with the same message. Raises ValidationError on
    `field`; the refusal's audit row is kept (see `web.run`).
    """
    locked = lockout.is_locked_out(user, now=now)
    if not verify_password(user.password_hash, password or "") or locked:
        audit.record(
            "auth.password_recheck_failed",
            actor=user,
            outcome="failure",
            detail={"purpose": purpose, "reason": "locked out" if locked else "wrong password"},
            now=now,
        )
        raise ValidationError(WRONG_CURRENT_PASSWORD_MESSAGE, field=field)


def _failure_reason(user: User | None, password_ok: bool) -> str:
    if user is None:
        return "unknown address"
    if not password_ok:
        return "wrong password"
    if not user.active:
        return "disabled"
    return "unverified"


def request_password_reset(email: str, *, now: datetime) -> None:
    """Email a reset link when the address has an active account; otherwise a note that no
    account uses it. Both branches do the same work (revoke, render, queue, audit), so the
    time taken does not tell whether the address has an account."""
    address = normalize_email(email)
    tokens.revoke_tokens(TokenPurpose.RESET, email=address, now=now)
    user = find_user_by_email(address)
    if user is None or not user.active:
        # A token no link will ever carry (no account to set a password for): issued so
        # this branch writes what the other one writes, and born expired, so the worker's
        # next purge (`tokens.purge_expired`) removes it and the address with it.
        tokens.issue_token(TokenPurpose.RESET, email=address, now=now, lifetime=timedelta(0))
        mail.queue_email(
            "reset_no_account",
            to=address,
            # Never deduplicated: a second request for a known address queues a second
            # email, so one for an unknown address must too.
            dedupe_key=f"reset_no_account:{secrets.token_hex(8)}",
            now=now,
        )
        audit.record("auth.reset_requested", outcome="ignored", now=now)
        return
    _send_link("password_reset", user, TokenPurpose.RESET, "auth.reset_password", now=now)
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
    ended = "password_reset" if purpose == TokenPurpose.RESET else "invitation_accepted"
    sessions.end_what_others_may_hold(user, ended, now=now)
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
    staff = role in (Role.THERAPIST, Role.ADMIN, Role.DIRECTOR)
    name = clean_staff_name(name) if staff else clean_name(name)
    email = normalize_email(email)
    if find_user_by_email(email) is not None:
        raise ValidationError(
            _("An account with this email address already exists."), field="email"
        )
    program = get_program()
    user = User(
        email=email,
        name=name,
        role=role,
        timezone=timezone or program.timezone,
        therapist_id=therapist.id if therapist else None,
        created_at=now,
    )
    db.session.add(user)
    db.session.flush()
    if role == Role.PATIENT:
        db.session.add(Episode(patient_id=user.id, number=1, started_on=episode_start or now))
    _send_link(
        "staff_invitation" if staff else "patient_invitation",
        user,
        TokenPurpose.INVITE,
        "auth.accept_invitation",
        now=now,
        dedupe="invitation",
        context={"inviter_name": screening.safe_staff_name(invited_by.name)},
        actor=invited_by,
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


def enrol_patient(
    therapist: User, *, name: str, email: str, episode_start: date, now: datetime
) -> User:
    """Enrolment: the therapist's new patient, whose episode of care starts at the start of
    `episode_start` in the program's time zone, is emailed an invitation to set a password.
    ValidationError (field episode_start): no date, or one after today, as for a
    readmission (`episodes.readmit`): an episode to come could not be ended."""
    if therapist.role != Role.THERAPIST:
        raise NotFound()
    check_day(episode_start, field="episode_start", now=now)
    return invite_user(
        role=Role.PATIENT,
        name=name,
        email=email,
        invited_by=therapist,
        therapist=therapist,
        episode_start=start_of_day(episode_start),
        now=now,
    )


def invite_therapist(admin: User, *, name: str, email: str, now: datetime) -> User:
    """An administrator invites a therapist, who sets a password and two-step sign-in."""
    if admin.role != Role.ADMIN:
        raise NotFound()
    return invite_user(role=Role.THERAPIST, name=name, email=email, invited_by=admin, now=now)


def invite_director(admin: User, *, name: str, email: str, now: datetime) -> User:
    """An administrator invites a program director (read-only: the program overview), who
    sets a password and two-step sign-in like staff."""
    if admin.role != Role.ADMIN:
        raise NotFound()
    return invite_user(role=Role.DIRECTOR, name=name, email=email, invited_by=admin, now=now)


def accept_invitation(raw_token: str | None, password: str, *, now: datetime) -> User:
    """Set the invited person's first password; the link proves their address."""
    user = _set_password_with_token(raw_token, TokenPurpose.INVITE, password, now=now)
    audit.record("account.invitation_accepted", actor=user, obj=user, now=now)
    return user


def change_password(
    user: User,
    *,
    current_password: str,
    new_password: str,
    now: datetime,
    keep: object | None = None,
) -> None:
    """Set a new password when `current_password` is right; end the user's other sessions.

    Raises ValidationError on `current_password` or `new_password`.
    """
    confirm_password(
        user, current_password, purpose="password change", now=now, field="current_password"
    )
    try:
        check_password_rules(new_password, email=user.email, program_name=get_program().name)
    except ValidationError as error:
        raise ValidationError(error.message, field="new_password")
    user.password_hash = hash_password(new_password)
    sessions.end_what_others_may_hold(user, "password_changed", now=now, keep=keep)
    mail.queue_email(
        "password_changed_notice",
        to=user,
        dedupe_key=f"password_changed:{user.id}:{now.isoformat()}",
        now=now,
    )
    audit.record("account.password_changed", actor=user, obj=user, now=now)


def request_email_change(user: User, *, password: str, new_email: str, now: datetime) -> None:
    """Email a confirmation link to the new address when the password is right.

    The answer is the same whether or not the new address already has an account (then
    nothing is sent), so this cannot be used to find out who has one.
    """
    confirm_password(user, password, purpose="email change", now=now)
    address = normalize_email(new_email, field="new_email")
    if address == user.email:
        raise ValidationError(_("That is already your email address."), field="new_email")
    # A newer request replaces the earlier ones, wherever they went (a mistyped address).
    tokens.revoke_account_links(user.id, now=now, purposes=(TokenPurpose.EMAIL_CHANGE,))
    if find_user_by_email(address) is not None:
        audit.record("account.email_change_requested", actor=user, outcome="ignored", now=now)
        return
    tokens.revoke_tokens(TokenPurpose.EMAIL_CHANGE, email=address, now=now)
    _send_link(
        "email_change_verify",
        user,
        TokenPurpose.EMAIL_CHANGE,
        "auth.confirm_email_change",
        now=now,
        to=address,
        dedupe="email_change",
        payload={"old": user.email},
    )
    audit.record("account.email_change_requested", actor=user, obj=user, now=now)


def confirm_email_change(raw_token: str | None, *, now: datetime) -> User:
    """Switch the account to the new address from its link; tell the old address.

    Raises InvalidToken for a used, expired or unknown link, or when the account's address
    changed since the link was sent or the new address was taken meanwhile. Uses up the
    account's other links (`tokens.revoke_account_links`).
    """
    token = tokens.consume_token(raw_token, TokenPurpose.EMAIL_CHANGE, now=now)
    user = db.session.get(User, token.user_id)
    old = (token.payload or {}).get("old")
    if user is None or not user.active or user.email != old or find_user_by_email(token.email):
        raise InvalidToken(tokens.EXPIRED_OR_INVALID)
    user.email = token.email
    user.verified_at = now
    # Links sent before (a reset to the old address) must not revive if it comes back.
    tokens.revoke_account_links(user.id, now=now)
    tokens.keep_invitations_with_the_person(user, old, now=now)
    mail.queue_email(
        "email_changed_notice",
        to=old,
        dedupe_key=f"email_changed:{user.id}:{token.id}",
        now=now,
        locale=user.locale,
        context={"name": user.first_name},
    )
    audit.record("account.email_changed", actor=user, obj=user, now=now)
    return user
