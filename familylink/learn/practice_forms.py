"""The practice tools' forms: one per tool, each with a name, its answers and whom to share
it with. The lengths are the service's; it refuses the same limits with the same words."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, Optional

from familylink.forms import MultiCheckboxField
from familylink.learn.forms import ShareField
from familylink.models import ToolKind
from familylink.services.learning import practice


def _answer(label, description=None, limit=practice.MAX_ANSWER, rows=4):
    return TextAreaField(
        label,
        validators=[
            Optional(),
            Length(max=limit, message=_l("Use at most %(count)s characters.", count=limit)),
        ],
        description=description,
        render_kw={"rows": rows, "maxlength": limit},
    )


class PracticeForm(FlaskForm):
    title = StringField(
        _l("A short name, for you"),
        validators=[
            Optional(),
            Length(
                max=practice.MAX_TITLE,
                message=_l("Use at most %(count)s characters.", count=practice.MAX_TITLE),
            ),
        ],
        render_kw={"maxlength": practice.MAX_TITLE},
    )
    share = ShareField(
        _l("Share with"),
        description=_l(
            "Private unless you choose a therapist. Only that therapist can read it, while "
            "your loved one's consent is in force; your loved one never sees it. You can "
            "change this at any time."
        ),
    )

    def answer_fields(self):
        """The tool's own questions, in the order asked."""
        return [self[name] for name in self.ANSWERS]

    ANSWERS: tuple[str, ...] = ()


class BeforeAfterForm(PracticeForm):
    ANSWERS = practice.TOOLS[ToolKind.BEFORE_AFTER].fields
    triggers = _answer(
        _l("Before: what usually sets it off?"),
        _l("Places, people, times of day, feelings, money, stress."),
    )
    what_happens = _answer(
        _l("What happens?"), _l("What they use or do, how much, and for how long.")
    )
    short_term_pull = _answer(
        _l("The short-term pull: what do they get out of it right away?"),
        _l("Relief, sleep, fun, company, escape. Understanding the pull is not excusing it."),
    )
    long_term_cost = _answer(
        _l("After: what does it cost them later?"),
        _l("Health, money, work, trust, the people they love. These are the reasons to change."),
    )


MESSAGE_ELEMENT_LABELS = {
    "brief": _l("Brief: one or two sentences, one request."),
    "positive": _l("Positive: says what you would like, not what you don't want."),
    "specific": _l("Specific: names something they can see and do."),
    "feelings": _l('Names your feeling, calmly ("I feel…").'),
    "understanding": _l("Shows you understand their side."),
    "partial_responsibility": _l("Takes a small part of the responsibility that is yours."),
    "offer_help": _l("Offers to help."),
}


class MessageForm(PracticeForm):
    message = _answer(
        _l("Your message"),
        _l("Write it as you would say it. Each time you rewrite it, the earlier words are kept."),
        limit=practice.MAX_MESSAGE,
        rows=5,
    )
    checked = MultiCheckboxField(
        _l("Read it again: which of these does it do?"),
        choices=[],
        validate_choice=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.checked.choices = [
            (key, MESSAGE_ELEMENT_LABELS[key]) for key in practice.MESSAGE_ELEMENTS
        ]


class RewardsForm(PracticeForm):
    ANSWERS = practice.TOOLS[ToolKind.REWARDS].fields
    when_sober = _answer(
        _l("When my loved one is sober, I will…"),
        _l("Small, real rewards: time together, a favourite meal, warmth, praise."),
    )
    when_not_sober = _answer(
        _l("When they are not sober, I will stop…"),
        _l(
            "What I will stop doing, so the consequences are theirs: covering for them, "
            "paying, cleaning up. Never anything that puts anyone in danger."
        ),
    )


_PLAN = practice.TOOLS[ToolKind.SAFETY_PLAN].limit


class SafetyPlanForm(PracticeForm):
    ANSWERS = practice.TOOLS[ToolKind.SAFETY_PLAN].fields
    warning_signs = _answer(
        _l("Warning signs that things are getting unsafe"),
        _l("What you notice in them, or in yourself, before things get worse."),
        limit=_PLAN,
    )
    people_to_call = _answer(
        _l("People I can call, and when"),
        _l("A friend, a neighbour, a relative: a name, a number, and when you would call."),
        limit=_PLAN,
    )
    naloxone_place = _answer(
        _l("Where the naloxone is"),
        _l("Where it is kept, so anyone in the house can find it fast."),
        limit=_PLAN,
        rows=2,
    )
    safe_place = _answer(
        _l("A safe place I can go"),
        _l("Somewhere you and the children can go if you need to leave."),
        limit=_PLAN,
        rows=2,
    )


FORMS = {
    ToolKind.BEFORE_AFTER: BeforeAfterForm,
    ToolKind.MESSAGE: MessageForm,
    ToolKind.REWARDS: RewardsForm,
    ToolKind.SAFETY_PLAN: SafetyPlanForm,
}

#: Each answer's question, for the therapist's page of what was shared.
ANSWER_LABELS = {
    name: getattr(form, name).args[0] for form in FORMS.values() for name in form.ANSWERS
}
