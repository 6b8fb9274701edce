from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from familylink.forms import new_password_field
from familylink.services.passwords import MAX_LENGTH


def current_password_field(label="Current password"):
    return PasswordField(
        label,
        validators=[InputRequired(message="Enter your current password."), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )


class ChangePasswordForm(FlaskForm):
    current_password = current_password_field()
    new_password = new_password_field("New password")


class ChangeEmailForm(FlaskForm):
    new_email = EmailField(
        "New email address",
        validators=[
            InputRequired(message="Enter your new email address."),
            Length(max=254, message="That email address is too long."),
        ],
        render_kw={"autocomplete": "email"},
    )
    password = current_password_field("Your password")


class EnrolForm(FlaskForm):
    code = StringField(
        "Code from the app",
        validators=[InputRequired(message="Enter the code."), Length(max=32)],
        description="The 6-digit code your authenticator app shows now.",
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )
