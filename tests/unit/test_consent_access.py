"""The access check every family-facing page and email goes through."""

from datetime import timedelta

import pytest
from sqlalchemy import inspect as sa_inspect

from familylink.extensions import db
from familylink.models import ClosureReason, ConsentClosure, Role
from familylink.services import consent
from familylink.services.errors import NotFound
from tests.factories import create_consent


@pytest.fixture
def pair(create_user):
    therapist = create_user(Role.THERAPIST)
    patient = create_user(Role.PATIENT, therapist=therapist)
    family = create_user(Role.FAMILY)
    return patient, family


def test_no_consent_means_no_access(app_ctx, pair, now):
    patient, family = pair
    assert not consent.may_disclose(family.id, patient.id, None, now=now)
    with pytest.raises(NotFound):
        consent.patient_for_family(family, patient.id, scope=None, now=now, disclosure="x")


def test_an_active_consent_allows_only_its_scopes(app_ctx, pair, now):
    patient, family = pair
    create_consent(patient, family, scopes=("scheduling",), now=now)
    assert consent.may_disclose(family.id, patient.id, "scheduling", now=now)
    assert not consent.may_disclose(family.id, patient.id, "attendance", now=now)


def test_access_ends_at_the_exact_expiry_instant(app_ctx, pair, now):
    patient, family = pair
    create_consent(patient, family, now=now, expires_at=now + timedelta(hours=1))
    assert consent.may_disclose(family.id, patient.id, None, now=now + timedelta(minutes=59))
    assert not consent.may_disclose(family.id, patient.id, None, now=now + timedelta(hours=1))


def test_a_closed_consent_gives_no_access(app_ctx, pair, now):
    patient, family = pair
    record = create_consent(patient, family, now=now)
    db.session.add(
        ConsentClosure(consent_id=record.id, reason=ClosureReason.REVOKED, closed_at=now)
    )
    db.session.flush()
    db.session.expire_all()
    assert not consent.may_disclose(family.id, patient.id, None, now=now)


def test_linked_patients_lists_only_consented_patients(app_ctx, create_user, pair, now):
    patient, family = pair
    other_patient = create_user(Role.PATIENT)
    create_consent(patient, family, now=now)
    assert [p.id for p, _ in consent.linked_patients(family, now=now)] == [patient.id]
    assert other_patient.id not in [p.id for p, _ in consent.linked_patients(family, now=now)]


def test_a_consent_the_gate_read_still_gives_its_signed_text_and_no_closure(app_ctx, pair, now):
    """The gate's read leaves the signed text out (every page runs it); asked for, the text
    is read then, and the closure it found is none."""
    patient, family = pair
    record = create_consent(patient, family, now=now)
    signed = record.text_snapshot
    assert signed
    db.session.expunge_all()
    [(_patient, read)] = consent.linked_patients(family, now=now)
    assert "text_snapshot" in sa_inspect(read).unloaded
    assert read.closure is None
    assert read.text_snapshot == signed


def test_a_disclosure_is_audited(app_ctx, pair, now):
    from sqlalchemy import select

    from familylink.models import AuditEvent

    patient, family = pair
    create_consent(patient, family, now=now)
    consent.patient_for_family(family, patient.id, scope=None, now=now, disclosure="home")
    db.session.commit()  # rows recorded outside an action are written at the commit
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "disclosure.viewed"))
    assert (event.patient_id, event.recipient_id) == (patient.id, family.id)


def test_a_guessed_patient_id_is_refused_and_audited_without_a_dangling_reference(
    app_ctx, pair, now
):
    from sqlalchemy import select

    from familylink.models import AuditEvent

    _, family = pair
    with pytest.raises(NotFound):
        consent.patient_for_family(family, 99999, scope=None, now=now, disclosure="x")
    db.session.flush()  # PostgreSQL checks the foreign key here
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "access.denied"))
    assert (event.patient_id, event.detail["asked_for"]) == (None, 99999)


def test_a_seat_the_member_does_not_attend_discloses_nothing(app_ctx, now):
    """Drew, consented to the same patient, asks for Maria's seat: the same 404 as for a
    missing one, refused in the audit log, and nothing in the patient's accounting of
    disclosures (he was shown nothing)."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from familylink.models import AuditEvent
    from familylink.services import access
    from tests.booking_setup import add_family, create_clinic, family_seat

    clinic = create_clinic()
    drew = add_family(clinic.patient, "Drew Hale")
    seat = family_seat(clinic, now + timedelta(days=2), booked_at=now)

    def count(action):
        return db.session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == action, AuditEvent.actor_id == drew.id
            )
        )

    with pytest.raises(NotFound):
        access.seat(drew, seat.id, now=now, what="appointment")
    db.session.commit()
    assert (count("disclosure.viewed"), count("access.denied")) == (0, 1)
    assert consent.disclosures_of(clinic.patient) == []
    # Maria attends it: shown to her, and recorded as shown.
    assert access.seat(clinic.family, seat.id, now=now, what="appointment") is seat
    db.session.commit()
    assert [row["recipient"] for row in consent.disclosures_of(clinic.patient)] == ["Maria Rivera"]


def _disclosures() -> list[tuple]:
    from familylink.services import audit

    return [
        (e.actor_id, e.patient_id, e.recipient_id, e.object_type, e.object_id, e.detail)
        for e in audit.search(action="disclosure.viewed")
    ]


def test_family_records_reads_only_about_patients_in_force_and_discloses_what_it_shows(
    app_ctx, create_user, pair, now
):
    from types import SimpleNamespace

    from familylink.services import access

    patient, family = pair
    quiet = create_user(Role.PATIENT)  # a consent in force, and nothing to show about them
    stranger = create_user(Role.PATIENT)  # no consent at all
    create_consent(patient, family, now=now)
    create_consent(quiet, family, now=now)
    asked = []

    def read(patient_ids):
        asked.append(sorted(patient_ids))
        return [SimpleNamespace(patient_id=p.id) for p in (patient, patient, stranger)]

    patients, rows = access.family_records(family, read, now=now, what="things")
    assert asked == [sorted([patient.id, quiet.id])]
    assert set(patients) == {patient.id, quiet.id}
    assert [row.patient_id for row in rows] == [patient.id, patient.id]  # never the stranger
    assert _disclosures() == [(family.id, patient.id, family.id, None, None, {"what": "things"})]


def test_family_records_reads_nothing_without_a_consent_in_force(app_ctx, pair, now):
    from familylink.services import access

    _, family = pair

    def read(patient_ids):
        raise AssertionError("nothing may be read without a consent in force")

    assert access.family_records(family, read, now=now, what="things") == ({}, [])
    assert _disclosures() == []


def test_family_records_with_a_scope_reads_only_about_patients_whose_consent_covers_it(
    app_ctx, create_user, pair, now
):
    from types import SimpleNamespace

    from familylink.models import Scope
    from familylink.services import access

    patient, family = pair
    other = create_user(Role.PATIENT)  # a consent in force, without the scheduling scope
    create_consent(patient, family, scopes=("scheduling",), now=now)
    create_consent(other, family, scopes=("attendance",), now=now)
    asked = []

    def read(patient_ids):
        asked.append(sorted(patient_ids))
        return [SimpleNamespace(patient_id=p.id) for p in (patient, other)]

    patients, rows = access.family_records(
        family, read, now=now, what="sessions", scope=Scope.SCHEDULING
    )
    assert asked == [[patient.id]] and list(patients) == [patient.id]
    assert [row.patient_id for row in rows] == [patient.id]
    assert _disclosures() == [(family.id, patient.id, family.id, None, None, {"what": "sessions"})]


def test_family_records_without_what_records_nothing(app_ctx, pair, now):
    from types import SimpleNamespace

    from familylink.services import access

    patient, family = pair
    create_consent(patient, family, now=now)
    _, rows = access.family_records(
        family, lambda ids: [SimpleNamespace(patient_id=i) for i in ids], now=now, what=None
    )
    assert [row.patient_id for row in rows] == [patient.id]
    assert _disclosures() == []


def test_patients_covered_applies_the_scope_rule_to_the_gates_answer(
    app_ctx, create_user, pair, now
):
    from familylink.models import Scope
    from familylink.services import access

    patient, family = pair
    other = create_user(Role.PATIENT)
    create_consent(patient, family, scopes=("scheduling",), now=now)
    create_consent(other, family, scopes=("attendance",), now=now)
    linked = access.family_patients(family, now=now, what="home page")
    assert access.patients_covered(linked, Scope.SCHEDULING) == {patient.id}
    assert access.patients_covered(linked, None) == {patient.id, other.id}


def test_the_gates_answer_leaves_the_consents_words_unloaded_and_still_readable(app_ctx, pair, now):
    """The consent a family page is answered with carries the rule's columns only; whoever
    needs its words (the consent page, the signing flow) still reads them, loaded then."""
    from sqlalchemy import inspect

    from familylink.services import access

    patient, family = pair
    create_consent(patient, family, now=now)
    db.session.commit()
    db.session.expunge_all()  # read afresh, as a request does
    [(_, answer)] = access.linked_patients(family, now=now)
    opened = access.patient(family, patient.id, now=now, what=None)
    assert opened.consent is answer
    assert {"text_snapshot", "purpose", "revocation_statement"} <= inspect(answer).unloaded
    assert answer.scopes == ["scheduling"] and answer.expires_at is not None
    assert answer.text_snapshot == "test consent text" and answer.purpose.startswith("Coordinating")
