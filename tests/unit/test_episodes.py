"""Episodes of care: discharge ends "until the end of this episode" consents, through the one
operation that ends access; a readmission never revives them (issue 16, point 4)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, ConsentRecord, Episode, OutboxEmail, Role, User
from familylink.services import accounts, consent, episodes
from familylink.services.errors import Conflict, NotFound, ValidationError
from tests import factories

TODAY = date(2026, 11, 18)  # NOON's day in New York, the program's time zone


def _people():
    lee = factories.create_user(Role.THERAPIST, email="lee@example.org")
    jordan = factories.create_user(
        Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee
    )
    maria = factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
    return lee, jordan, maria


def _until_episode_end() -> consent.ConsentDetails:
    """Jordan's consent to Maria, scheduling only, ending with the episode of care."""
    return consent.ConsentDetails(
        recipient_name="Maria Rivera",
        recipient_relationship="Mother",
        recipient_email="maria@example.org",
        purpose=consent.DEFAULT_PURPOSE,
        scopes=["scheduling"],
        expiry_kind="episode_end",
        expiry_days_after_episode=0,
        signature_name="Jordan Rivera",
        understood=True,
    )


def _actions(patient_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.patient_id == patient_id)
            .order_by(AuditEvent.id)
        )
    )


def test_discharge_ends_access_at_once_when_the_end_plus_its_days_has_passed(app_ctx, now):
    lee, jordan, maria = _people()
    record = factories.create_consent(jordan, maria, days_after_episode=3)
    episode = episodes.discharge(
        lee, jordan.id, ended_on=TODAY - timedelta(days=5), reason="completed", now=now
    )
    assert (episode.number, episode.end_reason, episode.ended_by_id) == (1, "completed", lee.id)
    assert record.closure is not None and record.closure.reason == "expired"
    assert not consent.may_disclose(maria.id, jordan.id, None, now=now)
    assert [a for a in _actions(jordan.id) if a.startswith(("episode", "consent.expired"))] == [
        "episode.ended",
        "consent.expired",
    ]


def test_discharge_leaves_access_until_its_days_pass_then_the_sweep_ends_it(app_ctx, now):
    lee, jordan, maria = _people()
    record = factories.create_consent(jordan, maria, days_after_episode=7)
    episode = episodes.discharge(lee, jordan.id, ended_on=TODAY, reason="transferred", now=now)
    assert record.closure is None
    end = episode.ended_on + timedelta(days=7)  # from the start of the day of discharge
    assert end == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # midnight in New York
    assert consent.may_disclose(maria.id, jordan.id, None, now=end - timedelta(hours=6))
    assert consent.sweep_consents(end - timedelta(hours=6)).expired == 0
    assert consent.sweep_consents(end).expired == 1
    assert record.closure.reason == "expired"
    assert not consent.may_disclose(maria.id, jordan.id, None, now=end)


@pytest.mark.parametrize(
    ("kind", "to"),
    [("family_access_ended", "maria@example.org"),
     ("family_access_ended_patient", "jordan@example.org")],
    ids=["family member", "patient"],
)  # fmt: skip
def test_the_family_member_and_the_patient_are_told_neutrally(app_ctx, now, kind, to):
    lee, jordan, maria = _people()
    factories.create_consent(jordan, maria, days_after_episode=0)
    episodes.discharge(lee, jordan.id, ended_on=TODAY, reason="left", now=now)
    notice = db.session.scalar(
        select(OutboxEmail).where(OutboxEmail.kind == kind, OutboxEmail.to_address == to)
    )
    words = f"{notice.subject} {notice.text_body} {notice.html_body}".lower()
    assert "access has ended" in words or "access ended" in words
    for word in ("discharge", "episode", "treatment", "left", "complet", "program"):
        assert word not in words


def test_a_readmission_does_not_revive_a_consent_of_the_earlier_episode(app_ctx, now):
    lee, jordan, maria = _people()
    record = factories.create_consent(jordan, maria, days_after_episode=30)
    episodes.discharge(lee, jordan.id, ended_on=TODAY, reason="completed", now=now)
    second = episodes.readmit(lee, jordan.id, started_on=TODAY, now=now)
    assert second.number == 2
    later = now + timedelta(days=31)
    assert not consent.may_disclose(maria.id, jordan.id, None, now=later)
    assert consent.sweep_consents(later).expired == 1
    assert record.closure.reason == "expired"


def test_an_episode_consent_signed_in_the_new_episode_is_unaffected_by_the_old_end(app_ctx, now):
    lee, jordan, _ = _people()
    episodes.discharge(lee, jordan.id, ended_on=TODAY - timedelta(days=3), reason="left", now=now)
    episodes.readmit(lee, jordan.id, started_on=TODAY, now=now)
    details = _until_episode_end()
    record = consent.sign_consent(jordan, details, now=now)
    assert record.episode.number == 2
    assert consent.is_active(record, jordan, now + timedelta(days=400))
    assert consent.sweep_consents(now + timedelta(days=400)).expired == 0


def test_a_discharged_patient_cannot_sign_an_end_of_episode_consent(app_ctx, now):
    lee, jordan, _ = _people()
    episodes.discharge(lee, jordan.id, ended_on=TODAY, reason="completed", now=now)
    details = _until_episode_end()
    with pytest.raises(ValidationError) as refused:
        consent.sign_consent(jordan, details, now=now)
    assert refused.value.field == "expiry_kind"
    assert db.session.scalar(select(ConsentRecord.id)) is None


@pytest.mark.parametrize(
    ("ended_on", "reason", "field"),
    [
        (TODAY + timedelta(days=1), "completed", "ended_on"),
        (TODAY - timedelta(days=60), "completed", "ended_on"),  # before the episode started
        (None, "completed", "ended_on"),
        (TODAY, "relapsed", "reason"),
        (TODAY, None, "reason"),
    ],
    ids=["future", "before start", "no date", "reason not on the list", "no reason"],
)
def test_discharge_refuses_bad_input_and_changes_nothing(app_ctx, now, ended_on, reason, field):
    lee, jordan, _ = _people()
    with pytest.raises(ValidationError) as refused:
        episodes.discharge(lee, jordan.id, ended_on=ended_on, reason=reason, now=now)
    assert refused.value.field == field
    assert (
        db.session.scalar(select(Episode.ended_on).where(Episode.patient_id == jordan.id)) is None
    )


def test_only_the_patients_own_therapist_may_discharge_or_readmit(app_ctx, now):
    _, jordan, _ = _people()
    other = factories.create_user(Role.THERAPIST)
    with pytest.raises(NotFound):
        episodes.discharge(other, jordan.id, ended_on=TODAY, reason="completed", now=now)
    with pytest.raises(NotFound):
        episodes.readmit(other, jordan.id, started_on=TODAY, now=now)


def test_discharge_and_readmission_follow_the_episode_in_progress(app_ctx, now):
    lee, jordan, _ = _people()
    with pytest.raises(Conflict):
        episodes.readmit(lee, jordan.id, started_on=TODAY, now=now)
    episodes.discharge(lee, jordan.id, ended_on=TODAY - timedelta(days=2), reason="other", now=now)
    with pytest.raises(Conflict):
        episodes.discharge(lee, jordan.id, ended_on=TODAY, reason="completed", now=now)
    with pytest.raises(ValidationError):
        episodes.readmit(lee, jordan.id, started_on=TODAY - timedelta(days=3), now=now)
    episodes.readmit(lee, jordan.id, started_on=TODAY, now=now)
    assert [(e.number, e.ended_on is None) for e in episodes.episodes_of(jordan.id)] == [
        (1, False),
        (2, True),
    ]
    assert "episode.started" in _actions(jordan.id)


def test_the_disclosure_log_shows_when_access_ended(app_ctx, now):
    lee, jordan, maria = _people()
    factories.create_consent(jordan, maria, days_after_episode=0)
    episodes.discharge(lee, jordan.id, ended_on=TODAY, reason="completed", now=now)
    rows = consent.disclosures_of(jordan)
    assert [(r["recipient"], str(r["what"])) for r in rows] == [
        ("Maria Rivera", "Access ended (the consent reached its end)")
    ]


def test_the_episode_in_progress_is_the_latest_until_it_ends(app_ctx, now):
    lee, jordan, _ = _people()
    (first,) = episodes.episodes_of(jordan.id)
    assert episodes.in_progress([first]) is first
    episodes.discharge(lee, jordan.id, ended_on=TODAY - timedelta(days=2), reason="other", now=now)
    assert episodes.in_progress(episodes.episodes_of(jordan.id)) is None
    second = episodes.readmit(lee, jordan.id, started_on=TODAY, now=now)
    assert episodes.in_progress(episodes.episodes_of(jordan.id)) is second
    assert episodes.in_progress([]) is None


@pytest.mark.parametrize("start", [TODAY + timedelta(days=1), date(2027, 6, 1)])
def test_enrolment_refuses_an_episode_start_to_come(app_ctx, now, start):
    lee = factories.create_user(Role.THERAPIST)
    with pytest.raises(ValidationError, match="no later than today") as refused:
        accounts.enrol_patient(
            lee, name="Sam Future", email="sam@example.org", episode_start=start, now=now
        )
    assert refused.value.field == "episode_start"
    assert db.session.scalar(select(User).where(User.email == "sam@example.org")) is None


def test_a_patient_enrolled_today_can_be_discharged_today(app_ctx, now):
    lee = factories.create_user(Role.THERAPIST)
    sam = accounts.enrol_patient(
        lee, name="Sam Today", email="sam@example.org", episode_start=TODAY, now=now
    )
    episode = episodes.discharge(lee, sam.id, ended_on=TODAY, reason="completed", now=now)
    assert episode.ended_on is not None
