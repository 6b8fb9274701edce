from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, IntegerField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from familylink.forms import TimezoneField


class ProgramForm(FlaskForm):
    name = StringField(
        "Program name",
        validators=[
            InputRequired(message="Enter a name."),
            Length(max=120, message="Use at most 120 characters."),
        ],
    )
    sender_name = StringField(
        "Sender name on emails",
        validators=[
            InputRequired(message="Enter a sender name."),
            Length(max=120, message="Use at most 120 characters."),
        ],
        description="Keep it neutral: recipients' inboxes may be seen by others.",
    )
    timezone = TimezoneField("Program time zone")
    reminder_offsets = StringField(
        "Reminder times (hours before a session)",
        validators=[InputRequired(message="Enter at least one reminder time."), Length(max=40)],
        description="Separate with commas, for example: 48, 2",
    )
    cancellation_window_hours = IntegerField(
        "Cancellation window (hours)",
        validators=[InputRequired(message="Enter a number of hours."), NumberRange(0, 336)],
    )
    booking_horizon_days = IntegerField(
        "Booking horizon (days)",
        validators=[InputRequired(message="Enter a number of days."), NumberRange(1, 365)],
    )
    minimum_notice_hours = IntegerField(
        "Minimum notice (hours)",
        validators=[InputRequired(message="Enter a number of hours."), NumberRange(0, 336)],
    )
    waitlist_hold_hours = IntegerField(
        "Waitlist offer hold (hours)",
        validators=[InputRequired(message="Enter a number of hours."), NumberRange(1, 168)],
    )
    buffer_minutes = IntegerField(
        "Buffer between sessions (minutes)",
        validators=[InputRequired(message="Enter a number of minutes."), NumberRange(0, 120)],
        description="Free time kept after each session before the next can be booked.",
    )


class InviteForm(FlaskForm):
    name = StringField(
        "Full name",
        validators=[
            InputRequired(message="Enter a name."),
            Length(max=120, message="Use at most 120 characters."),
        ],
    )
    email = EmailField(
        "Email address",
        validators=[
            InputRequired(message="Enter an email address."),
            Length(max=254, message="That email address is too long."),
        ],
    )


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
    start = DateField("From (date)", validators=[Optional()])
    end = DateField("To (date, inclusive)", validators=[Optional()])


class RetryEmailForm(FlaskForm):
    """No fields: the CSRF token is the point."""
