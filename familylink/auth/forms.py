from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import InputRequired, Length

from familylink.forms import (
    TimezoneField,
    code_field,
    email_field,
    new_password_field,
    your_name_field,
)


class RegisterForm(FlaskForm):
    name = your_name_field()
    email = email_field(render_kw={"autocomplete": "email"})
    password = new_password_field()
    timezone = TimezoneField()


class LoginForm(FlaskForm):
    email = email_field(render_kw={"autocomplete": "username"})
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(message=_l("Enter your password.")), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )


class ResetRequestForm(FlaskForm):
    email = email_field(render_kw={"autocomplete": "email"})


class SetPasswordForm(FlaskForm):
    password = new_password_field(_l("New password"))


class ConfirmForm(FlaskForm):
    """A form with only its CSRF token: for one-button confirmations."""


class MfaCodeForm(FlaskForm):
    code = code_field(
        _l("Code"),
        description=_l(
            "The 6-digit code from your authenticator app, or one of your recovery codes."
        ),
        digits_only=False,
    )
