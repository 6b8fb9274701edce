"""Changing a password or an email address from the account pages."""

from sqlalchemy import select

from familylink.extensions import db
from familylink.models import OutboxEmail, User
from familylink.services.passwords import verify_password
from tests.conftest import AuthActions
from tests.factories import PASSWORD, saved_user

NEW = "copper kettle winter moss"


def _user(app, user_id):
    with app.app_context():
        return db.session.get(User, user_id)


def _emails(app):
    with app.app_context():
        return db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).all()


def _password_is(app, user_id, password):
    with app.app_context():
        return verify_password(db.session.get(User, user_id).password_hash, password)


def test_a_password_change_needs_the_current_password(app, client, auth):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    response = client.post(
        "/account/password", data={"current_password": "not it at all", "new_password": NEW}
    )
    assert response.status_code == 400
    assert 'id="current_password-error"' in response.get_data(as_text=True)
    assert _password_is(app, user_id, PASSWORD)


def test_a_new_password_follows_the_rules(app, client, auth):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    response = client.post(
        "/account/password", data={"current_password": PASSWORD, "new_password": "short"}
    )
    assert response.status_code == 400
    assert 'id="new_password-error"' in response.get_data(as_text=True)
    assert _password_is(app, user_id, PASSWORD)


def test_changing_the_password_signs_out_other_devices_and_tells_the_owner(app, client, auth):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    phone = app.test_client()
    AuthActions(phone, app).login("maria@example.org")
    response = client.post(
        "/account/password", data={"current_password": PASSWORD, "new_password": NEW}
    )
    assert response.status_code == 302
    assert _password_is(app, user_id, NEW)
    assert client.get("/family/").status_code == 200
    assert phone.get("/family/").status_code == 302
    assert [e.kind for e in _emails(app)] == ["password_changed_notice"]


def test_an_email_change_needs_the_password(app, client, auth):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    response = client.post(
        "/account/email", data={"new_email": "new@example.org", "password": "wrong one here"}
    )
    assert response.status_code == 400
    assert 'id="password-error"' in response.get_data(as_text=True)
    assert _emails(app) == []
    assert _user(app, user_id).email == "maria@example.org"


def test_an_email_change_is_confirmed_from_the_new_address_and_the_old_one_told(app, client, auth):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    response = client.post(
        "/account/email", data={"new_email": "New@Example.org", "password": PASSWORD}
    )
    assert response.status_code == 302
    (verify,) = _emails(app)
    assert verify.kind == "email_change_verify" and verify.to_address == "new@example.org"
    assert _user(app, user_id).email == "maria@example.org"  # not before the link is used
    token = verify.text_body.split("/email-change/")[1].split()[0]
    page = client.get(f"/email-change/{token}")
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert client.post(f"/email-change/{token}").status_code == 302
    assert _user(app, user_id).email == "new@example.org"
    notice = _emails(app)[-1]
    assert notice.kind == "email_changed_notice" and notice.to_address == "maria@example.org"
    assert client.post(f"/email-change/{token}").status_code == 400


def test_an_email_change_to_a_taken_address_answers_the_same_and_sends_nothing(app, client, auth):
    saved_user(app)
    saved_user(app, email="taken@example.org")
    auth.login("maria@example.org")
    taken = client.post(
        "/account/email",
        data={"new_email": "taken@example.org", "password": PASSWORD},
        follow_redirects=True,
    )
    assert "We sent a link to the new address" in taken.get_data(as_text=True)
    assert _emails(app) == []


def test_the_account_page_counts_recovery_codes_only_when_two_step_sign_in_is_on(
    app, client, auth, count_queries
):
    """Someone without two-step sign-in reads "off", so their page has no codes to count."""
    saved_user(app)
    auth.login("maria@example.org")
    with count_queries() as counter:
        page = client.get("/account/")
    assert page.status_code == 200 and "off" in page.get_data(as_text=True)
    assert not [s for s in counter.statements if "recovery_codes" in s], counter.statements
