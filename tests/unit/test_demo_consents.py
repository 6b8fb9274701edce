"""The demo shows every consent state, made through the services."""

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink import demo
from familylink.extensions import db
from familylink.models import ConsentRecord, User
from familylink.services import consent
from tests.moments import NOON


def test_the_demo_has_active_expiring_revoked_and_expired_consents(app_ctx, now):
    demo.seed(password="demo password long enough", now=now, progress=lambda _: None)
    statuses = Counter()
    for record in db.session.scalars(select(ConsentRecord)):
        patient = db.session.get(User, record.patient_id)
        statuses[consent.status_of(record, patient, now)] += 1
        assert str(consent.REDISCLOSURE_NOTICE) in record.text_snapshot
    assert {"active", "expiring", "revoked", "expired"} <= set(statuses)


def test_demo_family_members_see_what_the_story_says(app_ctx, now):
    demo.seed(password="demo password long enough", now=now, progress=lambda _: None)
    by_email = {u.email: u for u in db.session.scalars(select(User))}
    maria = by_email["maria@example.org"]
    jordan = by_email["jordan@example.org"]
    assert consent.may_disclose(maria.id, jordan.id, "attendance", now=now)
    assert not consent.may_disclose(maria.id, jordan.id, "progress", now=now)
    for name in ("pat", "drew"):
        assert consent.linked_patients(by_email[f"{name}@example.org"], now=now) == []
    assert consent.linked_patients(by_email["kim@example.org"], now=now)


def test_the_demo_has_a_discharged_patient_whose_episode_consent_ended(app_ctx, now):
    from familylink.services import episodes

    demo.seed(password="demo password long enough", now=now, progress=lambda _: None)
    by_email = {u.email: u for u in db.session.scalars(select(User))}
    morgan, robin = by_email["morgan@example.org"], by_email["robin@example.org"]
    (episode,) = episodes.episodes_of(morgan.id)
    assert episode.ended_on is not None and episode.end_reason == "completed"
    record = db.session.scalar(select(ConsentRecord).where(ConsentRecord.patient_id == morgan.id))
    assert record.closure.reason == "expired"
    assert record.closure.closed_at == episode.ended_on + timedelta(days=3)
    assert not consent.may_disclose(robin.id, morgan.id, None, now=now)


def test_the_demo_has_program_attendance_that_only_jordans_parents_read(app_ctx, now):
    from familylink.services import attendance

    demo.seed(password="demo password long enough", now=now, progress=lambda _: None)
    by_email = {u.email: u for u in db.session.scalars(select(User))}
    jordan = by_email["jordan@example.org"]
    weeks = attendance.family_summary(by_email["maria@example.org"], jordan.id, now=now)
    assert (sum(w.attended for w in weeks), sum(w.excused for w in weeks)) == (4, 1)
    assert attendance.family_summary(by_email["ada@example.org"], jordan.id, now=now) is None


def test_the_demo_has_an_approved_update_ada_reads_and_one_waiting_for_sam(app_ctx, now):
    from familylink.services import progress_updates

    demo.seed(password="demo password long enough", now=now, progress=lambda _: None)
    by_email = {u.email: u for u in db.session.scalars(select(User))}
    ada, sam = by_email["ada@example.org"], by_email["sam@example.org"]
    shown = progress_updates.released_to(ada, sam.id, now=now)
    assert len(shown) == 1 and "relaxed meal" in shown[0][1]
    statuses = [u.status for u in progress_updates.updates_of(sam.id)]
    assert statuses == ["awaiting_patient", "released"]


@pytest.mark.parametrize("days_later", range(7))
def test_the_demo_fills_this_week_and_the_next_whatever_the_day(app_ctx, days_later):
    """`make screenshots` seeds the demo at the moment it runs: the therapist's calendar
    week, the week after and the family's home are never empty, even on a Friday night."""
    from familylink.models import Appointment
    from familylink.services import homes
    from familylink.services.program import local_day, start_of_day

    now = NOON + timedelta(days=days_later)  # Wednesday, then every other day of the week
    demo.seed(password="demo password long enough", now=now, progress=lambda _: None)
    by_email = {u.email: u for u in db.session.scalars(select(User))}
    lee = by_email["lee@example.org"]
    today = local_day(now)
    monday = today - timedelta(days=today.weekday())
    for first_day in (monday, monday + timedelta(days=7)):
        start = start_of_day(first_day)
        end = start_of_day(first_day + timedelta(days=7))
        week = db.session.scalars(
            select(Appointment).where(
                Appointment.therapist_id == lee.id,
                Appointment.starts_at >= start,
                Appointment.starts_at < end,
            )
        ).all()
        assert [a for a in week if a.seats], f"no family session in the week of {first_day}"
    home = homes.family_home(by_email["maria@example.org"], now=now)
    assert home.next_seat is not None and home.new_readings
