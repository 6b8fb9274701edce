"""The therapist's calendar as a week grid: the week it opens on, the week kept after an
action, attendance only once a session has started, cancelling with a confirmation and a
reason, and week parameters that are not weeks."""

import re
from collections import Counter
from datetime import timedelta

import babel.support
import pytest
from flask import g, url_for
from markupsafe import escape
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AuditEvent,
    OutboxEmail,
    Role,
    SessionType,
    User,
)
from familylink.services import booking
from familylink.web import MAX_ID, IdLinks
from tests.booking_setup import add_appointment, add_family
from tests.factories import create_user
from tests.moments import NOON

CALENDAR = "/therapist/calendar"
# NOON is Wednesday, November 18, 2026, 12:00 PM in New York: its week starts on the 16th.
THIS_WEEK = "2026-11-16"


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def _seat(app, starts_at) -> int:
    """A family's seat in a private session of the clinic's therapist starting at `starts_at`."""
    with app.app_context():
        therapist = db.session.scalar(select(User).where(User.name == "Dr. Grace Lee"))
        patient = db.session.scalar(select(User).where(User.name == "Jordan Rivera"))
        family = db.session.scalar(select(User).where(User.name == "Maria Rivera"))
        private = db.session.scalar(select(SessionType).where(SessionType.capacity == 1))
        return add_appointment(
            therapist, patient, family, private, starts_at=starts_at, booked_at=NOON
        ).id


def _status(app, seat_id):
    with app.app_context():
        seat = db.session.get(AppointmentFamily, seat_id)
        return seat.status, seat.attendance


def _emails(app, kind):
    with app.app_context():
        return db.session.scalars(select(OutboxEmail).where(OutboxEmail.kind == kind)).all()


# --- The week it opens on --------------------------------------------------------------


def test_the_calendar_opens_on_the_week_of_the_next_session(app, client, auth, clinic):
    _seat(app, NOON + timedelta(days=15))  # Thursday, December 3
    auth.login(clinic["therapist"])
    page = client.get(CALENDAR).get_data(as_text=True)
    assert "November 30 to December 6, 2026" in page
    assert "Jordan Rivera" in page


def test_the_calendar_opens_on_this_week_when_no_session_is_ahead(app, client, auth, clinic):
    _seat(app, NOON - timedelta(days=9))  # over: it does not pull the calendar back
    auth.login(clinic["therapist"])
    page = client.get(CALENDAR).get_data(as_text=True)
    assert "November 16 to November 22, 2026" in page
    assert "No sessions this week." in page


def test_the_week_is_a_table_of_days_and_hours_with_headers(app, client, auth, clinic):
    _seat(app, NOON + timedelta(hours=2))  # 2:00 PM in New York
    auth.login(clinic["therapist"])
    page = client.get(CALENDAR, query_string={"date": THIS_WEEK}).get_data(as_text=True)
    assert '<th scope="col">Mon, Nov 16</th>' in page and '<th scope="col">Sun, Nov 22</th>' in page
    assert '<th scope="row">8 AM</th>' in page and '<th scope="row">2 PM</th>' in page
    assert 'class="grid-entry" href="#appointment-' in page
    assert "Previous week" in page and "Next week" in page


def test_previous_and_next_week_links_step_a_week(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    page = client.get(CALENDAR, query_string={"date": "2026-11-18"}).get_data(as_text=True)
    assert "/therapist/calendar?view=week&amp;date=2026-11-09" in page
    assert "/therapist/calendar?view=week&amp;date=2026-11-23" in page


@pytest.mark.parametrize(
    "week",
    [
        "",
        "x",
        "2026-13-01",
        "2026-11-31",
        "9999-12-31",
        "0001-01-01",
        "../../etc",
        "１２３４-11-18",
        "2026-11-18T10:00",
        "-1",
    ],
)
def test_a_bad_week_shows_this_week(app, client, auth, clinic, week):
    auth.login(clinic["therapist"])
    response = client.get(CALENDAR, query_string={"date": week, "view": "month"})
    assert response.status_code == 200
    assert "November 16 to November 22, 2026" in response.get_data(as_text=True)


# --- Attendance --------------------------------------------------------------------------


def test_attendance_is_offered_only_once_the_session_has_started(app, client, auth, clinic):
    started = _seat(app, NOON - timedelta(minutes=10))
    upcoming = _seat(app, NOON + timedelta(hours=3))
    auth.login(clinic["therapist"])
    page = client.get(CALENDAR, query_string={"date": THIS_WEEK}).get_data(as_text=True)
    assert f"/therapist/seats/{started}/attendance" in page
    assert f"/therapist/seats/{upcoming}/attendance" not in page


def test_attendance_has_no_value_chosen_in_advance(app, client, auth, clinic):
    _seat(app, NOON - timedelta(minutes=10))
    auth.login(clinic["therapist"])
    page = client.get(CALENDAR, query_string={"date": THIS_WEEK}).get_data(as_text=True)
    assert '<option value="" selected>' in page
    assert 'value="attended" selected' not in page


def test_attendance_before_the_session_starts_is_refused(app, client, auth, clinic):
    upcoming = _seat(app, NOON + timedelta(hours=3))
    auth.login(clinic["therapist"])
    response = client.post(
        f"/therapist/seats/{upcoming}/attendance", data={"value": "attended", "week": THIS_WEEK}
    )
    assert response.status_code == 303
    assert _status(app, upcoming) == ("booked", None)


def test_attendance_returns_to_the_week_it_was_marked_on(app, client, auth, clinic):
    started = _seat(app, NOON - timedelta(minutes=10))
    auth.login(clinic["therapist"])
    response = client.post(
        f"/therapist/seats/{started}/attendance", data={"value": "attended", "week": "2026-11-09"}
    )
    assert response.status_code == 302
    assert response.location.endswith("/therapist/calendar?date=2026-11-09")
    assert _status(app, started) == ("booked", "attended")


@pytest.mark.parametrize(
    "week", ["https://evil.example/", "//evil.example", "2026-11-18\r\nX: y", "9999-01-01"]
)
def test_a_bad_week_after_attendance_returns_to_the_sessions_week(app, client, auth, clinic, week):
    started = _seat(app, NOON - timedelta(minutes=10))
    auth.login(clinic["therapist"])
    response = client.post(
        f"/therapist/seats/{started}/attendance", data={"value": "no_show", "week": week}
    )
    assert response.status_code == 302
    assert response.location.endswith(f"/therapist/calendar?date={THIS_WEEK}")


def _cancelled_in_time(app, starts_at) -> int:
    """A seat the therapist cancelled in time, the day before its session (at `starts_at`)."""
    seat_id = _seat(app, starts_at)
    with app.app_context():
        seat = db.session.get(AppointmentFamily, seat_id)
        therapist = db.session.get(User, seat.appointment.therapist_id)
        booking.therapist_cancel(
            actor=therapist, seat_id=seat_id, reason="other", now=starts_at - timedelta(days=1)
        )
        db.session.commit()
    return seat_id


@pytest.mark.parametrize("value", ["attended", "no_show", "late_cancelled"])
def test_attendance_on_a_cancelled_place_is_refused(app, client, auth, clinic, value):
    """The calendar offers no attendance for a cancelled place; the POST refuses it too,
    so a cancelled session never says the family attended (or did not)."""
    seat = _cancelled_in_time(app, NOON - timedelta(minutes=30))
    auth.login(clinic["therapist"])
    page = client.get(CALENDAR, query_string={"date": THIS_WEEK}).get_data(as_text=True)
    assert f"/therapist/seats/{seat}/attendance" not in page
    response = client.post(
        f"/therapist/seats/{seat}/attendance", data={"value": value, "week": THIS_WEEK}
    )
    assert response.status_code == 303
    assert _status(app, seat) == ("cancelled", None)
    page = client.get(response.location).get_data(as_text=True)
    assert "That booking is already cancelled." in page
    auth.logout()
    auth.login(clinic["family"])
    shown = client.get(f"/booking/{seat}").get_data(as_text=True)
    assert "cancelled" in shown
    assert "You attended." not in shown and "You did not attend." not in shown


def test_a_late_cancelled_place_keeps_no_attendance(app, client, auth, clinic):
    started = _seat(app, NOON - timedelta(minutes=10))
    auth.login(clinic["therapist"])
    url = f"/therapist/seats/{started}/attendance"
    assert client.post(url, data={"value": "attended"}).status_code == 302
    assert client.post(url, data={"value": "late_cancelled"}).status_code == 302
    assert _status(app, started) == ("late_cancelled", None)
    assert client.post(url, data={"value": "attended"}).status_code == 303
    assert _status(app, started) == ("late_cancelled", None)


# --- Cancelling ----------------------------------------------------------------------------


def test_the_calendar_has_no_one_click_cancel(app, client, auth, clinic):
    seat = _seat(app, NOON + timedelta(days=1))
    auth.login(clinic["therapist"])
    page = client.get(CALENDAR, query_string={"date": THIS_WEEK}).get_data(as_text=True)
    assert f'action="/therapist/seats/{seat}/cancel"' not in page
    assert f'href="/therapist/seats/{seat}/cancel?week={THIS_WEEK}&amp;view=week"' in page


def test_cancel_asks_for_confirmation_and_a_reason(app, client, auth, clinic):
    seat = _seat(app, NOON + timedelta(days=1))
    auth.login(clinic["therapist"])
    page = client.get(f"/therapist/seats/{seat}/cancel", query_string={"week": THIS_WEEK})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Why is it cancelled?" in text and 'name="reason"' in text
    assert f'name="week" type="hidden" value="{THIS_WEEK}"' in text
    assert _status(app, seat) == ("booked", None)


@pytest.mark.parametrize("reason", [None, "", "because I said so", "other\r\n"])
def test_cancel_without_a_known_reason_changes_nothing(app, client, auth, clinic, reason):
    seat = _seat(app, NOON + timedelta(days=1))
    auth.login(clinic["therapist"])
    data = {"week": THIS_WEEK} | ({"reason": reason} if reason is not None else {})
    response = client.post(f"/therapist/seats/{seat}/cancel", data=data)
    assert response.status_code == 400
    assert "Choose why the session is cancelled." in response.get_data(as_text=True)
    assert _status(app, seat) == ("booked", None)
    assert not _emails(app, "booking_cancelled")


def test_cancel_with_a_reason_returns_to_the_week_and_audits_why(app, client, auth, clinic):
    seat = _seat(app, NOON + timedelta(days=1))
    auth.login(clinic["therapist"])
    response = client.post(
        f"/therapist/seats/{seat}/cancel", data={"reason": "program_closed", "week": "2026-11-23"}
    )
    assert response.status_code == 302
    assert response.location.endswith("/therapist/calendar?date=2026-11-23")
    assert _status(app, seat)[0] == "cancelled"
    (email,) = _emails(app, "booking_cancelled")
    assert "closed" not in email.text_body  # the family is not told why
    with app.app_context():
        row = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "booking.cancelled"))
        assert row.detail == {"reason": "program_closed"}


def test_cancel_with_a_bad_week_returns_to_the_sessions_week(app, client, auth, clinic):
    seat = _seat(app, NOON + timedelta(days=8))  # Thursday, November 26
    auth.login(clinic["therapist"])
    response = client.post(
        f"/therapist/seats/{seat}/cancel", data={"reason": "other", "week": "//evil.example"}
    )
    assert response.location.endswith("/therapist/calendar?date=2026-11-23")


def test_a_started_session_cannot_be_cancelled_from_its_page(app, client, auth, clinic):
    seat = _seat(app, NOON - timedelta(minutes=10))
    auth.login(clinic["therapist"])
    response = client.post(f"/therapist/seats/{seat}/cancel", data={"reason": "other"})
    assert response.status_code == 400
    assert _status(app, seat) == ("booked", None)


def test_another_therapists_seat_has_no_cancel_page(app, client, auth, clinic):
    seat = _seat(app, NOON + timedelta(days=1))
    with app.app_context():
        other = create_user(Role.THERAPIST).email
        db.session.commit()
    auth.login(other)
    assert client.get(f"/therapist/seats/{seat}/cancel").status_code == 404
    assert (
        client.post(f"/therapist/seats/{seat}/cancel", data={"reason": "other"}).status_code == 404
    )
    assert _status(app, seat) == ("booked", None)


def test_moving_a_session_returns_to_the_week_it_was_moved_from(app, client, auth, clinic):
    seat = _seat(app, NOON + timedelta(days=1))
    auth.login(clinic["therapist"])
    path = f"/therapist/seats/{seat}/reschedule?week=2026-11-23&view=week"
    page = client.get(path).get_data(as_text=True)
    slot = re.findall(r'type="radio" name="slot" id="[^"]*" value="([^"]+Z)"', page)[3]
    response = client.post(path, data={"slot": slot})
    assert response.status_code == 302
    assert response.location.endswith("/therapist/calendar?date=2026-11-23")


def _with_more_people(app, seat_id: int, count: int) -> None:
    """`count` more of the patient's family members coming to the seat."""
    with app.app_context():
        seat = db.session.get(AppointmentFamily, seat_id)
        for n in range(count):
            member = add_family(seat.patient, f"Relative Number{n}")
            db.session.add(AppointmentAttendee(seat=seat, user_id=member.id, added_at=NOON))
        db.session.commit()


@pytest.mark.parametrize("page", ["cancel", "reschedule"])
def test_the_cancel_and_move_pages_read_the_people_coming_at_once(
    app, client, auth, clinic, count_queries, page
):
    """The "Coming:" line names each family member: the same statements for one or four."""
    alone = _seat(app, NOON + timedelta(days=1))
    many = _seat(app, NOON + timedelta(days=2))
    _with_more_people(app, many, 3)
    auth.login(clinic["therapist"])
    counts = []
    for seat in (alone, many):
        client.get(f"/therapist/seats/{seat}/{page}")  # warm
        with count_queries() as counter:
            shown = client.get(f"/therapist/seats/{seat}/{page}").get_data(as_text=True)
        counts.append(counter.count)
    assert "Relative Number2" in shown
    assert counts[0] == counts[1], counts


# --- What a week costs (issue 19) ---------------------------------------------------------


def _count_translations(monkeypatch) -> Counter:
    """How many times each message is looked up in the request's catalogue, from templates
    or Python alike."""
    asked = Counter()
    for catalogue in (babel.support.NullTranslations, babel.support.Translations):
        original = catalogue.ugettext

        def counted(self, message, original=original):
            asked[message] += 1
            return original(self, message)

        monkeypatch.setattr(catalogue, "ugettext", counted)
    return asked


def test_words_said_for_every_family_member_are_translated_once_a_page(
    app, client, auth, clinic, monkeypatch
):
    for hours in (3, 24, 48):  # three sessions this week, the same family member coming
        _seat(app, NOON + timedelta(hours=hours))
    auth.login(clinic["therapist"])
    client.get(CALENDAR, query_string={"date": THIS_WEEK})
    asked = _count_translations(monkeypatch)
    page = client.get(CALENDAR, query_string={"date": THIS_WEEK}).get_data(as_text=True)
    assert page.count("Coming: Maria Rivera") == 3
    assert asked["Coming:"] == 1
    assert asked["may see: %(scopes)s"] == 1  # one set of scopes on the page
    assert asked["Move"] == 1 and asked["Cancel…"] == 1
    # The words naming each seat's family too: each seat gives them its name.
    assert page.count("Jordan Rivera's family's place") == 3
    assert asked["%(name)s's family"] == 1
    assert asked["%(name)s's family's place"] == 1 and asked["%(name)s's family's session"] == 1


def test_the_attendance_forms_words_are_translated_once_a_page(
    app, client, auth, clinic, monkeypatch
):
    for minutes in (10, 70, 130):  # three sessions already started today
        _seat(app, NOON - timedelta(minutes=minutes))
    auth.login(clinic["therapist"])
    client.get(CALENDAR, query_string={"date": THIS_WEEK})
    asked = _count_translations(monkeypatch)
    page = client.get(CALENDAR, query_string={"date": THIS_WEEK}).get_data(as_text=True)
    assert page.count('<option value="no_show">No-show</option>') == 3
    assert page.count("attendance of Jordan Rivera's family") == 6
    words = ["Mark", "Choose…", "Attended", "No-show", "Late-cancelled", "Save"]
    assert [asked[word] for word in words] == [1] * len(words)
    assert asked["attendance of %(name)s's family"] == 3  # one a seat, for its two labels


def _seat_in_state(app, starts_at, *, status="booked", attendance=None) -> int:
    seat_id = _seat(app, starts_at)
    with app.app_context():
        seat = db.session.get(AppointmentFamily, seat_id)
        seat.status, seat.attendance = status, attendance
        db.session.commit()
    return seat_id


def test_each_seat_state_is_said_in_words_and_each_form_carries_the_requests_token(
    app, client, auth, clinic
):
    """A seat's status and attendance as words (a value without words shown as it is,
    escaped); every form on the page posts the token of the request that drew it."""
    started = [NOON - timedelta(minutes=minutes) for minutes in (10, 70, 130, 190)]
    marked = ["attended", "no_show", "late_cancelled", "<i>held</i>"]
    for starts_at, attendance in zip(started, marked, strict=True):
        _seat_in_state(app, starts_at, attendance=attendance)
    _seat_in_state(app, NOON + timedelta(hours=3), status="cancelled")
    _seat_in_state(app, NOON + timedelta(hours=5), status="late_cancelled")
    auth.login(clinic["therapist"])
    with client:
        page = client.get(CALENDAR, query_string={"date": THIS_WEEK}).get_data(as_text=True)
        token = g.csrf_token
    badges = Counter(re.findall(r'<span class="badge">([^<]*)</span>', page))
    assert badges == {
        "attended": 1,
        "no show": 1,
        "late cancelled": 2,
        "cancelled": 1,
        "&lt;i&gt;held&lt;/i&gt;": 1,
    }
    forms = re.findall(r"<form [^>]*>\s*(<input [^>]*>)", page)
    assert len(forms) == page.count("<form ") == 4 + 2  # four attendance, sign-out, language
    assert set(forms) == {f'<input type="hidden" name="csrf_token" value="{token}">'}


def test_each_seats_actions_link_to_their_own_routes(app, client, auth, clinic):
    """Each action is routed once for the page and given each seat's id: the addresses are
    the ones url_for gives for that seat, with the week they were on."""
    started = _seat(app, NOON - timedelta(minutes=10))
    upcoming = _seat(app, NOON + timedelta(hours=3))
    auth.login(clinic["therapist"])
    page = client.get(CALENDAR, query_string={"date": THIS_WEEK}).get_data(as_text=True)
    back = {"week": THIS_WEEK, "view": "week"}
    with app.test_request_context():
        expected = [
            url_for("therapist_booking.attendance", seat_id=started),
            url_for("therapist_booking.cancel_seat", seat_id=upcoming, **back),
            url_for("therapist_booking.reschedule_seat", seat_id=upcoming, **back),
        ]
    for address in expected:
        assert f'"{escape(address)}"' in page


def test_id_links_give_url_fors_address_for_any_id(app):
    with app.test_request_context():
        links = IdLinks("therapist_booking.cancel_seat", "seat_id", future=1, week=THIS_WEEK)
        for seat_id in (1, 7, 42, MAX_ID):
            assert links(seat_id) == url_for(
                "therapist_booking.cancel_seat", seat_id=seat_id, future=1, week=THIS_WEEK
            )


def test_id_links_refuse_a_route_whose_id_is_not_a_path_segment(app):
    with app.test_request_context():
        links = IdLinks("therapist_booking.calendar", "date")
        with pytest.raises(ValueError):
            links(1)


# --- What it reads ------------------------------------------------------------------------


def _families_in_a_group(app, count: int) -> None:
    """`count` more families in this week's group session of the clinic's therapist (made on
    the first call): each with one member coming, one removed and one who may come but is not
    booked, so the page shows every kind of person a seat has."""
    with app.app_context():
        therapist = db.session.scalar(select(User).where(User.name == "Dr. Grace Lee"))
        group = db.session.scalar(select(Appointment).where(Appointment.capacity > 1))
        if group is None:
            kind = db.session.scalar(select(SessionType).where(SessionType.capacity > 1))
            starts = NOON + timedelta(hours=3)
            group = Appointment(
                uid="calendar-group@familylink",
                therapist_id=therapist.id,
                session_type=kind,
                starts_at=starts,
                ends_at=starts + timedelta(minutes=kind.duration_minutes),
                capacity=40,
            )
        for _ in range(count):
            patient = create_user(Role.PATIENT, therapist=therapist, password=None)
            coming, removed = add_family(patient, "Coming"), add_family(patient, "Removed")
            add_family(patient, "Not booked")
            seat = AppointmentFamily(appointment=group, patient_id=patient.id)
            db.session.add_all(
                [
                    seat,
                    AppointmentAttendee(seat=seat, user_id=coming.id, added_at=NOON),
                    AppointmentAttendee(
                        seat=seat, user_id=removed.id, added_at=NOON, removed_at=NOON
                    ),
                ]
            )
        db.session.commit()


def test_the_week_reads_the_same_statements_however_many_families_it_shows(
    app, client, auth, clinic, count_queries
):
    """The session, the week's sessions with their families and who is coming (one
    statement), the consents of the patients shown, the audit rows: however many seats."""
    _families_in_a_group(app, 1)
    auth.login(clinic["therapist"])
    page = {"date": THIS_WEEK}
    client.get(CALENDAR, query_string=page)  # warm
    with count_queries() as one_family:
        client.get(CALENDAR, query_string=page)
    _families_in_a_group(app, 29)
    client.get(CALENDAR, query_string=page)  # warm again: the program settings may be due
    with count_queries() as thirty_families:
        shown = client.get(CALENDAR, query_string=page).get_data(as_text=True)
    assert shown.count("Coming: Coming") == 30 and "1 of 40 families" not in shown
    assert "30 of 40 families" in shown and shown.count("May also come, not booked:") == 30
    assert one_family.count == thirty_families.count == 4
