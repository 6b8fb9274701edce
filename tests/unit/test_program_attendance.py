"""Program attendance: a therapist records their own patients' program days (corrections
audited, days to come and other therapists' patients refused); a family member with the
attendance scope reads a plain weekly summary through the gate, which records it."""

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import AuditEvent, ProgramAttendance, Role
from familylink.services import attendance
from familylink.services.attendance import WeekSummary
from familylink.services.errors import NotFound, ValidationError
from tests import factories
from tests.moments import NOON

TODAY = date(2026, 11, 18)  # NOON's day in New York, the program's time zone: a Wednesday
MONDAY = date(2026, 11, 16)


def _people():
    lee = factories.create_user(Role.THERAPIST, email="lee@example.org")
    jordan = factories.create_user(
        Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee
    )
    sam = factories.create_user(Role.PATIENT, name="Sam Okafor", therapist=lee)
    maria = factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
    return lee, jordan, sam, maria


def _rows(patient_id: int) -> list[tuple[date, str, int]]:
    return list(
        db.session.execute(
            select(
                ProgramAttendance.day, ProgramAttendance.status, ProgramAttendance.recorded_by_id
            )
            .where(ProgramAttendance.patient_id == patient_id)
            .order_by(ProgramAttendance.day)
        ).tuples()
    )


def _audit(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def test_a_therapist_records_a_day_for_several_of_their_patients(app_ctx, now):
    lee, jordan, sam, _ = _people()
    changed = attendance.record_program_attendance(
        lee, TODAY, {jordan.id: "attended", sam.id: "excused"}, now=now
    )
    assert changed == 2
    assert _rows(jordan.id) == [(TODAY, "attended", lee.id)]
    assert _rows(sam.id) == [(TODAY, "excused", lee.id)]
    recorded = _audit("program_attendance.recorded")
    assert {(e.patient_id, e.detail["status"]) for e in recorded} == {
        (jordan.id, "attended"),
        (sam.id, "excused"),
    }


def test_a_patient_left_unanswered_stays_unrecorded(app_ctx, now):
    lee, jordan, sam, _ = _people()
    attendance.record_program_attendance(lee, TODAY, {jordan.id: "absent"}, now=now)
    assert _rows(sam.id) == []
    assert attendance.day_sheet(lee, TODAY, now=now).statuses == {jordan.id: "absent"}


def test_a_correction_updates_the_one_row_and_the_audit_keeps_what_it_said(app_ctx, now):
    lee, jordan, _, _ = _people()
    attendance.record_program_attendance(lee, TODAY, {jordan.id: "absent"}, now=now)
    later = now + timedelta(hours=2)
    assert attendance.record_program_attendance(lee, TODAY, {jordan.id: "excused"}, now=later) == 1
    assert _rows(jordan.id) == [(TODAY, "excused", lee.id)]
    (row,) = db.session.scalars(select(ProgramAttendance))
    assert row.recorded_at == later
    (corrected,) = _audit("program_attendance.corrected")
    assert corrected.detail == {"day": "2026-11-18", "status": "excused", "was": "absent"}
    assert corrected.patient_id == jordan.id and corrected.object_id == row.id


def test_saving_the_same_status_again_changes_nothing_and_audits_nothing_more(app_ctx, now):
    lee, jordan, _, _ = _people()
    attendance.record_program_attendance(lee, TODAY, {jordan.id: "attended"}, now=now)
    assert attendance.record_program_attendance(lee, TODAY, {jordan.id: "attended"}, now=now) == 0
    assert len(_audit("program_attendance.recorded")) == 1
    assert _audit("program_attendance.corrected") == []


def test_a_day_still_to_come_is_refused(app_ctx, now):
    lee, jordan, _, _ = _people()
    with pytest.raises(ValidationError) as refused:
        attendance.record_program_attendance(
            lee, TODAY + timedelta(days=1), {jordan.id: "attended"}, now=now
        )
    assert refused.value.field == "day"
    assert _rows(jordan.id) == []


def test_today_is_the_program_days_today_not_utcs(app_ctx):
    lee, jordan, _, _ = _people()
    evening = NOON + timedelta(hours=9)  # 9 PM on the 18th in New York, the 19th in UTC
    with pytest.raises(ValidationError):
        attendance.record_program_attendance(
            lee, TODAY + timedelta(days=1), {jordan.id: "attended"}, now=evening
        )


def test_a_status_not_in_the_list_is_refused(app_ctx, now):
    lee, jordan, _, _ = _people()
    with pytest.raises(ValidationError):
        attendance.record_program_attendance(lee, TODAY, {jordan.id: "late"}, now=now)
    assert _rows(jordan.id) == []


def test_another_therapists_patient_looks_like_no_one(app_ctx, now):
    lee, jordan, _, _ = _people()
    patel = factories.create_user(Role.THERAPIST)
    casey = factories.create_user(Role.PATIENT, therapist=patel)
    with pytest.raises(NotFound):
        attendance.record_program_attendance(
            lee, TODAY, {jordan.id: "attended", casey.id: "attended"}, now=now
        )
    with pytest.raises(NotFound):
        attendance.record_program_attendance(lee, TODAY, {None: "attended"}, now=now)
    with pytest.raises(NotFound):
        attendance.record_program_attendance(patel, TODAY, {jordan.id: "attended"}, now=now)
    assert db.session.scalar(select(func.count(ProgramAttendance.id))) == 0


def test_only_a_therapist_records(app_ctx, now):
    lee, jordan, _, maria = _people()
    with pytest.raises(NotFound):
        attendance.record_program_attendance(jordan, TODAY, {jordan.id: "attended"}, now=now)
    with pytest.raises(NotFound):
        attendance.record_program_attendance(maria, TODAY, {jordan.id: "attended"}, now=now)


def test_the_day_sheet_lists_the_therapists_own_patients_and_audits_the_view(app_ctx, now):
    lee, jordan, sam, _ = _people()
    factories.create_user(Role.PATIENT, therapist=factories.create_user(Role.THERAPIST))
    sheet = attendance.day_sheet(lee, TODAY, now=now)
    assert [p.id for p in sheet.patients] == [jordan.id, sam.id]
    db.session.commit()  # rows recorded outside an action are written at the commit
    viewed = {e.patient_id for e in _audit("patient_data.viewed")}
    assert viewed == {jordan.id, sam.id}


# --- The family member's summary ---------------------------------------------------------


def test_weeks_count_this_week_first_and_leave_out_other_weeks(app):
    days = [
        (MONDAY, "attended"),
        (MONDAY + timedelta(days=1), "absent"),
        (TODAY, "excused"),
        (MONDAY - timedelta(days=3), "attended"),  # last week's Friday
        (MONDAY - timedelta(weeks=4), "attended"),  # before the four weeks shown
        (TODAY + timedelta(days=1), "attended"),  # a day to come is never counted
    ]
    weeks = attendance.weekly_summary(days, today=TODAY)
    assert weeks == [
        WeekSummary(MONDAY, attended=1, absent=1, excused=1),
        WeekSummary(MONDAY - timedelta(weeks=1), attended=1),
        WeekSummary(MONDAY - timedelta(weeks=2)),
        WeekSummary(MONDAY - timedelta(weeks=3)),
    ]


@pytest.mark.parametrize(
    ("week", "words"),
    [
        (WeekSummary(MONDAY, attended=3, absent=1), "Jordan came to 3 of 4 program days."),
        (WeekSummary(MONDAY, attended=1), "Jordan came to 1 of 1 program day."),
        (WeekSummary(MONDAY, absent=1), "Jordan came to 0 of 1 program day."),
        (
            WeekSummary(MONDAY, attended=2, excused=1),
            "Jordan came to 2 of 3 program days. 1 absence was excused.",
        ),
        (
            WeekSummary(MONDAY, attended=1, absent=1, excused=2),
            "Jordan came to 1 of 4 program days. 2 absences were excused.",
        ),
        (WeekSummary(MONDAY), "No program days recorded."),
    ],
)
def test_a_week_reads_in_plain_words(app, week, words):
    with app.test_request_context("/"):
        assert attendance.week_sentence(week, "Jordan") == words


def test_weeks_are_named_from_today(app):
    with app.test_request_context("/"):
        labels = [
            attendance.week_label(week, today=TODAY)
            for week in attendance.weekly_summary([], today=TODAY)
        ]
    assert labels == ["This week", "Last week", "The week of November 2", "The week of October 26"]


def test_a_member_with_the_attendance_scope_gets_the_summary_and_it_is_audited(app_ctx, now):
    lee, jordan, _, maria = _people()
    consent = factories.create_consent(jordan, maria, scopes=("scheduling", "attendance"))
    attendance.record_program_attendance(lee, MONDAY, {jordan.id: "attended"}, now=now)
    attendance.record_program_attendance(lee, TODAY, {jordan.id: "absent"}, now=now)
    weeks = attendance.family_summary(maria, jordan.id, now=now)
    assert weeks[0] == WeekSummary(MONDAY, attended=1, absent=1)
    db.session.commit()  # rows recorded outside an action are written at the commit
    (disclosed,) = [
        e for e in _audit("disclosure.viewed") if e.detail == {"what": "program attendance"}
    ]
    assert (disclosed.patient_id, disclosed.recipient_id, disclosed.object_id) == (
        jordan.id,
        maria.id,
        consent.id,
    )


def test_without_the_scope_there_is_no_summary_and_nothing_is_recorded(app_ctx, now):
    lee, jordan, _, maria = _people()
    factories.create_consent(jordan, maria, scopes=("scheduling", "progress"))
    attendance.record_program_attendance(lee, TODAY, {jordan.id: "attended"}, now=now)
    before = db.session.scalar(select(func.count(AuditEvent.id)))
    assert attendance.family_summary(maria, jordan.id, now=now) is None
    assert db.session.scalar(select(func.count(AuditEvent.id))) == before


def test_a_revoked_or_expired_consent_shows_no_summary(app_ctx, now):
    from familylink.services import consent

    lee, jordan, sam, maria = _people()
    record = factories.create_consent(jordan, maria, scopes=("attendance",))
    consent.revoke_consent(jordan, record.id, now=now - timedelta(hours=1))
    factories.create_consent(
        sam, maria, scopes=("attendance",), expires_at=now - timedelta(minutes=1)
    )
    assert attendance.family_summary(maria, jordan.id, now=now) is None
    assert attendance.family_summary(maria, sam.id, now=now) is None


def test_a_consent_after_a_readmission_shows_nothing_of_the_episode_before(app_ctx, now):
    """A new episode never revives an old consent, nor what only the old one covered: the
    summary under a consent signed in the new episode starts on that episode's first day."""
    from familylink.services import consent, episodes

    lee, jordan, _, maria = _people()  # episode 1 from Wednesday 4 November
    first = factories.create_consent(
        jordan, maria, scopes=("attendance",), now=now - timedelta(days=13)
    )
    week_before = MONDAY - timedelta(weeks=1)
    attendance.record_program_attendance(
        lee, week_before, {jordan.id: "attended"}, now=now - timedelta(days=9)
    )
    consent.revoke_consent(jordan, first.id, now=now - timedelta(days=8))
    episodes.discharge(
        lee,
        jordan.id,
        ended_on=week_before + timedelta(days=1),
        reason="completed",
        now=now - timedelta(days=8),
    )
    episodes.readmit(lee, jordan.id, started_on=MONDAY, now=now - timedelta(days=2))
    factories.create_consent(jordan, maria, scopes=("attendance",), now=now - timedelta(days=1))
    attendance.record_program_attendance(lee, MONDAY, {jordan.id: "attended"}, now=now)
    weeks = attendance.family_summary(maria, jordan.id, now=now)
    assert weeks[:2] == [WeekSummary(MONDAY, attended=1), WeekSummary(week_before)]
