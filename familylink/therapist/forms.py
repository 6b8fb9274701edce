from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, TextAreaField
from wtforms.validators import InputRequired

from familylink.forms import (
    DayField,
    SelectField,
    email_field,
    id_choice,
    optional_text_field,
    text_field,
)
from familylink.models import EpisodeEndReason
from familylink.patient.forms import ConsentForm, LanguageField
from familylink.services import progress_updates, screening
from familylink.services.timefmt import babel_locale
from familylink.web import as_id


class EnrolPatientForm(FlaskForm):
    name = text_field(_l("Patient's full name"), required=_l("Enter a name."))
    email = email_field(_l("Patient's email address"), required=_l("Enter an email address."))
    episode_start = DayField(
        _l("Episode start date"),
        validators=[InputRequired(message=_l("Enter the date care started, like 2026-11-02."))],
    )

    def enrolment(self) -> dict:
        """The keyword arguments `accounts.enrol_patient` takes from this form."""
        return {name: self[name].data for name in ("name", "email", "episode_start")}


class DischargeForm(FlaskForm):
    """Ending an episode of care: the date, a neutral reason, and a confirmation."""

    ended_on = DayField(
        _l("Date the episode ended"),
        validators=[InputRequired(message=_l("Enter the date care ended, like 2026-11-02."))],
    )
    reason = SelectField(_l("Reason"), choices=[], validate_choice=False)
    confirm = BooleanField(
        _l(
            "I confirm: family members whose consent lasts until the end of this episode lose "
            "access when its extra days have passed, at once if they already have."
        ),
        validators=[InputRequired(message=_l("Tick the box to confirm."))],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reason.choices = [("", _l("Choose a reason"))] + [
            (r.value, r.label) for r in EpisodeEndReason
        ]


class ReadmitForm(FlaskForm):
    started_on = DayField(
        _l("Date the new episode starts"),
        validators=[InputRequired(message=_l("Enter the date care starts, like 2026-11-02."))],
    )


class PaperConsentForm(ConsentForm):
    """A consent signed on paper, recorded by the patient's own therapist."""

    locale = LanguageField(
        _l("Language of the paper form"),
        description=_l(
            "The record keeps the form's words in the language the patient read and signed."
        ),
    )
    signature_name = text_field(
        _l("Name the patient signed with"),
        required=_l("Enter the name the patient signed with."),
        description=_l("Their full name as on file."),
    )
    understood = BooleanField(_l("The patient ticked that they read and understood the form."))
    signed_on = DayField(
        _l("Date the patient signed"),
        validators=[InputRequired(message=_l("Enter the date signed, like 2026-11-02."))],
    )
    attested = BooleanField(
        _l("I attest that the patient signed this consent on paper and the details above match it.")
    )

    def signed_locale(self) -> str:
        return self.locale.data


class WrittenRevocationForm(FlaskForm):
    note = text_field(
        _l("How the revocation arrived"),
        required=_l("Say how the written revocation arrived."),
        max_length=1000,
        field=TextAreaField,
        description=_l("For example: letter dated 2026-11-20, handed in at the front desk."),
    )


# --- Scheduling --------------------------------------------------------------------------------

from wtforms import (  # noqa: E402
    BooleanField,
    IntegerField,
    TimeField,
)
from wtforms.validators import NumberRange, Optional  # noqa: E402


def weekday_choices() -> list[tuple[int, str]]:
    """Monday (0) to Sunday (6), named by Babel in the reader's language."""
    names = babel_locale().days["format"]["wide"]
    return [(n, names[n][:1].upper() + names[n][1:]) for n in range(7)]


class WindowForm(FlaskForm):
    weekday = SelectField(_l("Day"), coerce=int, choices=[], validate_choice=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.weekday.choices = weekday_choices()

    start_time = TimeField(
        _l("From"), validators=[InputRequired(message=_l("Enter a start time."))]
    )
    end_time = TimeField(_l("Until"), validators=[InputRequired(message=_l("Enter an end time."))])

    def booking_arguments(self) -> dict:
        """The keyword arguments `booking.add_window` takes from this form."""
        return {
            "weekday": self.weekday.data,
            "start": self.start_time.data,
            "end": self.end_time.data,
        }


class OverrideForm(FlaskForm):
    day = DayField(
        _l("Date"), validators=[InputRequired(message=_l("Enter a date, like 2026-12-24."))]
    )
    off = BooleanField(_l("Time off (leave unticked to add extra hours)"), default=True)
    start_time = TimeField(_l("From (empty: the whole day)"), validators=[Optional()])
    end_time = TimeField(_l("Until"), validators=[Optional()])

    def booking_arguments(self) -> dict:
        """The keyword arguments `booking.add_override` takes from this form."""
        return {
            "day": self.day.data,
            "off": self.off.data,
            "start": self.start_time.data,
            "end": self.end_time.data,
        }


class SessionTypeForm(FlaskForm):
    name = text_field(_l("Name"), required=_l("Enter a name."), max_length=80)
    duration_minutes = IntegerField(
        _l("Length in minutes"),
        validators=[InputRequired(message=_l("Enter the length in minutes."))],
    )
    capacity = IntegerField(
        _l("Families"),
        default=1,
        description=_l("1 for a private family session; more for a multi-family group."),
        validators=[InputRequired(message=_l("Enter how many families."))],
    )
    mode = SelectField(_l("Where"), choices=[], validate_choice=False)
    location = optional_text_field(_l("Room or address"), max_length=200)
    cancellation_window_hours = IntegerField(
        _l("Cancellation window in hours (empty: the program's)"),
        validators=[
            Optional(),
            NumberRange(min=0, max=336, message=_l("Number must be between %(min)s and %(max)s.")),
        ],
    )
    # Offered only after the screen refused the location (see words_to_confirm): the box
    # confirms the words listed in the hidden field, the ones the person was shown.
    location_anyway = BooleanField(_l("Use it anyway"))
    location_words = HiddenField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode.choices = [("in_person", _l("In person")), ("video", _l("Video"))]

    def booking_arguments(self) -> dict:
        """The keyword arguments `booking.add_session_type` and `update_session_type` take
        from this form, the same for a therapist adding a type and an admin changing one."""
        return {
            "name": self.name.data,
            "duration_minutes": self.duration_minutes.data,
            "capacity": self.capacity.data,
            "mode": self.mode.data,
            "location": self.location.data,
            "cancellation_window_hours": self.cancellation_window_hours.data,
            "location_confirmed": self.confirmed_words(),
        }

    def confirmed_words(self) -> tuple[str, ...]:
        """The clinical words of the location the person was shown and chose to keep."""
        if not self.location_anyway.data:
            return ()
        return tuple(word for word in (self.location_words.data or "").split(",") if word)

    @property
    def words_to_confirm(self) -> str:
        """After a refused location: its clinical words, for the confirm box ('' otherwise)."""
        if not self.location.errors:
            return ""
        return ",".join(screening.clinical_words(self.location.data or ""))


class GroupForm(FlaskForm):
    session_type = SelectField(_l("Group type"), coerce=id_choice, validate_choice=False)
    first_day = DayField(_l("First date"), validators=[InputRequired(message=_l("Enter a date."))])
    start_time = TimeField(
        _l("Start time"), validators=[InputRequired(message=_l("Enter a time."))]
    )
    weeks = IntegerField(
        _l("How many weeks"),
        default=1,
        validators=[InputRequired(message=_l("Enter how many weeks."))],
    )
    capacity = IntegerField(_l("Families"), validators=[Optional()])


class ProgramAttendanceForm(FlaskForm):
    """One program day's attendance for the therapist's patients: the day travels in a hidden
    input (it is chosen above the form), each patient's status is a radio group
    `status-<patient id>` (the template writes them: one per patient on the day's sheet)."""

    STATUS_PREFIX = "status-"

    day = DayField(
        _l("Program day"),
        validators=[InputRequired(message=_l("Choose the program day, like 2026-11-02."))],
    )

    def statuses(self, formdata) -> dict:
        """{patient id: status} for each radio group answered in `formdata` (the request's
        form); a group left empty stays unrecorded. A name whose id could be no id keeps
        None, which no patient has (the service refuses it as not found)."""
        return {
            as_id(name.removeprefix(self.STATUS_PREFIX)): value
            for name, value in formdata.items()
            if name.startswith(self.STATUS_PREFIX)
        }


# --- Progress updates --------------------------------------------------------------------------


class ProgressUpdateForm(FlaskForm):
    """A progress update's text; after a warning about clinical words, the words shown
    (hidden) and the box that keeps them. The box is never rendered ticked."""

    text = text_field(
        _l("The update"),
        required=_l("Write the update."),
        max_length=progress_updates.MAX_LENGTH,
        field=TextAreaField,
        description=_l(
            "Plain words for the family, a few sentences under each prompt. Nothing "
            "clinical: the patient reads this exact text and decides whether it is shared."
        ),
        render_kw={"rows": 10},
    )
    words_shown = HiddenField()
    keep_words = BooleanField(_l("Keep these words: the patient will see them before anyone else"))

    def warned_words(self) -> tuple[str, ...]:
        """The words a refused text was warned about: the ones the box keeps."""
        if not self.text.errors or not self.text.data:
            return ()
        return progress_updates.flagged_words(self.text.data)

    def confirmed_words(self) -> tuple[str, ...]:
        if not self.keep_words.data or not self.words_shown.data:
            return ()
        return tuple(word for word in self.words_shown.data.split("\n") if word)


class NewProgressUpdateForm(ProgressUpdateForm):
    recipient = SelectField(_l("For"), choices=[], validate_choice=True)

    def __init__(self, family, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recipient.choices = [("", _l("Every family member who may receive updates"))] + [
            (str(member.id), member.name) for member in family
        ]
        if not self.is_submitted():
            self.text.data = progress_updates.prompts()

    def recipient_id(self) -> int | None:
        return id_choice(self.recipient.data) if self.recipient.data else None
