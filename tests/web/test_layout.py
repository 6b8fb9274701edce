"""The layout every page is written in (templates/base.html), written with fewer steps (issue
19): each page must come out exactly as the plain layout writes it."""

import pytest
from flask import flash, render_template_string
from flask_login import login_user

from familylink.models import Role
from tests.factories import create_user

PAGE = (
    "{% extends layout %}{% block title %}Notes{% endblock %}"
    "{% block content %}<h1>{{ _('Home') }}</h1><p>{{ who }}</p>"
    "{% for n in range(3) %}<i>{{ n }}</i>{% endfor %}{% endblock %}"
)


def _plain_layout(app):
    """base.html with its page block put in place by `{% block %}`, as Jinja's own layout."""
    source = app.jinja_env.loader.get_source(app.jinja_env, "base.html")[0]
    assert source.count("{{ self.content() }}") == 1
    return app.jinja_env.from_string(
        source.replace("{{ self.content() }}", "{% block content %}{% endblock %}")
    )


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("role", [None, Role.FAMILY, Role.THERAPIST])
def test_a_page_is_written_as_the_plain_layout_writes_it(app, language, role):
    with app.test_request_context("/", headers={"Accept-Language": language}):
        if role is not None:
            login_user(create_user(role, locale=language))
        flash("Saved <b>& kept</b>", "success")
        ours = render_template_string(PAGE, layout="base.html", who="<Maria & Luis>")
        plain = render_template_string(PAGE, layout=_plain_layout(app), who="<Maria & Luis>")
    assert ours == plain
    assert "<p>&lt;Maria &amp; Luis&gt;</p><i>0</i><i>1</i><i>2</i>" in ours
    assert "Saved &lt;b&gt;&amp; kept&lt;/b&gt;" in ours
    assert ("Sign out" in ours or "Cerrar sesión" in ours) is (role is not None)
