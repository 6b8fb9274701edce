"""iCalendar files: one recipient's own view of one appointment, in neutral words.

The UID never changes for an appointment; SEQUENCE rises with every change; a cancellation
is METHOD:CANCEL. No other family, no attendee list, nothing clinical. RFC 5546 asks every
REQUEST, CANCEL and PUBLISH to name its ORGANIZER: the program's neutral sender, the name
screened as on its emails (`safe_sender_name`).
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from icalendar import Calendar, Event, vCalAddress

from familylink.i18n import normalise
from familylink.models import (
    Appointment,
    SessionMode,
    User,
)
from familylink.services.links import external_url
from familylink.services.mail import Attachment
from familylink.services.program import get_program
from familylink.services.screening import safe_sender_name
from familylink.services.timefmt import format_span

PRODID = "-//FamilyLink//Family sessions//EN"


def neutral_title(appointment: Appointment) -> str:
    """'Family session with Grace Lee', in the language being spoken."""
    if appointment.is_group:
        return _("Group session with %(name)s", name=appointment.therapist.name)
    return _("Family session with %(name)s", name=appointment.therapist.name)


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


def organizer() -> vCalAddress:
    """`ORGANIZER;CN=<neutral sender name>:mailto:<MAIL_DEFAULT_SENDER>`."""
    address = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]
    value = vCalAddress(f"mailto:{address}")
    value.params["CN"] = safe_sender_name(get_program().sender_name)
    return value


def _event(appointment: Appointment, recipient: User, *, now: datetime, cancelled: bool) -> Event:
    event = Event()
    event.add("uid", appointment.uid)
    event.add("dtstamp", now)
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    event.add("sequence", appointment.sequence)
    event.add("organizer", organizer())
    event.add("summary", neutral_title(appointment))
    place = where(appointment)
    if place:
        event.add("location", place)
    local = format_span(appointment.starts_at, appointment.ends_at, recipient.timezone)
    event.add(
        "description", _("%(title)s, %(when)s.", title=neutral_title(appointment), when=local)
    )
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return event


def appointment_ics(
    appointment: Appointment, recipient: User, *, now: datetime, cancelled: bool = False
) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else "REQUEST")
    with force_locale(normalise(recipient.locale)):  # the file speaks its recipient's language
        cal.add_component(_event(appointment, recipient, now=now, cancelled=cancelled))
    return cal.to_ical()


def ics_attachment(
    appointment: Appointment, recipient: User, *, now: datetime, cancelled: bool = False
) -> Attachment:
    return Attachment(
        filename="cancel.ics" if cancelled else "invite.ics",
        # A Spanish summary is not ASCII: the part names its charset (RFC 5545's default).
        content_type="text/calendar; charset=utf-8",
        data=appointment_ics(appointment, recipient, now=now, cancelled=cancelled),
    )


def feed_ics(appointments: list[Appointment], recipient: User, *, now: datetime) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")  # a feed is published: nothing in it asks for a reply
    with force_locale(normalise(recipient.locale)):
        for appointment in appointments:
            cal.add_component(_event(appointment, recipient, now=now, cancelled=False))
    return cal.to_ical()
