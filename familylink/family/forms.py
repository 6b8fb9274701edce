from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from familylink.forms import TimezoneField, new_password_field


class InvitationRegisterForm(FlaskForm):
    """Sign-up through an invitation: the address is the one the link was sent to."""

    name = StringField(
        "Your name",
        validators=[
            InputRequired(message="Enter your name."),
            Length(max=120, message="Use at most 120 characters."),
        ],
        render_kw={"autocomplete": "name"},
    )
    password = new_password_field()
    timezone = TimezoneField()


class AcceptForm(FlaskForm):
    """One button; CSRF only."""
