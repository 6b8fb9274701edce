import traceback
from datetime import UTC, datetime
from unittest import mock

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from familylink import ConfigurationError, create_app
from familylink.extensions import db
from familylink.models import AccountToken


def test_healthz_reports_a_reachable_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_is_unreachable(app, client):
    with mock.patch.object(db.session, "execute", side_effect=OperationalError("x", {}, None)):
        response = client.get("/healthz")
    assert response.status_code == 503


@pytest.mark.parametrize("path", ["/", "/login", "/register", "/reset", "/help/crisis"])
def test_public_pages_have_landmarks_and_the_crisis_link(client, path):
    page = client.get(path).get_data(as_text=True)
    assert '<main id="main"' in page and 'href="#main"' in page
    assert "/help/crisis" in page


def test_unknown_pages_answer_a_friendly_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "We can&#39;t find that page" in response.get_data(as_text=True)


def test_an_unexpected_error_shows_a_calm_page(app, client):
    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    response = client.get("/boom")
    assert response.status_code == 500
    assert "Nothing was changed" in response.get_data(as_text=True)


SECRET = "https://familylink.test/reset/live-secret-part"


def _a_refused_row(kind: str):
    """A row the database refuses, carrying SECRET (as an email's link would): a missing
    value (PostgreSQL's detail shows the whole row), or a duplicate of the secret in a unique
    column (its detail shows the key's value)."""
    now = datetime.now(UTC)
    if kind == "missing":
        return [AccountToken(token_hash="h", purpose="reset", email=SECRET, expires_at=None)]
    key = SECRET.rsplit("/", 1)[1]
    return [
        AccountToken(token_hash=key, purpose="reset", email="a@example.org", expires_at=now),
        AccountToken(token_hash=key, purpose="reset", email="b@example.org", expires_at=now),
    ]


@pytest.mark.parametrize("kind", ["missing", "duplicate"])
def test_a_database_error_is_logged_without_the_values_it_refused(app, client, caplog, kind):
    @app.route("/refused")
    def refused():
        for row in _a_refused_row(kind):
            db.session.add(row)
            db.session.flush()

    response = client.get("/refused")
    assert response.status_code == 500
    assert "Nothing was changed" in response.get_data(as_text=True)
    (logged,) = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert isinstance(logged.exc_info[1], IntegrityError)  # the error itself, traceback and all
    assert "account_tokens" in caplog.text  # still says what was refused
    assert "live-secret-part" not in caplog.text
    assert "live-secret-part" not in "".join(traceback.format_exception(logged.exc_info[1]))


def test_a_value_postgresql_could_not_read_is_not_logged(app, client, caplog):
    """A data error quotes the value in its message itself, not in a detail."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite reads any text as a number without an error")

    @app.route("/unreadable")
    def unreadable():
        db.session.execute(text("SELECT CAST(:value AS integer)"), {"value": SECRET})

    assert client.get("/unreadable").status_code == 500
    (logged,) = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert isinstance(logged.exc_info[1], DataError)
    assert "invalid input syntax for type integer" in caplog.text  # still says what failed
    assert "live-secret-part" not in caplog.text
    assert "live-secret-part" not in "".join(traceback.format_exception(logged.exc_info[1]))


def test_security_headers_are_on_every_response(client):
    headers = client.get("/login").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_forms_refuse_a_missing_csrf_token(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    response = app.test_client().post("/login", data={"email": "a@example.org", "password": "x"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)


def test_the_app_refuses_to_start_without_a_secret_key_in_production(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_the_dev_mailbox_does_not_exist_in_production(make_app):
    app = make_app(DEV_MAILBOX=False)
    assert app.test_client().get("/dev/mailbox").status_code == 404


def test_the_dev_mailbox_shows_delivered_mail(app, client):
    client.post(
        "/register",
        data={
            "name": "Maria",
            "email": "maria@example.org",
            "password": "lantern orchard pebble",
            "timezone": "America/New_York",
        },
    )
    page = client.get("/dev/mailbox").get_data(as_text=True)
    assert "Confirm your email address" in page


def test_the_dev_mailbox_is_off_unless_debugging(monkeypatch):
    from familylink.config import from_environment

    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.delenv("DEV_MAILBOX", raising=False)
    assert from_environment()["DEV_MAILBOX"] is False
    assert from_environment()["SESSION_COOKIE_SECURE"] is True
