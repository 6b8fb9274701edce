"""Appointment reminders, swept and delivered to a real SMTP server on loopback."""

from __future__ import annotations

import gc
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    AppointmentAttendee,
    AuditEvent,
    OutboxEmail,
    OutboxStatus,
    Role,
    User,
)
from familylink.services import booking, mail, outbox_admin, reminders
from familylink.services.errors import NotFound
from familylink.services.timefmt import format_span
from tests.booking_setup import add_appointment, create_clinic, create_session_types, family_seat
from tests.factories import create_consent, create_user


@pytest.fixture
def clinic(mail_app):
    with mail_app.app_context():
        yield create_clinic()
        db.session.rollback()


def book_ahead(clinic, now, *, hours=72):
    """A private session booked at `now` by the family member, at least `hours` ahead."""
    slots = booking.slots_for(clinic.therapist.id, clinic.private, now=now)
    starts_at = next(s for s in slots if s >= now + timedelta(hours=hours))
    seat = booking.book_private(
        actor=clinic.family,
        patient_id=clinic.patient.id,
        session_type_id=clinic.private.id,
        starts_at=starts_at,
        now=now,
    )
    db.session.commit()
    return seat


def reminder_rows():
    return db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.kind == "reminder").order_by(OutboxEmail.id)
    ).all()


def sweep_and_send(now):
    queued = reminders.run_sweep(now)
    mail.send_pending(now=now)
    return queued


def delivered(smtp_server):
    """The reminders that reached the server (booking confirmations left out)."""
    return [m for m in smtp_server.parsed() if m["Subject"] == "Your appointment reminder"]


def delivered_to(smtp_server):
    return sorted(m["To"] for m in delivered(smtp_server))


def test_sweeping_twice_sends_each_reminder_once(clinic, smtp_server, now):
    seat = book_ahead(clinic, now)
    moment = seat.appointment.starts_at - timedelta(hours=48)
    assert sweep_and_send(moment) == 2
    assert sweep_and_send(moment + timedelta(minutes=1)) == 0
    assert delivered_to(smtp_server) == sorted([clinic.family.email, clinic.patient.email])
    keys = {row.dedupe_key for row in reminder_rows()}
    appointment = seat.appointment
    assert keys == {
        f"reminder:{appointment.id}-0:{clinic.family.id}:48",
        f"reminder:{appointment.id}-0:{clinic.patient.id}:48",
    }


def test_nothing_is_due_before_the_reminder_moment(clinic, now):
    seat = book_ahead(clinic, now)
    moment = seat.appointment.starts_at - timedelta(hours=48)
    assert reminders.run_sweep(moment - timedelta(minutes=1)) == 0


def test_two_workers_sweeping_at_once_queue_each_reminder_once(clinic, mail_app, smtp_server, now):
    seat = book_ahead(clinic, now)
    moment = seat.appointment.starts_at - timedelta(hours=2)
    start = threading.Barrier(2)
    errors = []

    def worker():
        try:
            with mail_app.app_context():
                start.wait()
                reminders.run_sweep(moment)
                db.session.commit()  # as the worker does after each sweep
                mail.send_pending(now=moment)
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert delivered_to(smtp_server) == sorted([clinic.family.email, clinic.patient.email])


def test_both_offsets_each_send_one_reminder_per_person(clinic, smtp_server, now):
    seat = book_ahead(clinic, now)
    starts_at = seat.appointment.starts_at
    for hours in (48, 2):
        sweep_and_send(starts_at - timedelta(hours=hours))
        sweep_and_send(starts_at - timedelta(hours=hours) + timedelta(minutes=30))
    assert len(delivered(smtp_server)) == 4


def test_a_rescheduled_session_gets_reminders_for_its_new_time_only(clinic, smtp_server, now):
    seat = book_ahead(clinic, now)
    appointment = seat.appointment
    old_moment = appointment.starts_at - timedelta(hours=48)
    reminders.run_sweep(old_moment)  # queued, not yet sent
    slots = booking.slots_for(clinic.therapist.id, clinic.private, now=old_moment)
    new_start = next(s for s in slots if s >= appointment.starts_at + timedelta(days=2))
    booking.reschedule(actor=clinic.family, seat_id=seat.id, starts_at=new_start, now=old_moment)
    db.session.commit()
    old_rows = reminder_rows()
    assert {row.status for row in old_rows} == {OutboxStatus.CANCELLED}
    mail.send_pending(now=old_moment)
    assert delivered(smtp_server) == []
    assert sweep_and_send(new_start - timedelta(hours=48)) == 2
    assert delivered_to(smtp_server) == sorted([clinic.family.email, clinic.patient.email])
    (family_mail,) = [m for m in delivered(smtp_server) if m["To"] == clinic.family.email]
    text = family_mail.get_body(("plain",)).get_content()
    new_end = new_start + timedelta(minutes=clinic.private.duration_minutes)
    assert format_span(new_start, new_end, clinic.family.timezone) in text


def test_a_cancelled_session_gets_no_reminders(clinic, smtp_server, now):
    seat = book_ahead(clinic, now)
    starts_at = seat.appointment.starts_at
    reminders.run_sweep(starts_at - timedelta(hours=48))
    booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=starts_at - timedelta(hours=47))
    db.session.commit()
    assert {row.status for row in reminder_rows()} == {OutboxStatus.CANCELLED}
    assert {(row.text_body, row.html_body) for row in reminder_rows()} == {("", "")}
    assert sweep_and_send(starts_at - timedelta(hours=2)) == 0
    mail.send_pending(now=starts_at - timedelta(hours=2))
    assert delivered(smtp_server) == []


def _move_later(clinic, seat, now):
    """Reschedule the seat's session to a free time two days later, at `now`."""
    appointment = seat.appointment
    slots = booking.slots_for(clinic.therapist.id, clinic.private, now=now)
    new_start = next(s for s in slots if s >= appointment.starts_at + timedelta(days=2))
    booking.reschedule(actor=clinic.family, seat_id=seat.id, starts_at=new_start, now=now)


def _cancel(clinic, seat, now):
    booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=now)


CHANGES = {"moved": _move_later, "cancelled": _cancel}


@pytest.mark.parametrize("change", CHANGES)
def test_the_reminders_of_a_changed_session_keep_nothing_of_their_message(
    clinic, smtp_server, now, change
):
    """Cancelled, they name a time that no longer holds: nothing of them is kept, and a
    failed one is cancelled too (an admin's retry would send the old time)."""
    seat = book_ahead(clinic, now)
    mail.send_pending(now=now)  # the booking's own emails
    moment = seat.appointment.starts_at - timedelta(hours=48)
    reminders.run_sweep(moment)
    db.session.commit()
    smtp_server.handler.replies.append("550 No such mailbox")
    assert mail.send_pending(now=moment).failed == 1  # one failed, the other still sent
    CHANGES[change](clinic, seat, moment + timedelta(minutes=5))
    db.session.commit()
    rows = reminder_rows()
    db.session.expire_all()
    kept = [(r.status, r.text_body, r.html_body) for r in reminder_rows() if r.sent_at is None]
    assert kept == [(OutboxStatus.CANCELLED, "", "")]
    failed = [r for r in rows if r.sent_at is None][0]
    assert failed.last_error == "appointment changed"
    with pytest.raises(NotFound):
        outbox_admin.retry_failed(failed.id, actor=clinic.therapist, now=moment)


def test_an_ended_consent_gets_no_reminder_and_a_queued_one_is_cancelled_at_send(
    clinic, smtp_server, now
):
    seat = book_ahead(clinic, now)
    starts_at = seat.appointment.starts_at
    luis = create_user(Role.FAMILY, name="Luis Rivera")
    create_consent(
        clinic.patient, luis, now=now, expires_at=starts_at - timedelta(hours=47, minutes=30)
    )
    db.session.add(AppointmentAttendee(seat_id=seat.id, user_id=luis.id, added_at=now))
    db.session.commit()
    moment = starts_at - timedelta(hours=48)
    assert reminders.run_sweep(moment) == 3  # Maria, Luis and the patient
    mail.send_pending(now=moment + timedelta(hours=1))  # Luis's consent ended meanwhile
    assert luis.email not in delivered_to(smtp_server)
    (luis_row,) = [r for r in reminder_rows() if r.to_user_id == luis.id]
    assert luis_row.status == OutboxStatus.CANCELLED and luis_row.last_error == "consent ended"
    assert reminders.run_sweep(starts_at - timedelta(hours=2)) == 2  # not Luis
    mail.send_pending(now=starts_at - timedelta(hours=2))
    assert luis.email not in delivered_to(smtp_server)
    assert len(delivered(smtp_server)) == 4


def test_a_session_booked_an_hour_ahead_gets_no_late_two_hour_reminder(clinic, smtp_server, now):
    seat = family_seat(clinic, now + timedelta(hours=1), booked_at=now)
    assert seat.appointment.starts_at - timedelta(hours=2) > now - timedelta(hours=6)
    assert sweep_and_send(now) == 0
    assert sweep_and_send(now + timedelta(minutes=30)) == 0
    assert delivered(smtp_server) == []


def test_a_session_moved_to_an_hour_ahead_gets_no_late_two_hour_reminder(clinic, smtp_server, now):
    seat = book_ahead(clinic, now)
    booking.reschedule(
        actor=clinic.therapist, seat_id=seat.id, starts_at=now + timedelta(hours=1), now=now
    )
    db.session.commit()
    assert sweep_and_send(now + timedelta(minutes=5)) == 0
    assert delivered(smtp_server) == []


def test_a_reminder_still_queued_when_the_session_starts_is_dropped(clinic, smtp_server, now):
    seat = book_ahead(clinic, now)
    starts_at = seat.appointment.starts_at
    reminders.run_sweep(starts_at - timedelta(hours=2))
    report = mail.send_pending(now=starts_at + timedelta(minutes=1))
    assert report.cancelled == 2 and delivered(smtp_server) == []


@pytest.mark.parametrize(
    ("starts_at", "local_text", "sent_at"),
    [
        # Monday after spring-forward (2026-03-08): 10:00 EDT is 14:00 UTC; 48 h before is
        # Saturday 14:00 UTC, which is 9:00 EST there and then.
        (
            datetime(2026, 3, 9, 14, 0, tzinfo=UTC),
            "Monday, March 9, 2026, 10:00 AM to 10:50 AM EDT",
            datetime(2026, 3, 7, 14, 0, tzinfo=UTC),
        ),
        # Monday after fall-back (2026-11-01): 10:00 EST is 15:00 UTC; 48 h before is
        # Saturday 15:00 UTC, which is 11:00 EDT there and then.
        (
            datetime(2026, 11, 2, 15, 0, tzinfo=UTC),
            "Monday, November 2, 2026, 10:00 AM to 10:50 AM EST",
            datetime(2026, 10, 31, 15, 0, tzinfo=UTC),
        ),
    ],
)
def test_a_reminder_48_hours_before_a_session_after_a_dst_change_is_sent_once_at_the_right_instant(
    mail_app, smtp_server, starts_at, local_text, sent_at
):
    with mail_app.app_context():
        booked_at = starts_at - timedelta(days=10)
        therapist = create_user(Role.THERAPIST, name="Dr. Grace Lee")
        patient = create_user(Role.PATIENT, name="Jordan Rivera", therapist=therapist)
        family = create_user(Role.FAMILY, name="Maria Rivera", timezone="America/New_York")
        create_consent(patient, family, now=booked_at)
        private, _group = create_session_types()
        add_appointment(
            therapist, patient, family, private, starts_at=starts_at, booked_at=booked_at
        )
        assert sweep_and_send(sent_at - timedelta(seconds=1)) == 0
        assert sweep_and_send(sent_at) == 2
        for minutes in (1, 30, 60, 120):
            assert sweep_and_send(sent_at + timedelta(minutes=minutes)) == 0
        assert delivered_to(smtp_server) == sorted([family.email, patient.email])
        (message,) = [m for m in delivered(smtp_server) if m["To"] == family.email]
        assert local_text in message.get_body(("plain",)).get_content()
        assert "times are in Eastern Time)" in message.get_body(("plain",)).get_content()
        db.session.rollback()


def test_mail_send_with_now_delivers_the_reminders_due_then(clinic, mail_app, smtp_server, now):
    seat = book_ahead(clinic, now)
    moment = seat.appointment.starts_at - timedelta(hours=48)
    result = mail_app.test_cli_runner().invoke(args=["mail", "send", "--now", moment.isoformat()])
    assert result.exit_code == 0, result.output
    assert delivered_to(smtp_server) == sorted([clinic.family.email, clinic.patient.email])


def test_reminders_send_queues_them_once(clinic, mail_app, now):
    seat = book_ahead(clinic, now)
    moment = (seat.appointment.starts_at - timedelta(hours=2)).isoformat()
    runner = mail_app.test_cli_runner()
    first = runner.invoke(args=["reminders", "send", "--now", moment])
    second = runner.invoke(args=["reminders", "send", "--now", moment])
    assert "2 queued" in first.output and "0 queued" in second.output


def _sessions_due_at_once(clinic, sessions: int, first: datetime, now: datetime) -> datetime:
    """Book `sessions` hourly sessions from `first`; return a moment at which every one of
    them has its 48-hour reminder due, with nothing loaded and the settings cached."""
    from familylink.services.program import get_program

    for i in range(sessions):
        family_seat(clinic, first + timedelta(hours=i), booked_at=now)
    db.session.flush()
    db.session.expunge_all()  # nothing already loaded helps
    get_program()  # settings are cached between sweeps; their load is not counted
    return first + timedelta(hours=sessions - 1) - timedelta(hours=48)


def test_finding_due_reminders_takes_the_same_queries_for_one_session_or_many(clinic, now):
    from tests.conftest import QueryCounter

    def queries_for(sessions: int, first: datetime) -> int:
        moment = _sessions_due_at_once(clinic, sessions, first, now)
        with QueryCounter(db.engine) as counter:
            found = reminders.due_reminders(moment)
        assert len(found) == 2 * sessions
        return counter.count

    one = queries_for(1, now + timedelta(days=3))
    db.session.rollback()
    many = queries_for(4, now + timedelta(days=6))
    assert many == one


def test_overlapping_sweeps_queue_and_audit_each_reminder_once(clinic, mail_app, now):
    seat = book_ahead(clinic, now)
    moment = seat.appointment.starts_at - timedelta(hours=2)
    start = threading.Barrier(2)
    queued, errors = [], []

    def sweeper():
        try:
            with mail_app.app_context():
                start.wait()
                queued.append(reminders.run_sweep(moment))
                db.session.commit()  # as the worker does after each sweep
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sorted(queued) == [0, 2]
    db.session.rollback()
    rows = reminder_rows()
    events = db.session.scalars(
        select(AuditEvent.object_id).where(
            AuditEvent.action == "email.queued", AuditEvent.detail["kind"].as_string() == "reminder"
        )
    ).all()
    assert len(rows) == 2 and sorted(events) == [row.id for row in rows]


def test_a_sweep_queues_a_window_in_the_same_statements_for_one_session_or_many(clinic, now):
    from tests.conftest import QueryCounter

    def statements_for(sessions: int, first: datetime) -> int:
        moment = _sessions_due_at_once(clinic, sessions, first, now)
        with QueryCounter(db.engine) as counter:
            assert reminders.queue_due_reminders(moment) == 2 * sessions
        return counter.count

    one = statements_for(1, now + timedelta(days=3))
    db.session.rollback()
    many = statements_for(4, now + timedelta(days=6))
    assert many == one


def test_the_keys_already_queued_are_read_in_one_statement_however_many(clinic, now):
    """Issue 18: on SQLite the lookup took a statement per 500 keys (20 for 10,000)."""
    from tests.conftest import QueryCounter

    seat = book_ahead(clinic, now)
    assert reminders.queue_due_reminders(seat.appointment.starts_at - timedelta(hours=2)) == 2
    queued = [row.dedupe_key for row in reminder_rows()]
    keys = [reminders.reminder_key(0, 0, i, 2) for i in range(1200)] + queued
    with QueryCounter(db.engine) as counter:
        assert reminders._already_queued(keys) == set(queued)
    assert counter.count == 1


def test_a_reminder_names_the_therapist_once(clinic, smtp_server, now):
    """Issue 20: reminders said "with Dr. Grace Lee" twice (the title, then a "With:" line)."""
    seat = book_ahead(clinic, now)
    sweep_and_send(seat.appointment.starts_at - timedelta(hours=48))
    name = clinic.therapist.name
    messages = delivered(smtp_server)
    assert len(messages) == 2
    for message in messages:
        for kind in ("plain", "html"):
            assert message.get_body((kind,)).get_content().count(name) == 1, kind


def test_a_reminder_greets_each_person_by_their_first_name_alone(clinic, smtp_server, now):
    """The sweep addresses plain values, not accounts: the greeting must still follow an
    account's first-name rule, and never show a surname."""
    seat = book_ahead(clinic, now)
    sweep_and_send(seat.appointment.starts_at - timedelta(hours=48))
    people = {person.email: person for person in (clinic.family, clinic.patient)}
    messages = delivered(smtp_server)
    assert sorted(m["To"] for m in messages) == sorted(people)
    for message in messages:
        person = people[message["To"]]
        first, surname = person.name.split()[0], person.name.split()[-1]
        assert first != surname
        for kind in ("plain", "html"):
            text = message.get_body((kind,)).get_content()
            assert f"Hello {first}," in text and surname not in text, kind


def test_a_session_ending_at_midnight_reads_to_midnight_not_the_next_days_12_am(
    clinic, smtp_server, now
):
    """Issue 20: an end at midnight read as the next day's 12:00 AM, a day late to the eye."""
    minutes = clinic.private.duration_minutes
    midnight = datetime(2026, 12, 10, 5, 0, tzinfo=UTC)  # New York's midnight after Dec 9
    seat = family_seat(clinic, midnight - timedelta(minutes=minutes), booked_at=now)
    sweep_and_send(seat.appointment.starts_at - timedelta(hours=48))
    (message,) = [m for m in delivered(smtp_server) if m["To"] == clinic.family.email]
    for kind in ("plain", "html"):
        text = message.get_body((kind,)).get_content()
        assert "Wednesday, December 9, 2026, 11:10 PM to midnight EST" in text, kind
        assert "12:00 AM" not in text and "December 10" not in text, kind


def test_a_sweep_renders_the_templates_as_often_for_one_session_or_many(clinic, now, monkeypatch):
    """Issue 18: rendering each session's reminder was over half of a sweep. Sessions
    differing only in what a reminder prints (time, title, place) share one render."""
    from familylink.services.mail import _render

    renders = []
    monkeypatch.setattr(mail, "_render", lambda *args: renders.append(args) or _render(*args))

    def renders_for(sessions: int, first: datetime) -> int:
        renders.clear()
        moment = _sessions_due_at_once(clinic, sessions, first, now)
        assert reminders.queue_due_reminders(moment) == 2 * sessions
        return len(renders)

    one = renders_for(1, now + timedelta(days=3))
    db.session.rollback()
    assert renders_for(4, now + timedelta(days=6)) == one == 3  # subject, text and HTML
    for row in reminder_rows():
        person = db.session.get(User, row.to_user_id)
        alone = mail._row(
            mail.Queued(row.kind, person, row.dedupe_key, context=_context_of(row, person)),
            now,
            mail._Templates(),
            mail.get_program(),
        )
        assert (row.subject, row.text_body, row.html_body) == (
            alone["subject"],
            alone["text_body"],
            alone["html_body"],
        )


def _context_of(row: OutboxEmail, person: User) -> dict:
    """What the sweep gave the reminder `row`, found again from its appointment."""
    from flask_babel import force_locale

    from familylink.models import Appointment

    appointment_id = int(row.dedupe_key.split(":")[1].split("-")[0])
    appointment = db.session.get(Appointment, appointment_id)
    with force_locale("en"):
        return reminders.reminder_context(appointment, person)


def test_a_sweep_loads_no_appointment_seat_or_attendee_object(clinic, now):
    """The sweep reads plain rows: ORM objects by the thousand cost more than the SQL (their
    load, and the garbage collector walking them afterwards)."""
    from sqlalchemy import event

    from familylink.models import Appointment, AppointmentAttendee, AppointmentFamily

    moment = _sessions_due_at_once(clinic, 3, now + timedelta(days=3), now)
    loaded = set()

    def count(session, instance):
        loaded.add(type(instance))

    event.listen(db.session(), "loaded_as_persistent", count)
    try:
        assert reminders.queue_due_reminders(moment) == 6
    finally:
        event.remove(db.session(), "loaded_as_persistent", count)
    assert not loaded & {Appointment, AppointmentFamily, AppointmentAttendee}
    rows = reminder_rows()
    assert len(rows) == 6 and all("Family session with" in row.text_body for row in rows)


def test_a_sweep_writes_the_time_of_sessions_starting_together_once(clinic, now, monkeypatch):
    """Sessions of a sweep start at the same few times: each span is written once per
    zone and language, not once per session (Babel and the catalogue, thousands of times)."""
    other = create_user(Role.THERAPIST, name="Dr. Sam Ortiz")
    starts_at = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    family_seat(clinic, starts_at, booked_at=now)
    add_appointment(
        other, clinic.patient, clinic.family, clinic.private, starts_at=starts_at, booked_at=now
    )
    written = []

    def counted(*args):
        written.append(args)
        return format_span(*args)

    monkeypatch.setattr(reminders, "format_span", counted)
    assert reminders.queue_due_reminders(starts_at - timedelta(hours=48)) == 4
    assert written and len(written) == len(set(written))  # one per zone: two sessions
    spans = [format_span(*args) for args in written]
    assert all(any(span in row.text_body for span in spans) for row in reminder_rows())


def test_a_due_reminders_session_is_its_declared_type_and_reads_as_the_appointment_does(
    clinic, now
):
    from flask_babel import force_locale

    from familylink.models import Appointment

    moment = _sessions_due_at_once(clinic, 1, now + timedelta(days=3), now)
    reminder = reminders.due_reminders(moment)[0]
    plain = reminder.appointment
    assert type(plain) is reminders.ReminderAppointment
    assert type(plain.therapist) is reminders.ReminderTherapist
    assert type(plain.session_type) is reminders.ReminderSessionType
    appointment = db.session.get(Appointment, plain.id)
    with force_locale("en"):
        assert reminders.reminder_context(
            plain, reminder.person, sign_in_link="x"
        ) == reminders.reminder_context(appointment, reminder.person, sign_in_link="x")


def test_the_cycle_collector_does_not_walk_a_sweeps_objects_while_it_runs(clinic, now, monkeypatch):
    """A sweep keeps every reminder, row and body it makes until its INSERTs: the cyclic
    garbage collector would walk them all again and again and find nothing to free."""
    moment = _sessions_due_at_once(clinic, 3, now + timedelta(days=3), now)
    collector_on = []

    def watched(step):
        def run(*args, **kwargs):
            collector_on.append(gc.isenabled())
            return step(*args, **kwargs)

        return run

    monkeypatch.setattr(reminders, "due_reminders", watched(reminders.due_reminders))
    monkeypatch.setattr(mail, "queue_many", watched(mail.queue_many))
    assert reminders.run_sweep(moment) == 6
    assert collector_on == [False, False]
    assert gc.isenabled()


def test_a_sweep_that_fails_leaves_the_cycle_collector_running(clinic, now, monkeypatch):
    def fail(*_args, **_kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(reminders, "due_reminders", fail)
    with pytest.raises(RuntimeError):
        reminders.run_sweep(now)
    assert gc.isenabled()


def test_a_therapist_name_saved_before_a_word_was_screened_is_printed_without_it(
    clinic, smtp_server, now
):
    """Saved before "LMHC" joined the screen: no booking email, calendar file or reminder
    names the credential (the screen only checks names as they are saved)."""
    clinic.therapist.name = "Dr. Grace Lee, LMHC"
    db.session.commit()
    seat = book_ahead(clinic, now)
    sweep_and_send(seat.appointment.starts_at - timedelta(hours=48))
    messages = smtp_server.parsed()
    calendar_files = [
        p for m in messages for p in m.walk() if p.get_content_type() == "text/calendar"
    ]
    assert len(delivered(smtp_server)) == 2 and calendar_files  # the reminders, the booking's
    for message in messages:
        for part in message.walk():
            if not part.is_multipart():
                content = part.get_content()
                text = content.decode() if isinstance(content, bytes) else content
                assert "LMHC" not in text
                assert "Grace Lee" in text or part.get_content_type() == "text/calendar"
