from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length

from familylink.patient.forms import ConsentForm


class EnrolPatientForm(FlaskForm):
    name = StringField(
        "Patient's full name",
        validators=[
            InputRequired(message="Enter a name."),
            Length(max=120, message="Use at most 120 characters."),
        ],
    )
    email = EmailField(
        "Patient's email address",
        validators=[
            InputRequired(message="Enter an email address."),
            Length(max=254, message="That email address is too long."),
        ],
    )
    episode_start = DateField(
        "Episode start date",
        validators=[InputRequired(message="Enter the date care started, like 2026-11-02.")],
    )


class PaperConsentForm(ConsentForm):
    """A consent signed on paper, recorded by the patient's own therapist."""

    signature_name = StringField(
        "Name the patient signed with",
        description="Their full name as on file.",
        validators=[
            InputRequired(message="Enter the name the patient signed with."),
            Length(max=120, message="Use at most 120 characters."),
        ],
    )
    understood = BooleanField("The patient ticked that they read and understood the form.")
    signed_on = DateField(
        "Date the patient signed",
        validators=[InputRequired(message="Enter the date signed, like 2026-11-02.")],
    )
    attested = BooleanField(
        "I attest that the patient signed this consent on paper and the details above match it."
    )


class WrittenRevocationForm(FlaskForm):
    note = TextAreaField(
        "How the revocation arrived",
        description="For example: letter dated 2026-11-20, handed in at the front desk.",
        validators=[
            InputRequired(message="Say how the written revocation arrived."),
            Length(max=1000, message="Use at most 1000 characters."),
        ],
    )
