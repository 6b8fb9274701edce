"""The program overview's counts: a fixed handful of GROUP BY queries, whatever the size.

Each query buckets its rows into the months of the period with one CASE over the months'
bounds (computed in the program's time zone, so a month starts at local midnight on both
databases) and, where the admin's page splits by therapist, by therapist too. Nothing about
a person leaves the database: only counts per (month, therapist), and for the median the
number of days from each episode's start to its first family session.

What each count means (docs/overview.md says the same for readers):
- enrolled: episodes of care started in the month (enrolments and readmissions);
  with_family_14d: of those, the ones with a consent to a family member signed in that
  episode within 14 days of its start; days_to_first_session: days from the start of such
  an episode to its first attended family session.
- sessions are counted in the month they take place: booked (family places booked, late
  cancellations included), attended, no_show, late_cancelled; group_seats / group_places of
  multi-family groups; waitlist offers made, claimed and expired for those sessions.
- readings assigned in the month, and of those the ones opened and completed.
- reminders to family members for sessions of the month: sent, failed; sessions whose
  family reminders were all sent (of those with any sent or failed).
- consents signed; ended by revocation, by expiry (the sweep) or at discharge.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal_column, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Float, String

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AppointmentStatus,
    Assignment,
    Attendance,
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    Episode,
    ModuleProgress,
    OutboxEmail,
    OutboxStatus,
    Scope,
    SeatStatus,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from familylink.services.overview.suppression import Nest
from familylink.services.reminders import KIND as REMINDER_KIND

FAMILY_WITHIN_DAYS = 14
#: Patients whose record names no therapist are one row of the admin's table.
NO_THERAPIST = 0

#: Measures that count some of another's records, each as the kinds of record it counts
#: (the queries below are what makes these true): a difference of two of them is a count
#: of people too, so the small-cell rule applies to it (`suppression.Nest`).
NESTS = [
    Nest({"enrolled": frozenset("wn"), "with_family_14d": frozenset("w")}),
    # Family places: attended, no-show or not marked (each in a group or not), late-cancelled.
    Nest(
        {
            "booked": frozenset(("ap", "ag", "np", "ng", "up", "ug", "late")),
            "attended": frozenset(("ap", "ag")),
            "no_show": frozenset(("np", "ng")),
            "late_cancelled": frozenset(("late",)),
            "group_seats": frozenset(("ag", "ng", "ug")),
        }
    ),
    Nest(
        {
            "offers_made": frozenset(("claimed", "expired", "open")),
            "offers_claimed": frozenset(("claimed",)),
            "offers_expired": frozenset(("expired",)),
        }
    ),
    # Readings: not opened, opened only, completed.
    Nest(
        {
            "readings_assigned": frozenset("noc"),
            "readings_opened": frozenset("oc"),
            "readings_completed": frozenset("c"),
        }
    ),
    Nest({"sessions_reminded": frozenset("af"), "sessions_all_reminders": frozenset("a")}),
]


@dataclass(frozen=True)
class Month:
    """One month of the period, clipped to it: [starts, ends) as UTC instants."""

    label: str  # 2026-03: the same in every language, and sorts
    starts: datetime
    ends: datetime


def add_months(day: date, count: int) -> date:
    """The first day of the month `count` months after `day`'s month (before it if negative)."""
    number = day.year * 12 + day.month - 1 + count
    return date(number // 12, number % 12 + 1, 1)


def months_of(first: date, last: date, zone: str) -> list[Month]:
    """The calendar months from `first` to `last` (inclusive), each clipped to the period."""
    tz = ZoneInfo(zone)

    def instant(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), tzinfo=tz).astimezone(UTC)

    months, day, end = [], first, last + timedelta(days=1)
    while day < end:
        next_month = add_months(day, 1)
        months.append(Month(f"{day:%Y-%m}", instant(day), instant(min(next_month, end))))
        day = next_month
    return months


class _KeyPrefix(FunctionElement):
    """A reminder's dedupe key up to its first "-": "reminder:<appointment id>"."""

    type = String()
    inherit_cache = True


@compiles(_KeyPrefix)
def _key_prefix_postgresql(element, compiler, **kw):
    return f"split_part({compiler.process(element.clauses, **kw)}, '-', 1)"


@compiles(_KeyPrefix, "sqlite")
def _key_prefix_sqlite(element, compiler, **kw):
    column = compiler.process(element.clauses, **kw)
    return f"substr({column}, 1, instr({column}, '-') - 1)"


class _PlusDays(FunctionElement):
    """A timestamp column plus a fixed number of days (a literal, never user input)."""

    inherit_cache = True


@compiles(_PlusDays)
def _plus_days_postgresql(element, compiler, **kw):
    column, days = list(element.clauses)
    return f"({compiler.process(column, **kw)} + interval '{int(days.value)} days')"


@compiles(_PlusDays, "sqlite")
def _plus_days_sqlite(element, compiler, **kw):
    column, days = list(element.clauses)
    # SQLite keeps naive timestamps as text; this gives the same text form back.
    shifted = f"{compiler.process(column, **kw)}, '+{int(days.value)} days'"
    return f"strftime('%Y-%m-%d %H:%M:%f', {shifted})"


class _DaysBetween(FunctionElement):
    """Days (with fraction) from the first timestamp to the second."""

    type = Float()
    inherit_cache = True


@compiles(_DaysBetween)
def _days_between_postgresql(element, compiler, **kw):
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(extract(epoch from ({end} - {start})) / 86400.0)"


@compiles(_DaysBetween, "sqlite")
def _days_between_sqlite(element, compiler, **kw):
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(julianday({end}) - julianday({start}))"


def _month(column, months: list[Month]):
    """The index of the month `column` falls in (the query keeps only the period)."""
    # Grouped by its label: PostgreSQL would not match the CASE in GROUP BY with the one in
    # the select list (their bound month limits are separate parameters).
    return case(*((column < month.ends, index) for index, month in enumerate(months))).label(
        "month"
    )


def _in_period(column, months: list[Month]):
    return and_(column >= months[0].starts, column < months[-1].ends)


def _count_if(condition):
    return func.count(case((condition, 1)))


@dataclass
class Counts:
    """What the queries found: `cells[measure][(month index, therapist id)]` and, for the
    median, the days of each episode (per month index)."""

    cells: dict[str, dict[tuple[int, int], int]]
    days_to_first_session: dict[int, list[float]]

    def add(self, measure: str, month: int, therapist: int | None, value) -> None:
        key = (month, therapist or NO_THERAPIST)
        self.cells[measure][key] = self.cells[measure].get(key, 0) + int(value or 0)

    def add_rows(self, measures: tuple[str, ...], rows, *, per_therapist: bool = False) -> None:
        """The rows of a GROUP BY query: the month index, the therapist id when
        `per_therapist`, then one value per measure, in the order of `measures`."""
        for index, *values in rows:
            therapist = values.pop(0) if per_therapist else None
            for measure, value in zip(measures, values, strict=True):
                self.add(measure, index, therapist, value)


def count_everything(months: list[Month]) -> Counts:
    """Every count of the overview for these months: a fixed number of queries."""
    counts = Counts(defaultdict(dict), defaultdict(list))
    _tune_for_counting()
    _episodes(counts, months)
    _first_sessions(counts, months)
    _sessions(counts, months)
    _group_places(counts, months)
    _waitlist(counts, months)
    _readings(counts, months)
    _reminders(counts, months)
    _consents(counts, months)
    return counts


def _tune_for_counting() -> None:
    """On PostgreSQL, for the rest of this transaction: no JIT compilation and room to
    group in memory. The family-sessions query joins a year of places (a million rows at
    bench/scale.py's size); its cost estimate makes PostgreSQL compile it to machine code
    (about 0.4 s, more than it saves) and, within the default 4 MB, sort and hash on disk.
    SET LOCAL: nothing outlives the request's transaction."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            select(
                func.set_config("jit", "off", True),
                func.set_config("work_mem", "64MB", True),
            )
        )


def _episodes(counts: Counts, months: list[Month]) -> None:
    with_family = (
        select(ConsentRecord.id)
        .where(
            ConsentRecord.episode_id == Episode.id,
            ConsentRecord.signed_at < _PlusDays(Episode.started_on, FAMILY_WITHIN_DAYS),
        )
        .exists()
    )
    month = _month(Episode.started_on, months)
    rows = db.session.execute(
        select(month, User.therapist_id, func.count(Episode.id), _count_if(with_family))
        .join(User, User.id == Episode.patient_id)
        .where(_in_period(Episode.started_on, months))
        .group_by("month", User.therapist_id)
    )
    counts.add_rows(("enrolled", "with_family_14d"), rows, per_therapist=True)


def _first_sessions(counts: Counts, months: list[Month]) -> None:
    """Days from each episode's start (in the period) to its first attended family session:
    a place still booked, marked attended (as `_sessions` counts attended)."""
    first = func.min(Appointment.starts_at)
    month = _month(Episode.started_on, months)
    rows = db.session.execute(
        select(month, _DaysBetween(Episode.started_on, first))
        .join(AppointmentFamily, AppointmentFamily.patient_id == Episode.patient_id)
        .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
        .where(
            _in_period(Episode.started_on, months),
            AppointmentFamily.status == SeatStatus.BOOKED,
            AppointmentFamily.attendance == Attendance.ATTENDED,
            Appointment.starts_at >= Episode.started_on,
            or_(Episode.ended_on.is_(None), Appointment.starts_at < Episode.ended_on),
        )
        .group_by(Episode.id, Episode.started_on)
    )
    for index, days in rows:
        counts.days_to_first_session[index].append(float(days))


def _sessions(counts: Counts, months: list[Month]) -> None:
    month = _month(Appointment.starts_at, months)
    seat = AppointmentFamily.status
    booked = seat == SeatStatus.BOOKED
    rows = db.session.execute(
        select(
            month,
            Appointment.therapist_id,
            _count_if(seat.in_((SeatStatus.BOOKED, SeatStatus.LATE_CANCELLED))),
            _count_if(and_(booked, AppointmentFamily.attendance == Attendance.ATTENDED)),
            _count_if(and_(booked, AppointmentFamily.attendance == Attendance.NO_SHOW)),
            _count_if(seat == SeatStatus.LATE_CANCELLED),
            _count_if(and_(booked, Appointment.capacity > 1)),
        )
        .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
        .where(
            _in_period(Appointment.starts_at, months),
            Appointment.status == AppointmentStatus.SCHEDULED,
            # Every measure counts only these (a cancelled place counts nowhere).
            seat.in_((SeatStatus.BOOKED, SeatStatus.LATE_CANCELLED)),
        )
        .group_by("month", Appointment.therapist_id)
    )
    counts.add_rows(
        ("booked", "attended", "no_show", "late_cancelled", "group_seats"),
        rows,
        per_therapist=True,
    )


def _group_places(counts: Counts, months: list[Month]) -> None:
    month = _month(Appointment.starts_at, months)
    rows = db.session.execute(
        select(month, func.sum(Appointment.capacity))
        .where(
            _in_period(Appointment.starts_at, months),
            Appointment.status == AppointmentStatus.SCHEDULED,
            # Written out, so that both databases read the partial index of group sessions.
            Appointment.capacity > literal_column("1"),
        )
        .group_by("month")
    )
    counts.add_rows(("group_places",), rows)


def _waitlist(counts: Counts, months: list[Month]) -> None:
    month = _month(Appointment.starts_at, months)
    rows = db.session.execute(
        select(
            month,
            _count_if(WaitlistEntry.offered_until.is_not(None)),
            _count_if(WaitlistEntry.status == WaitlistStatus.CLAIMED),
            _count_if(WaitlistEntry.status == WaitlistStatus.EXPIRED),
        )
        .join(Appointment, Appointment.id == WaitlistEntry.appointment_id)
        .where(_in_period(Appointment.starts_at, months))
        .group_by("month")
    )
    counts.add_rows(("offers_made", "offers_claimed", "offers_expired"), rows)


def _readings(counts: Counts, months: list[Month]) -> None:
    month = _month(Assignment.created_at, months)
    rows = db.session.execute(
        select(
            month,
            func.count(Assignment.id),
            func.count(ModuleProgress.opened_at),
            func.count(ModuleProgress.completed_at),
        )
        .outerjoin(
            ModuleProgress,
            and_(
                ModuleProgress.family_user_id == Assignment.family_user_id,
                ModuleProgress.patient_id == Assignment.patient_id,
                ModuleProgress.module_id == Assignment.module_id,
                # The notes of this assignment's reading: current ones while it is in force;
                # once withdrawn (access ended), those withdrawn with it, never notes of a
                # later consent nor of an earlier assignment of the same reading.
                or_(
                    and_(ModuleProgress.withdrawn_at.is_(None), Assignment.stopped_at.is_(None)),
                    ModuleProgress.withdrawn_at.between(
                        Assignment.created_at, Assignment.stopped_at
                    ),
                ),
            ),
        )
        .where(_in_period(Assignment.created_at, months))
        .group_by("month")
    )
    counts.add_rows(("readings_assigned", "readings_opened", "readings_completed"), rows)


def _reminders(counts: Counts, months: list[Month]) -> None:
    family_reminders = and_(
        OutboxEmail.kind == REMINDER_KIND,
        # A family member's reminder is checked against their consent; the patient's own
        # (about them too, so it names them) is not family's.
        OutboxEmail.required_scope == Scope.SCHEDULING,
        _in_period(OutboxEmail.not_after, months),
    )
    sent = OutboxEmail.status == OutboxStatus.SENT
    failed = OutboxEmail.status == OutboxStatus.FAILED
    month = _month(OutboxEmail.not_after, months)
    rows = db.session.execute(
        select(month, _count_if(sent), _count_if(failed)).where(family_reminders).group_by("month")
    )
    counts.add_rows(("reminders_sent", "reminders_failed"), rows)
    # One row per session (the key names the appointment), then counted per month.
    per_session = (
        select(
            func.min(OutboxEmail.not_after).label("at"),
            _count_if(failed).label("failed"),
        )
        .where(family_reminders, or_(sent, failed))
        .group_by(_KeyPrefix(OutboxEmail.dedupe_key))
        .subquery()
    )
    month = _month(per_session.c.at, months)
    rows = db.session.execute(
        select(month, func.count(), _count_if(per_session.c.failed == 0)).group_by("month")
    )
    counts.add_rows(("sessions_reminded", "sessions_all_reminders"), rows)


def _consents(counts: Counts, months: list[Month]) -> None:
    month = _month(ConsentRecord.signed_at, months)
    rows = db.session.execute(
        select(month, func.count(ConsentRecord.id))
        .where(_in_period(ConsentRecord.signed_at, months))
        .group_by("month")
    )
    counts.add_rows(("consents_signed",), rows)
    month = _month(ConsentClosure.closed_at, months)
    expired = ConsentClosure.reason == ClosureReason.EXPIRED
    # The sweep ends expired consents with nobody as its author; a discharge has the
    # therapist who discharged.
    rows = db.session.execute(
        select(
            month,
            _count_if(ConsentClosure.reason == ClosureReason.REVOKED),
            _count_if(and_(expired, ConsentClosure.closed_by_id.is_(None))),
            _count_if(and_(expired, ConsentClosure.closed_by_id.is_not(None))),
        )
        .where(_in_period(ConsentClosure.closed_at, months))
        .group_by("month")
    )
    counts.add_rows(("consents_revoked", "consents_expired", "consents_ended_at_discharge"), rows)
