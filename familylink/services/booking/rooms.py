"""A private room for every video session, reached only through its FamilyLink join link.

Each appointment holds two unguessable tokens (`models.scheduling.new_room_token`): the join
token, in emails and calendar files as /join/<token>, and the room token, whose keyed hash
(`room_name`) names the room in the program's room template. They are separate on purpose:
the join link sits in inboxes and calendars for good, and the room template is no secret, so
a room named by the join token would let anyone who once held the email skip every check
below; and the hash keeps the room from whoever has only a copy of the database.

Following the join link checks, at that moment: an attendee (`access.session_attendee`: the
session's therapist, the patient of a seat, or a family member coming to a seat under a
consent covering scheduling now), a session still on, and the time (from OPENS_BEFORE before
the start until the end). Only then is the room revealed, and that is audited.

A moved session keeps its tokens, so its room; a cancelled one refuses. A link a therapist
pasted is kept (encrypted) only while the session may still open: `forget_ended_room_links`
clears it once the session has ended or is cancelled, and none can be pasted after.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentStatus,
    Role,
    SeatStatus,
    SessionMode,
    User,
)
from familylink.services import access, audit, screening, tokens
from familylink.services.errors import NotFound, ValidationError
from familylink.services.program import ROOM_PLACEHOLDER, get_program

#: The room opens this long before the session starts, and closes when it ends.
OPENS_BEFORE = timedelta(minutes=15)
_TOKEN_MAX = 64


class JoinState(enum.StrEnum):
    OPEN = "open"
    TOO_EARLY = "too_early"
    ENDED = "ended"
    CANCELLED = "cancelled"
    NO_ROOM = "no_room"  # the therapist has not pasted this session's link yet


@dataclass(frozen=True)
class JoinAnswer:
    state: JoinState
    appointment: Appointment
    #: The room, only when state is OPEN.
    room_url: str | None = None

    @property
    def opens_at(self) -> datetime:
        return self.appointment.starts_at - OPENS_BEFORE


def session_is_over(ends_at: datetime, status: str, now: datetime) -> bool:
    """Its room will not open again: the session was cancelled, or has ended. Its pasted link
    is then forgotten (`forget_ended_room_links`, the same rule in SQL) and none is taken."""
    return status == AppointmentStatus.CANCELLED or now >= ends_at


def room_url(appointment: Appointment) -> str | None:
    """Where the session's room is: the program's template filled with its room's name, or
    the link its therapist pasted when the program has no template; None when neither."""
    template = get_program().video_room_template
    if template:
        return template.replace(ROOM_PLACEHOLDER, room_name(appointment))
    return appointment.room_link


def room_name(appointment: Appointment) -> str:
    """The session's room in the program's template: a keyed hash of its room token, so a
    copy of the database (a backup) does not give the address of anyone's session."""
    return tokens.keyed_digest(appointment.room_token) if appointment.room_token else ""


def _video_appointment(token) -> Appointment:
    if not isinstance(token, str) or not 0 < len(token) <= _TOKEN_MAX:
        raise NotFound()
    found = db.session.scalar(select(Appointment).where(Appointment.join_token == token))
    if found is None or found.session_type.mode != SessionMode.VIDEO or not found.room_token:
        raise NotFound()
    return found


def join(actor: User, token: str, *, now: datetime) -> JoinAnswer:
    """What following the join link `token` gives `actor` now: OPEN with the room, or why
    not. NotFound (the same as an unknown token) for anyone who is not an attendee now,
    including a family member whose consent ended or who was taken off the session."""
    appointment = _video_appointment(token)
    seat = access.session_attendee(actor, appointment, now=now, what="video session")
    cancelled = appointment.status == AppointmentStatus.CANCELLED or (
        seat is not None and seat.status != SeatStatus.BOOKED
    )
    if cancelled:
        return JoinAnswer(JoinState.CANCELLED, appointment)
    if now >= appointment.ends_at:
        return JoinAnswer(JoinState.ENDED, appointment)
    if now < appointment.starts_at - OPENS_BEFORE:
        return JoinAnswer(JoinState.TOO_EARLY, appointment)
    url = room_url(appointment)
    if not url:
        return JoinAnswer(JoinState.NO_ROOM, appointment)
    audit.record(
        "video.joined",
        actor=actor,
        obj=appointment,
        patient_id=seat.patient_id if seat is not None else None,
        now=now,
    )
    return JoinAnswer(JoinState.OPEN, appointment, url)


def check_room_link(link: str | None) -> str | None:
    """A pasted room link stripped, None when empty; ValidationError unless it is an https
    address with no spaces. It reaches no email or calendar file (those carry the join
    link), but it does reach the attendees' browser history, so it goes through the one
    screen for staff-typed text (no control characters, no clinical words)."""
    link = screening.screen(link, field="room_link")
    if not link:
        return None
    parts = urlsplit(link)
    # 500 bytes, not characters: its encrypted form must fit the column (EncryptedString).
    if len(link.encode()) > 500 or " " in link or parts.scheme != "https" or not parts.hostname:
        raise ValidationError(
            _("Paste the session's own https:// link, like https://meet.example.org/abc-123."),
            field="room_link",
        )
    return link


def therapist_video_session(actor: User, appointment_id: int, *, now: datetime) -> Appointment:
    """One of the therapist's own video sessions; NotFound for any other id, anyone else's
    session or one that is not by video."""
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.session_type.mode != SessionMode.VIDEO:
        raise NotFound()
    if actor.role != Role.THERAPIST:
        raise NotFound()
    access.session_attendee(actor, appointment, now=now, what="video room")  # its therapist?
    return appointment


def set_room_link(
    *, actor: User, appointment_id: int, link: str | None, now: datetime
) -> Appointment:
    """The therapist pastes (or clears) the room of one of their own video sessions, for a
    program without a room template. NotFound as `therapist_video_session`;
    ValidationError for a link that is not https."""
    appointment = therapist_video_session(actor, appointment_id, now=now)
    if session_is_over(appointment.ends_at, appointment.status, now):
        raise ValidationError(
            _("This session is over or cancelled: its room will not open again."),
            field="room_link",
        )
    appointment.room_link = check_room_link(link)
    audit.record("video.room_link_set", actor=actor, obj=appointment, now=now)
    db.session.flush()
    return appointment


def forget_ended_room_links(now: datetime) -> int:
    """The mail worker's hook: clear the pasted links of sessions that have ended or were
    cancelled. Nobody is let in after the end, and such a link (often with its meeting's
    passcode) names a clinic's room to whoever reads a backup. Returns how many."""
    forgotten = db.session.execute(
        update(Appointment)
        .where(
            Appointment.room_link.is_not(None),
            or_(Appointment.ends_at <= now, Appointment.status == AppointmentStatus.CANCELLED),
        )
        .values(room_link=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if forgotten:
        audit.record("video.room_links_forgotten", detail={"count": forgotten}, now=now)
    return forgotten
