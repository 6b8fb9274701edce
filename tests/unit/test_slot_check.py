"""A booking's check of its one time (`check_slot`) accepts exactly the times the slot
list (`slots_for`) offers, around a busy schedule: the two must never disagree, or a family
would be refused a time the page showed, or get one it never showed."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from familylink.extensions import db
from familylink.models import AvailabilityOverride
from familylink.services import booking
from familylink.services.booking import seats
from familylink.services.errors import Conflict, ValidationError
from familylink.services.program import get_program, program_row
from tests.booking_setup import create_clinic, family_seat

NEW_YORK = ZoneInfo("America/New_York")
# 13:30 in New York on a Thursday: with a day's notice the first free time is the next
# day's 14:00 (not 13:00), and the 28-day horizon ends at 12:30 EST on 2026-11-26, so 11:00
# fits and 12:00 does not. Clocks fall back on Sunday 2026-11-01.
NOW = datetime(2026, 10, 29, 17, 30, tzinfo=UTC)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK).astimezone(UTC)


def override(clinic, day, *, off, start=None, end=None):
    db.session.add(
        AvailabilityOverride(
            therapist_id=clinic.therapist.id, day=day, off=off, start_time=start, end_time=end
        )
    )


@pytest.fixture
def busy_clinic(app_ctx):
    """Windows 9-17 every day, 50-minute sessions every hour (a 10-minute buffer), and
    around them: bookings on and off the hour, time off, extra hours off the hour's grid,
    extra hours across the repeated hour of the fall-back night (a booking after it takes
    the second 01:30 away, not the first), a day off."""
    row = program_row()
    row.minimum_notice_hours, row.booking_horizon_days, row.buffer_minutes = 24, 28, 10
    clinic = create_clinic()
    oct31, nov1, nov2 = date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)
    override(clinic, nov1, off=False, start=time(0, 30), end=time(3))  # 01:xx happens twice
    override(clinic, nov2, off=True, start=time(12), end=time(13, 30))
    override(clinic, nov2, off=False, start=time(17, 30), end=time(19))
    override(clinic, date(2026, 11, 3), off=True)
    override(clinic, date(2026, 11, 4), off=False, start=time(9, 30), end=time(11))
    db.session.flush()
    for starts_at in (local(oct31, 10), local(oct31, 12, 55), local(nov1, 2, 20)):
        family_seat(clinic, starts_at, booked_at=NOW)
    db.session.commit()
    assert get_program().minimum_notice_hours == 24
    return clinic


def sweep(day: date, first_hour=0, last_hour=24):
    """Every five minutes of that local day (between those hours), as UTC instants: on the
    hour's grid, off it, and each buffer's and window's edge."""
    start, end = local(day, first_hour), local(day, 0) + timedelta(hours=last_hour + 1)
    instants, at = [], start
    while at < end:
        instants.append(at)
        at += timedelta(minutes=5)
    return instants


CASES = {
    "today, all past or inside the notice": date(2026, 10, 29),
    "the notice's edge": date(2026, 10, 30),
    "bookings on the hour and off it, with buffers": date(2026, 10, 31),
    "fall-back night's extra hours and the day's windows": date(2026, 11, 1),
    "time off inside a window and extra hours after it": date(2026, 11, 2),
    "a day off": date(2026, 11, 3),
    "extra hours on another grid inside the window": date(2026, 11, 4),
    "the horizon's edge": date(2026, 11, 26),
    "past the horizon": date(2026, 11, 27),
}


def accepts(clinic, starts_at) -> bool:
    try:
        seats.check_slot(clinic.therapist.id, clinic.private, starts_at, now=NOW)
    except (ValidationError, Conflict) as refused:
        assert refused.field == "slot"
        return False
    return True


@pytest.mark.parametrize("day", CASES.values(), ids=CASES.keys())
def test_check_slot_accepts_exactly_the_offered_times(busy_clinic, day):
    offered = set(booking.slots_for(busy_clinic.therapist.id, busy_clinic.private, now=NOW))
    candidates = sweep(day)
    accepted = {at for at in candidates if accepts(busy_clinic, at)}
    assert accepted == offered.intersection(candidates)
    # The sweep reaches what each case is about, not only empty days.
    if day not in (date(2026, 10, 29), date(2026, 11, 3), date(2026, 11, 27)):
        assert accepted
