"""iCalendar files: one recipient's own view of one appointment, in neutral words.

The UID never changes for an appointment; SEQUENCE rises with every change; a cancellation
is METHOD:CANCEL. No other family, no attendee list, nothing clinical.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentStatus,
    CalendarFeed,
    Role,
    SeatStatus,
    SessionMode,
    User,
)
from familylink.services import audit
from familylink.services.mail import Attachment
from familylink.services.timefmt import format_local

PRODID = "-//FamilyLink//Family sessions//EN"


def neutral_title(appointment: Appointment) -> str:
    kind = "Group session" if appointment.is_group else "Family session"
    return f"{kind} with {appointment.therapist.name}"


def where(appointment: Appointment) -> str:
    session_type = appointment.session_type
    if session_type.mode == SessionMode.VIDEO:
        return session_type.video_link or "Video call (link to follow)"
    return session_type.location or ""


def _event(appointment: Appointment, recipient: User, *, now: datetime, cancelled: bool) -> Event:
    event = Event()
    event.add("uid", appointment.uid)
    event.add("dtstamp", now)
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    event.add("sequence", appointment.sequence)
    event.add("summary", neutral_title(appointment))
    place = where(appointment)
    if place:
        event.add("location", place)
    local = format_local(appointment.starts_at, recipient.timezone)
    event.add("description", f"{neutral_title(appointment)}, {local}.")
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return event


def appointment_ics(
    appointment: Appointment, recipient: User, *, now: datetime, cancelled: bool = False
) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else "REQUEST")
    cal.add_component(_event(appointment, recipient, now=now, cancelled=cancelled))
    return cal.to_ical()


def ics_attachment(
    appointment: Appointment, recipient: User, *, now: datetime, cancelled: bool = False
) -> Attachment:
    return Attachment(
        filename="cancel.ics" if cancelled else "invite.ics",
        content_type="text/calendar",
        data=appointment_ics(appointment, recipient, now=now, cancelled=cancelled),
    )


def feed_ics(appointments: list[Appointment], recipient: User, *, now: datetime) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    for appointment in appointments:
        cal.add_component(_event(appointment, recipient, now=now, cancelled=False))
    return cal.to_ical()


# --- Private feeds -----------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def feed_of(user: User) -> CalendarFeed | None:
    return db.session.scalar(select(CalendarFeed).where(CalendarFeed.user_id == user.id))


def turn_on_feed(user: User, *, now: datetime) -> str:
    """Start (or reset) the person's private feed; return the new secret token (shown once)."""
    token = secrets.token_urlsafe(32)
    feed = feed_of(user)
    if feed is None:
        feed = CalendarFeed(user_id=user.id, token_hash=_hash(token), created_at=now)
        db.session.add(feed)
    else:
        feed.token_hash, feed.active, feed.created_at = _hash(token), True, now
    db.session.flush()
    audit.record("calendar_feed.reset", actor=user, obj=feed, now=now)
    return token


def turn_off_feed(user: User, *, now: datetime) -> None:
    feed = feed_of(user)
    if feed is not None:
        feed.active = False
        audit.record("calendar_feed.off", actor=user, obj=feed, now=now)
        db.session.flush()


def feed_for_token(token: str, *, now: datetime) -> bytes | None:
    """The feed's calendar, or None for an unknown, reset or turned-off token.

    A family member's feed holds only sessions they attend, for patients whose consent still
    gives them the scheduling scope, and each one is recorded as a disclosure.
    """
    from familylink.services import booking

    if not token or len(token) > 100:
        return None
    feed = db.session.scalar(select(CalendarFeed).where(CalendarFeed.token_hash == _hash(token)))
    if feed is None or not feed.active:
        return None
    user = db.session.get(User, feed.user_id)
    if user is None or not user.active:
        return None
    if user.role == Role.FAMILY:
        seats = [
            s
            for s in booking.upcoming_for_family(user, now=now)
            if s.status == SeatStatus.BOOKED and s.appointment.status == AppointmentStatus.SCHEDULED
        ]
        for patient_id in {s.patient_id for s in seats}:
            audit.record(
                "disclosure.viewed",
                actor=user,
                patient_id=patient_id,
                recipient_id=user.id,
                detail={"what": "calendar feed"},
                now=now,
            )
        appointments = [s.appointment for s in seats]
    elif user.role == Role.PATIENT:
        appointments = [
            s.appointment
            for s in booking.patient_appointments(user, now=now, page="calendar feed")
            if s.status == SeatStatus.BOOKED and s.appointment.status == AppointmentStatus.SCHEDULED
        ]
    elif user.role == Role.THERAPIST:
        appointments = [
            a
            for a in booking.therapist_appointments(
                user, now, now + timedelta(days=120), now=now, page="calendar feed"
            )
            if a.status == AppointmentStatus.SCHEDULED
        ]
    else:
        appointments = []
    return feed_ics(appointments, user, now=now)
