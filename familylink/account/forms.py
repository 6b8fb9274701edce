from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import InputRequired, Length

from familylink.forms import SelectField, code_field, email_field, new_password_field
from familylink.i18n import LANGUAGES
from familylink.services.passwords import MAX_LENGTH

CURRENT_PASSWORD = _l("Current password")


def current_password_field(label=CURRENT_PASSWORD):
    return PasswordField(
        label,
        validators=[
            InputRequired(message=_l("Enter your current password.")),
            Length(max=MAX_LENGTH),
        ],
        render_kw={"autocomplete": "current-password"},
    )


class ChangePasswordForm(FlaskForm):
    current_password = current_password_field()
    new_password = new_password_field(_l("New password"))


class ChangeEmailForm(FlaskForm):
    new_email = email_field(
        _l("New email address"),
        required=_l("Enter your new email address."),
        render_kw={"autocomplete": "email"},
    )
    password = current_password_field(_l("Your password"))


class EnrolForm(FlaskForm):
    code = code_field(
        _l("Code from the app"),
        description=_l("The 6-digit code your authenticator app shows now."),
    )


class LanguageForm(FlaskForm):
    """The person's language. An unknown one is refused by `services.language.choose`,
    whose message names this field. Each language is named in its own words."""

    language = SelectField(_l("Pages and emails in"), choices=[], validate_choice=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.language.choices = list(LANGUAGES.items())


class PasswordAgainForm(FlaskForm):
    """Only the password, asked again before a security change (new recovery codes, two-step
    sign-in off). Two of them share a page, so each is made with its own `prefix`."""

    password = current_password_field(_l("Your password"))
