"""The gate's answers for lists of many people (`access.family_in_force`: what each consent
in force covers, when it ends, whether soon) and the rule's other questions asked from
outside the gate (issue 15: one definition of each rule), with the lists built on them."""

from datetime import timedelta

from sqlalchemy import event, select

from familylink.extensions import db
from familylink.models import (
    AppointmentAttendee,
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    Episode,
    Role,
    Scope,
    User,
)
from familylink.services import access, booking, homes
from tests.booking_setup import add_family, create_clinic
from tests.conftest import QueryCounter
from tests.factories import create_consent, create_user


def _rows(patient_ids, now):
    return {
        (row.user.name, row.patient_id): row for row in access.family_in_force(patient_ids, now=now)
    }


def test_each_row_says_what_its_consent_covers_and_when_it_ends(app_ctx, now):
    therapist = create_user(Role.THERAPIST)
    patient = create_user(Role.PATIENT, therapist=therapist)
    soon = create_user(Role.FAMILY, name="Ann Soon")
    create_consent(
        patient, soon, scopes=("scheduling", "attendance"), expires_at=now + timedelta(days=5)
    )
    later = create_user(Role.FAMILY, name="Ben Later")
    create_consent(patient, later, scopes=("progress",), expires_at=now + timedelta(days=20))
    episodic = create_user(Role.FAMILY, name="Cy Episode")
    by_episode = create_consent(patient, episodic, days_after_episode=7)
    episode = db.session.get(Episode, by_episode.episode_id)
    episode.ended_on = now - timedelta(days=1)
    db.session.flush()

    rows = _rows([patient.id], now)
    assert list(rows) == [(n, patient.id) for n in ("Ann Soon", "Ben Later", "Cy Episode")]
    ann, ben, cy = rows.values()
    assert ann.scopes == (Scope.SCHEDULING, Scope.ATTENDANCE)
    assert [ann.covers(s) for s in (None, Scope.SCHEDULING, Scope.PROGRESS)] == [True, True, False]
    assert ben.covers(Scope.PROGRESS) and not ben.covers(Scope.SCHEDULING)
    assert (ann.ends_at, ann.ending_soon) == (now + timedelta(days=5), True)
    assert (ben.ends_at, ben.ending_soon) == (now + timedelta(days=20), False)
    # The end of an episode consent, read from the episode's column, is the rule's own.
    assert cy.ends_at == access.consent_end(by_episode, patient) == now + timedelta(days=6)
    assert cy.ending_soon
    assert _rows([patient.id], now + timedelta(days=6)).keys() == {("Ben Later", patient.id)}


def test_the_newest_consent_in_force_answers_and_a_closed_one_none(app_ctx, now):
    patient = create_user(Role.PATIENT)
    member = create_user(Role.FAMILY, name="Dee Member")
    create_consent(patient, member, scopes=("progress",))
    newer = create_consent(patient, member, scopes=("scheduling",), now=now + timedelta(hours=1))
    assert _rows([patient.id], now)["Dee Member", patient.id].scopes == (Scope.SCHEDULING,)
    db.session.add(ConsentClosure(consent_id=newer.id, reason=ClosureReason.REVOKED, closed_at=now))
    db.session.flush()
    assert _rows([patient.id], now)["Dee Member", patient.id].scopes == (Scope.PROGRESS,)


def test_the_list_is_one_statement_loading_neither_consents_nor_patients(app_ctx, now):
    """Issue 19: the rule's columns only, whatever the number of patients."""
    patients = [create_user(Role.PATIENT) for _ in range(3)]
    for patient in patients:
        for _ in range(2):
            create_consent(patient, create_user(Role.FAMILY), scopes=("scheduling",))
    db.session.commit()
    db.session.expunge_all()
    loaded = []

    def note(target, context):
        loaded.append((type(target).__name__, target.id))

    event.listen(ConsentRecord, "load", note)
    event.listen(User, "load", note)
    try:
        with QueryCounter(db.engine) as counter:
            rows = access.family_in_force([p.id for p in patients], now=now)
    finally:
        event.remove(ConsentRecord, "load", note)
        event.remove(User, "load", note)
    assert len(rows) == 6 and counter.count == 1
    assert sorted(loaded) == sorted(("User", row.user.id) for row in rows)


def test_the_calendar_and_the_home_ask_each_row_about_scheduling(app_ctx, now):
    """A family member whose consent does not cover scheduling is never listed as coming,
    as someone who may come, or as linked but not booked."""
    clinic = create_clinic()
    seat = booking.book_private(
        actor=clinic.family,
        patient_id=clinic.patient.id,
        session_type_id=clinic.private.id,
        starts_at=booking.slots_for(clinic.therapist.id, clinic.private, now=now)[0],
        now=now,
    )
    coming = add_family(clinic.patient, "Eve Attends", scopes=("attendance",))
    add_family(clinic.patient, "Fay Attends", scopes=("attendance",))
    may_come = add_family(clinic.patient, "Gus Schedules")
    db.session.add(AppointmentAttendee(seat=seat, user_id=coming.id, added_at=now))
    db.session.flush()
    _, people = booking.therapist_calendar(
        clinic.therapist, now - timedelta(days=1), now + timedelta(days=30), now=now
    )
    who = people[seat.id]
    assert [m.user.name for m in who.coming] == ["Maria Rivera"]
    assert [p.name for p in who.not_allowed] == ["Eve Attends"]
    assert [m.user.name for m in who.not_coming] == ["Gus Schedules"]
    home = homes.therapist_home(clinic.therapist, now=now)
    assert [(m.id, p.id) for m, p in home.not_booked] == [(may_come.id, clinic.patient.id)]


def test_a_session_may_end_as_the_consent_does(app_ctx, now):
    patient = create_user(Role.PATIENT)
    record = create_consent(patient, create_user(Role.FAMILY), expires_at=now + timedelta(days=1))
    until = access.in_force_until(record, patient, now=now)
    assert access.lasts_through(until, now + timedelta(days=1))
    assert not access.lasts_through(until, now + timedelta(days=1, seconds=1))
    assert access.lasts_through(None, now + timedelta(days=999))
    # No consent in force: nothing ahead is covered.
    assert not access.lasts_through(
        access.in_force_until(None, patient, now=now), now + timedelta(seconds=1)
    )


def test_a_renewal_drops_the_scopes_it_no_longer_covers_in_order(app_ctx, now):
    patient, member = create_user(Role.PATIENT), create_user(Role.FAMILY)
    old = [
        create_consent(patient, member, scopes=("scheduling", "progress")),
        create_consent(patient, member, scopes=("attendance",)),
    ]
    by = create_consent(patient, member, scopes=("scheduling",))
    assert access.scopes_dropped(old, by) == [Scope.ATTENDANCE, Scope.PROGRESS]
    assert access.scopes_dropped([], by) == []


def test_when_access_ended_under_each_consent(app_ctx, now):
    patient, member = create_user(Role.PATIENT), create_user(Role.FAMILY)
    in_force = create_consent(patient, member, expires_at=now + timedelta(days=3))
    lapsed = create_consent(patient, member, expires_at=now - timedelta(days=2))
    revoked = create_consent(patient, member)
    superseded = create_consent(patient, member, expires_at=now + timedelta(days=3))
    for record, reason in (
        (revoked, ClosureReason.REVOKED),
        (superseded, ClosureReason.SUPERSEDED),
    ):
        db.session.add(
            ConsentClosure(consent_id=record.id, reason=reason, closed_at=now - timedelta(days=1))
        )
    db.session.flush()
    db.session.expire_all()
    ended = {
        record.id: access.access_ended_at(record, patient, now)
        for record in db.session.scalars(select(ConsentRecord))
    }
    assert ended == {
        in_force.id: None,
        lapsed.id: now - timedelta(days=2),
        revoked.id: now - timedelta(days=1),
        superseded.id: None,
    }


def test_pairs_with_scope_answers_as_the_consent_in_force_does(app_ctx, now):
    """`pairs_with_scope` reads the rule's columns alone (every booking's `hold_consents`):
    its answer for each pair and scope is `active_consent`'s, read as whole consents."""
    patients = [create_user(Role.PATIENT) for _ in range(2)]
    members = [create_user(Role.FAMILY) for _ in range(6)]
    first, second = patients
    create_consent(first, members[0], scopes=("scheduling", "progress"))
    create_consent(first, members[1], scopes=("progress",))
    create_consent(first, members[2], expires_at=now - timedelta(days=1))  # ended by the clock
    revoked = create_consent(first, members[3], scopes=("scheduling", "attendance"))
    db.session.add(
        ConsentClosure(consent_id=revoked.id, reason=ClosureReason.REVOKED, closed_at=now)
    )
    create_consent(first, members[3], scopes=("attendance",), now=now - timedelta(hours=1))
    by_episode = create_consent(first, members[4], days_after_episode=3)
    db.session.get(Episode, by_episode.episode_id).ended_on = now - timedelta(days=4)
    create_consent(second, members[4], scopes=("scheduling",))
    create_consent(second, members[5], scopes=("progress",), now=now + timedelta(hours=1))
    create_consent(second, members[5], scopes=("scheduling",))  # older: the newer one answers
    db.session.flush()
    pairs = {(m.id, p.id) for m in members for p in patients}
    for scope in (None, *Scope):
        expected = set()
        for member_id, patient_id in pairs:
            consent = access.active_consent(member_id, patient_id, now=now)
            if consent is not None and (scope is None or scope in consent.scopes):
                expected.add((member_id, patient_id))
        assert access.pairs_with_scope(pairs, scope, now=now) == expected, scope
    held = access.pairs_with_scope(pairs, Scope.SCHEDULING, now=now)
    assert held == {(members[0].id, first.id), (members[4].id, second.id)}
