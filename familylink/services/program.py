"""The program's settings (one row), read once per request or command."""

from flask import g, has_app_context
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import Program
from familylink.services.errors import ValidationError
from familylink.services.timefmt import is_valid_timezone

DEFAULT_NAME = "FamilyLink"


def get_program() -> Program:
    """Return the program, creating default settings on a fresh installation."""
    if has_app_context() and "program" in g:
        return g.program
    program = db.session.scalar(select(Program).order_by(Program.id).limit(1))
    if program is None:
        program = Program(name=DEFAULT_NAME, sender_name="Family Sessions")
        db.session.add(program)
        db.session.flush()
    if has_app_context():
        g.program = program
    return program


def update_program(
    program: Program,
    *,
    name: str,
    sender_name: str,
    timezone: str,
    reminder_offsets_hours: list[int],
    cancellation_window_hours: int,
    booking_horizon_days: int,
    minimum_notice_hours: int,
    waitlist_hold_hours: int,
) -> Program:
    """Change the program's settings; raises ValidationError naming the offending field."""
    if not is_valid_timezone(timezone):
        raise ValidationError("Choose a time zone from the list.", field="timezone")
    offsets = sorted({int(h) for h in reminder_offsets_hours}, reverse=True)
    if not offsets or any(h < 1 or h > 24 * 14 for h in offsets) or len(offsets) > 5:
        raise ValidationError(
            "Give one to five reminder times, each between 1 and 336 hours before.",
            field="reminder_offsets_hours",
        )
    program.name = name.strip()
    program.sender_name = sender_name.strip()
    program.timezone = timezone
    program.reminder_offsets_hours = offsets
    program.cancellation_window_hours = cancellation_window_hours
    program.booking_horizon_days = booking_horizon_days
    program.minimum_notice_hours = minimum_notice_hours
    program.waitlist_hold_hours = waitlist_hold_hours
    db.session.flush()
    return program
