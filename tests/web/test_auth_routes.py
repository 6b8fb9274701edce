"""Sign-up, verification, sign-in, sign-out and reset through the test client."""

import re

import pyotp
import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import OutboxEmail, Role, User
from tests.factories import PASSWORD, create_user

GOOD = {
    "name": "Maria Rivera",
    "email": "maria@example.org",
    "password": "lantern orchard pebble",
    "timezone": "America/Chicago",
}


def _users(app):
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)))


def _last_email(app):
    with app.app_context():
        return db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id.desc())).first()


def _token(app, marker):
    return _last_email(app).text_body.split(marker)[1].split()[0]


def test_sign_up_then_verify_then_sign_in(app, client, auth):
    response = client.post("/register", data=GOOD)
    assert response.status_code == 302 and response.location.endswith("/register/check-email")
    token = _token(app, "/verify/")
    assert client.get(f"/verify/{token}").status_code == 200
    assert client.post(f"/verify/{token}").status_code == 302
    response = auth.login("maria@example.org", "lantern orchard pebble")
    assert response.status_code == 302
    assert client.get("/", follow_redirects=True).request.path == "/family/"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "Enter your name."),
        ("email", "", "Enter your email address."),
        ("email", "maria-at-example", "Enter an email address like name@example.com."),
        ("email", "a" * 250 + "@example.org", "too long"),
        ("password", "short", "at least 12"),
        ("password", "x" * 200, "at most 128"),
        ("timezone", "Nowhere/Special", "Choose one of the options shown."),
    ],
)
def test_bad_sign_up_input_shows_the_message_beside_the_field(app, client, field, value, message):
    data = {**GOOD, field: value}
    response = client.post("/register", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert f'id="{field}-error"' in page
    assert _users(app) == 0


def test_sign_up_answers_the_same_for_a_known_address(app, client):
    with app.app_context():
        create_user(Role.PATIENT, email="maria@example.org")
        db.session.commit()
    known = client.post("/register", data=GOOD)
    assert known.status_code == 302 and known.location.endswith("/register/check-email")
    assert _users(app) == 1


def test_a_reused_verification_link_is_refused_clearly(app, client):
    client.post("/register", data=GOOD)
    token = _token(app, "/verify/")
    client.post(f"/verify/{token}")
    again = client.post(f"/verify/{token}")
    assert again.status_code == 400
    assert "not valid any more" in again.get_data(as_text=True)


def test_a_made_up_token_is_refused_clearly(client):
    response = client.post("/verify/" + "x" * 43)
    assert response.status_code == 400
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_wrong_password_and_unknown_address_read_the_same(app, client, auth):
    with app.app_context():
        create_user(email="lee@example.org")
        db.session.commit()
    wrong = auth.login("lee@example.org", "not the password")
    unknown = auth.login("nobody@example.org", "not the password")
    assert wrong.status_code == unknown.status_code == 400
    assert "don&#39;t match an account" in wrong.get_data(as_text=True)
    # Identical but for the address typed back into the form.
    assert wrong.get_data(as_text=True).replace("lee@", "nobody@") == unknown.get_data(as_text=True)


def test_a_failed_sign_in_is_told_in_the_browsers_language(app, client):
    with app.app_context():
        create_user(email="lee@example.org")
        db.session.commit()
    response = client.post(
        "/login",
        data={"email": "lee@example.org", "password": "not the password"},
        headers={"Accept-Language": "es"},
    )
    assert response.status_code == 400
    assert "no coinciden con ninguna cuenta" in response.get_data(as_text=True)


def test_sign_out_ends_the_session(app, client, auth):
    with app.app_context():
        create_user(email="lee@example.org")
        db.session.commit()
    auth.login("lee@example.org")
    assert client.get("/family/").status_code == 200
    auth.logout()
    assert client.get("/family/").status_code == 302


def test_next_only_follows_local_paths(app, client):
    with app.app_context():
        create_user(email="lee@example.org")
        db.session.commit()
    response = client.post(
        "/login?next=https://evil.example/", data={"email": "lee@example.org", "password": PASSWORD}
    )
    assert response.location == "/"


def test_reset_answers_the_same_for_known_and_unknown_addresses(app, client):
    with app.app_context():
        create_user(email="lee@example.org")
        db.session.commit()
    known = client.post("/reset", data={"email": "lee@example.org"})
    unknown = client.post("/reset", data={"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    # The footer's language switch carries a CSRF token, signed with the second it was made.
    assert _without_csrf(known) == _without_csrf(unknown)


def _without_csrf(response) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', "", response.get_data(as_text=True))


def test_reset_flow_sets_a_new_password(app, client, auth):
    with app.app_context():
        create_user(email="lee@example.org")
        db.session.commit()
    client.post("/reset", data={"email": "lee@example.org"})
    token = _token(app, "/reset/")
    short = client.post(f"/reset/{token}", data={"password": "short"})
    assert short.status_code == 400 and "at least 12" in short.get_data(as_text=True)
    assert (
        client.post(f"/reset/{token}", data={"password": "fresh lantern orchard"}).status_code
        == 302
    )
    assert auth.login("lee@example.org", "fresh lantern orchard").status_code == 302
    assert (
        client.post(f"/reset/{token}", data={"password": "other lantern orchard"}).status_code
        == 400
    )


def test_admin_invites_a_therapist_who_sets_a_password(app, client, auth):
    with app.app_context():
        create_user(Role.ADMIN, email="admin@example.org")
        db.session.commit()
    auth.login("admin@example.org")
    response = client.post(
        "/admin/therapists", data={"name": "Dr. Grace Lee", "email": "lee@example.org"}
    )
    assert response.status_code == 302
    auth.logout()
    token = _token(app, "/invitation/")
    assert (
        client.post(f"/invitation/{token}", data={"password": "lantern orchard pebble"}).status_code
        == 302
    )
    auth.login("lee@example.org", "lantern orchard pebble")
    # A new therapist must set up two-step sign-in before any staff page.
    assert client.get("/", follow_redirects=True).request.path == "/account/mfa"
    with app.app_context():
        secret = db.session.scalar(select(User).where(User.email == "lee@example.org")).totp_secret
    client.post("/account/mfa", data={"code": pyotp.TOTP(secret).now()})
    assert client.get("/", follow_redirects=True).request.path == "/therapist/"


def test_therapist_enrols_a_patient(app, client, auth):
    with app.app_context():
        create_user(Role.THERAPIST, email="lee@example.org")
        db.session.commit()
    auth.login("lee@example.org")
    response = client.post(
        "/therapist/patients",
        data={
            "name": "Jordan Rivera",
            "email": "jordan@example.org",
            "episode_start": "2026-11-02",
        },
    )
    assert response.status_code == 302
    assert "/invitation/" in _last_email(app).text_body


@pytest.mark.parametrize(
    ("episode_start", "said"),
    [
        ("yesterday", "Enter a date between 1900-01-01 and 2100-12-31"),
        ("   ", "Enter the date care started"),
        ("\t", "Enter the date care started"),
        # As a readmission: an episode that has not started could never be ended (a
        # discharge takes a day no later than today and not before the start).
        ("2100-12-31", "Choose a date no later than today."),
    ],
)
def test_enrolment_with_a_bad_date_changes_nothing(app, client, auth, episode_start, said):
    with app.app_context():
        create_user(Role.THERAPIST, email="lee@example.org")
        db.session.commit()
    auth.login("lee@example.org")
    before = _users(app)
    response = client.post(
        "/therapist/patients",
        data={
            "name": "Jordan Rivera",
            "email": "jordan@example.org",
            "episode_start": episode_start,
        },
    )
    assert response.status_code == 400
    assert f'<p class="error" id="episode_start-error">{said}' in response.get_data(as_text=True)
    assert _users(app) == before


@pytest.mark.parametrize(
    ("role", "path"),
    [(Role.FAMILY, "/admin/"), (Role.PATIENT, "/therapist/"), (Role.THERAPIST, "/family/")],
)
def test_other_roles_pages_answer_404(app, client, auth, role, path):
    with app.app_context():
        create_user(role, email="someone@example.org")
        db.session.commit()
    auth.login("someone@example.org")
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    ("role", "home"),
    [
        (Role.FAMILY, "/family/"),
        (Role.PATIENT, "/patient/"),
        (Role.THERAPIST, "/therapist/"),
        (Role.ADMIN, "/admin/"),
    ],
)
def test_each_role_lands_on_its_own_home_with_a_next_step(app, client, auth, role, home):
    with app.app_context():
        create_user(role, email="someone@example.org")
        db.session.commit()
    auth.login("someone@example.org")
    response = client.get("/", follow_redirects=True)
    assert response.request.path == home
    assert response.status_code == 200
