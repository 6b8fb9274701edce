"""Appointment reminders: at each of the program's offsets before a session, one email to
every family member coming to it who still holds the scheduling scope, and to the patient.

A sweep (`queue_due_reminders`) finds the reminders whose moment (start minus offset) falls
in the last REMINDER_LOOKBACK_MINUTES and queues each once: the dedupe key
`reminder:<appointment id>-<sequence>:<user id>:<offset hours>` makes a second sweep, or
two workers at once, a no-op. A reschedule raises the appointment's sequence, so the new
time gets its own reminders; the old time's pending ones are cancelled by
`cancel_reminders` at the change. A reminder whose moment had already passed when the
booking was made (or the session moved) is never sent late, and `not_after` is the start
of the session, so one still queued when it starts is dropped by the sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import contains_eager, selectinload

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AppointmentStatus,
    OutboxEmail,
    OutboxStatus,
    Scope,
    SeatStatus,
    User,
)
from familylink.services import access, mail
from familylink.services.calendar.ics import neutral_title, where
from familylink.services.program import get_program
from familylink.services.timefmt import format_span

KIND = "reminder"


def reminder_key(appointment: Appointment, user_id: int, offset_hours: int) -> str:
    """The dedupe key: the sequence makes a moved appointment's reminders new ones."""
    return f"reminder:{appointment.id}-{appointment.sequence}:{user_id}:{offset_hours}"


@dataclass(frozen=True)
class DueReminder:
    appointment: Appointment
    seat: AppointmentFamily
    person: User
    offset_hours: int
    due_at: datetime
    to_patient: bool

    @property
    def dedupe_key(self) -> str:
        return reminder_key(self.appointment, self.person.id, self.offset_hours)


def _lookback() -> timedelta:
    return timedelta(minutes=current_app.config.get("REMINDER_LOOKBACK_MINUTES", 360))


def due_reminders(now: datetime, *, since: datetime | None = None) -> list[DueReminder]:
    """Reminders whose moment falls in [since, now] (since: now minus the lookback).

    One query for the seats (appointment, attendees and people loaded with it) and one for
    the consents of the family members in them, whatever the number of reminders.
    Reminders already queued are included; `queue_due_reminders` skips them.
    """
    offsets = sorted(set(get_program().reminder_offsets_hours), reverse=True)
    if not offsets:
        return []
    since = since if since is not None else now - _lookback()
    # moment = start - offset in [since, now]  <=>  start in [since + offset, now + offset]
    windows = [
        and_(
            Appointment.starts_at >= since + timedelta(hours=h),
            Appointment.starts_at <= now + timedelta(hours=h),
        )
        for h in offsets
    ]
    seats = (
        db.session.scalars(
            select(AppointmentFamily)
            .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
            .where(
                Appointment.status == AppointmentStatus.SCHEDULED,
                AppointmentFamily.status == SeatStatus.BOOKED,
                Appointment.starts_at > now,
                or_(*windows),
            )
            .options(
                contains_eager(AppointmentFamily.appointment),
                selectinload(AppointmentFamily.attendees),
            )
            .order_by(Appointment.starts_at, AppointmentFamily.id)
            # Sessions keep objects across commits: read attendees as they are now.
            .execution_options(populate_existing=True)
        )
        .unique()
        .all()
    )
    allowed = _scheduling_allowed(seats, now=now)
    due: list[DueReminder] = []
    for seat in seats:
        appointment = seat.appointment
        not_before = max(seat.created_at, appointment.rescheduled_at or seat.created_at)
        for h in offsets:
            moment = appointment.starts_at - timedelta(hours=h)
            if not (since <= moment <= now) or moment < not_before:
                continue
            for attendee in seat.present_attendees:
                if moment < attendee.added_at:
                    continue
                if (attendee.user_id, seat.patient_id) not in allowed:
                    continue
                due.append(DueReminder(appointment, seat, attendee.user, h, moment, False))
            if seat.patient is not None and seat.patient.active:
                due.append(DueReminder(appointment, seat, seat.patient, h, moment, True))
    return due


def _scheduling_allowed(seats: list[AppointmentFamily], *, now: datetime) -> set[tuple[int, int]]:
    """(family member, patient) pairs among these seats whose consent covers scheduling."""
    pairs = {(a.user_id, seat.patient_id) for seat in seats for a in seat.present_attendees}
    if not pairs:
        return set()
    return access.pairs_with_scope(pairs, Scope.SCHEDULING, now=now)


def _already_queued(keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(
            db.session.scalars(
                select(OutboxEmail.dedupe_key).where(OutboxEmail.dedupe_key.in_(chunk))
            )
        )
    return found


def reminder_context(
    appointment: Appointment, person: User, *, sign_in_link: str | None = None
) -> dict:
    """What a reminder says: when (in the person's zone), where or the link; the title
    already names the therapist, so nothing else repeats it."""
    session_type = appointment.session_type
    return {
        "title": neutral_title(appointment),
        "when": format_span(appointment.starts_at, appointment.ends_at, person.timezone),
        "zone_name": person.timezone,
        "minutes": session_type.duration_minutes,
        "where": where(appointment),
        "video": session_type.mode == "video",
        "sign_in_link": sign_in_link or mail.external_url("auth.login"),
    }


def queue_due_reminders(now: datetime, *, since: datetime | None = None) -> int:
    """Queue every due reminder not queued before; return how many were queued (flushes).

    A whole window at once: the due reminders in two queries, the new ones rendered in
    memory, then one INSERT that skips any dedupe key already queued (by an overlapping
    sweep too), and their audit rows.
    """
    due = due_reminders(now, since=since)
    queued_before = _already_queued([r.dedupe_key for r in due])
    new = [reminder for reminder in due if reminder.dedupe_key not in queued_before]
    if not new:
        return 0
    sign_in = mail.external_url("auth.login")  # once per sweep, not per reminder
    return mail.queue_many(
        [
            mail.Queued(
                KIND,
                to=reminder.person,
                dedupe_key=reminder.dedupe_key,
                context=reminder_context(
                    reminder.appointment, reminder.person, sign_in_link=sign_in
                ),
                # The patient's own reminder discloses nothing to anyone else; a family
                # member's is checked against the consent again when it is sent.
                patient_id=None if reminder.to_patient else reminder.seat.patient_id,
                required_scope=None if reminder.to_patient else Scope.SCHEDULING,
                not_after=reminder.appointment.starts_at,
                send_at=now,
            )
            for reminder in new
        ],
        now=now,
    )


def run_sweep(now: datetime) -> int:
    """The mail worker's hook and `flask reminders send`: one sweep (the caller commits).

    On SQLite the write lock is taken first, so two sweeps at once run one after the
    other (the second finds everything queued) instead of failing on a stale snapshot.
    """
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if not raw.in_transaction:
            raw.execute("BEGIN IMMEDIATE")
    return queue_due_reminders(now)


def cancel_reminders(appointment: Appointment, *, user_ids=None) -> int:
    """Cancel the appointment's unsent reminders (to these people only, when given)."""
    query = (
        update(OutboxEmail)
        .where(
            OutboxEmail.status == OutboxStatus.PENDING,
            OutboxEmail.kind == KIND,
            OutboxEmail.dedupe_key.like(f"reminder:{appointment.id}-%"),
        )
        .values(status=OutboxStatus.CANCELLED, last_error="appointment changed", locked_until=None)
        .execution_options(synchronize_session=False)
    )
    if user_ids is not None:
        query = query.where(OutboxEmail.to_user_id.in_(list(user_ids)))
    return db.session.execute(query).rowcount


def cancel_seat_reminders(seat: AppointmentFamily) -> int:
    """Cancel the unsent reminders of one family's seat: its attendees and its patient."""
    people = [a.user_id for a in seat.attendees] + [seat.patient_id]
    return cancel_reminders(seat.appointment, user_ids=people)
