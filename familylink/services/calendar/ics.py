"""iCalendar files: one recipient's own view of one appointment, in neutral words.

The UID never changes for an appointment; SEQUENCE rises with every change; a cancellation
is METHOD:CANCEL, with no place (never a join link). A seat's file (`seat_file`) is its
cancellation once the seat is off the calendar. No other family, no attendee list, nothing
clinical. RFC 5546 asks every REQUEST, CANCEL and PUBLISH to name its ORGANIZER: the
program's neutral sender, the name screened as on its emails (`safe_sender_name`).
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr
from functools import lru_cache

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from familylink.i18n import normalise
from familylink.models import (
    Appointment,
    AppointmentFamily,
    SessionMode,
    User,
)
from familylink.services.calendar import writer
from familylink.services.links import external_url
from familylink.services.mail import Attachment
from familylink.services.program import get_program
from familylink.services.screening import safe_sender_name, safe_staff_name
from familylink.services.timefmt import format_span

PRODID = "-//FamilyLink//Family sessions//EN"


def neutral_title(appointment: Appointment) -> str:
    """'Family session with Grace Lee', in the language being spoken."""
    name = safe_staff_name(appointment.therapist.name)
    if appointment.is_group:
        return _("Group session with %(name)s", name=name)
    return _("Family session with %(name)s", name=name)


def join_link(appointment: Appointment) -> str | None:
    """The FamilyLink join link of a video session (never the room itself: the link checks
    attendee, consent and time when it is followed, and only then reveals the room)."""
    if appointment.join_token is None:
        return None
    return external_url("rooms.join", token=appointment.join_token)


def where(appointment: Appointment) -> str:
    session_type = appointment.session_type
    if session_type.mode == SessionMode.VIDEO:
        return join_link(appointment) or _("Video call (link to follow)")
    return session_type.location or ""


def organizer() -> tuple[str, str]:
    """`ORGANIZER;CN=<neutral sender name>:mailto:<MAIL_DEFAULT_SENDER>`: its parameters and
    value."""
    address = _address_of(current_app.config["MAIL_DEFAULT_SENDER"])
    return writer.organizer(safe_sender_name(get_program().sender_name), address)


@lru_cache(maxsize=8)
def _address_of(sender: str) -> str:
    # The configured sender, parsed once a process rather than for every calendar file.
    return parseaddr(sender)[1]


def _event(appointment: Appointment, recipient: User, *, now: datetime, cancelled: bool) -> list:
    title = neutral_title(appointment)
    local = format_span(appointment.starts_at, appointment.ends_at, recipient.timezone)
    event = [
        ("UID", writer.text(appointment.uid)),
        ("DTSTAMP", writer.utc(now)),
        ("DTSTART", writer.utc(appointment.starts_at)),
        ("DTEND", writer.utc(appointment.ends_at)),
        ("SEQUENCE", str(appointment.sequence)),
        ("ORGANIZER", *organizer()),
        ("SUMMARY", writer.text(title)),
        ("DESCRIPTION", writer.text(_("%(title)s, %(when)s.", title=title, when=local))),
        ("STATUS", "CANCELLED" if cancelled else "CONFIRMED"),
    ]
    # A cancellation names no place: nothing to go to, and never a video session's join link.
    place = None if cancelled else where(appointment)
    if place:
        event.append(("LOCATION", writer.text(place)))
    return event


def _calendar(method: str) -> list[tuple[str, str]]:
    return [("PRODID", writer.text(PRODID)), ("VERSION", "2.0"), ("METHOD", method)]


def appointment_ics(
    appointment: Appointment, recipient: User, *, now: datetime, cancelled: bool = False
) -> bytes:
    with force_locale(normalise(recipient.locale)):  # the file speaks its recipient's language
        event = _event(appointment, recipient, now=now, cancelled=cancelled)
    return writer.calendar(_calendar("CANCEL" if cancelled else "REQUEST"), [event])


def ics_attachment(
    appointment: Appointment, recipient: User, *, now: datetime, cancelled: bool = False
) -> Attachment:
    return Attachment(
        filename="cancel.ics" if cancelled else "invite.ics",
        # A Spanish summary is not ASCII: the part names its charset (RFC 5545's default).
        content_type="text/calendar; charset=utf-8",
        data=appointment_ics(appointment, recipient, now=now, cancelled=cancelled),
    )


def seat_file(seat: AppointmentFamily, recipient: User, *, now: datetime) -> Attachment:
    """The calendar file of a family's seat, as its page serves it to `recipient`: the
    session as it is now while the seat is on the calendar (`AppointmentFamily.on_calendar`:
    booked, in a session still scheduled, a moved one at its new time); else its
    cancellation, the very file the cancellation email carries (METHOD:CANCEL, the same UID,
    the appointment's SEQUENCE, no place)."""
    return ics_attachment(seat.appointment, recipient, now=now, cancelled=not seat.on_calendar)


def feed_ics(appointments: list[Appointment], recipient: User, *, now: datetime) -> bytes:
    # A feed is published: nothing in it asks for a reply.
    with force_locale(normalise(recipient.locale)):
        events = [_event(a, recipient, now=now, cancelled=False) for a in appointments]
    return writer.calendar(_calendar("PUBLISH"), events)
