from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import InputRequired, Length

from familylink.forms import code_field, email_field, new_password_field
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
    new_email = email_field(
        "New email address",
        required="Enter your new email address.",
        render_kw={"autocomplete": "email"},
    )
    password = current_password_field("Your password")


class EnrolForm(FlaskForm):
    code = code_field(
        "Code from the app", description="The 6-digit code your authenticator app shows now."
    )


class PasswordAgainForm(FlaskForm):
    """Only the password, asked again before a security change (new recovery codes, two-step
    sign-in off). Two of them share a page, so each is made with its own `prefix`."""

    password = current_password_field(_l("Your password"))
