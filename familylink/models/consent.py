"""Consents under 42 CFR Part 2 §2.31, and the links they allow.

A ConsentRecord is never updated or deleted: renewing writes a new record that supersedes the
old one, and revocation, expiry and superseding are each a ConsentClosure row. The one later
write allowed is binding it to the person who accepted it (`recipient_user_id`, empty until
then, set once): from then on the consent follows that person, whatever their address.
"""

import enum
import functools
from datetime import datetime
from typing import TYPE_CHECKING

from flask_babel import get_translations, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    inspect,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from familylink.extensions import db
from familylink.i18n import remembered_catalogue
from familylink.models.types import LabelledEnum, UTCDateTime, utcnow

if TYPE_CHECKING:
    from familylink.models.accounts import Episode


class Scope(LabelledEnum):
    """What a consent lets a family member see, with the words the consent form uses for it.

    ``explanation`` is part of the consent text the patient signs and that is kept in each
    snapshot (form version 1): changing a word of it needs a new form version.
    """

    SCHEDULING = (
        "scheduling",
        _l("Family session times"),
        _l(
            "they can see and book family sessions with my therapist, and get email reminders "
            "about them."
        ),
    )
    ATTENDANCE = (
        "attendance",
        _l("Attendance"),
        _l("they can see whether I came to my sessions."),
    )
    PROGRESS = (
        "progress",
        _l("General progress"),
        _l(
            "my therapist can share short, general notes about how I am doing, written for my "
            "family. Never my therapy notes."
        ),
    )

    @property
    def explanation(self) -> str:
        """The label leads the explanation, as on the form: "Attendance: they can see ...",
        in the language of the moment (a consent's snapshot is rendered in its own)."""
        return _explanation(self, remembered_catalogue(get_translations))


# A scope's explanation is said once per catalogue (the catalogue of the moment, which is
# all its words depend on): saying it is three gettexts through Flask-Babel's context
# proxies, and a family page shows one for each scope shared.
@functools.lru_cache(maxsize=64)
def _explanation(scope: Scope, catalogue) -> str:
    return gettext("%(label)s: %(meaning)s", label=scope.label, meaning=scope.description)


class ExpiryKind(enum.StrEnum):
    DATE = "date"
    EPISODE_END = "episode_end"


class ClosureReason(enum.StrEnum):
    REVOKED = "revoked"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


class ConsentRecord(db.Model):
    __tablename__ = "consent_records"
    __table_args__ = (
        Index("ix_consent_records_patient_recipient", "patient_id", "recipient_email"),
        Index("ix_consent_records_patient_recipient_user", "patient_id", "recipient_user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # §2.31(a)(1) the patient's name, as signed
    patient_name: Mapped[str] = mapped_column(String(120))
    # §2.31(a)(2) who discloses
    program_name: Mapped[str] = mapped_column(String(120))
    # §2.31(a)(4) the recipient
    recipient_name: Mapped[str] = mapped_column(String(120))
    recipient_relationship: Mapped[str] = mapped_column(String(60))
    recipient_email: Mapped[str] = mapped_column(String(254))
    # The person who accepted it (or, for a renewal, the linked person at that address):
    # access follows this, not the address, so an email change moves nothing.
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The language the form was shown and signed in; the snapshot and printable copy keep it.
    locale: Mapped[str] = mapped_column(String(8), server_default="en")
    # §2.31(a)(5) the purpose
    purpose: Mapped[str] = mapped_column(Text)
    # §2.31(a)(3) how much and what kind of information
    scope_scheduling: Mapped[bool] = mapped_column(Boolean)
    scope_attendance: Mapped[bool] = mapped_column(Boolean)
    scope_progress: Mapped[bool] = mapped_column(Boolean)
    # A further choice, off unless the patient ticks it: the recipient may see, and invite to
    # sessions, the other family members the patient shares with (form version 2 on).
    family_visible: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    information_description: Mapped[str] = mapped_column(Text)
    # §2.31(a)(6) the right to revoke, as stated on the form
    revocation_statement: Mapped[str] = mapped_column(Text)
    # §2.31(a)(7) expiry: a date, or the end of the episode of care plus some days
    expiry_kind: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expiry_days_after_episode: Mapped[int | None] = mapped_column(Integer)
    # The patient's episode of care in force when it was signed: an "end of episode" consent
    # ends with this one, so a readmission never revives it.
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"), index=True)
    expiry_description: Mapped[str] = mapped_column(Text)
    # §2.31(a)(8) signature and (a)(9) date
    signature_name: Mapped[str] = mapped_column(String(120))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the overview
    # How it was signed: in the portal, or on paper and recorded by a therapist.
    method: Mapped[str] = mapped_column(String(10))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    attested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The exact words the patient saw, and which version of the form they came from.
    form_version: Mapped[str] = mapped_column(String(20))
    text_snapshot: Mapped[str] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("consent_records.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    closure: Mapped["ConsentClosure | None"] = relationship(
        back_populates="consent", uselist=False, lazy="joined"
    )
    # Loaded with the consent: the gate reads its end for every consent it checks.
    episode: Mapped["Episode | None"] = relationship(lazy="joined")

    @property
    def scopes(self) -> list[Scope]:
        return [s for s in Scope if getattr(self, f"scope_{s.value}")]


class ConsentClosure(db.Model):
    """The end of a consent: revoked, expired (processed by the sweep) or superseded."""

    __tablename__ = "consent_closures"

    id: Mapped[int] = mapped_column(primary_key=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("consent_records.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(20))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the overview
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Revocation in writing, recorded by a therapist: how it arrived.
    method: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)

    consent: Mapped[ConsentRecord] = relationship(back_populates="closure")


class FamilyLink(db.Model):
    """A family member's account joined to a patient, made by accepting an invitation.

    Keyed to the person (patient, family user), never to an address. The link alone
    discloses nothing: access needs an active consent bound to the same person.
    """

    __tablename__ = "family_links"
    __table_args__ = (UniqueConstraint("patient_id", "family_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    family_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImmutableRecordError(RuntimeError):
    pass


def _only_binds_the_recipient(target: ConsentRecord) -> bool:
    """True when the one change is setting recipient_user_id where it was empty."""
    state = inspect(target)
    columns = {c.key for c in state.mapper.column_attrs}
    changed = [a for a in state.attrs if a.key in columns and a.history.has_changes()]
    if [a.key for a in changed] != ["recipient_user_id"]:
        return False
    history = changed[0].history
    return list(history.deleted) in ([], [None]) and history.added[0] is not None


@event.listens_for(ConsentRecord, "before_update")
def _refuse_consent_update(mapper, connection, target):
    if not _only_binds_the_recipient(target):
        raise ImmutableRecordError("consent records are never changed; sign a new one instead")


@event.listens_for(ConsentRecord, "before_delete")
def _refuse_consent_delete(mapper, connection, target):
    raise ImmutableRecordError("consent records are never deleted")
