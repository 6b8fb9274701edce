"""Form pieces shared by several blueprints."""

import wtforms
import wtforms.widgets.core
from flask_babel import lazy_gettext as _l
from jinja2 import Undefined
from markupsafe import Markup, escape
from wtforms import (
    DateField,
    EmailField,
    IntegerField,
    MonthField,
    PasswordField,
    StringField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget
from wtforms.widgets.core import clean_key

from familylink.services.passwords import MAX_LENGTH
from familylink.services.timefmt import timezone_choices
from familylink.web import DATE_OUT_OF_RANGE, as_id, parse_day

# WTForms' own writer, before `use_html_params`: what ours must write the same as.
WTFORMS_HTML_PARAMS = wtforms.widgets.core.html_params


def html_params(**attributes) -> Markup:
    """WTForms' `html_params`, written character for character as WTForms writes it (sorted
    names, `class_` and `data_`/`aria_` names cleaned, True a bare name, False left out, every
    name and value escaped, a quote in a value as &quot;), with one f-string per attribute.

    WTForms writes each attribute with `Markup.format`, which runs Python's string.Formatter:
    under cProfile its writer was 18% of the sign-in page and 10% of a module page."""
    written = []
    for name, value in sorted(attributes.items()):
        name = escape(clean_key(name))
        if value is True:
            written.append(name)
        elif value is not False:
            text = str(escape(value)).replace('"', "&quot;")  # a quote only a Markup keeps
            written.append(f'{name}="{text}"')
    return Markup(" ".join(written))  # noqa: S704  (every piece escaped above)


def use_html_params() -> None:
    """Every widget and label of WTForms writes its attributes with `html_params` above.

    WTForms reads its writer under four names: the module function (labels, text areas,
    selects), its re-export in `wtforms.widgets`, and the class attribute of `Input` and
    `Button` (kept so that a widget may bring its own)."""
    core = wtforms.widgets.core
    core.html_params = wtforms.widgets.html_params = html_params
    core.Input.html_params = core.Button.html_params = staticmethod(html_params)


class DayField(DateField):
    """A date typed as YYYY-MM-DD, read by `web.parse_day`: a date outside its range is
    refused beside the field, so no page ever computes with year 1 or 9999."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.raw_data = []  # spaces only: not entered, for InputRequired as for Optional
            return
        self.data = parse_day(valuelist[0])
        if self.data is None:
            raise ValueError(DATE_OUT_OF_RANGE)


MONTH_NOT_VALID = _l("Enter a month as YYYY-MM, like 2026-03.")


class WholeMonthField(MonthField):
    """A calendar month typed as YYYY-MM (the browser's month picker where it has one), read
    as its first day by `web.parse_day`, so the same years are refused as for a date."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.raw_data = []  # as DayField
            return
        text = valuelist[0].strip()
        self.data = parse_day(f"{text}-01") if len(text) == 7 else None
        if self.data is None:
            raise ValueError(MONTH_NOT_VALID)


# A value that is not among a field's choices comes only from a form sent by hand. WTForms'
# own words for it ("Not a valid choice.", "Invalid Choice: could not coerce.", "'x' is not
# a valid choice for this field.") are vague, echo the value and are not in our catalogue.
NOT_A_CHOICE = _l("Choose one of the options shown.")


class OfferedChoices:
    """Mixed into every choice field: a value not offered, or one that is no choice at all
    (its `coerce` refused it), is answered NOT_A_CHOICE beside the field."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("invalid_choice_message", NOT_A_CHOICE)
        kwargs.setdefault("invalid_value_message", NOT_A_CHOICE)
        super().__init__(*args, **kwargs)


class Select(wtforms.widgets.Select):
    """WTForms' select, the same HTML. WTForms asks `inspect` for the signature of
    `render_option` each time a select is drawn, in case a subclass kept the signature of
    before 3.3 (a visible part of a select's cost under cProfile); this one is
    WTForms' own, which takes one choice."""

    @classmethod
    def _dispatch_render_option(cls):
        return cls.render_option


# Named as WTForms' own, so a field's `type` (which the `field` macro reads) is unchanged;
# forms import these, never wtforms' (tests/web/test_forged_choices.py checks every form).
class SelectField(OfferedChoices, wtforms.SelectField):
    widget = Select()


class RadioField(OfferedChoices, wtforms.RadioField):
    pass


class SelectMultipleField(OfferedChoices, wtforms.SelectMultipleField):
    widget = Select(multiple=True)


class MultiCheckboxField(SelectMultipleField):
    """A group of checkboxes (render with the `checkboxes` macro)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class HiddenField(wtforms.HiddenField):
    """WTForms' hidden field with no words: given no label, WTForms makes one from the
    field's name and translates it, for a label nobody sees (WTForms' catalogue itself is
    read once per process: `i18n.WTFormsCatalogue`)."""

    def __init__(self, label="", validators=None, **kwargs):
        super().__init__(label, validators, **kwargs)


def id_choice(value) -> int:
    """`coerce` for a list of records (session types, family members, modules): an id of
    1..web.MAX_ID, else the choice is refused like any other unknown one."""
    number = as_id(value)
    if number is None:
        raise ValueError(NOT_A_CHOICE)
    return number


# Default labels and messages of the shared fields (lazy: said in each request's language).
YOUR_TIME_ZONE = _l("Your time zone")
PASSWORD = _l("Password")
EMAIL_ADDRESS = _l("Email address")
ENTER_YOUR_EMAIL = _l("Enter your email address.")


class TimezoneField(SelectField):
    def __init__(self, label=YOUR_TIME_ZONE, **kwargs):
        kwargs.setdefault("validators", [InputRequired(message=_l("Choose your time zone."))])
        super().__init__(label, choices=[], validate_choice=True, **kwargs)
        self.choices = timezone_choices()


def new_password_field(label=PASSWORD):
    return PasswordField(
        label,
        validators=[
            InputRequired(message=_l("Choose a password.")),
            Length(
                max=MAX_LENGTH, message=_l("Use at most %(count)s characters.", count=MAX_LENGTH)
            ),
        ],
        description=_l("At least 12 characters. A few unrelated words work well."),
        render_kw={"autocomplete": "new-password"},
    )


def text_field(
    label,
    *,
    required: str,
    max_length: int = 120,
    too_long: str | None = None,
    field=StringField,
    **kwargs,
):
    """A required text field with a length limit, each with its own plain message (by
    default "Use at most N characters.")."""
    return field(
        label,
        validators=[
            InputRequired(message=required),
            Length(
                max=max_length,
                message=too_long or _l("Use at most %(count)s characters.", count=max_length),
            ),
        ],
        **kwargs,
    )


def optional_text_field(label, *, max_length: int, **kwargs):
    """A text field that may stay empty, with a length limit; the service checks the rest
    (its message names the field)."""
    return StringField(
        label,
        validators=[
            Optional(),
            Length(
                max=max_length, message=_l("Use at most %(count)s characters.", count=max_length)
            ),
        ],
        **kwargs,
    )


def email_field(label=EMAIL_ADDRESS, *, required=ENTER_YOUR_EMAIL, **kwargs):
    return EmailField(
        label,
        validators=[
            InputRequired(message=required),
            Length(max=254, message=_l("That email address is too long.")),
        ],
        **kwargs,
    )


# Whole sentences per unit, so each language words them its own way.
_ENTER_A_NUMBER_OF = {
    "hours": _l("Enter a number of hours."),
    "days": _l("Enter a number of days."),
    "minutes": _l("Enter a number of minutes."),
}


def number_field(label, low: int, high: int, *, unit: str, **kwargs):
    """A required whole number from `low` to `high` (in `unit`: hours, days or minutes)."""
    return IntegerField(
        label,
        validators=[
            InputRequired(message=_ENTER_A_NUMBER_OF[unit]),
            NumberRange(low, high),  # WTForms' own message, in its own catalogue
        ],
        **kwargs,
    )


def code_field(label, *, description: str, digits_only: bool = True):
    """An authenticator code, typed on a phone's number pad; not `digits_only` where a
    recovery code (letters a to f among its digits) may be typed instead: a phone's number
    pad may offer no letters at all."""
    return StringField(
        label,
        validators=[
            InputRequired(message=_l("Enter the code.")),
            Length(max=32, message=_l("That code is too long.")),
        ],
        description=description,
        render_kw={
            "autocomplete": "one-time-code",
            "inputmode": "numeric" if digits_only else "text",
        },
    )


def your_name_field():
    return text_field(
        _l("Your name"), required=_l("Enter your name."), render_kw={"autocomplete": "name"}
    )


def form_field(f, type=None) -> Markup:  # noqa: A002  (the name templates have always passed)
    """One field as `{{ field(f) }}` writes it: label, hint and errors tied to the input by
    aria-describedby, aria-invalid when refused; select options written here with
    `selected` (WTForms' widget led the profile of pages with long time lists). Everything
    is escaped as Jinja's autoescape escaped it when this was a macro."""
    hint = escape(f.description)
    errors = f.errors
    field_id = escape(f.id)
    tied = []  # unescaped: a widget escapes its own attributes
    if hint:
        tied.append(f"{f.id}-hint")
    if errors:
        tied.append(f"{f.id}-error")
    described = " ".join(tied)
    parts = ['<div class="field has-error">' if errors else '<div class="field">']
    kind = f.type
    if kind == "BooleanField":
        box = f(**{"aria-describedby": described}) if described else f()
        parts.append(f'<div class="check">\n{box}\n{f.label()}\n</div>')
    else:
        parts.append(str(f.label()))
    if hint:
        parts.append(f'<p class="hint" id="{field_id}-hint">{hint}</p>')
    if errors:
        said = " ".join(str(escape(error)) for error in errors)
        parts.append(f'<p class="error" id="{field_id}-error">{said}</p>')
    if kind in ("SelectField", "TimezoneField"):
        parts.append(_select(f, field_id, described))
    elif kind != "BooleanField":
        attributes = {"aria-invalid": "true"} if errors else {}
        if described:
            attributes["aria-describedby"] = described
        parts.append(str(f(**attributes)))
    parts.append("</div>")
    return Markup("\n".join(parts))  # noqa: S704  (every piece escaped or a widget's Markup)


def checkbox_items(f) -> Markup:
    """The boxes of a checkbox group (the `checkboxes` macro's list), each `<li>` as WTForms'
    `option()` and `option.label()` wrote it: the input's attributes in `html_params`'
    order, the value and label escaped. WTForms builds a field, a widget call and a label
    for each box; a group whose boxes would carry
    more attributes (`render_kw`, `required`, `disabled`) is still written by WTForms."""
    if f.render_kw or f.flags.required or f.flags.disabled:
        items = (f"{option()} {option.label()}" for option in f)
    else:
        name, items = escape(f.name), []
        for n, choice in enumerate(f.iter_choices()):
            box_id = escape(f"{f.id}-{n}")
            checked = "checked " if choice.selected else ""
            items.append(
                f'<input {checked}id="{box_id}" name="{name}" type="checkbox" '
                f'value="{escape(str(choice.value))}"> '
                f'<label for="{box_id}">{escape(choice.label or choice.value)}</label>'
            )
    return Markup("".join(f'<li class="check">{item}</li>' for item in items))  # noqa: S704


def hidden_input(f) -> Markup:
    """A hidden field (the CSRF token, a one-time key) as WTForms' `f()` writes it, each
    attribute as `html_params` writes it, without WTForms' meta, widget and writer. A field
    whose input would carry more (`render_kw`, `disabled`, a widget of its own) is still
    written by WTForms. A form without CSRF protection has no token field: Jinja's
    Undefined, written as nothing, as before."""
    if isinstance(f, Undefined):
        return f
    if f.render_kw or f.flags.disabled or type(f.widget) is not HiddenInput:
        return f()
    field_id, name, value = (escape(text) for text in (f.id, f.name, f._value()))
    return Markup(f'<input id="{field_id}" name="{name}" type="hidden" value="{value}">')  # noqa: S704


def _select(f, field_id, described: str) -> str:
    """A select with its options written directly: `chosen` compared as text, as the
    macro's `|string` compared it (an int 2 and an option "2" are the same choice)."""
    chosen = str(f.data)
    opening = f'<select id="{field_id}" name="{escape(f.name)}"'
    if f.flags.required:
        opening += " required"
    if f.errors:
        opening += ' aria-invalid="true"'
    if described:
        opening += f' aria-describedby="{escape(described)}"'
    for key, value in (f.render_kw or {}).items():
        opening += f' {escape(key)}="{escape(value)}"'
    options = []
    for option in f.choices:
        value = option[0]
        picked = " selected" if str(value) == chosen else ""
        options.append(f'<option value="{escape(value)}"{picked}>{escape(option[1])}</option>')
    return f"{opening}>{''.join(options)}</select>"
