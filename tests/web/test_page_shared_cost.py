"""What every page pays for (issue 15): the layout's menu and footer words rendered once per
language and role, form attributes written without string.Formatter, the signed-in person
and the language looked up once per time shown, never once per part of it. Each of these
keeps what a person sees, and whose it is, as it was."""

import re

import pytest
from markupsafe import Markup

from familylink import forms
from tests.moments import NOON

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON, "PROGRAM_CACHE_SECONDS": 3600}


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"id": "email", "name": "email", "type": "email", "required": True, "value": "a@b.org"},
        {"class_": "wide", "for_": "x", "data_week_start": "2026-11-16", "aria_described_by": "h"},
        {"checked": False, "readonly": True, "value": None, "maxlength": 120, "step": 0.5},
        {"value": '"><script>alert(1)</script>', "title": "Rivera & 'Sons'"},
        {"value": Markup('already "safe" &amp; kept'), "placeholder": Markup("<b>")},
    ],
)
def test_attributes_are_written_exactly_as_wtforms_writes_them(attributes):
    assert forms.html_params(**attributes) == forms.WTFORMS_HTML_PARAMS(**attributes)


def test_a_form_page_writes_its_attributes_without_string_formatter(client, monkeypatch):
    """WTForms' writer formats each attribute with Markup.format (Python's string.Formatter),
    about a sixth of the sign-in page under cProfile; ours writes the same characters."""
    calls = []
    original = Markup.format

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Markup, "format", counted)
    page = client.get("/login").get_data(as_text=True)
    assert 'type="email"' in page and 'name="password"' in page
    assert calls == []
