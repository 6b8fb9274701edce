"""Every "choose a time" page is the week picker (issue 19, point 3): the family's "Move to
another time", the therapist's "Book for a family", "Move a session" and "Move this and all
future weeks". One week at a
time, the page's other inputs kept from week to week, the first week with a free time
first, and never a time that has started (a forged one is refused by the service)."""

import re
from datetime import UTC, datetime, time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AvailabilityWindow,
    OutboxEmail,
    Role,
    SessionType,
    User,
)
from familylink.services import booking
from tests.booking_setup import add_appointment, add_family, create_clinic, family_seat
from tests.factories import create_user, set_program
from tests.moments import BEFORE_FALL_BACK, NOON

# Monday, November 30, 2026, 10:00 AM in New York: well outside the cancellation window.
SEAT_TIME = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
NOW_SLOT = NOON.strftime("%Y-%m-%dT%H:%MZ")  # 12:00 PM in New York: the time it is now
# Tuesday, November 24, 2026, 10:00 AM in New York: the first week of a weekly series.
SERIES_FIRST = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def world(app):
    with app.app_context():
        clinic = create_clinic()
        seat = family_seat(clinic, SEAT_TIME, booked_at=NOON)
        return {
            "family": clinic.family.email,
            "therapist": clinic.therapist.email,
            "patient": clinic.patient.id,
            "family_id": clinic.family.id,
            "private": clinic.private.id,
            "seat": seat.id,
        }


def slot_values(page: str) -> list[str]:
    return re.findall(r'type="radio" name="slot" id="[^"]*" value="([^"]+Z)"', page)


def heading(page: str) -> str:
    return re.search(r'id="week-heading">([^<]+)<', page).group(1)


def week_links(page: str) -> dict[str, dict[str, list[str]]]:
    """The previous/next week links: their words → their query."""
    nav = re.search(r'<nav class="week-nav".*?</nav>', page, re.S).group(0)
    return {
        unescape(words): parse_qs(urlsplit(unescape(href)).query)
        for href, words in re.findall(r'<a href="([^"]+)">([^<]+)</a>', nav)
    }


def seat_time(app) -> datetime:
    with app.app_context():
        starts = db.session.scalar(select(Appointment.starts_at))
        return starts if starts.tzinfo else starts.replace(tzinfo=UTC)  # SQLite: naive UTC


def mails(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(OutboxEmail)).all())


def test_the_family_moves_a_session_in_a_week_picker(app, client, auth, world):
    auth.login(world["family"])
    page = client.get(f"/booking/{world['seat']}").get_data(as_text=True)
    assert "Move to another time" in page and "<select" not in page
    assert heading(page) == "Week of Monday, November 16, 2026"  # the first with a free time
    assert "<legend>Thursday, November 19</legend>" in page
    assert '<label for="slot-2026-11-19T1400Z">9:00 AM</label>' in page
    links = week_links(page)
    assert list(links) == ["Next week →"]
    assert links["Next week →"] == {"week": ["2026-11-23"]}
    assert f'href="/booking/{world["seat"]}?week=2026-11-23"' in page  # the same session
    later = client.get(f"/booking/{world['seat']}?week=2026-11-30").get_data(as_text=True)
    assert heading(later) == "Week of Monday, November 30, 2026"
    assert set(week_links(later)) == {"← Previous week", "Next week →"}
    offered = slot_values(later)
    assert "2026-11-30T15:00Z" not in offered  # the time it is at now
    assert "2026-11-30T16:00Z" in offered
    moved = client.post(f"/booking/{world['seat']}/reschedule", data={"slot": "2026-11-30T16:00Z"})
    assert moved.status_code == 302
    assert seat_time(app) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "week, notice",
    [
        ("2026-11-02", "That week has passed. Here are the coming weeks."),
        ("2027-03-01", "Times can be booked up to 28 days ahead."),
        ("garbage", "That is not a week we can show. Here are the coming weeks."),
    ],
)
def test_a_week_the_move_picker_cannot_show_says_so_and_shows_the_first(
    client, auth, world, week, notice
):
    auth.login(world["family"])
    page = client.get(f"/booking/{world['seat']}?week={week}").get_data(as_text=True)
    assert notice in page
    assert heading(page) == "Week of Monday, November 16, 2026"


def test_moving_a_session_to_the_time_it_is_at_is_refused(app, client, auth, world):
    auth.login(world["family"])
    same = SEAT_TIME.strftime("%Y-%m-%dT%H:%MZ")
    refused = client.post(f"/booking/{world['seat']}/reschedule", data={"slot": same})
    assert refused.status_code == 303
    page = client.get(refused.headers["Location"]).get_data(as_text=True)
    assert "The session is already at that time. Choose another time." in page
    client.post("/logout")
    auth.login(world["therapist"])
    path = f"/therapist/seats/{world['seat']}/reschedule"
    refused = client.post(path, data={"slot": same})
    assert refused.status_code == 400
    assert "The session is already at that time." in refused.get_data(as_text=True)
    assert mails(app) == 0


def test_the_therapist_moves_a_session_in_a_week_picker_that_keeps_the_calendar_week(
    app, client, auth, world
):
    auth.login(world["therapist"])
    path = f"/therapist/seats/{world['seat']}/reschedule"
    page = client.get(f"{path}?week=2026-11-30&view=day").get_data(as_text=True)
    assert "<select" not in page
    assert heading(page) == "Week of Monday, November 16, 2026"
    assert week_links(page)["Next week →"] == {
        "times": ["2026-11-23"],
        "week": ["2026-11-30"],
        "view": ["day"],
    }
    later = client.get(f"{path}?times=2026-11-30&week=2026-11-30&view=day")
    text = later.get_data(as_text=True)
    assert heading(text) == "Week of Monday, November 30, 2026"
    assert "2026-11-30T15:00Z" not in slot_values(text)
    action = re.search(r'<form method="post" action="([^"]*/reschedule[^"]*)"', text).group(1)
    assert parse_qs(urlsplit(unescape(action)).query) == {
        "times": ["2026-11-30"],
        "week": ["2026-11-30"],
        "view": ["day"],
    }
    moved = client.post(unescape(action), data={"slot": "2026-12-01T15:00Z"})
    assert moved.status_code == 302
    # Back to the calendar's day it came from, as before.
    assert moved.headers["Location"].endswith("/therapist/calendar?view=day&date=2026-11-30")
    assert seat_time(app) == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def test_the_therapist_books_for_a_family_in_a_week_picker(app, client, auth, world):
    auth.login(world["therapist"])
    book = f"/therapist/book?patient={world['patient']}"
    page = client.get(book).get_data(as_text=True)
    assert heading(page) == "Week of Monday, November 16, 2026"
    assert '<label for="slot-2026-11-19T1400Z">9:00 AM</label>' in page
    assert week_links(page)["Next week →"] == {
        "patient": [str(world["patient"])],
        "type": [str(world["private"])],
        "week": ["2026-11-23"],
    }
    later = client.get(f"{book}&type={world['private']}&week=2026-11-30").get_data(as_text=True)
    assert heading(later) == "Week of Monday, November 30, 2026"
    assert "2026-11-30T15:00Z" not in slot_values(later)  # the family's session is there
    data = {
        "session_type": world["private"],
        "slot": "2026-12-01T15:00Z",
        "attendees": [world["family_id"]],
        "weeks": "0",
    }
    assert client.post(book, data=data).status_code == 302
    refused = client.post(book, data={**data, "slot": "2026-12-01T03:00Z"})  # 10 PM
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "That time is not available. Choose one of the times shown." in text
    assert heading(text) == "Week of Monday, November 30, 2026"  # the week of the time refused


def test_a_time_that_has_started_is_never_offered_and_a_forged_one_is_refused(
    app, client, auth, world
):
    set_program(app, minimum_notice_hours=0)  # a time starting now would be the first free
    auth.login(world["family"])
    new = client.get(f"/booking/new?patient={world['patient']}").get_data(as_text=True)
    move = client.get(f"/booking/{world['seat']}").get_data(as_text=True)
    for page in (new, move):
        assert NOW_SLOT not in slot_values(page)
        assert "2026-11-18T18:00Z" in slot_values(page)  # the next hour is offered
    refused = client.post(f"/booking/{world['seat']}/reschedule", data={"slot": NOW_SLOT})
    assert refused.status_code == 303
    assert "That time has passed." in client.get(refused.headers["Location"]).get_data(as_text=True)
    client.post("/logout")
    auth.login(world["therapist"])
    book = f"/therapist/book?patient={world['patient']}"
    path = f"/therapist/seats/{world['seat']}/reschedule"
    for url in (book, path):
        assert NOW_SLOT not in slot_values(client.get(url).get_data(as_text=True))
    data = {"session_type": world["private"], "attendees": [world["family_id"]]}
    for url, form in ((book, data), (path, {})):
        forged = client.post(url, data={**form, "slot": NOW_SLOT})
        assert forged.status_code == 400
        assert "That time has passed. Choose another." in forged.get_data(as_text=True)
    assert seat_time(app) == SEAT_TIME and mails(app) == 0
    with app.app_context():
        assert len(db.session.scalars(select(Appointment)).all()) == 1


@pytest.mark.parametrize("settings_override", [{"NOW_OVERRIDE": BEFORE_FALL_BACK}])
def test_the_hour_repeated_when_the_clocks_go_back_reads_twice_differently(
    app, client, auth, settings_override
):
    """Sunday, November 1, 2026 in New York: 1:00 AM happens twice (EDT, then EST)."""
    with app.app_context():
        clinic = create_clinic()
        db.session.add(
            AvailabilityWindow(
                therapist_id=clinic.therapist.id, weekday=6, start_time=time(0), end_time=time(3)
            )
        )
        db.session.commit()
        family = clinic.family.email
        patient = clinic.patient.id
    auth.login(family)
    page = client.get(f"/booking/new?patient={patient}&week=2026-10-26").get_data(as_text=True)
    sunday = page[page.index("<legend>Sunday, November 1</legend>") :]
    labels = re.findall(r'<label for="slot-[^"]+">([^<]+)</label>', sunday)
    assert labels[:4] == ["12:00 AM", "1:00 AM EDT", "1:00 AM EST", "2:00 AM"]


def _series(app, world, first: datetime, weeks: int = 3) -> list[int]:
    """A weekly series of the world's family booked by the therapist: its seats by start."""
    with app.app_context():
        therapist = db.session.scalar(select(User).where(User.email == world["therapist"]))
        series = booking.book_series(
            actor=therapist,
            patient_id=world["patient"],
            session_type_id=world["private"],
            first_start=first,
            weeks=weeks,
            attendee_ids=[world["family_id"]],
            now=NOON,
        )
        db.session.commit()
        return list(
            db.session.scalars(
                select(AppointmentFamily.id)
                .join(AppointmentFamily.appointment)
                .where(Appointment.weekly_series_id == series.id)
                .order_by(Appointment.starts_at)
            )
        )


def _taken(app, world, starts_at: datetime) -> None:
    """Another family's session of the therapist at `starts_at`."""
    with app.app_context():
        therapist = db.session.scalar(select(User).where(User.email == world["therapist"]))
        other = create_user(Role.PATIENT, name="Sam Okafor", therapist=therapist)
        member = add_family(other, "Ada Okafor")
        private = db.session.get(SessionType, world["private"])
        add_appointment(therapist, other, member, private, starts_at=starts_at, booked_at=NOON)


def series_starts(app, seats: list[int]) -> list[datetime]:
    with app.app_context():
        starts = [db.session.get(AppointmentFamily, s).appointment.starts_at for s in seats]
        return [s if s.tzinfo else s.replace(tzinfo=UTC) for s in starts]


def test_the_therapist_moves_all_future_weeks_in_a_week_picker(app, client, auth, world):
    """The series move is the week picker too: weeks kept in its links and its form, the
    weeks listed with their conflicts before anything moves, then all of them moved."""
    seats = _series(app, world, SERIES_FIRST)
    emailed = mails(app)
    auth.login(world["therapist"])
    path = f"/therapist/seats/{seats[0]}/move-future"
    page = client.get(f"{path}?week=2026-11-23").get_data(as_text=True)
    assert "<select" not in page
    assert heading(page) == "Week of Monday, November 16, 2026"
    assert week_links(page)["Next week →"] == {"times": ["2026-11-23"], "week": ["2026-11-23"]}
    later = client.get(f"{path}?times=2026-11-23&week=2026-11-23").get_data(as_text=True)
    assert heading(later) == "Week of Monday, November 23, 2026"
    assert SERIES_FIRST.strftime("%Y-%m-%dT%H:%MZ") not in slot_values(later)  # its own time
    assert "<legend>Wednesday, November 25</legend>" in later
    action = re.search(r'<form method="post" action="([^"]*/move-future[^"]*)"', later).group(1)
    assert parse_qs(urlsplit(unescape(action)).query) == {
        "times": ["2026-11-23"],
        "week": ["2026-11-23"],
    }
    _taken(app, world, datetime(2026, 12, 9, 16, 0, tzinfo=UTC))  # the third week's new time
    wednesday = "2026-11-25T16:00Z"  # 11:00 AM in New York
    refused = client.post(unescape(action), data={"slot": wednesday})
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "1 week can't be used." in unescape(text) and "Move all 3 weeks" not in text
    assert heading(text) == "Week of Monday, November 23, 2026"  # the week of the time chosen
    assert f'value="{wednesday}" checked' in text
    assert series_starts(app, seats)[0] == SERIES_FIRST and mails(app) == emailed
    thursday = "2026-11-26T16:00Z"
    listed = client.post(unescape(action), data={"slot": thursday})
    assert listed.status_code == 200
    assert "Move all 3 weeks" in listed.get_data(as_text=True)
    moved = client.post(unescape(action), data={"slot": thursday, "confirmed": "1"})
    assert moved.status_code == 302
    assert series_starts(app, seats) == [
        datetime(2026, 11, 26, 16, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 16, 0, tzinfo=UTC),
        datetime(2026, 12, 10, 16, 0, tzinfo=UTC),
    ]


def test_the_therapists_move_pickers_offer_what_the_move_accepts_inside_the_notice(
    app, client, auth, world
):
    """The therapist can always reschedule (DESIGN.md): the moves accept any time not yet
    started that overlaps nothing, and the pickers offered only the times a family may book
    (12 hours' notice). This afternoon is now offered to the therapist, and moves; the
    family's own move picker still keeps the notice."""
    seats = _series(app, world, SERIES_FIRST)
    this_afternoon = "2026-11-18T18:00Z"  # 1:00 PM in New York, an hour from now
    auth.login(world["family"])
    assert this_afternoon not in slot_values(
        client.get(f"/booking/{world['seat']}").get_data(as_text=True)
    )
    client.post("/logout")
    auth.login(world["therapist"])
    one = f"/therapist/seats/{world['seat']}/reschedule"
    every = f"/therapist/seats/{seats[0]}/move-future"
    for path in (one, every):
        page = client.get(path).get_data(as_text=True)
        assert heading(page) == "Week of Monday, November 16, 2026"
        assert this_afternoon in slot_values(page), path
    moved = client.post(every, data={"slot": this_afternoon, "confirmed": "1"})
    assert moved.status_code == 302
    assert series_starts(app, seats)[0] == datetime(2026, 11, 18, 18, 0, tzinfo=UTC)
    assert client.post(one, data={"slot": "2026-11-18T20:00Z"}).status_code == 302
    assert series_starts(app, [world["seat"]])[0] == datetime(2026, 11, 18, 20, 0, tzinfo=UTC)


def test_the_therapist_may_type_any_other_time_the_move_accepts(app, client, auth, world):
    """Past the week's free times, the therapist's move pages take a day and a time typed in
    their zone (their move accepts any time that overlaps none of their sessions, outside
    their hours too); a half-typed, skipped or passed time is refused beside the field."""
    seats = _series(app, world, SERIES_FIRST)
    auth.login(world["therapist"])
    one = f"/therapist/seats/{world['seat']}/reschedule"
    every = f"/therapist/seats/{seats[0]}/move-future"
    page = client.get(one).get_data(as_text=True)
    assert 'type="date"' in page and 'type="time"' in page and "Or another time" in page
    refusals = [
        ({"other_day": "2026-11-22"}, "Enter both a day and a time."),
        ({"other_day": "2026-11-22", "other_time": "7pm"}, "Enter both a day and a time."),
        ({"other_day": "2027-03-14", "other_time": "02:30"}, "the clocks skip that hour"),
        ({"other_day": "2026-11-18", "other_time": "09:00"}, "That time has passed."),
    ]
    for data, message in refusals:
        for path in (one, every):
            refused = client.post(path, data=data)
            assert refused.status_code in (400, 409), (path, data)  # 409: a week listed
            assert message in unescape(refused.get_data(as_text=True)), (path, data)
    assert series_starts(app, [world["seat"], seats[0]]) == [SEAT_TIME, SERIES_FIRST]
    sunday_night = {"other_day": "2026-11-22", "other_time": "22:00"}  # outside the hours
    assert client.post(one, data=sunday_night).status_code == 302
    assert series_starts(app, [world["seat"]]) == [datetime(2026, 11, 23, 3, 0, tzinfo=UTC)]
    evening = {"other_day": "2026-11-25", "other_time": "19:00"}
    listed = client.post(every, data=evening)
    assert listed.status_code == 200
    text = listed.get_data(as_text=True)
    assert "Wednesday, December 9, 2026, 7:00 PM EST" in text
    assert 'name="slot" value="2026-11-26T00:00Z"' in text  # the confirmation carries it
    moved = client.post(every, data={"slot": "2026-11-26T00:00Z", "confirmed": "1"})
    assert moved.status_code == 302
    assert series_starts(app, seats) == [
        datetime(2026, 11, 26, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 10, 0, 0, tzinfo=UTC),
    ]


def test_a_typed_time_is_read_in_the_therapists_zone_across_the_clock_changes(app):
    from familylink.booking.slots import typed_slot
    from familylink.services.errors import DomainError

    with app.test_request_context():
        # The hour the clocks go back happens twice: the first (EDT) is taken, and the
        # series page then lists it as "1:30 AM EDT".
        assert typed_slot("2026-11-01", "01:30", "America/New_York") == "2026-11-01T05:30Z"
        assert typed_slot("2026-11-22", "22:00", "America/Los_Angeles") == "2026-11-23T06:00Z"
        with pytest.raises(DomainError, match="the clocks skip that hour"):
            typed_slot("2027-03-14", "02:30", "America/New_York")
        for day, clock in (("", "10:00"), ("2026-11-22", ""), ("22/11/2026", "10:00")):
            with pytest.raises(DomainError, match="Enter both a day and a time."):
                typed_slot(day, clock, "America/New_York")
