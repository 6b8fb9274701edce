"""The message catalogue is looked up once per request and language, and still reads right."""

import flask_babel
from flask import render_template_string
from flask_babel import force_locale, gettext

from familylink.extensions import db
from familylink.models import Role, User
from tests import factories


def _count_catalogue_lookups(monkeypatch) -> list:
    """Calls of Flask-Babel's own lookup (context, locale, its cache), however reached."""
    calls = []
    original = flask_babel.Domain.get_translations

    def counted(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(flask_babel.Domain, "get_translations", counted)
    return calls


def test_a_page_looks_its_catalogue_up_once(app, client, auth, reading_world, monkeypatch):
    """The module page asks for about 40 strings in its templates and views; each used to
    look the catalogue up again."""
    ids = reading_world()
    slug = next(iter(ids["modules"]))
    auth.login("maria@example.org")
    client.get(f"/learn/modules/{slug}")
    lookups = _count_catalogue_lookups(monkeypatch)
    response = client.get(f"/learn/modules/{slug}")
    assert response.status_code == 200
    assert len(lookups) == 1


def test_the_anonymous_sign_in_page_looks_its_catalogue_up_once(client, monkeypatch):
    client.get("/login")
    lookups = _count_catalogue_lookups(monkeypatch)
    assert client.get("/login").status_code == 200
    assert len(lookups) == 1


def test_each_request_speaks_its_own_language(client, reading_world):
    """One catalogue per request: the next request, in another language, is not served the
    first one's (nor the other way round)."""
    reading_world()
    spanish = {"Accept-Language": "es"}
    for headers, words in (({}, "Sign in"), (spanish, "Iniciar sesión"), ({}, "Sign in")):
        page = client.get("/login", headers=headers).get_data(as_text=True)
        assert words in page


def test_forced_locale_inside_a_request_reads_as_before(app):
    """Consent forms and calendar files are written in another language inside a request
    (`force_locale`); Python and Jinja gettext follow it, then return to the request's."""
    template = "{{ _('Sign in') }}|{{ _('%(city)s time', city='<b>') }}"
    with app.test_request_context("/login", headers={"Accept-Language": "es"}):
        spanish = (gettext("Sign in"), render_template_string(template))
        with force_locale("en"):
            english = (gettext("Sign in"), render_template_string(template))
        again = (gettext("Sign in"), render_template_string(template))
    assert spanish == ("Iniciar sesión", "Iniciar sesión|hora de &lt;b&gt;")
    assert english == ("Sign in", "Sign in|&lt;b&gt; time")
    assert again == spanish


def test_a_language_changed_mid_request_is_spoken_at_once(app):
    """`flask_babel.refresh()` after a person changes their language (the account page)
    drops the remembered catalogue with the locale."""
    with app.app_context():
        rosa = factories.create_user(Role.FAMILY, email="rosa@example.org")
        db.session.commit()
        rosa_id = rosa.id
    with app.test_request_context("/account"):
        from flask_login import login_user

        login_user(db.session.get(User, rosa_id))
        assert gettext("Sign in") == "Sign in"
        db.session.get(User, rosa_id).locale = "es"
        flask_babel.refresh()
        assert gettext("Sign in") == "Iniciar sesión"
        assert render_template_string("{{ _('Sign in') }}") == "Iniciar sesión"


# --- A template's gettext (issue 19) ------------------------------------------------------

TEMPLATE_WORDS = (
    "{{ _('%(city)s time', city=place) }}|{{ _('Sign in') }}|{{ _('100%% sure') }}|"
    "{{ ngettext('%(num)s seat', '%(num)s seats', 2) }}|"
    "{% trans %}Sign in{% endtrans %}|{% trans place=place %}In {{ place }}{% endtrans %}"
)


def test_a_templates_gettext_escapes_its_variables_and_speaks_the_requests_language(app):
    """`_()` says what Jinja's newstyle gettext says: the translation is markup, each
    variable is escaped into it, "%%" reads "%"; outside autoescape nothing is escaped."""
    place = "<b>Tom & Jerry's</b>"
    with app.test_request_context("/login", headers={"Accept-Language": "es"}):
        spanish = render_template_string(TEMPLATE_WORDS, place=place)
        plain = render_template_string(
            "{% autoescape false %}{{ _('%(city)s time', city=place) }}{% endautoescape %}",
            place=place,
        )
    escaped = "&lt;b&gt;Tom &amp; Jerry&#39;s&lt;/b&gt;"
    assert spanish == (
        f"hora de {escaped}|Iniciar sesión|100% sure|2 seats|Iniciar sesión|In {escaped}"
    )
    assert plain == f"hora de {place}"


def test_a_templates_gettext_is_one_call_of_the_template(app, monkeypatch):
    """Jinja's own `_` looked `gettext` up and called it through `Context.call`, which
    called the catalogue through `Context.call` again: three dispatches per string. Now
    the template's own call is the only one."""
    import jinja2.runtime

    calls = []
    original = jinja2.runtime.Context.call

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    with app.test_request_context("/login", headers={"Accept-Language": "es"}):
        template = app.jinja_env.from_string(
            "{% for n in numbers %}{{ _('Sign in') }}{{ _('%(city)s time', city=n) }}"
            "{{ ngettext('%(num)s seat', '%(num)s seats', n) }}{% endfor %}"
        )
        monkeypatch.setattr(jinja2.runtime.Context, "call", counted)
        said = template.render(numbers=range(10))
    assert said.count("Iniciar sesión") == 10 and "hora de 9" in said
    assert len(calls) == 30  # Jinja's callables: 80


def test_a_page_finds_its_catalogue_once_however_many_words_it_says(app, monkeypatch):
    """Each word of a page used to find the remembered catalogue again (the proxies to
    Flask-Babel's namespace, its locale and domain compared): now once per render."""
    from familylink import i18n

    found = []
    original = i18n.remembered_catalogue
    monkeypatch.setattr(
        i18n, "remembered_catalogue", lambda lookup: found.append(1) or original(lookup)
    )
    words = "{{ _('Sign in') }}" * 5 + "{{ ngettext('%(num)s seat', '%(num)s seats', 2) }}"
    with app.test_request_context("/login", headers={"Accept-Language": "es"}):
        render_template_string(words)  # the request's first look-up finds it in Babel
        found.clear()
        page = render_template_string(words)
    assert page.startswith("Iniciar sesión" * 5)
    assert len(found) == 1


def test_our_lazy_gettext_says_and_shows_what_flask_babels_does(app):
    """`i18n.lazy_gettext` (the reading forms' labels and hints) reads the remembered
    catalogue: the same words as Flask-Babel's, with variables, in each language,
    `force_locale` followed, and shown as the same markup."""
    from markupsafe import escape

    from familylink import i18n

    said = [
        ("Your reflection (private)", {}),
        ("Use at most %(count)s characters.", {"count": 5000}),
        ("Share my reflection with", {}),
    ]

    def both(string, variables):
        ours = i18n.lazy_gettext(string, **variables)
        theirs = flask_babel.lazy_gettext(string, **variables)
        return (str(ours), escape(ours), len(ours)), (str(theirs), escape(theirs), len(theirs))

    with app.test_request_context("/login", headers={"Accept-Language": "es"}):
        for string, variables in said:
            ours, theirs = both(string, variables)
            assert ours == theirs and ours[0] != string
            with force_locale("en"):
                ours, theirs = both(string, variables)
                assert ours == theirs and ours[0] == string % variables
