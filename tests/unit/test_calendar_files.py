"""Calendar files parse with icalendar, pass its checks, and say nothing clinical."""

import pytest
from icalendar import Calendar

from familylink.services import booking
from familylink.services.calendar.ics import appointment_ics
from tests.booking_setup import create_clinic

FORBIDDEN = ("addiction", "substance", "rehab", "recovery", "treatment", "iop", "detox", "rivera")


@pytest.fixture
def seat(app_ctx, now):
    clinic = create_clinic()
    slot = booking.slots_for(clinic.therapist.id, clinic.private, now=now)[0]
    return booking.book_private(
        actor=clinic.family,
        patient_id=clinic.patient.id,
        session_type_id=clinic.private.id,
        starts_at=slot,
        now=now,
    )


@pytest.mark.parametrize("cancelled", [False, True])
def test_ics_parses_and_passes_icalendar_checks(seat, now, cancelled):
    recipient = seat.present_attendees[0].user
    data = appointment_ics(seat.appointment, recipient, now=now, cancelled=cancelled)
    cal = Calendar.from_ical(data)
    cal.validate()
    assert cal.errors == []
    (event,) = cal.walk("VEVENT")
    assert event.errors == []
    for name in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SEQUENCE", "SUMMARY"):
        assert name in event
    assert str(cal["METHOD"]) == ("CANCEL" if cancelled else "REQUEST")
    assert str(event["STATUS"]) == ("CANCELLED" if cancelled else "CONFIRMED")
    text = data.decode().lower()
    assert not [word for word in FORBIDDEN if word in text]


def test_uid_is_stable_and_sequence_rises(seat, now):
    recipient = seat.present_attendees[0].user
    first = Calendar.from_ical(appointment_ics(seat.appointment, recipient, now=now))
    seat.appointment.sequence += 1
    second = Calendar.from_ical(appointment_ics(seat.appointment, recipient, now=now))
    (a,), (b,) = first.walk("VEVENT"), second.walk("VEVENT")
    assert a["UID"] == b["UID"]
    assert b["SEQUENCE"] > a["SEQUENCE"]


def test_the_confirmation_email_arrives_with_the_ics_attached(mail_app, smtp_server, now):
    from familylink.extensions import db
    from familylink.services import mail

    with mail_app.app_context():
        clinic = create_clinic()
        slot = booking.slots_for(clinic.therapist.id, clinic.private, now=now)[0]
        booking.book_private(
            actor=clinic.family,
            patient_id=clinic.patient.id,
            session_type_id=clinic.private.id,
            starts_at=slot,
            now=now,
        )
        db.session.commit()
        assert mail.send_pending(now=now).sent == 1
    (message,) = smtp_server.parsed()
    assert message["Subject"] == "Your appointment is confirmed"
    (attachment,) = [p for p in message.iter_attachments()]
    assert attachment.get_content_type() == "text/calendar"
    cal = Calendar.from_ical(attachment.get_content())
    assert cal.walk("VEVENT")[0].decoded("DTSTART") == slot
