"""Security headers, cache rules, request size and the ?next= rule."""

import pytest

from familylink.extensions import db
from familylink.models import Role
from tests.factories import PASSWORD, create_user

CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


@pytest.mark.parametrize("path", ["/", "/login", "/register", "/help/crisis", "/no/such/page"])
def test_every_response_carries_the_security_headers(client, path):
    headers = client.get(path).headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize(
    "path", ["/verify/abc", "/reset/abc", "/invitation/abc", "/email-change/abc"]
)
def test_token_pages_send_no_referrer(client, path):
    assert client.get(path).headers["Referrer-Policy"] == "no-referrer"


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://familylink.test")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_signed_in_pages_are_never_cached(app, client, auth):
    with app.app_context():
        create_user(Role.FAMILY, email="maria@example.org")
        db.session.commit()
    assert client.get("/login").headers.get("Cache-Control") != "no-store"
    auth.login("maria@example.org")
    for path in ["/family/", "/account/", "/account/sessions"]:
        assert client.get(path).headers["Cache-Control"] == "no-store"


def test_too_large_requests_are_refused_kindly(client):
    response = client.post("/login", data={"email": "a" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert "That was too much to send" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", "evil"],
)
def test_sign_in_never_follows_a_foreign_next(app, client, target):
    with app.app_context():
        create_user(Role.FAMILY, email="maria@example.org")
        db.session.commit()
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": "maria@example.org", "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.location in ("/", "http://familylink.test/")


def test_sign_in_follows_a_local_next(app, client):
    with app.app_context():
        create_user(Role.FAMILY, email="maria@example.org")
        db.session.commit()
    response = client.post(
        "/login?next=/account/sessions", data={"email": "maria@example.org", "password": PASSWORD}
    )
    assert response.location.endswith("/account/sessions")


def test_staff_next_survives_the_code_step_but_stays_local(app, client):
    with app.app_context():
        create_user(Role.THERAPIST, email="lee@example.org")
        db.session.commit()
    response = client.post(
        "/login?next=//evil.example/", data={"email": "lee@example.org", "password": PASSWORD}
    )
    assert "evil" not in response.location


def test_the_overview_charts_need_nothing_the_csp_refuses(admin_client):
    """The charts are inline SVG (allowed: markup, not a source); pygal's inline script and
    style, which `script-src 'self'` and `default-src 'self'` would block, are taken out."""
    response = admin_client.get("/overview/")
    body = response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"] == CSP
    assert "<svg" in body
    assert "<script" not in body and "<style" not in body and " style=" not in body


def test_security_headers_are_added_in_one_pass_over_the_response(client, monkeypatch):
    """Werkzeug's `setdefault` searched the headers again, and raised and caught a KeyError,
    for each of the three headers missing from every response; each is said once still."""
    from werkzeug.datastructures import Headers

    searched = []
    original = Headers.setdefault

    def counted(self, key, default):
        searched.append(key)
        return original(self, key, default)

    monkeypatch.setattr(Headers, "setdefault", counted)
    response = client.get("/login", base_url="https://familylink.test")
    assert searched == []
    names = [name.lower() for name, _value in response.headers.items()]
    for name in ("content-security-policy", "x-content-type-options", "referrer-policy"):
        assert names.count(name) == 1
    assert names.count("strict-transport-security") == 1
    assert response.headers["Content-Security-Policy"] == CSP
