"""One commit per request: a refused service call changes nothing, yet its audit rows stay.

The routes here are added to the test's own app; they stand for any view and service.
"""

import pytest
from flask import url_for
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from familylink.extensions import db
from familylink.models import AuditEvent, User
from familylink.services import audit
from familylink.services.errors import NotFound, ValidationError
from familylink.web import back_on_refusal, run
from tests.factories import saved_user


def _change_then(user_id: int, error: Exception | None):
    """A service: renames the user, flushes, records a refusal and a success row, then raises."""
    user = db.session.get(User, user_id)
    user.name = "Changed"
    db.session.flush()
    audit.record("test.refused", actor=user, outcome="failure")
    audit.record("test.changed", actor=user)
    if error is not None:
        raise error


@pytest.fixture
def routes(app):
    user_id = saved_user(app)

    def service_call(kind: str):
        errors = {"refused": ValidationError("No."), "missing": NotFound(), "ok": None}
        try:
            run(_change_then, user_id, errors[kind])
        except ValidationError as error:
            return error.message, 400
        return "done"

    def broken(after_run: bool):
        if after_run:
            # The savepoint is released before the bug: that must not commit the request.
            run(_change_then, user_id, None)
        else:
            _change_then(user_id, None)
        raise RuntimeError("a bug after the change")

    @back_on_refusal(lambda: url_for("test_fallback"))
    def button():
        _change_then(user_id, ValidationError("Not now."))

    app.add_url_rule("/_t/<kind>", "test_service_call", service_call, methods=["POST"])
    app.add_url_rule("/_t-broken", "test_broken", lambda: broken(False), methods=["POST"])
    app.add_url_rule(
        "/_t-broken-after-run", "test_broken_after_run", lambda: broken(True), methods=["POST"]
    )
    app.add_url_rule("/_t-button", "test_button", button, methods=["POST"])
    app.add_url_rule("/_t-fallback", "test_fallback", lambda: "fallback")
    return user_id


def _state(app, user_id):
    with app.app_context():
        name = db.session.get(User, user_id).name
        actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        return name, list(actions)


def test_a_refusal_changes_nothing_but_its_audit_row_stays(app, client, routes):
    response = client.post("/_t/refused")
    assert response.status_code == 400
    name, actions = _state(app, routes)
    assert name != "Changed" and actions == ["test.refused"]


def test_a_404_from_a_service_changes_nothing_but_its_audit_row_stays(app, client, routes):
    assert client.post("/_t/missing").status_code == 404
    name, actions = _state(app, routes)
    assert name != "Changed" and actions == ["test.refused"]


def test_a_successful_call_is_committed_once_after_the_view(app, client, routes):
    assert client.post("/_t/ok").status_code == 200
    assert _state(app, routes) == ("Changed", ["test.refused", "test.changed"])


@pytest.mark.parametrize("path", ["/_t-broken", "/_t-broken-after-run"])
def test_an_unexpected_error_commits_nothing(app, client, routes, path):
    assert client.post(path).status_code == 500
    name, actions = _state(app, routes)
    assert name != "Changed" and actions == []


def test_a_refused_button_goes_back_to_the_page_it_was_on(app, client, routes):
    came_from = "http://familylink.test/booking/7?x=1"
    response = client.post("/_t-button", headers={"Referer": came_from})
    assert response.status_code == 303
    assert response.location == "/booking/7?x=1"
    name, actions = _state(app, routes)
    assert name != "Changed" and actions == ["test.refused"]
    with client.session_transaction() as session:
        assert session["_flashes"] == [("error", "Not now.")]


@pytest.mark.parametrize(
    "referer", [None, "https://elsewhere.example/booking/7", "http://familylink.test//evil.example"]
)
def test_a_refused_button_without_a_local_referer_goes_to_the_fallback(client, routes, referer):
    headers = {"Referer": referer} if referer else {}
    response = client.post("/_t-button", headers=headers)
    assert response.status_code == 303
    assert response.location == "/_t-fallback"


# --- Issue 19: a call that loses a deadlock or a serialization check ------------------------


def _losing(calls: list, times: int, error_class):
    from psycopg import errors
    from sqlalchemy.exc import OperationalError

    def action():
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("INSERT …", {}, getattr(errors, error_class)("lost"))
        return "done"

    return action


@pytest.mark.parametrize("error_class", ["DeadlockDetected", "SerializationFailure"])
def test_a_call_that_loses_a_deadlock_or_serialization_check_runs_again(app, error_class):
    calls: list = []
    with app.test_request_context("/"):
        assert run(_losing(calls, 2, error_class)) == "done"
    assert len(calls) == 3


def test_a_call_that_keeps_losing_is_refused_with_someone_else_booked(app):
    from familylink.services.errors import Conflict
    from familylink.web import RETRIES

    calls: list = []
    with app.test_request_context("/"), pytest.raises(Conflict) as refused:
        run(_losing(calls, 99, "DeadlockDetected"))
    assert "someone else just booked" in refused.value.message
    assert len(calls) == RETRIES + 1


def test_any_other_database_error_is_not_run_again(app):
    from sqlalchemy.exc import OperationalError

    calls: list = []

    def broken():
        calls.append(1)
        raise OperationalError("SELECT …", {}, RuntimeError("disk I/O error"))

    with app.test_request_context("/"), pytest.raises(OperationalError):
        run(broken)
    assert calls == [1]


def test_a_request_that_never_used_the_database_opens_no_transaction(client):
    """The anonymous sign-in page reads nothing (the program settings are cached): the commit
    after the view has nothing to do, and making a session only to commit nothing was a
    tenth of that page's time."""
    client.get("/login")  # the program settings are read once, then cached
    begun = []

    def count(session, transaction):
        begun.append(transaction)

    event.listen(Session, "after_transaction_create", count)
    try:
        assert client.get("/login").status_code == 200
    finally:
        event.remove(Session, "after_transaction_create", count)
    assert begun == []
