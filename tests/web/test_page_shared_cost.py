"""What every page pays for (issue 15): the layout's menu and footer words rendered once per
language and role, form attributes written without string.Formatter, the signed-in person
and the language looked up once per time shown, never once per part of it. Each of these
keeps what a person sees, and whose it is, as it was."""

import re
from datetime import timedelta

import flask_login.utils
import itsdangerous
import pytest
from flask import g, render_template_string
from flask import request as flask_request
from flask_login import login_user
from markupsafe import Markup

from familylink import forms
from familylink.models import Role
from familylink.services import timefmt
from tests.factories import create_user
from tests.moments import NOON
from tests.web.test_query_counts import FAMILY, THERAPIST, _add_linked_patients

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


def _renders(app, name: str) -> tuple[list, object]:
    template = app.jinja_env.get_template(name)
    rendered, original = [], template.root_render_func

    def counted(context):
        rendered.append(1)
        yield from original(context)

    template.root_render_func = counted
    return rendered, lambda: setattr(template, "root_render_func", original)


def test_the_menu_and_footer_are_rendered_once_per_language_and_role(app, client, auth):
    _add_linked_patients(app, 1)
    auth.login(FAMILY)
    spanish = {"Accept-Language": "es"}
    client.get("/family/")
    client.get("/help/crisis", headers=spanish)  # signed in, the person's setting wins
    menu, menu_back = _renders(app, "_nav.html")
    footer, footer_back = _renders(app, "_footer.html")
    try:
        first = client.get("/family/").get_data(as_text=True)
        second = client.get("/learn/").get_data(as_text=True)
    finally:
        menu_back()
        footer_back()
    assert menu == [] and footer == []
    for page in (first, second):
        assert 'href="/booking/"' in page and "Crisis contacts" in page


def test_each_person_gets_their_own_menu_and_their_own_forms_token(app, auth):
    _add_linked_patients(app, 1)
    family, therapist = app.test_client(), app.test_client()
    pages = {}
    for client, email in ((family, FAMILY), (therapist, THERAPIST)):
        auth._client = client
        auth.login(email)
        home = "/family/" if client is family else "/therapist/"
        client.get(home)  # the first page of each keeps its parts
        pages[email] = client.get(home).get_data(as_text=True)
    family_tokens = set(TOKEN.findall(pages[FAMILY]))
    therapist_tokens = set(TOKEN.findall(pages[THERAPIST]))
    # Sign-out and the language switch: one token per page, each session its own.
    assert len(family_tokens) == 1 and len(therapist_tokens) == 1
    assert family_tokens != therapist_tokens
    assert 'href="/booking/"' in pages[FAMILY] and 'href="/booking/"' not in pages[THERAPIST]
    assert 'href="/therapist/calendar"' in pages[THERAPIST]
    assert 'href="/therapist/calendar"' not in pages[FAMILY]


def test_the_footer_follows_each_requests_language(client):
    english = client.get("/login").get_data(as_text=True)
    spanish = client.get("/login", headers={"Accept-Language": "es"}).get_data(as_text=True)
    again = client.get("/login").get_data(as_text=True)
    assert 'href="https://988lifeline.org/chat"' in english
    assert "AYUDA" in spanish and 'href="https://988lifeline.org/chat"' not in spanish
    footer = english[english.index('class="site-footer"') :]
    assert (
        footer.split("csrf_token")[0]
        == again[again.index('class="site-footer"') :].split("csrf_token")[0]
    )
    assert '<html lang="en">' in english
    assert '<html lang="es">' in spanish and 'value="en" lang="en"' in spanish


def _lookups_to_show(app, monkeypatch, days: int) -> int:
    calls = []
    original = flask_login.utils._get_user

    def counted():
        calls.append(1)
        return original()

    with app.test_request_context():
        login_user(create_user(Role.FAMILY, timezone="America/Chicago"))
        monkeypatch.setattr(flask_login.utils, "_get_user", counted)
        shown = render_template_string(
            "{% for t in times %}{{ t|local }}|{{ t|local_clock }}|{% endfor %}",
            times=[NOON + timedelta(days=n) for n in range(days)],
        )
        monkeypatch.setattr(flask_login.utils, "_get_user", original)
    assert "CST" in shown
    return len(calls)


def test_a_time_shown_reads_the_person_from_the_pages_context(app, monkeypatch):
    """Every time on a page is shown in the viewer's zone (the `local` filters), read from
    the person Flask-Login put in the page's context, not looked up through its proxy (three
    look-ups a time once, then one)."""
    five = _lookups_to_show(app, monkeypatch, 5)
    ten = _lookups_to_show(app, monkeypatch, 10)
    assert ten == five  # five more days, two times each, no more look-ups


def test_a_time_is_shown_in_the_same_zone_with_or_without_the_person_in_the_context(app):
    """A template rendered without the page's context (an imported macro's, a bare
    `from_string`) asks Flask-Login's proxy: the same person, the same zone."""
    moment = NOON + timedelta(days=1)
    source = "{{ t|local }}|{{ t|local_clock }}|{{ t|local_date }}|{{ t|local_end }}"
    for zone, expected in (("America/Chicago", "CST"), (None, "EST")):
        with app.test_request_context():
            if zone:
                login_user(create_user(Role.FAMILY, timezone=zone))
            with_context = render_template_string(source, t=moment)
            without = app.jinja_env.from_string(source).render(t=moment)
        assert with_context == without
        assert expected in with_context


def test_a_time_is_written_with_one_look_up_of_the_language(app, monkeypatch):
    calls = []
    original = timefmt.spoken_locale

    def counted():
        calls.append(1)
        return original()

    with app.test_request_context(headers={"Accept-Language": "es"}):
        monkeypatch.setattr(timefmt, "spoken_locale", counted)
        written = timefmt.format_local(NOON + timedelta(days=1), "America/Chicago")
    assert calls == [1]
    assert "hora de Chicago" in written


def test_the_language_of_a_time_is_read_without_flask_babels_proxies(app, monkeypatch):
    """Flask-Babel's `get_locale` and `gettext` walk the context proxies again on every call
    (the booking page wrote about 40 times, the family home said 18 words for 9 times); once
    it has chosen the request's Locale and catalogue, a time reads them from Flask-Babel's
    namespace, and still follows `force_locale` and its end."""
    import flask_babel

    from familylink import i18n

    chosen = []
    original = flask_babel.get_locale

    def counted():
        chosen.append(1)
        return original()

    domains = []
    original_domain = flask_babel.get_domain

    def counted_domain():
        domains.append(1)
        return original_domain()

    monkeypatch.setattr(i18n, "get_locale", counted)
    monkeypatch.setattr(flask_babel, "get_domain", counted_domain)
    tomorrow = NOON + timedelta(days=1)
    with app.test_request_context(headers={"Accept-Language": "es"}):
        written = [timefmt.format_local(tomorrow, "America/Chicago") for _ in range(5)]
        # Its words ("%(time)s %(zone)s") from the catalogue the request remembers, without
        # Flask-Babel's search for the domain (two per time written).
        assert len(domains) <= 1
        with flask_babel.force_locale("en"):
            english = timefmt.format_local(tomorrow, "America/Chicago")
        again = timefmt.format_local(tomorrow, "America/Chicago")
    assert len(chosen) == 1  # the request's first: Flask-Babel chooses the language
    assert "hora de Chicago" in written[0] and set(written) == {written[0]}
    assert "CST" in english and again == written[0]


def test_a_patient_sees_the_patients_menu(app, client, auth):
    with app.app_context():
        create_user(Role.PATIENT, email="patient@example.org")
        from familylink.extensions import db

        db.session.commit()
    auth.login("patient@example.org")
    page = client.get("/patient/").get_data(as_text=True)
    assert 'href="/patient/consents"' in page and 'href="/booking/"' not in page


def test_wtforms_own_words_are_read_from_disk_once_per_language(app, monkeypatch):
    """A field with no label and a validator's default message are WTForms' own words: in
    the request's language, from a catalogue read once per process, not once per request."""
    import wtforms
    from babel import support
    from flask_wtf import FlaskForm
    from wtforms.validators import InputRequired

    from familylink import i18n

    class Bare(FlaskForm):
        class Meta:
            csrf = False

        unlabelled_field = wtforms.StringField(validators=[InputRequired()])

    loads = []
    real_load = support.Translations.load

    def counted_load(*args, **kwargs):
        if kwargs.get("domain") == "wtforms":
            loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(support.Translations, "load", counted_load)
    i18n.forget_wtforms_catalogues()  # as a new process starts
    said = {}
    for language in ["es", "en", "es", "en", "es"]:
        app.config["FORCE_LOCALE"] = language
        with app.test_request_context("/", method="POST", data={}):
            app.preprocess_request()
            form = Bare()
            form.validate()
            said[language] = (form.unlabelled_field.label.text, form.unlabelled_field.errors)
    assert len(loads) == 2
    assert said["en"] == ("Unlabelled Field", ["This field is required."])
    assert said["es"][1] == ["Este campo es obligatorio."]


def test_flask_asks_whether_a_hook_is_a_coroutine_once_per_function(app, client, monkeypatch):
    """Flask asked `inspect` of every request hook, view and handler on every request (19
    times a page); each function's answer is remembered, a coroutine function's is not."""
    import flask.app

    asked = []
    original = flask.app.iscoroutinefunction

    def counted(func):
        asked.append(func)
        return original(func)

    monkeypatch.setattr(flask.app, "iscoroutinefunction", counted)
    client.get("/login")
    first = len(asked)
    assert client.get("/login").status_code == 200
    assert first > 5 and len(asked) == first

    async def a_coroutine_function():
        return "done"

    wrapped = []
    monkeypatch.setattr(app, "async_to_sync", lambda func: wrapped.append(func) or print)
    app.ensure_sync(a_coroutine_function)
    app.ensure_sync(a_coroutine_function)
    assert wrapped == [a_coroutine_function, a_coroutine_function]


def test_the_session_cookies_signer_is_made_once_per_secret_key(app, client, auth, monkeypatch):
    """Flask made the session cookie's signer again on every request; it is kept per key,
    and a cookie signed with a key that is no longer the app's is still refused."""
    import flask.sessions

    made = []
    original = flask.sessions.URLSafeTimedSerializer

    def counted(*args, **kwargs):
        made.append(args)
        return original(*args, **kwargs)

    _add_linked_patients(app, 1)
    auth.login(FAMILY)
    client.get("/family/")
    monkeypatch.setattr(flask.sessions, "URLSafeTimedSerializer", counted)
    for _ in range(3):
        assert client.get("/family/").status_code == 200
    assert made == []
    monkeypatch.setitem(app.config, "SECRET_KEY", "another-secret-key-of-enough-length")
    response = client.get("/family/")
    assert response.status_code == 302 and "/login" in response.location
    assert len(made) == 1


def test_a_select_is_drawn_as_wtforms_draws_it_without_asking_inspect(app, monkeypatch):
    """WTForms asked `inspect.signature` of its option writer on every select drawn; ours
    writes the same HTML (selected, multiple, required, escaped labels) without asking."""
    import inspect

    import wtforms
    from flask_wtf import FlaskForm
    from wtforms.validators import InputRequired

    class Choices(FlaskForm):
        class Meta:
            csrf = False

        one = forms.SelectField(
            "One", choices={"a": "A & <b>", "b": "B"}, validators=[InputRequired()]
        )
        many = forms.SelectMultipleField("Many", choices={"x": "X", "y": 'Y "quoted"'})

    asked = []
    original = inspect.signature
    with app.test_request_context("/", method="POST", data={"one": "b", "many": ["x", "y"]}):
        form = Choices()
        monkeypatch.setattr(
            inspect, "signature", lambda *a, **k: asked.append(a) or original(*a, **k)
        )
        ours = (form.one(), form.many(), form.one(class_="wide"))
        monkeypatch.setattr(inspect, "signature", original)
        theirs = (
            wtforms.widgets.Select()(form.one),
            wtforms.widgets.Select(multiple=True)(form.many),
            wtforms.widgets.Select()(form.one, class_="wide"),
        )
    assert asked == []
    assert ours == theirs
    assert 'selected value="b"' in ours[0] and "multiple" in ours[1] and "required" in ours[0]


def test_csrf_tokens_keep_flask_wtfs_format_and_a_new_key_refuses_the_old(make_app):
    from flask import session
    from flask_wtf.csrf import generate_csrf, validate_csrf
    from wtforms.validators import ValidationError

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.test_request_context():
        token = generate_csrf()
        # Flask-WTF's token: the session's value, signed with its salt by the secret key.
        plain = itsdangerous.URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token")
        assert plain.loads(token) == session["csrf_token"]
        validate_csrf(token)
        app.secret_key = "a-rotated-key-no-token-was-signed-with"
        with pytest.raises(ValidationError, match="invalid"):
            validate_csrf(token)
        del g.csrf_token
        validate_csrf(generate_csrf())


def _hook(app, name: str):
    return next(f for f in app.before_request_funcs[None] if f.__name__ == name)


def test_the_staff_two_step_rule_looks_the_person_up_once(app, monkeypatch):
    from familylink.auth.guard import MFA_ENROLMENT_ENDPOINTS

    calls = []
    original = flask_login.utils._get_user

    def counted():
        calls.append(1)
        return original()

    rule = _hook(app, "load_session_and_require_staff_mfa")
    with app.test_request_context("/therapist/"):
        login_user(create_user(Role.THERAPIST, mfa=False))
        monkeypatch.setattr(flask_login.utils, "_get_user", counted)
        refused = rule()
        monkeypatch.setattr(flask_login.utils, "_get_user", original)
    assert calls == [1]
    assert refused.status_code == 302 and refused.location.endswith("/account/mfa")
    with app.test_request_context("/account/mfa"):
        assert "account.mfa_setup" in MFA_ENROLMENT_ENDPOINTS
        login_user(create_user(Role.THERAPIST, mfa=False))
        assert rule() is None  # the enrolment itself stays open


def test_a_request_without_a_body_parses_no_form_and_a_sent_form_is_still_checked(app):
    from werkzeug.exceptions import BadRequest

    from familylink.auth.guard import refuse_nul_bytes

    with app.test_request_context("/family/?week=2026-11-16"):
        refuse_nul_bytes()
        assert "form" not in vars(flask_request._get_current_object())
    # A GET may still carry a form body: it is read and a NUL in it refused.
    with (
        app.test_request_context("/family/", method="GET", data={"a": "b\x00"}),
        pytest.raises(BadRequest),
    ):
        refuse_nul_bytes()
    with app.test_request_context("/family/?a=b%00"), pytest.raises(BadRequest):
        refuse_nul_bytes()


def test_a_live_untouched_session_asks_the_orm_session_nothing(app, client, auth, monkeypatch):
    """Within its activity minute a live session changes nothing: the sign-in hook commits
    nothing and need not ask what is pending."""
    from sqlalchemy.orm import Session

    from familylink.models import UserSession

    _add_linked_patients(app, 1)
    auth.login(FAMILY)
    client.get("/family/")
    asked = []
    original = Session.dirty

    monkeypatch.setattr(Session, "dirty", property(lambda s: asked.append(1) or original.fget(s)))
    page = client.get("/family/")
    assert page.status_code == 200 and asked == []
    with app.app_context():
        # Past its idle limit, the same hook ends the session and commits its ending.
        from familylink.extensions import db

        for record in db.session.query(UserSession):
            record.last_seen_at = NOON - timedelta(hours=1)
        db.session.commit()
    assert client.get("/family/").status_code == 302
    with app.app_context():
        from familylink.extensions import db

        assert {r.end_reason for r in db.session.query(UserSession)} == {"idle"}


def test_the_layouts_links_follow_the_path_the_app_is_served_under(app, client, auth):
    _add_linked_patients(app, 1)
    auth.login(FAMILY)
    page = client.get("/family/").get_data(as_text=True)
    assert 'href="/static/style.css"' in page and 'class="brand" href="/"' in page
    assert 'action="/logout"' in page and 'action="/language"' in page
    under = client.get("/family/", environ_overrides={"SCRIPT_NAME": "/clinic"})
    said = under.get_data(as_text=True)
    assert 'href="/clinic/static/style.css"' in said and 'action="/clinic/logout"' in said
    assert 'class="brand" href="/clinic/"' in said and 'action="/clinic/language"' in said
