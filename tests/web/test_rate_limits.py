"""Anti-automation: rate limits per address and per IP, and the soft lockout."""

import uuid

import pytest
import redis
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, Role
from tests.conftest import AuthActions
from tests.factories import PASSWORD, create_user, saved_user
from tests.moments import NOON
from tests.web.test_sessions import Clock


def _limited_app(app, make_app, **settings):
    # `app` is requested only so its teardown empties the tables afterwards.
    return make_app(RATELIMIT_ENABLED=True, **settings)


WRONG = "not the password"


def _login(client, email, password=WRONG, ip="10.0.0.1"):
    return client.post(
        "/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_sign_in_is_limited_per_address_whatever_the_ip(app, make_app):
    limited = _limited_app(app, make_app, LOGIN_LIMIT_PER_ADDRESS="3 per 15 minutes")
    client = limited.test_client()
    for n in range(3):
        assert _login(client, "maria@example.org", ip=f"10.0.0.{n + 1}").status_code == 400
    response = _login(client, "MARIA@example.org", ip="10.0.0.9")
    assert response.status_code == 429
    assert "Please wait a moment" in response.get_data(as_text=True)
    assert _login(client, "someone.else@example.org", ip="10.0.0.9").status_code == 400


def test_sign_in_is_limited_per_ip_whatever_the_address(app, make_app):
    limited = _limited_app(app, make_app, LOGIN_LIMIT_PER_IP="4 per 15 minutes")
    client = limited.test_client()
    for n in range(4):
        assert _login(client, f"person{n}@example.org").status_code == 400
    assert _login(client, "person9@example.org").status_code == 429
    assert _login(client, "person9@example.org", ip="10.0.0.2").status_code == 400


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/register", {"name": "A", "email": "a@example.org", "password": "x"}),
        ("/reset", {"email": "a@example.org"}),
        ("/reset/not-a-token", {"password": "x"}),
        ("/invitation/not-a-token", {"password": "x"}),
        ("/family/join/not-a-token", {"password": "x"}),
    ],
)
def test_sign_up_reset_and_invitations_are_limited(app, make_app, path, data):
    client = _limited_app(app, make_app, FORM_LIMIT="2 per hour").test_client()
    for _ in range(2):
        assert client.post(path, data=data).status_code != 429
    assert client.post(path, data=data).status_code == 429


def test_booking_forms_are_limited_with_the_friendly_page(app, make_app):
    limited = _limited_app(app, make_app, BOOKING_LIMIT="2 per hour")
    with limited.app_context():
        email = create_user(Role.FAMILY).email
        db.session.commit()
    client = limited.test_client()
    AuthActions(client, limited).login(email)
    for _ in range(2):
        assert client.post("/booking/new?patient=999").status_code == 404
    response = client.post("/booking/new?patient=999")
    assert response.status_code == 429
    assert "Please wait a moment" in response.get_data(as_text=True)
    assert client.get("/booking/").status_code == 200  # pages stay open


def _locked_out(make_app):
    """Maria's account after five wrong passwords, on an app whose clock the test moves."""
    clock = Clock(NOON)
    timed = make_app(NOW_OVERRIDE=clock)
    saved_user(timed)
    client = timed.test_client()
    for _ in range(5):
        _login(client, "maria@example.org")
    return clock, timed, client


def test_repeated_failures_lock_the_account_for_a_while(app, make_app):
    clock, _timed, client = _locked_out(make_app)
    locked = _login(client, "maria@example.org", PASSWORD)
    assert locked.status_code == 400
    assert "don&#39;t match an account" in locked.get_data(as_text=True)
    clock.advance(minutes=16)
    assert _login(client, "maria@example.org", PASSWORD).status_code == 302


def test_a_locked_account_answers_like_an_unknown_address(app, make_app):
    saved_user(app)
    client = app.test_client()
    for _ in range(5):
        _login(client, "maria@example.org")
    locked = _login(client, "maria@example.org", PASSWORD)
    unknown = _login(client, "nobody@example.org", PASSWORD)
    assert locked.status_code == unknown.status_code == 400

    def error_text(response):
        page = response.get_data(as_text=True)
        return page[page.index('id="password-error"') :].split("</p>")[0]

    assert error_text(locked) == error_text(unknown)
    with app.app_context():
        reasons = db.session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "auth.sign_in_failed")
        ).all()
    assert {"reason": "locked out"} in reasons


def test_wrong_codes_count_towards_the_lockout(app, client):
    with app.app_context():
        create_user(Role.THERAPIST, email="lee@example.org")
        db.session.commit()
    for _ in range(5):
        _login(client, "lee@example.org", PASSWORD)
        client.post("/login/code", data={"code": "000000"})
    assert _login(client, "lee@example.org", PASSWORD).status_code == 400


@pytest.fixture
def redis_url():
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return url


def test_limits_can_be_kept_in_redis_and_shared_by_app_processes(app, make_app, redis_url):
    settings = {
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": f"familylink-test-{uuid.uuid4().hex}",
        "LOGIN_LIMIT_PER_IP": "3 per 15 minutes",
    }
    first = _limited_app(app, make_app, **settings).test_client()
    for n in range(3):
        assert _login(first, f"p{n}@example.org").status_code == 400
    second = _limited_app(app, make_app, **settings).test_client()
    assert _login(second, "p9@example.org").status_code == 429


def test_a_password_reset_lifts_the_lockout_and_later_failures_count_again(app, make_app):
    """The owner who proves their address with a reset link signs in with the new password
    at once (whoever guessed before them gains nothing: they lack the new password)."""
    from familylink.models import TokenPurpose, User
    from familylink.services import accounts, tokens

    clock, timed, client = _locked_out(make_app)
    clock.advance(minutes=2)
    new_password = "quiet harbour lantern"
    with timed.app_context():
        maria = db.session.scalar(select(User).where(User.email == "maria@example.org"))
        raw = tokens.issue_token(TokenPurpose.RESET, email=maria.email, user=maria, now=clock())
        accounts.reset_password(raw, new_password, now=clock())
        db.session.commit()
    clock.advance(minutes=1)
    assert _login(client, "maria@example.org", new_password).status_code == 302
    other = timed.test_client()
    for _ in range(5):
        _login(other, "maria@example.org")
    assert _login(other, "maria@example.org", new_password).status_code == 400
