"""Emails about a patient to the patient or their care team (a reminder, a late cancellation,
a family contact's access ending) name the patient, as a family member's emails do: their
outbox and audit rows carry the patient's id, so the audit log shows whom they told about
whom. No family consent governs them (`access.IN_CARE`): they are sent whatever the family's
consents say, and the patient's accounting of disclosures does not list them."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, ConsentRecord, OutboxEmail, OutboxStatus, Role
from familylink.services import access, account_admin, booking, consent, mail, reminders
from familylink.services.consent.records import disclosures_of
from tests.booking_setup import create_clinic, family_seat
from tests.factories import create_user

# Told about the patient: the patient themself, their therapist, their family member.
CARE_KINDS = {"reminder", "late_cancellation", "family_access_ended_therapist"}


@pytest.fixture
def mail_ctx(mail_app):
    with mail_app.app_context():
        yield mail_app


def test_emails_to_the_patient_and_care_team_name_the_patient(mail_ctx, smtp_server, now):
    clinic = create_clinic()
    patient, therapist, family = clinic.patient, clinic.therapist, clinic.family
    seat = family_seat(clinic, now + timedelta(hours=3), booked_at=now - timedelta(days=2))
    later = now + timedelta(minutes=90)
    assert reminders.run_sweep(later) == 2  # the 2-hour reminders: the family's and the patient's
    db.session.commit()
    assert mail.send_pending(now=later).sent == 2  # before the cancellation would cancel them
    booking.cancel_seat(actor=family, seat_id=seat.id, now=later)  # late: the therapist is told
    (consent_id,) = db.session.scalars(select(ConsentRecord.id)).all()
    consent.revoke_consent(patient, consent_id, now=later)  # the therapist is told
    db.session.commit()

    rows = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.to_user_id.in_([patient.id, therapist.id]))
    ).all()
    assert {row.kind for row in rows} == CARE_KINDS
    assert {row.patient_id for row in rows} == {patient.id}
    ids = {row.id for row in rows}

    mail.send_pending(now=later)
    db.session.expire_all()
    # The family's emails about the patient end with the consent; these do not.
    assert {db.session.get(OutboxEmail, i).status for i in ids} == {OutboxStatus.SENT}
    for action in ("email.queued", "email.sent"):
        told = db.session.execute(
            select(AuditEvent.recipient_id, AuditEvent.patient_id).where(
                AuditEvent.action == action, AuditEvent.object_id.in_(ids)
            )
        ).all()
        assert sorted(told) == sorted((row.to_user_id, patient.id) for row in rows)

    listed = {row["recipient"] for row in disclosures_of(patient)}
    assert family.name in listed
    assert therapist.name not in listed and patient.name not in listed


def test_an_in_care_email_reaches_only_the_patient_or_a_therapist(app_ctx, now):
    """The send-time check lets an `IN_CARE` email through without a family consent, so an
    email tagged so by mistake must not reach a family member, another patient or an admin."""
    clinic = create_clinic()
    patient, family = clinic.patient, clinic.family
    other_patient = create_user(Role.PATIENT, therapist=clinic.therapist)
    admin = create_user(Role.ADMIN)
    asked = {
        (patient.id, patient.id),
        (clinic.therapist.id, patient.id),
        (family.id, patient.id),
        (other_patient.id, patient.id),
        (admin.id, patient.id),
        (family.email, patient.id),
    }
    allowed = access.recipients_allowed(asked, access.IN_CARE, now=now)
    assert allowed == {(patient.id, patient.id), (clinic.therapist.id, patient.id)}


def test_no_email_about_a_patient_reaches_a_disabled_account(app_ctx, now):
    """An admin disables an account to cut someone off (a lost phone, a family falling out):
    the sender then tells them nothing more about a patient, consent or care team alike."""
    clinic = create_clinic()
    patient, therapist, family = clinic.patient, clinic.therapist, clinic.family
    family_pair, therapist_pair = (family.id, patient.id), (therapist.id, patient.id)
    assert access.recipients_allowed({family_pair}, "scheduling", now=now) == {family_pair}
    assert access.recipients_allowed({therapist_pair}, access.IN_CARE, now=now) == {therapist_pair}
    for user in (family, therapist):
        account_admin.set_account_active(user, False, actor=None, now=now)
    db.session.flush()
    assert access.recipients_allowed({family_pair}, "scheduling", now=now) == set()
    assert access.recipients_allowed({family_pair}, None, now=now) == set()
    assert access.recipients_allowed({therapist_pair}, access.IN_CARE, now=now) == set()
