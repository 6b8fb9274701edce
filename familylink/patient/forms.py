from flask_babel import LazyString, get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from familylink.forms import DayField, RadioField, SelectField, email_field, text_field
from familylink.i18n import LANGUAGES, normalise
from familylink.models import Scope
from familylink.services import progress_updates
from familylink.services.consent import (
    DEFAULT_PURPOSE,
    FAMILY_VISIBLE_STATEMENT,
    ConsentDetails,
)

EXPIRY_CHOICES = [
    ("date", _l("On a date I choose (no more than one year from today)")),
    ("episode_end", _l("When my current episode of care ends, plus a number of days")),
]


class ExpiryKindField(RadioField):
    """Choices set after construction, as TimezoneField does (tuples in the call are deprecated)."""

    def __init__(self, label, **kwargs):
        super().__init__(label, choices=[], **kwargs)
        self.choices = EXPIRY_CHOICES


def _scope_field(scope: Scope) -> BooleanField:
    # The explanation is worded when the form is shown, in that request's language.
    return BooleanField(scope.label, description=LazyString(lambda: scope.explanation))


class LanguageField(SelectField):
    """A choice of language, each named in its own words (as on the switch); choices set
    after construction, as ExpiryKindField's are."""

    def __init__(self, label, **kwargs):
        # Filled with the person's own language; a form posted without it keeps that.
        super().__init__(label, choices=[], validators=[Optional()], **kwargs)
        self.choices = list(LANGUAGES.items())


class ConsentForm(FlaskForm):
    """One family member at a time; the service checks every element again."""

    recipient_name = text_field(
        _l("Family member's full name"), required=_l("Enter the family member's name.")
    )
    recipient_relationship = text_field(
        _l("How they are related to you"),
        required=_l("Say how they are related to you."),
        max_length=60,
        description=_l("For example: mother, partner, brother, friend."),
    )
    recipient_email = email_field(
        _l("Their email address"),
        required=_l("Enter their email address."),
        description=_l("The invitation goes here. Only this address can accept it."),
    )
    invitation_locale = LanguageField(
        _l("Language of the invitation"),
        description=_l("The email and the page where they join are written in this language."),
    )
    # One field per Scope, named scope_<value> like the consent's columns.
    scope_scheduling = _scope_field(Scope.SCHEDULING)
    scope_attendance = _scope_field(Scope.ATTENDANCE)
    scope_progress = _scope_field(Scope.PROGRESS)
    family_visible = BooleanField(
        FAMILY_VISIBLE_STATEMENT,
        description=_l("Leave this unticked if they should not know who else you share with."),
    )
    purpose = text_field(
        _l("Why it is shared (purpose)"),
        required=_l("Say what the information is for."),
        max_length=500,
        field=TextAreaField,
        default=DEFAULT_PURPOSE,
    )
    expiry_kind = ExpiryKindField(
        _l("When this consent ends"),
        validators=[InputRequired(message=_l("Choose when this consent ends."))],
        render_kw={"class": "radios"},
    )
    expiry_date = DayField(
        _l("End date (if you chose a date)"),
        validators=[Optional()],
        description=_l("The consent runs until the end of this day."),
    )
    expiry_days_after_episode = IntegerField(
        _l("Days after my episode of care ends (if you chose that)"),
        default=30,
        validators=[
            Optional(),
            NumberRange(
                min=0,
                max=365,
                message=_l("Enter a number of days from 0 to %(most)s.", most=365),
            ),
        ],
    )
    signature_name = text_field(
        _l("Sign by typing your full name"),
        required=_l("Type your full name to sign."),
        description=_l("Exactly as we have it on file (capital letters don't matter)."),
        render_kw={"autocomplete": "off"},
    )
    understood = BooleanField(_l("I have read this consent and I understand it."))

    def details(self) -> ConsentDetails:
        return ConsentDetails(
            recipient_name=self.recipient_name.data,
            recipient_relationship=self.recipient_relationship.data,
            recipient_email=self.recipient_email.data,
            purpose=self.purpose.data,
            scopes=[s for s in Scope if self[f"scope_{s}"].data],
            expiry_kind=self.expiry_kind.data,
            expiry_date=self.expiry_date.data,
            expiry_days_after_episode=self.expiry_days_after_episode.data,
            signature_name=self.signature_name.data,
            understood=bool(self.understood.data),
            family_visible=bool(self.family_visible.data),
            locale=self.signed_locale(),
            invitation_locale=self.invitation_locale.data,
        )

    def signed_locale(self) -> str:
        """The language the form is signed in: the page's own, the one the patient read."""
        return normalise(str(get_locale()))

    def fill_from(self, consent) -> None:
        """Prefill a renewal from an earlier consent (the patient signs again)."""
        self.recipient_name.data = consent.recipient_name
        self.recipient_relationship.data = consent.recipient_relationship
        self.recipient_email.data = consent.recipient_email
        self.purpose.data = consent.purpose
        for scope in Scope:
            self[f"scope_{scope}"].data = getattr(consent, f"scope_{scope}")
        self.family_visible.data = consent.family_visible
        self.expiry_kind.data = consent.expiry_kind
        if consent.expiry_days_after_episode is not None:
            self.expiry_days_after_episode.data = consent.expiry_days_after_episode


class RevokeForm(FlaskForm):
    """The confirmation button; CSRF only."""


class UpdateDecisionForm(FlaskForm):
    """The patient's answer about the exact version shown (`version_id`): the button
    pressed names the decision; a note goes with a request for changes."""

    version_id = HiddenField()
    decision = HiddenField()
    note = TextAreaField(
        _l("What would you like changed? (only if you ask for changes)"),
        validators=[
            Length(
                max=progress_updates.MAX_NOTE_LENGTH,
                message=_l("Use at most %(n)d characters.", n=progress_updates.MAX_NOTE_LENGTH),
            )
        ],
        render_kw={"rows": 3},
    )
