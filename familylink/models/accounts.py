"""People, the program they belong to, and single-use account tokens."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import expression

from familylink.extensions import db
from familylink.i18n import first_word
from familylink.models.encryption import EncryptedString
from familylink.models.types import LabelledEnum, UTCDateTime, utcnow


class Role(enum.StrEnum):
    FAMILY = "family"
    PATIENT = "patient"
    THERAPIST = "therapist"
    ADMIN = "admin"
    # Read-only: the program overview (counts and rates, no patient data) and its CSV.
    DIRECTOR = "director"


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased so the unique index is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    # The language of their pages and emails (a key of familylink.i18n.LANGUAGES).
    locale: Mapped[str] = mapped_column(String(8), server_default="en")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Patients only: who treats them. Their episodes of care are `Episode` rows.
    therapist_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # Two-step sign-in (TOTP). The secret is set at enrolment and counts once confirmed;
    # the last accepted time step stops a code being used twice.
    # Encrypted at rest with SECRETS_KEYS (familylink/models/encryption.py); loaded and
    # decrypted only when used (enrolment and the code step), not with every user.
    totp_secret: Mapped[str | None] = mapped_column(EncryptedString, deferred=True)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive accounts
        return self.active

    @property
    def mfa_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def is_staff(self) -> bool:
        # Staff must keep two-step sign-in on.
        return self.role in (Role.THERAPIST, Role.ADMIN, Role.DIRECTOR)

    @property
    def first_name(self) -> str:
        return first_word(self.name)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


class EpisodeEndReason(LabelledEnum):
    """Why an episode of care ended: a short neutral list, never shown to family members."""

    COMPLETED = "completed", _l("Completed")
    TRANSFERRED = "transferred", _l("Transferred to other care")
    LEFT = "left", _l("Left the program")
    OTHER = "other", _l("Other")


class Episode(db.Model):
    """One episode of care of a patient: enrolment or readmission to discharge.

    A consent belongs to the episode in force when it was signed, so a consent that lasts
    "until the end of this episode" ends with that episode, whatever comes after it.
    """

    __tablename__ = "episodes"
    __table_args__ = (UniqueConstraint("patient_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1 at enrolment, then 2, 3 on readmission
    started_on: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the overview
    ended_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(20))
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def end_reason_label(self) -> str:
        return EpisodeEndReason(self.end_reason).label if self.end_reason else ""


#: The settings of a new installation: the column defaults below, the row the migration
#: 5b7e0c2d9a41 inserts, and the row ``insert_default_program`` gives a schema made by
#: create_all (the tests, the benchmarks), so that a test sees what a fresh install sees.
PROGRAM_DEFAULTS = {
    "name": "FamilyLink",
    "sender_name": "Family Sessions",
    "timezone": "America/New_York",
    "reminder_offsets_hours": [48, 2],
    "cancellation_window_hours": 24,
    "booking_horizon_days": 28,
    "minimum_notice_hours": 12,
    "waitlist_hold_hours": 12,
    "buffer_minutes": 10,
}


class Program(db.Model):
    """The clinic's settings; one row per installation."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # What recipients see as the sender: must not reveal the kind of care.
    sender_name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default=PROGRAM_DEFAULTS["timezone"])
    reminder_offsets_hours: Mapped[list] = mapped_column(
        JSON, default=lambda: list(PROGRAM_DEFAULTS["reminder_offsets_hours"])
    )
    cancellation_window_hours: Mapped[int] = mapped_column(
        Integer, default=PROGRAM_DEFAULTS["cancellation_window_hours"]
    )
    booking_horizon_days: Mapped[int] = mapped_column(
        Integer, default=PROGRAM_DEFAULTS["booking_horizon_days"]
    )
    minimum_notice_hours: Mapped[int] = mapped_column(
        Integer, default=PROGRAM_DEFAULTS["minimum_notice_hours"]
    )
    waitlist_hold_hours: Mapped[int] = mapped_column(
        Integer, default=PROGRAM_DEFAULTS["waitlist_hold_hours"]
    )
    # Free time kept between two sessions of one therapist. The server default is the one
    # migration 85c953eff395 gave existing rows; it stays a literal so the schema stays as built.
    buffer_minutes: Mapped[int] = mapped_column(
        Integer, default=PROGRAM_DEFAULTS["buffer_minutes"], server_default="10"
    )
    # The program's own line for nights and weekends, shown with the crisis numbers when set.
    after_hours_phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # How video rooms are made: an https address with "{room}", filled with each session's
    # own room name (`rooms.room_name`; e.g. a self-hosted Jitsi Meet); empty: the therapist
    # pastes a unique link on each video session.
    video_room_template: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # Off: only the therapist books a weekly series; on: families may too (issue 19). The
    # database's default only: a row written before the column existed gets it the same way.
    families_may_book_series: Mapped[bool] = mapped_column(
        Boolean, server_default=expression.false()
    )


def insert_default_program(connection) -> None:
    """Insert the Program row of a new installation into an empty programs table."""
    connection.execute(Program.__table__.insert(), [dict(PROGRAM_DEFAULTS)])


# The migration inserts the row on a real install; this covers schemas made by create_all.
event.listen(
    Program.__table__,
    "after_create",
    lambda target, connection, **kw: insert_default_program(connection),
)


class TokenPurpose(enum.StrEnum):
    VERIFY = "verify"
    RESET = "reset"
    INVITE = "invite"  # a therapist or patient sets their first password
    FAMILY_INVITE = "family_invite"  # a family member accepts a patient's consent invitation
    EMAIL_CHANGE = "email_change"  # confirms a new address; payload holds it


class AccountToken(db.Model):
    """A single-use, expiring token bound to one address; only its SHA-256 is stored."""

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    payload: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    # The language the inviter chose: the registration page and first emails speak it.
    locale: Mapped[str | None] = mapped_column(String(8))
