"""Booking rules, called directly: who may book, what is refused, windows, groups, waitlist."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AuditEvent,
    AvailabilityOverride,
    OutboxEmail,
    Role,
    Scope,
    SeatStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from familylink.services import access, booking
from familylink.services.booking import seats
from familylink.services.errors import Conflict, NotFound, ValidationError
from familylink.services.program import get_program
from tests.booking_setup import add_family, create_clinic
from tests.factories import create_user
from tests.moments import NOON


@pytest.fixture
def clinic(app_ctx):
    return create_clinic()


def first_slot(clinic, now, index=0):
    return booking.slots_for(clinic.therapist.id, clinic.private, now=now)[index]


def book(clinic, now, **extra):
    args = {
        "actor": clinic.family,
        "patient_id": clinic.patient.id,
        "session_type_id": clinic.private.id,
        "starts_at": first_slot(clinic, now),
        "now": now,
    }
    args.update(extra)
    return booking.book_private(**args)


def emails(kind):
    return db.session.scalars(select(OutboxEmail).where(OutboxEmail.kind == kind)).all()


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def parse(data: bytes):
    cal = Calendar.from_ical(data)
    (event,) = cal.walk("VEVENT")
    return cal, event


def test_family_member_books_a_private_session_and_gets_a_confirmation_with_ics(clinic, now):
    seat = book(clinic, now, note="We'd like to talk about weekends.")
    appointment = seat.appointment
    assert appointment.ends_at - appointment.starts_at == timedelta(minutes=50)
    assert [a.user_id for a in seat.present_attendees] == [clinic.family.id]
    (mail,) = emails("booking_confirmed")
    assert mail.subject == "Your appointment is confirmed"
    assert mail.to_address == clinic.family.email
    assert mail.patient_id == clinic.patient.id and mail.required_scope == "scheduling"
    assert "Thursday, November 19, 2026, 9:00 AM to 9:50 AM EST" in mail.text_body
    cal, event = parse(mail.attachment_data)
    assert str(cal["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == appointment.uid
    assert event.decoded("DTSTART") == appointment.starts_at
    assert "Rivera" not in mail.attachment_data.decode()


def test_a_private_session_holds_one_family_with_the_therapist_it_names(clinic, now):
    start = first_slot(clinic, now)
    appointment = Appointment.private(
        clinic.private, start, clinic.therapist.id, by=clinic.family, at=now
    )
    assert (appointment.capacity, appointment.therapist_id) == (1, clinic.therapist.id)
    assert (appointment.created_by_id, appointment.created_at) == (clinic.family.id, now)
    assert appointment.ends_at == start + timedelta(minutes=clinic.private.duration_minutes)


def test_other_family_members_can_be_added_when_the_bookers_consent_lets_them_see_them(clinic, now):
    luis = add_family(clinic.patient, "Luis Rivera")
    rosa = add_family(clinic.patient, "Rosa Rivera", family_visible=True)
    seat = book(clinic, now, actor=rosa, attendee_ids=[luis.id, clinic.family.id])
    assert {a.user_id for a in seat.present_attendees} == {rosa.id, luis.id, clinic.family.id}
    assert {m.to_address for m in emails("booking_confirmed")} == {
        rosa.email,
        luis.email,
        clinic.family.email,
    }


def test_without_that_choice_a_family_member_cannot_invite_or_name_another(clinic, now):
    luis = add_family(clinic.patient, "Luis Rivera")
    assert access.family_shown_to(clinic.family, clinic.patient, now=now) == []
    with pytest.raises(ValidationError) as error:
        book(clinic, now, attendee_ids=[luis.id])
    assert error.value.field == "attendees"
    assert count(Appointment) == 0


def test_a_family_member_without_scheduling_scope_cannot_be_added(clinic, now):
    reader = add_family(clinic.patient, "Ana Rivera", scopes=("progress",))
    with pytest.raises(ValidationError) as error:
        book(clinic, now, attendee_ids=[reader.id])
    assert error.value.field == "attendees"
    assert count(Appointment) == 0


def test_the_therapist_books_for_a_family(clinic, now):
    seat = book(clinic, now, actor=clinic.therapist, attendee_ids=[clinic.family.id])
    assert [a.user_id for a in seat.present_attendees] == [clinic.family.id]
    assert len(emails("booking_confirmed")) == 1


def test_a_resubmitted_form_books_once(clinic, now):
    first = book(clinic, now, request_key="k" * 32)
    again = book(clinic, now, request_key="k" * 32)
    assert again.id == first.id
    assert count(Appointment) == 1
    assert len(emails("booking_confirmed")) == 1


def test_a_resubmitted_forms_key_is_looked_up_once_under_the_therapists_lock(
    clinic, now, monkeypatch
):
    """The same form sent twice at once: only a look-up made under the lock can see the
    other request's booking, so that is the one there is."""
    from familylink.services.booking import slots

    first = book(clinic, now, request_key="k" * 32)
    steps = []
    lock, look_up = slots.lock_therapist, seats.booked_with_key
    monkeypatch.setattr(slots, "lock_therapist", lambda *a: steps.append("lock") or lock(*a))
    monkeypatch.setattr(seats, "booked_with_key", lambda *a: steps.append("key") or look_up(*a))
    assert book(clinic, now, request_key="k" * 32).id == first.id
    assert steps == ["lock", "key"]


def test_a_booked_slot_is_no_longer_offered_nor_bookable(clinic, now):
    seat = book(clinic, now)
    slots = booking.slots_for(clinic.therapist.id, clinic.private, now=now)
    assert seat.appointment.starts_at not in slots
    other = add_family(clinic.patient, "Luis Rivera")
    with pytest.raises(Conflict, match="someone else just booked"):
        book(clinic, now, actor=other, starts_at=seat.appointment.starts_at)
    assert count(Appointment) == 1


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("past", "passed"),
        ("outside", "not available"),
        ("inside_notice", "not available"),
        ("past_horizon", "not available"),
    ],
)
def test_bad_times_are_refused_and_nothing_changes(clinic, now, case, message):
    starts = {
        "past": now - timedelta(hours=3),
        "outside": datetime(2026, 11, 20, 3, 0, tzinfo=UTC),  # 10 pm in New York
        "inside_notice": datetime(2026, 11, 18, 19, 0, tzinfo=UTC),  # 2 pm today
        "past_horizon": datetime(2027, 1, 20, 14, 0, tzinfo=UTC),
    }[case]
    with pytest.raises(ValidationError, match=message):
        book(clinic, now, starts_at=starts)
    assert count(Appointment) == 0 and count(OutboxEmail) == 0


def test_a_foreign_patient_id_is_not_found(clinic, now):
    stranger = create_user(Role.PATIENT, therapist=clinic.therapist)
    with pytest.raises(NotFound):
        book(clinic, now, patient_id=stranger.id)
    assert count(Appointment) == 0


def test_the_pages_reading_of_the_consent_opens_only_the_question_it_answered(clinic, now):
    """`opened` spares a second reading only for the same person, patient and scope: any
    other answer of the gate is asked again (and a stranger is still NotFound)."""
    stranger = create_user(Role.PATIENT, therapist=clinic.therapist)
    opened = booking.open_for_booking(clinic.family, clinic.patient.id, now=now, what="page")
    assert opened.opened_for(clinic.family, clinic.patient.id, Scope.SCHEDULING)
    with pytest.raises(NotFound):
        book(clinic, now, patient_id=stranger.id, opened=opened)
    viewed = access.patient(clinic.family, clinic.patient.id, now=now, what="page")  # no scope
    assert not viewed.opened_for(clinic.family, clinic.patient.id, Scope.SCHEDULING)
    assert not opened.opened_for(clinic.therapist, clinic.patient.id, Scope.SCHEDULING)
    assert count(Appointment) == 0
    seat = book(clinic, now, opened=opened)
    assert seat.patient_id == clinic.patient.id


def test_a_group_type_cannot_be_booked_as_a_private_session(clinic, now):
    with pytest.raises(ValidationError):
        book(clinic, now, session_type_id=clinic.group.id)


def test_another_therapists_patient_is_not_found_for_a_therapist(clinic, now):
    other = create_user(Role.THERAPIST)
    with pytest.raises(NotFound):
        book(clinic, now, actor=other, attendee_ids=[clinic.family.id])


def test_a_forged_or_foreign_seat_id_is_not_found(clinic, now):
    seat = book(clinic, now)
    outsider = create_user(Role.FAMILY)
    with pytest.raises(NotFound):
        booking.cancel_seat(actor=outsider, seat_id=seat.id, now=now)
    with pytest.raises(NotFound):
        booking.cancel_seat(actor=clinic.family, seat_id=seat.id + 999, now=now)
    assert seat.status == SeatStatus.BOOKED


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        (timedelta(hours=24), SeatStatus.CANCELLED),
        (timedelta(hours=24, seconds=1), SeatStatus.CANCELLED),
        (timedelta(hours=23, minutes=59, seconds=59), SeatStatus.LATE_CANCELLED),
    ],
)
def test_cancellation_window_edges(clinic, now, before, expected):
    seat = book(clinic, now, starts_at=first_slot(clinic, now, index=10))
    at = seat.appointment.starts_at - before
    booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=at)
    assert seat.status == expected
    told = [m.to_address for m in emails("late_cancellation")]
    assert told == ([clinic.therapist.email] if expected == SeatStatus.LATE_CANCELLED else [])


def test_the_therapist_can_always_cancel_without_it_being_late(clinic, now):
    seat = book(clinic, now)
    late = seat.appointment.starts_at - timedelta(hours=1)
    booking.cancel_seat(actor=clinic.therapist, seat_id=seat.id, now=late)
    assert seat.status == SeatStatus.CANCELLED


def test_cancel_sends_method_cancel_with_the_same_uid_and_a_higher_sequence(clinic, now):
    seat = book(clinic, now)
    booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=now)
    (mail,) = emails("booking_cancelled")
    assert mail.subject == "Your appointment is cancelled"
    cal, event = parse(mail.attachment_data)
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(event["UID"]) == seat.appointment.uid
    assert event["SEQUENCE"] == 1
    # the slot is free again
    assert seat.appointment.starts_at in booking.slots_for(
        clinic.therapist.id, clinic.private, now=now
    )


def test_reschedule_keeps_the_uid_and_raises_sequence(clinic, now):
    seat = book(clinic, now, starts_at=first_slot(clinic, now, index=10))
    uid = seat.appointment.uid
    new_time = first_slot(clinic, now, index=12)
    booking.reschedule(actor=clinic.family, seat_id=seat.id, starts_at=new_time, now=now)
    (mail,) = emails("booking_rescheduled")
    _, event = parse(mail.attachment_data)
    assert str(event["UID"]) == uid
    assert event["SEQUENCE"] == 1
    assert event.decoded("DTSTART") == new_time


def test_reschedule_inside_the_window_is_refused_for_family(clinic, now):
    seat = book(clinic, now)
    late = seat.appointment.starts_at - timedelta(hours=2)
    with pytest.raises(ValidationError):
        booking.reschedule(
            actor=clinic.family, seat_id=seat.id, starts_at=first_slot(clinic, now, 5), now=late
        )
    assert seat.appointment.sequence == 0


# What a seat's page offers (cancel, move) and whether cancelling now is late: the service's
# answer, one rule with the cancel page's and the series list's (Cancellation.late).
CHANGES = ("cancel", "move", "late")


def _changes(actor, seat, at) -> tuple[bool, bool, bool]:
    found = booking.changes_of(actor, seat, now=at)
    return tuple(getattr(found, name) for name in CHANGES)


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        (timedelta(hours=30), (True, True, False)),  # outside the 24-hour window
        (timedelta(hours=24), (True, True, False)),  # the window's edge is not late
        (timedelta(hours=12), (True, False, True)),  # inside: move refused, cancel late
        (timedelta(0), (False, False, False)),  # started
        (-timedelta(hours=1), (False, False, False)),  # past
    ],
)
def test_a_family_members_changes_follow_the_cancellation_window(clinic, now, before, expected):
    seat = book(clinic, now, starts_at=first_slot(clinic, now, index=10))
    assert _changes(clinic.family, seat, seat.appointment.starts_at - before) == expected


def test_the_therapists_changes_are_never_late(clinic, now):
    seat = book(clinic, now)
    inside = seat.appointment.starts_at - timedelta(hours=1)
    assert _changes(clinic.therapist, seat, inside) == (True, True, False)


def test_the_therapists_pages_ask_the_one_rule_of_changes(clinic, now):
    """Inside the family's cancellation window the therapist may still move and cancel;
    attendance once the session has started."""
    seat = book(clinic, now)
    starts = seat.appointment.starts_at
    inside = booking.therapist_changes(clinic.therapist, seat, now=starts - timedelta(hours=1))
    assert inside == {"cancel": True, "move": True, "series": False, "attendance": False}
    started = booking.therapist_changes(clinic.therapist, seat, now=starts)
    assert started == {"cancel": False, "move": False, "series": False, "attendance": True}


def test_a_group_seat_may_be_cancelled_not_moved(clinic, now):
    (group,) = schedule(clinic, now)
    seat = take(clinic.patient, clinic.family, group, now)
    assert _changes(clinic.family, seat, now) == (True, False, False)
    inside = group.starts_at - timedelta(hours=2)
    assert _changes(clinic.family, seat, inside) == (True, False, True)


def test_a_cancelled_seat_offers_no_change(clinic, now):
    seat = book(clinic, now)
    booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=now)
    assert _changes(clinic.family, seat, now) == (False, False, False)


def test_the_page_the_cancel_question_and_the_series_list_agree_on_late(clinic, now):
    seat = book(clinic, now, starts_at=first_slot(clinic, now, index=10))
    for before in (timedelta(hours=30), timedelta(hours=12)):
        at = seat.appointment.starts_at - before
        asked = booking.cancellation_of(clinic.family, seat.id, now=at)
        assert booking.changes_of(clinic.family, seat, now=at).late == asked.late


def test_consent_ended_removes_the_family_member_from_future_appointments_only(clinic, now):
    future = book(clinic, now)
    past_appointment = Appointment(
        uid="past@familylink",
        therapist_id=clinic.therapist.id,
        session_type=clinic.private,
        starts_at=now - timedelta(days=3),
        ends_at=now - timedelta(days=3) + timedelta(minutes=50),
        capacity=1,
    )
    db.session.add(past_appointment)
    past = seats._add_seat(
        past_appointment,
        clinic.patient,
        [clinic.family],
        actor=clinic.family,
        note=None,
        request_key=None,
        now=now - timedelta(days=5),
    )
    db.session.flush()
    booking.remove_from_future(
        family_user_id=clinic.family.id, patient_id=clinic.patient.id, now=now
    )
    assert future.present_attendees == []
    assert [a.user_id for a in past.present_attendees] == [clinic.family.id]
    # nobody is left to come, so the time is freed
    assert future.status == SeatStatus.CANCELLED
    assert future.appointment.status == "cancelled"


def test_consent_ended_keeps_the_seat_while_another_family_member_still_comes(clinic, now):
    luis = add_family(clinic.patient, "Luis Rivera")
    seat = book(clinic, now, actor=clinic.therapist, attendee_ids=[clinic.family.id, luis.id])
    booking.remove_from_future(
        family_user_id=clinic.family.id, patient_id=clinic.patient.id, now=now
    )
    assert [a.user_id for a in seat.present_attendees] == [luis.id]
    assert seat.status == SeatStatus.BOOKED


def test_attendance_marked_by_the_therapist(clinic, now):
    seat = book(clinic, now)
    with pytest.raises(ValidationError):
        booking.mark_attendance(actor=clinic.therapist, seat_id=seat.id, value="attended", now=now)
    after = seat.appointment.starts_at + timedelta(minutes=5)
    booking.mark_attendance(actor=clinic.therapist, seat_id=seat.id, value="attended", now=after)
    assert seat.attendance == "attended"
    with pytest.raises(NotFound):
        booking.mark_attendance(actor=clinic.family, seat_id=seat.id, value="no_show", now=after)


# --- Groups and waitlist ---------------------------------------------------------------------


def schedule(clinic, now, *, weeks=1, capacity=2, day=date(2026, 11, 25)):
    return booking.schedule_group(
        actor=clinic.therapist,
        session_type_id=clinic.group.id,
        first_day=day,
        start_time=time(17),
        weeks=weeks,
        capacity=capacity,
        now=now,
    )


def family_of_another_patient(clinic, name):
    patient = create_user(Role.PATIENT, therapist=clinic.therapist, name=f"Patient {name}")
    member = create_user(Role.FAMILY, name=name)
    from tests.factories import create_consent

    create_consent(patient, member)
    return patient, member


def take(patient, member, appointment, now):
    return booking.book_group_seat(
        actor=member, patient_id=patient.id, appointment_id=appointment.id, now=now
    )


def full_group(clinic, now):
    """A group of two places, both taken (the clinic's family, then Bea Two's); returns it
    and the clinic's family's seat."""
    (group,) = schedule(clinic, now, capacity=2)
    seat = take(clinic.patient, clinic.family, group, now)
    take(*family_of_another_patient(clinic, "Bea Two"), group, now)
    return group, seat


def test_weekly_group_stays_at_5pm_local_across_dst(clinic):
    before = datetime(2026, 10, 20, 12, tzinfo=UTC)
    groups = schedule(clinic, before, weeks=3, day=date(2026, 10, 28))
    assert [g.starts_at.hour for g in groups] == [21, 22, 22]
    assert len({g.series_id for g in groups}) == 1


def test_a_group_time_in_the_spring_forward_gap_is_refused(clinic):
    with pytest.raises(ValidationError, match="does not exist"):
        booking.schedule_group(
            actor=clinic.therapist,
            session_type_id=clinic.group.id,
            first_day=date(2026, 3, 8),
            start_time=time(2, 30),
            weeks=1,
            now=datetime(2026, 3, 1, tzinfo=UTC),
        )
    assert count(Appointment) == 0


def test_a_family_takes_one_seat_and_a_full_group_refuses(clinic, now):
    (group,) = schedule(clinic, now, capacity=2)
    take(clinic.patient, clinic.family, group, now)
    with pytest.raises(ValidationError):
        take(clinic.patient, clinic.family, group, now)
    p2, m2 = family_of_another_patient(clinic, "Bea Two")
    take(p2, m2, group, now)
    p3, m3 = family_of_another_patient(clinic, "Cal Three")
    with pytest.raises(Conflict):
        take(p3, m3, group, now)
    assert len(group.active_seats) == 2


def test_a_groups_ics_and_email_carry_no_other_familys_data(clinic, now):
    (group,) = schedule(clinic, now)
    take(clinic.patient, clinic.family, group, now)
    p2, m2 = family_of_another_patient(clinic, "Bea Okafor")
    take(p2, m2, group, now)
    mail = next(m for m in emails("booking_confirmed") if m.to_address == m2.email)
    for text in (mail.attachment_data.decode(), mail.text_body, mail.html_body):
        assert "Maria" not in text and "Jordan" not in text and "Rivera" not in text


def test_waitlist_offer_claim_and_expiry(clinic, now, app_ctx):
    group, seat1 = full_group(clinic, now)
    p3, m3 = family_of_another_patient(clinic, "Cal Three")
    p4, m4 = family_of_another_patient(clinic, "Dee Four")
    first = booking.join_waitlist(actor=m3, patient_id=p3.id, appointment_id=group.id, now=now)
    second = booking.join_waitlist(
        actor=m4, patient_id=p4.id, appointment_id=group.id, now=now + timedelta(minutes=1)
    )
    booking.cancel_seat(actor=clinic.family, seat_id=seat1.id, now=now)
    assert first.status == WaitlistStatus.OFFERED
    assert first.offered_until == now + timedelta(hours=12)
    (offer,) = emails("waitlist_offer")
    assert offer.to_address == m3.email and "/booking/claim/" in offer.text_body
    # the held seat is not free for others
    with pytest.raises(Conflict):
        take(p4, m4, group, now)
    # the hold runs out: it passes to the next
    later = now + timedelta(hours=12)
    with pytest.raises(ValidationError, match="ended"):
        booking.claim_offer(actor=m3, entry_id=first.id, now=later)
    assert booking.expire_offers(later) == 1
    assert first.status == WaitlistStatus.EXPIRED and second.status == WaitlistStatus.OFFERED
    seat = booking.claim_offer(actor=m4, entry_id=second.id, now=later + timedelta(hours=1))
    assert seat.patient_id == p4.id and second.status == WaitlistStatus.CLAIMED
    assert len(group.active_seats) == 2


def test_the_booking_sweep_only_flushes_and_the_mail_sender_commits_after_it(
    mail_app, smtp_server, now, monkeypatch
):
    from familylink import _booking_sweep

    with mail_app.app_context():
        clinic = create_clinic()
        (group,) = schedule(clinic, now, capacity=2)
        seat = take(clinic.patient, clinic.family, group, now)
        take(*family_of_another_patient(clinic, "Ada One"), group, now)
        p2, m2 = family_of_another_patient(clinic, "Bea Two")
        p3, m3 = family_of_another_patient(clinic, "Cal Three")
        first = booking.join_waitlist(actor=m2, patient_id=p2.id, appointment_id=group.id, now=now)
        second = booking.join_waitlist(
            actor=m3, patient_id=p3.id, appointment_id=group.id, now=now + timedelta(minutes=1)
        )
        booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=now)
        db.session.commit()
        ids = first.id, second.id
        later = now + timedelta(hours=12)
        assert booking.sweep(later) == 1
        db.session.rollback()  # services never commit: the caller decides
        statuses = [db.session.get(WaitlistEntry, i).status for i in ids]
        assert statuses == [WaitlistStatus.OFFERED, WaitlistStatus.WAITING]

    def a_later_hook_that_fails(now):
        db.session.rollback()

    hooks = [_booking_sweep, a_later_hook_that_fails]
    monkeypatch.setitem(mail_app.extensions, "familylink_sweeps", hooks)
    result = mail_app.test_cli_runner().invoke(args=["mail", "send", "--now", later.isoformat()])
    assert result.exit_code == 0, result.output
    with mail_app.app_context():
        statuses = [db.session.get(WaitlistEntry, i).status for i in ids]
        assert statuses == [WaitlistStatus.EXPIRED, WaitlistStatus.OFFERED]


def test_someone_elses_waitlist_offer_is_not_found(clinic, now):
    (group,) = schedule(clinic, now, capacity=2)
    take(clinic.patient, clinic.family, group, now)
    p2, m2 = family_of_another_patient(clinic, "Bea Two")
    take(p2, m2, group, now)
    p3, m3 = family_of_another_patient(clinic, "Cal Three")
    entry = booking.join_waitlist(actor=m3, patient_id=p3.id, appointment_id=group.id, now=now)
    with pytest.raises(NotFound):
        booking.claim_offer(actor=m2, entry_id=entry.id, now=now)


def test_another_therapists_group_and_a_waitlist_for_non_family_are_not_found(clinic, now):
    group, _ = full_group(clinic, now)
    other = create_user(Role.THERAPIST, name="Dr Other")
    stranger = create_user(Role.PATIENT, therapist=other, name="Patient Elsewhere")
    member = create_user(Role.FAMILY, name="Eve Elsewhere")
    from tests.factories import create_consent

    create_consent(stranger, member)
    # A group of another therapist looks like no group at all, to book or to wait for.
    with pytest.raises(NotFound):
        take(stranger, member, group, now)
    with pytest.raises(NotFound):
        booking.join_waitlist(
            actor=member, patient_id=stranger.id, appointment_id=group.id, now=now
        )
    # Only a family member joins a waitlist; the refusal is recorded by the gate.
    with pytest.raises(NotFound):
        booking.join_waitlist(
            actor=clinic.therapist, patient_id=clinic.patient.id, appointment_id=group.id, now=now
        )
    denied = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "access.denied", AuditEvent.actor_id == clinic.therapist.id
        )
    ).all()
    assert [e.patient_id for e in denied] == [clinic.patient.id]
    assert count(WaitlistEntry) == 0


def test_seat_count_is_unchanged_by_a_refused_booking(clinic, now):
    (group,) = schedule(clinic, now, capacity=2)
    before = count(AppointmentFamily)
    with pytest.raises(NotFound):
        booking.book_group_seat(
            actor=clinic.family, patient_id=clinic.patient.id, appointment_id=group.id + 99, now=now
        )
    assert count(AppointmentFamily) == before


@pytest.mark.parametrize("minutes", [0, 10, 30])
def test_slots_keep_the_programs_buffer_after_a_booked_session(clinic, now, minutes):
    from familylink.services.program import program_row

    program_row().buffer_minutes = minutes
    db.session.flush()
    seat = book(clinic, now)
    ends = seat.appointment.ends_at
    later = [
        s for s in booking.slots_for(clinic.therapist.id, clinic.private, now=now) if s >= ends
    ]
    assert later and later[0] - ends >= timedelta(minutes=minutes)
    day_slots = [s for s in later if s.date() == ends.date()]
    if day_slots:
        assert day_slots[0] - ends == timedelta(minutes=minutes)


def test_the_buffer_setting_is_checked(app_ctx):
    from familylink.services.program import get_program, update_program

    settings = get_program()
    args = dict(
        name="P",
        sender_name="S",
        timezone=settings.timezone,
        reminder_offsets_hours=[48],
        cancellation_window_hours=24,
        booking_horizon_days=28,
        minimum_notice_hours=12,
        waitlist_hold_hours=12,
        actor=None,
        now=NOON,
    )
    with pytest.raises(ValidationError) as error:
        update_program(**args, buffer_minutes=500)
    assert error.value.field == "buffer_minutes"
    update_program(**args, buffer_minutes=5)
    assert get_program().buffer_minutes == 5


def test_the_calendar_shows_who_is_coming_who_may_come_and_whose_consent_ends_soon(clinic, now):
    from tests.factories import create_consent

    seat = book(clinic, now)
    uncle = create_user(Role.FAMILY, name="Sam Uncle")
    create_consent(
        clinic.patient, uncle, scopes=("scheduling",), expires_at=now + timedelta(days=5)
    )
    aunt = create_user(Role.FAMILY, name="Ann Aunt")
    create_consent(clinic.patient, aunt, scopes=("progress",))  # may not take part
    appointments, people = booking.therapist_calendar(
        clinic.therapist, now - timedelta(days=1), now + timedelta(days=30), now=now
    )
    assert [a.id for a in appointments] == [seat.appointment_id]
    who = people[seat.id]
    assert [(m.user.name, m.ending_soon) for m in who.coming] == [("Maria Rivera", False)]
    assert who.coming[0].scopes == ("scheduling",)
    assert [(m.user.name, m.ending_soon) for m in who.not_coming] == [("Sam Uncle", True)]
    assert who.not_allowed == []
    db.session.commit()  # rows recorded outside an action are written at the commit
    viewed = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "patient_data.viewed")
    ).all()
    assert [(v.patient_id, v.detail["page"]) for v in viewed] == [(clinic.patient.id, "calendar")]


def test_the_calendar_of_another_therapist_shows_nothing_of_this_one(clinic, now):
    book(clinic, now)
    other = create_user(Role.THERAPIST)
    appointments, people = booking.therapist_calendar(
        other, now - timedelta(days=1), now + timedelta(days=30), now=now
    )
    assert appointments == [] and people == {}


def test_the_therapist_may_move_a_session_late_but_not_onto_another(clinic, now):
    first = book(clinic, now, starts_at=first_slot(clinic, now, index=3))
    other = book(clinic, now, starts_at=first_slot(clinic, now, index=6))
    late = first.appointment.starts_at - timedelta(hours=1)
    with pytest.raises(Conflict):
        booking.reschedule(
            actor=clinic.therapist,
            seat_id=first.id,
            starts_at=other.appointment.starts_at,
            now=late,
        )
    target = first_slot(clinic, now, index=9)
    booking.reschedule(actor=clinic.therapist, seat_id=first.id, starts_at=target, now=late)
    assert first.appointment.starts_at == target and first.appointment.sequence == 1
    (mail,) = emails("booking_rescheduled")
    assert mail.to_address == clinic.family.email


def test_the_therapists_move_week_offers_what_the_move_accepts_inside_the_notice(clinic, now):
    """The therapist can always reschedule: the week they move in offers the times inside
    the families' minimum notice, which `reschedule` accepts from them; a family member's
    week keeps the notice."""
    seat = book(clinic, now, starts_at=first_slot(clinic, now, index=10))
    soon = datetime(2026, 11, 18, 18, 0, tzinfo=UTC)  # 1:00 PM in New York, an hour away
    zone = "America/New_York"

    def offered(actor) -> list[datetime]:
        week = booking.week_of_moves(seat.appointment, actor=actor, now=now, zone=zone)
        return [s for d in week.days for s in d.slots]

    assert soon not in offered(clinic.family)
    assert soon in offered(clinic.therapist)
    with pytest.raises(ValidationError, match="That time is not available"):
        booking.reschedule(actor=clinic.family, seat_id=seat.id, starts_at=soon, now=now)
    booking.reschedule(actor=clinic.therapist, seat_id=seat.id, starts_at=soon, now=now)
    assert seat.appointment.starts_at == soon


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Pacific/Honolulu", "Asia/Tokyo", "Pacific/Kiritimati"]
)
def test_each_week_offers_exactly_the_free_times_of_its_seven_local_days(clinic, now, zone):
    """A week picker's week (Monday to Sunday in the viewer's zone) computes only the
    program's days that hold it, up to the day of its last instant: every week offers
    exactly the horizon's free times whose local day is one of its days, for a viewer in
    the program's zone, behind it or a day ahead of it, with hours up to midnight."""
    from tests.booking_setup import add_weekday_hours

    add_weekday_hours(clinic.therapist, start=time(0), end=time(2))
    add_weekday_hours(clinic.therapist, start=time(21), end=time(23, 59))
    tz = ZoneInfo(zone)
    free = booking.slots_for(clinic.therapist.id, clinic.private, now=now)
    shown, week = [], booking.week_of_slots(clinic.therapist.id, clinic.private, now=now, zone=zone)
    while True:
        assert all(week.start <= d.day < week.start + timedelta(days=7) for d in week.days)
        for day in week.days:
            assert all(s.astimezone(tz).date() == day.day for s in day.slots), zone
            shown.extend(day.slots)
        if week.next is None:
            break
        week = booking.week_of_slots(
            clinic.therapist.id, clinic.private, now=now, zone=zone, week=week.next
        )
    assert shown == free


def test_a_turned_off_session_type_cannot_be_booked_or_scheduled(clinic, now):
    admin = create_user(Role.ADMIN)
    seat = book(clinic, now, starts_at=first_slot(clinic, now, index=20))
    later = first_slot(clinic, now, index=22)
    for kind in (clinic.private, clinic.group):
        booking.set_session_type_active(actor=admin, session_type_id=kind.id, active=False, now=now)
    assert clinic.private not in booking.private_session_types()
    with pytest.raises(ValidationError):
        book(clinic, now, starts_at=later)
    with pytest.raises(ValidationError):
        booking.schedule_group(
            actor=clinic.therapist,
            session_type_id=clinic.group.id,
            first_day=date(2026, 12, 2),
            start_time=time(17),
            weeks=1,
            now=now,
        )
    # What was booked before goes ahead: it can still be moved and cancelled.
    booking.reschedule(actor=clinic.family, seat_id=seat.id, starts_at=later, now=now)
    booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=now)
    assert seat.status == SeatStatus.CANCELLED


def test_only_the_admin_edits_or_turns_off_session_types(clinic, now):
    fields = dict(
        name="Family meeting",
        duration_minutes=45,
        capacity=1,
        mode="in_person",
        location="Room 9",
        cancellation_window_hours=None,
        now=now,
    )
    with pytest.raises(NotFound):
        booking.update_session_type(
            actor=clinic.therapist, session_type_id=clinic.private.id, **fields
        )
    with pytest.raises(NotFound):
        booking.set_session_type_active(
            actor=clinic.family, session_type_id=clinic.private.id, active=False, now=now
        )
    admin = create_user(Role.ADMIN)
    with pytest.raises(ValidationError) as error:
        booking.update_session_type(
            actor=admin, session_type_id=clinic.private.id, **{**fields, "capacity": 4}
        )
    assert error.value.field == "capacity"
    changed = booking.update_session_type(actor=admin, session_type_id=clinic.private.id, **fields)
    assert (changed.name, changed.duration_minutes, changed.location) == (
        "Family meeting",
        45,
        "Room 9",
    )
    slots = booking.slots_for(clinic.therapist.id, changed, now=now)
    assert slots[1] - slots[0] == timedelta(minutes=45 + 10)


def test_no_session_type_is_as_long_as_the_overlap_queries_bound(clinic, now):
    """Calendar and busy-time queries look back LONGEST_APPOINTMENT for appointments still
    running; a session type must never be allowed to last that long."""
    assert timedelta(minutes=booking.LONGEST_SESSION_MINUTES) < booking.LONGEST_APPOINTMENT
    admin = create_user(Role.ADMIN)
    fields = dict(
        name="Long day",
        capacity=1,
        mode="in_person",
        location="Room 9",
        cancellation_window_hours=None,
        now=now,
    )
    longest = booking.LONGEST_SESSION_MINUTES
    with pytest.raises(ValidationError) as error:
        booking.update_session_type(
            actor=admin,
            session_type_id=clinic.private.id,
            duration_minutes=longest + 1,
            **fields,
        )
    assert error.value.field == "duration_minutes"
    changed = booking.update_session_type(
        actor=admin, session_type_id=clinic.private.id, duration_minutes=longest, **fields
    )
    assert changed.duration_minutes == longest


def test_while_an_offer_is_held_every_path_counts_the_same_free_places(clinic, now, app_ctx):
    """Issue 19: booking counted the held offer, the waitlist and the groups page did not."""
    group, seat1 = full_group(clinic, now)
    p3, m3 = family_of_another_patient(clinic, "Cal Three")
    held = booking.join_waitlist(actor=m3, patient_id=p3.id, appointment_id=group.id, now=now)
    booking.cancel_seat(actor=clinic.family, seat_id=seat1.id, now=now)
    assert held.status == WaitlistStatus.OFFERED
    p4, m4 = family_of_another_patient(clinic, "Dee Four")
    with pytest.raises(Conflict):
        take(p4, m4, group, now)
    # … so the family may join the waitlist instead of being sent round in circles.
    joined = booking.join_waitlist(actor=m4, patient_id=p4.id, appointment_id=group.id, now=now)
    assert joined.status == WaitlistStatus.WAITING
    assert booking.free_places(group, now=now) == 0
    assert booking.free_places_of([group], now=now) == {group.id: 0}
    # The family offered the place still counts it as free for itself.
    seat = booking.claim_offer(actor=m3, entry_id=held.id, now=now)
    assert seat.patient_id == p3.id and booking.free_places(group, now=now) == 0


def test_a_groups_taken_places_are_its_booked_seats(clinic, now, app_ctx):
    """The calendar's "1 of 2 families": a cancelled seat or a held offer takes no place."""
    group, seat = full_group(clinic, now)
    private = book(clinic, now).appointment
    assert booking.taken_places_of([group, private]) == {group.id: 2}
    booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=now)
    assert booking.taken_places_of([group]) == {group.id: 1}


def test_the_free_slots_read_the_availability_and_the_bookings_in_one_statement(
    clinic, now, count_queries
):
    booking.slots_for(clinic.therapist.id, clinic.private, now=now)  # settings read once
    with count_queries() as counter:
        free = booking.slots_for(clinic.therapist.id, clinic.private, now=now)
    assert free and counter.count == 1
    # All three kinds come back from the one statement: a day off takes that day's times
    # away, and a booking its own time.
    zone = ZoneInfo(get_program().timezone)
    day = free[0].astimezone(zone).date()
    db.session.add(AvailabilityOverride(therapist_id=clinic.therapist.id, day=day, off=True))
    db.session.flush()
    left = booking.slots_for(clinic.therapist.id, clinic.private, now=now)
    assert left and {s.astimezone(zone).date() for s in left} == {
        s.astimezone(zone).date() for s in free
    } - {day}
    db.session.add(
        Appointment.private(clinic.private, left[0], clinic.therapist.id, by=clinic.family, at=now)
    )
    db.session.flush()
    with count_queries() as counter:
        fewer = booking.slots_for(clinic.therapist.id, clinic.private, now=now)
    assert counter.count == 1 and left[0] not in fewer and set(fewer) < set(left)


def test_checking_one_time_reads_only_the_bookings_around_it(clinic, now, monkeypatch):
    """A booking's check of its time (`slots_for` with `near`) reads the therapist's
    bookings of the days around it only, so it costs the same however many sessions are
    booked ahead, and finds exactly what the whole horizon's answer finds on those days."""
    from familylink.services.booking import slots

    free = booking.slots_for(clinic.therapist.id, clinic.private, now=now)
    taken = free[1::2]  # booked all through the horizon, each beside a free time
    db.session.add_all(
        Appointment.private(clinic.private, start, clinic.therapist.id, by=clinic.family, at=now)
        for start in taken
    )
    db.session.flush()
    everything = booking.slots_for(clinic.therapist.id, clinic.private, now=now)
    assert everything == free[0::2]
    read = []  # the bookings each check read (with the availability, in one statement)
    reads = slots._availability_and_busy

    def spy(*args, **kwargs):
        windows, overrides, booked = reads(*args, **kwargs)
        read.append(booked)
        return windows, overrides, booked

    monkeypatch.setattr(slots, "_availability_and_busy", spy)
    zone = ZoneInfo(get_program().timezone)
    for near in free[::3]:
        around = booking.slots_for(clinic.therapist.id, clinic.private, now=now, near=near)
        days = {near.astimezone(zone).date() + timedelta(days=d) for d in (-1, 0, 1)}
        assert around == [s for s in everything if s.astimezone(zone).date() in days]
        far = [start for start, _ in read[-1] if abs(start - near) > timedelta(days=4)]
        assert read[-1] and not far, (near, far[:3], len(read[-1]))
        assert len(read[-1]) < len(taken) / 3


def test_each_place_freed_is_offered_to_a_different_family(clinic, now, app_ctx):
    (group,) = schedule(clinic, now, capacity=2)
    seats = [take(clinic.patient, clinic.family, group, now)]
    p2, m2 = family_of_another_patient(clinic, "Bea Two")
    seats.append(take(p2, m2, group, now))
    waiting = []
    for name in ("Cal Three", "Dee Four"):
        patient, member = family_of_another_patient(clinic, name)
        waiting.append(
            booking.join_waitlist(
                actor=member, patient_id=patient.id, appointment_id=group.id, now=now
            )
        )
    booking.cancel_seat(actor=clinic.family, seat_id=seats[0].id, now=now)
    booking.cancel_seat(actor=m2, seat_id=seats[1].id, now=now)
    assert [w.status for w in waiting] == [WaitlistStatus.OFFERED, WaitlistStatus.OFFERED]


def test_an_offer_past_its_hold_is_not_shown_as_held_before_the_sweep_runs(clinic, now, app_ctx):
    """Issue 19: the waitlist place counted an expired offer the sweep had not reached as a
    place still held; "held" has one definition (`free_places`), and the sweep's answer
    (off the waitlist) holds from the instant the hold ends."""
    group, seat1 = full_group(clinic, now)
    p3, m3 = family_of_another_patient(clinic, "Cal Three")
    offered = booking.join_waitlist(actor=m3, patient_id=p3.id, appointment_id=group.id, now=now)
    p4, m4 = family_of_another_patient(clinic, "Dee Four")
    waiting = booking.join_waitlist(
        actor=m4, patient_id=p4.id, appointment_id=group.id, now=now + timedelta(minutes=1)
    )
    booking.cancel_seat(actor=clinic.family, seat_id=seat1.id, now=now)
    assert booking.waitlist_places(m3, p3, [group.id], now=now) == {group.id: (offered.id, 0)}
    after_hold = offered.offered_until
    assert offered.status == WaitlistStatus.OFFERED  # not swept yet
    assert booking.waitlist_places(m3, p3, [group.id], now=after_hold) == {}
    assert booking.waitlist_places(m4, p4, [group.id], now=after_hold) == {
        group.id: (waiting.id, 1)
    }
    booking.expire_offers(after_hold)
    assert booking.waitlist_places(m3, p3, [group.id], now=after_hold) == {}


def test_families_see_their_place_on_the_waitlist_and_can_leave_it(clinic, now, app_ctx):
    group, seat1 = full_group(clinic, now)
    entries = []
    for n, name in enumerate(("Cal Three", "Dee Four", "Eve Five")):
        patient, member = family_of_another_patient(clinic, name)
        entry = booking.join_waitlist(
            actor=member,
            patient_id=patient.id,
            appointment_id=group.id,
            now=now + timedelta(minutes=n),
        )
        entries.append((patient, member, entry))
    (p5, m5, last) = entries[2]
    assert booking.waitlist_places(m5, p5, [group.id], now=now) == {group.id: (last.id, 3)}
    booking.cancel_seat(actor=clinic.family, seat_id=seat1.id, now=now)
    (p3, m3, first) = entries[0]
    assert booking.waitlist_places(m3, p3, [group.id], now=now) == {group.id: (first.id, 0)}
    assert booking.waitlist_places(m5, p5, [group.id], now=now) == {group.id: (last.id, 2)}
    # The family offered the place leaves: the place goes to the next family waiting.
    booking.leave_waitlist(actor=m3, entry_id=first.id, now=now)
    assert first.status == WaitlistStatus.LEFT
    assert entries[1][2].status == WaitlistStatus.OFFERED
    assert booking.waitlist_places(m5, p5, [group.id], now=now) == {group.id: (last.id, 1)}
    with pytest.raises(ValidationError, match="no longer on this waitlist"):
        booking.leave_waitlist(actor=m3, entry_id=first.id, now=now)
    with pytest.raises(NotFound):
        booking.leave_waitlist(actor=m5, entry_id=first.id, now=now)


def test_a_family_whose_offer_ran_out_unswept_joins_the_waitlist_again(clinic, now, app_ctx):
    """An offer past its hold is nobody's (`groups._held`), swept or not: a family joining
    again is put back in line, not handed the offer that ended."""
    group, seat1 = full_group(clinic, now)
    p3, m3 = family_of_another_patient(clinic, "Cal Three")
    offered = booking.join_waitlist(actor=m3, patient_id=p3.id, appointment_id=group.id, now=now)
    booking.cancel_seat(actor=clinic.family, seat_id=seat1.id, now=now)
    after_hold = offered.offered_until
    take(*family_of_another_patient(clinic, "Dee Four"), group, after_hold)  # full again
    assert offered.status == WaitlistStatus.OFFERED  # not swept yet
    again = booking.join_waitlist(
        actor=m3, patient_id=p3.id, appointment_id=group.id, now=after_hold
    )
    assert again.id != offered.id and again.status == WaitlistStatus.WAITING
    assert booking.waitlist_places(m3, p3, [group.id], now=after_hold) == {group.id: (again.id, 1)}


def test_a_family_with_a_seat_cannot_join_the_groups_waitlist(clinic, now, app_ctx):
    group, _seat = full_group(clinic, now)
    with pytest.raises(ValidationError, match="already has a seat"):
        booking.join_waitlist(
            actor=clinic.family, patient_id=clinic.patient.id, appointment_id=group.id, now=now
        )
    assert count(WaitlistEntry) == 0


def test_a_freed_place_is_not_offered_to_a_family_already_seated(clinic, now, app_ctx):
    """An entry of a family that holds a seat (joined before that was refused) is passed
    over: the place goes to the next family, who can take it."""
    group, seated = full_group(clinic, now)
    other = next(s for s in group.active_seats if s.id != seated.id)
    stale = WaitlistEntry(
        appointment_id=group.id,
        patient_id=clinic.patient.id,
        family_user_id=clinic.family.id,
        created_at=now - timedelta(minutes=5),
    )
    db.session.add(stale)
    db.session.flush()
    p3, m3 = family_of_another_patient(clinic, "Cal Three")
    waiting = booking.join_waitlist(actor=m3, patient_id=p3.id, appointment_id=group.id, now=now)
    booking.cancel_seat(actor=other.attendees[0].user, seat_id=other.id, now=now)
    assert stale.status == WaitlistStatus.WAITING
    assert waiting.status == WaitlistStatus.OFFERED
    (offer,) = emails("waitlist_offer")
    assert offer.to_address == m3.email
    seat = booking.claim_offer(actor=m3, entry_id=waiting.id, now=now + timedelta(minutes=1))
    assert seat.patient_id == p3.id


@pytest.mark.parametrize("late", [timedelta(0), timedelta(hours=3)])
def test_the_waitlist_of_a_group_that_has_started_is_closed(clinic, now, app_ctx, late):
    group, _seat = full_group(clinic, now)
    p3, m3 = family_of_another_patient(clinic, "Cal Three")
    with pytest.raises(ValidationError, match="already started"):
        booking.join_waitlist(
            actor=m3, patient_id=p3.id, appointment_id=group.id, now=group.starts_at + late
        )
    assert count(WaitlistEntry) == 0


def test_late_cancelled_is_not_marked_before_the_session_starts(clinic, now, app_ctx):
    """Marked as attendance is, once the session has started: before then the place is
    cancelled (`cancel_seat`: freed under its lock, offered on, the family told)."""
    group, seat = full_group(clinic, now)
    p3, m3 = family_of_another_patient(clinic, "Cal Three")
    waiting = booking.join_waitlist(actor=m3, patient_id=p3.id, appointment_id=group.id, now=now)
    with pytest.raises(ValidationError, match="once the session has started"):
        booking.mark_attendance(
            actor=clinic.therapist, seat_id=seat.id, value="late_cancelled", now=now
        )
    assert seat.status == SeatStatus.BOOKED and seat.cancelled_at is None
    assert booking.free_places(group, now=now) == 0
    assert waiting.status == WaitlistStatus.WAITING
    assert not db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "attendance.marked")
    ).all()


def test_late_cancelled_is_not_marked_on_a_cancelled_seat(clinic, now):
    seat = book(clinic, now)
    booking.therapist_cancel(actor=clinic.therapist, seat_id=seat.id, reason="other", now=now)
    assert seat.status == SeatStatus.CANCELLED  # on time: not to be turned into a late one
    after = seat.appointment.starts_at + timedelta(minutes=5)
    with pytest.raises(ValidationError, match="already cancelled"):
        booking.mark_attendance(
            actor=clinic.therapist, seat_id=seat.id, value="late_cancelled", now=after
        )
    assert seat.status == SeatStatus.CANCELLED


def test_late_cancelled_is_marked_on_a_booked_seat_once_the_session_started(clinic, now):
    seat = book(clinic, now)
    after = seat.appointment.starts_at + timedelta(minutes=5)
    booking.mark_attendance(
        actor=clinic.therapist, seat_id=seat.id, value="late_cancelled", now=after
    )
    assert seat.status == SeatStatus.LATE_CANCELLED and seat.cancelled_at == after
