"""The boxes of a checkbox group (`checkboxes` in templates/_macros/forms.html) are written
by `checkbox_items` in one call; each box must read exactly as WTForms' `option()` and
`option.label()` wrote it when the macro looped over the field (the plain path, below)."""

import pytest
from flask import render_template_string
from flask_babel import lazy_gettext as _l
from wtforms import Form
from wtforms.validators import InputRequired

from familylink.forms import MultiCheckboxField, checkbox_items, id_choice

# The macro's loop before `checkbox_items`: WTForms writes every box.
PLAIN = (
    '{% for option in f %}<li class="check">{{ option() }} {{ option.label() }}</li>{% endfor %}'
)


class Sample(Form):
    people = MultiCheckboxField("Also invite", coerce=id_choice, validate_choice=False)
    hours = MultiCheckboxField("Hours", coerce=int)
    needed = MultiCheckboxField("Needed", [InputRequired()], coerce=int)
    styled = MultiCheckboxField("Styled", coerce=int, render_kw={"class": "wide"})

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        names = [(11, 'Luis "Lu" <Rivera>'), (12, "Ana & Bo"), (13, "O'Neil")]
        self.people.choices = names
        self.hours.choices = [(24, _l("A day before")), (2, "")]
        self.needed.choices = names
        self.styled.choices = names


CASES = {
    "none_checked": ("people", {}),
    "some_checked": ("people", {"people": [12, 13]}),
    "lazy_and_empty_labels": ("hours", {"hours": [2]}),
    "no_choices": ("people", {}),
    "required_by_wtforms": ("needed", {"needed": [11]}),
    "render_kw_by_wtforms": ("styled", {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_box_is_written_as_wtforms_wrote_it(app, case):
    name, data = CASES[case]
    for language in ("en", "es"):
        app.config["FORCE_LOCALE"] = language
        with app.test_request_context():
            f = Sample(data=data)[name]
            if case == "no_choices":
                f.choices = []
            plain = render_template_string(PLAIN, f=f)
            assert str(checkbox_items(f)) == plain
            assert render_template_string("{{ f|checkbox_items }}", f=f) == plain
    app.config.pop("FORCE_LOCALE")


def test_the_written_boxes_are_not_empty(app):
    with app.test_request_context():
        f = Sample(data={"people": [12]}).people
        written = str(checkbox_items(f))
    assert written.count('<li class="check">') == 3
    assert '<input checked id="people-1" name="people" type="checkbox" value="12">' in written
    assert "Luis &#34;Lu&#34; &lt;Rivera&gt;" in written
