from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    SearchField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from familylink.forms import MultiCheckboxField, SelectField, id_choice, number_field, text_field
from familylink.i18n import lazy_gettext as _l
from familylink.models import ToolKind
from familylink.services.learning import MAX_REFLECTION
from familylink.web import as_id

EVERYONE = "all"
WHO_SHOULD_READ = _l("Who should read it")


class SearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = SearchField(
        _l("Search titles and summaries"),
        validators=[
            Optional(),
            Length(max=100, message=_l("Use at most %(count)s characters.", count=100)),
        ],
    )


class ShareField(SelectField):
    """Nobody (""), or the patient whose therapist may read the reflection or practice
    tool; the choices are set by the view (`offer`), and a value outside them is refused by
    the service beside the field."""

    def __init__(self, label, **kwargs):
        super().__init__(label, choices=[], validate_choice=False, **kwargs)

    def offer(self, patients) -> None:
        """Offer nobody (the default), or the therapist of each of these patients. Each
        label is translated now, once (gettext, not lazy_gettext): WTForms looks a lazy
        label up twice as it writes the option, and renders it as markup, so a name in
        it (whatever its owner typed) would not be escaped."""
        self.choices = [("", _("Nobody: keep it private"))] + [
            (str(p.id), _("%(name)s's therapist", name=p.name)) for p in patients
        ]

    def patient_id(self) -> int | None:
        if not self.data:
            return None
        return as_id(self.data) or 0  # 0 is nobody's id: refused like any id not offered


class ProgressForm(FlaskForm):
    completed = BooleanField(_l("I have finished this reading"))
    reflection = TextAreaField(
        _l("Your reflection (private)"),
        validators=[
            Optional(),
            Length(
                max=MAX_REFLECTION,
                message=_l("Use at most %(count)s characters.", count=MAX_REFLECTION),
            ),
        ],
        description=_l("Only you can read this, unless you share it below."),
    )
    share = ShareField(
        _l("Share my reflection with"),
        description=_l(
            "Only the therapist you choose can read it; your loved one never sees it. "
            "You can change this at any time."
        ),
    )


class FamilyChoiceField(SelectField):
    """Everyone, or one family member; an id outside the list is left to the service (404)."""

    def __init__(self, label=WHO_SHOULD_READ, **kwargs):
        super().__init__(label, choices=[], validate_choice=False, **kwargs)

    def target(self) -> int | None:
        """None for every consented family member; an int id otherwise; ValueError if neither."""
        if self.data == EVERYONE:
            return None
        return id_choice(self.data)


class ToolChoiceField(SelectField):
    """No tool (""), or a practice tool to try with the reading; the service refuses others."""

    def __init__(self, label, **kwargs):
        super().__init__(label, choices=[], validate_choice=False, **kwargs)
        self.choices = [("", _l("None"))] + [(kind.value, kind.label) for kind in ToolKind]

    def kind(self) -> str | None:
        return self.data or None


class AssignForm(FlaskForm):
    family = FamilyChoiceField()
    modules = MultiCheckboxField(_l("Modules"), coerce=id_choice, validate_choice=False)
    tool = ToolChoiceField(
        _l("A practice tool to try with it (optional)"),
        description=_l("The family member fills it in privately and decides whether to share it."),
    )
    note = TextAreaField(
        _l("Note for the family (optional)"),
        validators=[Optional(), Length(max=1000, message=_l("Use at most 1,000 characters."))],
        description=_l(
            "Shown with the reading. Keep it general: it is not a place for clinical details."
        ),
    )


class SequenceForm(FlaskForm):
    family = FamilyChoiceField()


def _lines(label, description):
    return TextAreaField(
        label,
        validators=[InputRequired(message=_l("This can't be empty."))],
        description=description,
    )


def _module_text(label, required, max_length: int, field=StringField):
    """A required text of the module editor, with its own short length message."""
    return text_field(
        label, required=required, max_length=max_length, too_long=_l("Too long."), field=field
    )


class ModuleForm(FlaskForm):
    title = _module_text(_l("Title"), _l("Enter a title."), 200)
    summary = _module_text(_l("One-line summary"), _l("Enter a summary."), 500, TextAreaField)
    topic = _module_text(_l("Topic"), _l("Enter a topic."), 80)
    order = IntegerField(
        _l("Place in the reading order"),
        validators=[
            InputRequired(message=_l("Enter a number.")),
            NumberRange(0, 999, message=_l("Number must be between %(min)s and %(max)s.")),
        ],
    )
    reading_minutes = number_field(_l("Reading time (minutes)"), 1, 60, unit="minutes")
    key_points = _lines(_l("Key points"), _l("One per line, 3 to 5."))
    reflection = TextAreaField(
        _l("Reflection question"), validators=[InputRequired(message=_l("Enter a question."))]
    )
    exercise = TextAreaField(
        _l("Exercise"), validators=[InputRequired(message=_l("Enter an exercise."))]
    )
    sources = _lines(_l("Sources"), _l("One per line, at least one."))
    body_markdown = TextAreaField(
        _l("Body (Markdown)"),
        validators=[InputRequired(message=_l("Enter the text."))],
        description=_l("Headings start with ##. Scripts and unsafe links are removed when saved."),
        render_kw={"rows": 24},
    )
    published = BooleanField(_l("Published (families can read it)"))
