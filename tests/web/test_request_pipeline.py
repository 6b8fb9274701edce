"""What every signed-in request goes through, done with fewer steps (issue 19), each step
deciding what Flask-Login's own decides."""

import pytest

from familylink.extensions import login_manager
from tests.web.test_query_counts import FAMILY, _add_linked_patients


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
