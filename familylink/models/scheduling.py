"""Session types, availability, appointments (never "Session"), seats, waitlist and feeds.

Times are UTC instants (UTCDateTime); weekly availability is wall time in the program's zone.
On PostgreSQL an exclusion constraint makes overlapping active appointments of one therapist
impossible, whatever the application does; it is added by DDL (below and in the migration)
because it needs the btree_gist extension.
"""

import enum
import secrets
import uuid
from datetime import date, datetime, time, timedelta

from sqlalchemy import (
    DDL,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    event,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from familylink.extensions import db
from familylink.models.encryption import EncryptedString
from familylink.models.types import UTCDateTime, partial_index, utcnow


class SessionMode(enum.StrEnum):
    IN_PERSON = "in_person"
    VIDEO = "video"


class AppointmentStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class SeatStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    LATE_CANCELLED = "late_cancelled"


class Attendance(enum.StrEnum):
    ATTENDED = "attended"
    NO_SHOW = "no_show"


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    CLAIMED = "claimed"
    EXPIRED = "expired"
    LEFT = "left"


class SessionType(db.Model):
    __tablename__ = "session_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    # In families: 1 is a private family session, more is a multi-family group.
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    mode: Mapped[str] = mapped_column(String(20), default=SessionMode.IN_PERSON)
    location: Mapped[str | None] = mapped_column(String(200))
    cancellation_window_hours: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def is_group(self) -> bool:
        return self.capacity > 1


class AvailabilityWindow(db.Model):
    """A weekly window of bookable time, in the program's local wall time."""

    __tablename__ = "availability_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # Monday 0 … Sunday 6
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)


class AvailabilityOverride(db.Model):
    """One date: off (all day, or start-end) or extra hours (start-end)."""

    __tablename__ = "availability_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    off: Mapped[bool] = mapped_column(Boolean, default=True)
    start_time: Mapped[time | None] = mapped_column(Time)
    end_time: Mapped[time | None] = mapped_column(Time)


class AppointmentSeries(db.Model):
    """A weekly series of private family sessions booked together: the same local wall time
    (`local_time` in `zone`, the zone it was chosen in) on `weekday`, `count` weeks from
    `first_day`. Each occurrence is its own Appointment (`weekly_series_id`), booked, moved
    and cancelled like any other; this row only ties them together. (Appointment.series_id is
    the tag of a weekly group's occurrences, which have no row here.)"""

    __tablename__ = "appointment_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    session_type_id: Mapped[int] = mapped_column(ForeignKey("session_types.id"))
    first_day: Mapped[date] = mapped_column(Date)
    weekday: Mapped[int] = mapped_column(Integer)  # Monday 0 … Sunday 6
    local_time: Mapped[time] = mapped_column(Time)
    zone: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


def new_room_token() -> str:
    """An unguessable token (192 bits), URL-safe: for a video room and for its join link."""
    return secrets.token_urlsafe(24)


def holds_a_group(capacity):
    """`Appointment.is_group`'s rule, on an appointment's capacity or on its table's column:
    a statement of plain table columns (the family home's) selects it without the mapped
    attribute, which would run the whole statement through the ORM's loading."""
    return capacity > 1


class Appointment(db.Model):
    """One occurrence of a session with a therapist: private (capacity 1) or a group."""

    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_therapist_starts", "therapist_id", "starts_at"),
        # The program overview counts sessions by when they take place, over the whole
        # program; group places read only the (few) group sessions.
        Index("ix_appointments_starts_at", "starts_at"),
        partial_index("ix_appointments_group_starts", "starts_at", where="capacity > 1"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(80), unique=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    session_type_id: Mapped[int] = mapped_column(ForeignKey("session_types.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), default=AppointmentStatus.SCHEDULED)
    # Rises with every change sent out in an .ics (RFC 5545 SEQUENCE).
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # A weekly group's occurrences share this tag (no row behind it).
    series_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # A weekly series of private family sessions (AppointmentSeries), booked together.
    weekly_series_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointment_series.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # When it was last moved: a reminder whose moment was already past then is never sent.
    rescheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Video: two separate tokens. `join_token` is in emails and calendar files (the link
    # /join/<token>, which checks attendee, consent and time when followed); `room_token`,
    # through its keyed hash (`rooms.room_name`), names the room in the program's room
    # template and is only ever revealed by that redirect, so an old email never leads to
    # the room itself. Every appointment gets both
    # when it is made (a session type may become video later); a move keeps them.
    join_token: Mapped[str | None] = mapped_column(String(64), unique=True, default=new_room_token)
    room_token: Mapped[str | None] = mapped_column(String(64), default=new_room_token)
    # The room a therapist pasted for this session, when the program has no room template:
    # encrypted, as it may carry the room's passcode (the 500 bytes `rooms.check_room_link`
    # allows fit in 1000 of token).
    room_link: Mapped[str | None] = mapped_column(EncryptedString(1000))

    session_type: Mapped[SessionType] = relationship(lazy="joined")
    therapist = relationship("User", foreign_keys=[therapist_id], lazy="joined")
    weekly_series: Mapped[AppointmentSeries | None] = relationship()
    seats: Mapped[list["AppointmentFamily"]] = relationship(
        back_populates="appointment", order_by="AppointmentFamily.id"
    )

    @classmethod
    def of_type(
        cls, session_type: SessionType, starts_at: datetime, *, by, at: datetime, **fields
    ) -> "Appointment":
        """A session of `session_type` from `starts_at`, as long as the type says, made by
        `by` at `at`; its calendar `uid` is new unless `fields` name one."""
        fields.setdefault("uid", f"{uuid.uuid4()}@familylink")
        return cls(
            session_type=session_type,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=session_type.duration_minutes),
            created_at=at,
            created_by_id=by.id,
            **fields,
        )

    @classmethod
    def private(
        cls, session_type: SessionType, starts_at: datetime, therapist_id: int, *, by, at, **fields
    ) -> "Appointment":
        """A private family session with `therapist_id`: one family's seat, as `of_type`."""
        return cls.of_type(
            session_type, starts_at, by=by, at=at, therapist_id=therapist_id, capacity=1, **fields
        )

    @hybrid_property
    def is_group(self) -> bool:
        # Also an SQL expression, on the mapped column (the booking list's statement).
        return holds_a_group(self.capacity)

    @property
    def active_seats(self) -> list["AppointmentFamily"]:
        return booked_seats(self.seats)


def booked_seats(seats):
    """The seats of a list still booked (an appointment's active seats: the model's, or the
    therapist's calendar's plain rows)."""
    return [s for s in seats if s.status == SeatStatus.BOOKED]


# The database itself refuses two overlapping active appointments of one therapist.
EXCLUSION_NAME = "ex_appointments_therapist_overlap"
CREATE_BTREE_GIST = DDL("CREATE EXTENSION IF NOT EXISTS btree_gist")
CREATE_EXCLUSION = DDL(
    f"ALTER TABLE appointments ADD CONSTRAINT {EXCLUSION_NAME} EXCLUDE USING gist "
    "(therapist_id WITH =, tsrange(starts_at, ends_at) WITH &&) WHERE (status = 'scheduled')"
)
event.listen(
    Appointment.__table__, "before_create", CREATE_BTREE_GIST.execute_if(dialect="postgresql")
)
event.listen(
    Appointment.__table__, "after_create", CREATE_EXCLUSION.execute_if(dialect="postgresql")
)


def recorded_attendance(seat_status: str, attendance: str | None) -> str | None:
    """A family's attendance as pages show it: only a place still booked has one
    (`booking.mark_attendance`); a value left on a cancelled place by older code is none."""
    return attendance if seat_status == SeatStatus.BOOKED else None


def is_on_calendar(seat_status: str, appointment_status: str) -> bool:
    """A seat is on the family's calendar while booked, in a session still scheduled (the
    rule of `AppointmentFamily.on_calendar`, for rows that are not seat objects)."""
    return seat_status == SeatStatus.BOOKED and appointment_status == AppointmentStatus.SCHEDULED


class AppointmentFamily(db.Model):
    """One family's seat: a patient's family in an appointment."""

    __tablename__ = "appointment_families"

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=SeatStatus.BOOKED)
    attendance: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    booked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The booking form's one-time key: a resubmitted form finds its booking instead of a new one.
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    appointment: Mapped[Appointment] = relationship(back_populates="seats")
    patient = relationship("User", foreign_keys=[patient_id], lazy="joined")
    attendees: Mapped[list["AppointmentAttendee"]] = relationship(
        back_populates="seat", order_by="AppointmentAttendee.id"
    )

    @property
    def present_attendees(self) -> list["AppointmentAttendee"]:
        return [a for a in self.attendees if a.removed_at is None]

    @property
    def on_calendar(self) -> bool:
        """Booked, in a session still scheduled: what a calendar file or feed holds."""
        return is_on_calendar(self.status, self.appointment.status)

    @property
    def recorded_attendance(self) -> str | None:
        return recorded_attendance(self.status, self.attendance)


class AppointmentAttendee(db.Model):
    """A family member coming to a seat."""

    __tablename__ = "appointment_attendees"

    id: Mapped[int] = mapped_column(primary_key=True)
    seat_id: Mapped[int] = mapped_column(ForeignKey("appointment_families.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_reason: Mapped[str | None] = mapped_column(String(40))

    seat: Mapped[AppointmentFamily] = relationship(back_populates="attendees")
    user = relationship("User", lazy="joined")


class WaitlistEntry(db.Model):
    __tablename__ = "waitlist_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    family_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20), default=WaitlistStatus.WAITING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    offered_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CalendarFeed(db.Model):
    """A person's private iCalendar feed; only the token's SHA-256 is stored."""

    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
