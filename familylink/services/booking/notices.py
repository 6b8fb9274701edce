"""The emails about an appointment: what each names (a neutral title, the person's own local
time) and one message with its own .ics to each family member coming to a seat. Whether the
consent still covers the person is checked again when each email is sent (`required_scope`).
"""

from __future__ import annotations

from datetime import datetime

from familylink.extensions import db
from familylink.i18n import Later
from familylink.models import Appointment, AppointmentFamily, Scope, User
from familylink.services import mail
from familylink.services.calendar.ics import ics_attachment, neutral_title, where
from familylink.services.timefmt import format_span


def mail_context(appointment: Appointment, person: User) -> dict:
    """Words written when the email is rendered, in its recipient's language (i18n.Later)."""
    return {
        "appointment": appointment,
        "title": Later(neutral_title, appointment),
        "when": Later(format_span, appointment.starts_at, appointment.ends_at, person.timezone),
        "where": Later(where, appointment),
        "minutes": appointment.session_type.duration_minutes,
    }


def tell_attendees(
    kind: str, seat: AppointmentFamily, *, key: str, actor, now: datetime, audited=()
) -> None:
    """One email with that person's own .ics to each family member coming to the seat,
    queued together (one INSERT, nothing read back); `audited`, the audit rows of the change
    they tell of, written in one INSERT with theirs."""
    appointment = seat.appointment
    emails = []
    for attendee in seat.present_attendees:
        person = attendee.user or db.session.get(User, attendee.user_id)
        emails.append(
            mail.Queued(
                kind,
                to=person,
                dedupe_key=f"{kind}:{key}:{person.id}",
                context=mail_context(appointment, person),
                patient_id=seat.patient_id,
                required_scope=Scope.SCHEDULING,
                # Told after the session is over, it tells nothing; failed, it keeps no
                # time or place past then (`mail.expire_unsent`).
                not_after=appointment.ends_at,
                attachment=ics_attachment(
                    appointment, person, now=now, cancelled=kind == "booking_cancelled"
                ),
                actor=actor,
            )
        )
    mail.queue_many(emails, now=now, audited=list(audited))
