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


def _recipient(seat):
    return seat.present_attendees[0].user


def _feed(seat, now):
    from familylink.services.calendar import feeds

    token = feeds.turn_on_feed(_recipient(seat), now=now)
    return feeds.feed_for_token(token, now=now)


@pytest.mark.parametrize("cancelled", [False, True])
def test_a_request_or_cancel_names_the_programs_neutral_sender_as_organizer(
    app, seat, now, cancelled
):
    """RFC 5546: METHOD:REQUEST and METHOD:CANCEL each need the ORGANIZER."""
    from familylink.services.program import get_program

    data = appointment_ics(seat.appointment, _recipient(seat), now=now, cancelled=cancelled)
    (event,) = Calendar.from_ical(data).walk("VEVENT")
    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:" + app.config["MAIL_DEFAULT_SENDER"]
    assert organizer.params["CN"] == get_program().sender_name


def test_a_clinical_sender_name_never_reaches_a_calendar_file(seat, now):
    """A name saved before the text screen existed gives way to the neutral one."""
    from familylink.extensions import db
    from familylink.models import Program
    from familylink.services.program import forget_cached_program

    db.session.scalars(db.select(Program)).one().sender_name = "Riverside Addiction Recovery"
    forget_cached_program()
    data = appointment_ics(seat.appointment, _recipient(seat), now=now)
    (event,) = Calendar.from_ical(data).walk("VEVENT")
    assert event["ORGANIZER"].params["CN"] == "Family Sessions"
    assert b"addiction" not in data.lower()


def test_the_private_feed_is_published_with_its_organizer(seat, now):
    """A feed is published (METHOD:PUBLISH), never a request that asks for a reply."""
    cal = Calendar.from_ical(_feed(seat, now))
    cal.validate()
    assert str(cal["METHOD"]) == "PUBLISH"
    (event,) = cal.walk("VEVENT")
    assert "ORGANIZER" in event
    assert str(event["STATUS"]) == "CONFIRMED"


@pytest.mark.parametrize("kind", ["request", "cancel", "feed"])
def test_every_calendar_file_passes_an_independent_rfc_5545_parser(app, seat, now, kind):
    """`ical` (allenporter/ical) is a separate RFC 5545 implementation from `icalendar`."""
    from ical.calendar_stream import IcsCalendarStream

    if kind == "feed":
        data = _feed(seat, now)
    else:
        recipient = _recipient(seat)
        data = appointment_ics(seat.appointment, recipient, now=now, cancelled=kind == "cancel")
    (calendar,) = IcsCalendarStream.from_ics(data.decode()).calendars
    assert calendar.method == {"request": "REQUEST", "cancel": "CANCEL", "feed": "PUBLISH"}[kind]
    (event,) = calendar.events
    assert event.uid == seat.appointment.uid
    assert event.dtstart == seat.appointment.starts_at
    assert event.end == seat.appointment.ends_at
    assert event.organizer.uri == "mailto:" + app.config["MAIL_DEFAULT_SENDER"]


def test_an_appointment_ending_at_midnight_reads_to_midnight_in_its_email_and_file(seat, now):
    """The booking emails and the .ics description give the span; midnight reads "midnight"."""
    from datetime import UTC, datetime, timedelta

    from familylink.services.booking.notices import mail_context

    appointment, recipient = seat.appointment, _recipient(seat)
    recipient.timezone = "America/New_York"
    appointment.ends_at = datetime(2026, 12, 10, 5, 0, tzinfo=UTC)  # midnight after Dec 9
    appointment.starts_at = appointment.ends_at - timedelta(hours=1)
    expected = "Wednesday, December 9, 2026, 11:00 PM to midnight EST"
    assert mail_context(appointment, recipient)["when"] == expected
    (event,) = Calendar.from_ical(appointment_ics(appointment, recipient, now=now)).walk("VEVENT")
    assert expected in str(event["DESCRIPTION"])
    assert "12:00 AM" not in str(event["DESCRIPTION"])


@pytest.mark.parametrize("cancelled", [False, True])
def test_each_week_of_a_series_has_its_own_file_that_says_nothing_clinical(app_ctx, cancelled):
    """A weekly series is one file per week (docs/booking.md, "Weekly series"): each is a
    single event with its own UID, at the same local time across the fall-back, and as
    content-free as any other."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from familylink.extensions import db
    from familylink.models import Appointment, OutboxEmail
    from tests.moments import WEEK_BEFORE_FALL_BACK

    now, zone = WEEK_BEFORE_FALL_BACK, ZoneInfo("America/New_York")
    clinic = create_clinic()
    series = booking.book_series(
        actor=clinic.therapist,
        patient_id=clinic.patient.id,
        session_type_id=clinic.private.id,
        first_start=datetime(2026, 10, 27, 10, 0, tzinfo=zone).astimezone(UTC),
        weeks=4,
        attendee_ids=[clinic.family.id],
        note="Talk about the relapse and rehab plan",
        now=now,
    )
    appointments = db.session.scalars(
        db.select(Appointment).where(Appointment.weekly_series_id == series.id)
    ).all()
    if cancelled:
        booking.cancel_future(
            actor=clinic.therapist, seat_id=appointments[0].seats[0].id, reason="other", now=now
        )
    kind = "booking_cancelled" if cancelled else "booking_confirmed"
    files = db.session.scalars(
        db.select(OutboxEmail.attachment_data).where(OutboxEmail.kind == kind)
    ).all()
    assert len(files) == 4
    events = []
    for data in files:
        cal = Calendar.from_ical(data)
        cal.validate()
        (event,) = cal.walk("VEVENT")
        assert "RRULE" not in event
        assert str(cal["METHOD"]) == ("CANCEL" if cancelled else "REQUEST")
        assert not [word for word in FORBIDDEN if word in data.decode().lower()]
        events.append(event)
    assert len({str(e["UID"]) for e in events}) == 4
    local = sorted(e.decoded("DTSTART").astimezone(zone) for e in events)
    assert {(t.hour, t.minute) for t in local} == {(10, 0)}
