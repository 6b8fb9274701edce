"""Weekly series of private family sessions: N weeks at the same local wall time.

A series is planned first (`plan_series`, `plan_move`): every occurrence's UTC start, worked
out from the wall time in the zone it was chosen in (so 10:00 in New York stays 10:00 across
a daylight-saving change, and its UTC instant moves by the hour), each checked with the
rules of a single booking (`weeks.WeekChecker`), with what is wrong with it
(`Occurrence.problem`). Then it is booked or moved all or nothing (`book_series`,
`move_future`): under the therapist's lock (`slots.lock_therapist`) the plan that decides is
made, and if any occurrence has a problem nothing is written and `SeriesConflict` carries
that plan. Each occurrence is its own
appointment, written by `seats.place_private` (moved by `seats.reschedule`, cancelled by
`seats.therapist_cancel`), so each gets the audit row, the emails and the .ics of a single
session: one email per occurrence and person, because an outbox row carries one calendar
file (docs/booking.md, "Weekly series").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NotRequired, TypedDict, Unpack
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, selectinload

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AppointmentSeries,
    AppointmentStatus,
    Role,
    SeatStatus,
    SessionType,
    User,
)
from familylink.services import access, audit
from familylink.services.booking import catalog, changes, seats, slots
from familylink.services.booking.weeks import (
    MAX_WEEKS,
    MIN_WEEKS,
    WeekChecker,
    consent_ends,
    weekly_starts,
)
from familylink.services.errors import Conflict, NotFound, ValidationError
from familylink.services.program import get_program


@dataclass(frozen=True)
class Occurrence:
    """One week of a series: its start and end (UTC) and, when it cannot be booked, why.
    `seat` is the booked place a move would change (None in a new series)."""

    starts_at: datetime | None
    ends_at: datetime | None
    local_day: date
    problem: str | None = None
    seat: AppointmentFamily | None = None

    @property
    def unchanged(self) -> bool:
        """A week of a move already at its new time (moved there on its own): left as it
        is, neither moved again nor refused."""
        return self.seat is not None and self.starts_at == self.seat.appointment.starts_at

    def day_in(self, zone: str) -> date:
        """The day this week starts on in `zone` (a reader's own), else its local day."""
        if self.starts_at is None:
            return self.local_day
        return self.starts_at.astimezone(ZoneInfo(zone)).date()


@dataclass(frozen=True)
class SeriesPlan:
    patient: User
    session_type: SessionType
    people: list[User]
    zone: str
    occurrences: list[Occurrence] = field(default_factory=list)

    @property
    def conflicts(self) -> list[Occurrence]:
        return [o for o in self.occurrences if o.problem]

    @property
    def moves(self) -> list[Occurrence]:
        """The weeks a move changes: all but those already at their new time."""
        return [o for o in self.occurrences if not o.unchanged]

    @property
    def listed(self) -> list[Occurrence]:
        """Conflicts first (in date order), then the others: what a confirmation page shows."""
        return self.conflicts + [o for o in self.occurrences if not o.problem]

    def first_day(self, zone: str | None = None) -> date:
        """The first week's day, in `zone` (a reader's own) or else the series' own: its
        weekday names the series ("every Tuesday")."""
        first = self.occurrences[0]
        return first.day_in(zone) if zone else first.local_day

    @property
    def zones(self) -> list[str]:
        """The zones a confirmation page shows each time in: the chosen one, then each
        family member's own, once each."""
        found = [self.zone]
        for person in self.people:
            if person.timezone not in found:
                found.append(person.timezone)
        return found


class SeriesConflict(Conflict):
    """Some occurrence cannot be booked or moved; nothing was. `plan` lists each and why."""

    def __init__(self, plan: SeriesPlan):
        super().__init__(
            _("Nothing was booked or moved: %(count)d of the times can't be used.")
            % {"count": len(plan.conflicts)},
            field="weeks",
        )
        self.plan = plan


# --- A new series ------------------------------------------------------------------------------


def _check_weeks(weeks) -> int:
    if not isinstance(weeks, int) or not MIN_WEEKS <= weeks <= MAX_WEEKS:
        raise ValidationError(
            _("Choose between %(low)d and %(high)d weeks.", low=MIN_WEEKS, high=MAX_WEEKS),
            field="weeks",
        )
    return weeks


FAMILIES_MAY_NOT = _l(
    "Weekly sessions are booked by your therapist. Book one session here, or ask your "
    "therapist to set up the series."
)


class SeriesChoice(TypedDict):
    """What a new series is, as `plan_series` and `book_series` both take it (keywords):
    whose, what kind, the first week's start, how many weeks, and the family members
    invited (ids)."""

    patient_id: int
    session_type_id: int
    first_start: datetime
    weeks: int
    attendee_ids: NotRequired[Iterable[int]]


@dataclass(frozen=True)
class _Chosen:
    """A new series' choices with every refusal answered and each attendee's consent end
    read: all a plan needs but the therapist's time, which `plan` reads."""

    patient: User
    session_type: SessionType
    people: list[User]
    zone: str
    family: bool
    consent_ends: list[tuple[User, datetime | None]]
    first_start: datetime
    weeks: int

    def plan(self, *, now: datetime) -> SeriesPlan:
        checker = WeekChecker(
            self.patient, self.session_type, self.consent_ends, now=now, family=self.family
        )
        occurrences = [
            Occurrence(
                start,
                start + checker.length if start else None,
                day,
                checker.problem(start, first=n == 0),
            )
            for n, (day, start) in enumerate(weekly_starts(self.first_start, self.weeks, self.zone))
        ]
        return SeriesPlan(self.patient, self.session_type, self.people, self.zone, occurrences)


def _chosen(
    actor, *, patient_id, session_type_id, first_start, weeks, attendee_ids=(), now, opened
) -> _Chosen:
    if actor.role not in (Role.THERAPIST, Role.FAMILY):
        raise NotFound()
    opened = seats.open_for_booking(
        actor, patient_id, now=now, what="series booking", opened=opened
    )
    patient, family = opened.patient, actor.role == Role.FAMILY
    if family and not get_program().families_may_book_series:
        raise ValidationError(str(FAMILIES_MAY_NOT))
    if patient.therapist_id is None:
        raise ValidationError(_("There is no therapist to book with yet."))
    session_type = catalog.bookable_type(session_type_id, group=False)
    if first_start is None:
        raise ValidationError(_("Choose a time from the list."), field="slot")
    weeks = _check_weeks(weeks)
    invitable = seats.invitable_people(actor, opened, now=now)
    people = seats.invited_people(actor, patient, attendee_ids, now=now, invitable=invitable)
    zone = db.session.get(User, patient.therapist_id).timezone if family else actor.timezone
    ends = consent_ends(patient, people, now=now, opened=opened)
    return _Chosen(patient, session_type, people, zone, family, ends, first_start, weeks)


def plan_series(
    *,
    actor: User,
    now: datetime,
    opened: access.PatientAccess | None = None,
    **choice: Unpack[SeriesChoice],
) -> SeriesPlan:
    """Every week of a new series from `first_start`, each checked as a single booking would
    be (free time in the therapist's availability, notice and horizon, no overlap, not on
    time off) and against each family member's consent (scheduling scope, and not ending
    before that week's session). Writes nothing but the gate's audit rows. `opened`: the
    page's `seats.open_for_booking` answer, so the consent is read once per request.

    Who plans one: the patient's therapist (the wall time kept is in their zone), and, when
    the program lets families (`families_may_book_series`), a family member holding the
    scheduling scope (the wall time kept is the therapist's too: the session happens on
    the therapist's clock, and the family's zone may change its clocks on other days).

    Raises NotFound (not the actor's patient, or neither a therapist nor a family member),
    ValidationError (weeks out of range, bad type, family members not allowed, or, for
    the whole form, a family while the program does not let families book a series)."""
    return _chosen(actor, now=now, opened=opened, **choice).plan(now=now)


def _booked_before(request_key: str | None, actor: User) -> AppointmentSeries | None:
    """The series this request key booked already (a form sent twice), if any."""
    seat = seats.booked_with_key(request_key, actor)
    return seat.appointment.weekly_series if seat is not None else None


def book_series(
    *,
    actor: User,
    note: str | None = None,
    request_key: str | None = None,
    now: datetime,
    opened: access.PatientAccess | None = None,
    **choice: Unpack[SeriesChoice],
) -> AppointmentSeries:
    """Book every week of the plan, or nothing: planned under the therapist's lock, and
    SeriesConflict (with that plan) if any week has a problem. Each week is booked as
    a single session (`seats.place_private`: audit row, emails, .ics); one audit row
    `booking.series_created` ties them. A repeated `request_key` (kept on the first week's
    seat) returns the series it booked the first time. `opened` as for `plan_series`.
    Raises as `plan_series`, and SeriesConflict."""
    if (done := _booked_before(request_key, actor)) is not None:
        return done
    # Refusals (404, bad input) before the lock, as `seats.book_private` does; then each
    # attendee's consent held against a revocation (`seats.hold_attendees`), before the
    # therapist's lock as on every booking path.
    chosen = _chosen(actor, now=now, opened=opened, **choice)
    seats.hold_attendees(actor, chosen.patient, chosen.people, now=now)
    slots.lock_therapist(chosen.patient.therapist_id)
    # Under the lock: the same form sent twice at once finds the first one's series here.
    if (done := _booked_before(request_key, actor)) is not None:
        return done
    plan = chosen.plan(now=now)  # the therapist's hours and bookings as the lock holds them
    if plan.conflicts:
        raise SeriesConflict(plan)
    local = chosen.first_start.astimezone(ZoneInfo(plan.zone))
    series = AppointmentSeries(
        therapist_id=plan.patient.therapist_id,
        patient_id=plan.patient.id,
        session_type_id=plan.session_type.id,
        first_day=local.date(),
        weekday=local.weekday(),
        local_time=local.time().replace(tzinfo=None),
        zone=plan.zone,
        count=len(plan.occurrences),
        created_at=now,
        created_by_id=actor.id,
    )
    db.session.add(series)
    for n, occurrence in enumerate(plan.occurrences):
        seats.place_private(
            plan.patient,
            plan.session_type,
            plan.people,
            occurrence.starts_at,
            actor=actor,
            note=note,
            now=now,
            request_key=request_key if n == 0 else None,
            weekly_series=series,
        )
    audit.record(
        "booking.series_created",
        actor=actor,
        patient_id=plan.patient.id,
        obj=series,
        detail={"weeks": series.count},
        now=now,
    )
    return series


# --- This and all future -----------------------------------------------------------------------


def future_seats(seat: AppointmentFamily, *, now: datetime) -> list[AppointmentFamily]:
    """The booked places of the seat's series from its week on, still ahead (by start),
    each with its session and its people (one statement each, however many weeks)."""
    appointment = seat.appointment
    if appointment.weekly_series_id is None:
        return []
    return list(
        db.session.scalars(
            select(AppointmentFamily)
            .join(AppointmentFamily.appointment)
            .options(
                contains_eager(AppointmentFamily.appointment),
                selectinload(AppointmentFamily.attendees),
            )
            .where(
                Appointment.weekly_series_id == appointment.weekly_series_id,
                Appointment.status == AppointmentStatus.SCHEDULED,
                Appointment.starts_at >= appointment.starts_at,
                Appointment.starts_at > now,
                AppointmentFamily.status == SeatStatus.BOOKED,
            )
            .order_by(Appointment.starts_at)
        )
    )


def _series_seat(actor: User, seat_id: int, *, now: datetime, what: str | None, roles):
    """A seat in a weekly series that `actor` (of one of `roles`) may act on, with its
    future places (for a family member, those they are coming to); NotFound for anyone
    else's, ValidationError when it is in no series or nothing is ahead."""
    if actor.role not in roles:
        raise NotFound()
    seat = access.seat(actor, seat_id, now=now, what=what)
    ahead = future_seats(seat, now=now)
    if actor.role == Role.FAMILY:
        ahead = [s for s in ahead if any(a.user_id == actor.id for a in s.present_attendees)]
    if not ahead or ahead[0].id != seat.id:
        raise ValidationError(_("This session is not part of a series still ahead."))
    return seat, ahead


def future_seats_for(actor: User, seat_id: int, *, now: datetime) -> list[changes.Cancellation]:
    """What "cancel this and all future" would cancel for `actor`, each week marked when it
    would count as a late cancellation (the cancel page lists them). Raises as
    `cancel_future`."""
    ahead = _series_seat(actor, seat_id, now=now, what="series", roles=_CANCELLERS)[1]
    return [changes.Cancellation.of(actor, s, now) for s in ahead]


_CANCELLERS = (Role.THERAPIST, Role.FAMILY)


def cancel_future(
    *, actor: User, seat_id: int, reason: str | None = None, now: datetime
) -> list[AppointmentFamily]:
    """Cancel this week of the seat's series and every later one still booked (earlier
    weeks stay as they are), each as a single cancel: the therapist's (`therapist_cancel`,
    with its reason) or a family member's (`cancel_seat`: a week inside the cancellation
    window is late-cancelled and the therapist told, as for one session). Each has its
    audit row and its email with METHOD:CANCEL. Raises as those, and ValidationError (not
    in a series)."""
    _seat, ahead = _series_seat(actor, seat_id, now=now, what=None, roles=_CANCELLERS)
    if actor.role == Role.FAMILY:
        return [seats.cancel_seat(actor=actor, seat_id=s.id, now=now) for s in ahead]
    return [
        seats.therapist_cancel(actor=actor, seat_id=s.id, reason=reason, now=now) for s in ahead
    ]


def plan_move(*, actor: User, seat_id: int, starts_at: datetime | None, now: datetime):
    """Where each future week of the seat's series would go if this week moved to
    `starts_at`: each later week of the series keeps its own week (its distance from this
    one in weeks of the series, `_week_offsets`, whatever day it was moved to on its own;
    a week cancelled between them stays a gap) and takes the new weekday and wall time;
    an earlier week moved on its own past this one is left where it is. A week already at
    its new time (moved there on its own) is `unchanged`. Each is checked as the
    therapist's own move is (not past, no overlap with their other sessions or another week
    of the move, not on their time off) and against the family's consents. Raises
    NotFound, ValidationError (no time, not in a series)."""
    # Moving every later week stays the therapist's: a family moves one week at a time.
    seat, ahead = _series_seat(actor, seat_id, now=now, what="series move", roles=(Role.THERAPIST,))
    if starts_at is None:
        raise ValidationError(_("Choose a time from the list."), field="slot")
    zone = seat.appointment.weekly_series.zone
    ahead, offsets = _week_offsets(ahead)
    people = [a.user for a in seat.present_attendees]
    checker = WeekChecker(
        seat.patient,
        seat.appointment.session_type,
        consent_ends(seat.patient, people, now=now),
        now=now,
        exclude=[s.appointment for s in ahead],
        strict=False,
    )
    targets = weekly_starts(starts_at, max(offsets) + 1, zone)
    occurrences: list[Occurrence] = []
    for old, offset in zip(ahead, offsets, strict=True):
        day, start = targets[offset]
        end = start + checker.length if start else None
        problem = checker.problem(start)
        if problem is None and any(
            o.starts_at < end and start < o.ends_at for o in occurrences if o.starts_at
        ):
            problem = _("You already have a session then.")  # two weeks brought together
        occurrences.append(Occurrence(start, end, day, problem, old))
    return SeriesPlan(seat.patient, seat.appointment.session_type, people, zone, occurrences)


def _week_offsets(
    ahead: list[AppointmentFamily],
) -> tuple[list[AppointmentFamily], list[int]]:
    """The weeks of `ahead` (its first: the week moved from) that are this or a later week
    of their series, and how many weeks of the series after the first each one is.

    A week's number in its series is its place among the series' appointments in the order
    they were written (by id: `book_series` writes them week by week, and a move or a
    cancellation keeps the row), never its date: a week moved on its own, by a few days or
    past its neighbour, is still its own week, and a cancelled week stays a gap. (Not by
    its local day: one moved four days or more would round to its neighbour's week.) A
    week of an earlier number moved on its own past the first is left out. One query."""
    first = ahead[0].appointment
    ids = db.session.scalars(
        select(Appointment.id)
        .where(Appointment.weekly_series_id == first.weekly_series_id)
        .order_by(Appointment.id)
    )
    number = {appointment_id: n for n, appointment_id in enumerate(ids)}
    later = [s for s in ahead if number[s.appointment_id] >= number[first.id]]
    return later, [number[s.appointment_id] - number[first.id] for s in later]


def _in_move_order(moves: list[Occurrence]) -> list[Occurrence]:
    """The moves in an order where none lands on a week not yet moved from there (moving
    later: the later weeks first; earlier: the earlier first), whichever way each goes."""
    pending, ordered = list(moves), []
    while pending:
        free = next(
            (
                o
                for o in pending
                if not any(
                    other is not o
                    and other.seat.appointment.starts_at < o.ends_at
                    and o.starts_at < other.seat.appointment.ends_at
                    for other in pending
                )
            ),
            pending[0],
        )
        pending.remove(free)
        ordered.append(free)
    return ordered


def move_future(
    *, actor: User, seat_id: int, starts_at: datetime | None, now: datetime
) -> list[AppointmentFamily]:
    """Move this week and every later one of the series to the new weekly time, or none:
    planned again under the therapist's lock; SeriesConflict if any week has a problem.
    Each week moves as a single session does (`seats.reschedule`: same UID, higher
    SEQUENCE, audit row, emails), later weeks first when moving later, so no week runs
    into one not yet moved; a week already at its new time is left as it is (ValidationError
    when every week is). Returns the weeks moved."""
    plan_move(actor=actor, seat_id=seat_id, starts_at=starts_at, now=now)
    slots.lock_therapist(actor.id)
    plan = plan_move(actor=actor, seat_id=seat_id, starts_at=starts_at, now=now)
    if plan.conflicts:
        raise SeriesConflict(plan)
    if not plan.moves:  # every week is at its new time already
        raise ValidationError(
            _("The session is already at that time. Choose another time."), field="slot"
        )
    moved = [
        seats.reschedule(actor=actor, seat_id=o.seat.id, starts_at=o.starts_at, now=now)
        for o in _in_move_order(plan.moves)
    ]
    series = plan.occurrences[0].seat.appointment.weekly_series
    local = starts_at.astimezone(ZoneInfo(series.zone))
    audit.record(
        "booking.series_moved",
        actor=actor,
        patient_id=plan.patient.id,
        obj=series,
        detail={"weeks": len(moved), "weekday": local.weekday(), "time": local.strftime("%H:%M")},
        now=now,
    )
    return sorted(moved, key=lambda s: s.appointment.starts_at)
