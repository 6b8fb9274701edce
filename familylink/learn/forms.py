from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    SearchField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from familylink.forms import id_choice, number_field
from familylink.models import ToolKind
from familylink.services.learning import MAX_REFLECTION
from familylink.web import as_id

EVERYONE = "all"


class SearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = SearchField(
        "Search titles and summaries",
        validators=[Optional(), Length(max=100, message="Use at most 100 characters.")],
    )


class ShareField(SelectField):
    """Nobody (""), or the patient whose therapist may read the reflection; the choices are
    set by the view, and a value outside them is refused by the service beside the field."""

    def __init__(self, label, **kwargs):
        super().__init__(label, choices=[], validate_choice=False, **kwargs)

    def patient_id(self) -> int | None:
        if not self.data:
            return None
        return as_id(self.data) or 0  # 0 is nobody's id: refused like any id not offered


class ProgressForm(FlaskForm):
    completed = BooleanField("I have finished this reading")
    reflection = TextAreaField(
        "Your reflection (private)",
        validators=[
            Optional(),
            Length(max=MAX_REFLECTION, message=f"Use at most {MAX_REFLECTION} characters."),
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

    def share_with(self, patients) -> None:
        """Offer nobody, or the therapist of each of these patients. Built now, not lazily:
        a lazy string renders as markup, so a name in it would not be escaped."""
        self.share.choices = [("", _l("Nobody: keep it private"))] + [
            (str(p.id), _("%(name)s's therapist", name=p.name)) for p in patients
        ]


class FamilyChoiceField(SelectField):
    """Everyone, or one family member; an id outside the list is left to the service (404)."""

    def __init__(self, label="Who should read it", **kwargs):
        super().__init__(label, choices=[], validate_choice=False, **kwargs)

    def target(self) -> int | None:
        """None for every consented family member; an int id otherwise; ValueError if neither."""
        if self.data == EVERYONE:
            return None
        return id_choice(self.data)


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ToolChoiceField(SelectField):
    """No tool (""), or a practice tool to try with the reading; the service refuses others."""

    def __init__(self, label, **kwargs):
        super().__init__(label, choices=[], validate_choice=False, **kwargs)
        self.choices = [("", _l("None"))] + [(kind.value, kind.label) for kind in ToolKind]

    def kind(self) -> str | None:
        return self.data or None


class AssignForm(FlaskForm):
    family = FamilyChoiceField()
    modules = MultiCheckboxField("Modules", coerce=id_choice, validate_choice=False)
    tool = ToolChoiceField(
        _l("A practice tool to try with it (optional)"),
        description=_l("The family member fills it in privately and decides whether to share it."),
    )
    note = TextAreaField(
        "Note for the family (optional)",
        validators=[Optional(), Length(max=1000, message="Use at most 1,000 characters.")],
        description=(
            "Shown with the reading. Keep it general: it is not a place for clinical details."
        ),
    )


class SequenceForm(FlaskForm):
    family = FamilyChoiceField()


def _lines(label, description):
    return TextAreaField(
        label,
        validators=[InputRequired(message="This can't be empty.")],
        description=description,
    )


class ModuleForm(FlaskForm):
    title = StringField(
        "Title",
        validators=[InputRequired(message="Enter a title."), Length(max=200, message="Too long.")],
    )
    summary = TextAreaField(
        "One-line summary",
        validators=[
            InputRequired(message="Enter a summary."),
            Length(max=500, message="Too long."),
        ],
    )
    topic = StringField(
        "Topic",
        validators=[InputRequired(message="Enter a topic."), Length(max=80, message="Too long.")],
    )
    order = IntegerField(
        "Place in the reading order",
        validators=[InputRequired(message="Enter a number."), NumberRange(0, 999)],
    )
    reading_minutes = number_field("Reading time (minutes)", 1, 60, unit="minutes")
    key_points = _lines("Key points", "One per line, 3 to 5.")
    reflection = TextAreaField(
        "Reflection question", validators=[InputRequired(message="Enter a question.")]
    )
    exercise = TextAreaField("Exercise", validators=[InputRequired(message="Enter an exercise.")])
    sources = _lines("Sources", "One per line, at least one.")
    body_markdown = TextAreaField(
        "Body (Markdown)",
        validators=[InputRequired(message="Enter the text.")],
        description="Headings start with ##. Scripts and unsafe links are removed when saved.",
        render_kw={"rows": 24},
    )
    published = BooleanField("Published (families can read it)")
