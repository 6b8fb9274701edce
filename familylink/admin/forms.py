from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from familylink.forms import DayField, TimezoneField, email_field, number_field, text_field


class ProgramForm(FlaskForm):
    name = text_field("Program name", required="Enter a name.")
    sender_name = text_field(
        "Sender name on emails",
        required="Enter a sender name.",
        description="Keep it neutral: recipients' inboxes may be seen by others.",
    )
    timezone = TimezoneField("Program time zone")
    reminder_offsets = StringField(
        "Reminder times (hours before a session)",
        validators=[InputRequired(message="Enter at least one reminder time."), Length(max=40)],
        description="Separate with commas, for example: 48, 2",
    )
    cancellation_window_hours = number_field("Cancellation window (hours)", 0, 336, unit="hours")
    booking_horizon_days = number_field("Booking horizon (days)", 1, 365, unit="days")
    minimum_notice_hours = number_field("Minimum notice (hours)", 0, 336, unit="hours")
    waitlist_hold_hours = number_field("Waitlist offer hold (hours)", 1, 168, unit="hours")
    buffer_minutes = number_field(
        "Buffer between sessions (minutes)",
        0,
        120,
        unit="minutes",
        description="Free time kept after each session before the next can be booked.",
    )
    # Checked as a phone number by the program service, whose message names this field.
    after_hours_phone = StringField(
        _l("After-hours phone number (optional)"),
        validators=[Optional(), Length(max=32, message=_l("Use at most 32 characters."))],
        description=_l(
            "The program's own line for nights and weekends. When set, it is shown on the "
            "crisis page, in the page footer and in the safety module. Leave empty to hide it."
        ),
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )


class InviteForm(FlaskForm):
    name = text_field("Full name", required="Enter a name.")
    email = email_field(required="Enter an email address.")


class AuditFilterForm(FlaskForm):
    """Filters for the audit viewer (a GET form: nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    who = StringField(
        "Who (email address)",
        validators=[Optional(), Length(max=254, message="That email address is too long.")],
    )
    patient = IntegerField(
        "Patient number",
        validators=[Optional(), NumberRange(min=1, max=2**31 - 1, message="Use a patient number.")],
    )
    action = StringField(
        "Action (or its start, like auth.)",
        validators=[Optional(), Length(max=60, message="Use at most 60 characters.")],
    )
    start = DayField("From (date)", validators=[Optional()])
    end = DayField("To (date, inclusive)", validators=[Optional()])


class RetryEmailForm(FlaskForm):
    """No fields: the CSRF token is the point."""
