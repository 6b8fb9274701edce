import pytest
from sqlalchemy import delete, func, select

from familylink.extensions import db
from familylink.models import Program
from familylink.services.errors import ValidationError
from familylink.services.program import (
    ProgramMissing,
    forget_cached_program,
    get_program,
    program_row,
    update_program,
)

SETTINGS = {
    "name": "Lakeside Program",
    "sender_name": "Lakeside Sessions",
    "timezone": "America/Chicago",
    "reminder_offsets_hours": [2, 48, 48],
    "cancellation_window_hours": 24,
    "booking_horizon_days": 28,
    "minimum_notice_hours": 12,
    "waitlist_hold_hours": 12,
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
