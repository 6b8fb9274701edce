"""Booking: private sessions, group seats, reschedule, cancel, waitlist, attendance.

Every write here only flushes; the view or command commits once. Who may act:
- a family member, for a patient whose active consent gives them the `scheduling` scope;
- the patient's own therapist, always.
Anything else is NotFound, so nothing reveals that a patient or appointment exists.

No double booking: on PostgreSQL an exclusion constraint refuses overlapping appointments of
one therapist and group seats are counted under SELECT … FOR UPDATE on the appointment; on
SQLite the booking transaction takes the database write lock first (BEGIN IMMEDIATE), so
bookings run one after another and each sees the others' result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, joinedload

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AppointmentStatus,
    Attendance,
    AvailabilityOverride,
    AvailabilityWindow,
    Role,
    SeatStatus,
    SessionType,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from familylink.services import audit, consent, mailer, reminders
from familylink.services.calendar import ics_attachment, neutral_title, where
from familylink.services.errors import Conflict, NotFound, ValidationError
from familylink.services.program import get_program
from familylink.services.scheduling import Override, Window, free_slots, weekly_occurrences
from familylink.services.timefmt import format_local


def buffer() -> timedelta:
    """Free time kept between two sessions of one therapist (a program setting)."""
    return timedelta(minutes=get_program().buffer_minutes)


TAKEN = "Sorry, someone else just booked that time. Please choose another."
FULL = "Sorry, that group is now full. You can join its waitlist."


# --- Locking -------------------------------------------------------------------------------


def serialize_booking() -> None:
    """Hold the database write lock for the rest of this transaction (SQLite only).

    pysqlite opens a transaction only at the first write; if none is open, BEGIN IMMEDIATE
    takes the write lock now (waiting for other writers). If one is open, this connection
    already holds the write lock.
    """
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.dbapi_connection
    if not raw.in_transaction:
        raw.execute("BEGIN IMMEDIATE")


# --- Who may see what ------------------------------------------------------------------------


def patient_for_actor(actor: User, patient_id: int, *, now: datetime, what: str) -> User:
    """The patient when `actor` may book for them; NotFound otherwise."""
    if actor.role == Role.FAMILY:
        patient, _ = consent.patient_for_family(
            actor, patient_id, scope="scheduling", now=now, disclosure=what
        )
        return patient
    if actor.role == Role.THERAPIST:
        patient = db.session.get(User, patient_id)
        if patient is None or patient.role != Role.PATIENT or patient.therapist_id != actor.id:
            raise NotFound()
        return patient
    raise NotFound()


def scheduling_family(patient: User, *, now: datetime) -> list[User]:
    """Family members of the patient who hold the scheduling scope now (one query)."""
    return [
        person
        for person, _patient_id, record, _end in consent.family_in_force([patient.id], now=now)
        if "scheduling" in record.scopes
    ]


def seat_for_actor(actor: User, seat_id: int, *, now: datetime, scope: str = "scheduling"):
    """A seat the actor may act on: their own patient's (therapist) or one they attend."""
    seat = db.session.get(AppointmentFamily, seat_id)
    if seat is None:
        raise NotFound()
    if actor.role == Role.THERAPIST and seat.appointment.therapist_id == actor.id:
        return seat
    if actor.role == Role.FAMILY:
        consent.patient_for_family(
            actor, seat.patient_id, scope=scope, now=now, disclosure="appointment"
        )
        if any(a.user_id == actor.id for a in seat.present_attendees):
            return seat
    raise NotFound()


# --- Slots ---------------------------------------------------------------------------------


def _availability(therapist_id: int) -> tuple[list[Window], list[Override]]:
    windows = [
        Window(w.weekday, w.start_time, w.end_time)
        for w in db.session.scalars(
            select(AvailabilityWindow).where(AvailabilityWindow.therapist_id == therapist_id)
        )
    ]
    overrides = [
        Override(o.day, o.off, o.start_time, o.end_time)
        for o in db.session.scalars(
            select(AvailabilityOverride).where(AvailabilityOverride.therapist_id == therapist_id)
        )
    ]
    return windows, overrides


# The longest session type allowed (checked by _check_session_type).
LONGEST_SESSION_MINUTES = 480
# No appointment lasts this long (more than the longest session type), so one that overlaps
# a period started less than this before it: a bound on starts_at, which the index on
# (therapist_id, starts_at) can use where a bound on ends_at alone could not.
LONGEST_APPOINTMENT = timedelta(days=1)


def _overlapping(start: datetime, end: datetime | None = None):
    """The condition for appointments overlapping [start, end) (no end: from start on)."""
    condition = and_(
        Appointment.starts_at > start - LONGEST_APPOINTMENT, Appointment.ends_at > start
    )
    return condition if end is None else and_(condition, Appointment.starts_at < end)


def _busy(therapist_id: int, *, since: datetime, exclude_id: int | None = None):
    query = select(Appointment.starts_at, Appointment.ends_at).where(
        Appointment.therapist_id == therapist_id,
        Appointment.status == AppointmentStatus.SCHEDULED,
        _overlapping(since - timedelta(days=1)),
    )
    if exclude_id is not None:
        query = query.where(Appointment.id != exclude_id)
    return [(s, e) for s, e in db.session.execute(query)]


def slots_for(
    therapist_id: int,
    session_type: SessionType,
    *,
    now: datetime,
    exclude_id: int | None = None,
    near: datetime | None = None,
) -> list[datetime]:
    """The therapist's free slots for that session type (with `near`: only around it)."""
    program = get_program()
    windows, overrides = _availability(therapist_id)
    return free_slots(
        windows,
        overrides,
        _busy(therapist_id, since=now, exclude_id=exclude_id),
        duration=timedelta(minutes=session_type.duration_minutes),
        buffer=buffer(),
        min_notice=timedelta(hours=program.minimum_notice_hours),
        horizon=timedelta(days=program.booking_horizon_days),
        now=now,
        zone=program.timezone,
        near=near,
    )


def private_session_types() -> list[SessionType]:
    return list(
        db.session.scalars(
            select(SessionType)
            .where(SessionType.active.is_(True), SessionType.capacity == 1)
            .order_by(SessionType.name)
        )
    )


def _session_type(session_type_id: int, *, group: bool) -> SessionType:
    session_type = db.session.get(SessionType, session_type_id)
    if session_type is None or not session_type.active or session_type.is_group != group:
        raise ValidationError("Choose a session type from the list.", field="session_type")
    return session_type


# --- Booking -------------------------------------------------------------------------------


def _existing(request_key: str | None) -> AppointmentFamily | None:
    if not request_key:
        return None
    return db.session.scalar(
        select(AppointmentFamily).where(AppointmentFamily.request_key == request_key)
    )


def booked_with_key(request_key: str | None, actor: User) -> AppointmentFamily | None:
    """The booking this actor's form (by its one-time key) already made, if any."""
    done = _existing(request_key)
    return done if done is not None and done.booked_by_id == actor.id else None


def _attendees(actor: User, patient: User, extra_ids, *, now: datetime) -> list[User]:
    allowed = {m.id: m for m in scheduling_family(patient, now=now)}
    people: list[User] = [actor] if actor.role == Role.FAMILY else []
    for raw in extra_ids or ():
        member = allowed.get(int(raw))
        if member is None:
            raise ValidationError("Choose family members from the list.", field="attendees")
        if member not in people:
            people.append(member)
    if not people:
        raise ValidationError("Choose at least one family member to invite.", field="attendees")
    return people


def _add_seat(appointment, patient, people, *, actor, note, request_key, now) -> AppointmentFamily:
    seat = AppointmentFamily(
        appointment=appointment,
        patient_id=patient.id,
        note=(note or "").strip()[:2000] or None,
        booked_by_id=actor.id,
        request_key=request_key or None,
        created_at=now,
    )
    db.session.add(seat)
    for person in people:
        db.session.add(AppointmentAttendee(seat=seat, user_id=person.id, added_at=now))
    return seat


def _flush_or_conflict(message: str, request_key: str | None) -> None:
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise Conflict(message)


def book_private(
    *,
    actor: User,
    patient_id: int,
    session_type_id: int,
    starts_at: datetime,
    attendee_ids=(),
    note: str | None = None,
    request_key: str | None = None,
    now: datetime,
) -> AppointmentFamily:
    """Book a private family session at a free slot of the patient's therapist.

    Raises NotFound (patient not allowed), ValidationError (bad type, slot not offered,
    attendees), Conflict (someone else got the slot first). A repeated request_key returns
    the booking it made the first time.
    """
    done = _existing(request_key)
    if done is not None and done.booked_by_id == actor.id:
        return done
    patient = patient_for_actor(actor, patient_id, now=now, what="booking")
    if patient.therapist_id is None:
        raise ValidationError("There is no therapist to book with yet.")
    session_type = _session_type(session_type_id, group=False)
    people = _attendees(actor, patient, attendee_ids, now=now)
    serialize_booking()
    done = _existing(request_key)
    if done is not None and done.booked_by_id == actor.id:
        return done
    if starts_at not in slots_for(patient.therapist_id, session_type, now=now, near=starts_at):
        if starts_at <= now:
            raise ValidationError("That time has passed. Choose another.", field="slot")
        if _taken(patient.therapist_id, starts_at, session_type):
            raise Conflict(TAKEN, field="slot")
        raise ValidationError(
            "That time is not available. Choose one of the times shown.", field="slot"
        )
    appointment = Appointment(
        uid=f"{uuid.uuid4()}@familylink",
        therapist_id=patient.therapist_id,
        session_type=session_type,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=session_type.duration_minutes),
        capacity=1,
        created_at=now,
        created_by_id=actor.id,
    )
    db.session.add(appointment)
    seat = _add_seat(
        appointment, patient, people, actor=actor, note=note, request_key=request_key, now=now
    )
    _flush_or_conflict(TAKEN, request_key)
    _booked(seat, actor=actor, now=now)
    return seat


def book_group_seat(
    *,
    actor: User,
    patient_id: int,
    appointment_id: int,
    attendee_ids=(),
    note: str | None = None,
    request_key: str | None = None,
    now: datetime,
    _from_waitlist: bool = False,
) -> AppointmentFamily:
    """Take one seat for the patient's family in a group occurrence.

    Raises NotFound (patient or group not visible), ValidationError (past, already booked),
    Conflict (full).
    """
    done = _existing(request_key)
    if done is not None and done.booked_by_id == actor.id:
        return done
    patient = patient_for_actor(actor, patient_id, now=now, what="group booking")
    people = _attendees(actor, patient, attendee_ids, now=now)
    serialize_booking()
    done = _existing(request_key)
    if done is not None and done.booked_by_id == actor.id:
        return done
    appointment = _locked_group(appointment_id, patient)
    if appointment.starts_at <= now:
        raise ValidationError("That group has already started. Choose another.", field="slot")
    seats = appointment.active_seats
    if any(s.patient_id == patient.id for s in seats):
        raise ValidationError("Your family already has a seat in this group.", field="slot")
    held = _held_offers(appointment, now=now, except_patient=patient.id if _from_waitlist else None)
    if len(seats) + held >= appointment.capacity:
        raise Conflict(FULL)
    seat = _add_seat(
        appointment, patient, people, actor=actor, note=note, request_key=request_key, now=now
    )
    _flush_or_conflict(FULL, request_key)
    _booked(seat, actor=actor, now=now)
    return seat


def _locked_group(appointment_id: int, patient: User) -> Appointment:
    query = select(Appointment).where(Appointment.id == appointment_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Appointment)
    appointment = db.session.scalars(query.execution_options(populate_existing=True)).first()
    if (
        appointment is None
        or not appointment.is_group
        or appointment.status != AppointmentStatus.SCHEDULED
        or appointment.therapist_id != patient.therapist_id
    ):
        raise NotFound()
    db.session.refresh(appointment, ["seats"])
    return appointment


def open_groups(patient: User, *, now: datetime) -> list[Appointment]:
    """Upcoming groups run by the patient's therapist."""
    return list(
        db.session.scalars(
            select(Appointment)
            .where(
                Appointment.therapist_id == patient.therapist_id,
                Appointment.capacity > 1,
                Appointment.status == AppointmentStatus.SCHEDULED,
                Appointment.starts_at > now,
            )
            .order_by(Appointment.starts_at)
        ).unique()
    )


def _when(appointment: Appointment, person: User) -> str:
    return format_local(appointment.starts_at, person.timezone)


def _mail_context(appointment: Appointment, person: User) -> dict:
    return {
        "appointment": appointment,
        "title": neutral_title(appointment),
        "when": _when(appointment, person),
        "where": where(appointment),
        "minutes": appointment.session_type.duration_minutes,
    }


def _tell_attendees(kind: str, seat: AppointmentFamily, *, key: str, actor, now) -> None:
    """One email with that person's own .ics to each family member coming to the seat."""
    appointment = seat.appointment
    for attendee in seat.present_attendees:
        person = attendee.user or db.session.get(User, attendee.user_id)
        mailer.queue_email(
            kind,
            to=person,
            dedupe_key=f"{kind}:{key}:{person.id}",
            now=now,
            context=_mail_context(appointment, person),
            patient_id=seat.patient_id,
            required_scope="scheduling",
            attachment=ics_attachment(
                appointment, person, now=now, cancelled=kind == "booking_cancelled"
            ),
            actor=actor,
        )


def _booked(seat: AppointmentFamily, *, actor: User, now: datetime) -> None:
    appointment = seat.appointment
    audit.record(
        "booking.created",
        actor=actor,
        patient_id=seat.patient_id,
        obj=seat,
        detail={"appointment": appointment.id},
        now=now,
    )
    _tell_attendees("booking_confirmed", seat, key=str(seat.id), actor=actor, now=now)


# --- Reschedule and cancel ---------------------------------------------------------------


def cancellation_window(appointment: Appointment) -> timedelta:
    hours = appointment.session_type.cancellation_window_hours
    if hours is None:
        hours = get_program().cancellation_window_hours
    return timedelta(hours=hours)


def inside_window(appointment: Appointment, now: datetime) -> bool:
    """True while a family member may still change it without it being late."""
    return appointment.starts_at - now >= cancellation_window(appointment)


def cancel_seat(*, actor: User, seat_id: int, now: datetime) -> AppointmentFamily:
    """Cancel a booking; late (inside the window) by a family member is late_cancelled."""
    seat = seat_for_actor(actor, seat_id, now=now)
    appointment = seat.appointment
    if seat.status != SeatStatus.BOOKED:
        raise ValidationError("That booking is already cancelled.")
    if appointment.starts_at <= now:
        raise ValidationError("That session has already started.")
    serialize_booking()
    late = actor.role == Role.FAMILY and not inside_window(appointment, now)
    seat.status = SeatStatus.LATE_CANCELLED if late else SeatStatus.CANCELLED
    seat.cancelled_at = now
    if not appointment.is_group:
        appointment.status = AppointmentStatus.CANCELLED
        appointment.sequence += 1
    db.session.flush()
    reminders.cancel_seat_reminders(seat)
    audit.record(
        "booking.late_cancelled" if late else "booking.cancelled",
        actor=actor,
        patient_id=seat.patient_id,
        obj=seat,
        now=now,
    )
    _tell_attendees("booking_cancelled", seat, key=str(seat.id), actor=actor, now=now)
    if late:
        therapist = appointment.therapist
        mailer.queue_email(
            "late_cancellation",
            to=therapist,
            dedupe_key=f"late_cancellation:{seat.id}",
            now=now,
            context={**_mail_context(appointment, therapist), "patient": seat.patient},
            actor=actor,
        )
    if appointment.is_group:
        offer_next_seat(appointment, now=now)
    return seat


def reschedule(
    *, actor: User, seat_id: int, starts_at: datetime | None, now: datetime
) -> AppointmentFamily:
    """Move a private session to another free slot: same UID, higher SEQUENCE.

    NotFound for someone else's seat comes before any complaint about the time chosen
    (`None`: no readable time), so a foreign id never gets an answer about its booking.
    """
    seat = seat_for_actor(actor, seat_id, now=now)
    if starts_at is None:
        raise ValidationError("Choose a time from the list.", field="slot")
    appointment = seat.appointment
    if appointment.is_group or seat.status != SeatStatus.BOOKED:
        raise ValidationError("This booking can't be moved. You can cancel it instead.")
    if actor.role == Role.FAMILY and not inside_window(appointment, now):
        raise ValidationError(
            "It is too close to the session to move it here. Please contact your therapist.",
            field="slot",
        )
    serialize_booking()
    if actor.role == Role.THERAPIST:
        # The therapist may move it outside the family's notice, horizon and windows.
        if starts_at <= now:
            raise ValidationError("That time has passed. Choose another.", field="slot")
        if _overlaps(appointment, starts_at):
            raise Conflict(TAKEN)
    elif starts_at not in slots_for(
        appointment.therapist_id,
        appointment.session_type,
        now=now,
        exclude_id=appointment.id,
        near=starts_at,
    ):
        raise ValidationError("That time is not available. Choose one of the times shown.", "slot")
    appointment.starts_at = starts_at
    appointment.ends_at = starts_at + timedelta(minutes=appointment.session_type.duration_minutes)
    appointment.sequence += 1
    appointment.rescheduled_at = now
    _flush_or_conflict(TAKEN, None)
    reminders.cancel_reminders(appointment)  # the old time's; the new time gets its own
    audit.record("booking.rescheduled", actor=actor, patient_id=seat.patient_id, obj=seat, now=now)
    key = f"{appointment.id}:{appointment.sequence}"
    _tell_attendees("booking_rescheduled", seat, key=key, actor=actor, now=now)
    return seat


def _taken(therapist_id: int, starts_at: datetime, session_type: SessionType) -> bool:
    """True when a booked appointment (with its buffer) covers that time."""
    ends_at = starts_at + timedelta(minutes=session_type.duration_minutes)
    gap = buffer()
    return any(
        s - gap < ends_at and starts_at < e + gap for s, e in _busy(therapist_id, since=starts_at)
    )


def _overlaps(appointment: Appointment, starts_at: datetime) -> bool:
    ends_at = starts_at + timedelta(minutes=appointment.session_type.duration_minutes)
    return any(
        s < ends_at and starts_at < e
        for s, e in _busy(appointment.therapist_id, since=starts_at, exclude_id=appointment.id)
    )


# --- Attendance ------------------------------------------------------------------------------


def mark_attendance(*, actor: User, seat_id: int, value: str, now: datetime) -> AppointmentFamily:
    """The therapist records attended / no_show / late_cancelled for a family's seat."""
    seat = db.session.get(AppointmentFamily, seat_id)
    if seat is None or actor.role != Role.THERAPIST or seat.appointment.therapist_id != actor.id:
        raise NotFound()
    if value == SeatStatus.LATE_CANCELLED:
        seat.status = SeatStatus.LATE_CANCELLED
        seat.cancelled_at = seat.cancelled_at or now
    elif value in (Attendance.ATTENDED, Attendance.NO_SHOW):
        if seat.appointment.starts_at > now:
            raise ValidationError("Attendance can be marked once the session has started.")
        seat.attendance = value
    else:
        raise ValidationError("Choose attended, no-show or late-cancelled.")
    audit.record(
        "attendance.marked",
        actor=actor,
        patient_id=seat.patient_id,
        obj=seat,
        detail={"value": value},
        now=now,
    )
    db.session.flush()
    return seat


# --- Groups ----------------------------------------------------------------------------------


def schedule_group(
    *,
    actor: User,
    session_type_id: int,
    first_day: date,
    start_time: time,
    weeks: int,
    capacity: int | None = None,
    now: datetime,
) -> list[Appointment]:
    """Create a one-off (weeks=1) or weekly group at the same local wall time."""
    if actor.role != Role.THERAPIST:
        raise NotFound()
    session_type = _session_type(session_type_id, group=True)
    if not 1 <= weeks <= 52:
        raise ValidationError("Choose between 1 and 52 weeks.", field="weeks")
    capacity = capacity or session_type.capacity
    if not 2 <= capacity <= 50:
        raise ValidationError("A group holds 2 to 50 families.", field="capacity")
    starts = weekly_occurrences(first_day, start_time, weeks, get_program().timezone)
    if starts[0] <= now:
        raise ValidationError("Choose a date in the future.", field="first_day")
    serialize_booking()
    series = uuid.uuid4().hex if weeks > 1 else None
    made = []
    for start in starts:
        appointment = Appointment(
            uid=f"{uuid.uuid4()}@familylink",
            therapist_id=actor.id,
            session_type=session_type,
            starts_at=start,
            ends_at=start + timedelta(minutes=session_type.duration_minutes),
            capacity=capacity,
            series_id=series,
            created_at=now,
            created_by_id=actor.id,
        )
        if _overlaps(appointment, start):
            raise Conflict(
                f"You already have a session at {format_local(start, actor.timezone)}.",
            )
        db.session.add(appointment)
        made.append(appointment)
    _flush_or_conflict("That overlaps another of your sessions.", None)
    audit.record("group.scheduled", actor=actor, detail={"count": len(made)}, now=now)
    return made


# --- Waitlist --------------------------------------------------------------------------------


def _held_offers(appointment: Appointment, *, now: datetime, except_patient: int | None) -> int:
    return sum(
        1
        for entry in db.session.scalars(
            select(WaitlistEntry).where(
                WaitlistEntry.appointment_id == appointment.id,
                WaitlistEntry.status == WaitlistStatus.OFFERED,
                WaitlistEntry.offered_until > now,
            )
        )
        if entry.patient_id != except_patient
    )


def join_waitlist(
    *, actor: User, patient_id: int, appointment_id: int, now: datetime
) -> WaitlistEntry:
    patient = patient_for_actor(actor, patient_id, now=now, what="waitlist")
    if actor.role != Role.FAMILY:
        raise NotFound()
    serialize_booking()
    appointment = _locked_group(appointment_id, patient)
    if len(appointment.active_seats) < appointment.capacity:
        raise ValidationError("There is still a seat: book it instead.")
    existing = db.session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.appointment_id == appointment.id,
            WaitlistEntry.patient_id == patient.id,
            WaitlistEntry.status.in_([WaitlistStatus.WAITING, WaitlistStatus.OFFERED]),
        )
    )
    if existing is not None:
        return existing
    entry = WaitlistEntry(
        appointment_id=appointment.id,
        patient_id=patient.id,
        family_user_id=actor.id,
        created_at=now,
    )
    db.session.add(entry)
    db.session.flush()
    audit.record("waitlist.joined", actor=actor, patient_id=patient.id, obj=entry, now=now)
    return entry


def offer_next_seat(appointment: Appointment, *, now: datetime) -> WaitlistEntry | None:
    """When a seat is free and nobody holds an offer, email the first family waiting."""
    if appointment.starts_at <= now or appointment.status != AppointmentStatus.SCHEDULED:
        return None
    free = appointment.capacity - len(appointment.active_seats)
    if free <= _held_offers(appointment, now=now, except_patient=None):
        return None
    waiting = db.session.scalars(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.appointment_id == appointment.id,
            WaitlistEntry.status == WaitlistStatus.WAITING,
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    ).all()
    for entry in waiting:
        person = db.session.get(User, entry.family_user_id)
        if not consent.may_disclose(
            person.id, entry.patient_id, "scheduling", now=now, audit_access=False
        ):
            entry.status = WaitlistStatus.LEFT
            continue
        hold = timedelta(hours=get_program().waitlist_hold_hours)
        entry.status = WaitlistStatus.OFFERED
        entry.offered_until = min(now + hold, appointment.starts_at)
        db.session.flush()
        mailer.queue_email(
            "waitlist_offer",
            to=person,
            dedupe_key=f"waitlist_offer:{entry.id}",
            now=now,
            context={
                **_mail_context(appointment, person),
                "until": format_local(entry.offered_until, person.timezone),
                "link": mailer.external_url("booking.claim", entry_id=entry.id),
            },
            patient_id=entry.patient_id,
            required_scope="scheduling",
            not_after=entry.offered_until,
        )
        audit.record("waitlist.offered", patient_id=entry.patient_id, obj=entry, now=now)
        return entry
    db.session.flush()
    return None


def offer_for_actor(actor: User, entry_id: int) -> WaitlistEntry:
    """The actor's own waitlist entry; NotFound for anyone else's or an unknown id."""
    entry = db.session.get(WaitlistEntry, entry_id)
    if entry is None or entry.family_user_id != actor.id:
        raise NotFound()
    return entry


def claim_offer(*, actor: User, entry_id: int, now: datetime) -> AppointmentFamily:
    entry = offer_for_actor(actor, entry_id)
    if entry.status != WaitlistStatus.OFFERED or entry.offered_until <= now:
        raise ValidationError("Sorry, this offer has ended.")
    seat = book_group_seat(
        actor=actor,
        patient_id=entry.patient_id,
        appointment_id=entry.appointment_id,
        now=now,
        _from_waitlist=True,
    )
    entry.status = WaitlistStatus.CLAIMED
    db.session.flush()
    return seat


def expire_offers(now: datetime) -> int:
    """Sweep: end offers past their hold and pass the seat to the next family."""
    expired = db.session.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.status == WaitlistStatus.OFFERED, WaitlistEntry.offered_until <= now
        )
    ).all()
    for entry in expired:
        entry.status = WaitlistStatus.EXPIRED
        db.session.flush()
        appointment = db.session.get(Appointment, entry.appointment_id)
        offer_next_seat(appointment, now=now)
    return len(expired)


def sweep(now: datetime) -> None:
    """Registered for the mail worker: expire offers, then commit."""
    if expire_offers(now):
        db.session.commit()


# --- Consent ended -------------------------------------------------------------------------


def remove_from_future(*, family_user_id: int, patient_id: int, now: datetime) -> int:
    """Take a family member off that patient's future appointments; return how many."""
    rows = db.session.scalars(
        select(AppointmentAttendee)
        .join(AppointmentFamily, AppointmentFamily.id == AppointmentAttendee.seat_id)
        .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
        .where(
            AppointmentAttendee.user_id == family_user_id,
            AppointmentAttendee.removed_at.is_(None),
            AppointmentFamily.patient_id == patient_id,
            Appointment.starts_at > now,
        )
    ).all()
    for attendee in rows:
        attendee.removed_at = now
        attendee.removed_reason = "consent ended"
        _release_if_empty(attendee.seat, now=now)
        audit.record(
            "booking.attendee_removed",
            patient_id=patient_id,
            recipient_id=family_user_id,
            obj=attendee,
            detail={"reason": "consent ended"},
            now=now,
        )
    for entry in db.session.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.family_user_id == family_user_id,
            WaitlistEntry.patient_id == patient_id,
            WaitlistEntry.status.in_([WaitlistStatus.WAITING, WaitlistStatus.OFFERED]),
        )
    ).all():
        entry.status = WaitlistStatus.LEFT
    db.session.flush()
    return len(rows)


def _release_if_empty(seat: AppointmentFamily, *, now: datetime) -> None:
    """A seat nobody can attend any more frees its time (private) or its place (group)."""
    if seat.status != SeatStatus.BOOKED or seat.present_attendees:
        return
    seat.status = SeatStatus.CANCELLED
    seat.cancelled_at = now
    appointment = seat.appointment
    reminders.cancel_seat_reminders(seat)
    if appointment.is_group:
        db.session.flush()
        offer_next_seat(appointment, now=now)
    else:
        appointment.status = AppointmentStatus.CANCELLED
        appointment.sequence += 1


@consent.consent_ended.connect
def _on_consent_ended(sender, *, family_user_id, patient_id, now, **_):
    remove_from_future(family_user_id=family_user_id, patient_id=patient_id, now=now)


# --- What people see ---------------------------------------------------------------------


def upcoming_for_family(actor: User, *, now: datetime) -> list[AppointmentFamily]:
    """Seats the family member attends, for patients whose consent still allows scheduling."""
    seats = db.session.scalars(
        select(AppointmentFamily)
        .options(
            contains_eager(AppointmentFamily.appointment).joinedload(Appointment.session_type),
            contains_eager(AppointmentFamily.appointment).joinedload(Appointment.therapist),
        )
        .join(AppointmentAttendee, AppointmentAttendee.seat_id == AppointmentFamily.id)
        .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
        .where(
            AppointmentAttendee.user_id == actor.id,
            AppointmentAttendee.removed_at.is_(None),
            Appointment.ends_at > now,
        )
        .order_by(Appointment.starts_at)
    ).unique()
    allowed = {p.id for p, c in consent.linked_patients(actor, now=now) if "scheduling" in c.scopes}
    return [s for s in seats if s.patient_id in allowed]


def therapist_appointments(
    therapist: User,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    page: str = "calendar",
) -> list[Appointment]:
    """The therapist's appointments in [start, end), with seats and attendees loaded.

    Showing them is a view of each patient's data: one audit row per patient shown.
    """
    appointments = list(
        db.session.scalars(
            select(Appointment)
            .options(
                joinedload(Appointment.seats)
                .joinedload(AppointmentFamily.attendees)
                .joinedload(AppointmentAttendee.user)
            )
            .where(Appointment.therapist_id == therapist.id, _overlapping(start, end))
            .order_by(Appointment.starts_at)
        ).unique()
    )
    shown = [seat.patient_id for a in appointments for seat in a.seats]
    audit.record_patient_views(therapist, shown, page=page, now=now)
    return appointments


@dataclass(frozen=True)
class FamilyMember:
    """A family member on the therapist's calendar, with what their consent allows."""

    user: User
    scopes: tuple[str, ...]
    ends_at: datetime | None
    ending_soon: bool


@dataclass
class SeatPeople:
    coming: list[FamilyMember] = field(default_factory=list)
    # Allowed to take part (scheduling scope) but not coming: who may need a nudge.
    not_coming: list[FamilyMember] = field(default_factory=list)
    # Coming, but whose consent no longer covers it (should not happen; shown if it does).
    not_allowed: list[User] = field(default_factory=list)


def therapist_calendar(
    therapist: User, start: datetime, end: datetime, *, now: datetime
) -> tuple[list[Appointment], dict[int, SeatPeople]]:
    """The therapist's appointments between start and end and, per seat, who is coming, who
    else may come, and whose consent ends soon. A fixed number of queries however many
    appointments and families (therapist_appointments audits each patient shown)."""
    appointments = therapist_appointments(therapist, start, end, now=now, page="calendar")
    patient_ids = sorted({s.patient_id for a in appointments for s in a.seats})
    in_force: dict[int, dict[int, FamilyMember]] = {}
    if patient_ids:
        shown = (
            select(AppointmentFamily.patient_id)
            .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
            .where(Appointment.therapist_id == therapist.id, _overlapping(start, end))
        )
        for person, patient_id, record, ends_at in consent.family_in_force(shown, now=now):
            soon = ends_at is not None and ends_at - consent.EXPIRING_SOON <= now
            member = FamilyMember(person, tuple(record.scopes), ends_at, soon)
            in_force.setdefault(patient_id, {})[person.id] = member
    people: dict[int, SeatPeople] = {}
    for appointment in appointments:
        for seat in appointment.seats:
            allowed = in_force.get(seat.patient_id, {})
            entry = people[seat.id] = SeatPeople()
            coming_ids = set()
            for attendee in seat.present_attendees:
                coming_ids.add(attendee.user_id)
                member = allowed.get(attendee.user_id)
                if member is not None and "scheduling" in member.scopes:
                    entry.coming.append(member)
                else:
                    entry.not_allowed.append(attendee.user)
            entry.not_coming = [
                m
                for uid, m in allowed.items()
                if uid not in coming_ids and "scheduling" in m.scopes
            ]
    return appointments, people


def patient_appointments(
    patient: User, *, now: datetime, page: str = "sessions"
) -> list[AppointmentFamily]:
    """The patient's upcoming family sessions (audited as a view of their own data)."""
    audit.record_patient_views(patient, [patient.id], page=page, now=now)
    return list(
        db.session.scalars(
            select(AppointmentFamily)
            .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
            .where(AppointmentFamily.patient_id == patient.id, Appointment.ends_at > now)
            .order_by(Appointment.starts_at)
        ).unique()
    )


# --- Availability and session types (therapist) ----------------------------------------------


def _check_span(start: time | None, end: time | None) -> None:
    if start is None or end is None or start >= end:
        raise ValidationError("The end time must be after the start time.", field="end_time")


def add_window(*, actor: User, weekday: int, start: time, end: time, now: datetime):
    if actor.role != Role.THERAPIST:
        raise NotFound()
    if weekday not in range(7):
        raise ValidationError("Choose a day of the week.", field="weekday")
    _check_span(start, end)
    window = AvailabilityWindow(
        therapist_id=actor.id, weekday=weekday, start_time=start, end_time=end
    )
    db.session.add(window)
    db.session.flush()
    audit.record("availability.added", actor=actor, obj=window, now=now)
    return window


def add_override(
    *, actor: User, day: date, off: bool, start: time | None, end: time | None, now: datetime
):
    if actor.role != Role.THERAPIST:
        raise NotFound()
    if not off or start or end:
        _check_span(start, end)
    override = AvailabilityOverride(
        therapist_id=actor.id, day=day, off=off, start_time=start, end_time=end
    )
    db.session.add(override)
    db.session.flush()
    audit.record("availability.override_added", actor=actor, obj=override, now=now)
    return override


def remove_availability(*, actor: User, kind: str, item_id: int, now: datetime) -> None:
    model = {"window": AvailabilityWindow, "override": AvailabilityOverride}.get(kind)
    item = db.session.get(model, item_id) if model else None
    if item is None or item.therapist_id != actor.id:
        raise NotFound()
    audit.record("availability.removed", actor=actor, obj=item, now=now)
    db.session.delete(item)
    db.session.flush()


def add_session_type(
    *,
    actor: User,
    name: str,
    duration_minutes: int,
    capacity: int,
    mode: str,
    location: str | None,
    video_link: str | None,
    cancellation_window_hours: int | None,
    now: datetime,
) -> SessionType:
    if actor.role not in (Role.THERAPIST, Role.ADMIN):
        raise NotFound()
    _check_session_type(name, duration_minutes, capacity, mode, video_link)
    session_type = SessionType(
        name=name.strip(),
        duration_minutes=duration_minutes,
        capacity=capacity,
        mode=mode,
        location=(location or "").strip() or None,
        video_link=(video_link or "").strip() or None,
        cancellation_window_hours=cancellation_window_hours,
        active=True,
    )
    db.session.add(session_type)
    db.session.flush()
    audit.record("session_type.added", actor=actor, obj=session_type, now=now)
    return session_type


def _check_session_type(name, duration_minutes, capacity, mode, video_link) -> None:
    if not (name or "").strip():
        raise ValidationError("Give the session type a name.", field="name")
    if duration_minutes is None or not 10 <= duration_minutes <= LONGEST_SESSION_MINUTES:
        raise ValidationError(
            f"Use 10 to {LONGEST_SESSION_MINUTES} minutes.", field="duration_minutes"
        )
    if capacity is None or not 1 <= capacity <= 50:
        raise ValidationError("Use 1 (one family) to 50 families.", field="capacity")
    if mode not in ("in_person", "video"):
        raise ValidationError("Choose in person or video.", field="mode")
    if mode == "video" and not (video_link or "").strip().startswith("https://"):
        raise ValidationError("Give the https:// link for video sessions.", field="video_link")


def session_type_for_admin(actor: User, session_type_id: int) -> SessionType:
    session_type = db.session.get(SessionType, session_type_id)
    if actor.role != Role.ADMIN or session_type is None:
        raise NotFound()
    return session_type


def update_session_type(
    *,
    actor: User,
    session_type_id: int,
    name: str,
    duration_minutes: int,
    capacity: int,
    mode: str,
    location: str | None,
    video_link: str | None,
    cancellation_window_hours: int | None,
    now: datetime,
) -> SessionType:
    """Change a session type (admin). Booked appointments keep their times and capacity; a
    private type stays private and a group type stays a group (make a new type instead)."""
    session_type = session_type_for_admin(actor, session_type_id)
    _check_session_type(name, duration_minutes, capacity, mode, video_link)
    if (capacity > 1) != session_type.is_group:
        raise ValidationError(
            "A private session type can't become a group, or a group private. "
            "Add a new session type instead.",
            field="capacity",
        )
    if cancellation_window_hours is not None and not 0 <= cancellation_window_hours <= 336:
        raise ValidationError("Use 0 to 336 hours.", field="cancellation_window_hours")
    before = {
        "name": session_type.name,
        "duration_minutes": session_type.duration_minutes,
        "capacity": session_type.capacity,
        "mode": session_type.mode,
    }
    session_type.name = name.strip()
    session_type.duration_minutes = duration_minutes
    session_type.capacity = capacity
    session_type.mode = mode
    session_type.location = (location or "").strip() or None
    session_type.video_link = (video_link or "").strip() or None
    session_type.cancellation_window_hours = cancellation_window_hours
    db.session.flush()
    audit.record("session_type.changed", actor=actor, obj=session_type, detail=before, now=now)
    return session_type


def set_session_type_active(
    *, actor: User, session_type_id: int, active: bool, now: datetime
) -> SessionType:
    """Deactivate (no new bookings or groups; booked ones go ahead) or reactivate a type."""
    session_type = session_type_for_admin(actor, session_type_id)
    session_type.active = active
    db.session.flush()
    audit.record(
        "session_type.activated" if active else "session_type.deactivated",
        actor=actor,
        obj=session_type,
        now=now,
    )
    return session_type


def every_session_type() -> list[SessionType]:
    """Active and inactive, for the admin page."""
    return list(
        db.session.scalars(
            select(SessionType).order_by(SessionType.active.desc(), SessionType.name)
        )
    )


def all_session_types() -> list[SessionType]:
    return list(
        db.session.scalars(
            select(SessionType).where(SessionType.active.is_(True)).order_by(SessionType.name)
        )
    )


def therapist_patients(therapist: User) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .where(User.role == Role.PATIENT, User.therapist_id == therapist.id)
            .order_by(User.name)
        )
    )


def therapist_changes(seat: AppointmentFamily, *, now: datetime) -> dict[str, bool]:
    """What the therapist's pages offer for a seat: cancel a booked place still ahead, and
    move it too when the session is private (the page shows flags, the rule lives here)."""
    ahead = seat.status == SeatStatus.BOOKED and seat.appointment.starts_at > now
    return {"cancel": ahead, "move": ahead and not seat.appointment.is_group}
