"""Groups and their waitlists: scheduling a group, the waitlist and its offers, offers that
expire, and a seat released when nobody can attend it any more (which may offer it on)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.orm import aliased

from familylink.extensions import db
from familylink.i18n import Later
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AppointmentStatus,
    Role,
    Scope,
    SeatStatus,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from familylink.services import access, audit, mail, reminders
from familylink.services.booking import catalog, notices, slots
from familylink.services.errors import Conflict, NotFound, ValidationError
from familylink.services.learning import withdrawal
from familylink.services.program import get_program
from familylink.services.scheduling import weekly_occurrences
from familylink.services.timefmt import format_local

# --- Scheduling a group ----------------------------------------------------------------------


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
    session_type = catalog.bookable_type(session_type_id, group=True)
    if not 1 <= weeks <= 52:
        raise ValidationError(_("Choose between 1 and 52 weeks."), field="weeks")
    capacity = capacity or session_type.capacity
    if not 2 <= capacity <= 50:
        raise ValidationError(_("A group holds 2 to 50 families."), field="capacity")
    starts = weekly_occurrences(first_day, start_time, weeks, get_program().timezone)
    if starts[0] <= now:
        raise ValidationError(_("Choose a date in the future."), field="first_day")
    slots.lock_therapist(actor.id)
    series = uuid.uuid4().hex if weeks > 1 else None
    made = []
    for start in starts:
        appointment = Appointment.of_type(
            session_type,
            start,
            by=actor,
            at=now,
            therapist_id=actor.id,
            capacity=capacity,
            series_id=series,
        )
        if slots.overlaps(appointment, start):
            raise Conflict(
                _(
                    "You already have a session at %(when)s.",
                    when=format_local(start, actor.timezone),
                ),
            )
        db.session.add(appointment)
        made.append(appointment)
    slots.flush_or_conflict(_("That overlaps another of your sessions."))
    audit.record("group.scheduled", actor=actor, detail={"count": len(made)}, now=now)
    return made


def locked_group(appointment_id: int, patient: User) -> Appointment:
    """The group occurrence, locked on PostgreSQL (SELECT … FOR UPDATE) so seats are counted
    one booking at a time, with its seats read afresh; NotFound unless the gate lets the
    patient's family see it."""
    appointment = access.group_for_patient(patient, appointment_id, lock=True)
    db.session.refresh(appointment, ["seats"])
    return appointment


def lock_occurrence(appointment_id: int) -> Appointment:
    """The group occurrence, held for the rest of the transaction by every path that takes
    or frees a place (booking, claim, cancel, offer expiry, a seat released): FOR UPDATE on
    PostgreSQL, the database write lock on SQLite. Its seats are read afresh."""
    slots.serialize_booking()
    query = select(Appointment).where(Appointment.id == appointment_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Appointment)
    appointment = db.session.scalars(query.execution_options(populate_existing=True)).one()
    db.session.refresh(appointment, ["seats"])
    return appointment


def lock_seat(seat: AppointmentFamily) -> Appointment:
    """Take its session's lock (`lock_occurrence`) and read the seat and its attendees
    afresh under it: every change to a seat (cancel, move, release) decides on what the
    one before it committed. Returns the session."""
    appointment = lock_occurrence(seat.appointment_id)
    db.session.refresh(seat)
    for attendee in seat.attendees:
        db.session.refresh(attendee)
    return appointment


# --- Free places and the waitlist ------------------------------------------------------------


def _held(now: datetime):
    # THE definition of an offer still held: offered, and its hold not yet over. One past its
    # hold is nobody's from that instant, whether or not the sweep (`expire_offers`) has run.
    return and_(WaitlistEntry.status == WaitlistStatus.OFFERED, WaitlistEntry.offered_until > now)


def check_offer(entry: WaitlistEntry, now: datetime) -> None:
    """Refuse to claim an entry whose offer is not held (`_held`) as it was read: a claim
    checks it when it reads the entry, then afresh under the group's lock, which the
    sweep and leaving the waitlist hold to end an offer."""
    if entry.status != WaitlistStatus.OFFERED or entry.offered_until <= now:
        raise ValidationError(_("Sorry, this offer has ended."))


def _held_query(now: datetime):
    return select(WaitlistEntry.appointment_id, WaitlistEntry.patient_id).where(_held(now))


def taken_places(appointment: Appointment) -> int:
    """THE definition of a taken place: a family's active (booked) seat."""
    return len(appointment.active_seats)


def taken_places_of(appointments: list[Appointment]) -> dict[int, int]:
    """`taken_places` of each group in a list (the therapist's calendar: "2 of 8
    families"); no query, the seats are loaded with the appointments."""
    return {a.id: taken_places(a) for a in appointments if a.is_group}


def _free(appointment: Appointment, held: int) -> int:
    # THE definition of a free place: not taken by an active seat, not held by an offer.
    return max(0, appointment.capacity - taken_places(appointment) - held)


def free_places(
    appointment: Appointment, *, now: datetime, except_patient: int | None = None
) -> int:
    """Places nobody has and nobody is offered (a family claiming its own offer passes
    `except_patient` so its held place counts as free for it). Used by booking, the
    waitlist and the offers."""
    rows = db.session.execute(
        _held_query(now).where(WaitlistEntry.appointment_id == appointment.id)
    )
    return _free(appointment, sum(1 for _, patient_id in rows if patient_id != except_patient))


def free_places_of(appointments: list[Appointment], *, now: datetime) -> dict[int, int]:
    """`free_places` of each occurrence in a list (the groups page), in one query more."""
    ids = [a.id for a in appointments]
    held: dict[int, int] = {}
    if ids:
        for appointment_id, _ in db.session.execute(
            _held_query(now).where(WaitlistEntry.appointment_id.in_(ids))
        ):
            held[appointment_id] = held.get(appointment_id, 0) + 1
    return {a.id: _free(a, held.get(a.id, 0)) for a in appointments}


def _seated(appointment: Appointment, patient_id: int) -> bool:
    """Whether the patient's family holds an active seat in the group (its seats as read
    under the occurrence's lock)."""
    return any(s.patient_id == patient_id for s in appointment.active_seats)


def join_waitlist(
    *, actor: User, patient_id: int, appointment_id: int, now: datetime
) -> WaitlistEntry:
    """Put the patient's family on a full group's waitlist (the entry it is on already, if
    any). ValidationError when the group has started, the family already has a seat in
    it, or a place is free (book it instead)."""
    patient, _consent = access.patient_for_family(
        actor, patient_id, scope=Scope.SCHEDULING, now=now, disclosure="waitlist"
    )
    # Held against a revocation, as a booking holds it (`seats.hold_attendees`), so ending
    # access never leaves a place on the waitlist behind it.
    access.hold_consents(actor, patient.id, [actor], now=now)
    slots.serialize_booking()
    appointment = locked_group(appointment_id, patient)
    # The refusals of a booking first: a place no family could take, or one already taken.
    if appointment.starts_at <= now:
        raise ValidationError(_("That group has already started. Choose another."), field="slot")
    if _seated(appointment, patient.id):
        raise ValidationError(_("Your family already has a seat in this group."), field="slot")
    if free_places(appointment, now=now) > 0:
        raise ValidationError(_("There is still a seat: book it instead."))
    existing = db.session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.appointment_id == appointment.id,
            WaitlistEntry.patient_id == patient.id,
            # An offer past its hold (swept or not) is over: the family joins again.
            or_(WaitlistEntry.status == WaitlistStatus.WAITING, _held(now)),
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


def leave_waitlist(*, actor: User, entry_id: int, now: datetime) -> WaitlistEntry:
    """A family member takes their family off a group's waitlist; a place held for them goes
    to the next family waiting. NotFound for anyone else's entry."""
    entry = access.waitlist_entry(actor, entry_id)
    appointment = lock_occurrence(entry.appointment_id)
    db.session.refresh(entry)
    if entry.status not in (WaitlistStatus.WAITING, WaitlistStatus.OFFERED):
        raise ValidationError(_("Your family is no longer on this waitlist."))
    entry.status = WaitlistStatus.LEFT
    db.session.flush()
    audit.record_about("waitlist.left", entry, actor=actor, now=now)
    offer_next_seat(appointment, now=now)
    return entry


def waitlist_places(
    actor: User, patient: User, appointment_ids: list[int], *, now: datetime
) -> dict[int, tuple[int | None, int]]:
    """For each of these groups whose waitlist the patient's family is on now: (entry id, its
    position among the families still waiting, 0 while a place is held for it (`_held`); an
    offer past its hold is off the waitlist, as the sweep will make it). One query.
    The entry id only when the entry is the actor's: another member of the family sees the
    place in line but may not leave or claim it (`access.waitlist_entry`)."""
    if not appointment_ids:
        return {}
    earlier = aliased(WaitlistEntry)
    ahead = (
        select(func.count(earlier.id))
        .where(
            earlier.appointment_id == WaitlistEntry.appointment_id,
            earlier.status == WaitlistStatus.WAITING,
            tuple_(earlier.created_at, earlier.id)
            < tuple_(WaitlistEntry.created_at, WaitlistEntry.id),
        )
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(
            WaitlistEntry.appointment_id,
            WaitlistEntry.id,
            WaitlistEntry.family_user_id,
            WaitlistEntry.status,
            ahead,
        ).where(
            WaitlistEntry.patient_id == patient.id,
            WaitlistEntry.appointment_id.in_(appointment_ids),
            or_(WaitlistEntry.status == WaitlistStatus.WAITING, _held(now)),
        )
    )
    return {
        group: (
            entry_id if member_id == actor.id else None,
            0 if status == WaitlistStatus.OFFERED else count + 1,
        )
        for group, entry_id, member_id, status, count in rows
    }


def offer_next_seat(appointment: Appointment, *, now: datetime) -> WaitlistEntry | None:
    """Offer each free place (see `free_places`) to the next family waiting, a different
    family for each; returns the first offer made. The caller holds the occurrence's lock."""
    first = None
    while (offered := _offer_one(appointment, now=now)) is not None:
        first = first or offered
    return first


def _offer_one(appointment: Appointment, *, now: datetime) -> WaitlistEntry | None:
    if appointment.starts_at <= now or appointment.status != AppointmentStatus.SCHEDULED:
        return None
    if free_places(appointment, now=now) <= 0:
        return None
    waiting = db.session.scalars(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.appointment_id == appointment.id,
            WaitlistEntry.status == WaitlistStatus.WAITING,
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        .execution_options(populate_existing=True)
    ).all()
    for entry in waiting:
        if _seated(appointment, entry.patient_id):
            continue  # a family with a seat could not claim the place: the next one gets it
        person = db.session.get(User, entry.family_user_id)
        if not access.may_disclose(
            person.id, entry.patient_id, Scope.SCHEDULING, now=now, audit_access=False
        ):
            entry.status = WaitlistStatus.LEFT
            continue
        hold = timedelta(hours=get_program().waitlist_hold_hours)
        entry.status = WaitlistStatus.OFFERED
        entry.offered_until = min(now + hold, appointment.starts_at)
        db.session.flush()
        mail.queue_email(
            "waitlist_offer",
            to=person,
            dedupe_key=f"waitlist_offer:{entry.id}",
            now=now,
            context={
                **notices.mail_context(appointment, person),
                "until": Later(format_local, entry.offered_until, person.timezone),
                "link": mail.external_url("booking.claim", entry_id=entry.id),
            },
            patient_id=entry.patient_id,
            required_scope=Scope.SCHEDULING,
            not_after=entry.offered_until,
        )
        audit.record_about("waitlist.offered", entry, now=now)
        return entry
    db.session.flush()
    return None


def expire_offers(now: datetime) -> int:
    """Sweep: end offers past their hold and pass the seat to the next family."""
    expired = db.session.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.status == WaitlistStatus.OFFERED, WaitlistEntry.offered_until <= now
        )
    ).all()
    count = 0
    for entry in expired:
        appointment = lock_occurrence(entry.appointment_id)
        db.session.refresh(entry)  # a claim may have won the lock first
        if entry.status != WaitlistStatus.OFFERED or entry.offered_until > now:
            continue
        entry.status = WaitlistStatus.EXPIRED
        db.session.flush()
        count += 1
        offer_next_seat(appointment, now=now)
    return count


def sweep(now: datetime) -> int:
    """The mail worker's hook: expire offers (the worker commits after each hook)."""
    return expire_offers(now)


# --- A family member's access ended ------------------------------------------------------------


def remove_from_future(
    *, family_user_id: int, patient_id: int, now: datetime, reason: str = "consent ended"
) -> int:
    """Take a family member off that patient's future appointments and waitlists (access
    ended, or the consent in force no longer covers scheduling: `reason`, at most 40
    characters, is kept on each attendee and in its audit row); a seat nobody can attend any
    more, or a place held for them by an offer, goes to the next family waiting. Returns
    how many appointments."""
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
        .order_by(Appointment.id)  # appointments locked in id order, as other paths do
    ).all()
    for attendee in rows:
        attendee.removed_at = now
        attendee.removed_reason = reason
        _release_if_empty(attendee.seat, now=now)
        audit.record(
            "booking.attendee_removed",
            patient_id=patient_id,
            recipient_id=family_user_id,
            obj=attendee,
            detail={"reason": reason},
            now=now,
        )
    entries = db.session.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.family_user_id == family_user_id,
            WaitlistEntry.patient_id == patient_id,
            WaitlistEntry.status.in_([WaitlistStatus.WAITING, WaitlistStatus.OFFERED]),
        )
    ).all()
    # Only waiting: one row counts them (the patient's log says how many, never which).
    withdrawal.withdraw(
        [e for e in entries if e.status == WaitlistStatus.WAITING],
        {"status": WaitlistStatus.LEFT},
        "waitlist.left",
        counted_as="entries",
        family_user_id=family_user_id,
        patient_id=patient_id,
        now=now,
        reason=reason,
    )
    for entry in entries:
        if entry.status == WaitlistStatus.OFFERED:
            _let_offer_go(entry, now=now, reason=reason)
    db.session.flush()
    return len(rows)


def _let_offer_go(entry: WaitlistEntry, *, now: datetime, reason: str) -> None:
    """The entry holding an offer leaves the waitlist: the place held for it is let go under
    the occurrence's lock and offered to the next family waiting, as `leave_waitlist` does."""
    appointment = lock_occurrence(entry.appointment_id)
    db.session.refresh(entry)  # a claim or the expiry sweep may have won the lock first
    if entry.status not in (WaitlistStatus.WAITING, WaitlistStatus.OFFERED):
        return
    entry.status = WaitlistStatus.LEFT
    db.session.flush()
    audit.record_about("waitlist.offer_released", entry, detail={"reason": reason}, now=now)
    offer_next_seat(appointment, now=now)


def _release_if_empty(seat: AppointmentFamily, *, now: datetime) -> None:
    """A seat nobody can attend any more frees its time (private) or its place (group).
    Decided under the appointment's lock, on the seat read afresh: a cancellation by the
    family committing meanwhile (a late one, say) stands as it was made."""
    if seat.status != SeatStatus.BOOKED:
        return
    appointment = lock_seat(seat)  # two members' access ending at once: each sees the other's
    if seat.status != SeatStatus.BOOKED or seat.present_attendees:
        return
    seat.status = SeatStatus.CANCELLED
    seat.cancelled_at = now
    reminders.cancel_seat_reminders(seat)
    if appointment.is_group:
        db.session.flush()
        offer_next_seat(appointment, now=now)
    else:
        appointment.status = AppointmentStatus.CANCELLED
        appointment.sequence += 1
