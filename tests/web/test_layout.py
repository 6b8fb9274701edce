"""The layout every page is written in (templates/base.html), written with fewer steps (issue
19): each page must come out exactly as the plain layout writes it."""

import re

import pytest
from flask import flash, render_template, render_template_string
from flask_login import current_user, login_user
from flask_wtf.csrf import generate_csrf

from familylink import web
from familylink.models import Role
from tests.factories import create_user
from tests.web.test_query_counts import FAMILY, _add_linked_patients

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


def _session_of_its_own(app, role, language):
    """A request of a person of `role` (None: signed out) with a session of their own."""
    context = app.test_request_context("/", headers={"Accept-Language": language})
    context.push()
    if role is not None:
        login_user(create_user(role, locale=language))
    return context


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("role", [None, Role.FAMILY, Role.PATIENT, Role.THERAPIST, Role.ADMIN])
@pytest.mark.parametrize("part", ["_layout_header.html", "_layout_footer.html"])
def test_a_kept_part_is_what_rendering_it_writes_with_each_sessions_token(
    app, part, role, language
):
    """The header and the footer are kept per language and role with a stand-in for the
    CSRF token (web.rendered_once): each request gets what rendering the part for itself
    writes, with its own token, from the first use of the part and from the kept one."""
    written = []
    for _ in range(2):  # the second person finds the part kept by the first
        context = _session_of_its_own(app, role, language)
        try:
            key = current_user.is_authenticated and current_user.role
            kept = [web.rendered_once(part, key) for _ in range(2)]
            plain = render_template(part)
            token = generate_csrf()
        finally:
            context.pop()
        assert kept == [plain, plain]
        assert web._TOKEN_STAND_IN not in plain
        assert plain.count(f'name="csrf_token" value="{token}"') == (
            1 if part == "_layout_footer.html" or role is not None else 0
        )
        written.append((plain, token))
    (first, first_token), (second, second_token) = written
    assert first_token != second_token
    assert first.replace(first_token, second_token) == second


def test_the_sign_out_form_on_a_page_signs_its_own_person_out(app, client, auth):
    """The token put into the kept header is the session's own: it is accepted."""
    _add_linked_patients(app, 1)
    auth.login(FAMILY)
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/logout", data={"csrf_token": "not-the-token"}).status_code == 400
    client.get("/family/")  # the header is kept
    page = client.get("/family/").get_data(as_text=True)
    tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', page))
    assert len(tokens) == 1
    answer = client.post("/logout", data={"csrf_token": tokens.pop()})
    assert answer.status_code in (302, 303)
    assert client.get("/family/").status_code == 302  # signed out


MACROS = {
    "macros.html": "{% macro hello(name) %}{{ word }}, {{ name }}{% endmacro %}",
    "page.html": "{% from 'macros.html' import hello %}{{ hello(who) }}|{{ word }}",
    "imports.html": "{% import 'macros.html' as m %}{{ m.hello(who) }}",
}


def test_a_templates_globals_are_jinjas_chain_with_its_names_as_a_set(app):
    """Jinja's template globals (its own over the environment's, the environment's seen as
    they change), with the names as a set: what `{% import %}` compares, in one step."""
    from collections import ChainMap

    template = app.jinja_env.from_string("{{ word }}", globals={"word": "Hi"})
    plain = ChainMap(*template.globals.maps)
    names = template.globals.keys()
    assert names == set(plain.keys()) and "word" in names
    assert dict(template.globals) == dict(plain)
    assert "word" not in app.jinja_env.globals
    app.jinja_env.globals["later"] = 1
    try:
        later = template.globals.keys()
        assert "later" in later and template.globals["later"] == 1
    finally:
        del app.jinja_env.globals["later"]


@pytest.mark.parametrize("page", ["page.html", "imports.html"])
@pytest.mark.parametrize("word", [None, "Hola"])
def test_an_imported_macro_sees_what_it_sees_with_jinjas_own_globals(app, page, word):
    from flask.templating import Environment
    from jinja2 import DictLoader

    from familylink import Templates

    written = []
    for kind in (Templates, Environment):
        env = kind(app, loader=DictLoader(MACROS))
        globals_ = {"word": word} if word else None
        template = env.get_template(page, globals=globals_)
        written.append([template.render(who="Ana") for _ in range(2)])
    assert written[0] == written[1]
    # A global of the importing template only is passed to the macros it imports.
    assert written[0][0].startswith(f"{word or ''}, Ana")
