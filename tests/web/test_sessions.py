"""Server-side sessions: the cookie carries a random id, the database decides."""

from datetime import timedelta

import pytest
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from familylink import config
from familylink.extensions import db
from familylink.models import AuditEvent, Role, User, UserSession
from familylink.services import account_admin, accounts, sessions, tokens
from tests.conftest import AuthActions
from tests.factories import create_user, saved_user
from tests.moments import NOON


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return Clock(NOON)


@pytest.fixture
def timed_app(app, make_app, clock):
    return make_app(NOW_OVERRIDE=clock)


def _signed_in(client) -> bool:
    response = client.get("/family/")
    return response.status_code == 200


def _session_rows(app, user_id):
    with app.app_context():
        return db.session.scalars(
            select(UserSession).where(UserSession.user_id == user_id).order_by(UserSession.id)
        ).all()


def test_a_replayed_cookie_after_sign_out_is_refused(app, client, auth):
    saved_user(app)
    auth.login("maria@example.org")
    assert _signed_in(client)
    saved = client.get_cookie("session", domain="familylink.test").value
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("session", saved, domain="familylink.test")
    response = thief.get("/family/")
    assert response.status_code == 302 and "/login" in response.location


def test_the_cookie_holds_only_a_random_id_and_the_database_only_its_hash(app, client, auth):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    raw = client.get_cookie("session", domain="familylink.test").value
    data = SecureCookieSessionInterface().get_signing_serializer(app).loads(raw)
    rows = _session_rows(app, user_id)
    assert len(rows) == 1
    assert data["sid"] not in {rows[0].id_hash, str(rows[0].id)}
    assert rows[0].id_hash == tokens.digest(data["sid"])


def test_a_forged_cookie_with_only_a_user_id_is_not_signed_in(app, client):
    user_id = saved_user(app)
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    forged = serializer.dumps({"_user_id": str(user_id), "_fresh": True})
    client.set_cookie("session", forged, domain="familylink.test")
    assert not _signed_in(client)


def test_each_sign_in_gets_a_new_session_id(app, client, auth):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    first = client.get_cookie("session", domain="familylink.test").value
    auth.logout()
    auth.login("maria@example.org")
    assert client.get_cookie("session", domain="familylink.test").value != first
    rows = _session_rows(app, user_id)
    assert [r.end_reason for r in rows] == ["signed_out", None]


def test_idle_sessions_end_after_thirty_minutes(timed_app, clock):
    saved_user(timed_app)
    client = timed_app.test_client()
    AuthActions(client, timed_app).login("maria@example.org")
    clock.advance(minutes=29)
    assert _signed_in(client)
    clock.advance(minutes=29)
    assert _signed_in(client)  # each request moved the idle clock on
    clock.advance(minutes=30)
    assert not _signed_in(client)


def test_background_requests_do_not_keep_a_session_alive(timed_app, clock):
    saved_user(timed_app)
    client = timed_app.test_client()
    AuthActions(client, timed_app).login("maria@example.org")
    clock.advance(minutes=20)
    assert client.get("/family/", headers={"X-Background": "1"}).status_code == 200
    clock.advance(minutes=11)
    assert not _signed_in(client)


def test_sessions_end_after_twelve_hours_however_active(timed_app, clock):
    user_id = saved_user(timed_app)
    client = timed_app.test_client()
    AuthActions(client, timed_app).login("maria@example.org")
    for _ in range(35):
        clock.advance(minutes=20)
        assert _signed_in(client)
    clock.advance(minutes=20)
    assert not _signed_in(client)
    assert _session_rows(timed_app, user_id)[0].end_reason == "expired"


def test_a_timeout_is_audited(timed_app, clock):
    user_id = saved_user(timed_app)
    client = timed_app.test_client()
    AuthActions(client, timed_app).login("maria@example.org")
    clock.advance(minutes=31)
    client.get("/family/")
    with timed_app.app_context():
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "auth.session_ended")
        )
        assert event.actor_id == user_id and event.detail == {"reason": "idle"}


def test_a_password_reset_ends_every_session(app, client, auth, utc_now):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    with app.test_request_context():
        accounts.request_password_reset("maria@example.org", now=utc_now)
        db.session.commit()
    from tests.web.test_auth_routes import _token

    token = _token(app, "/reset/")
    other = app.test_client()
    response = other.post(f"/reset/{token}", data={"password": "lantern orchard pebble"})
    assert response.status_code == 302
    assert not _signed_in(client)
    assert _session_rows(app, user_id)[0].end_reason == "password_reset"


def test_disabling_an_account_ends_its_sessions(app, client, auth, now):
    user_id = saved_user(app)
    admin_id = None
    auth.login("maria@example.org")
    with app.app_context():
        admin = create_user(Role.ADMIN)
        admin_id = admin.id
        account_admin.set_account_active(db.session.get(User, user_id), False, actor=admin, now=now)
        db.session.commit()
    assert admin_id is not None
    assert not _signed_in(client)
    assert _session_rows(app, user_id)[0].end_reason == "disabled"


def test_ending_consent_ends_the_family_members_sessions(app, client, auth, now):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    with app.app_context():
        sessions.end_all_sessions(user_id, "consent_ended", now=now)
        db.session.commit()
    assert not _signed_in(client)
    assert _session_rows(app, user_id)[0].end_reason == "consent_ended"


def test_people_see_their_sessions_and_can_end_another(app, client, auth):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    phone = app.test_client()
    AuthActions(phone, app).login("maria@example.org")
    page = client.get("/account/sessions").get_data(as_text=True)
    assert page.count("End this session") == 1 and "Sign out here" in page
    other_id = _session_rows(app, user_id)[1].id
    response = client.post(f"/account/sessions/{other_id}/end")
    assert response.status_code == 302
    assert not _signed_in(phone)
    assert _signed_in(client)


def test_nobody_can_end_someone_elses_session(app, client, auth):
    saved_user(app)
    victim_id = saved_user(app, email="other@example.org")
    victim = app.test_client()
    AuthActions(victim, app).login("other@example.org")
    auth.login("maria@example.org")
    victim_session = _session_rows(app, victim_id)[0].id
    assert client.post(f"/account/sessions/{victim_session}/end").status_code == 404
    assert _signed_in(victim)


def test_session_cookies_are_httponly_lax_and_never_remembered(app, client):
    saved_user(app)
    response = client.post(
        "/login", data={"email": "maria@example.org", "password": "quiet river morning tea"}
    )
    cookies = response.headers.getlist("Set-Cookie")
    assert any(
        c.startswith("session=") and "HttpOnly" in c and "SameSite=Lax" in c for c in cookies
    )
    assert not any(c.startswith("remember_token") for c in cookies)


def test_session_cookies_are_secure_unless_debugging(monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    assert config.from_environment()["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert config.from_environment()["SESSION_COOKIE_SECURE"] is False


def test_the_cookie_lasts_as_long_as_the_absolute_limit(make_app):
    """The cookie is not refreshed on each response, so it must outlive any session the
    server would still accept; it follows the absolute limit when that is changed."""
    app = make_app(SESSION_ABSOLUTE_MINUTES=18 * 60)
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=18)
    assert app.config["SESSION_REFRESH_EACH_REQUEST"] is False


def _open_with(app, cookie):
    with app.test_request_context(headers={"Cookie": f"session={cookie}"}) as context:
        return app.session_interface.open_session(app, context.request)


def test_a_remembered_cookie_gives_each_request_its_own_contents(app):
    """The signature is checked once per process; the contents are read afresh each time, so
    one request's flashes (a list changed in place) never reach another's."""
    serializer = app.session_interface.get_signing_serializer(app)
    cookie = serializer.dumps({"sid": "abc", "_flashes": [["info", "Saved."]]})
    first = _open_with(app, cookie)
    first["_flashes"].append(["info", "Another."])
    second = _open_with(app, cookie)
    assert second["_flashes"] == [["info", "Saved."]]
    assert second is not first


def test_a_remembered_cookie_is_refused_once_older_than_the_session_lifetime(app, monkeypatch):
    serializer = app.session_interface.get_signing_serializer(app)
    cookie = serializer.dumps({"sid": "abc"})
    assert _open_with(app, cookie)["sid"] == "abc"
    lifetime = app.permanent_session_lifetime.total_seconds()
    later = __import__("time").time() + lifetime + 5
    monkeypatch.setattr("time.time", lambda: later)
    assert "sid" not in _open_with(app, cookie)


def test_a_cookie_changed_after_a_good_one_was_seen_is_refused(app):
    serializer = app.session_interface.get_signing_serializer(app)
    cookie = serializer.dumps({"sid": "abc"})
    assert _open_with(app, cookie)["sid"] == "abc"
    payload, stamp, signature = cookie.rsplit(".", 2)
    forged = serializer.dumps({"sid": "xyz"}).rsplit(".", 2)[0] + f".{stamp}.{signature}"
    assert "sid" not in _open_with(app, forged)
