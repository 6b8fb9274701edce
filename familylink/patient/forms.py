from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from familylink.forms import DayField, email_field, text_field
from familylink.models import Scope
from familylink.services import progress_updates
from familylink.services.consent import (
    DEFAULT_PURPOSE,
    FAMILY_VISIBLE_STATEMENT,
    ConsentDetails,
)

EXPIRY_CHOICES = [
    ("date", "On a date I choose (no more than one year from today)"),
    ("episode_end", "When my current episode of care ends, plus a number of days"),
]


class ExpiryKindField(RadioField):
    """Choices set after construction, as TimezoneField does (tuples in the call are deprecated)."""

    def __init__(self, label, **kwargs):
        super().__init__(label, choices=[], **kwargs)
        self.choices = EXPIRY_CHOICES


def _scope_field(scope: Scope) -> BooleanField:
    return BooleanField(scope.label, description=scope.explanation)


class ConsentForm(FlaskForm):
    """One family member at a time; the service checks every element again."""

    recipient_name = text_field(
        "Family member's full name", required="Enter the family member's name."
    )
    recipient_relationship = text_field(
        "How they are related to you",
        required="Say how they are related to you.",
        max_length=60,
        description="For example: mother, partner, brother, friend.",
    )
    recipient_email = email_field(
        "Their email address",
        required="Enter their email address.",
        description="The invitation goes here. Only this address can accept it.",
    )
    # One field per Scope, named scope_<value> like the consent's columns.
    scope_scheduling = _scope_field(Scope.SCHEDULING)
    scope_attendance = _scope_field(Scope.ATTENDANCE)
    scope_progress = _scope_field(Scope.PROGRESS)
    family_visible = BooleanField(
        FAMILY_VISIBLE_STATEMENT,
        description="Leave this unticked if they should not know who else you share with.",
    )
    purpose = text_field(
        "Why it is shared (purpose)",
        required="Say what the information is for.",
        max_length=500,
        field=TextAreaField,
        default=DEFAULT_PURPOSE,
    )
    expiry_kind = ExpiryKindField(
        "When this consent ends",
        validators=[InputRequired(message="Choose when this consent ends.")],
        render_kw={"class": "radios"},
    )
    expiry_date = DayField(
        "End date (if you chose a date)",
        validators=[Optional()],
        description="The consent runs until the end of this day.",
    )
    expiry_days_after_episode = IntegerField(
        "Days after my episode of care ends (if you chose that)",
        default=30,
        validators=[
            Optional(),
            NumberRange(min=0, max=365, message="Enter a number of days from 0 to 365."),
        ],
    )
    signature_name = text_field(
        "Sign by typing your full name",
        required="Type your full name to sign.",
        description="Exactly as we have it on file (capital letters don't matter).",
        render_kw={"autocomplete": "off"},
    )
    understood = BooleanField("I have read this consent and I understand it.")

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
        )

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
