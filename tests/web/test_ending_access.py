"""Ending a family member's access has every effect, whichever way it ends.

The entry points: the patient revoking on their page, the therapist recording a written
revocation, the expiry sweep the mail worker runs, the `flask consent sweep` command, and the
therapist ending the episode of care a consent "until the end of this episode" follows.
Each must close the consent, take the member off future sessions and waitlists, stop their
readings, end their sign-in sessions, cancel queued and failed emails about the patient, and
leave their calendar feed without the patient's sessions (issue 15, point 2); and unshare the
practice tools and reflections the member shared with the patient's therapist, so a later
consent does not open them again (issue 19, point 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    Assignment,
    AuditEvent,
    ConsentRecord,
    LearningModule,
    ModuleProgress,
    OutboxEmail,
    OutboxStatus,
    PracticeEntry,
    Role,
    SeatStatus,
    User,
    UserSession,
    WaitlistEntry,
    WaitlistStatus,
)
from familylink.services import consent, learning, mail, sessions
from familylink.services.calendar import feeds
from tests.booking_setup import add_appointment, create_session_types
from tests.conftest import AuthActions
from tests.factories import create_consent, create_user
from tests.moments import NOON

EXPIRY = NOON + timedelta(hours=1)


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@dataclass
class World:
    consent_id: int
    patient_id: int
    member_id: int
    seat_id: int
    entry_id: int
    next_entry_id: int
    assignment_id: int
    practice_id: int
    progress_id: int
    email_ids: list[int]
    feed_token: str
    uid: str


def _build(app, *, until_episode_end: bool = False) -> World:
    with app.app_context():
        therapist = create_user(Role.THERAPIST, email="lee@example.org")
        patient = create_user(Role.PATIENT, email="jordan@example.org", therapist=therapist)
        member = create_user(Role.FAMILY, email="maria@example.org")
        if until_episode_end:  # ends the day of discharge (plus 0 days)
            record = create_consent(patient, member, days_after_episode=0)
        else:
            record = create_consent(patient, member, expires_at=EXPIRY)
        private, group = create_session_types()
        seat = add_appointment(
            therapist,
            patient,
            member,
            private,
            starts_at=NOON + timedelta(days=3),
            booked_at=NOON - timedelta(hours=2),
        )
        full_group = Appointment(
            uid="group@familylink",
            therapist_id=therapist.id,
            session_type=group,
            starts_at=NOON + timedelta(days=4),
            ends_at=NOON + timedelta(days=4, minutes=90),
            capacity=2,
        )
        db.session.add(full_group)
        db.session.flush()
        # Full: another family's seat, and the place offered to (held for) this member's.
        other_patient = create_user(Role.PATIENT, therapist=therapist)
        other_member = create_user(Role.FAMILY)
        create_consent(other_patient, other_member)
        other_seat = AppointmentFamily(appointment=full_group, patient_id=other_patient.id)
        db.session.add(other_seat)
        db.session.add(AppointmentAttendee(seat=other_seat, user_id=other_member.id))
        entry = WaitlistEntry(
            appointment_id=full_group.id,
            patient_id=patient.id,
            family_user_id=member.id,
            created_at=NOON - timedelta(hours=3),
            status=WaitlistStatus.OFFERED,
            offered_until=NOON + timedelta(days=1),
        )
        # The next family waiting, whose turn comes when that place is let go.
        next_patient = create_user(Role.PATIENT, therapist=therapist)
        next_member = create_user(Role.FAMILY, email="next@example.org")
        create_consent(next_patient, next_member)
        next_entry = WaitlistEntry(
            appointment_id=full_group.id,
            patient_id=next_patient.id,
            family_user_id=next_member.id,
            created_at=NOON - timedelta(hours=2),
        )
        db.session.add(next_entry)
        module = LearningModule(
            slug="trust",
            title="Trust",
            summary="s",
            topic="t",
            order=1,
            reading_minutes=5,
            key_points=["a", "b", "c"],
            reflection="r",
            exercise="e",
            sources=["x"],
            body_markdown="b",
            body_html="<p>b</p>",
        )
        db.session.add_all([entry, module])
        db.session.flush()
        assignment = Assignment(
            module_id=module.id,
            family_user_id=member.id,
            patient_id=patient.id,
            assigned_by_id=therapist.id,
            release_at=NOON + timedelta(days=7),
        )
        shared_entry = PracticeEntry(
            family_user_id=member.id,
            kind="rewards",
            title="Saturdays",
            answers={"when_sober": "Cook together"},
            shared_patient_id=patient.id,
        )
        shared_reflection = ModuleProgress(
            family_user_id=member.id,
            patient_id=patient.id,
            module_id=module.id,
            reflection="What I noticed",
            reflection_shared=True,
        )
        db.session.add_all([assignment, shared_entry, shared_reflection])
        emails = [
            mail.queue_email(
                "reminder" if n == 0 else "booking_confirmed",
                to=member,
                dedupe_key=f"about-patient:{n}",
                now=NOON,
                context={"title": "Family session", "when": "soon", "where": "", "minutes": 50},
                patient_id=patient.id,
                required_scope="scheduling",
                send_at=NOON + timedelta(days=2),
            )
            for n in range(2)
        ]
        emails[1].status = OutboxStatus.FAILED
        sessions.start_session(member, now=NOON)
        token = feeds.turn_on_feed(member, now=NOON)
        db.session.commit()
        assert seat.appointment.uid.encode() in feeds.feed_for_token(token, now=NOON)
        db.session.commit()
        return World(
            record.id,
            patient.id,
            member.id,
            seat.id,
            entry.id,
            next_entry.id,
            assignment.id,
            shared_entry.id,
            shared_reflection.id,
            [e.id for e in emails],
            token,
            seat.appointment.uid,
        )


def _by_the_patient(app, world):
    client = app.test_client()
    AuthActions(client, app).login("jordan@example.org")
    response = client.post(f"/patient/consents/{world.consent_id}/revoke")
    assert response.status_code == 302
    return "revoked"


def _by_the_therapist_from_writing(app, world):
    client = app.test_client()
    AuthActions(client, app).login("lee@example.org")
    response = client.post(
        f"/therapist/consents/{world.consent_id}/revoke", data={"note": "Letter of 18 November"}
    )
    assert response.status_code == 302
    return "revoked"


def _by_the_workers_expiry_sweep(app, world):
    from familylink.cli import run_consent_sweep

    with app.app_context():
        run_consent_sweep(EXPIRY)
    return "expired"


def _by_the_command_line(app, world):
    result = app.test_cli_runner().invoke(args=["consent", "sweep", "--now", EXPIRY.isoformat()])
    assert result.exit_code == 0, result.output
    return "expired"


def _by_the_therapist_ending_the_episode(app, world):
    client = app.test_client()
    AuthActions(client, app).login("lee@example.org")
    response = client.post(
        f"/therapist/patients/{world.patient_id}/discharge",
        data={"ended_on": NOON.date().isoformat(), "reason": "completed", "confirm": "y"},
    )
    assert response.status_code == 302
    return "expired"


@pytest.mark.parametrize(
    "end_access",
    [_by_the_patient, _by_the_therapist_from_writing, _by_the_workers_expiry_sweep,
     _by_the_command_line, _by_the_therapist_ending_the_episode],
    ids=["patient page", "therapist written revocation", "expiry sweep", "command line",
         "discharge"],
)  # fmt: skip
def test_every_way_of_ending_access_has_every_effect(app, end_access):
    world = _build(app, until_episode_end=end_access is _by_the_therapist_ending_the_episode)
    reason = end_access(app, world)
    with app.app_context():
        record = db.session.get(ConsentRecord, world.consent_id)
        assert record.closure is not None and record.closure.reason == reason
        assert not consent.may_disclose(world.member_id, world.patient_id, None, now=EXPIRY)

        seat = db.session.get(AppointmentFamily, world.seat_id)
        assert seat.present_attendees == []
        assert seat.status == SeatStatus.CANCELLED  # nobody left to come: the time is freed
        assert db.session.get(WaitlistEntry, world.entry_id).status == WaitlistStatus.LEFT
        # The place that was held for them goes on to the next family waiting.
        assert db.session.get(WaitlistEntry, world.next_entry_id).status == WaitlistStatus.OFFERED
        assert db.session.scalar(
            select(OutboxEmail).where(
                OutboxEmail.kind == "waitlist_offer", OutboxEmail.to_address == "next@example.org"
            )
        )
        assert db.session.get(Assignment, world.assignment_id).stopped_at is not None
        assert db.session.get(PracticeEntry, world.practice_id).shared_patient_id is None
        assert not db.session.get(ModuleProgress, world.progress_id).reflection_shared
        unshared = db.session.execute(
            select(AuditEvent.action, AuditEvent.detail).where(
                AuditEvent.action.in_(("practice.unshared", "learning.reflections_unshared")),
                AuditEvent.patient_id == world.patient_id,
                AuditEvent.recipient_id == world.member_id,
            )
        ).all()
        # How many, never which: the patient's log names no tool and quotes no words.
        assert sorted(map(tuple, unshared)) == [
            ("learning.reflections_unshared", {"reflections": 1, "reason": "consent ended"}),
            ("practice.unshared", {"entries": 1, "reason": "consent ended"}),
        ]

        open_sessions = db.session.scalars(
            select(UserSession).where(
                UserSession.user_id == world.member_id, UserSession.ended_at.is_(None)
            )
        ).all()
        assert open_sessions == []

        statuses = {
            e.id: e.status
            for e in db.session.scalars(
                select(OutboxEmail).where(OutboxEmail.id.in_(world.email_ids))
            )
        }
        assert set(statuses.values()) == {OutboxStatus.CANCELLED}, statuses

        calendar = feeds.feed_for_token(world.feed_token, now=EXPIRY)
        assert calendar is not None and world.uid.encode() not in calendar

        ended = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == f"consent.{reason}")
        )
        assert (ended.patient_id, ended.recipient_id) == (world.patient_id, world.member_id)

        told = {
            (e.kind, e.to_address)
            for e in db.session.scalars(
                select(OutboxEmail).where(OutboxEmail.kind.like("family_access_ended%"))
            )
        }
        patient_told = {("family_access_ended_patient", "jordan@example.org")}
        assert told == {
            ("family_access_ended", "maria@example.org"),
            ("family_access_ended_therapist", "lee@example.org"),
        } | (patient_told if reason == "expired" else set())  # a revoking patient knows
        shown = consent.disclosures_of(db.session.get(User, world.patient_id))
        assert [str(row["what"]).startswith("Access ended") for row in shown][:1] == [True]


def test_a_later_consent_does_not_open_again_what_was_shared_before_access_ended(app):
    """The member shares a tool and a reflection, the patient revokes, then signs a new
    consent: the therapist sees neither until the member chooses to share again."""
    world = _build(app)
    _by_the_patient(app, world)
    with app.app_context():
        patient = db.session.get(User, world.patient_id)
        member = db.session.get(User, world.member_id)
        create_consent(patient, member, now=NOON + timedelta(minutes=5))
        db.session.commit()
        therapist = db.session.get(User, patient.therapist_id)
        later = NOON + timedelta(minutes=10)
        assert consent.may_disclose(member.id, patient.id, None, now=later)
        assert learning.practice.shared_practice(therapist, patient.id, now=later) == []
        (family,) = learning.family_progress(therapist, patient.id, now=later)
        assert family.rows and not any(row.shared_reflection for row in family.rows)


# --- A narrower renewal: the consent in force no longer covers scheduling (issue 19, 2.2) ----

NARROWER = {
    "recipient_name": "Maria Rivera",
    "recipient_relationship": "Mother",
    "recipient_email": "maria@example.org",
    "scope_attendance": "y",  # no scope_scheduling
    "purpose": consent.DEFAULT_PURPOSE,
    "expiry_kind": "date",
    "expiry_date": "2027-05-01",
    "expiry_days_after_episode": "30",
    "understood": "y",
}


def _signed(app, world, form) -> dict:
    with app.app_context():
        return {**form, "signature_name": db.session.get(User, world.patient_id).name}


def _renewed_by_the_patient(app, world, form):
    client = app.test_client()
    AuthActions(client, app).login("jordan@example.org")
    response = client.post("/patient/consents/new", data=_signed(app, world, form))
    assert response.status_code == 302


def _renewed_on_paper(app, world, form):
    client = app.test_client()
    AuthActions(client, app).login("lee@example.org")
    data = {**_signed(app, world, form), "signed_on": NOON.date().isoformat(), "attested": "y"}
    response = client.post(f"/therapist/patients/{world.patient_id}/consents/paper", data=data)
    assert response.status_code == 302


def _renewed_at_a_new_address_and_accepted(app, world, form):
    """The patient signs to the member's new address before she has moved to it; she
    accepts the invitation once it is hers: the newer consent supersedes hers then."""
    _renewed_by_the_patient(app, world, {**form, "recipient_email": "maria.new@example.org"})
    with app.app_context():
        invitation = db.session.scalars(
            select(OutboxEmail)
            .where(OutboxEmail.kind == "family_invitation")
            .order_by(OutboxEmail.id.desc())
        ).first()
        link = "/family/join/" + invitation.text_body.split("/family/join/")[1].split()[0]
        # Her confirmed email change, in short (its own tests are in test_consent_routes).
        db.session.get(User, world.member_id).email = "maria.new@example.org"
        db.session.commit()
    client = app.test_client()
    AuthActions(client, app).login("maria.new@example.org")
    assert client.post(link).status_code == 302
    return client


RENEWALS = pytest.mark.parametrize(
    "renew",
    [_renewed_by_the_patient, _renewed_on_paper, _renewed_at_a_new_address_and_accepted],
    ids=["patient page", "paper consent", "invitation accepted"],
)


@RENEWALS
def test_a_renewal_without_scheduling_takes_the_member_off_sessions_as_ending_does(app, renew):
    world = _build(app)
    renew(app, world, NARROWER)
    with app.app_context():
        assert consent.may_disclose(world.member_id, world.patient_id, "attendance", now=NOON)
        assert not consent.may_disclose(
            world.member_id, world.patient_id, "scheduling", now=NOON, audit_access=False
        )
        seat = db.session.get(AppointmentFamily, world.seat_id)
        assert seat.present_attendees == []
        assert seat.status == SeatStatus.CANCELLED
        assert db.session.get(WaitlistEntry, world.entry_id).status == WaitlistStatus.LEFT
        assert db.session.get(WaitlistEntry, world.next_entry_id).status == WaitlistStatus.OFFERED
        removed = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "booking.attendee_removed")
        )
        assert (removed.patient_id, removed.recipient_id) == (world.patient_id, world.member_id)
        # Only scheduling ended: her readings go on.
        assert db.session.get(Assignment, world.assignment_id).stopped_at is None


@RENEWALS
def test_a_renewal_that_keeps_scheduling_keeps_the_member_on_sessions(app, renew):
    world = _build(app)
    renew(app, world, {**NARROWER, "scope_scheduling": "y"})
    with app.app_context():
        seat = db.session.get(AppointmentFamily, world.seat_id)
        assert [a.user_id for a in seat.present_attendees] == [world.member_id]
        assert db.session.get(WaitlistEntry, world.entry_id).status == WaitlistStatus.OFFERED


def test_leaving_the_waitlist_when_access_ends_is_counted_in_the_audit_log(app):
    """A place only waited for (no offer held) leaves the list with one counting row, as the
    stopped readings do: how many, never which sessions."""
    world = _build(app)
    with app.app_context():
        db.session.get(WaitlistEntry, world.entry_id).status = WaitlistStatus.WAITING
        db.session.commit()
    _by_the_patient(app, world)
    with app.app_context():
        assert db.session.get(WaitlistEntry, world.entry_id).status == WaitlistStatus.LEFT
        left = db.session.execute(
            select(AuditEvent.patient_id, AuditEvent.recipient_id, AuditEvent.detail).where(
                AuditEvent.action == "waitlist.left"
            )
        ).all()
        assert [tuple(row) for row in left] == [
            (world.patient_id, world.member_id, {"entries": 1, "reason": "consent ended"})
        ]


def _unsent(world) -> set:
    return {
        e.status
        for e in db.session.scalars(select(OutboxEmail).where(OutboxEmail.id.in_(world.email_ids)))
    }


@RENEWALS
def test_a_narrower_renewal_ends_the_dropped_scopes_mail_and_tells_the_therapist(app, renew):
    """Scheduling dropped: its queued and failed emails to the member are cancelled now (not
    left for the sender to refuse), other mail about the patient stays, and the therapist is
    told which scopes ended, neutrally (issue 19, point 2)."""
    world = _build(app)
    with app.app_context():
        unscoped = mail.queue_email(
            "module_assigned",
            to=db.session.get(User, world.member_id),
            dedupe_key="reading:1",
            now=NOON,
            context={"link": "https://example.org/x"},
            patient_id=world.patient_id,
        ).id
        db.session.commit()
    renew(app, world, NARROWER)
    with app.app_context():
        assert _unsent(world) == {OutboxStatus.CANCELLED}
        if renew is not _renewed_at_a_new_address_and_accepted:  # that mail went to the old one
            assert db.session.get(OutboxEmail, unscoped).status == OutboxStatus.PENDING
        ended = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "consent.scopes_ended")
        )
        assert (ended.patient_id, ended.recipient_id) == (world.patient_id, world.member_id)
        moved = renew is _renewed_at_a_new_address_and_accepted  # cancelled with the address
        assert ended.detail == {
            "scopes": ["scheduling"],
            "cancelled_emails": 0 if moved else 2,
            "sessions": 1,
        }
        (told,) = db.session.scalars(
            select(OutboxEmail).where(OutboxEmail.kind == "family_access_narrowed_therapist")
        ).all()
        assert told.to_address == "lee@example.org"
        assert "Family session times" in told.text_body
        assert "Attendance" in told.text_body  # what goes on


@RENEWALS
def test_a_renewal_that_keeps_every_scope_cancels_nothing_and_tells_nobody(app, renew):
    world = _build(app)
    renew(app, world, {**NARROWER, "scope_scheduling": "y"})
    with app.app_context():
        if renew is not _renewed_at_a_new_address_and_accepted:  # that mail went to the old one
            assert OutboxStatus.CANCELLED not in _unsent(world)
        assert not db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "consent.scopes_ended")
        )
        assert not db.session.scalar(
            select(OutboxEmail).where(OutboxEmail.kind == "family_access_narrowed_therapist")
        )


# --- A renewal after the consent had already ended by the clock (issue 19, point 1) --------


@RENEWALS
def test_a_renewal_after_the_expiry_ends_the_expired_consent_as_the_sweep_would(app, renew):
    """The consent expired an hour before the renewal and the sweep had not reached it yet:
    it is closed as expired, not superseded, and everything ending access does happens (so
    the renewal does not show again what was shared under it), exactly as if the sweep had
    run first; the renewal then takes effect as a new consent."""
    world = _build(app)
    later = EXPIRY + timedelta(hours=1)
    app.config["NOW_OVERRIDE"] = later
    renew(app, world, {**NARROWER, "scope_scheduling": "y"})
    with app.app_context():
        record = db.session.get(ConsentRecord, world.consent_id)
        assert record.closure.reason == "expired"
        assert db.session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "consent.expired",
                AuditEvent.object_id == world.consent_id,
            )
        )
        assert db.session.get(PracticeEntry, world.practice_id).shared_patient_id is None
        assert not db.session.get(ModuleProgress, world.progress_id).reflection_shared
        assert db.session.get(Assignment, world.assignment_id).stopped_at is not None
        assert db.session.get(AppointmentFamily, world.seat_id).present_attendees == []
        assert _unsent(world) == {OutboxStatus.CANCELLED}
        kinds = set(db.session.scalars(select(OutboxEmail.kind)))
        assert {"family_access_ended_therapist", "family_access_ended_patient"} <= kinds
        # The renewal itself is in force.
        assert consent.may_disclose(world.member_id, world.patient_id, "scheduling", now=later)


def test_accepting_an_invitation_after_the_expiry_keeps_the_member_signed_in_there(app):
    """Accepting the renewal's invitation closes the expired consent with every effect of
    ending access but one: the member stays signed in on the device she accepts it on (the
    gate builds her next page under the new consent); her other sessions end."""
    world = _build(app)
    later = EXPIRY + timedelta(hours=1)
    app.config["NOW_OVERRIDE"] = later
    client = _renewed_at_a_new_address_and_accepted(
        app, world, {**NARROWER, "scope_scheduling": "y"}
    )
    assert client.get("/family/").status_code == 200
    with app.app_context():
        assert db.session.get(ConsentRecord, world.consent_id).closure.reason == "expired"
        ends = db.session.execute(
            select(UserSession.ended_at, UserSession.end_reason)
            .where(UserSession.user_id == world.member_id)
            .order_by(UserSession.id)
        ).all()
    assert [tuple(row) for row in ends] == [(later, "consent_ended"), (None, None)]


def test_the_patient_is_told_when_the_consent_really_ended_not_when_the_sweep_ran(app):
    """The worker was down for two days: the email gives the consent's own end."""
    _build(app)
    late = EXPIRY + timedelta(days=2)
    with app.app_context():
        consent.sweep_consents(late)
        db.session.commit()
        (told,) = db.session.scalars(
            select(OutboxEmail).where(OutboxEmail.kind == "family_access_ended_patient")
        ).all()
    assert "lasted until Wednesday, November 18, 2026, 1:00 PM" in told.text_body, told.text_body
    assert "November 20" not in told.text_body
