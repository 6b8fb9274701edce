"""Sign-in, account, admin, overview, the frame, the crisis help and the error pages: every
visible string through gettext (pseudo-locale), and in Spanish for a Spanish speaker."""

import re

import pytest
from sqlalchemy import select

from familylink import i18n
from familylink.extensions import db
from familylink.models import OutboxEmail, Role, User
from familylink.services.program import get_program
from familylink.services.timefmt import timezone_choices
from tests import factories
from tests.factories import saved_user
from tests.moments import NOON

ES = {"Accept-Language": "es-MX,es;q=0.9"}
# The language switch names each language in its own words: data, not English.
LANGUAGE_NAMES = tuple(i18n.LANGUAGES.values())


def html_lang(page: str) -> str:
    return re.search(r'<html lang="([^"]+)"', page).group(1)


def _session_type_form_words(app) -> list[str]:
    """SessionTypeForm (therapist/forms.py) belongs to another area: its words are data here."""
    from familylink.therapist.forms import SessionTypeForm

    with app.test_request_context():
        words = []
        for field in SessionTypeForm():
            words += [str(field.label.text), str(field.description or "")]
            words += [str(choice[1]) for choice in getattr(field, "choices", None) or []]
        return words


def _program_name(app) -> str:
    with app.test_request_context():
        return get_program().name


# --- anonymous pages ---------------------------------------------------------------------


ANONYMOUS = [
    "/",
    "/login",
    "/reset",
    "/register/check-email",
    "/reset/not-a-real-token",
    "/verify/any-token",
    "/email-change/any-token",
    "/help/crisis",
    "/no-such-page",
]


@pytest.mark.parametrize("url", ANONYMOUS)
def test_anonymous_pages_pass_everything_through_gettext(app, client, pseudo_locale, url):
    page = client.get(url).get_data(as_text=True)
    assert pseudo_locale(page, _program_name(app), *LANGUAGE_NAMES) == []


@pytest.mark.parametrize("url", ANONYMOUS)
def test_anonymous_pages_speak_spanish(client, url):
    page = client.get(url, headers=ES).get_data(as_text=True)
    assert html_lang(page) == "es"
    assert "Pase directo al contenido" in page
    assert "Sign in" not in page and "Skip to main content" not in page


def test_the_sign_in_page_in_spanish(client):
    page = client.get("/login", headers=ES).get_data(as_text=True)
    assert "Iniciar sesión" in page and "Correo electrónico" in page
    assert "¿Olvidó su contraseña?" in page


def test_a_wrong_password_is_refused_in_spanish(app, client):
    saved_user(app, email="rosa@example.org")
    page = client.post(
        "/login", data={"email": "rosa@example.org", "password": "wrong"}, headers=ES
    ).get_data(as_text=True)
    assert "Revise los campos marcados abajo." in page or "contraseña" in page


def test_reset_sent_and_the_code_step(app, client, pseudo_locale):
    name = _program_name(app)
    saved_user(app, email="rosa@example.org")
    saved_user(app, Role.THERAPIST, email="tess@example.org")
    sent = client.post("/reset", data={"email": "rosa@example.org"}).get_data(as_text=True)
    assert pseudo_locale(sent, name, *LANGUAGE_NAMES) == []
    client.post("/login", data={"email": "tess@example.org", "password": factories.PASSWORD})
    code = client.get("/login/code").get_data(as_text=True)
    assert pseudo_locale(code, name, *LANGUAGE_NAMES) == []


def test_the_code_step_in_spanish(app, client):
    saved_user(app, Role.THERAPIST, email="tess@example.org")
    client.post(
        "/login", data={"email": "tess@example.org", "password": factories.PASSWORD}, headers=ES
    )
    page = client.get("/login/code", headers=ES).get_data(as_text=True)
    assert html_lang(page) == "es" and "Escriba su código" in page


# --- error pages -------------------------------------------------------------------------


def test_error_pages_in_spanish(client):
    page = client.get("/no-such-page", headers=ES).get_data(as_text=True)
    assert "No encontramos esa página" in page
    page = client.get("/logout", headers=ES).get_data(as_text=True)  # 405
    assert html_lang(page) == "es" and "That didn't work" not in page


def test_a_500_page_in_the_visitors_language(app, client, pseudo_locale):
    def boom():
        raise RuntimeError("boom")

    app.add_url_rule("/boom-for-test", view_func=boom)
    app.config["FORCE_LOCALE"] = None
    page = client.get("/boom-for-test", headers=ES)
    assert page.status_code == 500
    assert "Algo salió mal de nuestro lado" in page.get_data(as_text=True)
    app.config["FORCE_LOCALE"] = i18n.PSEUDO_LOCALE
    page = client.get("/boom-for-test")
    assert pseudo_locale(page.get_data(as_text=True), _program_name(app), *LANGUAGE_NAMES) == []


def test_the_expired_form_page_in_spanish(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    page = app.test_client().post("/login", data={}, headers=ES).get_data(as_text=True)
    assert "Este formulario venció" in page and html_lang(page) == "es"


def test_the_wait_a_moment_page_in_spanish(make_app):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_LIMIT_PER_IP="1 per minute")
    client = app.test_client()
    data = {"email": "nobody@example.org", "password": "x"}
    client.post("/login", data=data, headers=ES)
    page = client.post("/login", data=data, headers=ES)
    assert page.status_code == 429
    assert "Espere un momento" in page.get_data(as_text=True)


# --- the crisis help ---------------------------------------------------------------------


def test_the_crisis_page_in_spanish_gives_the_spanish_lines(client):
    page = client.get("/help/crisis", headers=ES).get_data(as_text=True)
    assert html_lang(page) == "es"
    assert "marque 2" in page and "AYUDA" in page and 'href="sms:988"' in page
    assert 'href="tel:+18006624357"' in page and "gratuita, confidencial" in page
    assert 'href="tel:911"' in page
    footer = page[page.index('class="site-footer"') :]
    assert "marque 2" in footer and "AYUDA" in footer and 'href="tel:+18006624357"' in footer


def test_english_crisis_page_and_footer_are_unchanged(client):
    page = client.get("/help/crisis").get_data(as_text=True)
    assert "press 2, or text AYUDA to 988" in page
    footer = page[page.index('class="site-footer"') :]
    assert "marque 2" not in footer and "1-800-662-4357" not in footer


# --- signed-in pages ---------------------------------------------------------------------


def _world(app) -> dict:
    with app.app_context():
        admin = factories.create_user(Role.ADMIN, name="Alex Admin", email="admin@example.org")
        family = factories.create_user(Role.FAMILY, name="Rosa Diaz", email="rosa@example.org")
        factories.create_user(Role.DIRECTOR, name="Dee Director", email="dee@example.org")
        factories.create_user(Role.THERAPIST, name="Tess Ther", email="tess@example.org")
        db.session.add(
            OutboxEmail(
                kind="invitation",
                to_address="lost@example.org",
                dedupe_key="lost",
                subject="x",
                text_body="x",
                html_body="x",
                status="failed",
                attempts=3,
                last_error="refused",
                created_at=NOON,
            )
        )
        db.session.commit()
        return {"admin": admin.id, "family": family.id}


DATA = ("Alex Admin", "Rosa Diaz", "Dee Director", "Tess Ther", "admin@example.org")
DATA += ("rosa@example.org", "dee@example.org", "tess@example.org", "lost@example.org")
DATA += ("refused", "invitation", "werkzeug", "127.0.0.1", *LANGUAGE_NAMES)


def _admin_pages(ids) -> list[str]:
    return [
        "/account/",
        "/account/sessions",
        "/account/mfa",
        "/account/password",
        "/account/email",
        "/admin/",
        "/admin/accounts?q=e",
        f"/admin/accounts/{ids['family']}/two-step",
        "/admin/outbox",
        "/admin/settings",
        "/admin/session-types",
        "/overview/",
    ]


def test_admin_and_account_pages_pass_everything_through_gettext(app, client, auth, pseudo_locale):
    ids = _world(app)
    auth.login("admin@example.org")
    zones = [label for _zone, label in timezone_choices()]  # IANA names: data
    data = (*DATA, _program_name(app), *_session_type_form_words(app), *zones)
    for url in _admin_pages(ids):
        response = client.get(url)
        assert response.status_code == 200, url
        assert pseudo_locale(response.get_data(as_text=True), *data) == [], url


def test_the_audit_log_passes_everything_through_gettext(app, client, auth, pseudo_locale):
    _world(app)
    auth.login("admin@example.org")
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "<td>auth.signed_in</td>" in page
    # The rows are the log itself (action codes, roles, outcomes, request ids): data.
    page = re.sub(r"<tbody>.*</tbody>", "", page, flags=re.S)
    assert pseudo_locale(page, *DATA, _program_name(app)) == []


def test_family_account_pages_and_recovery_codes(app, client, auth, pseudo_locale):
    _world(app)
    auth.login("rosa@example.org")
    for url in ("/account/", "/account/mfa", "/account/sessions"):
        page = client.get(url).get_data(as_text=True)
        assert pseudo_locale(page, *DATA, _program_name(app)) == [], url
    auth.logout()
    auth.login("admin@example.org")
    page = client.post("/account/mfa/recovery-codes", data={"codes-password": factories.PASSWORD})
    assert 'class="codes"' in page.get_data(as_text=True)
    # The codes themselves are random letters and digits: data.
    page = re.sub(r'<ul class="codes">.*?</ul>', "", page.get_data(as_text=True), flags=re.S)
    assert pseudo_locale(page, *DATA, _program_name(app)) == []


def test_signed_in_pages_speak_the_persons_language(app, client, auth):
    ids = _world(app)
    with app.app_context():
        db.session.get(User, ids["admin"]).locale = "es"
        db.session.commit()
    auth.login("admin@example.org")
    for url in _admin_pages(ids):
        page = client.get(url, headers={"Accept-Language": "en"}).get_data(as_text=True)
        assert html_lang(page) == "es", url
        assert "Cerrar sesión" in page and "Cuenta" in page, url
    home = client.get("/account/").get_data(as_text=True)
    assert "Inicio de sesión y seguridad" in home
    assert "Configuración del programa" in client.get("/admin/settings").get_data(as_text=True)


# --- the language setting on the account page ---------------------------------------------


def test_the_account_page_sets_the_language(app, client, auth):
    _world(app)
    auth.login("rosa@example.org")
    page = client.get("/account/").get_data(as_text=True)
    assert 'name="language"' in page and "Español" in page
    response = client.post("/account/language", data={"language": "es"})
    assert response.status_code == 302
    with app.app_context():
        assert (
            db.session.scalar(select(User.locale).where(User.email == "rosa@example.org")) == "es"
        )
    page = client.get("/account/", follow_redirects=True).get_data(as_text=True)
    assert html_lang(page) == "es"


def test_the_account_language_refuses_an_unknown_one(app, client, auth):
    _world(app)
    auth.login("rosa@example.org")
    response = client.post("/account/language", data={"language": "xx"})
    assert response.status_code == 400
    assert "Choose one of the languages listed." in response.get_data(as_text=True)
    with app.app_context():
        assert (
            db.session.scalar(select(User.locale).where(User.email == "rosa@example.org")) == "en"
        )


def test_the_sign_in_first_message_in_spanish(client):
    response = client.get("/account/", headers=ES)
    assert response.status_code == 302
    page = client.get(response.location, headers=ES).get_data(as_text=True)
    assert "Inicie sesión para ver esa página." in page
