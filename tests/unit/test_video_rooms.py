"""Video rooms, called directly: the join link checks attendee, consent and time when it is
followed; a moved session keeps its room, a cancelled one closes it."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AppointmentStatus,
    AuditEvent,
    ConsentRecord,
    Role,
    SessionType,
)
from familylink.services import booking
from familylink.services.booking import rooms
from familylink.services.booking.rooms import JoinState
from familylink.services.consent import revoke_consent
from familylink.services.errors import NotFound, ValidationError
from familylink.services.program import clean_room_template, forget_cached_program, program_row
from tests.booking_setup import add_appointment, add_family, create_clinic, family_seat
from tests.factories import create_consent, create_user
from tests.moments import NOON

TEMPLATE = "https://meet.example-clinic.org/{room}"
STARTS = NOON + timedelta(days=2)


def use_template(template: str | None) -> None:
    program_row().video_room_template = template
    db.session.flush()
    forget_cached_program()


@pytest.fixture
def clinic(app_ctx):
    made = create_clinic()
    use_template(TEMPLATE)
    return made


@pytest.fixture
def video_type(clinic):
    video = SessionType(name="Family session (video)", duration_minutes=50, mode="video")
    db.session.add(video)
    db.session.flush()
    return video


@pytest.fixture
def seat(clinic, video_type):
    return family_seat(clinic, STARTS, booked_at=NOON, session_type=video_type)


def join(person, seat, at):
    return rooms.join(person, seat.appointment.join_token, now=at)


@pytest.mark.parametrize(
    ("moment", "state"),
    [
        (STARTS - timedelta(minutes=16), JoinState.TOO_EARLY),
        (STARTS - timedelta(minutes=15), JoinState.OPEN),
        (STARTS - timedelta(minutes=10), JoinState.OPEN),
        (STARTS + timedelta(minutes=49), JoinState.OPEN),
        (STARTS + timedelta(minutes=50), JoinState.ENDED),
        (STARTS + timedelta(days=1), JoinState.ENDED),
    ],
)
def test_the_room_opens_15_minutes_before_the_start_and_closes_at_the_end(
    clinic, seat, moment, state
):
    answer = join(clinic.family, seat, moment)
    assert answer.state == state
    assert (answer.room_url is not None) == (state == JoinState.OPEN)


def test_the_room_is_the_template_filled_with_a_room_name_the_join_link_does_not_hold(clinic, seat):
    appointment = seat.appointment
    answer = join(clinic.family, seat, STARTS - timedelta(minutes=10))
    assert answer.room_url == f"https://meet.example-clinic.org/{rooms.room_name(appointment)}"
    assert appointment.join_token not in answer.room_url
    assert len(appointment.room_token) >= 32 and len(appointment.join_token) >= 32


def test_the_database_alone_does_not_give_the_room(app, clinic, seat):
    """The room's name is a hash of its token keyed with SECRET_KEY: a copy of the database
    holds the token, not the room's address."""
    appointment = seat.appointment
    name = rooms.room_name(appointment)
    assert appointment.room_token not in name and len(name) == 32
    app.config["SECRET_KEY"] = "another-secret-key"
    assert rooms.room_name(appointment) != name


def test_each_session_has_its_own_room_and_join_link(clinic, seat, video_type):
    other = family_seat(
        clinic, STARTS + timedelta(days=7), booked_at=NOON, session_type=video_type
    ).appointment
    assert other.room_token != seat.appointment.room_token
    assert other.join_token != seat.appointment.join_token


def test_joining_is_audited(clinic, seat):
    join(clinic.family, seat, STARTS - timedelta(minutes=10))
    row = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "video.joined")).one()
    assert (row.actor_id, row.patient_id) == (clinic.family.id, clinic.patient.id)
    assert row.object_id == seat.appointment.id


def test_the_therapist_and_the_patient_attend(clinic, seat):
    at = STARTS - timedelta(minutes=5)
    assert join(clinic.therapist, seat, at).state == JoinState.OPEN
    assert join(clinic.patient, seat, at).state == JoinState.OPEN


@pytest.mark.parametrize("who", ["other_member", "other_therapist", "other_patient", "admin"])
def test_anyone_not_coming_is_refused_as_if_the_link_did_not_exist(clinic, seat, who):
    people = {
        # Consented to the same patient, but not coming to this session.
        "other_member": lambda: add_family(clinic.patient, "Luis Rivera"),
        "other_therapist": lambda: create_user(Role.THERAPIST, name="Dr. Patel"),
        "other_patient": lambda: create_user(Role.PATIENT, therapist=clinic.therapist),
        "admin": lambda: create_user(Role.ADMIN),
    }
    with pytest.raises(NotFound):
        join(people[who](), seat, STARTS - timedelta(minutes=5))


def test_an_unknown_token_is_not_found(clinic, seat):
    for token in ("nope", "", "x" * 500, None):
        with pytest.raises(NotFound):
            rooms.join(clinic.family, token, now=STARTS)


def test_a_revoked_member_is_refused(clinic, seat):
    consent = db.session.scalars(
        select(ConsentRecord).where(ConsentRecord.recipient_user_id == clinic.family.id)
    ).one()
    revoke_consent(clinic.patient, consent.id, now=STARTS - timedelta(hours=1))
    with pytest.raises(NotFound):
        join(clinic.family, seat, STARTS - timedelta(minutes=5))


def test_a_consent_that_ended_by_the_clock_refuses_at_once_without_a_sweep(clinic, video_type):
    member = create_user(Role.FAMILY, name="Ana Rivera")
    create_consent(clinic.patient, member, expires_at=STARTS - timedelta(minutes=12))
    seat = add_appointment(
        clinic.therapist, clinic.patient, member, video_type, starts_at=STARTS, booked_at=NOON
    )
    assert join(member, seat, STARTS - timedelta(minutes=14)).state == JoinState.OPEN
    with pytest.raises(NotFound):
        join(member, seat, STARTS - timedelta(minutes=11))


def test_a_consent_without_the_scheduling_scope_refuses(clinic, video_type):
    member = create_user(Role.FAMILY, name="Ana Rivera")
    create_consent(clinic.patient, member, scopes=("progress",))
    seat = add_appointment(
        clinic.therapist, clinic.patient, member, video_type, starts_at=STARTS, booked_at=NOON
    )
    with pytest.raises(NotFound):
        join(member, seat, STARTS - timedelta(minutes=5))


def _seated_for_two_patients(clinic, *, first_ends, second_ends):
    """A group by video in which one member holds a seat for each of two patients (the
    first seat is the first patient's), their consents ending at those instants."""
    member = create_user(Role.FAMILY, name="Ana Rivera")
    second = create_user(Role.PATIENT, therapist=clinic.therapist, name="Sam Rivera")
    create_consent(clinic.patient, member, expires_at=first_ends)
    create_consent(second, member, expires_at=second_ends)
    first_seat = add_appointment(
        clinic.therapist, clinic.patient, member, clinic.group, starts_at=STARTS, booked_at=NOON
    )
    second_seat = AppointmentFamily(appointment=first_seat.appointment, patient_id=second.id)
    db.session.add(second_seat)
    db.session.add(AppointmentAttendee(seat=second_seat, user_id=member.id, added_at=NOON))
    db.session.flush()
    return member, first_seat, second


@pytest.mark.parametrize("which", ["first", "second"])
def test_a_member_seated_for_two_patients_enters_through_the_seat_still_consented(clinic, which):
    """The first patient's consent (or the second's) has ended by the clock, not yet swept,
    so the member is still on that seat: the other seat lets them in, and the audit row
    names the patient whose consent did."""
    at = STARTS - timedelta(minutes=5)
    ended, lasting = STARTS - timedelta(hours=1), STARTS + timedelta(days=30)
    member, seat, second = _seated_for_two_patients(
        clinic,
        first_ends=ended if which == "first" else lasting,
        second_ends=lasting if which == "first" else ended,
    )
    assert join(member, seat, at).state == JoinState.OPEN
    row = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "video.joined")).one()
    assert row.patient_id == (second.id if which == "first" else clinic.patient.id)


def test_a_member_seated_for_two_patients_is_refused_when_neither_consent_is_in_force(clinic):
    ended = STARTS - timedelta(hours=1)
    member, seat, _second = _seated_for_two_patients(clinic, first_ends=ended, second_ends=ended)
    with pytest.raises(NotFound):
        join(member, seat, STARTS - timedelta(minutes=5))


def test_a_moved_session_keeps_its_room_and_opens_at_its_new_time(clinic, seat):
    before = (seat.appointment.join_token, seat.appointment.room_token)
    room = rooms.room_name(seat.appointment)
    later = STARTS + timedelta(days=1)
    booking.reschedule(actor=clinic.therapist, seat_id=seat.id, starts_at=later, now=NOON)
    assert (seat.appointment.join_token, seat.appointment.room_token) == before
    assert join(clinic.family, seat, STARTS - timedelta(minutes=5)).state == JoinState.TOO_EARLY
    answer = join(clinic.family, seat, later - timedelta(minutes=5))
    assert answer.state == JoinState.OPEN and answer.room_url.endswith(room)


@pytest.mark.parametrize("who", ["family", "therapist"])
def test_a_cancelled_session_closes_its_room(clinic, seat, who):
    booking.cancel_seat(actor=getattr(clinic, who), seat_id=seat.id, now=NOON)
    for person in (clinic.family, clinic.therapist, clinic.patient):
        answer = join(person, seat, STARTS - timedelta(minutes=5))
        assert answer.state == JoinState.CANCELLED and answer.room_url is None


def test_a_session_not_by_video_has_no_room(clinic):
    seat = family_seat(clinic, STARTS, booked_at=NOON)
    with pytest.raises(NotFound):
        join(clinic.family, seat, STARTS - timedelta(minutes=5))


# --- Without a room template, the therapist pastes each session's own link ---------------


def test_without_a_template_the_room_waits_for_the_therapists_link(clinic, seat):
    use_template(None)
    at = STARTS - timedelta(minutes=5)
    assert join(clinic.family, seat, at).state == JoinState.NO_ROOM
    link = "https://video.example.org/j/8812-4471"
    rooms.set_room_link(
        actor=clinic.therapist, appointment_id=seat.appointment.id, link=link, now=NOON
    )
    assert join(clinic.family, seat, at).room_url == link


@pytest.mark.parametrize(
    "link",
    [
        "http://video.example.org/j/1",
        "video.example.org/j/1",
        "https://",
        "https://a b/c",
        "https://x.org/\u202e1",
        "https://video.example.org/recoverycenter/4821",
        # 500 characters but more bytes: its encrypted form would not fit the column.
        "https://video.example.org/" + "é" * 474,
    ],
)
def test_a_pasted_link_must_be_https(clinic, seat, link):
    use_template(None)
    with pytest.raises(ValidationError):
        rooms.set_room_link(
            actor=clinic.therapist, appointment_id=seat.appointment.id, link=link, now=NOON
        )
    assert seat.appointment.room_link is None


@pytest.mark.parametrize("who", ["family", "patient", "other_therapist"])
def test_only_the_sessions_therapist_pastes_its_link(clinic, seat, who):
    people = {
        "family": clinic.family,
        "patient": clinic.patient,
        "other_therapist": create_user(Role.THERAPIST, name="Dr. Patel"),
    }
    with pytest.raises(NotFound):
        rooms.set_room_link(
            actor=people[who],
            appointment_id=seat.appointment.id,
            link="https://video.example.org/j/1",
            now=NOON,
        )


@pytest.mark.parametrize(
    ("template", "ok"),
    [
        ("https://meet.example-clinic.org/{room}", True),
        ("https://meet.example-clinic.org/family/{room}?lang=en", True),
        ("  ", True),  # empty: therapists paste a link per session
        ("http://meet.example-clinic.org/{room}", False),
        ("https://meet.example-clinic.org/", False),
        ("https://meet.example-clinic.org/{room}/{room}", False),
        ("https://{room}.example-clinic.org/", False),
        ("https://meet.example-clinic.org/{rooms}", False),
        ("https:///{room}", False),
        ("https://meet.example-clinic.org/\u202e{room}", False),
        ("https://rehab-meet.example.org/{room}", False),
    ],
)
def test_the_room_template_is_https_with_one_room_placeholder(app_ctx, template, ok):
    if ok:
        assert clean_room_template(template, field="t") in (template.strip() or None,)
    else:
        with pytest.raises(ValidationError):
            clean_room_template(template, field="t")


def _pasted(clinic, seat, link):
    rooms.set_room_link(
        actor=clinic.therapist, appointment_id=seat.appointment.id, link=link, now=NOON
    )
    db.session.commit()


def _stored_links() -> dict[int, str | None]:
    db.session.expire_all()
    return dict(db.session.execute(select(Appointment.id, Appointment.room_link)).all())


def test_the_mail_worker_forgets_a_pasted_link_once_its_session_is_over(app_ctx, clinic, seat):
    use_template(None)
    later = family_seat(
        clinic,
        STARTS + timedelta(days=7),
        booked_at=NOON,
        session_type=seat.appointment.session_type,
    )
    _pasted(clinic, seat, "https://video.example.org/j/1111?pwd=first")
    _pasted(clinic, later, "https://video.example.org/j/2222?pwd=later")
    ends = seat.appointment.ends_at

    for at in (STARTS, ends - timedelta(seconds=1)):
        assert rooms.forget_ended_room_links(at) == 0
    # Every hook the worker runs, as it runs them (the forgetting is one of them).
    for hook in app_ctx.extensions["familylink_sweeps"]:
        hook(ends)
        db.session.commit()
    assert _stored_links() == {
        seat.appointment.id: None,
        later.appointment.id: "https://video.example.org/j/2222?pwd=later",
    }
    rows = db.session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "video.room_links_forgotten")
    ).all()
    assert rows == [{"count": 1}]
    assert rooms.forget_ended_room_links(ends + timedelta(hours=1)) == 0, "nothing left"


def test_a_cancelled_sessions_pasted_link_is_forgotten_before_its_time(clinic, seat):
    use_template(None)
    _pasted(clinic, seat, "https://video.example.org/j/1111")
    seat.appointment.status = AppointmentStatus.CANCELLED
    db.session.commit()
    assert rooms.forget_ended_room_links(NOON) == 1
    assert _stored_links() == {seat.appointment.id: None}


@pytest.mark.parametrize("why", ["ended", "cancelled"])
def test_no_link_is_pasted_on_a_session_that_is_over(clinic, seat, why):
    use_template(None)
    at = NOON
    if why == "ended":
        at = seat.appointment.ends_at
    else:
        seat.appointment.status = AppointmentStatus.CANCELLED
    with pytest.raises(ValidationError) as refused:
        rooms.set_room_link(
            actor=clinic.therapist,
            appointment_id=seat.appointment.id,
            link="https://video.example.org/j/1",
            now=at,
        )
    assert refused.value.field == "room_link"
    assert seat.appointment.room_link is None
