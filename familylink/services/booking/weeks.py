"""Each week of a weekly series checked as a single booking would be: its UTC start worked
out from the wall time (`weekly_starts`), then the therapist's free time, notice, horizon,
bookings and time off, and each attendee's consent lasting to that week (`WeekChecker`),
with the therapist's availability, bookings and the consents read once for every week.
`series` plans, books and moves with it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from familylink.models import User
from familylink.services import access
from familylink.services.booking import slots
from familylink.services.errors import ValidationError
from familylink.services.program import get_program
from familylink.services.scheduling import local_to_utc

MIN_WEEKS, MAX_WEEKS = 2, 12


def weekly_starts(first: datetime, weeks: int, zone: str) -> list[tuple[date, datetime | None]]:
    """The local day and UTC start of each week from `first`, at `first`'s wall time in
    `zone`; None for a week whose wall time does not exist (the clocks skip it)."""
    local = first.astimezone(ZoneInfo(zone))
    starts = []
    for n in range(weeks):
        day = local.date() + timedelta(weeks=n)
        try:
            starts.append((day, local_to_utc(day, local.time(), zone)))
        except ValidationError:
            starts.append((day, None))
    return starts


def _closed(overrides, start: datetime, end: datetime, zone: str) -> bool:
    """True when the therapist's time off (a date override) covers any of [start, end)."""
    local_start, local_end = start.astimezone(ZoneInfo(zone)), end.astimezone(ZoneInfo(zone))
    for o in overrides:
        if not o.off or o.day not in (local_start.date(), local_end.date()):
            continue
        if o.start is None or o.end is None:
            return True
        off_start = datetime.combine(o.day, o.start, tzinfo=ZoneInfo(zone))
        off_end = datetime.combine(o.day, o.end, tzinfo=ZoneInfo(zone))
        if off_start < local_end and local_start < off_end:
            return True
    return False


def consent_ends(
    patient: User, people: list[User], *, now, opened: access.PatientAccess | None = None
) -> list[tuple[User, datetime | None]]:
    """When each family member's consent in force stops by the clock (None: no end yet;
    `now` when none is in force), read once for every week of a plan; the booking family
    member's is the one the gate read (`opened.consent`), not read again."""
    ends = []
    for person in people:
        if opened is not None and opened.consent is not None and opened.actor_id == person.id:
            consent = opened.consent
        else:
            consent = access.active_consent(person.id, patient.id, now=now)
        ends.append((person, access.in_force_until(consent, patient, now=now)))
    return ends


class WeekChecker:
    """The rules of one booking, applied to many times with the therapist's availability
    and bookings read once, in one statement (`slots.free_time`), when constructed: under
    the therapist's lock for the plan that decides. `ends`: each attendee's
    `consent_ends`, read by the caller. `family`: the reasons are worded for a family
    member (about their therapist), not for the therapist."""

    def __init__(self, patient, session_type, ends, *, now, exclude=(), strict=True, family=False):
        program = get_program()
        self.patient, self.now, self.strict = patient, now, strict
        self.family = family
        self.session_type = session_type
        self.zone = program.timezone
        self.length = timedelta(minutes=session_type.duration_minutes)
        self.notice = timedelta(hours=program.minimum_notice_hours)
        self.horizon = timedelta(days=program.booking_horizon_days)
        therapist_id = patient.therapist_id
        # The booking horizon bounds the first week only: a series exists to reach past it.
        reach = self.horizon + timedelta(weeks=MAX_WEEKS)
        find, self.overrides, booked = slots.free_time(
            therapist_id, session_type, now=now, horizon=reach
        )
        # Only a strict check asks whether a time is among the free ones.
        self.free = set(find()) if strict else set()
        moving = {(a.starts_at, a.ends_at) for a in exclude}
        self.busy = [(s, e) for s, e in booked if (s, e) not in moving]
        self.consent_ends = ends

    def problem(self, start: datetime | None, *, first: bool = False) -> str | None:
        if start is None:
            return _("That time does not exist that day: the clocks skip that hour.")
        end = start + self.length
        if start <= self.now:
            return _("That time has passed.")
        if any(s < end and start < e for s, e in self.busy):
            return self._unavailable(_("You already have a session then."))
        if _closed(self.overrides, start, end, self.zone):
            return self._unavailable(_("You are off that day."))
        if self.strict and first and start > self.now + self.horizon:
            if self.family:
                return _("That is further ahead than sessions can be booked.")
            return _("That is past the booking horizon.")
        if self.strict and start not in self.free:
            if start < self.now + self.notice:
                return _("That is too soon to book.")
            gap = slots.buffer()
            if any(s - gap < end and start < e + gap for s, e in self.busy):
                return self._unavailable(_("That is too close to another of your sessions."))
            return self._unavailable(_("That is outside your available hours."))
        # A family member whose consent (scheduling scope) ends before this week's session.
        for person, until in self.consent_ends:
            if not access.lasts_through(until, end):
                return _("%(name)s's consent ends before this date.", name=person.name)
        return None

    def _unavailable(self, therapist_reason: str) -> str:
        # A family is told the time is not free, never why (whose session, time off).
        return _("Your therapist is not free then.") if self.family else therapist_reason
