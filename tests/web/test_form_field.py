"""Every form field is written by one `field(f)` call (templates/_macros/forms.html drew it
as a Jinja macro, ~330 Python calls a field under cProfile). The expectations below are the
macro's own output for each kind of field, whitespace runs written as one space: what a
person sees and what a screen reader announces (labels, hints, errors tied by
aria-describedby, aria-invalid, required) must stay exactly as it was."""

import cProfile
import pstats
import re

import pytest
from flask import render_template_string
from markupsafe import Markup
from wtforms import BooleanField, Form, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Optional


class Sample(Form):
    name = StringField("Your <name> & 'nick'", [InputRequired()], render_kw={"maxlength": 80})
    note = TextAreaField("Note", description="Seen by your therapist & <staff>")
    pick = SelectField(
        "Pick",
        [InputRequired()],
        choices=[],
        coerce=int,
        description="Choose one",
        render_kw={"data-x": 'a"b<c>', "class": "wide"},
    )
    plain = SelectField("Plain", [Optional()], choices=[])
    agree = BooleanField("I agree <now>", description="Needed to go on")
    quiet = BooleanField("Quiet")
    safe = StringField(Markup("<b>Bold</b> label"), description=Markup("<i>kept</i>"))

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Set after construction, as the app's own forms do (tuples in the call are deprecated).
        self.pick.choices = [(1, "One <1>"), (2, 'Two "2"'), (3, "Three & 3")]
        self.plain.choices = [("", "—"), ("a", "A")]


def _rendered(app, name: str, errors, data) -> str:
    with app.test_request_context():
        form = Sample(data=data)
        f = form[name]
        f.errors = list(errors)
        html = render_template_string("{{ field(f) }}", f=f)
    return re.sub(r"\s+", " ", html).strip()


CASES = {
    "text_required_render_kw": ("name", (), {"name": "Ana"}),
    "text_with_errors": ("name", ["Too <long>.", "Say it again & again."], {"name": '"x"'}),
    "textarea_with_hint": ("note", (), {"note": "<script>"}),
    "textarea_hint_and_error": ("note", ["Too long."], {}),
    "select_chosen": ("pick", (), {"pick": 2}),
    "select_errors_hint_render_kw": ("pick", ["Choose one of the options shown."], {}),
    "select_no_value": ("plain", (), {}),
    "select_string_chosen": ("plain", (), {"plain": "a"}),
    "boolean_checked_hint": ("agree", (), {"agree": True}),
    "boolean_hint_and_error": ("agree", ["Tick <this>."], {}),
    "boolean_plain": ("quiet", (), {}),
    "markup_label_and_hint": ("safe", (), {}),
}

EXPECTED = {
    "boolean_checked_hint": (
        '<div class="field"> <div class="check"> <input aria-describedby="agree-hint" checked'
        ' id="agree" name="agree" type="checkbox" value="y"> <label for="agree">I agree'
        ' &lt;now&gt;</label> </div> <p class="hint" id="agree-hint">Needed to go on</p> </div>'
    ),
    "boolean_hint_and_error": (
        '<div class="field has-error"> <div class="check"> <input aria-describedby="agree-hint'
        ' agree-error" id="agree" name="agree" type="checkbox" value="y"> <label for="agree">I'
        ' agree &lt;now&gt;</label> </div> <p class="hint" id="agree-hint">Needed to go on</p> '
        '<p class="error" id="agree-error">Tick &lt;this&gt;.</p> </div>'
    ),
    "boolean_plain": (
        '<div class="field"> <div class="check"> <input id="quiet" name="quiet" type="checkbox"'
        ' value="y"> <label for="quiet">Quiet</label> </div> </div>'
    ),
    "markup_label_and_hint": (
        '<div class="field"> <label for="safe"><b>Bold</b> label</label> <p class="hint"'
        ' id="safe-hint"><i>kept</i></p> <input aria-describedby="safe-hint" id="safe"'
        ' name="safe" type="text" value=""> </div>'
    ),
    "select_chosen": (
        '<div class="field"> <label for="pick">Pick</label> <p class="hint"'
        ' id="pick-hint">Choose one</p> <select id="pick" name="pick" required'
        ' aria-describedby="pick-hint" data-x="a&#34;b&lt;c&gt;" class="wide"><option'
        ' value="1">One &lt;1&gt;</option><option value="2" selected>Two &#34;2&#34;</option>'
        '<option value="3">Three &amp; 3</option></select> </div>'
    ),
    "select_errors_hint_render_kw": (
        '<div class="field has-error"> <label for="pick">Pick</label> <p class="hint"'
        ' id="pick-hint">Choose one</p> <p class="error" id="pick-error">Choose one of the'
        ' options shown.</p> <select id="pick" name="pick" required aria-invalid="true"'
        ' aria-describedby="pick-hint pick-error" data-x="a&#34;b&lt;c&gt;" class="wide">'
        '<option value="1">One &lt;1&gt;</option><option value="2">Two &#34;2&#34;</option>'
        '<option value="3">Three &amp; 3</option></select> </div>'
    ),
    "select_no_value": (
        '<div class="field"> <label for="plain">Plain</label> <select id="plain" name="plain">'
        '<option value="">—</option><option value="a">A</option></select> </div>'
    ),
    "select_string_chosen": (
        '<div class="field"> <label for="plain">Plain</label> <select id="plain" name="plain">'
        '<option value="">—</option><option value="a" selected>A</option></select> </div>'
    ),
    "text_required_render_kw": (
        '<div class="field"> <label for="name">Your &lt;name&gt; &amp; &#39;nick&#39;</label> '
        '<input id="name" maxlength="80" name="name" required type="text" value="Ana"> </div>'
    ),
    "text_with_errors": (
        '<div class="field has-error"> <label for="name">Your &lt;name&gt; &amp; &#39;nick&#39;'
        '</label> <p class="error" id="name-error">Too &lt;long&gt;. Say it again &amp; again.'
        '</p> <input aria-describedby="name-error" aria-invalid="true" id="name" maxlength="80"'
        ' name="name" required type="text" value="&#34;x&#34;"> </div>'
    ),
    "textarea_hint_and_error": (
        '<div class="field has-error"> <label for="note">Note</label> <p class="hint"'
        ' id="note-hint">Seen by your therapist &amp; &lt;staff&gt;</p> <p class="error"'
        ' id="note-error">Too long.</p> <textarea aria-describedby="note-hint note-error"'
        ' aria-invalid="true" id="note" name="note"> </textarea> </div>'
    ),
    "textarea_with_hint": (
        '<div class="field"> <label for="note">Note</label> <p class="hint" id="note-hint">Seen'
        ' by your therapist &amp; &lt;staff&gt;</p> <textarea aria-describedby="note-hint"'
        ' id="note" name="note"> &lt;script&gt;</textarea> </div>'
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_kind_of_field_is_written_as_the_macro_wrote_it(app, case):
    name, errors, data = CASES[case]
    assert _rendered(app, name, errors, data) == EXPECTED[case]


def _calls(app, source: str, f) -> int:
    template = app.jinja_env.from_string(source)
    template.render(f=f)  # compiled and warmed once, as on a served page
    profile = cProfile.Profile()
    profile.runcall(template.render, f=f)
    return pstats.Stats(profile).total_calls


def test_a_select_costs_half_the_calls_the_macro_did(app):
    """As a macro this select (hint, error, three options) cost 338 Python calls under
    cProfile, and every page paid it per field (a module page's three progress fields were
    a seventh of its calls). What is left is mostly WTForms' label and escaping (~150).
    Measured as what a second field adds, so the template's own start is not counted."""
    with app.test_request_context():
        form = Sample(data={"pick": 2})
        form.pick.errors = ["Choose one of the options shown."]
        one = _calls(app, "{{ field(f) }}", form.pick)
        two = _calls(app, "{{ field(f) }}{{ field(f) }}", form.pick)
    assert two - one < 200
