import pytest

from familylink.extensions import db
from familylink.services.errors import ValidationError
from familylink.services.program import get_program, update_program

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
    ],
)
def test_bad_settings_are_refused_and_change_nothing(app_ctx, changes, field):
    with pytest.raises(ValidationError) as caught:
        update_program(**{**SETTINGS, **changes})
    assert caught.value.field == field
    db.session.rollback()
    assert get_program().name == "FamilyLink"
