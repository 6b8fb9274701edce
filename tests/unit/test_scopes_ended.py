"""A renewal that shares less (`consent.ending.end_scopes`): the member's unsent email that
needs a dropped scope is cancelled with its own reason, and the therapist's email says
what happened and no more: sessions left only when scheduling was dropped, emails
cancelled only when there were some, counted."""

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import OutboxEmail, OutboxStatus, Scope
from familylink.services import access, mail
from familylink.services.consent import ending
from tests.booking_setup import create_clinic
from tests.moments import NOON

NO_LONGER_COVERED = "consent no longer covers this"


@pytest.fixture
def clinic(app_ctx):
    # Maria's renewal goes on sharing attendance only.
    return create_clinic(scopes=("attendance",))


def _queue_for_member(clinic, count: int, scope: Scope) -> list[OutboxEmail]:
    return [
        mail.queue_email(
            "module_assigned",
            to=clinic.family,
            dedupe_key=f"reading:{scope}:{n}",
            now=NOON,
            context={"link": "https://example.org/x"},
            patient_id=clinic.patient.id,
            required_scope=str(scope),
        )
        for n in range(count)
    ]


def _end(clinic, *dropped: Scope) -> None:
    """As a renewal sharing only attendance ends `dropped` (`ending.replace`)."""
    consent = access.active_consent(clinic.family.id, clinic.patient.id, now=NOON)
    ending.end_scopes(consent, list(dropped), actor=clinic.patient, now=NOON)
    db.session.flush()


def _told(clinic) -> OutboxEmail:
    (told,) = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.kind == "family_access_narrowed_therapist")
    ).all()
    assert told.to_user_id == clinic.therapist.id
    return told


def test_when_no_email_was_pending_the_therapist_is_not_told_any_was_cancelled(clinic):
    _end(clinic, Scope.PROGRESS)
    told = _told(clinic)
    assert "cancelled" not in told.text_body and "cancelled" not in told.html_body


@pytest.mark.parametrize(
    ("count", "sentence"),
    [
        (1, "1 pending email about what is no longer shared was cancelled."),
        (3, "3 pending emails about what is no longer shared were cancelled."),
    ],
)
def test_the_therapist_is_told_how_many_emails_were_cancelled(clinic, count, sentence):
    _queue_for_member(clinic, count, Scope.PROGRESS)
    _end(clinic, Scope.PROGRESS)
    told = _told(clinic)
    assert sentence in told.text_body and sentence in told.html_body


@pytest.mark.parametrize(("dropped", "said"), [(Scope.SCHEDULING, True), (Scope.PROGRESS, False)])
def test_sessions_are_said_to_be_left_only_when_scheduling_was_dropped(clinic, dropped, said):
    _end(clinic, dropped)
    assert ("taken off future sessions" in _told(clinic).text_body) is said


def test_an_email_cancelled_for_a_dropped_scope_says_why_plainly(clinic):
    (dropped,) = _queue_for_member(clinic, 1, Scope.PROGRESS)
    (kept,) = _queue_for_member(clinic, 1, Scope.ATTENDANCE)
    _end(clinic, Scope.PROGRESS)
    db.session.refresh(dropped)
    db.session.refresh(kept)
    assert (dropped.status, dropped.last_error) == (OutboxStatus.CANCELLED, NO_LONGER_COVERED)
    assert kept.status == OutboxStatus.PENDING


def test_ending_access_still_cancels_with_consent_ended(clinic):
    (pending,) = _queue_for_member(clinic, 1, Scope.ATTENDANCE)
    assert mail.cancel_pending(patient_id=clinic.patient.id, to_user_ids=[clinic.family.id]) == 1
    db.session.refresh(pending)
    assert (pending.status, pending.last_error) == (OutboxStatus.CANCELLED, "consent ended")


def test_a_spanish_speaking_therapist_reads_the_count_in_spanish(clinic):
    clinic.therapist.locale = "es"
    _queue_for_member(clinic, 3, Scope.PROGRESS)
    _end(clinic, Scope.PROGRESS)
    told = _told(clinic)
    assert "Se cancelaron 3 correos pendientes sobre lo que ya no se comparte." in told.text_body
