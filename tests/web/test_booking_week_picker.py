"""The family's booking page as a week picker: one week of free times at a time, the kind of
session chosen once, a confirmation step, and clear answers to weeks that cannot be shown.

The clock is NOON (Wednesday, November 18, 2026, New York); the booking horizon is 28 days,
so the weeks that may be shown start on Mondays November 16 to December 14.
"""

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AvailabilityOverride,
    OutboxEmail,
    Role,
    SessionType,
    User,
)
from tests.booking_setup import (
    add_appointment,
    add_weekday_hours,
    create_clinic,
    create_session_types,
)
from tests.factories import create_consent, create_user
from tests.moments import NOON


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def week_url(clinic, week=None) -> str:
    url = f"/booking/new?patient={clinic['patient']}"
    return url if week is None else f"{url}&week={week}"


def offered(page: str) -> list[str]:
    return re.findall(r'type="radio" name="slot" id="[^"]*" value="([^"]+)"', page)


def count_appointments(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Appointment.id)))


def count_outbox(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(OutboxEmail.id)))


# --- One week at a time ------------------------------------------------------------------


def test_the_page_shows_one_week_with_a_fieldset_per_day(app, client, auth, clinic):
    auth.login(clinic["family"])
    page = client.get(week_url(clinic)).get_data(as_text=True)
    assert "Week of Monday, November 16, 2026" in page
    # From today (Wednesday) to Sunday; today's hours are within the minimum notice.
    legends = re.findall(r"<legend>([^<]+)</legend>", page)
    assert legends == [
        "Wednesday, November 18",
        "Thursday, November 19",
        "Friday, November 20",
        "Saturday, November 21",
        "Sunday, November 22",
    ]
    assert "No free times on this day." in page
    days = {s[:10] for s in offered(page)}
    assert days == {"2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"}
    assert "<select" not in page


def test_the_time_zone_is_named_once(app, client, auth, clinic):
    auth.login(clinic["family"])
    page = client.get(week_url(clinic)).get_data(as_text=True)
    assert page.count("time zone") == 1 and page.count("America/New York") == 1


def test_next_and_previous_week_links_walk_the_bookable_weeks(app, client, auth, clinic):
    auth.login(clinic["family"])
    first = client.get(week_url(clinic)).get_data(as_text=True)
    assert "Previous week" not in first and "week=2026-11-23" in first
    second = client.get(week_url(clinic, "2026-11-23")).get_data(as_text=True)
    assert "Week of Monday, November 23, 2026" in second
    assert "week=2026-11-16" in second and "week=2026-11-30" in second
    assert {s[:10] for s in offered(second)} == {
        (date(2026, 11, 23) + timedelta(days=n)).isoformat() for n in range(7)
    }
    last = client.get(week_url(clinic, "2026-12-14")).get_data(as_text=True)
    assert "Next week" not in last and "week=2026-12-07" in last
    # The horizon ends on Wednesday, December 16: no day after it is shown.
    assert re.findall(r"<legend>([^<]+)</legend>", last)[-1] == "Wednesday, December 16"


def test_any_day_of_a_week_shows_that_week(app, client, auth, clinic):
    auth.login(clinic["family"])
    page = client.get(week_url(clinic, "2026-11-26")).get_data(as_text=True)
    assert "Week of Monday, November 23, 2026" in page


def test_the_first_week_with_a_free_time_opens_first(app, client, auth, clinic):
    with app.app_context():
        for n in range(5):  # the therapist is away for the rest of this week
            day = date(2026, 11, 18) + timedelta(days=n)
            db.session.add(AvailabilityOverride(therapist_id=clinic["therapist_id"], day=day))
        db.session.commit()
    auth.login(clinic["family"])
    response = client.get(week_url(clinic))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Week of Monday, November 23, 2026" in page
    assert offered(page)[0] == "2026-11-23T14:00Z"
    this_week = client.get(week_url(clinic, "2026-11-16")).get_data(as_text=True)
    assert offered(this_week) == []
    assert "There are no free times this week." in this_week


@pytest.mark.parametrize(
    ("week", "message"),
    [
        ("banana", "That is not a week we can show."),
        ("2026-13-01", "That is not a week we can show."),
        ("2026-11-09", "That week has passed."),
        ("1900-01-01", "That week has passed."),
        ("2026-12-21", "Times can be booked up to 28 days ahead."),
        ("2100-12-31", "Times can be booked up to 28 days ahead."),
        ("9999-12-31", "That is not a week we can show."),
    ],
)
def test_a_week_that_cannot_be_shown_gets_a_clear_answer_and_the_first_week(
    app, client, auth, clinic, week, message
):
    auth.login(clinic["family"])
    response = client.get(week_url(clinic, week))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert "Week of Monday, November 16, 2026" in page and offered(page)


# --- The kind of session, chosen once ------------------------------------------------------


def test_with_several_kinds_the_first_step_asks_which(app, client, auth, clinic):
    with app.app_context():
        couples = SessionType(name="Couples session", duration_minutes=80, capacity=1)
        db.session.add(couples)
        db.session.commit()
        couples_id = couples.id
    auth.login(clinic["family"])
    for url in (week_url(clinic), week_url(clinic) + "&type=999"):
        page = client.get(url).get_data(as_text=True)
        assert "What kind of session?" in page and offered(page) == []
        assert f"type={couples_id}" in page and f"type={clinic['private']}" in page
    chosen = client.get(week_url(clinic) + f"&type={couples_id}").get_data(as_text=True)
    assert "Couples session (80 minutes)" in chosen and offered(chosen)
    assert "Choose another kind of session" in chosen and "<select" not in chosen


# --- The confirmation step -----------------------------------------------------------------


def test_the_confirmation_names_the_time_in_the_familys_zone_and_changes_nothing(
    app, client, auth, clinic
):
    auth.login(clinic["family"])
    response = client.post(week_url(clinic), data={"slot": "2026-11-19T14:00Z", "note": "hi"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Check your booking" in page
    assert "Thursday, November 19, 2026, 9:00 AM EST" in page
    assert page.count("time zone") == 1
    assert "We will email you the time and a calendar file." in page
    assert 'name="confirmed" value="1"' in page and "Book this time" in page
    assert "You already have a session that day" not in page
    assert count_appointments(app) == 0 and count_outbox(app) == 0


def test_the_confirmation_shows_a_los_angeles_family_their_own_time(app, client, auth):
    with app.app_context():
        made = create_clinic(family_zone="America/Los_Angeles")
        patient_id, email = made.patient.id, made.family.email
        db.session.commit()
    auth.login(email)
    response = client.post(f"/booking/new?patient={patient_id}", data={"slot": "2026-11-19T14:00Z"})
    page = response.get_data(as_text=True)
    assert "Thursday, November 19, 2026, 6:00 AM PST" in page
    assert "America/Los Angeles" in page and "EST" not in page


def _maria_may_invite_luis(app) -> tuple[int, int]:
    """Jordan's consent lets Maria see and invite Luis; Maria signs in. (patient, Luis)."""
    with app.app_context():
        therapist = create_user(Role.THERAPIST)
        patient = create_user(Role.PATIENT, name="Jordan Rivera", therapist=therapist)
        maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        luis = create_user(Role.FAMILY, name="Luis Okonkwo", email="luis@example.org")
        create_consent(patient, maria, family_visible=True)  # Jordan lets Maria invite
        create_consent(patient, luis)
        add_weekday_hours(therapist)
        create_session_types()
        db.session.commit()
        return patient.id, luis.id


def test_the_confirmation_names_who_else_is_invited_and_that_they_are_emailed(app, client, auth):
    patient_id, luis_id = _maria_may_invite_luis(app)
    auth.login("maria@example.org")
    url = f"/booking/new?patient={patient_id}"
    week = client.get(url).get_data(as_text=True)
    assert "Luis Okonkwo" in week and "Each person you invite gets an email" in week
    data = {"slot": "2026-11-19T14:00Z", "attendees": [luis_id]}
    page = client.post(url, data=data).get_data(as_text=True)
    assert "Also invited: Luis Okonkwo" in page
    assert "We will email each of them the time and a calendar file" in page
    assert f'name="attendees" value="{luis_id}"' in page
    booked = client.post(url, data={**data, "request_key": "k", "confirmed": "1"})
    assert booked.status_code == 302
    with app.app_context():
        mails = db.session.scalars(select(OutboxEmail.to_address)).all()
    assert sorted(mails) == ["luis@example.org", "maria@example.org"]


def _count_family_reads(monkeypatch) -> list:
    """Each reading of a patient's family (whom a member may invite), as it happens."""
    from familylink.services.access import consents

    asked = []
    read = consents.family_in_force
    monkeypatch.setattr(
        consents, "family_in_force", lambda *a, **kw: asked.append(a) or read(*a, **kw)
    )
    return asked


def test_the_confirming_post_finds_whom_the_member_may_invite_once(app, client, auth, monkeypatch):
    """The page's list of whom Maria may invite (from her consent, as the gate read it) is
    the list the booking checks her choice against: the family's consents are read once."""
    patient_id, luis_id = _maria_may_invite_luis(app)
    auth.login("maria@example.org")
    asked = _count_family_reads(monkeypatch)
    data = {"slot": "2026-11-19T14:00Z", "attendees": [luis_id], "confirmed": "1"}
    booked = client.post(f"/booking/new?patient={patient_id}", data={**data, "request_key": "k"})
    assert booked.status_code == 302 and "booked=1" in booked.headers["Location"]
    assert len(asked) == 1
    with app.app_context():
        mails = db.session.scalars(select(OutboxEmail.to_address)).all()
    assert sorted(mails) == ["luis@example.org", "maria@example.org"]


@pytest.mark.parametrize("confirmed", ["", "1"])
def test_a_booking_for_the_member_alone_does_not_ask_whom_they_may_invite(
    app, client, auth, monkeypatch, confirmed
):
    """Nobody else named, nobody to check: the confirmation step and the booking leave
    the family's consents unread (the week's page still offers Luis)."""
    patient_id, _luis_id = _maria_may_invite_luis(app)
    auth.login("maria@example.org")
    url = f"/booking/new?patient={patient_id}"
    asked = _count_family_reads(monkeypatch)
    assert "Luis Okonkwo" in client.get(url).get_data(as_text=True)
    assert len(asked) == 1
    data = {"slot": "2026-11-19T14:00Z", "request_key": "k", "confirmed": confirmed}
    response = client.post(url, data=data)
    assert response.status_code == (302 if confirmed else 200)
    assert len(asked) == 1
    assert count_appointments(app) == (1 if confirmed else 0)


def test_a_refused_booking_for_the_member_alone_shows_whom_they_may_invite(app, client, auth):
    """The week shown again after a refusal still offers the member's family (read then)."""
    patient_id, luis_id = _maria_may_invite_luis(app)
    auth.login("maria@example.org")
    data = {"slot": "2026-11-19T03:00Z", "request_key": "k", "confirmed": "1"}
    response = client.post(f"/booking/new?patient={patient_id}", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "That time is not available" in page
    assert re.search(rf'<input [^>]*name="attendees" [^>]*value="{luis_id}"', page)
    assert "Luis Okonkwo" in page and count_appointments(app) == 0


def test_the_confirmation_warns_about_another_session_the_same_day(app, client, auth, clinic):
    with app.app_context():
        therapist = db.session.get(User, clinic["therapist_id"])
        add_appointment(
            therapist,
            db.session.get(User, clinic["patient"]),
            db.session.get(User, clinic["family_id"]),
            db.session.get(SessionType, clinic["private"]),
            starts_at=NOON.replace(day=19, hour=14),
            booked_at=NOON - timedelta(days=1),
        )
    auth.login(clinic["family"])
    same_day = client.post(week_url(clinic), data={"slot": "2026-11-19T16:00Z"})
    page = same_day.get_data(as_text=True)
    assert same_day.status_code == 200
    assert "You already have a session that day: 9:00 AM." in page
    assert "You can still book this time." in page and "Book this time" in page
    other_day = client.post(week_url(clinic), data={"slot": "2026-11-20T16:00Z"})
    assert "You already have a session that day" not in other_day.get_data(as_text=True)


def test_confirming_books_through_the_booking_operation(app, client, auth, clinic):
    auth.login(clinic["family"])
    data = {"slot": "2026-11-19T14:00Z", "request_key": "k", "note": "hi", "confirmed": "1"}
    response = client.post(week_url(clinic, "2026-11-16"), data=data)
    assert response.status_code == 302 and "booked=1" in response.headers["Location"]
    assert count_appointments(app) == 1


def test_choose_another_time_keeps_the_invited_people_and_the_note(app, client, auth):
    patient_id, luis_id = _maria_may_invite_luis(app)
    auth.login("maria@example.org")
    url = f"/booking/new?patient={patient_id}"
    data = {"slot": "2026-11-19T14:00Z", "attendees": [luis_id], "note": "Bring the forms"}
    page = client.post(url, data={**data, "request_key": "k"}).get_data(as_text=True)
    back = re.search(r"<form[^>]*>(?:(?!</form>).)*Choose another time.*?</form>", page, re.S)
    assert back is not None, "Choose another time is a form carrying the choices back"
    assert f'name="attendees" value="{luis_id}"' in back.group(0)
    assert 'value="Bring the forms"' in back.group(0)
    returned = client.post(url, data={**data, "request_key": "k", "change": "1"})
    week = returned.get_data(as_text=True)
    assert returned.status_code == 200 and "Week of" in week and "Check your booking" not in week
    assert re.search(rf'<input checked [^>]*name="attendees" [^>]*value="{luis_id}"', week)
    assert "Bring the forms</textarea>" in week
    assert re.search(r'value="2026-11-19T14:00Z" checked', week)
    assert count_appointments(app) == 0 and count_outbox(app) == 0


def test_a_days_times_are_radios_each_named_by_its_label_the_chosen_one_checked(
    app, client, auth, clinic
):
    """The picker's radio markup, pinned: each time one radio of the form's field, its value
    the time as the form sends it back, an id its label points at (how a screen reader
    names it), and the time chosen before "Choose another time" checked again."""
    auth.login(clinic["family"])
    data = {"slot": "2026-11-19T15:00Z", "request_key": "k", "change": "1"}
    page = client.post(week_url(clinic), data=data).get_data(as_text=True)
    day = re.search(r"<legend>Thursday, November 19</legend>(.*?)</fieldset>", page, re.S)
    items = re.findall(r"<li\b.*?</li>", day.group(1), re.S)

    def item(hour: int, clock: str, checked: str = "") -> str:
        value = f"2026-11-19T{hour}:00Z"
        slot_id = f"slot-2026-11-19T{hour}00Z"
        return (
            f'<li class="check"><input type="radio" name="slot" id="{slot_id}" '
            f'value="{value}"{checked}> <label for="{slot_id}">{clock}</label></li>'
        )

    assert items == [
        item(14, "9:00 AM"),
        item(15, "10:00 AM", " checked"),
        item(16, "11:00 AM"),
        item(17, "12:00 PM"),
        item(18, "1:00 PM"),
        item(19, "2:00 PM"),
        item(20, "3:00 PM"),
        item(21, "4:00 PM"),
    ]
    assert re.fullmatch(r'\s*<ul class="times">\s*(<li\b.*?</li>\s*)+</ul>\s*', day.group(1), re.S)
    assert page.count(" checked>") == 1
