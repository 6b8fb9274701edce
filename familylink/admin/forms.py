from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from familylink.forms import (
    NOT_A_CHOICE,
    DayField,
    MultiCheckboxField,
    SelectField,
    TimezoneField,
    email_field,
    number_field,
    optional_text_field,
    text_field,
)
from familylink.models import Role
from familylink.services.account_admin import MAX_SEARCH
from familylink.services.program import MAX_REMINDERS

# Reminder times offered (hours before a session); at most MAX_REMINDERS may be ticked, the
# program service's limit.
REMINDER_CHOICES = [
    (168, _l("1 week before")),
    (72, _l("3 days before")),
    (48, _l("2 days before")),
    (24, _l("1 day before")),
    (12, _l("12 hours before")),
    (2, _l("2 hours before")),
    (1, _l("1 hour before")),
]

ROLE_NAMES = {
    Role.ADMIN.value: _l("Admin"),
    Role.THERAPIST.value: _l("Therapist"),
    Role.DIRECTOR.value: _l("Program director"),
    Role.PATIENT.value: _l("Patient"),
    Role.FAMILY.value: _l("Family member"),
}


OUTBOX_STATUS_NAMES = {
    "pending": _l("Pending"),
    "sent": _l("Sent"),
    "failed": _l("Failed"),
    "cancelled": _l("Cancelled"),
}


def reminder_choices(stored) -> list[tuple[int, str]]:
    """The offered times, plus any stored one that is not among them (kept, not lost)."""
    offered = dict(REMINDER_CHOICES)
    for hours in stored or ():
        offered.setdefault(int(hours), _l("%(hours)s hours before", hours=int(hours)))
    return sorted(offered.items(), reverse=True)


def hour_choice(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(NOT_A_CHOICE) from None


class ProgramForm(FlaskForm):
    name = text_field(_l("Program name"), required=_l("Enter a name."))
    sender_name = text_field(
        _l("Sender name on emails"),
        required=_l("Enter a sender name."),
        description=_l("Keep it neutral: recipients' inboxes may be seen by others."),
    )
    timezone = TimezoneField(_l("Program time zone"))
    # Named as `update_program` takes it, so the service's message about it shows here.
    reminder_offsets_hours = MultiCheckboxField(
        _l("Reminder emails before a session"),
        coerce=hour_choice,
        choices=[],
        description=_l("Tick one to five times."),
    )
    cancellation_window_hours = number_field(
        _l("Cancellation window (hours)"), 0, 336, unit="hours"
    )
    booking_horizon_days = number_field(_l("Booking horizon (days)"), 1, 365, unit="days")
    minimum_notice_hours = number_field(_l("Minimum notice (hours)"), 0, 336, unit="hours")
    waitlist_hold_hours = number_field(_l("Waitlist offer hold (hours)"), 1, 168, unit="hours")
    buffer_minutes = number_field(
        _l("Buffer between sessions (minutes)"),
        0,
        120,
        unit="minutes",
        description=_l("Free time kept after each session before the next can be booked."),
    )
    # Checked as a phone number by the program service, whose message names this field.
    after_hours_phone = optional_text_field(
        _l("After-hours phone number (optional)"),
        max_length=32,
        description=_l(
            "The program's own line for nights and weekends. When set, it is shown on the "
            "crisis page, in the page footer and in the safety module. Leave empty to hide it."
        ),
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )
    # Checked (https, one {room}) by the program service, whose message names this field.
    video_room_template = optional_text_field(
        _l("Video room address (optional)"),
        max_length=300,
        description=_l(
            "Each video session gets its own private room: {room} is replaced by a long "
            "random name, for example https://meet.example-clinic.org/{room}. Leave empty "
            "and therapists paste a unique link on each video session instead. Families "
            "only ever get a FamilyLink join link, checked when they follow it."
        ),
        render_kw={"inputmode": "url"},
    )
    families_may_book_series = BooleanField(
        _l("Families may book a weekly series"),
        description=_l(
            "When ticked, a family booking a session may repeat it every week for 2 to 12 "
            "weeks; each week is checked like a single booking. When not, only the "
            "therapist books weekly series."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reminder_offsets_hours.choices = list(REMINDER_CHOICES)

    def settings(self) -> dict:
        """The settings as typed, named as `update_program` takes them (every field but the
        CSRF token is one of the program's settings)."""
        return {field.name: field.data for field in self if field.name != "csrf_token"}

    def validate_reminder_offsets_hours(self, field) -> None:
        if not field.data:
            raise ValidationError(_l("Tick at least one reminder time."))
        if len(field.data) > MAX_REMINDERS:
            raise ValidationError(_l("Tick at most %(max)d reminder times.", max=MAX_REMINDERS))


class InviteForm(FlaskForm):
    name = text_field(_l("Full name"), required=_l("Enter a name."))
    email = email_field(required=_l("Enter an email address."))


class DirectorInviteForm(FlaskForm):
    """Its own labels: it sits on the same page as the therapists' invitation."""

    name = text_field(_l("Name of the program director"), required=_l("Enter a name."))
    email = email_field(_l("Program director's email"), required=_l("Enter an email address."))


class AuditFilterForm(FlaskForm):
    """Filters for the audit viewer (a GET form: nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    who = StringField(
        _l("Who (email address)"),
        validators=[Optional(), Length(max=254, message=_l("That email address is too long."))],
    )
    patient = IntegerField(
        _l("Patient number"),
        validators=[
            Optional(),
            NumberRange(min=1, max=2**31 - 1, message=_l("Use a patient number.")),
        ],
    )
    action = StringField(
        _l("Action (or its start, like auth.)"),
        validators=[
            Optional(),
            Length(max=60, message=_l("Use at most %(count)s characters.", count=60)),
        ],
    )
    start = DayField(_l("From (date)"), validators=[Optional()])
    end = DayField(_l("To (date, inclusive)"), validators=[Optional()])


class RetryEmailForm(FlaskForm):
    """No fields: the CSRF token is the point."""


class ButtonForm(FlaskForm):
    """A button's form: no fields, the CSRF token is the point."""


class AccountSearchForm(FlaskForm):
    """Search of the accounts page (a GET form: nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField(
        _l("Name or email address contains"),
        validators=[
            Optional(),
            Length(max=MAX_SEARCH, message=_l("Use at most %(max)d characters.", max=MAX_SEARCH)),
        ],
    )
    role = SelectField(_l("Role"), choices=[], default="")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = [("", _l("Every role")), *ROLE_NAMES.items()]

    page = IntegerField(
        _l("Page"),
        validators=[
            Optional(),
            NumberRange(min=1, max=100000, message=_l("Use a page number.")),
        ],
    )
