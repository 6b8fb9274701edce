"""The oracle's model on its own: each consent rule it encodes, checked without the app."""

from datetime import UTC, date, datetime, timedelta

from tests.privacy.model import PrivacyModel, Update

NOON = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)
MARIA = "maria@example.org"


def _model() -> PrivacyModel:
    model = PrivacyModel(zone="America/New_York", now=NOON)
    model.therapist_of = {"P1": "T1", "P2": "T2"}
    model.address_of = {"F1": MARIA}
    return model


def test_nothing_before_the_invitation_is_accepted_then_only_the_consents_scopes():
    model = _model()
    model.sign("P1", MARIA, {"attendance"}, None, False)
    assert not model.may_see_patient("F1", "P1")
    assert model.invited("P1", MARIA)
    model.accept("P1", "F1")
    assert model.may_see_patient("F1", "P1")
    assert not model.may_see_patient("F1", "P1", "scheduling")
    assert not model.may_see_patient("F1", "P2") and not model.may_see_patient("T2", "P1")


def test_a_dated_consent_ends_at_midnight_after_its_last_day_before_any_sweep():
    model = _model()
    model.sign("P1", MARIA, {"scheduling"}, date(2026, 11, 20), False)
    model.accept("P1", "F1")
    model.now = datetime(2026, 11, 21, 4, 59, tzinfo=UTC)  # 23:59 in New York
    assert model.may_see_patient("F1", "P1")
    model.now += timedelta(minutes=1)
    assert not model.may_see_patient("F1", "P1") and not model.invited("P1", MARIA)


def test_revocation_and_a_new_consent_supersede_and_renew():
    model = _model()
    first = model.sign("P1", MARIA, {"scheduling"}, None, False)
    model.accept("P1", "F1")
    second = model.sign("P1", MARIA, {"progress"}, None, False)
    assert first.closed == "superseded" and second.member == "F1"
    assert model.may_see_patient("F1", "P1", "progress")
    assert not model.may_see_patient("F1", "P1", "scheduling")
    model.end("P1", "F1", "revoked")
    assert not model.may_see_patient("F1", "P1")


def test_a_shared_reflection_reaches_only_the_therapist_of_the_patient_it_is_about():
    model = _model()
    for patient in ("P1", "P2"):
        model.sign(patient, MARIA, {"progress"}, None, False)
        model.accept(patient, "F1")
    model.reflections[("F1", "boundaries", "P1")] = ("Rflword", True)
    assert model.may_see_reflection("T1", "F1", "boundaries", "P1")
    assert not model.may_see_reflection("T2", "F1", "boundaries", "P1")
    assert not model.may_see_reflection("P1", "F1", "boundaries", "P1")
    model.reflections[("F1", "boundaries", "P1")] = ("Rflword", False)
    assert not model.may_see_reflection("T1", "F1", "boundaries", "P1")


def test_attendance_needs_its_own_scope():
    model = _model()
    model.sign("P1", MARIA, {"scheduling"}, None, False)
    model.accept("P1", "F1")
    assert not model.may_see_attendance("F1", "P1")
    model.sign("P1", MARIA, {"scheduling", "attendance"}, None, False)
    assert model.may_see_attendance("F1", "P1") and model.may_see_attendance("T1", "P1")
    assert not model.may_see_attendance("T2", "P1")


def test_one_family_member_sees_another_only_with_the_patients_yes_to_the_viewer():
    model = _model()
    model.address_of["F2"] = "luis@example.org"
    model.sign("P1", MARIA, {"scheduling"}, None, False, recipient="F1")
    model.sign("P1", "luis@example.org", {"scheduling"}, None, True, recipient="F2")
    assert model.may_see_member("P1", "F2") and model.may_see_member("T1", "F2")
    assert not model.may_see_member("P2", "F2") and not model.may_see_member("T2", "F2")
    assert not model.may_see_member("F2", "F1")  # Luis has the yes, but Maria is not linked
    model.accept("P1", "F1")
    model.accept("P1", "F2")
    assert model.may_see_member("F2", "F1") and not model.may_see_member("F1", "F2")
    model.end("P1", "F2", "revoked")
    assert not model.may_see_member("F2", "F1") and model.may_see_member("F2", "F2")


def test_the_program_attendance_summary_needs_the_attendance_scope_and_counts_this_week():
    model = _model()
    model.sign("P1", MARIA, {"scheduling"}, None, False)
    model.accept("P1", "F1")
    assert not model.may_see_program_attendance("F1", "P1")
    model.sign("P1", MARIA, {"attendance"}, None, False)  # a renewal with the scope
    assert model.may_see_program_attendance("F1", "P1")
    assert model.may_see_program_attendance("T1", "P1") and not model.may_see_program_attendance(
        "T2", "P1"
    )
    # NOON is Wednesday 2026-11-18 in New York: Monday counts, the Sunday before does not.
    model.record_program_day("P1", date(2026, 11, 16), "attended")
    model.record_program_day("P1", date(2026, 11, 17), "absent")
    model.record_program_day("P1", date(2026, 11, 15), "attended")
    assert model.this_weeks_program_days("P1") == (1, 2)
    model.record_program_day("P1", date(2026, 11, 17), "attended")  # a correction
    assert model.this_weeks_program_days("P1") == (2, 2)


def test_a_consent_after_a_readmission_counts_no_day_of_the_episode_before():
    model = _model()
    model.episodes = {"P1": (1, date(2026, 11, 2), False)}
    model.sign("P1", MARIA, {"attendance"}, None, False)
    model.accept("P1", "F1")
    model.record_program_day("P1", date(2026, 11, 16), "attended")  # Monday, episode 1
    model.end("P1", "F1", "revoked")
    model.discharge("P1", date(2026, 11, 17))
    model.readmit("P1", date(2026, 11, 18))
    model.record_program_day("P1", date(2026, 11, 18), "absent")
    model.sign("P1", MARIA, {"attendance"}, date(2027, 1, 31), False)  # to the linked member
    assert model.this_weeks_program_days("P1", "F1") == (0, 1)
    assert model.this_weeks_program_days("P1", "T1") == (1, 2)  # the therapist sees both


def _seated_in_video():
    """Maria (F1), linked to P1 under a scheduling consent, has a seat in T1's 90-minute
    video session "tok" tomorrow at noon; returns the model and when the session starts."""
    model = _model()
    starts = NOON + timedelta(days=1)
    model.video = {"tok": ("T1", starts, starts + timedelta(minutes=90))}
    model.sign("P1", MARIA, {"scheduling"}, None, False)
    model.accept("P1", "F1")
    model.take_seat("tok", "P1", "F1")
    return model, starts


def test_a_video_room_opens_to_its_attendees_from_15_minutes_before_to_the_end():
    model, starts = _seated_in_video()
    model.now = starts - timedelta(minutes=16)
    assert not any(model.may_enter_room(p, "tok") for p in ("T1", "P1", "F1"))
    model.now = starts - timedelta(minutes=15)
    assert all(model.may_enter_room(p, "tok") for p in ("T1", "P1", "F1"))
    assert not any(model.may_enter_room(p, "tok") for p in ("T2", "P2"))
    model.now = starts + timedelta(minutes=90)
    assert not model.may_enter_room("T1", "tok")


def test_revoking_takes_the_member_off_sessions_to_come_and_a_renewal_does_not_restore_it():
    model, starts = _seated_in_video()
    model.end("P1", "F1", "revoked")
    model.sign("P1", MARIA, {"scheduling"}, None, False)
    model.accept("P1", "F1")
    model.now = starts
    assert not model.may_enter_room("F1", "tok") and model.may_enter_room("P1", "tok")


def test_a_renewal_without_scheduling_takes_the_member_off_sessions_to_come():
    model, starts = _seated_in_video()
    model.sign("P1", MARIA, {"progress"}, None, False)
    model.sign("P1", MARIA, {"scheduling", "progress"}, None, False)
    model.now = starts
    assert not model.may_enter_room("F1", "tok")


def test_a_practice_entry_reaches_only_the_chosen_patients_therapist_while_consent_holds():
    model = _model()
    model.sign("P1", MARIA, {"progress"}, None, False)
    model.accept("P1", "F1")
    assert model.may_share_practice("F1", "P1") and not model.may_share_practice("F1", "P2")
    model.practice = {
        1: ("F1", "before_after", "Prcword", "P1"),
        2: ("F1", "safety_plan", "Prcx", None),
    }
    assert model.may_see_practice("F1", 1) and model.may_see_practice("T1", 1)
    assert not any(model.may_see_practice(v, 1) for v in ("P1", "T2", "F2"))
    assert not model.may_see_practice("T1", 2) and model.may_see_practice("F1", 2)
    model.end("P1", "F1", "revoked")
    assert not model.may_see_practice("T1", 1) and model.may_see_practice("F1", 1)
    model.sign("P1", MARIA, {"progress"}, None, False)  # a later consent opens nothing again
    model.accept("P1", "F1")
    assert not model.may_see_practice("T1", 1)


def test_a_progress_update_reaches_a_member_only_approved_released_and_under_progress():
    model = _model()
    model.address_of["F2"] = "luis@example.org"
    model.sign("P1", MARIA, {"progress"}, None, False)
    model.accept("P1", "F1")
    model.sign("P1", "luis@example.org", {"scheduling"}, None, False)
    model.accept("P1", "F2")
    assert model.update_recipients("P1", None) == {"F1"}
    assert not model.update_recipients("P1", "F2") and not model.update_recipients("P2", None)
    model.updates[1] = Update("P1", frozenset({"F1"}), ["Updone"])
    assert model.may_read_update("P1", 1, "Updone") and model.may_read_update("T1", 1, "Updone")
    assert not model.may_read_update("F1", 1, "Updone")  # a draft
    assert model.decide(1, "changes") and model.revise(1, "Updtwo")
    assert model.decide(1, "approve") and not model.decide(1, "decline")
    assert not model.revise(1, "Updthree")
    assert model.may_read_update("F1", 1, "Updtwo") and not model.may_read_update("F1", 1, "Updone")
    assert not model.may_read_update("F2", 1, "Updtwo") and not model.may_read_update(
        "T2", 1, "Updtwo"
    )
    model.end("P1", "F1", "revoked")
    assert not model.may_read_update("F1", 1, "Updtwo")


def test_an_update_approved_after_the_progress_scope_ended_is_released_to_nobody():
    model = _model()
    model.sign("P1", MARIA, {"progress"}, None, False)
    model.accept("P1", "F1")
    model.updates[1] = Update("P1", model.update_recipients("P1", "F1"), ["Updone"])
    model.sign("P1", MARIA, {"scheduling"}, None, False)  # a renewal without progress
    assert model.decide(1, "approve") and model.updates[1].released_to == frozenset()
    model.sign("P1", MARIA, {"progress"}, None, False)
    assert not model.may_read_update("F1", 1, "Updone")
