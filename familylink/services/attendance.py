"""Program attendance: the patient's attendance at each program day.

A therapist records it for their own patients, a day at a time (`day_sheet`,
`record_program_attendance`); a family member whose consent in force covers `attendance`
sees a plain weekly summary of the last few weeks (`family_summary`), asked of the gate
(`access.attendance_since`: from the start of the consent's episode), which records the
disclosure. Without that scope nothing is shown, not even that attendance is recorded, and
nothing is recorded as disclosed.

This is never a family's own attendance at a family session (`AppointmentFamily.attendance`),
which is theirs and always shown to them on their session page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from babel.dates import format_skeleton
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import ProgramAttendance, ProgramAttendanceStatus, User
from familylink.services import access, audit
from familylink.services.booking.slots import flush_or_conflict
from familylink.services.errors import NotFound, ValidationError
from familylink.services.program import local_day
from familylink.services.timefmt import babel_locale

_STATUSES = {status.value for status in ProgramAttendanceStatus}

#: How many program weeks a family member's summary shows, this week first.
WEEKS_SHOWN = 4


# --- The therapist records ---------------------------------------------------------------


@dataclass(frozen=True)
class DaySheet:
    """The therapist's own patients and what is recorded for each on one program day."""

    day: date
    patients: list[User]
    #: patient id → status, for the patients recorded that day.
    statuses: dict[int, str]
    #: The statuses the form offers, with their words, in this order.
    choices: tuple[ProgramAttendanceStatus, ...] = tuple(ProgramAttendanceStatus)


def day_sheet(therapist: User, day: date, *, now: datetime) -> DaySheet:
    """The form's contents for `day`. Listing the patients is a view of each (audited).
    Raises NotFound for anyone but a therapist."""
    patients = access.therapist_patients(therapist, now=now, what="program attendance")
    return DaySheet(day, patients, _recorded(day, [p.id for p in patients]))


def _recorded(day: date, patient_ids) -> dict[int, str]:
    if not patient_ids:
        return {}
    rows = db.session.execute(
        select(ProgramAttendance.patient_id, ProgramAttendance.status).where(
            ProgramAttendance.day == day, ProgramAttendance.patient_id.in_(patient_ids)
        )
    )
    return dict(rows.tuples().all())


def record_program_attendance(therapist: User, day: date, statuses: dict, *, now: datetime) -> int:
    """Record `statuses` ({patient id: status}) for the program day `day`: a new row per
    patient and day, or a correction of the row already there. Patients left out stay as
    they are (unrecorded, or as recorded before). Each new or changed row writes an audit
    row (a correction keeps the value it replaced). Returns how many rows changed.

    Raises NotFound when any id is not one of the therapist's own patients (or names
    nobody), ValidationError for a day still to come or a status not in the list, and
    Conflict when the same day was recorded at the same moment elsewhere.
    """
    own = {p.id for p in access.therapist_patients(therapist, now=now, what=None)}
    if any(patient_id not in own for patient_id in statuses):
        raise NotFound()
    if day > local_day(now):
        raise ValidationError(
            _("Attendance can be recorded for today or an earlier day, not a day to come."),
            field="day",
        )
    if any(status not in _STATUSES for status in statuses.values()):
        raise ValidationError(_("Choose attended, absent or excused."))
    rows = {
        row.patient_id: row
        for row in db.session.scalars(
            select(ProgramAttendance).where(
                ProgramAttendance.day == day, ProgramAttendance.patient_id.in_(list(statuses))
            )
        )
    }
    changes = []
    for patient_id, status in statuses.items():
        row = rows.get(patient_id)
        if row is not None and row.status == status:
            continue
        was = row.status if row is not None else None
        if row is None:
            row = ProgramAttendance(patient_id=patient_id, day=day)
            db.session.add(row)
        row.status, row.recorded_by_id, row.recorded_at = status, therapist.id, now
        changes.append((row, was))
    flush_or_conflict(_("This day was being recorded at the same moment. Check it and save again."))
    for row, was in changes:
        detail = {"day": day.isoformat(), "status": row.status}
        if was is not None:
            detail["was"] = was
        audit.record_about(
            "program_attendance.corrected" if was else "program_attendance.recorded",
            row,
            actor=therapist,
            detail=detail,
            now=now,
        )
    return len(changes)


# --- The family member's summary ---------------------------------------------------------


@dataclass(frozen=True)
class WeekSummary:
    """One program week (Monday to Sunday, program time) of a patient's recorded days."""

    starts: date
    attended: int = 0
    absent: int = 0
    excused: int = 0

    @property
    def recorded(self) -> int:
        return self.attended + self.absent + self.excused


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_summary(
    days: Iterable[tuple[date, str]], *, today: date, weeks: int = WEEKS_SHOWN
) -> list[WeekSummary]:
    """The last `weeks` program weeks, this week first, counting (day, status) pairs; a day
    after `today` or before the first week is left out."""
    first = week_start(today) - timedelta(weeks=weeks - 1)
    counts = {first + timedelta(weeks=n): {} for n in range(weeks)}
    for day, status in days:
        if first <= day <= today:
            week = counts[week_start(day)]
            week[status] = week.get(status, 0) + 1
    return [
        WeekSummary(starts, **{ProgramAttendanceStatus(s).value: n for s, n in found.items()})
        for starts, found in sorted(counts.items(), reverse=True)
    ]


def family_summary(member: User, patient_id: int, *, now: datetime) -> list[WeekSummary] | None:
    """The patient's weekly summary for a family member whose consent in force covers
    `attendance` (the gate records the disclosure); None otherwise, recording nothing."""
    since = access.attendance_since(member, patient_id, now=now)
    if since is None:
        return None
    today = local_day(now)
    first = max(week_start(today) - timedelta(weeks=WEEKS_SHOWN - 1), local_day(since))
    rows = db.session.execute(
        select(ProgramAttendance.day, ProgramAttendance.status).where(
            ProgramAttendance.patient_id == patient_id,
            ProgramAttendance.day >= first,
            ProgramAttendance.day <= today,
        )
    )
    return weekly_summary(rows.tuples().all(), today=today)


def week_label(week: WeekSummary, *, today: date) -> str:
    """ "This week", "Last week", or "The week of November 9"."""
    if week.starts == week_start(today):
        return _("This week")
    if week.starts == week_start(today) - timedelta(weeks=1):
        return _("Last week")
    day = format_skeleton("MMMMd", week.starts, locale=babel_locale())
    return _("The week of %(day)s", day=day)


def week_sentence(week: WeekSummary, first_name: str) -> str:
    """The week in plain words: "Jordan came to 3 of 4 program days. 1 absence was
    excused." Nothing recorded says so, never a guess."""
    if not week.recorded:
        return _("No program days recorded.")
    came = ngettext(
        "%(name)s came to %(attended)d of %(num)d program day.",
        "%(name)s came to %(attended)d of %(num)d program days.",
        week.recorded,
        name=first_name,
        attended=week.attended,
    )
    if not week.excused:
        return came
    excused = ngettext(
        "%(num)d absence was excused.", "%(num)d absences were excused.", week.excused
    )
    return f"{came} {excused}"
