"""Signing a consent (the patient, in the portal) and recording one signed on paper (their
therapist): every element §2.31 requires is checked; a change or renewal is a new record that
supersedes the open ones to the same person (the linked family member who holds that
address now, or the address while nobody has accepted); a new person is sent an invitation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import force_locale, format_date, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from familylink.extensions import db
from familylink.i18n import DEFAULT_LANGUAGE, LANGUAGES
from familylink.models import (
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    ExpiryKind,
    FamilyLink,
    Role,
    Scope,
    TokenPurpose,
    User,
)
from familylink.services import access, audit, mail, tokens
from familylink.services.accounts import normalize_email
from familylink.services.consent import ending, records
from familylink.services.consent.wording import (
    DEFAULT_PURPOSE,
    FORM_VERSION,
    RELIANCE_STATEMENT,
    REVOCATION_STATEMENT,
    render_snapshot,
)
from familylink.services.errors import NotFound, ValidationError
from familylink.services.program import get_program, local_day
from familylink.services.timefmt import format_local_date

MAX_DAYS_AFTER_EPISODE = 365


@dataclass
class ConsentDetails:
    """What a consent form collects; every field is checked by `check_details`."""

    recipient_name: str | None = None
    recipient_relationship: str | None = None
    recipient_email: str | None = None
    purpose: str | None = DEFAULT_PURPOSE
    scopes: list[Scope] = field(default_factory=list)
    expiry_kind: str | None = None
    expiry_date: date | None = None
    expiry_days_after_episode: int | None = None
    signature_name: str | None = None
    understood: bool = False
    # Off unless the patient ticks it: see FAMILY_VISIBLE_STATEMENT.
    family_visible: bool = False
    # The language the form was shown and signed in (its snapshot keeps it), and the one the
    # invitation speaks (the patient's choice; a paper consent's invitation follows the form).
    locale: str = DEFAULT_LANGUAGE
    invitation_locale: str | None = None


def _squash(text: str | None) -> str:
    return " ".join((text or "").split())


def _one_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _local_midnight_after(day: date, zone: str) -> datetime:
    """The instant a consent that runs 'through `day`' ends: midnight after it, local time."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(zone)).astimezone(
        UTC
    )


def check_details(
    patient: User, details: ConsentDetails, *, now: datetime, signed_on: date | None = None
) -> dict:
    """Return the consent's columns from the form, or raise ValidationError naming the field.

    Every element §2.31 requires must be there: recipient, purpose, at least one kind of
    information, an expiry, the signature (the name on file) and the acknowledgement.
    An end date is from today on (one already past would store a consent already ended)
    and at most a year after the form was signed: today in the portal, `signed_on` for a
    paper form (the form's "one year from today" is the day the patient signed it).
    """
    name = _squash(details.recipient_name)
    if not name:
        raise ValidationError(_("Enter the family member's name."), field="recipient_name")
    if len(name) > 120:
        raise ValidationError(
            _("Use at most %(count)s characters.", count=120), field="recipient_name"
        )
    relationship = _squash(details.recipient_relationship)
    if not relationship:
        raise ValidationError(
            _("Say how they are related to you, for example mother or partner."),
            field="recipient_relationship",
        )
    if len(relationship) > 60:
        raise ValidationError(
            _("Use at most %(count)s characters.", count=60), field="recipient_relationship"
        )
    email = normalize_email(details.recipient_email, field="recipient_email")
    if email == patient.email.lower():
        raise ValidationError(
            _("Enter the family member's own email address, not yours."), field="recipient_email"
        )
    purpose = (details.purpose or "").strip()
    if not purpose:
        raise ValidationError(_("Say what the information is for."), field="purpose")
    if len(purpose) > 500:
        raise ValidationError(_("Use at most %(count)s characters.", count=500), field="purpose")
    scopes = [s for s in Scope if s in set(details.scopes or [])]
    if not scopes:
        raise ValidationError(
            _("Choose at least one kind of information to share."), field="scopes"
        )
    zone = get_program().timezone
    expiry = {"expiry_kind": details.expiry_kind, "expires_at": None}
    if details.expiry_kind == ExpiryKind.DATE:
        today = now.astimezone(ZoneInfo(zone)).date()
        if details.expiry_date is None:
            raise ValidationError(_("Choose the date this consent ends."), field="expiry_date")
        if details.expiry_date < today:
            raise ValidationError(_("Choose a date from today onwards."), field="expiry_date")
        if details.expiry_date > _one_year_after(signed_on or today):
            raise ValidationError(
                _("Choose a date no more than one year from today.")
                if signed_on is None
                else _("Choose a date no more than one year after the day the form was signed."),
                field="expiry_date",
            )
        expiry["expires_at"] = _local_midnight_after(details.expiry_date, zone)
        expiry["expiry_days_after_episode"] = None
    elif details.expiry_kind == ExpiryKind.EPISODE_END:
        days = details.expiry_days_after_episode
        if days is None or not 0 <= days <= MAX_DAYS_AFTER_EPISODE:
            raise ValidationError(
                _("Enter a number of days from 0 to %(most)s.", most=MAX_DAYS_AFTER_EPISODE),
                field="expiry_days_after_episode",
            )
        episode = records.episode_in_force(patient.id, now)
        if episode is None or episode.ended_on is not None:
            raise ValidationError(
                _("There is no current episode of care to follow: choose a date instead."),
                field="expiry_kind",
            )
        expiry["expiry_days_after_episode"] = days
    else:
        raise ValidationError(_("Choose when this consent ends."), field="expiry_kind")
    signature = _squash(details.signature_name)
    if not signature:
        raise ValidationError(_("Type your full name to sign."), field="signature_name")
    if signature.casefold() != _squash(patient.name).casefold():
        raise ValidationError(
            _("Type your full name exactly as we have it: %(name)s.", name=patient.name),
            field="signature_name",
        )
    if not details.understood:
        raise ValidationError(
            _("Tick the box to confirm you have read and understood this consent."),
            field="understood",
        )
    locale, invitation_locale = _languages(details)
    with force_locale(locale):  # the signed words, in the language of the form
        worded = {
            "information_description": " ".join(s.explanation for s in scopes),
            "revocation_statement": f"{REVOCATION_STATEMENT} {RELIANCE_STATEMENT}",
            "expiry_description": _expiry_description(details, zone),
        }
    return {
        "recipient_name": name,
        "recipient_relationship": relationship,
        "recipient_email": email,
        "purpose": purpose,
        **{f"scope_{s}": s in scopes for s in Scope},
        "family_visible": bool(details.family_visible),
        "signature_name": signature,
        "locale": locale,
        "invitation_locale": invitation_locale,
        **worded,
        **expiry,
    }


def _languages(details: ConsentDetails) -> tuple[str, str]:
    """The form's language and the invitation's (the form's unless chosen), both known."""
    locale = details.locale or DEFAULT_LANGUAGE
    if locale not in LANGUAGES:
        raise ValidationError(_("Choose a language from the list."), field="locale")
    invitation_locale = details.invitation_locale or locale
    if invitation_locale not in LANGUAGES:
        raise ValidationError(_("Choose a language from the list."), field="invitation_locale")
    return locale, invitation_locale


def _expiry_description(details: ConsentDetails, zone: str) -> str:
    """When the consent ends, in words (the current language's)."""
    if details.expiry_kind == ExpiryKind.DATE:
        return _(
            "At the end of %(day)s (%(zone)s time).",
            day=format_date(details.expiry_date, "long"),
            zone=zone.replace("_", " "),
        )
    days = details.expiry_days_after_episode
    if not days:
        return _("When my current episode of care with the program ends.")
    return ngettext(
        "When my current episode of care with the program ends, plus %(num)d day.",
        "When my current episode of care with the program ends, plus %(num)d days.",
        days,
    )


def _linked_person(patient_id: int, email: str) -> User | None:
    """The family member already joined to the patient who holds `email` now, if any: a
    renewal (or a new consent after their email change) is theirs at once, no invitation."""
    return db.session.scalar(
        select(User)
        .join(FamilyLink, FamilyLink.family_user_id == User.id)
        .where(FamilyLink.patient_id == patient_id, func.lower(User.email) == email.lower())
    )


def _create(
    patient: User,
    columns: dict,
    *,
    now: datetime,
    signed_at: datetime,
    method: str,
    actor: User,
    ip: str | None,
    user_agent: str | None,
    recorded_by: User | None = None,
    attested: bool = False,
    audit_as: str,
    detail: dict,
) -> ConsentRecord:
    """The new consent record (superseding any open one to the same person, inviting a
    person with no account yet), audited last as `audit_as` with its scopes and `detail`.
    The caller holds the patient's consents locked (`records.lock_consents_of`)."""
    program = get_program()
    columns = dict(columns)
    invitation_locale = columns.pop("invitation_locale", None) or columns["locale"]
    person = _linked_person(patient.id, columns["recipient_email"])
    # Every open consent to the same person: bound to them, or to the address unaccepted.
    previous = records.open_consents_to(
        patient.id, columns["recipient_email"], person.id if person else None
    )
    consent = ConsentRecord(
        patient_id=patient.id,
        patient_name=patient.name,
        program_name=program.name,
        method=method,
        signed_at=signed_at,
        recorded_by_id=recorded_by.id if recorded_by else None,
        attested=attested,
        form_version=FORM_VERSION,
        text_snapshot=render_snapshot(
            columns,
            patient_name=patient.name,
            program_name=program.name,
            signed_at=signed_at,
            recorded_by=recorded_by,
            locale=columns["locale"],
        ),
        ip=(ip or None) and ip[:45],
        user_agent=(user_agent or None) and user_agent[:300],
        supersedes_id=previous[0].id if previous else None,
        episode_id=getattr(records.episode_in_force(patient.id, signed_at), "id", None),
        recipient_user_id=person.id if person else None,
        created_at=now,
        **{k: v for k, v in columns.items()},
    )
    db.session.add(consent)
    db.session.flush()
    # A change or renewal is a new record: the one it replaces is closed, never edited.
    ending.replace(previous, consent, now=now, actor=actor)
    if person is None:
        _send_invitation(consent, patient, now=now, actor=actor, locale=invitation_locale)
    audit.record_about(
        audit_as, consent, actor=actor, detail={"scopes": consent.scopes, **detail}, now=now
    )
    return consent


def _send_invitation(
    consent: ConsentRecord, patient: User, *, now: datetime, actor: User, locale: str
):
    """Email the recipient a single-use link bound to their address (no account needed), in
    the language the patient chose: the link's pages and the new account speak it too."""
    raw = tokens.issue_token(
        TokenPurpose.FAMILY_INVITE,
        email=consent.recipient_email,
        payload={"consent_id": consent.id},
        now=now,
        locale=locale,
    )
    # Sent to the address, not an account: the invitation is what lets them link at all.
    mail.queue_email(
        "family_invitation",
        to=consent.recipient_email,
        dedupe_key=f"family_invitation:{consent.id}",
        now=now,
        not_after=tokens.expires_at(TokenPurpose.FAMILY_INVITE, now),
        actor=actor,
        patient_id=patient.id,
        locale=locale,
        context={
            "link": mail.external_url("family.accept_invitation", token=raw),
            "recipient_name": consent.recipient_name,
            "patient_first_name": patient.first_name,
        },
    )
    audit.record_about(
        "disclosure.invitation",
        consent,
        actor=actor,
        detail={"recipient_name": consent.recipient_name},
        now=now,
    )
    return raw


def sign_consent(
    patient: User,
    details: ConsentDetails,
    *,
    now: datetime,
    ip: str | None = None,
    user_agent: str | None = None,
) -> ConsentRecord:
    """The patient signs in the portal; any open consent to the same person is superseded.

    Raises ValidationError (with the field) when an element is missing; nothing is stored.
    """
    if patient.role != Role.PATIENT:
        raise NotFound()
    columns = check_details(patient, details, now=now)
    records.lock_consents_of(patient.id)
    consent = _create(
        patient,
        columns,
        now=now,
        signed_at=now,
        method="portal",
        actor=patient,
        ip=ip,
        user_agent=user_agent,
        audit_as="consent.signed",
        detail={"form_version": FORM_VERSION},
    )
    return consent


def _later_choice(
    patient_id: int, email: str, user_id: int | None, *, after: date
) -> datetime | None:
    """When the patient last chose about sharing with this person (as `open_consents_to`
    finds them) after a form dated `after` (program time): an open consent signed on a later
    day, or a consent revoked on that day or later (a form has no time of day, and sharing
    less stands). None when they made no such choice."""
    moments = [
        c.signed_at
        for c in records.open_consents_to(patient_id, email, user_id)
        if local_day(c.signed_at) > after
    ]
    revoked = db.session.scalars(
        select(ConsentClosure.closed_at)
        .join(ConsentRecord, ConsentRecord.id == ConsentClosure.consent_id)
        .where(
            ConsentRecord.patient_id == patient_id,
            or_(*records.for_person(email, user_id)),
            ConsentClosure.reason == ClosureReason.REVOKED,
        )
    ).all()
    moments += [moment for moment in revoked if local_day(moment) >= after]
    return max(moments) if moments else None


def _check_not_recorded(patient: User, columns: dict, *, signed_on: date) -> None:
    """ValidationError when the consent open (or pending) to this person is this very
    paper form: the same terms, form and day signed (the form sent twice). Nothing is
    recorded again, so nothing is superseded and no second invitation goes out."""
    person = _linked_person(patient.id, columns["recipient_email"])
    terms = {name: value for name, value in columns.items() if name != "invitation_locale"}
    form = ("paper", FORM_VERSION, signed_on)
    for record in records.open_consents_to(
        patient.id, columns["recipient_email"], person.id if person else None
    ):
        same = all(getattr(record, name) == value for name, value in terms.items())
        if same and (record.method, record.form_version, local_day(record.signed_at)) == form:
            raise ValidationError(_("This consent is already recorded."))


def _check_signed_on(
    patient: User, columns: dict, *, signed_on: date, signed_at: datetime, now: datetime
) -> None:
    """ValidationError (field signed_on) when the day the paper form was signed makes it
    no consent to record now (share less):

    - it ends with the episode of care it was signed in, and that is not the current one
      (one that has ended, or a day between episodes): it would be stored already ended,
      or bound to an episode the patient has left;
    - the patient made a later choice about the same person (a consent signed, or one
      revoked, on a later day): the later choice stands, an older form does not undo it."""
    zone = get_program().timezone
    if columns["expiry_kind"] == ExpiryKind.EPISODE_END:
        signed_in = records.episode_in_force(patient.id, signed_at)
        current = records.episode_in_force(patient.id, now)
        if signed_in is None or current is None or signed_in.id != current.id:
            raise ValidationError(
                _(
                    "This date is not in the patient's current episode of care, and this "
                    "consent ends with the episode it was signed in. Ask the patient to sign "
                    "a new form."
                ),
                field="signed_on",
            )
    person = _linked_person(patient.id, columns["recipient_email"])
    later = _later_choice(
        patient.id, columns["recipient_email"], person.id if person else None, after=signed_on
    )
    if later is not None:
        raise ValidationError(
            _(
                "On %(day)s, after this form was signed, the patient made a later choice "
                "about sharing with this person, and it stands. Ask the patient to sign a "
                "new form.",
                day=format_local_date(later, zone),
            ),
            field="signed_on",
        )


def record_paper_consent(
    therapist: User,
    patient_id: int,
    details: ConsentDetails,
    *,
    signed_on: date | None,
    attested: bool,
    now: datetime,
    ip: str | None = None,
    user_agent: str | None = None,
) -> ConsentRecord:
    """A therapist records a consent their own patient signed on paper."""
    patient = access.therapist_patient(therapist, patient_id, now=now, what=None)
    zone = get_program().timezone
    today = now.astimezone(ZoneInfo(zone)).date()
    if signed_on is None:
        raise ValidationError(_("Enter the date the patient signed the form."), field="signed_on")
    if signed_on > today:
        raise ValidationError(_("The date signed can't be in the future."), field="signed_on")
    if signed_on < today - timedelta(days=60):
        raise ValidationError(
            _("A paper consent older than 60 days needs a new signature."), field="signed_on"
        )
    columns = check_details(patient, details, now=now, signed_on=signed_on)
    if not attested:
        raise ValidationError(
            _("Tick the box to confirm the patient signed this on paper."), field="attested"
        )
    signed_at = min(now, datetime.combine(signed_on, time(12, 0), tzinfo=ZoneInfo(zone)))
    # Before the patient's later choices are read: one being made now is waited for.
    records.lock_consents_of(patient.id)
    _check_not_recorded(patient, columns, signed_on=signed_on)
    _check_signed_on(patient, columns, signed_on=signed_on, signed_at=signed_at, now=now)
    consent = _create(
        patient,
        columns,
        now=now,
        signed_at=signed_at.astimezone(UTC),
        method="paper",
        actor=therapist,
        ip=ip,
        user_agent=user_agent,
        recorded_by=therapist,
        attested=True,
        audit_as="consent.recorded",
        detail={"method": "paper", "signed_on": signed_on.isoformat()},
    )
    return consent
