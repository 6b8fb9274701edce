"""Invitations: a family member accepts the patient's consent, by registering from the
emailed link or by linking the account they are signed in with at that address."""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from familylink.extensions import db
from familylink.i18n import normalise
from familylink.models import (
    AccountToken,
    ConsentRecord,
    FamilyLink,
    Role,
    TokenPurpose,
    User,
    UserSession,
)
from familylink.services import access, accounts, audit, tokens
from familylink.services.consent import ending, records
from familylink.services.errors import Conflict, InvalidToken, ValidationError
from familylink.services.passwords import check_password_rules, hash_password
from familylink.services.program import get_program
from familylink.services.timefmt import is_valid_timezone

WRONG_ADDRESS = _l(
    "This invitation was sent to a different email address. Sign out, then open the link "
    "again and sign in (or create an account) with the address it was sent to."
)


def invitation(raw_token: str | None, *, now: datetime) -> tuple[AccountToken, ConsentRecord]:
    """The invitation's token and consent, while both are still good; else InvalidToken."""
    token = tokens.find_valid_token(raw_token, TokenPurpose.FAMILY_INVITE, now=now)
    consent = db.session.get(ConsentRecord, (token.payload or {}).get("consent_id") or 0)
    if consent is None or consent.recipient_email != token.email:
        raise InvalidToken(tokens.EXPIRED_OR_INVALID)
    patient = db.session.get(User, consent.patient_id)
    # A renewal may have superseded the consent the link named: any active one to that
    # address that nobody has accepted yet will do.
    open_ones = records.open_consents_to(patient.id, token.email)
    if not any(access.is_active(c, patient, now) for c in open_ones):
        raise InvalidToken(tokens.EXPIRED_OR_INVALID)
    return token, consent


def check_addressee(user: User, token: AccountToken, consent: ConsentRecord, *, now) -> None:
    """Conflict (audited) unless `user` is the family member it was sent to: signed in at the
    invited address, or the person who held that address when it was sent and has changed
    it since (the email change kept the invitation theirs, `token.user_id`). An invitation is
    for the person it was sent to, never for whoever holds the link."""
    if token.user_id is not None:
        addressee = user.id == token.user_id
    else:
        addressee = user.email.lower() == token.email
    if not addressee or user.role != Role.FAMILY:
        audit.record(
            "consent.invitation_refused",
            actor=user,
            patient_id=consent.patient_id,
            outcome="denied",
            detail={"reason": "other address"},
            now=now,
        )
        raise Conflict(str(WRONG_ADDRESS))


def accept_invitation(
    raw_token: str | None, user: User, *, now: datetime, session: UserSession | None = None
) -> FamilyLink:
    """Link a signed-in family member; the token is used up. Conflict for another address.
    `session`, the sign-in session they accept in, stays open when accepting ends an
    earlier consent of theirs (`ending.replace`); their other sessions end."""
    token, consent = invitation(raw_token, now=now)
    check_addressee(user, token, consent, now=now)
    tokens.consume_token(raw_token, TokenPurpose.FAMILY_INVITE, now=now)
    return link_family_member(consent, user, now=now, keep_session=session)


def register_through_invitation(
    raw_token: str | None,
    *,
    name: str,
    password: str,
    timezone: str,
    now: datetime,
    locale: str | None = None,
) -> User:
    """Create the invited family member's account and link it; the link proves the address.
    The account speaks `locale` (the page's), else the language the invitation was sent in."""
    token, consent = invitation(raw_token, now=now)
    if token.user_id is not None or accounts.find_user_by_email(token.email) is not None:
        raise ValidationError(
            _("You already have an account with this address. Sign in to accept the invitation.")
        )
    name = accounts.clean_name(name)
    if not is_valid_timezone(timezone):
        raise ValidationError(_("Choose your time zone from the list."), field="timezone")
    check_password_rules(password, email=token.email, program_name=get_program().name)
    tokens.consume_token(raw_token, TokenPurpose.FAMILY_INVITE, now=now)
    user = User(
        email=token.email,
        name=name,
        role=Role.FAMILY,
        timezone=timezone,
        locale=normalise(locale or token.locale),
        password_hash=hash_password(password),
        verified_at=now,
        created_at=now,
    )
    db.session.add(user)
    db.session.flush()
    audit.record("account.registered", actor=user, obj=user, detail={"via": "invitation"}, now=now)
    link_family_member(consent, user, now=now)
    return user


def link_family_member(
    consent: ConsentRecord, user: User, *, now: datetime, keep_session: UserSession | None = None
) -> FamilyLink:
    """Join the family member to the patient (once) and bind to them the open consents to
    the invited address; the newest consent of theirs decides what they see. An older one
    that has reached its end is ended (`ending.replace`), but for `keep_session`."""
    link = db.session.scalar(
        select(FamilyLink).where(
            FamilyLink.patient_id == consent.patient_id, FamilyLink.family_user_id == user.id
        )
    )
    if link is None:
        link = FamilyLink(
            patient_id=consent.patient_id,
            family_user_id=user.id,
            linked_at=now,
        )
        db.session.add(link)
        db.session.flush()
    newest, *older = records.bind_to_person(user, consent.patient_id, consent.recipient_email)
    # The newest of their consents is now in force: what it no longer covers ends here.
    ending.replace(older, newest, now=now, actor=user, keep_session=keep_session)
    audit.record_about(
        "consent.invitation_accepted", consent, actor=user, recipient_id=user.id, now=now
    )
    return link
