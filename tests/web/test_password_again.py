"""Every form that asks a signed-in person for their password again goes through one check
(`accounts.confirm_password`): a wrong password changes nothing, counts toward the sign-in
lockout, and the forms are rate-limited per person (issue 17)."""

import re

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, RecoveryCode, Role, User
from tests.conftest import AuthActions
from tests.factories import PASSWORD, saved_user

WRONG = "not my password at all"
EMAIL = "maria@example.org"

# (path, the password field's name, the rest of the form): every password re-entry form.
FORMS = {
    "email change": ("/account/email", "password", {"new_email": "maria.new@example.org"}),
    "password change": (
        "/account/password",
        "current_password",
        {"new_password": "a brand new long passphrase"},
    ),
    "new recovery codes": ("/account/mfa/recovery-codes", "codes-password", {}),
    "two-step sign-in off": ("/account/mfa/off", "off-password", {}),
}


def _post(client, purpose, password):
    path, field, rest = FORMS[purpose]
    return client.post(path, data={**rest, field: password})


def _signed_in(app):
    """Maria, a family member with two-step sign-in on, signed in on a fresh client."""
    saved_user(app, Role.FAMILY, EMAIL, mfa=True)
    client = app.test_client()
    AuthActions(client, app).login(EMAIL)
    return client


def _state(app):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == EMAIL))
        codes = db.session.scalars(
            select(RecoveryCode.code_hash).where(RecoveryCode.used_at.is_(None))
        ).all()
        return user.email, user.password_hash, user.totp_secret, sorted(codes)


def test_every_form_asking_for_the_current_password_is_in_the_list(app):
    """Walk every page a signed-in person can open; each form with a current-password
    field must be one of FORMS, so a new one cannot skip the check unnoticed."""
    client = _signed_in(app)
    found = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments or rule.endpoint == "static":
            continue
        page = client.get(rule.rule).get_data(as_text=True)
        for form in re.findall(r"<form\b.*?</form>", page, flags=re.S):
            if 'autocomplete="current-password"' in form:
                action = re.search(r'action="([^"]*)"', form.split(">", 1)[0])
                found.add(action.group(1) if action else rule.rule)
    assert found == {path for path, _, _ in FORMS.values()}


@pytest.mark.parametrize("purpose", FORMS)
def test_a_wrong_password_changes_nothing_and_is_audited(app, purpose):
    client = _signed_in(app)
    before = _state(app)
    response = _post(client, purpose, WRONG)
    assert response.status_code == 400
    assert "That is not your current password." in response.get_data(as_text=True)
    assert _state(app) == before
    with app.app_context():
        details = db.session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "auth.password_recheck_failed")
        ).all()
    assert details == [{"purpose": purpose, "reason": "wrong password"}]


@pytest.mark.parametrize("purpose", ["new recovery codes", "two-step sign-in off"])
def test_two_step_changes_need_the_password(app, purpose):
    client = _signed_in(app)
    before = _state(app)
    assert _post(client, purpose, "").status_code == 400
    assert _state(app) == before
    response = _post(client, purpose, PASSWORD)
    assert response.status_code in (200, 302)
    after = _state(app)
    if purpose == "two-step sign-in off":
        assert after[2] is None
    else:
        assert after[3] != before[3] and len(after[3]) == 10


@pytest.mark.parametrize("purpose", FORMS)
def test_wrong_passwords_lock_the_account_like_failed_sign_ins(app, purpose):
    client = _signed_in(app)
    before = _state(app)
    for _ in range(5):
        assert _post(client, purpose, WRONG).status_code == 400
    # Locked out: even the right password is refused, here and at sign-in.
    assert _post(client, purpose, PASSWORD).status_code == 400
    assert _state(app) == before
    other = app.test_client()
    response = other.post("/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 400


@pytest.mark.parametrize("purpose", FORMS)
def test_every_password_form_is_rate_limited_per_person(app, make_app, purpose):
    limited = make_app(RATELIMIT_ENABLED=True, REAUTH_LIMIT="3 per 15 minutes")
    client = _signed_in(limited)
    for _ in range(3):
        assert _post(client, purpose, WRONG).status_code == 400
    response = _post(client, purpose, WRONG)
    assert response.status_code == 429
    assert "Please wait a moment" in response.get_data(as_text=True)
