"""Weekly series of private family sessions, called directly: the same local time across the
2026-11-01 fall-back, every week checked, all or nothing, cancel or move this and all future."""

import inspect
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentSeries,
    AuditEvent,
    AvailabilityOverride,
    OutboxEmail,
    Role,
    SeatStatus,
)
from familylink.services import booking
from familylink.services.booking import series, slots
from familylink.services.booking.weeks import WeekChecker
from familylink.services.errors import NotFound, ValidationError
from familylink.services.program import get_program
from tests.booking_setup import add_appointment, add_family, create_clinic, family_seat
from tests.factories import create_consent, create_user
from tests.moments import WEEK_BEFORE_FALL_BACK

NEW_YORK = ZoneInfo("America/New_York")
# Tuesday 2026-10-27, 10:00 in New York (EDT, 14:00 UTC): four weeks reach 2026-11-17 (EST).
FIRST = datetime(2026, 10, 27, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)


@pytest.fixture
def now():
    return WEEK_BEFORE_FALL_BACK


@pytest.fixture
def clinic(app_ctx):
    return create_clinic()


def series_args(clinic, now, **extra):
    args = {
        "actor": clinic.therapist,
        "patient_id": clinic.patient.id,
        "session_type_id": clinic.private.id,
        "first_start": FIRST,
        "weeks": 4,
        "attendee_ids": [clinic.family.id],
        "now": now,
    }
    args.update(extra)
    return args


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def local_starts(occurrences):
    return [o.starts_at.astimezone(NEW_YORK).replace(tzinfo=None) for o in occurrences]


@pytest.mark.parametrize("strict", [True, False])
def test_the_week_checker_reads_the_therapist_in_one_statement(
    clinic, now, count_queries, monkeypatch, strict
):
    """Hours, time off and sessions read together once; the free times computed only for
    a strict check (a therapist's move of every later week asks only about overlaps)."""
    computed = []
    monkeypatch.setattr(slots, "free_slots", lambda *a, **k: computed.append(1) or [])
    get_program()  # the program's settings, cached: read by every page
    with count_queries() as counter:
        WeekChecker(clinic.patient, clinic.private, [], now=now, strict=strict)
    assert counter.count == 1
    assert computed == ([1] if strict else [])


def test_a_series_keeps_the_local_time_across_the_fall_back(clinic, now):
    plan = booking.plan_series(**series_args(clinic, now))
    assert [o.problem for o in plan.occurrences] == [None] * 4
    assert local_starts(plan.occurrences) == [
        datetime(2026, 10, 27, 10, 0),
        datetime(2026, 11, 3, 10, 0),
        datetime(2026, 11, 10, 10, 0),
        datetime(2026, 11, 17, 10, 0),
    ]
    # The UTC instant moves by the hour the clocks went back.
    assert [o.starts_at.astimezone(UTC).hour for o in plan.occurrences] == [14, 15, 15, 15]


def test_booking_a_series_books_each_week_as_a_single_session(clinic, now):
    series = booking.book_series(**series_args(clinic, now))
    appointments = db.session.scalars(
        select(Appointment).where(Appointment.weekly_series_id == series.id)
    ).all()
    assert len(appointments) == 4
    assert (series.weekday, series.local_time, series.zone) == (1, time(10), "America/New_York")
    assert count(AuditEvent, AuditEvent.action == "booking.created") == 4
    assert count(AuditEvent, AuditEvent.action == "booking.series_created") == 1
    # One confirmation per week, each with its own .ics (an outbox row carries one file).
    confirmations = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.kind == "booking_confirmed")
    ).all()
    assert len(confirmations) == 4
    assert all(m.attachment_data for m in confirmations)


def test_conflicts_are_listed_and_nothing_is_booked(clinic, now):
    # The third week is taken by another session, the fourth falls on time off.
    third = FIRST + timedelta(weeks=2, hours=1)
    family_seat(clinic, third, booked_at=now)
    db.session.add(AvailabilityOverride(therapist_id=clinic.therapist.id, day=date(2026, 11, 17)))
    db.session.flush()
    with pytest.raises(booking.SeriesConflict) as refused:
        booking.book_series(**series_args(clinic, now))
    problems = [o.problem for o in refused.value.plan.occurrences]
    assert problems[:2] == [None, None]
    assert problems[2] == "You already have a session then."
    assert problems[3] == "You are off that day."
    assert refused.value.plan.listed[0].problem is not None  # conflicts come first
    assert count(AppointmentSeries) == 0
    assert count(Appointment) == 1  # only the one that was there


def test_a_family_member_without_the_scheduling_scope_is_refused(clinic, now):
    reader = add_family(clinic.patient, "Ana Rivera", scopes=("progress",))
    with pytest.raises(ValidationError) as refused:
        booking.plan_series(**series_args(clinic, now, attendee_ids=[reader.id]))
    assert refused.value.field == "attendees"


def test_a_consent_ending_mid_series_marks_the_weeks_after_it(clinic, now):
    member = create_user(Role.FAMILY, name="Ana Rivera")
    create_consent(clinic.patient, member, expires_at=datetime(2026, 11, 5, tzinfo=UTC))
    plan = booking.plan_series(**series_args(clinic, now, attendee_ids=[member.id]))
    assert [o.problem is None for o in plan.occurrences] == [True, True, False, False]
    assert "Ana Rivera" in plan.occurrences[2].problem


@pytest.mark.parametrize("weeks", [1, 13, 0, "4"])
def test_weeks_must_be_two_to_twelve(clinic, now, weeks):
    with pytest.raises(ValidationError) as refused:
        booking.plan_series(**series_args(clinic, now, weeks=weeks))
    assert refused.value.field == "weeks"


def test_only_the_patients_own_therapist_plans_a_series(clinic, now):
    # A family member may when the program allows it: tests/unit/test_family_series.py.
    for someone in (create_user(Role.THERAPIST), clinic.patient):
        with pytest.raises(NotFound):
            booking.plan_series(**series_args(clinic, now, actor=someone))


def test_weeks_past_the_booking_horizon_are_booked_but_the_first_is_not(clinic, now):
    plan = booking.plan_series(**series_args(clinic, now, weeks=12))
    assert [o.problem for o in plan.occurrences] == [None] * 12
    late = FIRST + timedelta(days=40)
    plan = booking.plan_series(**series_args(clinic, now, first_start=late, weeks=2))
    assert plan.occurrences[0].problem == "That is past the booking horizon."


def _booked_seats(series):
    return [
        a.seats[0]
        for a in db.session.scalars(
            select(Appointment)
            .where(Appointment.weekly_series_id == series.id)
            .order_by(Appointment.starts_at)
        )
    ]


def test_cancel_this_and_all_future_leaves_the_earlier_weeks(clinic, now):
    series = booking.book_series(**series_args(clinic, now))
    seats = _booked_seats(series)
    cancelled = booking.cancel_future(
        actor=clinic.therapist, seat_id=seats[2].id, reason="family_asked", now=now
    )
    assert [s.id for s in cancelled] == [seats[2].id, seats[3].id]
    assert [s.status for s in seats] == [
        SeatStatus.BOOKED,
        SeatStatus.BOOKED,
        SeatStatus.CANCELLED,
        SeatStatus.CANCELLED,
    ]
    assert count(AuditEvent, AuditEvent.action == "booking.cancelled") == 2
    assert count(OutboxEmail, OutboxEmail.kind == "booking_cancelled") == 2


def test_cancel_this_and_all_future_leaves_weeks_already_past(clinic, now):
    series = booking.book_series(**series_args(clinic, now))
    seats = _booked_seats(series)
    later = seats[1].appointment.starts_at + timedelta(hours=2)
    booking.cancel_future(
        actor=clinic.therapist, seat_id=seats[2].id, reason="family_asked", now=later
    )
    assert seats[0].status == seats[1].status == SeatStatus.BOOKED


def test_cancel_future_needs_a_reason_and_a_series(clinic, now):
    series = booking.book_series(**series_args(clinic, now))
    seat = _booked_seats(series)[0]
    with pytest.raises(ValidationError):
        booking.cancel_future(actor=clinic.therapist, seat_id=seat.id, reason="", now=now)
    single = family_seat(clinic, FIRST + timedelta(days=1), booked_at=now)
    with pytest.raises(ValidationError):
        booking.cancel_future(
            actor=clinic.therapist, seat_id=single.id, reason="family_asked", now=now
        )
    with pytest.raises(NotFound):
        booking.cancel_future(
            actor=create_user(Role.FAMILY), seat_id=seat.id, reason="other", now=now
        )


def test_move_all_future_keeps_the_new_local_time_every_week(clinic, now):
    series = booking.book_series(**series_args(clinic, now))
    seats = _booked_seats(series)
    new = datetime(2026, 10, 29, 14, 0, tzinfo=NEW_YORK).astimezone(UTC)  # Thursday 2 PM
    moved = booking.move_future(actor=clinic.therapist, seat_id=seats[0].id, starts_at=new, now=now)
    assert local_starts([s.appointment for s in moved]) == [
        datetime(2026, 10, 29, 14, 0),
        datetime(2026, 11, 5, 14, 0),
        datetime(2026, 11, 12, 14, 0),
        datetime(2026, 11, 19, 14, 0),
    ]
    assert all(s.appointment.sequence == 1 for s in moved)
    assert count(AuditEvent, AuditEvent.action == "booking.rescheduled") == 4


def test_move_all_future_a_week_later_does_not_collide_with_itself(clinic, now):
    series = booking.book_series(**series_args(clinic, now))
    seats = _booked_seats(series)
    moved = booking.move_future(
        actor=clinic.therapist,
        seat_id=seats[0].id,
        starts_at=FIRST + timedelta(weeks=1, minutes=30),
        now=now,
    )
    assert len(moved) == 4


def test_move_all_future_is_all_or_nothing(clinic, now):
    series = booking.book_series(**series_args(clinic, now))
    seats = _booked_seats(series)
    before = [s.appointment.starts_at for s in seats]
    new = datetime(2026, 10, 29, 14, 0, tzinfo=NEW_YORK).astimezone(UTC)
    add_appointment(
        clinic.therapist,
        clinic.patient,
        clinic.family,
        clinic.private,
        starts_at=datetime(2026, 11, 19, 14, 0, tzinfo=NEW_YORK).astimezone(UTC),
        booked_at=now,
    )
    with pytest.raises(booking.SeriesConflict) as refused:
        booking.move_future(actor=clinic.therapist, seat_id=seats[0].id, starts_at=new, now=now)
    assert [o.problem is None for o in refused.value.plan.occurrences] == [True, True, True, False]
    db.session.expire_all()
    assert [s.appointment.starts_at for s in _booked_seats(series)] == before
    assert count(AuditEvent, AuditEvent.action == "booking.rescheduled") == 0


def test_the_demo_has_a_weekly_series_for_jordans_family(app_ctx):
    from familylink import demo
    from tests.moments import NOON

    demo.seed(password="demo password long enough", now=NOON, progress=lambda _: None)
    (series,) = db.session.scalars(select(AppointmentSeries)).all()
    assert (series.weekday, series.local_time, series.count) == (3, time(11), 6)
    assert count(Appointment, Appointment.weekly_series_id == series.id) == 6


def test_plan_and_book_take_the_one_choice_the_planner_reads():
    # Both entry points take `SeriesChoice`; `_chosen` alone reads it, by exactly its names.
    read = inspect.signature(series._chosen).parameters
    keywords = {name for name, p in read.items() if p.kind is p.KEYWORD_ONLY}
    assert keywords - {"now", "opened"} == set(series.SeriesChoice.__annotations__)


@pytest.mark.parametrize("entry", [booking.plan_series, booking.book_series])
def test_a_misspelt_choice_is_refused_not_dropped(clinic, now, entry):
    args = series_args(clinic, now)
    args["attendees"] = args.pop("attendee_ids")  # not a word either entry point takes
    with pytest.raises(TypeError):
        entry(**args)
    assert count(AppointmentSeries) == 0


def test_move_all_future_keeps_each_week_when_a_week_between_was_cancelled(clinic, now):
    """Week 2 cancelled: weeks 3 and 4 keep their own weeks (across the fall-back), on the
    new weekday; they do not close up into the gap."""
    series = booking.book_series(**series_args(clinic, now))
    seats = _booked_seats(series)
    booking.cancel_seat(actor=clinic.family, seat_id=seats[1].id, now=now)
    new = datetime(2026, 10, 28, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)  # Wednesday
    plan = booking.plan_move(actor=clinic.therapist, seat_id=seats[0].id, starts_at=new, now=now)
    wanted = [
        datetime(2026, 10, 28, 10, 0),
        datetime(2026, 11, 11, 10, 0),
        datetime(2026, 11, 18, 10, 0),
    ]
    assert local_starts(plan.occurrences) == wanted
    assert [o.local_day for o in plan.occurrences] == [w.date() for w in wanted]
    moved = booking.move_future(actor=clinic.therapist, seat_id=seats[0].id, starts_at=new, now=now)
    assert local_starts([s.appointment for s in moved]) == wanted
    assert seats[1].appointment.starts_at.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(
        2026, 11, 3, 10, 0
    )


def test_move_all_future_leaves_a_week_already_at_its_new_time(clinic, now):
    """Week 3 moved on its own to the Wednesday: moving the series to Wednesdays leaves it
    as it is (no second move, no email), and moves the others."""
    series = booking.book_series(**series_args(clinic, now))
    seats = _booked_seats(series)
    third = datetime(2026, 11, 11, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)
    booking.reschedule(actor=clinic.therapist, seat_id=seats[2].id, starts_at=third, now=now)
    assert seats[2].appointment.sequence == 1
    new = datetime(2026, 10, 28, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)
    plan = booking.plan_move(actor=clinic.therapist, seat_id=seats[0].id, starts_at=new, now=now)
    assert not plan.conflicts
    assert [o.unchanged for o in plan.occurrences] == [False, False, True, False]
    assert len(plan.moves) == 3
    moved = booking.move_future(actor=clinic.therapist, seat_id=seats[0].id, starts_at=new, now=now)
    assert [s.id for s in moved] == [seats[0].id, seats[1].id, seats[3].id]
    assert local_starts([s.appointment for s in seats]) == [
        datetime(2026, 10, 28, 10, 0),
        datetime(2026, 11, 4, 10, 0),
        datetime(2026, 11, 11, 10, 0),
        datetime(2026, 11, 18, 10, 0),
    ]
    assert seats[2].appointment.sequence == 1  # not moved again
    assert count(AuditEvent, AuditEvent.action == "booking.rescheduled") == 1 + 3


def test_move_all_future_to_where_every_week_is_already_is_refused(clinic, now):
    series = booking.book_series(**series_args(clinic, now))
    seats = _booked_seats(series)
    with pytest.raises(ValidationError, match="already at that time"):
        booking.move_future(actor=clinic.therapist, seat_id=seats[0].id, starts_at=FIRST, now=now)
    assert count(AuditEvent, AuditEvent.action == "booking.rescheduled") == 0
