"""A hidden field written by `hidden_input` (`{{ form.csrf_token|hidden_input }}`) must read
exactly as WTForms' `f()` wrote it (the plain path): the CSRF token, a one-time key, values
that need escaping, and the fields WTForms still writes itself."""

import pytest
from flask import render_template_string
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import StringField
from wtforms.widgets import HiddenInput

from familylink.forms import HiddenField, hidden_input


class Sample(FlaskForm):
    request_key = HiddenField()
    odd = HiddenField(id='odd"<id>')
    styled = HiddenField(render_kw={"data-x": "1"})
    shown = StringField()  # not hidden: WTForms writes it
    typed = StringField(widget=HiddenInput())


CASES = {
    "csrf_token": None,
    "request_key": "abc-DEF_123",
    "odd": "a\"b<c>&'d",
    "styled": "k",
    "shown": "text",
    "typed": "typed",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_hidden_field_is_written_as_wtforms_wrote_it(app, case):
    with app.test_request_context():
        form = Sample(meta={"csrf": True})
        f = form[case]
        if CASES[case] is not None:
            f.data = CASES[case]
        plain = render_template_string("{{ f }}", f=f)
        assert str(hidden_input(f)) == plain
        assert render_template_string("{{ f|hidden_input }}", f=f) == plain
        f.data = Markup('<b>"kept"</b>') if case != "csrf_token" else f.data
        assert str(hidden_input(f)) == render_template_string("{{ f }}", f=f)


def test_the_token_is_written(app):
    with app.test_request_context():
        written = str(hidden_input(Sample(meta={"csrf": True}).csrf_token))
    assert written.startswith('<input id="csrf_token" name="csrf_token" type="hidden" value="')
    assert len(written) > 80


def test_a_form_without_csrf_writes_no_token(app):
    with app.test_request_context():
        form = Sample(meta={"csrf": False})
        source = "[{{ form.csrf_token }}]"
        plain = render_template_string(source, form=form)
        assert plain == "[]"
        assert render_template_string(source.replace("}}", "|hidden_input }}"), form=form) == plain
