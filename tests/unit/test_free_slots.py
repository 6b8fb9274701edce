"""free_slots is pure: Hypothesis checks its promises on random availability and bookings."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from familylink.services.errors import ValidationError
from familylink.services.scheduling import (
    Override,
    Window,
    free_slots,
    local_to_utc,
    weekly_occurrences,
)
from tests.moments import BEFORE_FALL_BACK, BEFORE_SPRING_FORWARD, NOON

ZONE = "America/New_York"
TZ = ZoneInfo(ZONE)

times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
windows = st.builds(
    lambda d, a, b: Window(d, min(a, b), max(a, b)), st.integers(0, 6), times, times
)
nows = st.sampled_from([NOON, BEFORE_SPRING_FORWARD, BEFORE_FALL_BACK]).flatmap(
    lambda base: st.builds(lambda m: base + timedelta(minutes=m), st.integers(0, 60 * 24 * 3))
)


@st.composite
def scenarios(draw):
    now = draw(nows)
    days = [now.astimezone(TZ).date() + timedelta(days=n) for n in range(10)]
    overrides = draw(
        st.lists(
            st.builds(
                lambda d, off, a, b, allday: Override(
                    d,
                    off,
                    None if allday and off else min(a, b),
                    None if allday and off else max(a, b),
                ),
                st.sampled_from(days),
                st.booleans(),
                times,
                times,
                st.booleans(),
            ),
            max_size=4,
        )
    )
    booked = [
        (now + timedelta(minutes=m), now + timedelta(minutes=m + length))
        for m, length in draw(
            st.lists(st.tuples(st.integers(0, 60 * 24 * 9), st.integers(15, 180)), max_size=6)
        )
    ]
    return {
        "windows": draw(st.lists(windows, min_size=1, max_size=6)),
        "overrides": overrides,
        "booked": booked,
        "duration": timedelta(minutes=draw(st.sampled_from([30, 50, 90]))),
        "buffer": timedelta(minutes=draw(st.sampled_from([0, 10, 15]))),
        "min_notice": timedelta(hours=draw(st.integers(0, 48))),
        "horizon": timedelta(days=draw(st.integers(1, 8))),
        "now": now,
        "zone": ZONE,
    }


def _span(day, start, end):
    """A local wall-clock span as real instants. In a repeated hour (DST ends) it starts at
    the first occurrence of its start and ends at the last occurrence of its end."""
    first = datetime.combine(day, start, tzinfo=TZ).replace(fold=0).astimezone(UTC)
    last = datetime.combine(day, end, tzinfo=TZ).replace(fold=1).astimezone(UTC)
    return first, last


def _allowed_spans(day, s):
    todays = [o for o in s["overrides"] if o.day == day]
    if any(o.off and o.start is None for o in todays):
        return [], []
    spans = [(w.start, w.end) for w in s["windows"] if w.weekday == day.weekday()]
    spans += [(o.start, o.end) for o in todays if not o.off]
    offs = [(o.start, o.end) for o in todays if o.off]
    return spans, offs


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_no_slot_overlaps_a_booking_or_its_buffer(s):
    for slot in free_slots(**s):
        end = slot + s["duration"]
        for b_start, b_end in s["booked"]:
            assert end + s["buffer"] <= b_start or slot >= b_end + s["buffer"]


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_every_slot_lies_inside_a_window_and_outside_time_off(s):
    for slot in free_slots(**s):
        end = slot + s["duration"]
        spans, offs = _allowed_spans(slot.astimezone(TZ).date(), s)
        day = slot.astimezone(TZ).date()
        assert any(_span(day, a, b)[0] <= slot and end <= _span(day, a, b)[1] for a, b in spans)
        for a, b in offs:
            off_start, off_end = _span(day, a, b)
            assert end <= off_start or slot >= off_end


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_nothing_inside_minimum_notice_or_past_the_horizon(s):
    slots = free_slots(**s)
    assert slots == sorted(set(slots))
    for slot in slots:
        assert slot >= s["now"] + s["min_notice"]
        assert slot > s["now"]  # a time that has started, even with no notice asked
        assert slot + s["duration"] <= s["now"] + s["horizon"]


def test_a_time_starting_now_is_not_free_when_no_notice_is_asked():
    monday_9am = datetime(2026, 11, 16, 14, tzinfo=UTC)
    slots = free_slots(
        [Window(0, time(9), time(12))],
        [],
        [],
        duration=timedelta(minutes=50),
        buffer=timedelta(minutes=10),
        min_notice=timedelta(0),
        horizon=timedelta(days=2),
        now=monday_9am,
        zone=ZONE,
    )
    assert [s.astimezone(TZ).strftime("%H:%M") for s in slots] == ["10:00", "11:00"]


def _monday_slots(opens, closes, booked, *, minutes, buffer_minutes):
    """Local start times of the slots of Monday 2026-11-16, asked for on the Sunday before."""
    slots = free_slots(
        [Window(0, opens, closes)],
        [],
        booked,
        duration=timedelta(minutes=minutes),
        buffer=timedelta(minutes=buffer_minutes),
        min_notice=timedelta(hours=12),
        horizon=timedelta(days=2),
        now=datetime(2026, 11, 15, 12, tzinfo=UTC),
        zone=ZONE,
    )
    return [s.astimezone(TZ).strftime("%a %H:%M") for s in slots]


def test_a_free_day_offers_the_window_stepped_by_duration_and_buffer():
    slots = _monday_slots(time(9), time(12), [], minutes=50, buffer_minutes=10)
    assert slots == ["Mon 09:00", "Mon 10:00", "Mon 11:00"]


def test_a_long_booking_blocks_slots_after_a_short_one_inside_it():
    """Bookings may overlap (a group and a private session, say): the long one still blocks
    the hours after the short one that starts inside it ends."""

    def monday_at(hour, minute=0):
        return datetime(2026, 11, 16, hour, minute, tzinfo=TZ)

    booked = [(monday_at(10), monday_at(14)), (monday_at(10, 30), monday_at(11))]
    slots = _monday_slots(time(9), time(17), booked, minutes=60, buffer_minutes=0)
    assert slots == ["Mon 09:00", "Mon 14:00", "Mon 15:00", "Mon 16:00"]


@pytest.mark.parametrize(
    ("day", "expected_utc_hour"),
    [
        (date(2026, 3, 6), 22),
        (date(2026, 3, 9), 21),
        (date(2026, 10, 30), 21),
        (date(2026, 11, 2), 22),
    ],
)
def test_a_5pm_window_stays_5pm_local_across_dst(day, expected_utc_hour):
    window = Window(day.weekday(), time(17), time(18))
    now = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=1)
    slots = free_slots(
        [window],
        [],
        [],
        duration=timedelta(minutes=60),
        buffer=timedelta(0),
        min_notice=timedelta(0),
        horizon=timedelta(days=3),
        now=now,
        zone=ZONE,
    )
    assert [s.hour for s in slots] == [expected_utc_hour]


def test_weekly_series_keeps_local_wall_time_across_spring_forward():
    starts = weekly_occurrences(date(2026, 3, 4), time(17), 3, ZONE)
    assert [s.astimezone(TZ).strftime("%H:%M") for s in starts] == ["17:00"] * 3
    assert [s.hour for s in starts] == [22, 21, 21]


def test_a_time_in_the_spring_forward_gap_is_refused_clearly():
    with pytest.raises(ValidationError, match="does not exist"):
        local_to_utc(date(2026, 3, 8), time(2, 30), ZONE)
    with pytest.raises(ValidationError, match="skip"):
        weekly_occurrences(date(2026, 3, 1), time(2, 30), 2, ZONE)


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_bookings_take_away_exactly_the_slots_they_clash_with(s):
    """Completeness, beside the soundness above: with bookings (overlapping ones included),
    the slots are those of the free calendar that clash with no booking, and no fewer."""
    open_calendar = free_slots(**{**s, "booked": []})
    expected = [
        slot
        for slot in open_calendar
        if all(
            slot + s["duration"] + s["buffer"] <= b_start or slot >= b_end + s["buffer"]
            for b_start, b_end in s["booked"]
        )
    ]
    assert free_slots(**s) == expected


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_checking_one_instant_near_itself_agrees_with_the_full_list(s):
    """Booking checks only the days around the chosen time (`near`); that must answer
    exactly as the whole horizon's list does, for offered times and for others."""
    full = free_slots(**s)
    offered = set(full)
    instants = full[::3] + [slot + timedelta(minutes=15) for slot in full[::5]]
    instants += [b_start for b_start, _ in s["booked"]]
    for instant in instants:
        nearby = free_slots(**s, near=instant)
        assert set(nearby) <= offered
        assert (instant in nearby) == (instant in offered)


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.integers(0, 9), st.integers(0, 3))
def test_the_slots_of_some_days_are_the_full_lists_slots_on_those_days(s, first, length):
    """The week picker computes only the days it shows (`days`); those must be exactly the
    whole horizon's slots that fall on those local days."""
    start = s["now"].astimezone(TZ).date() + timedelta(days=first - 1)
    last = start + timedelta(days=length)
    expected = [x for x in free_slots(**s) if start <= x.astimezone(TZ).date() <= last]
    assert free_slots(**s, days=(start, last)) == expected
