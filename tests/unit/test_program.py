import pytest
from sqlalchemy import delete, func, select

from familylink.extensions import db
from familylink.models import AuditEvent, Program, Role
from familylink.services.errors import ValidationError
from familylink.services.program import (
    ProgramMissing,
    forget_cached_program,
    get_program,
    program_row,
    update_program,
)
from tests.factories import create_user
from tests.moments import NOON

SETTINGS = {
    "name": "Lakeside Program",
    "sender_name": "Lakeside Sessions",
    "timezone": "America/Chicago",
    "reminder_offsets_hours": [2, 48, 48],
    "cancellation_window_hours": 24,
    "booking_horizon_days": 28,
    "minimum_notice_hours": 12,
    "waitlist_hold_hours": 12,
    "actor": None,
    "now": NOON,
}


def test_a_change_is_seen_at_once_by_the_process_that_made_it(app_ctx):
    assert get_program().name == "FamilyLink"
    update_program(**SETTINGS)
    assert get_program().name == "Lakeside Program"
    assert get_program().reminder_offsets_hours == (48, 2)


def test_settings_are_read_from_the_database_once_then_cached(app_ctx, count_queries):
    get_program()
    db.session.commit()
    with count_queries() as counter:
        get_program()
    assert counter.count == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Moon/Base"}, "timezone"),
        ({"reminder_offsets_hours": []}, "reminder_offsets_hours"),
        ({"reminder_offsets_hours": [0]}, "reminder_offsets_hours"),
        ({"reminder_offsets_hours": [1, 2, 3, 4, 5, 6]}, "reminder_offsets_hours"),
        ({"sender_name": "Lakeside Recovery"}, "sender_name"),
        ({"sender_name": "Lakeside IOP Families"}, "sender_name"),
        ({"sender_name": "Lakeside sud program"}, "sender_name"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(app_ctx, changes, field):
    with pytest.raises(ValidationError) as caught:
        update_program(**{**SETTINGS, **changes})
    assert caught.value.field == field
    db.session.rollback()
    assert get_program().name == "FamilyLink"


@pytest.mark.parametrize("name", ["Sudbury Family Sessions", "Period Family Center", "Lakeside"])
def test_a_sender_name_is_refused_only_for_whole_clinical_words(app_ctx, name):
    update_program(**{**SETTINGS, "sender_name": name})
    assert get_program().sender_name == name


def test_a_fresh_install_has_the_default_program_row(app_ctx):
    program = get_program()
    assert (program.name, program.sender_name, program.timezone) == (
        "FamilyLink",
        "Family Sessions",
        "America/New_York",
    )
    assert program.reminder_offsets_hours == (48, 2)
    assert db.session.scalar(select(func.count(Program.id))) == 1


@pytest.mark.parametrize("read", [get_program, program_row])
def test_a_missing_program_row_is_an_error_not_an_insert(app_ctx, read):
    db.session.execute(delete(Program))
    forget_cached_program()
    with pytest.raises(ProgramMissing, match="flask db upgrade"):
        read()
    assert db.session.scalar(select(func.count(Program.id))) == 0


def test_a_change_is_audited_with_each_changed_field_old_and_new(app_ctx):
    admin = create_user(Role.ADMIN, email="admin@example.org")
    update_program(**{**SETTINGS, "actor": admin, "booking_horizon_days": 28})
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "program.updated"))
    assert (event.actor_id, event.at, event.object_type) == (admin.id, NOON, "programs")
    assert event.detail == {
        "changes": {
            "name": {"old": "FamilyLink", "new": "Lakeside Program"},
            "sender_name": {"old": "Family Sessions", "new": "Lakeside Sessions"},
            "timezone": {"old": "America/New_York", "new": "America/Chicago"},
        }
    }


def test_saving_unchanged_settings_writes_no_audit_row(app_ctx):
    update_program(**SETTINGS)
    update_program(**SETTINGS)
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions == ["program.updated"]


@pytest.mark.parametrize(
    "sender_name",
    [
        # Issue 17's examples, each accepted before the one screen.
        "Riverside Mental Health",
        "Behavioral Health",
        "Dual Diagnosis Clinic",
        "Drug Court Services",
        "R\u0435covery",  # with a Cyrillic е
        "Ｒｅｃｏｖｅｒｙ",
        "Centro de Adicción",
        "Lakeside\r\nSessions",
        "Lakeside \u202eSessions",
    ],
)
def test_a_sender_name_that_would_reveal_or_break_is_refused(app_ctx, sender_name):
    with pytest.raises(ValidationError) as caught:
        update_program(**{**SETTINGS, "sender_name": sender_name})
    assert caught.value.field == "sender_name"
    db.session.rollback()
    assert get_program().sender_name == "Family Sessions"


def test_a_program_name_with_a_line_break_is_refused(app_ctx):
    with pytest.raises(ValidationError) as caught:
        update_program(**{**SETTINGS, "name": "Lakeside\nProgram"})
    assert caught.value.field == "name"


@pytest.mark.parametrize(
    ("typed", "kept", "tel"),
    [
        ("555-201-3344", "555-201-3344", "+15552013344"),
        ("(555) 201 3344", "(555) 201 3344", "+15552013344"),
        ("+1 555.201.3344", "+1 555.201.3344", "+15552013344"),
        ("  1-555-201-3344 ", "1-555-201-3344", "+15552013344"),
    ],
)
def test_the_after_hours_phone_is_kept_as_typed_and_dialled_as_digits(app_ctx, typed, kept, tel):
    update_program(**SETTINGS, after_hours_phone=typed)
    assert get_program().after_hours_phone == kept
    assert get_program().after_hours_tel == tel


@pytest.mark.parametrize(
    "typed", ["555-0100", "call us", "555-201-3344 ext 2", "055-201-3344", "+44 20 7946 0958"]
)
def test_a_bad_after_hours_phone_is_refused_and_nothing_changes(app_ctx, typed):
    with pytest.raises(ValidationError, match="area code") as raised:
        update_program(**SETTINGS, after_hours_phone=typed)
    assert raised.value.field == "after_hours_phone"
    assert get_program().after_hours_phone is None
    assert get_program().name == "FamilyLink"


def test_an_empty_after_hours_phone_clears_it_and_leaving_it_out_keeps_it(app_ctx):
    update_program(**SETTINGS, after_hours_phone="555-201-3344")
    update_program(**SETTINGS)
    assert get_program().after_hours_phone == "555-201-3344"
    update_program(**SETTINGS, after_hours_phone="  ")
    assert get_program().after_hours_phone is None
    assert get_program().after_hours_tel is None
