"""A family member books a weekly series (when the program allows it) and cancels this and
all future weeks, through the same plan_series / book_series / cancel_future as the
therapist: across the 2026-11-01 fall-back, each week checked, all or nothing."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models.accounts import Role
from familylink.models.audit import AuditEvent
from familylink.models.mail import OutboxEmail
from familylink.models.scheduling import Appointment, AppointmentSeries, AvailabilityOverride
from familylink.services import booking
from familylink.services.errors import NotFound, ValidationError
from tests.booking_setup import add_appointment, add_family, create_clinic
from tests.factories import create_consent, create_user, set_program
from tests.moments import WEEK_BEFORE_FALL_BACK
from tests.unit.test_booking_series import FIRST, NEW_YORK, _booked_seats, count

NOW = WEEK_BEFORE_FALL_BACK
# Matched anywhere in an email (tests/unit/test_email_privacy.py checks every kind fully).
CLINICAL = ("addict", "substance", "recover", "rehab", "treatment", "diagnos", "alcohol")


@pytest.fixture
def clinic(app_ctx):
    made = create_clinic()
    set_program(families_may_book_series=True)
    return made


def family_args(clinic, **extra):
    args = {
        "actor": clinic.family,
        "patient_id": clinic.patient.id,
        "session_type_id": clinic.private.id,
        "first_start": FIRST,
        "weeks": 4,
        "now": NOW,
    }
    args.update(extra)
    return args


def test_a_family_may_not_plan_a_series_while_the_program_setting_is_off(clinic):
    set_program(families_may_book_series=False)
    with pytest.raises(ValidationError) as refused:
        booking.book_series(**family_args(clinic))
    assert "booked by your therapist" in refused.value.message
    assert count(Appointment) == 0


def test_a_family_books_four_weeks_at_the_therapists_wall_time_across_the_fall_back(clinic):
    series = booking.book_series(**family_args(clinic))
    starts = db.session.scalars(
        select(Appointment.starts_at)
        .where(Appointment.weekly_series_id == series.id)
        .order_by(Appointment.starts_at)
    ).all()
    assert [s.astimezone(NEW_YORK).hour for s in starts] == [10, 10, 10, 10]
    assert [s.astimezone(UTC).hour for s in starts] == [14, 15, 15, 15]
    assert (series.therapist_id, series.created_by_id) == (clinic.therapist.id, clinic.family.id)
    assert count(AuditEvent, AuditEvent.action == "booking.series_created") == 1


def test_each_week_sends_its_own_confirmation_naming_nothing_clinical(clinic):
    # Luis's consent lets him see and invite the other family members.
    booker = add_family(clinic.patient, "Luis Rivera", family_visible=True)
    booking.book_series(**family_args(clinic, actor=booker, attendee_ids=[clinic.family.id]))
    mails = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.kind == "booking_confirmed")
    ).all()
    assert sorted(m.to_user_id for m in mails) == sorted([clinic.family.id, booker.id] * 4)
    assert all(m.attachment_data for m in mails)
    for message in mails:
        whole = f"{message.subject}\n{message.text_body}\n{message.html_body}".lower()
        assert not [word for word in CLINICAL if word in whole], message.subject


def test_a_conflict_is_worded_for_the_family_and_nothing_is_booked(clinic):
    add_appointment(
        clinic.therapist,
        create_user(Role.PATIENT, therapist=clinic.therapist),
        create_user(Role.FAMILY),
        clinic.private,
        starts_at=FIRST + timedelta(weeks=2, hours=1),
        booked_at=NOW,
    )
    db.session.add(AvailabilityOverride(therapist_id=clinic.therapist.id, day=date(2026, 11, 17)))
    db.session.flush()
    with pytest.raises(booking.SeriesConflict) as refused:
        booking.book_series(**family_args(clinic))
    problems = [o.problem for o in refused.value.plan.occurrences]
    # Not whose session it is, nor that the therapist is off: only that they are not free.
    assert problems == [None, None] + ["Your therapist is not free then."] * 2
    assert count(AppointmentSeries) == 0
    assert count(Appointment) == 1


def test_a_consent_ending_before_week_three_is_listed_with_the_name(clinic):
    member = create_user(Role.FAMILY, name="Ana Rivera")
    create_consent(clinic.patient, member, expires_at=datetime(2026, 11, 5, tzinfo=UTC))
    plan = booking.plan_series(**family_args(clinic, actor=member))
    assert [o.problem is None for o in plan.occurrences] == [True, True, False, False]
    assert plan.occurrences[2].problem == "Ana Rivera's consent ends before this date."


def test_the_plan_lists_the_therapists_zone_then_the_familys(app_ctx):
    clinic = create_clinic(family_zone="America/Los_Angeles")
    set_program(families_may_book_series=True)
    plan = booking.plan_series(**family_args(clinic))
    assert plan.zones == ["America/New_York", "America/Los_Angeles"]


def test_the_first_week_past_the_horizon_is_worded_for_the_family(clinic):
    plan = booking.plan_series(
        **family_args(clinic, first_start=FIRST + timedelta(days=40), weeks=2)
    )
    assert plan.occurrences[0].problem == "That is further ahead than sessions can be booked."


def test_the_same_form_sent_twice_books_one_series(clinic):
    first = booking.book_series(**family_args(clinic, request_key="k" * 32))
    again = booking.book_series(**family_args(clinic, request_key="k" * 32))
    assert again.id == first.id
    assert count(AppointmentSeries) == 1


def test_a_family_member_of_another_patient_is_not_found(clinic):
    stranger = create_user(Role.FAMILY)
    with pytest.raises(NotFound):
        booking.plan_series(**family_args(clinic, actor=stranger))


def test_a_family_cancels_this_and_all_future_with_the_late_rule_per_week(clinic):
    series = booking.book_series(**family_args(clinic))
    seats = _booked_seats(series)
    # 12 hours before the second week: inside the 24-hour window, so that week is late.
    later = seats[1].appointment.starts_at - timedelta(hours=12)
    cancelled = booking.cancel_future(actor=clinic.family, seat_id=seats[1].id, now=later)
    assert [s.id for s in cancelled] == [s.id for s in seats[1:]]
    assert [s.status for s in seats] == ["booked", "late_cancelled", "cancelled", "cancelled"]
    assert count(OutboxEmail, OutboxEmail.kind == "booking_cancelled") == 3
    assert count(OutboxEmail, OutboxEmail.kind == "late_cancellation") == 1


@pytest.mark.parametrize("booked_by", ["therapist", "family before the setting went off"])
def test_a_family_cancels_the_later_weeks_while_the_setting_is_off(clinic, booked_by):
    """The setting decides who books a series, not who may cancel: a family may cancel any
    session it is coming to (a late one marked and the therapist told), week by week or
    all later weeks at once through the same rule, whoever booked them and whatever the
    setting says now (docs/booking.md, "Who books a series")."""
    if booked_by == "therapist":
        set_program(families_may_book_series=False)
        series = booking.book_series(
            **family_args(clinic, actor=clinic.therapist, attendee_ids=[clinic.family.id])
        )
    else:
        series = booking.book_series(**family_args(clinic))
        set_program(families_may_book_series=False)
    seats = _booked_seats(series)
    cancelled = booking.cancel_future(actor=clinic.family, seat_id=seats[2].id, now=NOW)
    assert [s.id for s in cancelled] == [seats[2].id, seats[3].id]
    assert [s.status for s in seats] == ["booked", "booked", "cancelled", "cancelled"]


def test_a_family_sees_what_cancel_all_future_would_cancel(clinic):
    seats = _booked_seats(booking.book_series(**family_args(clinic)))
    ahead = booking.future_seats_for(clinic.family, seats[2].id, now=NOW)
    assert [w.seat.id for w in ahead] == [seats[2].id, seats[3].id]
    assert [w.late for w in ahead] == [False, False]


def test_the_weeks_a_family_would_cancel_late_are_marked_by_the_service(clinic):
    """The cancellation window is the service's rule: the page only shows its answer."""
    seats = _booked_seats(booking.book_series(**family_args(clinic)))
    later = seats[1].appointment.starts_at - timedelta(hours=12)
    ahead = booking.future_seats_for(clinic.family, seats[1].id, now=later)
    assert [(w.seat.id, w.late) for w in ahead] == [
        (seats[1].id, True),
        (seats[2].id, False),
        (seats[3].id, False),
    ]
    # The therapist is never late.
    ahead = booking.future_seats_for(clinic.therapist, seats[1].id, now=later)
    assert [w.late for w in ahead] == [False, False, False]


def test_moving_all_future_stays_the_therapists(clinic):
    seats = _booked_seats(booking.book_series(**family_args(clinic)))
    with pytest.raises(NotFound):
        booking.plan_move(
            actor=clinic.family,
            seat_id=seats[0].id,
            starts_at=FIRST + timedelta(days=1),
            now=NOW,
        )
