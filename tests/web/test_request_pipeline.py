"""What every signed-in request goes through, done with fewer steps (issue 19), each step
deciding what Flask-Login's own decides."""

import re

import pytest

from familylink.extensions import login_manager
from tests.web.test_query_counts import FAMILY, _add_linked_patients

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _counted_identifiers(monkeypatch) -> list:
    made = []
    original = login_manager._session_identifier_generator

    def counted():
        made.append(1)
        return original()

    monkeypatch.setattr(login_manager, "_session_identifier_generator", counted)
    return made


def test_with_session_protection_off_no_identifier_is_made(app, client, auth, monkeypatch):
    """FamilyLink has Flask-Login's session protection off: its check made the client's
    identifier (a hash of address and User-Agent) on every request only to read that."""
    _add_linked_patients(app, 1)
    auth.login(FAMILY)
    made = _counted_identifiers(monkeypatch)
    for _ in range(2):
        assert client.get("/family/").status_code == 200
    assert made == []


@pytest.mark.parametrize("mode", ["basic", "strong"])
def test_session_protection_when_set_is_flask_logins_own(app, client, auth, monkeypatch, mode):
    _add_linked_patients(app, 1)
    auth.login(FAMILY)
    made = _counted_identifiers(monkeypatch)
    monkeypatch.setitem(app.config, "SESSION_PROTECTION", mode)
    assert client.get("/family/").status_code == 200  # the browser it signed in with
    # Another User-Agent is another identifier to Flask-Login.
    answer = client.get("/family/", headers={"User-Agent": "another browser"})
    assert made == [1, 1]
    # On a permanent session (FamilyLink's) both modes only mark it not fresh.
    assert answer.status_code == 200
    with client.session_transaction() as session:
        assert session["_fresh"] is False


def test_a_get_is_not_looked_up_for_csrf_exemptions_and_a_post_still_is(make_app, monkeypatch):
    """Flask-WTF looked up each request's view among its exemptions before reading that a
    GET is never checked; a POST without its token is still refused."""
    from familylink.extensions import csrf

    app = make_app(WTF_CSRF_ENABLED=True)
    looked_up = []
    original = csrf._is_exempt
    monkeypatch.setattr(csrf, "_is_exempt", lambda: looked_up.append(1) or original())
    client = app.test_client()
    assert client.get("/login").status_code == 200
    assert looked_up == []
    refused = client.post("/login", data={"email": "a@example.org", "password": "x"})
    assert refused.status_code == 400 and looked_up == [1]
    assert "This form has expired" in refused.get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    answer = client.post("/login", data={"csrf_token": token, "email": "a@example.org"})
    assert "This form has expired" not in answer.get_data(as_text=True)
