"""Moving "this and all future" weeks of a series after one week was moved on its own by
several days (or past its neighbour): each week keeps its own week of the series, so no
week is taken for its neighbour's and no false "You already have a session then" is
listed. The series runs across the 2026-11-01 fall-back, so its local time must hold too."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import Appointment
from familylink.services import booking
from tests.booking_setup import create_clinic
from tests.moments import WEEK_BEFORE_FALL_BACK

NEW_YORK = ZoneInfo("America/New_York")
NOW = WEEK_BEFORE_FALL_BACK


def new_york(*args) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK).astimezone(UTC)


# Tuesdays 10:00 in New York: 2026-10-27 (EDT), then 11-03, 11-10, 11-17 (EST).
FIRST = new_york(2026, 10, 27, 10, 0)
# Moving the series to Wednesdays at 10:00, from its first week.
WEDNESDAYS = [datetime(2026, 10, 28, 10, 0), *(datetime(2026, 11, d, 10, 0) for d in (4, 11, 18))]


@pytest.fixture
def clinic(app_ctx):
    return create_clinic()


def _series_seats(clinic):
    series = booking.book_series(
        actor=clinic.therapist,
        patient_id=clinic.patient.id,
        session_type_id=clinic.private.id,
        first_start=FIRST,
        weeks=4,
        attendee_ids=[clinic.family.id],
        now=NOW,
    )
    appointments = db.session.scalars(
        select(Appointment)
        .where(Appointment.weekly_series_id == series.id)
        .order_by(Appointment.id)
    )
    return [a.seats[0] for a in appointments]


def _local(starts):
    return [s.astimezone(NEW_YORK).replace(tzinfo=None) for s in starts]


@pytest.mark.parametrize(
    ("week", "moved_to"),
    [
        (1, (2026, 11, 7, 10, 0)),  # week 2, Tuesday -> Saturday: 4 days later
        (1, (2026, 11, 8, 9, 0)),  # week 2, 5 days later, and at another time
        (2, (2026, 11, 6, 10, 0)),  # week 3, Tuesday -> the Friday before: 4 days earlier
        (2, (2026, 11, 4, 15, 0)),  # week 3, 6 days earlier (the day after week 2)
        (0, (2026, 10, 31, 10, 0)),  # week 1 itself, 4 days later (the week moved from)
        (1, (2026, 11, 11, 12, 0)),  # week 2, 8 days later: past week 3
        (2, (2026, 10, 29, 12, 0)),  # week 3, 12 days earlier: before week 2
    ],
)
def test_moving_all_future_after_one_week_moved_alone_keeps_each_week(clinic, week, moved_to):
    seats = _series_seats(clinic)
    booking.reschedule(
        actor=clinic.therapist, seat_id=seats[week].id, starts_at=new_york(*moved_to), now=NOW
    )
    new = new_york(2026, 10, 28, 10, 0)  # Wednesday
    plan = booking.plan_move(actor=clinic.therapist, seat_id=seats[0].id, starts_at=new, now=NOW)
    assert [o.problem for o in plan.occurrences] == [None] * 4
    by_seat = {o.seat.id: o.starts_at for o in plan.occurrences}
    assert _local(by_seat[s.id] for s in seats) == WEDNESDAYS
    booking.move_future(actor=clinic.therapist, seat_id=seats[0].id, starts_at=new, now=NOW)
    assert _local(s.appointment.starts_at for s in seats) == WEDNESDAYS


def test_moving_from_a_later_week_after_an_earlier_one_moved_alone(clinic):
    """Week 2 moved 4 days later; moving weeks 2 to 4 to Thursdays at 14:00 takes each to
    its own week (across the fall-back), and leaves week 1."""
    seats = _series_seats(clinic)
    booking.reschedule(
        actor=clinic.therapist, seat_id=seats[1].id, starts_at=new_york(2026, 11, 7, 10), now=NOW
    )
    new = new_york(2026, 11, 5, 14, 0)
    moved = booking.move_future(actor=clinic.therapist, seat_id=seats[1].id, starts_at=new, now=NOW)
    assert [s.id for s in moved] == [s.id for s in seats[1:]]
    assert _local(s.appointment.starts_at for s in seats) == [
        datetime(2026, 10, 27, 10, 0),
        datetime(2026, 11, 5, 14, 0),
        datetime(2026, 11, 12, 14, 0),
        datetime(2026, 11, 19, 14, 0),
    ]


def test_a_week_moved_alone_past_the_one_moved_from_is_not_a_later_week(clinic):
    """Week 2 moved past week 3 (to the Wednesday after it): moving "week 3 and all future"
    moves weeks 3 and 4, each to its own week; week 2, an earlier week of the series, is
    not taken for week 3's and stays where it is."""
    seats = _series_seats(clinic)
    week_2 = new_york(2026, 11, 11, 12, 0)
    booking.reschedule(actor=clinic.therapist, seat_id=seats[1].id, starts_at=week_2, now=NOW)
    new = new_york(2026, 11, 12, 14, 0)  # Thursday
    plan = booking.plan_move(actor=clinic.therapist, seat_id=seats[2].id, starts_at=new, now=NOW)
    assert [(o.seat.id, o.problem) for o in plan.occurrences] == [
        (seats[2].id, None),
        (seats[3].id, None),
    ]
    booking.move_future(actor=clinic.therapist, seat_id=seats[2].id, starts_at=new, now=NOW)
    assert _local(s.appointment.starts_at for s in seats) == [
        datetime(2026, 10, 27, 10, 0),
        datetime(2026, 11, 11, 12, 0),
        datetime(2026, 11, 12, 14, 0),
        datetime(2026, 11, 19, 14, 0),
    ]
