"""Booking a family's seat: private sessions, group seats, reschedule, cancel, claiming a
waitlist offer, attendance.

Every write here only flushes; the view or command commits once. Who may act:
- a family member, for a patient whose active consent gives them the `scheduling` scope;
- the patient's own therapist, always.
Anything else is NotFound, so nothing reveals that a patient or appointment exists. The
access gate (`familylink.services.access`) answers each of these questions.

No double booking: everything that inserts or moves a therapist's appointments first takes
that therapist's lock (`slots.lock_therapist`: an advisory lock on PostgreSQL), so those
transactions run one after another and each sees the others' result; PostgreSQL's exclusion
constraint stays the last line of defence. Group places are counted and freed under the
occurrence's lock (`groups.lock_occurrence`: SELECT … FOR UPDATE on PostgreSQL). On SQLite
the transaction holds the database write lock (BEGIN IMMEDIATE), which serializes them all.

No seat for a family member whose consent is ending: each member about to be seated has
their consent read afresh under a shared lock on its row (`hold_attendees`, before the
therapist's lock), which closing a consent waits for (docs/booking.md, "Booking under
contention").
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AppointmentStatus,
    Attendance,
    Role,
    Scope,
    SeatStatus,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from familylink.services import access, audit, mail, reminders
from familylink.services.booking import catalog, changes, groups, notices, slots
from familylink.services.booking.slots import TAKEN
from familylink.services.errors import Conflict, NotFound, ValidationError

FULL = _l("Sorry, that group is now full. You can join its waitlist.")


# --- Who may book ----------------------------------------------------------------------------


def open_for_booking(
    actor: User, patient_id: int, *, now: datetime, what: str, opened=None
) -> access.PatientAccess:
    """The gate's answer when `actor` may book for the patient (a family member holding the
    scheduling scope, or the patient's own therapist): the patient and, for a family
    member, the consent in force, read once (`invitable_people` uses it); `opened`, the
    answer the request already had, when the gate says it is the same question. NotFound
    otherwise."""
    if actor.role not in (Role.FAMILY, Role.THERAPIST):
        raise NotFound()
    if opened is not None and opened.opened_for(actor, patient_id, Scope.SCHEDULING):
        return opened
    return access.patient(actor, patient_id, now=now, what=what, scope=Scope.SCHEDULING)


def patient_for_actor(actor: User, patient_id: int, *, now: datetime, what: str) -> User:
    """The patient when `actor` may book for them; NotFound otherwise (`open_for_booking`)."""
    return open_for_booking(actor, patient_id, now=now, what=what).patient


def invitable_people(actor: User, opened: access.PatientAccess, *, now: datetime) -> list[User]:
    """Whom `actor` may invite to a booking for `opened.patient` besides themself: a family
    member, the others their consent (the one the gate just read) lets them see; the
    therapist, every family member holding the scheduling scope."""
    if actor.role == Role.FAMILY:
        return opened.family_shown(actor, now=now)
    return scheduling_family(opened.patient, now=now)


def scheduling_family(patient: User, *, now: datetime) -> list[User]:
    """Family members of the patient who hold the scheduling scope now (one query)."""
    return access.family_with_scope(patient, Scope.SCHEDULING, now=now)


# Who made the booking of a form's one-time key: two columns, built once. Every booking asks
# (a private session under the therapist's lock; a group seat before its locks and again
# after) and almost always finds none, so the seat itself is loaded only when there is one.
_BOOKED_WITH_KEY = select(AppointmentFamily.id, AppointmentFamily.booked_by_id).where(
    AppointmentFamily.request_key == bindparam("request_key")
)


def booked_with_key(request_key: str | None, actor: User) -> AppointmentFamily | None:
    """The booking this actor's form (by its one-time key) already made, if any."""
    if not request_key:
        return None
    found = db.session.execute(_BOOKED_WITH_KEY, {"request_key": request_key}).first()
    if found is None or found.booked_by_id != actor.id:
        return None
    return db.session.get(AppointmentFamily, found.id)


def invited_people(
    actor: User, patient: User, extra_ids, *, now: datetime, invitable: list[User] | None = None
) -> list[User]:
    """Who a booking by `actor` invites (a family member first, themself); ValidationError
    for anyone `actor` may not invite, or for nobody at all. `invitable`: the answer of
    `invitable_people` already had in this request (else it is asked here, and only when
    someone besides the actor is named: there is nobody else to check)."""
    people: list[User] = [actor] if actor.role == Role.FAMILY else []
    if extra_ids and invitable is None:
        if actor.role == Role.FAMILY:
            invitable = access.family_shown_to(actor, patient, now=now)
        else:
            invitable = scheduling_family(patient, now=now)
    allowed = {m.id: m for m in invitable or ()}
    for raw in extra_ids or ():
        member = allowed.get(int(raw))
        if member is None:
            raise ValidationError(_("Choose family members from the list."), field="attendees")
        if member not in people:
            people.append(member)
    if not people:
        raise ValidationError(_("Choose at least one family member to invite."), field="attendees")
    return people


def hold_attendees(actor: User, patient: User, people: list[User], *, now: datetime) -> None:
    """Read afresh, under a lock a revocation waits for (`access.hold_consents`), that every
    family member about to be seated still holds the scheduling scope: taken before the
    therapist's lock and the group's, on every path that seats a family member. NotFound
    when the booking family member's own consent has ended; ValidationError when another's
    has (they are no longer on the list the form offered)."""
    if len(access.hold_consents(actor, patient.id, people, now=now)) < len(people):
        raise ValidationError(_("Choose family members from the list."), field="attendees")


def check_slot(therapist_id: int, session_type, starts_at: datetime, *, now: datetime) -> None:
    """Refuse a start that is not one of the therapist's free slots: ValidationError (past,
    or never offered), Conflict(TAKEN) when a booking now covers it."""
    if starts_at in slots.slots_for(therapist_id, session_type, now=now, near=starts_at):
        return
    if starts_at <= now:
        raise ValidationError(_("That time has passed. Choose another."), field="slot")
    if slots.taken(therapist_id, starts_at, session_type):
        raise Conflict(str(TAKEN), field="slot")
    raise ValidationError(
        _("That time is not available. Choose one of the times shown."), field="slot"
    )


# --- Booking -------------------------------------------------------------------------------


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
    opened: access.PatientAccess | None = None,
    invitable: list[User] | None = None,
) -> AppointmentFamily:
    """Book a private family session at a free slot of the patient's therapist. `opened`:
    the page's `open_for_booking` answer, so the consent is read once per request;
    `invitable`: whom the page found, under that same answer, the actor may invite
    (`invitable_people`), not asked again when the answer is used, and not asked at all
    when nobody besides the actor is invited.

    Raises NotFound (patient not allowed), ValidationError (bad type, slot not offered,
    attendees), Conflict (someone else got the slot first). A repeated request_key returns
    the booking it made the first time: looked up once, under the therapist's lock, where
    the same form sent twice at once finds the other request's booking too.
    """
    answer = open_for_booking(actor, patient_id, now=now, what="booking", opened=opened)
    patient = answer.patient
    if patient.therapist_id is None:
        raise ValidationError(_("There is no therapist to book with yet."))
    session_type = catalog.bookable_type(session_type_id, group=False)
    if attendee_ids and (invitable is None or answer is not opened):
        invitable = invitable_people(actor, answer, now=now)
    people = invited_people(actor, patient, attendee_ids, now=now, invitable=invitable)
    hold_attendees(actor, patient, people, now=now)
    # Named in the emails and calendar files: read before the lock, which every booking with
    # this therapist waits for.
    therapist = db.session.get(User, patient.therapist_id)
    slots.lock_therapist(patient.therapist_id)
    done = booked_with_key(request_key, actor)
    if done is not None:
        return done
    check_slot(patient.therapist_id, session_type, starts_at, now=now)
    return place_private(
        patient,
        session_type,
        people,
        starts_at,
        actor=actor,
        note=note,
        request_key=request_key,
        now=now,
        therapist=therapist,
    )


def place_private(
    patient: User,
    session_type,
    people: list[User],
    starts_at: datetime,
    *,
    actor: User,
    note: str | None,
    now: datetime,
    request_key: str | None = None,
    weekly_series=None,
    therapist: User | None = None,
) -> AppointmentFamily:
    """Write one private session with the patient's therapist and its seat, then its audit
    row and emails (`_booked`). The caller holds the therapist's lock and has checked the
    time (`book_private`: `check_slot`; a weekly series: `series.plan_series`). Conflict
    (TAKEN) when the database refuses an overlap all the same. `therapist`: their row, when
    the caller read it (else the emails read it)."""
    appointment = Appointment.private(
        session_type, starts_at, patient.therapist_id, by=actor, at=now, weekly_series=weekly_series
    )
    if therapist is not None:
        appointment.therapist = therapist
    db.session.add(appointment)
    seat = _add_seat(
        appointment, patient, people, actor=actor, note=note, request_key=request_key, now=now
    )
    slots.flush_or_conflict(TAKEN)
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
    _offer: WaitlistEntry | None = None,
) -> AppointmentFamily:
    """Take one seat for the patient's family in a group occurrence; `_offer`: the waitlist
    entry whose offer this claims (`claim_offer`).

    Raises NotFound (patient or group not visible), ValidationError (past, already booked,
    the offer claimed has ended), Conflict (full).
    """
    done = booked_with_key(request_key, actor)
    if done is not None:
        return done
    patient = patient_for_actor(actor, patient_id, now=now, what="group booking")
    people = invited_people(actor, patient, attendee_ids, now=now)
    hold_attendees(actor, patient, people, now=now)
    slots.serialize_booking()
    done = booked_with_key(request_key, actor)
    if done is not None:
        return done
    appointment = groups.locked_group(appointment_id, patient)
    if appointment.starts_at <= now:
        raise ValidationError(_("That group has already started. Choose another."), field="slot")
    seats = appointment.active_seats
    if any(s.patient_id == patient.id for s in seats):
        raise ValidationError(_("Your family already has a seat in this group."), field="slot")
    if _offer is not None:  # read afresh under the lock: one ended meanwhile is not claimed
        db.session.refresh(_offer)
        groups.check_offer(_offer, now)
    # A family claiming its own offer counts its held seat as free for itself.
    except_patient = patient.id if _offer is not None else None
    if groups.free_places(appointment, now=now, except_patient=except_patient) <= 0:
        raise Conflict(str(FULL))
    seat = _add_seat(
        appointment, patient, people, actor=actor, note=note, request_key=request_key, now=now
    )
    slots.flush_or_conflict(FULL)
    _booked(seat, actor=actor, now=now)
    return seat


def claim_offer(*, actor: User, entry_id: int, now: datetime) -> AppointmentFamily:
    """Take the place held for the actor's waitlist entry (`groups.check_offer`)."""
    entry = access.waitlist_entry(actor, entry_id)
    groups.check_offer(entry, now)
    seat = book_group_seat(
        actor=actor,
        patient_id=entry.patient_id,
        appointment_id=entry.appointment_id,
        now=now,
        _offer=entry,
    )
    entry.status = WaitlistStatus.CLAIMED
    db.session.flush()
    return seat


def _booked(seat: AppointmentFamily, *, actor: User, now: datetime) -> None:
    # The booking's audit row goes in with its emails' rows: one INSERT (record_about's row).
    booked = audit.values(
        "booking.created",
        actor=actor,
        obj=seat,
        patient_id=seat.patient_id,
        detail={"appointment": seat.appointment_id},
        now=now,
    )
    notices.tell_attendees(
        "booking_confirmed", seat, key=str(seat.id), actor=actor, now=now, audited=[booked]
    )


# --- Reschedule and cancel ---------------------------------------------------------------


#: Why a therapist cancels a family's place: a short fixed list, so nothing typed here can
#: reach an email or say what kind of care this is. The reason is kept in the audit row only;
#: the family's email says that it was cancelled, not why.
THERAPIST_CANCEL_REASONS = {
    "therapist_unavailable": _l("I am not available"),
    "family_asked": _l("The family asked to cancel"),
    "patient_unwell": _l("The patient cannot take part"),
    "program_closed": _l("The program is closed that day"),
    "other": _l("Another reason"),
}


def therapist_cancel(*, actor: User, seat_id: int, reason: str, now: datetime) -> AppointmentFamily:
    """The therapist cancels a family's place, giving one of THERAPIST_CANCEL_REASONS.

    Raises NotFound (not the actor's patient, or not a therapist), ValidationError (no or an
    unknown reason, field "reason"; then the errors of `cancel_seat`).
    """
    if actor.role != Role.THERAPIST:
        raise NotFound()
    access.seat(actor, seat_id, now=now, what=None)  # a foreign seat is 404 before any reason
    if reason not in THERAPIST_CANCEL_REASONS:
        raise ValidationError(_("Choose why the session is cancelled."), field="reason")
    return cancel_seat(actor=actor, seat_id=seat_id, now=now, reason=reason)


def cancel_seat(
    *, actor: User, seat_id: int, now: datetime, reason: str | None = None
) -> AppointmentFamily:
    """Cancel a booking; late (inside the window) by a family member is late_cancelled.
    `reason` (a key of THERAPIST_CANCEL_REASONS) goes into the audit row."""
    seat = access.seat(actor, seat_id, now=now, what=None)
    # One change to a session at a time, on the seat read afresh: a freed group place is
    # counted and offered once (see `groups`), and a cancellation that meets another, or
    # the release of a seat whose family can no longer come, finds it already cancelled.
    appointment = groups.lock_seat(seat)
    late = changes.cancellable(actor, seat, now).late
    seat.status = SeatStatus.LATE_CANCELLED if late else SeatStatus.CANCELLED
    seat.cancelled_at = now
    if not appointment.is_group:
        appointment.status = AppointmentStatus.CANCELLED
        appointment.sequence += 1
    db.session.flush()
    reminders.cancel_seat_reminders(seat)
    audit.record_about(
        "booking.late_cancelled" if late else "booking.cancelled",
        seat,
        actor=actor,
        detail={"reason": reason} if reason else None,
        now=now,
    )
    notices.tell_attendees("booking_cancelled", seat, key=str(seat.id), actor=actor, now=now)
    if late:
        therapist = appointment.therapist
        mail.queue_email(
            "late_cancellation",
            to=therapist,
            dedupe_key=f"late_cancellation:{seat.id}",
            now=now,
            context={**notices.mail_context(appointment, therapist), "patient": seat.patient},
            patient_id=seat.patient_id,
            required_scope=access.IN_CARE,
            not_after=appointment.ends_at,
            actor=actor,
        )
    if appointment.is_group:
        groups.offer_next_seat(appointment, now=now)
    return seat


def reschedule(
    *, actor: User, seat_id: int, starts_at: datetime | None, now: datetime
) -> AppointmentFamily:
    """Move a private session to another free slot: same UID, higher SEQUENCE.

    NotFound for someone else's seat comes before any complaint about the time chosen
    (`None`: no readable time), so a foreign id never gets an answer about its booking.
    """
    seat = access.seat(actor, seat_id, now=now, what=None)
    if starts_at is None:
        raise ValidationError(_("Choose a time from the list."), field="slot")
    appointment = seat.appointment
    if appointment.is_group or seat.status != SeatStatus.BOOKED:
        raise ValidationError(_("This booking can't be moved. You can cancel it instead."))
    if changes.is_late(actor, appointment, now):
        raise ValidationError(
            _("It is too close to the session to move it here. Please contact your therapist."),
            field="slot",
        )
    if starts_at <= now:  # a time that has started, whoever moves it
        raise ValidationError(_("That time has passed. Choose another."), field="slot")
    if starts_at == appointment.starts_at:
        raise ValidationError(
            _("The session is already at that time. Choose another time."), field="slot"
        )
    slots.lock_therapist(appointment.therapist_id)
    # Then the session's own lock, as a cancellation takes it: one cancelled meanwhile is
    # not moved (and its SEQUENCE not raised twice to the same number).
    appointment = groups.lock_seat(seat)
    if seat.status != SeatStatus.BOOKED:
        raise ValidationError(_("That booking is already cancelled."))
    if changes.moves_freely(actor):
        if slots.overlaps(appointment, starts_at):
            raise Conflict(str(TAKEN))
    elif starts_at not in slots.slots_for(
        appointment.therapist_id,
        appointment.session_type,
        now=now,
        exclude_id=appointment.id,
        near=starts_at,
    ):
        raise ValidationError(
            _("That time is not available. Choose one of the times shown."), "slot"
        )
    appointment.starts_at = starts_at
    appointment.ends_at = starts_at + timedelta(minutes=appointment.session_type.duration_minutes)
    appointment.sequence += 1
    appointment.rescheduled_at = now
    slots.flush_or_conflict(TAKEN)
    reminders.cancel_reminders(appointment)  # the old time's; the new time gets its own
    audit.record_about("booking.rescheduled", seat, actor=actor, now=now)
    key = f"{appointment.id}:{appointment.sequence}"
    notices.tell_attendees("booking_rescheduled", seat, key=key, actor=actor, now=now)
    return seat


# --- Attendance ------------------------------------------------------------------------------


def mark_attendance(*, actor: User, seat_id: int, value: str, now: datetime) -> AppointmentFamily:
    """The therapist records attended / no_show / late_cancelled for a family's seat: only
    a seat still booked (read afresh under its session's lock, `groups.lock_seat`), once
    the session has started. A cancelled or late-cancelled seat keeps no attendance."""
    if actor.role != Role.THERAPIST:
        raise NotFound()
    seat = access.seat(actor, seat_id, now=now, what=None)
    if value not in (SeatStatus.LATE_CANCELLED, Attendance.ATTENDED, Attendance.NO_SHOW):
        raise ValidationError(_("Choose attended, no-show or late-cancelled."))
    # Marked after the fact: before the session starts a cancellation (`cancel_seat`) frees
    # the place under its lock, offers it on and tells the family.
    if seat.appointment.starts_at > now:
        raise ValidationError(_("Attendance can be marked once the session has started."))
    groups.lock_seat(seat)
    if seat.status != SeatStatus.BOOKED:
        raise ValidationError(_("That booking is already cancelled."))
    if value == SeatStatus.LATE_CANCELLED:
        seat.status, seat.attendance = SeatStatus.LATE_CANCELLED, None
        seat.cancelled_at = seat.cancelled_at or now
    else:
        seat.attendance = value
    audit.record_about("attendance.marked", seat, actor=actor, detail={"value": value}, now=now)
    db.session.flush()
    return seat
