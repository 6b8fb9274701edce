"""Two-step sign-in: staff must enrol before any staff page; others may opt in."""

import re

import pyotp
import pytest
from sqlalchemy import select, update

from familylink.extensions import db
from familylink.models import AuditEvent, RecoveryCode, Role, TokenPurpose, User
from familylink.services import accounts, mfa, tokens
from familylink.services.errors import ValidationError
from tests.conftest import AuthActions
from tests.factories import PASSWORD, saved_user
from tests.moments import NOON
from tests.web.test_sessions import Clock


def _secret(app, email):
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email)).totp_secret


def _password_step(client, email):
    return client.post("/login", data={"email": email, "password": PASSWORD})


def _enrol(app, client, email):
    client.get("/account/mfa")
    response = client.post("/account/mfa", data={"code": pyotp.TOTP(_secret(app, email)).now()})
    assert response.status_code == 200
    return re.findall(r"<code>([0-9a-f-]+)</code>", response.get_data(as_text=True))


@pytest.mark.parametrize(
    ("role", "page"), [(Role.THERAPIST, "/therapist/"), (Role.ADMIN, "/admin/")]
)
def test_staff_without_two_step_sign_in_are_sent_to_enrol(app, client, role, page):
    saved_user(app, role, "staff@example.org", mfa=False)
    _password_step(client, "staff@example.org")
    response = client.get(page)
    assert response.status_code == 302 and response.location.endswith("/account/mfa")
    setup = client.get("/account/mfa").get_data(as_text=True)
    assert '<img src="/account/mfa/qr.svg"' in setup
    assert "data:" not in setup and "<script" not in setup


def test_the_qr_code_is_an_svg_drawn_by_the_app(app, client):
    saved_user(app, Role.THERAPIST, "lee@example.org", mfa=False)
    _password_step(client, "lee@example.org")
    client.get("/account/mfa")
    response = client.get("/account/mfa/qr.svg")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/svg+xml"
    assert response.get_data(as_text=True).lstrip().startswith("<?xml") or b"<svg" in response.data


def test_enrolment_gives_ten_recovery_codes_stored_only_hashed(app, client):
    user_id = saved_user(app, Role.THERAPIST, "lee@example.org", mfa=False)
    _password_step(client, "lee@example.org")
    codes = _enrol(app, client, "lee@example.org")
    assert len(codes) == 10 and len(set(codes)) == 10
    # 80 bits each: a copy of the database cannot try every code against the hashes.
    assert all(re.fullmatch(r"[0-9a-f]{5}(-[0-9a-f]{5}){3}", code) for code in codes)
    with app.app_context():
        stored = db.session.scalars(
            select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user_id)
        ).all()
    assert len(stored) == 10
    assert not {c.replace("-", "") for c in codes} & set(stored)
    assert client.get("/therapist/").status_code == 200


def test_a_wrong_enrolment_code_is_refused_beside_the_field(app, client):
    saved_user(app, Role.THERAPIST, "lee@example.org", mfa=False)
    _password_step(client, "lee@example.org")
    client.get("/account/mfa")
    response = client.post("/account/mfa", data={"code": "000000"})
    assert response.status_code == 400
    assert 'id="code-error"' in response.get_data(as_text=True)
    assert client.get("/therapist/").status_code == 302


def test_sign_in_asks_for_the_code_after_the_password(app, client):
    saved_user(app, Role.THERAPIST, "lee@example.org")
    response = _password_step(client, "lee@example.org")
    assert response.status_code == 302 and "/login/code" in response.location
    assert client.get("/therapist/").status_code == 302  # not signed in yet
    wrong = client.post("/login/code", data={"code": "123456"})
    assert wrong.status_code == 400
    assert client.get("/therapist/").status_code == 302
    code = pyotp.TOTP(_secret(app, "lee@example.org")).now()
    assert client.post("/login/code", data={"code": code}).status_code == 302
    assert client.get("/therapist/").status_code == 200


def test_a_code_used_meanwhile_by_another_request_is_refused(app):
    """Two requests with one code at once: the second read the account before the first
    recorded the code, and is refused all the same (the record is checked where it is
    written, not on the copy the request read)."""
    saved_user(app, Role.THERAPIST, "lee@example.org")
    with app.app_context():
        lee = db.session.scalar(select(User).where(User.email == "lee@example.org"))
        assert lee.totp_last_step is None  # as this request read it
        totp = pyotp.TOTP(lee.totp_secret)
        with db.engine.begin() as first:  # the other request, done meanwhile
            users = User.__table__
            first.execute(
                update(users).where(users.c.id == lee.id).values(totp_last_step=totp.timecode(NOON))
            )
        with pytest.raises(ValidationError):
            mfa.verify_second_step(lee, totp.at(NOON), now=NOON)


def test_a_code_works_only_once(app, client):
    saved_user(app, Role.THERAPIST, "lee@example.org")
    code = pyotp.TOTP(_secret(app, "lee@example.org")).now()
    _password_step(client, "lee@example.org")
    assert client.post("/login/code", data={"code": code}).status_code == 302
    second = app.test_client()
    _password_step(second, "lee@example.org")
    assert second.post("/login/code", data={"code": code}).status_code == 400


def test_a_recovery_code_signs_in_once(app, client):
    saved_user(app, Role.FAMILY, "maria@example.org")
    client.post("/login", data={"email": "maria@example.org", "password": PASSWORD})
    codes = _enrol(app, client, "maria@example.org")
    client.post("/logout")
    _password_step(client, "maria@example.org")
    assert client.post("/login/code", data={"code": codes[0]}).status_code == 302
    client.post("/logout")
    _password_step(client, "maria@example.org")
    assert client.post("/login/code", data={"code": codes[0]}).status_code == 400


def test_the_sign_in_code_field_lets_a_phone_type_a_recovery_codes_letters(app, client):
    saved_user(app, Role.THERAPIST, "lee@example.org", mfa=False)
    _password_step(client, "lee@example.org")
    enrol = client.get("/account/mfa").get_data(as_text=True)
    assert re.search(r'<input[^>]*inputmode="numeric"[^>]*name="code"', enrol)  # 6 digits
    client.post("/logout")
    saved_user(app, Role.THERAPIST, "grey@example.org")
    _password_step(client, "grey@example.org")
    sign_in = client.get("/login/code").get_data(as_text=True)
    assert re.search(r'<input[^>]*inputmode="text"[^>]*name="code"', sign_in)


def test_a_shorter_recovery_code_made_before_still_signs_in_once(app, client):
    user_id = saved_user(app, Role.THERAPIST, "lee@example.org")
    with app.app_context():
        made_before = RecoveryCode(user_id=user_id, code_hash=tokens.digest("abcde12345"))
        db.session.add(made_before)
        db.session.commit()
    for answer in (302, 400):
        _password_step(client, "lee@example.org")
        assert client.post("/login/code", data={"code": "ABCDE-12345"}).status_code == answer
        client.post("/logout")


def test_family_members_may_turn_two_step_sign_in_off_but_staff_may_not(app, client, auth):
    saved_user(app, Role.FAMILY, "maria@example.org")
    auth.login("maria@example.org")
    _enrol(app, client, "maria@example.org")
    assert client.post("/account/mfa/off", data={"off-password": PASSWORD}).status_code == 302
    with app.app_context():
        assert (
            db.session.scalar(select(User).where(User.email == "maria@example.org")).totp_secret
            is None
        )
    staff = app.test_client()
    saved_user(app, Role.THERAPIST, "lee@example.org")
    AuthActions(staff, app).login("lee@example.org")
    assert staff.post("/account/mfa/off", data={"off-password": PASSWORD}).status_code == 404


def test_the_code_page_without_a_password_step_sends_back_to_sign_in(client):
    response = client.get("/login/code")
    assert response.status_code == 302 and response.location.endswith("/login")


def test_the_password_step_expires_after_five_minutes(app, make_app):
    """A password step left waiting does not let a code in later."""
    clock = Clock(NOON)
    timed = make_app(NOW_OVERRIDE=clock)
    saved_user(timed, Role.THERAPIST, "lee@example.org")
    client = timed.test_client()
    _password_step(client, "lee@example.org")
    clock.advance(minutes=6)
    code = pyotp.TOTP(_secret(timed, "lee@example.org")).at(clock.now)
    response = client.post("/login/code", data={"code": code})
    assert response.status_code == 302 and response.location.endswith("/login")


def test_a_password_step_made_with_a_password_since_replaced_lets_no_code_in(app):
    """The owner resets the password while someone who had the old one waits at the code
    step (with a code, from a phone they also took): that step no longer counts."""
    saved_user(app, Role.THERAPIST, "lee@example.org")
    client = app.test_client()
    _password_step(client, "lee@example.org")
    with app.app_context():
        lee = db.session.scalar(select(User).where(User.email == "lee@example.org"))
        raw = tokens.issue_token(TokenPurpose.RESET, email=lee.email, user=lee, now=NOON)
        accounts.reset_password(raw, "quiet harbour lantern", now=NOON)
        db.session.commit()
    code = pyotp.TOTP(_secret(app, "lee@example.org")).now()
    response = client.post("/login/code", data={"code": code})
    assert response.status_code == 302 and response.location.endswith("/login")
    assert client.get("/therapist/").status_code == 302


def test_the_account_page_counts_the_recovery_codes_left(app, client):
    saved_user(app, Role.FAMILY, "maria@example.org")
    client.post("/login", data={"email": "maria@example.org", "password": PASSWORD})
    codes = _enrol(app, client, "maria@example.org")
    assert "10 recovery codes left" in client.get("/account/").get_data(as_text=True)
    client.post("/logout")
    _password_step(client, "maria@example.org")
    client.post("/login/code", data={"code": codes[0]})
    assert "9 recovery codes left" in client.get("/account/").get_data(as_text=True)


# Digits a phone keyboard or a paste may give that are not 0-9: a code, never a 500.
FOREIGN_DIGITS = ["١٢٣٤٥٦", "²²²²²²", "１２３４５６"]


@pytest.mark.parametrize("code", FOREIGN_DIGITS)
def test_a_sign_in_code_in_other_digits_is_refused_and_counted(app, client, code):
    saved_user(app, Role.THERAPIST, "lee@example.org")
    _password_step(client, "lee@example.org")
    response = client.post("/login/code", data={"code": code})
    assert response.status_code == 400
    assert 'id="code-error"' in response.get_data(as_text=True)
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "mfa.failed" in actions, actions


@pytest.mark.parametrize("code", FOREIGN_DIGITS)
def test_an_enrolment_code_in_other_digits_is_refused_beside_the_field(app, client, code):
    saved_user(app, Role.THERAPIST, "lee@example.org", mfa=False)
    _password_step(client, "lee@example.org")
    client.get("/account/mfa")
    response = client.post("/account/mfa", data={"code": code})
    assert response.status_code == 400
    assert 'id="code-error"' in response.get_data(as_text=True)
