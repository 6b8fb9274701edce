"""Form pieces shared by several blueprints."""

from wtforms import PasswordField, SelectField
from wtforms.validators import InputRequired, Length

from familylink.services.passwords import MAX_LENGTH
from familylink.services.timefmt import timezone_choices


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
