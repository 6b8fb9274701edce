"""The therapist's weekly series pages: "Repeat weekly" on the booking page, the confirmation
page listing every week (conflicts first, nothing booked until none), and on the calendar
"Cancel this and all future" and "Move all future"."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AppointmentSeries,
    AuditEvent,
    SeatStatus,
    SessionType,
    User,
)
from tests.booking_setup import add_appointment, add_family
from tests.moments import WEEK_BEFORE_FALL_BACK
from tests.queries import consent_reads

NEW_YORK = ZoneInfo("America/New_York")
FIRST = datetime(2026, 10, 27, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)
BOOK = "/therapist/book"


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": WEEK_BEFORE_FALL_BACK}


def slot(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def series_form(clinic, **extra) -> dict:
    data = {
        "session_type": clinic["private"],
        "slot": slot(FIRST),
        "weeks": "4",
        "attendees": [clinic["family_id"]],
        "note": "",
    }
    data.update(extra)
    return data


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def series_seats(app) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AppointmentFamily.id)
                .join(AppointmentFamily.appointment)
                .where(Appointment.weekly_series_id.is_not(None))
                .order_by(Appointment.starts_at)
            )
        )


def book_series(client, clinic):
    client.post(BOOK, query_string={"patient": clinic["patient"]}, data=series_form(clinic))
    return client.post(
        BOOK,
        query_string={"patient": clinic["patient"]},
        data=series_form(clinic, confirmed="1"),
    )


def test_the_booking_page_offers_repeat_weekly(client, auth, clinic):
    auth.login(clinic["therapist"])
    page = client.get(BOOK, query_string={"patient": clinic["patient"]}).get_data(as_text=True)
    assert "Repeat weekly" in page
    assert '<option value="12">For 12 weeks</option>' in page


def test_repeat_weekly_first_lists_every_week_and_books_nothing(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    response = client.post(
        BOOK, query_string={"patient": clinic["patient"]}, data=series_form(clinic)
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Tuesday, October 27, 2026, 10:00 AM EDT" in page
    assert "Tuesday, November 3, 2026, 10:00 AM EST" in page
    assert "Book all 4 weeks" in page
    assert count(app, Appointment) == 0


def test_confirming_books_every_week_and_goes_to_the_first_week(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    response = book_series(client, clinic)
    assert response.status_code == 302
    assert "date=2026-10-26" in response.headers["Location"]
    assert count(app, AppointmentSeries) == 1
    assert len(series_seats(app)) == 4


def test_the_series_confirmation_sent_twice_books_the_series_once(app, client, auth, clinic):
    """The confirmation page keeps the booking form's one-time key: sent again, it finds
    the series booked, not every week taken by "someone else"."""
    auth.login(clinic["therapist"])
    query = {"patient": clinic["patient"]}
    page = client.get(BOOK, query_string=query).get_data(as_text=True)
    key = re.search(r'name="request_key" type="hidden" value="([^"]+)"', page).group(1)
    listed = client.post(BOOK, query_string=query, data=series_form(clinic, request_key=key))
    assert f'name="request_key" value="{key}"' in listed.get_data(as_text=True)
    confirmed = series_form(clinic, confirmed="1", request_key=key)
    assert client.post(BOOK, query_string=query, data=confirmed).status_code == 302
    again = client.post(BOOK, query_string=query, data=confirmed)
    assert again.status_code == 302
    assert "date=2026-10-26" in again.headers["Location"]
    assert count(app, AppointmentSeries) == 1
    assert len(series_seats(app)) == 4


def test_a_conflict_is_listed_first_and_nothing_is_booked(app, client, auth, clinic):
    with app.app_context():
        from familylink.models import SessionType, User

        therapist = db.session.get(User, clinic["therapist_id"])
        patient = db.session.get(User, clinic["patient"])
        family = db.session.get(User, clinic["family_id"])
        private = db.session.get(SessionType, clinic["private"])
        add_appointment(
            therapist,
            patient,
            family,
            private,
            starts_at=datetime(2026, 11, 10, 10, 0, tzinfo=NEW_YORK),
            booked_at=WEEK_BEFORE_FALL_BACK,
        )
    auth.login(clinic["therapist"])
    response = client.post(
        BOOK,
        query_string={"patient": clinic["patient"]},
        data=series_form(clinic, confirmed="1"),
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert page.index("You already have a session then.") < page.index("October 27")
    assert "Book all" not in page
    assert count(app, AppointmentSeries) == 0
    assert count(app, Appointment) == 1


@pytest.mark.parametrize("weeks", ["13", "1", "many", "-4"])
def test_a_bad_number_of_weeks_changes_nothing(app, client, auth, clinic, weeks):
    auth.login(clinic["therapist"])
    response = client.post(
        BOOK,
        query_string={"patient": clinic["patient"]},
        data=series_form(clinic, weeks=weeks, confirmed="1"),
    )
    assert response.status_code == 400
    assert count(app, Appointment) == 0


def test_a_family_members_booking_page_has_no_series(client, auth, clinic):
    auth.login(clinic["family"])
    response = client.post(
        BOOK, query_string={"patient": clinic["patient"]}, data=series_form(clinic)
    )
    assert response.status_code == 404


def test_the_calendar_offers_cancel_and_move_this_and_all_future(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    book_series(client, clinic)
    seat = series_seats(app)[2]
    page = client.get("/therapist/calendar", query_string={"date": "2026-11-09"}).get_data(
        as_text=True
    )
    assert f"/therapist/seats/{seat}/cancel?future=1" in page
    assert f"/therapist/seats/{seat}/move-future" in page
    assert "Cancel this one" in page


def test_cancel_this_and_all_future_from_the_third_week(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    book_series(client, clinic)
    seats = series_seats(app)
    page = client.get(f"/therapist/seats/{seats[2]}/cancel", query_string={"future": "1"}).get_data(
        as_text=True
    )
    assert "Cancel all 2 sessions" in page
    response = client.post(
        f"/therapist/seats/{seats[2]}/cancel", data={"reason": "family_asked", "future": "1"}
    )
    assert response.status_code == 302
    with app.app_context():
        statuses = [db.session.get(AppointmentFamily, s).status for s in seats]
    assert statuses == [SeatStatus.BOOKED] * 2 + [SeatStatus.CANCELLED] * 2


def test_cancel_all_future_on_a_single_session_changes_nothing(app, client, auth, clinic):
    with app.app_context():
        from familylink.models import SessionType, User

        seat = add_appointment(
            db.session.get(User, clinic["therapist_id"]),
            db.session.get(User, clinic["patient"]),
            db.session.get(User, clinic["family_id"]),
            db.session.get(SessionType, clinic["private"]),
            starts_at=FIRST,
            booked_at=WEEK_BEFORE_FALL_BACK,
        ).id
    auth.login(clinic["therapist"])
    response = client.post(
        f"/therapist/seats/{seat}/cancel", data={"reason": "other", "future": "1"}
    )
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(AppointmentFamily, seat).status == SeatStatus.BOOKED


def test_move_all_future_lists_the_new_weeks_then_moves_them(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    book_series(client, clinic)
    seats = series_seats(app)
    url = f"/therapist/seats/{seats[1]}/move-future"
    assert client.get(url).status_code == 200
    new = slot(datetime(2026, 11, 5, 14, 0, tzinfo=NEW_YORK))
    page = client.post(url, data={"slot": new}).get_data(as_text=True)
    assert "Thursday, November 19, 2026, 2:00 PM EST" in page
    assert "Move all 3 weeks" in page
    response = client.post(url, data={"slot": new, "confirmed": "1"})
    assert response.status_code == 302
    assert _local_starts(app, seats) == [(27, 10), (5, 14), (12, 14), (19, 14)]


def test_another_therapist_cannot_move_or_cancel_the_series(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    book_series(client, clinic)
    seat = series_seats(app)[0]
    auth.logout()
    with app.app_context():
        from familylink.models import Role
        from tests.factories import create_user

        other = create_user(Role.THERAPIST, name="Dr. Other").email
        db.session.commit()
    auth.login(other)
    assert client.get(f"/therapist/seats/{seat}/move-future").status_code == 404
    response = client.post(
        f"/therapist/seats/{seat}/cancel", data={"reason": "other", "future": "1"}
    )
    assert response.status_code == 404


def test_the_calendar_says_which_week_of_its_series_a_session_is(app, client, auth, clinic):
    auth.login(clinic["therapist"])
    book_series(client, clinic)
    page = client.get("/therapist/calendar", query_string={"date": "2026-11-09"})
    assert "weekly, 3 of 4" in page.get_data(as_text=True)


def test_a_week_moved_alone_past_its_neighbour_keeps_its_number(app, client, auth, clinic):
    """As "move all future" numbers them: by place in the series, never by date."""
    auth.login(clinic["therapist"])
    book_series(client, clinic)
    with app.app_context():
        first = db.session.get(AppointmentFamily, series_seats(app)[0]).appointment
        # From Tuesday 27 October to Wednesday 4 November, after the second week's Tuesday.
        first.starts_at += timedelta(days=8)
        first.ends_at += timedelta(days=8)
        db.session.commit()
    page = client.get("/therapist/calendar", query_string={"date": "2026-11-02"})
    shown = re.findall(r"weekly, (\d) of 4", page.get_data(as_text=True))
    assert shown == ["2", "1"]  # Tuesday's is the second week, Wednesday's the first


def _confirm_for_two(app, client, auth, clinic, count_queries):
    """The therapist confirms a series for Maria and Luis; what the request read."""
    with app.app_context():
        luis = add_family(db.session.get(User, clinic["patient"]), "Luis Rivera").id
        db.session.commit()
    auth.login(clinic["therapist"])
    form = series_form(clinic, confirmed="1", attendees=[clinic["family_id"], luis])
    with count_queries() as counter:
        response = client.post(BOOK, query_string={"patient": clinic["patient"]}, data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert len(series_seats(app)) == 4
    return counter


def test_confirming_reads_each_family_members_consent_once(
    app, client, auth, clinic, count_queries
):
    """Once each for when it ends, not again for the plan made under the therapist's lock."""
    counter = _confirm_for_two(app, client, auth, clinic, count_queries)
    assert consent_reads(counter) == 2


def test_confirming_records_the_view_of_the_patient_once(app, client, auth, clinic, count_queries):
    _confirm_for_two(app, client, auth, clinic, count_queries)
    with app.app_context():
        viewed = db.session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "patient_data.viewed")
        ).all()
    assert sorted(d["page"] for d in viewed) == ["book for family", "series booking"]


def test_the_calendar_reads_the_weeks_places_with_its_sessions(
    app, client, auth, clinic, count_queries
):
    """Which week of its series each session is comes with the week's sessions, in no
    statement of its own; a cancelled week keeps its number."""
    with app.app_context():
        add_appointment(
            db.session.get(User, clinic["therapist_id"]),
            db.session.get(User, clinic["patient"]),
            db.session.get(User, clinic["family_id"]),
            db.session.get(SessionType, clinic["private"]),
            starts_at=datetime(2026, 11, 4, 15, 0, tzinfo=NEW_YORK),
            booked_at=WEEK_BEFORE_FALL_BACK,
        )
    auth.login(clinic["therapist"])
    second_week = {"date": "2026-11-02"}
    client.get("/therapist/calendar", query_string=second_week)  # warm
    with count_queries() as no_series:
        client.get("/therapist/calendar", query_string=second_week)
    book_series(client, clinic)
    first = series_seats(app)[0]
    cancelled = client.post(f"/therapist/seats/{first}/cancel", data={"reason": "other"})
    assert cancelled.status_code == 302
    with count_queries() as a_series:
        page = client.get("/therapist/calendar", query_string=second_week).get_data(as_text=True)
    assert "weekly, 2 of 4" in page
    assert a_series.count == no_series.count


def test_move_all_future_leaves_a_week_already_moved_there(app, client, auth, clinic):
    """The third week was moved on its own to the Thursday: the series' move says it stays
    as it is, moves the other weeks, and is not refused as a whole."""
    auth.login(clinic["therapist"])
    book_series(client, clinic)
    seats = series_seats(app)
    third = slot(datetime(2026, 11, 12, 14, 0, tzinfo=NEW_YORK))
    moved = client.post(f"/therapist/seats/{seats[2]}/reschedule", data={"slot": third})
    assert moved.status_code == 302
    url = f"/therapist/seats/{seats[0]}/move-future"
    new = slot(datetime(2026, 10, 29, 14, 0, tzinfo=NEW_YORK))
    response = client.post(url, data={"slot": new})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Already at this time: left as it is." in page
    assert "Move all 3 weeks" in page
    response = client.post(url, data={"slot": new, "confirmed": "1"})
    assert response.status_code == 302
    assert _local_starts(app, seats) == [(29, 14), (5, 14), (12, 14), (19, 14)]


def _local_starts(app, seats) -> list[tuple[int, int]]:
    """Each seat's session as (day, hour) in New York."""
    with app.app_context():
        starts = [
            db.session.get(AppointmentFamily, s).appointment.starts_at.astimezone(NEW_YORK)
            for s in seats
        ]
    return [(start.day, start.hour) for start in starts]


def _statements(client, count_queries, method: str, url: str, **sent) -> int:
    """The statements of a request made a second time (the first warms the caches)."""
    getattr(client, method)(url, **sent)
    with count_queries() as counter:
        response = getattr(client, method)(url, **sent)
    assert response.status_code == 200, response.status_code
    return counter.count


def _two_series(app, client, clinic) -> tuple[int, int]:
    """A 2-week and a 12-week series (three hours apart): the first seat of each."""
    firsts = (FIRST, FIRST + timedelta(hours=3))
    for first, weeks in zip(firsts, ("2", "12"), strict=True):
        form = series_form(clinic, slot=slot(first), weeks=weeks, confirmed="1")
        booked = client.post(BOOK, query_string={"patient": clinic["patient"]}, data=form)
        assert booked.status_code == 302
    with app.app_context():
        return tuple(
            db.session.scalar(
                select(AppointmentFamily.id)
                .join(AppointmentFamily.appointment)
                .where(Appointment.starts_at == first)
            )
            for first in firsts
        )


def test_cancel_all_future_page_costs_the_same_for_any_number_of_weeks(
    app, client, auth, clinic, count_queries
):
    auth.login(clinic["therapist"])
    short, long = _two_series(app, client, clinic)
    counts = [
        _statements(client, count_queries, "get", f"/therapist/seats/{seat}/cancel?future=1")
        for seat in (short, long)
    ]
    assert counts[0] == counts[1], counts


def test_move_all_future_check_costs_the_same_for_any_number_of_weeks(
    app, client, auth, clinic, count_queries
):
    auth.login(clinic["therapist"])
    short, long = _two_series(app, client, clinic)
    counts = [
        _statements(
            client,
            count_queries,
            "post",
            f"/therapist/seats/{seat}/move-future",
            data={"slot": slot(first + timedelta(days=1))},
        )
        for seat, first in ((short, FIRST), (long, FIRST + timedelta(hours=3)))
    ]
    assert counts[0] == counts[1], counts
