"""Every calendar file a page serves or links, in every state of its seat.

The files: a family member's seat file (`/booking/<seat>/calendar.ics`, a week of a series
included: each week is a seat), linked from the seat page and from the family home's next
session, and the private feeds (family member, patient, therapist). The therapist has no
per-session file. While a seat is on its family's calendar (booked, in a session still
scheduled) its file adds it, at its time as it is now; once cancelled (by the family, late,
by the therapist, a group place left, a week of a series) its file is the cancellation the
email sent (METHOD:CANCEL, the same UID, a SEQUENCE no lower than the last file sent, no
place and no join link) and no page offers to add it; once released (the member's access
ended) there is nothing to read. A feed holds a session only while it is on the calendar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    OutboxEmail,
    SessionType,
)
from familylink.services import booking
from tests.booking_setup import Clinic, create_clinic, end_access, family_seat
from tests.moments import NOON

AHEAD = NOON + timedelta(days=3)  # outside the 24-hour cancellation window
SOON = NOON + timedelta(hours=5)  # inside it: a family's cancellation is late
STARTED = NOON - timedelta(hours=1)  # under way: the therapist marks attendance


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


# --- The states, each reached through the real operations --------------------------------


def _video(clinic: Clinic) -> SessionType:
    video = SessionType(name="Family session (video)", duration_minutes=50, mode="video")
    db.session.add(video)
    db.session.flush()
    return video


def _seat(clinic: Clinic, starts_at=AHEAD, *, session_type=None) -> AppointmentFamily:
    return family_seat(
        clinic,
        starts_at,
        booked_at=NOON - timedelta(days=7),
        session_type=session_type or _video(clinic),
    )


def _series(clinic: Clinic) -> list[AppointmentFamily]:
    """Three weeks booked by the therapist, the first a free time two days ahead or more."""
    first = next(
        s
        for s in booking.slots_for(clinic.therapist.id, clinic.private, now=NOON)
        if s >= NOON + timedelta(days=2)
    )
    series = booking.book_series(
        actor=clinic.therapist,
        patient_id=clinic.patient.id,
        session_type_id=clinic.private.id,
        first_start=first,
        weeks=3,
        attendee_ids=[clinic.family.id],
        now=NOON,
    )
    return list(
        db.session.scalars(
            select(AppointmentFamily)
            .join(AppointmentFamily.appointment)
            .where(Appointment.weekly_series_id == series.id)
            .order_by(Appointment.starts_at)
        )
    )


def booked(clinic):
    return _seat(clinic)


def cancelled_by_the_family(clinic):
    seat = _seat(clinic)
    return booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=NOON)


def late_cancelled_by_the_family(clinic):
    seat = _seat(clinic, SOON)
    return booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=NOON)


def cancelled_by_the_therapist(clinic):
    seat = _seat(clinic)
    return booking.therapist_cancel(
        actor=clinic.therapist, seat_id=seat.id, reason="therapist_unavailable", now=NOON
    )


def group_place_left_by_the_family(clinic):
    seat = _seat(clinic, session_type=clinic.group)  # a video group, still held for others
    return booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=NOON)


def group_place_cancelled_by_the_therapist(clinic):
    seat = _seat(clinic, session_type=clinic.group)
    return booking.therapist_cancel(
        actor=clinic.therapist, seat_id=seat.id, reason="family_asked", now=NOON
    )


def marked_late_cancelled_once_started(clinic):
    seat = _seat(clinic, STARTED)
    return booking.mark_attendance(
        actor=clinic.therapist, seat_id=seat.id, value="late_cancelled", now=NOON
    )


def series_week_cancelled_with_the_later_ones(clinic):
    weeks = _series(clinic)
    booking.cancel_future(actor=clinic.family, seat_id=weeks[1].id, now=NOON)
    return weeks[2]


def series_cancelled_by_the_therapist(clinic):
    weeks = _series(clinic)
    booking.cancel_future(
        actor=clinic.therapist, seat_id=weeks[0].id, reason="program_closed", now=NOON
    )
    return weeks[0]


def moved_by_the_family(clinic):
    seat = _seat(clinic, session_type=clinic.private)
    to = next(
        s
        for s in booking.slots_for(clinic.therapist.id, clinic.private, now=NOON)
        if s >= NOON + timedelta(days=2) and abs(s - AHEAD) > timedelta(hours=2)
    )
    return booking.reschedule(actor=clinic.family, seat_id=seat.id, starts_at=to, now=NOON)


def moved_by_the_therapist(clinic):
    seat = _seat(clinic)
    to = AHEAD + timedelta(days=1, hours=1)
    return booking.reschedule(actor=clinic.therapist, seat_id=seat.id, starts_at=to, now=NOON)


def series_moved_by_the_therapist(clinic):
    weeks = _series(clinic)
    to = weeks[0].appointment.starts_at + timedelta(hours=2)
    booking.move_future(actor=clinic.therapist, seat_id=weeks[0].id, starts_at=to, now=NOON)
    return weeks[0]


def released_when_access_ended(clinic):
    seat = _seat(clinic)
    end_access(seat.id, NOON)
    return seat


ON, CANCELLED, GONE = "on the calendar", "cancelled", "gone"
STATES = {
    booked: ON,
    moved_by_the_family: ON,
    moved_by_the_therapist: ON,
    series_moved_by_the_therapist: ON,
    cancelled_by_the_family: CANCELLED,
    late_cancelled_by_the_family: CANCELLED,
    cancelled_by_the_therapist: CANCELLED,
    group_place_left_by_the_family: CANCELLED,
    group_place_cancelled_by_the_therapist: CANCELLED,
    marked_late_cancelled_once_started: CANCELLED,
    series_week_cancelled_with_the_later_ones: CANCELLED,
    series_cancelled_by_the_therapist: CANCELLED,
    released_when_access_ended: GONE,
}
each_state = pytest.mark.parametrize(
    ("state", "expected"), list(STATES.items()), ids=[s.__name__ for s in STATES]
)


@dataclass
class Made:
    seat: int
    uid: str
    starts_at: datetime
    sequence: int
    appointment_scheduled: bool
    join_token: str
    family: str
    patient: str
    therapist: str


def make(app, state) -> Made:
    with app.app_context():
        clinic = create_clinic()
        seat = state(clinic)
        db.session.commit()
        appointment = db.session.get(Appointment, seat.appointment_id)
        return Made(
            seat=seat.id,
            uid=appointment.uid,
            starts_at=appointment.starts_at,
            sequence=appointment.sequence,
            appointment_scheduled=appointment.status == "scheduled",
            join_token=appointment.join_token,
            family=clinic.family.email,
            patient=clinic.patient.email,
            therapist=clinic.therapist.email,
        )


def files_sent(app, made: Made) -> list[bytes]:
    """The calendar files emailed to the family member about this session."""
    with app.app_context():
        rows = db.session.scalars(
            select(OutboxEmail).where(
                OutboxEmail.to_address == made.family, OutboxEmail.attachment_data.is_not(None)
            )
        ).all()
        return [r.attachment_data for r in rows if made.uid.encode() in r.attachment_data]


def the_event(data: bytes):
    calendar = Calendar.from_ical(data)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


# --- The seat's calendar file ----------------------------------------------------------------


@each_state
def test_the_seats_calendar_file_says_what_the_seat_is_now(app, client, auth, state, expected):
    made = make(app, state)
    auth.login(made.family)
    response = client.get(f"/booking/{made.seat}/calendar.ics")
    if expected == GONE:
        assert response.status_code == 404
        return
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar, event = the_event(response.data)
    assert str(event["UID"]) == made.uid
    assert event.decoded("DTSTART") == made.starts_at  # a moved session: its new time
    if expected == ON:
        assert str(calendar["METHOD"]) == "REQUEST" and str(event["STATUS"]) == "CONFIRMED"
        assert int(event["SEQUENCE"]) == made.sequence
        return
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    sent = files_sent(app, made)
    last_sent = max([int(the_event(f)[1]["SEQUENCE"]) for f in sent], default=0)
    assert int(event["SEQUENCE"]) >= last_sent
    # No place and no way in: not the join link, not the room.
    assert "LOCATION" not in event
    assert made.join_token.encode() not in response.data and b"/join/" not in response.data
    # The cancellation the email carried, built by the same code, at the same moment.
    cancellations = [f for f in sent if b"METHOD:CANCEL" in f]
    if cancellations:
        assert response.data == cancellations[-1]


@each_state
def test_a_cancellation_email_carries_no_place_and_no_join_link(app, state, expected):
    made = make(app, state)
    for data in files_sent(app, made):
        calendar, event = the_event(data)
        if str(calendar["METHOD"]) == "CANCEL":
            assert "LOCATION" not in event
            assert made.join_token.encode() not in data


# --- The pages that link it ------------------------------------------------------------------


@each_state
def test_the_seat_page_offers_the_file_only_while_the_seat_is_on_the_calendar(
    app, client, auth, state, expected
):
    made = make(app, state)
    auth.login(made.family)
    response = client.get(f"/booking/{made.seat}")
    if expected == GONE:
        assert response.status_code == 404
        return
    page = response.get_data(as_text=True)
    offered = f"/booking/{made.seat}/calendar.ics" in page
    assert offered == (expected == ON)
    assert ("Add to my calendar" in page) == (expected == ON)
    if expected == CANCELLED:
        assert made.join_token not in page and "/join/" not in page
        assert "cancelled" in page


@each_state
def test_the_family_home_links_only_a_session_on_the_calendar(app, client, auth, state, expected):
    made = make(app, state)
    auth.login(made.family)
    page = client.get("/family/", follow_redirects=True).get_data(as_text=True)
    assert (f"/booking/{made.seat}/calendar.ics" in page) == (expected == ON)


def test_cancelling_through_the_page_leaves_a_cancellation_and_no_offer(app, client, auth):
    """The reviewer's steps: cancel a video session on its page, then open the page and
    the file again."""
    made = make(app, booked)
    auth.login(made.family)
    assert client.post(f"/booking/{made.seat}/cancel").status_code == 302
    page = client.get(f"/booking/{made.seat}").get_data(as_text=True)
    assert "calendar.ics" not in page and "/join/" not in page
    response = client.get(f"/booking/{made.seat}/calendar.ics")
    calendar, event = the_event(response.data)
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == made.uid and int(event["SEQUENCE"]) == made.sequence + 1
    assert b"LOCATION" not in response.data and made.join_token.encode() not in response.data


# --- The private feeds -----------------------------------------------------------------------


def feed_of(client, auth, email: str) -> bytes:
    auth.login(email)
    page = client.post("/booking/feed", data={"action": "on"}).get_data(as_text=True)
    path = re.search(r"http://familylink.test(/booking/feed/[^<\s]+\.ics)", page).group(1)
    auth.logout()
    response = client.get(path)
    assert response.status_code == 200
    return response.data


@each_state
@pytest.mark.parametrize("who", ["family", "patient", "therapist"])
def test_each_feed_holds_a_session_only_while_it_is_on_the_calendar(
    app, client, auth, state, expected, who
):
    made = make(app, state)
    events = {
        str(e["UID"]): e
        for e in Calendar.from_ical(feed_of(client, auth, getattr(made, who))).walk("VEVENT")
    }
    if who == "therapist":  # their own session: a group goes on when one family leaves it
        shown = made.appointment_scheduled and made.starts_at > NOON
    else:
        shown = expected == ON
    assert (made.uid in events) == shown
    if shown:
        event = events[made.uid]
        assert event.decoded("DTSTART") == made.starts_at
        assert str(event["STATUS"]) == "CONFIRMED"
