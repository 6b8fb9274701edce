"""A program built row by row for the overview's tests: chosen counts per month and
therapist, every row with an id from IDS_FROM (so a test can look for each id in a page)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    Assignment,
    Attendance,
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    Episode,
    ExpiryKind,
    LearningModule,
    ModuleProgress,
    OutboxEmail,
    OutboxStatus,
    Role,
    Scope,
    SeatStatus,
    SessionType,
    User,
)
from familylink.services.access import IN_CARE
from tests.factories import create_user

IDS_FROM = 7_340_001
#: The months the tests ask for (the program's zone is New York).
FIRST, LAST = date(2026, 1, 1), date(2026, 3, 31)
MONTHS = [(2026, 1), (2026, 2), (2026, 3)]
#: After the period: "today" for the tests.
TODAY = datetime(2026, 4, 15, 16, 0, tzinfo=UTC)


@dataclass
class Cohort:
    """What happens in one month for one therapist."""

    enrolled: int = 0
    with_family: int = 0
    attended: int = 0
    no_show: int = 0
    late_cancelled: int = 0
    revoked: int = 0


@dataclass
class Built:
    ids: set[int] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)


def build(
    cohorts: dict[tuple[int, int], Cohort],
    therapists: int = 2,
    *,
    ids_from: int = IDS_FROM,
    tag: str = "",
) -> Built:
    """Rows for `cohorts[(month index, therapist index)]`, with ids from `ids_from` (and
    `tag` in every name, for a second program in the same database); flushes only."""
    built = Built()
    next_id = itertools.count(ids_from)

    def person(role, name, therapist=None) -> User:
        name = f"{tag}{name}"
        email = f"{name.split()[0].lower()}@example.org"
        if role == Role.PATIENT:  # its episode is made below (the factory's starts one)
            user = User(
                id=next(next_id), role=role, name=name, email=email, therapist_id=therapist.id
            )
            db.session.add(user)
            db.session.flush()
        else:
            user = create_user(role, id=next(next_id), name=name, email=email)
        built.ids.add(user.id)
        built.names.add(user.name)
        built.emails.add(user.email)
        return user

    session_type = SessionType(
        id=next(next_id), name="Family session", duration_minutes=50, capacity=1, active=True
    )
    module = LearningModule(
        id=next(next_id),
        slug=f"overview-test{tag}",
        title="Helping",
        summary="s",
        topic="t",
        reading_minutes=5,
        reflection="r",
        exercise="e",
        body_markdown="b",
        body_html="b",
    )
    db.session.add_all([session_type, module])
    built.ids |= {session_type.id, module.id}
    staff = [person(Role.THERAPIST, f"Thera{n}zqx Doctor") for n in range(therapists)]
    for (month, t), cohort in sorted(cohorts.items()):
        year, number = MONTHS[month]
        therapist = staff[t]
        start = datetime(year, number, 2, 15, 0, tzinfo=UTC)
        patients, members = [], []
        for k in range(max(cohort.enrolled, 1)):
            mark = f"{month}{t}{k}"
            patient = person(Role.PATIENT, f"Pat{mark}qvw Person", therapist=therapist)
            patients.append(patient)
            episode = Episode(
                id=next(next_id),
                patient_id=patient.id,
                number=1,
                # A stand-in patient (no enrolment this month) started long before.
                started_on=start if k < cohort.enrolled else start - timedelta(days=400),
            )
            db.session.add(episode)
            built.ids.add(episode.id)
            if k < cohort.with_family or k < cohort.revoked:
                member = person(Role.FAMILY, f"Fam{mark}kjh Member")
                members.append((member, patient))
                db.session.flush()
                consent = _consent(next(next_id), patient, member, episode, start)
                built.ids.add(consent.id)
                built.texts.add(consent.purpose)
                if k < cohort.revoked:
                    db.session.flush()
                    db.session.add(
                        ConsentClosure(
                            id=next(next_id),
                            consent_id=consent.id,
                            reason=ClosureReason.REVOKED,
                            closed_at=start + timedelta(days=5),
                            closed_by_id=patient.id,
                        )
                    )
        db.session.flush()
        seats = (
            [(SeatStatus.BOOKED, Attendance.ATTENDED)] * cohort.attended
            + [(SeatStatus.BOOKED, Attendance.NO_SHOW)] * cohort.no_show
            + [(SeatStatus.LATE_CANCELLED, None)] * cohort.late_cancelled
        )
        for i, (status, attendance) in enumerate(seats):
            patient = patients[i % len(patients)]
            at = datetime(year, number, 10, 13, 0, tzinfo=UTC) + timedelta(hours=i)
            appointment = Appointment(
                id=next(next_id),
                uid=f"ov{tag}-{month}-{t}-{i}@familylink.test",
                therapist_id=therapist.id,
                session_type_id=session_type.id,
                starts_at=at,
                ends_at=at + timedelta(minutes=50),
                capacity=1,
            )
            db.session.add(appointment)
            db.session.flush()
            seat = AppointmentFamily(
                id=next(next_id),
                appointment_id=appointment.id,
                patient_id=patient.id,
                status=status,
                attendance=attendance,
                note=f"Note{i}qzz about the family",
            )
            db.session.add(seat)
            reminder = OutboxEmail(
                id=next(next_id),
                kind="reminder",
                dedupe_key=f"reminder:{appointment.id}-0:{patient.id}:48",
                to_address=f"fam{i}@example.org",
                patient_id=patient.id,
                required_scope=Scope.SCHEDULING,
                subject="Reminder",
                text_body="t",
                html_body="h",
                status=OutboxStatus.SENT,
                not_after=at,
                created_at=at - timedelta(days=2),
            )
            # The patient's own reminder names them too, and is not a family's.
            own = OutboxEmail(
                id=next(next_id),
                kind="reminder",
                dedupe_key=f"reminder:{appointment.id}-0:{patient.id}:patient:48",
                to_address=patient.email,
                patient_id=patient.id,
                required_scope=IN_CARE,
                subject="Reminder",
                text_body="t",
                html_body="h",
                status=OutboxStatus.FAILED if i % 2 else OutboxStatus.SENT,
                not_after=at,
                created_at=at - timedelta(days=2),
            )
            db.session.add_all([reminder, own])
            built.ids |= {appointment.id, seat.id, reminder.id, own.id}
            built.texts.add(seat.note)
        for member, patient in members:
            # Each member with a consent is given a reading, opens it and writes about it.
            assignment = Assignment(
                id=next(next_id),
                module_id=module.id,
                family_user_id=member.id,
                patient_id=patient.id,
                assigned_by_id=therapist.id,
                created_at=start + timedelta(days=3),
                release_at=start + timedelta(days=3),
            )
            progress = ModuleProgress(
                id=next(next_id),
                family_user_id=member.id,
                patient_id=patient.id,
                module_id=module.id,
                opened_at=start + timedelta(days=4),
                reflection=f"Reflect{member.id}ion kept private",
            )
            db.session.add_all([assignment, progress])
            built.ids |= {assignment.id, progress.id}
            built.texts.add(progress.reflection)
    db.session.flush()
    return built


def _consent(consent_id, patient, member, episode, start) -> ConsentRecord:
    consent = ConsentRecord(
        id=consent_id,
        patient_id=patient.id,
        patient_name=patient.name,
        program_name="Test Program",
        recipient_name=member.name,
        recipient_relationship="Mother",
        recipient_email=member.email,
        recipient_user_id=member.id,
        purpose="Purpose7qx of the family sessions",
        scope_scheduling=True,
        scope_attendance=False,
        scope_progress=False,
        information_description="Session times",
        revocation_statement="Revoke any time.",
        expiry_kind=ExpiryKind.DATE,
        expires_at=start + timedelta(days=180),
        episode_id=episode.id,
        expiry_description="180 days",
        signature_name=patient.name,
        signed_at=start + timedelta(days=2),
        method="portal",
        form_version="test",
        text_snapshot="text",
        created_at=start + timedelta(days=2),
    )
    db.session.add(consent)
    return consent
