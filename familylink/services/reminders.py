"""Appointment reminders: at each of the program's offsets before a session, one email to
every family member coming to it who still holds the scheduling scope, and to the patient.

A sweep (`queue_due_reminders`) finds the reminders whose moment (start minus offset) falls
in the last REMINDER_LOOKBACK_MINUTES and queues each once: the dedupe key
`reminder:<appointment id>-<sequence>:<user id>:<offset hours>` makes a second sweep, or
two workers at once, a no-op. A reschedule raises the appointment's sequence, so the new
time gets its own reminders; the old time's unsent ones are cancelled by
`cancel_reminders` at the change, even those of a sweep running at that moment
(`_hold_reminders`). A reminder whose moment had already passed when the booking was made (or
the session moved) is never sent late, and `not_after` is the start of the session, so one
still queued when it starts is dropped by the sender.
"""

from __future__ import annotations

import functools
import gc
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import current_app
from flask_babel import force_locale, get_locale
from sqlalchemy import String, and_, any_, bindparam, func, or_, select, text
from sqlalchemy.dialects import postgresql

from familylink.extensions import db
from familylink.i18n import normalise
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AppointmentStatus,
    OutboxEmail,
    Scope,
    SeatStatus,
    SessionType,
    User,
)
from familylink.services import access, mail
from familylink.services.calendar.ics import neutral_title, where
from familylink.services.program import get_program
from familylink.services.timefmt import format_span, zone_title

KIND = "reminder"
# What of `reminder_context` the templates print and do nothing else with: a sweep renders
# the reminder once per language, zone and kind of session, not once per session.
PRINTED = ("title", "when", "zone_name", "where", "sign_in_link")


def reminder_key(appointment_id: int, sequence: int, user_id: int, offset_hours: int) -> str:
    """The dedupe key: the sequence makes a moved appointment's reminders new ones."""
    return f"reminder:{appointment_id}-{sequence}:{user_id}:{offset_hours}"


@dataclass(frozen=True)
class Person:
    """Whom a reminder goes to, as plain values (what the templates and the outbox read)."""

    id: int
    name: str
    email: str
    timezone: str
    locale: str | None

    first_name = User.first_name  # an account's own rule: it reads `name` alone


class ReminderTherapist(NamedTuple):
    name: str


class ReminderSessionType(NamedTuple):
    mode: str
    location: str | None
    duration_minutes: int


class ReminderAppointment(NamedTuple):
    """An appointment as the plain values a reminder reads (`reminder_context`, its title and
    place, the dedupe key), shaped as those read an `Appointment`: no ORM object."""

    id: int
    sequence: int
    starts_at: datetime
    ends_at: datetime
    is_group: bool
    join_token: str | None
    therapist: ReminderTherapist
    session_type: ReminderSessionType


@dataclass(frozen=True)
class DueReminder:
    appointment: ReminderAppointment
    patient_id: int
    person: Person
    offset_hours: int
    due_at: datetime
    to_patient: bool

    @functools.cached_property  # a sweep reads it three times per reminder
    def dedupe_key(self) -> str:
        a = self.appointment
        return reminder_key(a.id, a.sequence, self.person.id, self.offset_hours)


def _lookback() -> timedelta:
    return timedelta(minutes=current_app.config.get("REMINDER_LOOKBACK_MINUTES", 360))


_APPOINTMENT, _SEAT = Appointment.__table__, AppointmentFamily.__table__
_TYPE, _ATTENDEE = SessionType.__table__, AppointmentAttendee.__table__
_THERAPIST, _PATIENT, _MEMBER = (User.__table__.alias(n) for n in ("th", "pa", "me"))


def _person(row, prefix: str, known: dict[int, Person]) -> Person:
    """The person a row names, made once per sweep (it names a few hundred people, thousands
    of times)."""
    user_id = getattr(row, prefix + "id")
    if user_id not in known:
        known[user_id] = Person(*(getattr(row, prefix + name) for name in Person.__annotations__))
    return known[user_id]


def due_reminders(now: datetime, *, since: datetime | None = None) -> list[DueReminder]:
    """Reminders whose moment falls in [since, now] (since: now minus the lookback).

    One Core query of plain rows (a seat's appointment, session type, therapist, patient,
    and each present attendee with their account) and one for the consents of the family
    members in them, whatever the number of reminders: no ORM object is loaded.
    Reminders already queued are included; `queue_due_reminders` skips them.
    """
    offsets = sorted(set(get_program().reminder_offsets_hours), reverse=True)
    if not offsets:
        return []
    since = since if since is not None else now - _lookback()
    a, s, t, att = _APPOINTMENT, _SEAT, _TYPE, _ATTENDEE
    # moment = start - offset in [since, now]  <=>  start in [since + offset, now + offset]
    windows = [
        and_(a.c.starts_at >= since + timedelta(hours=h), a.c.starts_at <= now + timedelta(hours=h))
        for h in offsets
    ]
    people = [
        table.c[name].label(prefix + name)
        for table, prefix in ((_PATIENT, "pt_"), (_MEMBER, "fm_"))
        for name in Person.__annotations__
    ]
    rows = db.session.execute(
        select(
            a.c.id,
            a.c.sequence,
            a.c.starts_at,
            a.c.ends_at,
            a.c.capacity,
            a.c.rescheduled_at,
            s.c.id.label("seat_id"),
            s.c.created_at,
            s.c.patient_id,
            t.c.mode,
            a.c.join_token,
            t.c.location,
            t.c.duration_minutes,
            _THERAPIST.c.name.label("therapist_name"),
            _PATIENT.c.active.label("patient_active"),
            att.c.added_at,
            *people,
        )  # fmt: skip
        .select_from(
            s.join(a, a.c.id == s.c.appointment_id)
            .join(t, t.c.id == a.c.session_type_id)
            .join(_THERAPIST, _THERAPIST.c.id == a.c.therapist_id)
            .outerjoin(_PATIENT, _PATIENT.c.id == s.c.patient_id)
            .outerjoin(att, and_(att.c.seat_id == s.c.id, att.c.removed_at.is_(None)))
            .outerjoin(_MEMBER, _MEMBER.c.id == att.c.user_id)
        )
        .where(
            a.c.status == AppointmentStatus.SCHEDULED,
            s.c.status == SeatStatus.BOOKED,
            a.c.starts_at > now,
            or_(*windows),
        )
        .order_by(a.c.starts_at, s.c.id, att.c.id)
    ).all()
    seats: dict[int, list] = {}
    for row in rows:
        seats.setdefault(row.seat_id, []).append(row)
    pairs = {(r.fm_id, r.patient_id) for r in rows if r.fm_id is not None}
    allowed = access.pairs_with_scope(pairs, Scope.SCHEDULING, now=now) if pairs else set()
    due: list[DueReminder] = []
    known: dict[int, Person] = {}
    for seat_rows in seats.values():
        first = seat_rows[0]
        appointment = _appointment(first)
        patient_id = first.patient_id
        not_before = max(first.created_at, first.rescheduled_at or first.created_at)
        members = [(r.added_at, _person(r, "fm_", known)) for r in seat_rows if r.fm_id is not None]
        for h in offsets:
            moment = appointment.starts_at - timedelta(hours=h)
            if not (since <= moment <= now) or moment < not_before:
                continue
            for added_at, member in members:
                if moment >= added_at and (member.id, patient_id) in allowed:
                    due.append(DueReminder(appointment, patient_id, member, h, moment, False))
            if first.pt_id is not None and first.patient_active:
                patient = _person(first, "pt_", known)
                due.append(DueReminder(appointment, patient_id, patient, h, moment, True))
    return due


def _appointment(row) -> ReminderAppointment:
    """The appointment of a row of `due_reminders`' query, as plain values."""
    return ReminderAppointment(
        row.id,
        row.sequence,
        row.starts_at,
        row.ends_at,
        row.capacity > 1,
        row.join_token,
        ReminderTherapist(row.therapist_name),
        ReminderSessionType(row.mode, row.location, row.duration_minutes),
    )


def _already_queued(keys: list[str]) -> set[str]:
    key = OutboxEmail.dedupe_key
    if db.session.get_bind().dialect.name == "postgresql":
        # One array parameter: psycopg parses a statement of hundreds of placeholders
        # anew each time (too long for its cache), which cost more than the lookup.
        listed = bindparam("keys", keys, type_=postgresql.ARRAY(String))
        return set(db.session.scalars(select(key).where(key == any_(listed))))
    # SQLite: one JSON array parameter, rather than a statement per 500 keys.
    listed = func.json_each(bindparam("keys", json.dumps(keys), type_=String)).table_valued("value")
    return set(db.session.scalars(select(key).where(key.in_(select(listed.c.value)))))


def reminder_context(
    appointment, person, *, sign_in_link: str | None = None, written: dict | None = None
) -> dict:
    """What a reminder says: when (in the person's zone), where or the link; the title
    already names the therapist, so nothing else repeats it.

    `appointment` is an Appointment or the plain values `due_reminders` reads; `written`, a
    sweep's times, titles and zone names already written (its sessions start at the same few
    times, with the same few therapists, in the same few zones)."""
    session_type = appointment.session_type
    written = {} if written is None else written
    language = str(get_locale())
    span = (appointment.starts_at, appointment.ends_at, person.timezone, language)
    if span not in written:
        written[span] = format_span(*span[:3])
    title = (appointment.is_group, appointment.therapist.name, language)
    if title not in written:
        written[title] = neutral_title(appointment)
    zone = (person.timezone, language)
    if zone not in written:
        written[zone] = zone_title(person.timezone)
    return {
        "title": written[title],
        "when": written[span],
        "zone_name": written[zone],
        "minutes": session_type.duration_minutes,
        "where": where(appointment),
        "video": session_type.mode == "video",
        "sign_in_link": sign_in_link or mail.external_url("auth.login"),
    }


def queue_due_reminders(now: datetime, *, since: datetime | None = None) -> int:
    """Queue every due reminder not queued before; return how many were queued (flushes).

    A whole window at once: the due reminders in two queries, the keys already queued in
    one more, what each session says written once per zone and language (each language's
    catalogue switched to once), then one INSERT that skips any dedupe key already queued
    (by an overlapping sweep too), and one INSERT of their audit rows.
    """
    due = due_reminders(now, since=since)
    queued_before = _already_queued([r.dedupe_key for r in due])
    new = [reminder for reminder in due if reminder.dedupe_key not in queued_before]
    if not new:
        return 0
    sign_in = mail.external_url("auth.login")  # once per sweep, not per reminder
    # What a reminder says depends on its session, the time zone and the language only.
    keys = [_context_key(reminder) for reminder in new]
    by_language: dict[str, dict[tuple, DueReminder]] = {}
    for key, reminder in zip(keys, new, strict=True):
        by_language.setdefault(key[2], {}).setdefault(key, reminder)
    contexts: dict[tuple, dict] = {}
    written: dict[tuple, str] = {}
    for language, firsts in by_language.items():
        with force_locale(language):
            for key, reminder in firsts.items():
                contexts[key] = reminder_context(
                    reminder.appointment, reminder.person, sign_in_link=sign_in, written=written
                )
    return mail.queue_many(
        [
            mail.Queued(
                KIND,
                to=reminder.person,
                dedupe_key=reminder.dedupe_key,
                context=contexts[key],
                # A family member's is checked against the consent again when it is sent;
                # the patient's own is about them (audited so) and needs none.
                patient_id=reminder.patient_id,
                required_scope=access.IN_CARE if reminder.to_patient else Scope.SCHEDULING,
                not_after=reminder.appointment.starts_at,
                send_at=now,
                printed=PRINTED,
            )
            for key, reminder in zip(keys, new, strict=True)
        ],
        now=now,
    )


def _context_key(reminder: DueReminder) -> tuple[int, str, str]:
    person = reminder.person
    return reminder.appointment.id, person.timezone, normalise(person.locale)


def run_sweep(now: datetime) -> int:
    """The mail worker's hook and `flask reminders send`: one sweep (the caller commits).

    It holds the reminders' lock alone from its start (`_hold_reminders`): two sweeps at
    once run one after the other (the second finds everything queued), and no change to a
    session commits between the sweep's reading and its INSERT.
    """
    with _cycle_collector_paused():
        _hold_reminders(alone=True)
        return queue_due_reminders(now)


# The first key of the reminders' advisory lock (each advisory lock of the app has its own
# first key: `slots.THERAPIST_LOCKS`).
REMINDER_LOCKS = 23


def _hold_reminders(*, alone: bool) -> None:
    """Hold the reminders' lock to the end of this transaction: a sweep alone, the changes
    that cancel reminders (`cancel_reminders`) together. A change under way when a sweep
    starts commits before the sweep reads; one that comes during a sweep waits for its
    commit and then finds the reminders it queued. PostgreSQL: a transaction-level advisory
    lock. SQLite: the database write lock (which a change already holds, having written)."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if alone and not raw.in_transaction:
            raw.execute("BEGIN IMMEDIATE")
        return
    lock = "pg_advisory_xact_lock" if alone else "pg_advisory_xact_lock_shared"
    connection.execute(text(f"SELECT {lock}(:space, 0)"), {"space": REMINDER_LOCKS})


@contextmanager
def _cycle_collector_paused():
    """A sweep keeps every reminder, outbox row and audit row it makes (tens of thousands of
    small objects) until its INSERTs: the cyclic garbage collector would walk them all, and
    the process's own, again and again while none of them can be garbage. Reference
    counting still frees what the sweep drops; the collector resumes when it ends."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def cancel_reminders(appointment: Appointment, *, user_ids=None) -> int:
    """Cancel the appointment's unsent reminders, failed ones too (to these people only,
    when given): they name a time that no longer holds. A sweep running now commits the
    reminders it queues before they are looked for here (`_hold_reminders`)."""
    _hold_reminders(alone=False)
    which = and_(
        OutboxEmail.kind == KIND, OutboxEmail.dedupe_key.like(f"reminder:{appointment.id}-%")
    )
    if user_ids is not None:
        which = and_(which, OutboxEmail.to_user_id.in_(list(user_ids)))
    return mail.cancel_unsent(which, reason="appointment changed")


def cancel_seat_reminders(seat: AppointmentFamily) -> int:
    """Cancel the unsent reminders of one family's seat: its attendees and its patient."""
    people = [a.user_id for a in seat.attendees] + [seat.patient_id]
    return cancel_reminders(seat.appointment, user_ids=people)
