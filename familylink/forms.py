"""Form pieces shared by several blueprints."""

from flask_babel import lazy_gettext as _l
from wtforms import (
    DateField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from familylink.services.passwords import MAX_LENGTH
from familylink.services.timefmt import timezone_choices
from familylink.web import DATE_OUT_OF_RANGE, as_id, parse_day


class DayField(DateField):
    """A date typed as YYYY-MM-DD, read by `web.parse_day`: a date outside its range is
    refused beside the field, so no page ever computes with year 1 or 9999."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            return
        self.data = parse_day(valuelist[0])
        if self.data is None:
            raise ValueError(DATE_OUT_OF_RANGE)


class MultiCheckboxField(SelectMultipleField):
    """A group of checkboxes (render with the `checkboxes` macro)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def id_choice(value) -> int:
    """`coerce` for a list of records (session types, family members, modules): an id of
    1..web.MAX_ID, else the choice is refused like any other unknown one."""
    number = as_id(value)
    if number is None:
        raise ValueError("Not one of the choices.")
    return number


class TimezoneField(SelectField):
    def __init__(self, label="Your time zone", **kwargs):
        kwargs.setdefault("validators", [InputRequired(message="Choose your time zone.")])
        super().__init__(label, choices=[], validate_choice=True, **kwargs)
        self.choices = timezone_choices()


def new_password_field(label="Password"):
    return PasswordField(
        label,
        validators=[
            InputRequired(message="Choose a password."),
            Length(max=MAX_LENGTH, message=f"Use at most {MAX_LENGTH} characters."),
        ],
        description="At least 12 characters. A few unrelated words work well.",
        render_kw={"autocomplete": "new-password"},
    )


def text_field(label, *, required: str, max_length: int = 120, field=StringField, **kwargs):
    """A required text field with a length limit, each with its own plain message."""
    return field(
        label,
        validators=[
            InputRequired(message=required),
            Length(max=max_length, message=f"Use at most {max_length} characters."),
        ],
        **kwargs,
    )


def optional_text_field(label, *, max_length: int, **kwargs):
    """A text field that may stay empty, with a length limit; the service checks the rest
    (its message names the field)."""
    return StringField(
        label,
        validators=[
            Optional(),
            Length(
                max=max_length, message=_l("Use at most %(count)s characters.", count=max_length)
            ),
        ],
        **kwargs,
    )


def email_field(label="Email address", *, required="Enter your email address.", **kwargs):
    return EmailField(
        label,
        validators=[
            InputRequired(message=required),
            Length(max=254, message="That email address is too long."),
        ],
        **kwargs,
    )


def number_field(label, low: int, high: int, *, unit: str, **kwargs):
    """A required whole number from `low` to `high` (in `unit`: hours, days, minutes…)."""
    return IntegerField(
        label,
        validators=[InputRequired(message=f"Enter a number of {unit}."), NumberRange(low, high)],
        **kwargs,
    )


def code_field(label, *, description: str):
    """An authenticator (or recovery) code, typed on a phone's number pad."""
    return StringField(
        label,
        validators=[
            InputRequired(message="Enter the code."),
            Length(max=32, message="That code is too long."),
        ],
        description=description,
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


def your_name_field():
    return text_field("Your name", required="Enter your name.", render_kw={"autocomplete": "name"})
