from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from familylink.forms import TimezoneField, new_password_field


class RegisterForm(FlaskForm):
    name = StringField(
        "Your name",
        validators=[
            InputRequired(message="Enter your name."),
            Length(max=120, message="Use at most 120 characters."),
        ],
        render_kw={"autocomplete": "name"},
    )
    email = EmailField(
        "Email address",
        validators=[
            InputRequired(message="Enter your email address."),
            Length(max=254, message="That email address is too long."),
        ],
        render_kw={"autocomplete": "email"},
    )
    password = new_password_field()
    timezone = TimezoneField()


class LoginForm(FlaskForm):
    email = EmailField(
        "Email address",
        validators=[
            InputRequired(message="Enter your email address."),
            Length(max=254, message="That email address is too long."),
        ],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired(message="Enter your password."), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )


class ResetRequestForm(FlaskForm):
    email = EmailField(
        "Email address",
        validators=[
            InputRequired(message="Enter your email address."),
            Length(max=254, message="That email address is too long."),
        ],
        render_kw={"autocomplete": "email"},
    )


class SetPasswordForm(FlaskForm):
    password = new_password_field("New password")


class ConfirmForm(FlaskForm):
    """A form with only its CSRF token: for one-button confirmations."""


class MfaCodeForm(FlaskForm):
    code = StringField(
        "Code",
        validators=[
            InputRequired(message="Enter the code."),
            Length(max=32, message="That code is too long."),
        ],
        description="The 6-digit code from your authenticator app, or one of your recovery codes.",
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )
