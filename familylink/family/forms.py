from flask_wtf import FlaskForm

from familylink.forms import TimezoneField, new_password_field, your_name_field


class InvitationRegisterForm(FlaskForm):
    """Sign-up through an invitation: the address is the one the link was sent to."""

    name = your_name_field()
    password = new_password_field()
    timezone = TimezoneField()


class AcceptForm(FlaskForm):
    """One button; CSRF only."""
