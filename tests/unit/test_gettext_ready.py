"""New strings go through gettext: the `_` helper works in templates and in Python."""

from flask import render_template_string
from flask_babel import gettext, lazy_gettext


def test_templates_and_python_share_one_gettext(app):
    with app.test_request_context("/"):
        assert render_template_string("{{ _('Book a session') }}") == "Book a session"
        assert gettext("%(n)s sessions", n=3) == "3 sessions"
        assert str(lazy_gettext("Save")) == "Save"
        assert (
            render_template_string("{{ ngettext('%(num)d day', '%(num)d days', 2) }}") == "2 days"
        )
