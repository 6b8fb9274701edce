from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, StringField
from wtforms.validators import InputRequired, Length


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
