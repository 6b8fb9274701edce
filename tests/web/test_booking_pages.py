"""Booking through the pages: family books, sees, cancels; therapist sees it in the calendar."""

import re
from datetime import date, time

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import Appointment, AppointmentFamily, OutboxEmail, Role, SeatStatus, User
from familylink.services import booking
from tests.booking_setup import add_family, create_clinic
from tests.factories import create_consent, create_user
from tests.moments import BEFORE_SPRING_FORWARD, NOON


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def slot_values(page: str) -> list[str]:
    """The times offered: the week picker's radio buttons, or a move form's options."""
    return re.findall(r'(?:<option|type="radio" name="slot" id="[^"]*") value="([^"]+Z)"', page)


def count_appointments(app):
    with app.app_context():
        return db.session.scalar(select(func.count(Appointment.id)))


def outbox(app, kind):
    with app.app_context():
        return db.session.scalars(select(OutboxEmail).where(OutboxEmail.kind == kind)).all()


def book_first(client, clinic, key="key-1", index=0):
    page = client.get(f"/booking/new?patient={clinic['patient']}").get_data(as_text=True)
    slot = slot_values(page)[index]
    data = {"slot": slot, "request_key": key, "note": "hi", "confirmed": "1"}
    return client.post(f"/booking/new?patient={clinic['patient']}", data=data), slot


def test_family_member_books_and_sees_the_confirmation(app, client, auth, clinic):
    auth.login(clinic["family"])
    page = client.get(f"/booking/new?patient={clinic['patient']}").get_data(as_text=True)
    assert "<legend>Thursday, November 19</legend>" in page
    assert '<label for="slot-2026-11-19T1400Z">9:00 AM</label>' in page
    response, _ = book_first(client, clinic)
    assert response.status_code == 302
    confirmation = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You're booked" in confirmation and "9:00 AM EST" in confirmation
    (mail,) = outbox(app, "booking_confirmed")
    assert mail.subject == "Your appointment is confirmed" and mail.attachment_data


def test_the_familys_note_reaches_the_booking(app, client, auth, clinic):
    auth.login(clinic["family"])
    response, _ = book_first(client, clinic)
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(AppointmentFamily.note)).one() == "hi"


def test_a_double_submitted_form_books_once(app, client, auth, clinic):
    auth.login(clinic["family"])
    first, slot = book_first(client, clinic, key="same")
    data = {"slot": slot, "request_key": "same", "confirmed": "1"}
    second = client.post(f"/booking/new?patient={clinic['patient']}", data=data)
    assert second.headers["Location"] == first.headers["Location"]
    assert count_appointments(app) == 1


@pytest.mark.parametrize("confirmed", ["", "1"])
@pytest.mark.parametrize(
    "slot", ["2026-11-18T08:00Z", "2026-11-20T03:00Z", "garbage", "9999-12-31T23:59Z", ""]
)
def test_a_bad_slot_is_refused_beside_the_field_and_nothing_changes(
    app, client, auth, clinic, slot, confirmed
):
    auth.login(clinic["family"])
    data = {"slot": slot, "request_key": "k", "confirmed": confirmed}
    response = client.post(f"/booking/new?patient={clinic['patient']}", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="slot-error"' in page
    assert count_appointments(app) == 0


def test_a_time_taken_meanwhile_returns_to_its_week_with_the_message(app, client, auth, clinic):
    # Maria saw the week and chose a time; someone booked it before she confirmed.
    auth.login(clinic["family"])
    url = f"/booking/new?patient={clinic['patient']}"
    offered = slot_values(client.get(url).get_data(as_text=True))
    _, taken = book_first(client, clinic, key="first")
    data = {"slot": taken, "request_key": "second", "confirmed": "1"}
    response = client.post(url, data=data)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "someone else just booked that time" in page
    assert "Week of Monday, November 16, 2026" in page
    assert slot_values(page) == [s for s in offered if s != taken]
    assert count_appointments(app) == 1


def test_a_time_taken_before_the_confirmation_step_returns_to_the_week(app, client, auth, clinic):
    auth.login(clinic["family"])
    _, taken = book_first(client, clinic, key="first")
    response = client.post(
        f"/booking/new?patient={clinic['patient']}", data={"slot": taken, "request_key": "k2"}
    )
    assert response.status_code == 409
    assert "someone else just booked that time" in response.get_data(as_text=True)


def test_a_foreign_patient_id_answers_404(app, client, auth, clinic):
    with app.app_context():
        other = create_user(Role.PATIENT)
        other_id = other.id
        db.session.commit()
    auth.login(clinic["family"])
    assert client.get(f"/booking/new?patient={other_id}").status_code == 404
    response = client.post(
        f"/booking/new?patient={other_id}",
        data={"slot": "2026-11-19T14:00Z", "confirmed": "1"},
    )
    assert response.status_code == 404
    assert count_appointments(app) == 0


def test_a_forged_seat_id_answers_404(app, client, auth, clinic):
    auth.login(clinic["family"])
    book_first(client, clinic)
    assert client.get("/booking/999").status_code == 404
    assert client.post("/booking/999/cancel").status_code == 404


def test_moving_someone_elses_seat_with_a_bad_time_is_404_not_a_message(app, client, auth, clinic):
    with app.app_context():
        intruder = add_family(db.session.get(User, clinic["patient"]), "Ivy Intruder")
        intruder_email = intruder.email
        db.session.commit()
    auth.login(clinic["family"])
    seat_path = book_first(client, clinic)[0].headers["Location"].split("?")[0]
    client.post("/logout")
    auth.login(intruder_email)
    response = client.post(seat_path + "/reschedule", data={"slot": "not a time"})
    assert response.status_code == 404
    assert client.get(seat_path + "/cancel").status_code == 404  # nor the cancel question


def test_someone_elses_waitlist_offer_page_is_404(app, client, auth, clinic):
    auth.login(clinic["family"])
    assert client.get("/booking/claim/999").status_code == 404


def test_cancel_then_therapist_sees_it_in_the_calendar(app, client, auth, clinic):
    auth.login(clinic["family"])
    response, _ = book_first(client, clinic, index=10)
    seat_path = response.headers["Location"].split("?")[0]
    cancelled = client.post(seat_path + "/cancel", follow_redirects=True)
    assert "Cancelled" in cancelled.get_data(as_text=True)
    assert len(outbox(app, "booking_cancelled")) == 1
    auth.logout()
    auth.login(clinic["therapist"])
    page = client.get("/therapist/calendar?date=2026-11-20").get_data(as_text=True)
    assert "Maria Rivera" in page and "cancelled" in page
    assert "Friday, November 20, 2026, 11:00 AM EST" in page


def test_therapist_day_view_and_attendance(app, client, auth, clinic):
    auth.login(clinic["family"])
    book_first(client, clinic)
    auth.logout()
    app.config["NOW_OVERRIDE"] = NOON.replace(day=19, hour=16)
    auth.login(clinic["therapist"])
    page = client.get("/therapist/calendar?view=day&date=2026-11-19").get_data(as_text=True)
    assert "Maria Rivera" in page and "Jordan Rivera" in page
    seat_id = re.search(r"/therapist/seats/(\d+)/attendance", page).group(1)
    client.post(f"/therapist/seats/{seat_id}/attendance", data={"value": "attended"})
    page = client.get("/therapist/calendar?view=day&date=2026-11-19").get_data(as_text=True)
    assert "attended" in page


def _seat_page_after_marking(app, client, auth, clinic, value: str) -> str:
    """The seat page of a family member holding only the scheduling scope, after the
    therapist marked the family's attendance at that session."""
    with app.app_context():
        patient = db.session.get(User, clinic["patient"])
        member_email = add_family(patient, "Luis Rivera", scopes=("scheduling",)).email
        db.session.commit()
    auth.login(member_email)
    response, _ = book_first(client, clinic)
    seat_path = response.headers["Location"].split("?")[0]
    app.config["NOW_OVERRIDE"] = NOON.replace(day=19, hour=16)
    with app.app_context():
        seat = db.session.scalars(select(AppointmentFamily)).one()
        therapist = db.session.get(User, clinic["therapist_id"])
        booking.mark_attendance(
            actor=therapist, seat_id=seat.id, value=value, now=app.config["NOW_OVERRIDE"]
        )
        db.session.commit()
    auth.login(member_email)  # a day later: the earlier sign-in has timed out
    return client.get(seat_path).get_data(as_text=True)


def test_a_family_member_sees_their_own_attendance_without_the_attendance_scope(
    app, client, auth, clinic
):
    page = _seat_page_after_marking(app, client, auth, clinic, "attended")
    assert "You attended." in page
    # The family's own attendance is never presented as the patient's.
    assert "Jordan attended" not in page and "did not attend" not in page


def test_a_family_member_sees_that_they_did_not_attend(app, client, auth, clinic):
    page = _seat_page_after_marking(app, client, auth, clinic, "no_show")
    assert "You did not attend." in page and "Jordan" not in page.split("Information about")[0]


def test_attendance_left_on_a_cancelled_place_by_older_code_is_not_shown(app, client, auth, clinic):
    """Only a place still booked has attendance: a value an earlier version let the
    therapist mark on a cancelled place shows neither to the family nor on the calendar."""
    _seat_page_after_marking(app, client, auth, clinic, "attended")
    badge = 'class="badge">attended<'
    auth.logout()
    auth.login(clinic["therapist"])
    week = {"date": "2026-11-19"}
    assert badge in client.get("/therapist/calendar", query_string=week).get_data(as_text=True)
    with app.app_context():
        seat = db.session.scalars(select(AppointmentFamily)).one()
        seat.status = SeatStatus.CANCELLED  # as the rows such code left behind
        db.session.commit()
        seat_id = seat.id
    assert badge not in client.get("/therapist/calendar", query_string=week).get_data(as_text=True)
    auth.logout()
    with app.app_context():
        luis = db.session.scalars(select(User.email).where(User.name == "Luis Rivera")).one()
    auth.login(luis)
    page = client.get(f"/booking/{seat_id}").get_data(as_text=True)
    assert "cancelled" in page and "You attended." not in page


def test_the_patient_sees_family_sessions_planned_for_them(app, client, auth, clinic):
    auth.login(clinic["family"])
    book_first(client, clinic)
    auth.logout()
    auth.login(clinic["patient_email"])
    page = client.get("/patient/sessions").get_data(as_text=True)
    assert "Maria Rivera" in page and "9:00 AM EST" in page


def test_group_page_never_shows_another_familys_name(app, client, auth, clinic):
    with app.app_context():
        therapist = db.session.get(User, clinic["therapist_id"])
        (group,) = booking.schedule_group(
            actor=therapist,
            session_type_id=clinic["group"],
            first_day=date(2026, 11, 25),
            start_time=time(17),
            weeks=1,
            capacity=3,
            now=NOON,
        )
        other_patient = create_user(Role.PATIENT, therapist=therapist, name="Sam Okafor")
        ada = create_user(Role.FAMILY, name="Ada Okafor")
        create_consent(other_patient, ada)
        booking.book_group_seat(
            actor=ada, patient_id=other_patient.id, appointment_id=group.id, now=NOON
        )
        group_id = group.id
        db.session.commit()
    auth.login(clinic["family"])
    page = client.get(f"/booking/groups?patient={clinic['patient']}").get_data(as_text=True)
    assert "2 of 3 places free" in page and "Okafor" not in page
    response = client.post(f"/booking/groups/{group_id}?patient={clinic['patient']}")
    seat_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You're booked" in seat_page and "Okafor" not in seat_page
    ics = client.get(response.headers["Location"].split("?")[0] + "/calendar.ics")
    assert b"Okafor" not in ics.data and b"Rivera" not in ics.data
    (mail,) = [m for m in outbox(app, "booking_confirmed") if m.to_address == clinic["family"]]
    assert "Okafor" not in mail.text_body + mail.html_body


def test_los_angeles_family_booking_a_new_york_clinic_across_spring_forward(app, client, auth):
    app.config["NOW_OVERRIDE"] = BEFORE_SPRING_FORWARD
    with app.app_context():
        made = create_clinic(family_zone="America/Los_Angeles")
        patient_id, email = made.patient.id, made.family.email
        db.session.commit()
    auth.login(email)
    page = client.get(f"/booking/new?patient={patient_id}").get_data(as_text=True)
    # 9 AM in New York is 6 AM in Los Angeles, on both sides of the change.
    assert '<label for="slot-2026-03-07T1400Z">6:00 AM</label>' in page
    next_week = client.get(f"/booking/new?patient={patient_id}&week=2026-03-09")
    assert '<label for="slot-2026-03-09T1300Z">6:00 AM</label>' in next_week.get_data(as_text=True)
    check = client.post(f"/booking/new?patient={patient_id}", data={"slot": "2026-03-09T13:00Z"})
    assert "Monday, March 9, 2026, 6:00 AM PDT" in check.get_data(as_text=True)
    response = client.post(
        f"/booking/new?patient={patient_id}",
        data={"slot": "2026-03-09T13:00Z", "request_key": "la", "confirmed": "1"},
    )
    confirmation = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Monday, March 9, 2026, 6:00 AM PDT" in confirmation
    (mail,) = outbox(app, "booking_confirmed")
    assert "Monday, March 9, 2026, 6:00 AM to 6:50 AM PDT" in mail.text_body
    event = Calendar.from_ical(mail.attachment_data).walk("VEVENT")[0]
    start = event.decoded("DTSTART")
    assert start.isoformat() == "2026-03-09T13:00:00+00:00"
    assert "6:00 AM to 6:50 AM PDT" in str(event["DESCRIPTION"])


@pytest.mark.parametrize(
    ("slot", "shown"),
    [
        ("2026-10-30T13:00Z", "Friday, October 30, 2026, 6:00 AM PDT"),
        ("2026-11-02T14:00Z", "Monday, November 2, 2026, 6:00 AM PST"),
    ],
)
def test_los_angeles_family_around_fall_back(app, client, auth, slot, shown):
    from tests.moments import BEFORE_FALL_BACK

    app.config["NOW_OVERRIDE"] = BEFORE_FALL_BACK
    with app.app_context():
        made = create_clinic(family_zone="America/Los_Angeles")
        patient_id, email = made.patient.id, made.family.email
        db.session.commit()
    auth.login(email)
    week = client.get(f"/booking/new?patient={patient_id}&week={slot[:10]}")
    assert f'value="{slot}"> <label for="slot-{slot.replace(":", "")}">6:00 AM</label>' in (
        week.get_data(as_text=True)
    )
    check = client.post(f"/booking/new?patient={patient_id}", data={"slot": slot})
    assert shown in check.get_data(as_text=True)
    response = client.post(
        f"/booking/new?patient={patient_id}",
        data={"slot": slot, "request_key": "fb", "confirmed": "1"},
    )
    assert shown in client.get(response.headers["Location"]).get_data(as_text=True)
    (mail,) = outbox(app, "booking_confirmed")
    start, zone = shown.rsplit(" ", 1)  # the email gives the span, the zone named once
    assert f"{start} to 6:50 AM {zone}" in mail.text_body


def _group_of_two(made):
    """One group session for two families, on the clinic's Wednesday at 17:00."""
    (group,) = booking.schedule_group(
        actor=made.therapist,
        session_type_id=made.group.id,
        first_day=date(2026, 11, 25),
        start_time=time(17),
        weeks=1,
        capacity=2,
        now=NOON,
    )
    return group


def test_a_waitlisted_family_claims_the_offered_place_from_the_email_link(app, client, auth):
    with app.app_context():
        made = create_clinic()
        group = _group_of_two(made)
        seat = booking.book_group_seat(
            actor=made.family, patient_id=made.patient.id, appointment_id=group.id, now=NOON
        )
        third_patient = create_user(Role.PATIENT, therapist=made.therapist)
        bea = create_user(Role.FAMILY, name="Bea Stone")
        create_consent(third_patient, bea)
        booking.book_group_seat(
            actor=bea, patient_id=third_patient.id, appointment_id=group.id, now=NOON
        )
        other_patient = create_user(Role.PATIENT, therapist=made.therapist)
        ada = create_user(Role.FAMILY, name="Ada Okafor")
        create_consent(other_patient, ada)
        booking.join_waitlist(
            actor=ada, patient_id=other_patient.id, appointment_id=group.id, now=NOON
        )
        booking.cancel_seat(actor=made.family, seat_id=seat.id, now=NOON)
        ada_email = ada.email
        db.session.commit()
    (offer,) = outbox(app, "waitlist_offer")
    assert offer.subject == "A place has opened for you"
    assert "Rivera" not in offer.text_body
    path = re.search(r"http://familylink.test(/booking/claim/\d+)", offer.text_body).group(1)
    auth.login(ada_email)
    assert client.get(path).status_code == 200
    response = client.post(path)
    assert "You're booked" in client.get(response.headers["Location"]).get_data(as_text=True)
    again = client.post(path, follow_redirects=True)
    assert "this offer has ended" in again.get_data(as_text=True)


def test_choosing_another_session_type_shows_its_free_times(app, client, auth, clinic):
    from familylink.models import SessionType

    with app.app_context():
        long_type = SessionType(name="Couples session", duration_minutes=120, capacity=1)
        db.session.add(long_type)
        db.session.commit()
        long_id = long_type.id
    auth.login(clinic["family"])
    short_url = f"/booking/new?patient={clinic['patient']}&type={clinic['private']}"
    short = client.get(short_url).get_data(as_text=True)
    page = client.get(f"/booking/new?patient={clinic['patient']}&type={long_id}")
    text = page.get_data(as_text=True)
    assert "Couples session" in text
    # 2-hour sessions plus the buffer fit fewer times in a 9-5 day than 50-minute ones
    assert 0 < len(slot_values(text)) < len(slot_values(short))


def _seat_of(app, appointment_starts=None):
    with app.app_context():
        seat = db.session.scalar(select(AppointmentFamily).order_by(AppointmentFamily.id.desc()))
        return seat.id, seat.appointment.uid


def test_family_member_moves_a_session_from_its_page(app, client, auth, clinic):
    auth.login(clinic["family"])
    book_first(client, clinic, index=20)  # outside the 24-hour cancellation window
    seat_id, uid = _seat_of(app)
    page = client.get(f"/booking/{seat_id}").get_data(as_text=True)
    assert "Move to another time" in page
    new_slot = slot_values(page)[3]
    bad = client.post(f"/booking/{seat_id}/reschedule", data={"slot": "2020-01-01T10:00Z"})
    assert bad.status_code == 303 and not outbox(app, "booking_rescheduled")
    moved = client.post(f"/booking/{seat_id}/reschedule", data={"slot": new_slot})
    assert moved.status_code == 302
    (mail,) = outbox(app, "booking_rescheduled")
    event = next(iter(Calendar.from_ical(mail.attachment_data).walk("VEVENT")))
    assert str(event["UID"]) == uid and event["SEQUENCE"] == 1


def test_therapist_moves_a_session_and_the_family_gets_an_update(app, client, auth, clinic):
    auth.login(clinic["family"])
    book_first(client, clinic)
    seat_id, uid = _seat_of(app)
    client.post("/logout")
    auth.login(clinic["therapist"])
    calendar = client.get("/therapist/calendar?date=2026-11-19").get_data(as_text=True)
    assert f"/therapist/seats/{seat_id}/reschedule" in calendar
    page = client.get(f"/therapist/seats/{seat_id}/reschedule")
    assert page.status_code == 200
    slots = slot_values(page.get_data(as_text=True))
    bad = client.post(f"/therapist/seats/{seat_id}/reschedule", data={"slot": "garbage"})
    assert bad.status_code == 400 and "Choose a time from the list." in bad.get_data(as_text=True)
    assert not outbox(app, "booking_rescheduled")
    moved = client.post(f"/therapist/seats/{seat_id}/reschedule", data={"slot": slots[2]})
    assert moved.status_code == 302
    (mail,) = outbox(app, "booking_rescheduled")
    event = next(iter(Calendar.from_ical(mail.attachment_data).walk("VEVENT")))
    assert str(event["UID"]) == uid and event["SEQUENCE"] == 1
    with app.app_context():
        appointment = db.session.scalar(select(Appointment).where(Appointment.uid == uid))
        assert appointment.starts_at.strftime("%Y-%m-%dT%H:%MZ") == slots[2]


def test_the_therapists_booking_form_sent_twice_books_once(app, client, auth, clinic):
    """A double click: the second request carries the form's one-time key and lands on the
    booking the first made, not on "someone else just booked that time"."""
    auth.login(clinic["therapist"])
    url = f"/therapist/book?patient={clinic['patient']}"
    page = client.get(url).get_data(as_text=True)
    key = re.search(r'name="request_key" type="hidden" value="([^"]+)"', page).group(1)
    data = {
        "session_type": clinic["private"],
        "slot": slot_values(page)[0],
        "weeks": "0",
        "attendees": [clinic["family_id"]],
        "note": "",
        "request_key": key,
    }
    first = client.post(url, data=data)
    second = client.post(url, data=data, follow_redirects=True)
    assert first.status_code == 302 and second.status_code == 200
    body = second.get_data(as_text=True)
    assert "someone else just booked" not in body
    assert "Booked. The family has been emailed." in body
    assert count_appointments(app) == 1
    assert len(outbox(app, "booking_confirmed")) == 1


def test_the_booking_service_decides_where_a_therapist_may_move_a_session(
    app, client, auth, clinic
):
    """The page lists free times, but any future time that overlaps nothing is allowed; a
    time taken meanwhile answers the service's own message, not "choose from the list"."""
    auth.login(clinic["family"])
    book_first(client, clinic, key="first", index=0)
    first_id, uid = _seat_of(app)
    _, taken = book_first(client, clinic, key="second", index=5)
    client.post("/logout")
    auth.login(clinic["therapist"])
    path = f"/therapist/seats/{first_id}/reschedule"
    lost = client.post(path, data={"slot": taken})
    assert lost.status_code == 400
    assert str(booking.TAKEN) in lost.get_data(as_text=True)
    past = client.post(path, data={"slot": "2020-01-01T10:00Z"})
    assert past.status_code == 400 and "That time has passed." in past.get_data(as_text=True)
    assert not outbox(app, "booking_rescheduled")
    unlisted = "2026-11-22T03:00Z"  # a Sunday night: not in the therapist's hours
    assert unlisted not in slot_values(client.get(path).get_data(as_text=True))
    assert client.post(path, data={"slot": unlisted}).status_code == 302
    with app.app_context():
        appointment = db.session.scalar(select(Appointment).where(Appointment.uid == uid))
        assert appointment.starts_at.strftime("%Y-%m-%dT%H:%MZ") == unlisted


def test_another_therapist_cannot_move_the_session(app, client, auth, clinic):
    auth.login(clinic["family"])
    book_first(client, clinic)
    seat_id, _ = _seat_of(app)
    client.post("/logout")
    with app.app_context():
        create_user(Role.THERAPIST, email="other.t@example.org")
        db.session.commit()
    auth.login("other.t@example.org")
    assert client.get(f"/therapist/seats/{seat_id}/reschedule").status_code == 404
    assert client.post(f"/therapist/seats/{seat_id}/reschedule", data={}).status_code == 404


def test_while_a_place_is_offered_the_groups_page_offers_the_waitlist(app, client, auth):
    """Issue 19: the page said "1 of 2 places free · Take a place", booking said full, and
    the waitlist said "there is still a seat", for the whole hold."""
    with app.app_context():
        made = create_clinic()
        group = _group_of_two(made)
        members = []
        for name in ("Bea Stone", "Cal Stone", "Ada Okafor"):
            patient = create_user(Role.PATIENT, therapist=made.therapist)
            member = add_family(patient, name)
            members.append((patient, member))
        seats = [
            booking.book_group_seat(
                actor=member, patient_id=patient.id, appointment_id=group.id, now=NOON
            )
            for patient, member in members[:2]
        ]
        ada_patient, ada = members[2]
        booking.join_waitlist(
            actor=ada, patient_id=ada_patient.id, appointment_id=group.id, now=NOON
        )
        booking.cancel_seat(actor=members[0][1], seat_id=seats[0].id, now=NOON)
        group_id, patient_id, email = group.id, made.patient.id, made.family.email
        db.session.commit()
    assert len(outbox(app, "waitlist_offer")) == 1
    auth.login(email)
    page = client.get(f"/booking/groups?patient={patient_id}").get_data(as_text=True)
    assert "0 of 2 places free" in page
    assert "Join the waitlist" in page and "Take a place" not in page
    joined = client.post(
        f"/booking/groups/{group_id}?patient={patient_id}",
        data={"waitlist": "1"},
        follow_redirects=True,
    )
    assert "You are on the waitlist" in joined.get_data(as_text=True)


def test_a_waiting_family_sees_its_place_in_line_and_leaves_the_waitlist(app, client, auth):
    from familylink.models import WaitlistEntry, WaitlistStatus

    with app.app_context():
        made = create_clinic()
        group = _group_of_two(made)
        for name in ("Bea Stone", "Cal Stone", "Ada Okafor"):
            patient = create_user(Role.PATIENT, therapist=made.therapist)
            member = add_family(patient, name)
            if name == "Ada Okafor":
                booking.join_waitlist(
                    actor=member, patient_id=patient.id, appointment_id=group.id, now=NOON
                )
            else:
                booking.book_group_seat(
                    actor=member, patient_id=patient.id, appointment_id=group.id, now=NOON
                )
        ada_entry = db.session.scalar(select(WaitlistEntry.id))
        mine = booking.join_waitlist(
            actor=made.family, patient_id=made.patient.id, appointment_id=group.id, now=NOON
        )
        entry_id, patient_id, email = mine.id, made.patient.id, made.family.email
        db.session.commit()
    auth.login(email)
    page = client.get(f"/booking/groups?patient={patient_id}").get_data(as_text=True)
    assert "Your family is number 2 on the waitlist." in page and "Okafor" not in page
    assert client.post(f"/booking/waitlist/{ada_entry}/leave").status_code == 404
    left = client.post(f"/booking/waitlist/{entry_id}/leave", follow_redirects=True)
    assert left.status_code == 200
    assert "Your family has left the waitlist." in left.get_data(as_text=True)
    assert "Join the waitlist" in left.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(WaitlistEntry, entry_id).status == WaitlistStatus.LEFT
        assert db.session.get(WaitlistEntry, ada_entry).status == WaitlistStatus.WAITING


def test_an_offer_past_its_hold_is_not_shown_as_held_before_the_sweep(app, client, auth):
    """The groups page counts only offers still held: once the hold is over, the family is
    no longer told a place is held for it, whether or not the sweep has run."""
    from datetime import timedelta

    from familylink.models import WaitlistEntry, WaitlistStatus

    with app.app_context():
        made = create_clinic()
        group = _group_of_two(made)
        seats = []
        for name in ("Bea Stone", "Cal Stone"):
            patient = create_user(Role.PATIENT, therapist=made.therapist)
            member = add_family(patient, name)
            seats.append(
                (
                    member,
                    booking.book_group_seat(
                        actor=member, patient_id=patient.id, appointment_id=group.id, now=NOON
                    ),
                )
            )
        mine = booking.join_waitlist(
            actor=made.family, patient_id=made.patient.id, appointment_id=group.id, now=NOON
        )
        member, seat = seats[0]
        booking.cancel_seat(actor=member, seat_id=seat.id, now=NOON - timedelta(hours=2))
        assert mine.status == WaitlistStatus.OFFERED
        mine.offered_until = NOON - timedelta(minutes=1)  # the hold ended; no sweep yet
        entry_id, patient_id, email = mine.id, made.patient.id, made.family.email
        db.session.commit()
    auth.login(email)
    page = client.get(f"/booking/groups?patient={patient_id}").get_data(as_text=True)
    assert "A place is held for your family" not in page
    with app.app_context():
        assert db.session.get(WaitlistEntry, entry_id).status == WaitlistStatus.OFFERED


def test_another_member_of_the_family_sees_the_place_in_line_but_no_leave_button(app, client, auth):
    """The entry is the member's who joined (only they may leave or claim it): their
    relative is shown the family's place, not a button that answers 404."""
    with app.app_context():
        made = create_clinic()
        group = _group_of_two(made)
        for name in ("Bea Stone", "Cal Stone"):
            patient = create_user(Role.PATIENT, therapist=made.therapist)
            booking.book_group_seat(
                actor=add_family(patient, name),
                patient_id=patient.id,
                appointment_id=group.id,
                now=NOON,
            )
        booking.join_waitlist(
            actor=made.family, patient_id=made.patient.id, appointment_id=group.id, now=NOON
        )
        relative = add_family(made.patient, "Dan Rivera")
        patient_id, email = made.patient.id, relative.email
        db.session.commit()
    auth.login(email)
    page = client.get(f"/booking/groups?patient={patient_id}").get_data(as_text=True)
    assert "Your family is number 1 on the waitlist." in page
    assert "/leave" not in page


LATE_NOTICE = "counts as a late cancellation"


def test_cancelling_one_session_asks_first_naming_it_in_the_familys_zone(app, client, auth, clinic):
    auth.login(clinic["family"])
    book_first(client, clinic, index=20)  # outside the 24-hour cancellation window
    seat_id, _uid = _seat_of(app)
    shown = client.get(f"/booking/{seat_id}").get_data(as_text=True)
    assert f'href="/booking/{seat_id}/cancel"' in shown  # a link to the question, no form
    assert f'action="/booking/{seat_id}/cancel"' not in shown
    page = client.get(f"/booking/{seat_id}/cancel")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Cancel this session?" in text
    assert "Family session with Dr. Grace Lee" in text and " EST" in text
    assert LATE_NOTICE not in text
    assert f'action="/booking/{seat_id}/cancel"' in text
    assert not outbox(app, "booking_cancelled")  # asking changed nothing
    done = client.post(f"/booking/{seat_id}/cancel", follow_redirects=True)
    assert "Cancelled" in done.get_data(as_text=True)
    assert len(outbox(app, "booking_cancelled")) == 1
    again = client.get(f"/booking/{seat_id}/cancel")  # already cancelled: back to its page
    assert again.status_code == 303 and again.headers["Location"].endswith(f"/booking/{seat_id}")


def test_the_cancel_question_says_when_it_counts_as_late(app, client, auth, clinic):
    auth.login(clinic["family"])
    book_first(client, clinic)  # 21 hours ahead: inside the 24-hour window
    seat_id, _uid = _seat_of(app)
    text = client.get(f"/booking/{seat_id}/cancel").get_data(as_text=True)
    assert LATE_NOTICE in text and "your therapist will be told" in text
    assert not outbox(app, "late_cancellation")


def _offers(page: str, seat_id: int) -> tuple[bool, bool, bool]:
    """What a session page offers: to move it, to cancel it, and the late notice."""
    return (
        "Move to another time" in page,
        f'href="/booking/{seat_id}/cancel"' in page,
        "this will count as a late cancellation" in page,
    )


@pytest.mark.parametrize(
    ("index", "cancelled", "expected"),
    [
        (20, False, (True, True, False)),  # outside the 24-hour window
        (0, False, (False, True, True)),  # 21 hours ahead: late to cancel, not to be moved
        (20, True, (False, False, False)),  # cancelled: nothing to change
    ],
)
def test_the_session_page_shows_the_services_answer(
    app, client, auth, clinic, index, cancelled, expected
):
    auth.login(clinic["family"])
    book_first(client, clinic, index=index)
    seat_id, _uid = _seat_of(app)
    if cancelled:
        client.post(f"/booking/{seat_id}/cancel")
    page = client.get(f"/booking/{seat_id}").get_data(as_text=True)
    assert _offers(page, seat_id) == expected


def test_late_cancelled_on_a_session_to_come_is_refused_and_changes_nothing(
    app, client, auth, clinic
):
    """Before the session a place is cancelled (the family told, a group's place offered
    on), not marked: the attendance form's "late cancelled" is refused until it starts."""
    auth.login(clinic["family"])
    book_first(client, clinic)
    auth.logout()
    auth.login(clinic["therapist"])
    with app.app_context():
        seat_id = db.session.scalars(select(AppointmentFamily.id)).one()
    response = client.post(
        f"/therapist/seats/{seat_id}/attendance",
        data={"value": "late_cancelled"},
        follow_redirects=True,
    )
    assert "Attendance can be marked once the session has started." in response.get_data(
        as_text=True
    )
    with app.app_context():
        seat = db.session.get(AppointmentFamily, seat_id)
        assert (seat.status, seat.cancelled_at) == ("booked", None)
