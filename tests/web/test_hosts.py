"""Links in emails come from the settings alone, never from a request's Host header, and
requests for other hosts are refused (issue 17, items 1 and 6)."""

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from familylink import ConfigurationError, create_app
from familylink.extensions import db
from familylink.models import OutboxEmail, Role
from familylink.services import mail
from tests.conftest import AuthActions
from tests.factories import create_user

HOSTILE = "attacker.example"
ROOT = Path(__file__).resolve().parent.parent.parent
LINK = re.compile(r"https?://[^\s\"'<>]+")


def _hostile(client):
    """Every request of this client names the attacker's host, as a raw HTTP client can."""
    app = client.application
    inner = app.wsgi_app

    def with_hostile_host(environ, start_response):
        environ["HTTP_HOST"] = HOSTILE
        return inner(environ, start_response)

    app.wsgi_app = with_hostile_host
    return client


def _emails(app) -> list[OutboxEmail]:
    with app.app_context():
        return list(db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)))


def _links(email: OutboxEmail) -> list[str]:
    return LINK.findall(email.text_body) + LINK.findall(email.html_body)


def test_a_request_for_another_host_is_refused(app, client):
    with app.app_context():
        create_user(email="lee@example.org")
        db.session.commit()
    response = _hostile(client).post("/reset", data={"email": "lee@example.org"})
    assert response.status_code == 400
    assert _emails(app) == []


def test_a_refused_host_is_told_why_in_the_browsers_language(client):
    response = _hostile(client).get("/", headers={"Accept-Language": "es"})
    assert response.status_code == 400
    assert "Este servidor no responde" in response.get_data(as_text=True)


def test_links_in_emails_use_the_configured_host_whatever_the_request_says(make_app):
    # A second name the server answers to: links must still use SERVER_NAME, not it.
    app = make_app(TRUSTED_HOSTS=["familylink.test", HOSTILE])
    client = _hostile(app.test_client())
    auth = AuthActions(client, app)
    with app.app_context():
        create_user(email="lee@example.org")
        create_user(Role.ADMIN, email="admin@example.org")
        create_user(Role.THERAPIST, email="grace@example.org")
        db.session.commit()
    client.post("/reset", data={"email": "lee@example.org"})  # password_reset
    client.post(
        "/register",
        data={
            "name": "Maria Rivera",
            "email": "maria@example.org",
            "password": "lantern orchard pebble",
            "timezone": "America/Chicago",
        },
    )  # verify_email
    auth.login("admin@example.org")
    client.post("/admin/therapists", data={"name": "Dr. Ravi Patel", "email": "p@example.org"})
    auth.logout()
    auth.login("grace@example.org")
    client.post(
        "/therapist/patients",
        data={
            "name": "Jordan Rivera",
            "email": "jordan@example.org",
            "episode_start": "2026-11-02",
        },
    )
    kinds = {email.kind for email in _emails(app)}
    assert {"password_reset", "verify_email", "staff_invitation", "patient_invitation"} <= kinds
    for email in _emails(app):
        links = _links(email)
        assert links, email.kind
        assert all(link.startswith("http://familylink.test/") for link in links), links


# Every endpoint the services link to from an email (the test below checks the list is whole).
EMAILED_ENDPOINTS = {
    "auth.verify_email": {"token": "t"},
    "auth.reset_password": {"token": "t"},
    "auth.accept_invitation": {"token": "t"},
    "auth.confirm_email_change": {"token": "t"},
    "auth.login": {},
    "booking.claim": {"entry_id": 1},
    "booking.feed_ics": {"token": "t"},
    "family.accept_invitation": {"token": "t"},
    "family.home": {},
    "learn.library": {},
    "patient.consents": {},
    "patient.shared": {},
    "rooms.join": {"token": "t"},
    "therapist.family_contacts": {"patient_id": 1},
}


def test_every_emailed_link_is_built_from_the_settings_even_inside_a_hostile_request(app):
    with app.test_request_context("/", base_url=f"https://{HOSTILE}"):
        for endpoint, values in EMAILED_ENDPOINTS.items():
            link = mail.external_url(endpoint, **values)
            assert link.startswith("http://familylink.test/"), link


def test_the_list_of_emailed_endpoints_is_whole():
    used = set()
    for path in (ROOT / "familylink").rglob("*.py"):
        used |= set(re.findall(r"external_url\(\s*\"([\w.]+)\"", path.read_text()))
    assert used <= set(EMAILED_ENDPOINTS), used - set(EMAILED_ENDPOINTS)


def test_no_link_is_built_from_the_request():
    for path in (ROOT / "familylink").rglob("*.py"):
        text = path.read_text()
        assert re.search(r"\b_external=True", text) is None, path
        assert "request.host_url" not in text and "request.url_root" not in text, path
    for path in (ROOT / "templates" / "email").iterdir():
        assert "url_for(" not in path.read_text(), path


def test_in_debug_with_no_server_name_links_point_at_the_dev_server(make_app):
    app = make_app(TESTING=False, DEBUG=True, SERVER_NAME=None)
    assert app.config["TRUSTED_HOSTS"] is None  # `make run` answers whatever it is called
    with app.test_request_context("/", base_url=f"http://{HOSTILE}"):
        link = mail.external_url("auth.reset_password", token="t")
    assert link == "http://127.0.0.1:5000/reset/t"


def test_https_links_when_the_scheme_is_set(make_app):
    app = make_app(PREFERRED_URL_SCHEME="https", SERVER_NAME="family.example-clinic.org")
    with app.app_context():
        link = mail.external_url("auth.login")
    assert link == "https://family.example-clinic.org/login"


def _production(monkeypatch, **environment):
    for name in ("FLASK_DEBUG", "SERVER_NAME", "TRUSTED_HOSTS", "DEV_MAILBOX", "MAIL_SERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "a-long-enough-secret-for-this-test")
    monkeypatch.setenv("SECRETS_KEYS", "Yl1Q9oWm2sQ3u0pW8b0m9JmZ2c1x5v6n7b8m9a0s1d4=")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_the_app_refuses_to_start_without_server_name_in_production(monkeypatch):
    with pytest.raises(ConfigurationError, match="SERVER_NAME is not set"):
        _production(monkeypatch)


def test_in_production_only_the_configured_host_is_trusted(monkeypatch):
    app = _production(monkeypatch, SERVER_NAME="family.example-clinic.org")
    assert app.config["TRUSTED_HOSTS"] == ["family.example-clinic.org"]
    app = _production(
        monkeypatch, SERVER_NAME="family.example-clinic.org", TRUSTED_HOSTS="a.example, b.example"
    )
    assert app.config["TRUSTED_HOSTS"] == ["a.example", "b.example"]


def test_the_dev_mailbox_refuses_to_start_outside_debug(monkeypatch):
    with pytest.raises(ConfigurationError, match="DEV_MAILBOX is on without MAIL_SERVER"):
        _production(monkeypatch, SERVER_NAME="family.example-clinic.org", DEV_MAILBOX="1")


def test_the_dev_mailbox_is_fine_with_a_mail_server_or_in_debug(monkeypatch):
    app = _production(
        monkeypatch,
        SERVER_NAME="family.example-clinic.org",
        DEV_MAILBOX="1",
        MAIL_SERVER="smtp.example-clinic.org",
    )
    assert "dev" not in app.blueprints
    app = _production(monkeypatch, DEV_MAILBOX="1", FLASK_DEBUG="1")
    assert "dev" in app.blueprints
