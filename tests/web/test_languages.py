"""The language switch, Accept-Language, `<html lang>` and the pseudo-locale check itself."""

import re

from sqlalchemy import select

from familylink import i18n
from familylink.extensions import db
from familylink.models import AuditEvent, Role, User
from tests import factories
from tests.conftest import untranslated_words


def html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.get_data(as_text=True)).group(1)


def test_anonymous_pages_follow_accept_language(client):
    assert html_lang(client.get("/login", headers={"Accept-Language": "es-MX,es;q=0.9"})) == "es"
    assert html_lang(client.get("/login", headers={"Accept-Language": "fr, en;q=0.5"})) == "en"
    assert html_lang(client.get("/login", headers={"Accept-Language": "de"})) == "en"


def test_switch_keeps_the_choice_for_an_anonymous_visitor(client):
    response = client.post(
        "/language", data={"language": "es"}, headers={"Referer": "http://familylink.test/login"}
    )
    assert response.status_code == 302
    assert response.location.endswith("/login")
    page = client.get("/login", headers={"Accept-Language": "en"})
    assert html_lang(page) == "es"
    assert 'value="en"' in page.get_data(as_text=True)  # the switch now offers English


def test_switch_refuses_an_unknown_language_and_changes_nothing(client):
    client.post("/language", data={"language": "es"})
    response = client.post("/language", data={"language": "xx"}, follow_redirects=True)
    # Said in the visitor's language, Spanish since the first choice.
    assert "Elija uno de los idiomas de la lista." in response.get_data(as_text=True)
    assert html_lang(client.get("/login")) == "es"


def test_switch_never_redirects_off_the_site(client):
    response = client.post(
        "/language", data={"language": "es"}, headers={"Referer": "https://evil.example/x"}
    )
    assert response.location == "/"


def test_a_signed_in_person_keeps_the_language_on_the_account(app, client, auth):
    with app.app_context():
        factories.create_user(Role.FAMILY, name="Rosa Diaz", email="rosa@example.org")
        db.session.commit()
    auth.login("rosa@example.org")
    client.post("/language", data={"language": "es"})
    client.post("/language", data={"language": "es"})  # no change, no second row
    with app.app_context():
        rosa = db.session.scalar(select(User).where(User.email == "rosa@example.org"))
        assert rosa.locale == "es"
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "account.language_changed")
        ).all()
        assert [(e.actor_id, e.detail) for e in events] == [(rosa.id, {"from": "en", "to": "es"})]
    # The account's language wins over the browser's.
    assert (
        html_lang(client.get("/", headers={"Accept-Language": "en"}, follow_redirects=True)) == "es"
    )


def test_normalise_accepts_only_known_languages():
    assert i18n.normalise("es_MX") == "es"
    assert i18n.normalise("ES") == "es"
    assert i18n.normalise("fr") == "en"
    assert i18n.normalise(None) == "en"
    assert i18n.normalise(i18n.PSEUDO_LOCALE) == "en"


def test_untranslated_words_finds_english_that_skipped_gettext():
    page = (
        "<html><body><p>⟦Your sessions⟧</p><p>Rosa Diaz</p>"
        "<p>⟦Hello %(name)s, ⟦see⟧⟧ Monday, Dec 1, 10:00 AM EST</p>"
        '<button aria-label="Close">⟦x⟧</button><script>var notShown = 1;</script>'
        "<p>Forgot to wrap this</p></body></html>"
    )
    assert untranslated_words(page, "Rosa Diaz") == ["Close", "Forgot", "to", "wrap", "this"]


def test_pseudo_locale_marks_every_gettext_string(client, pseudo_locale):
    text = client.get("/login").get_data(as_text=True)
    assert f"{i18n.PSEUDO_OPEN}Skip to main content{i18n.PSEUDO_CLOSE}" in text
