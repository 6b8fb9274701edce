"""TOTP secrets are encrypted at rest with SECRETS_KEYS (newest first), and
`flask secrets rotate` moves every one to the newest key (issue 17)."""

import pyotp
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from familylink import ConfigurationError, create_app
from familylink.extensions import db
from familylink.models import Role
from tests.conftest import app_settings
from tests.factories import PASSWORD, saved_user

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SECRET = pyotp.random_base32()


def _stored(app) -> str:
    with app.app_context():
        return db.session.execute(
            text("SELECT totp_secret FROM users WHERE email = 'lee@example.org'")
        ).scalar_one()


def test_the_stored_column_holds_a_token_not_the_secret(app):
    saved_user(app, Role.THERAPIST, "lee@example.org", totp_secret=SECRET)
    stored = _stored(app)
    assert SECRET not in stored and stored.startswith("gAAAAA")  # a Fernet token
    keys = app.config["SECRETS_KEYS"]
    assert Fernet(keys[0]).decrypt(stored.encode()).decode() == SECRET


def test_rotation_moves_every_secret_to_the_newest_key_and_sign_in_still_works(app, make_app):
    old_only = make_app(SECRETS_KEYS=[OLD])
    saved_user(old_only, Role.THERAPIST, "lee@example.org", totp_secret=SECRET)
    saved_user(old_only, Role.FAMILY, "ana@example.org", mfa=True)
    before = _stored(old_only)
    assert Fernet(OLD).decrypt(before.encode()).decode() == SECRET

    both = make_app(SECRETS_KEYS=f"{NEW},{OLD}")  # the new key first, as a deployment sets it
    result = both.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "2 of 2 re-encrypted" in result.output and "Done: 2 secrets" in result.output

    after = _stored(both)
    assert Fernet(NEW).decrypt(after.encode()).decode() == SECRET
    with pytest.raises(InvalidToken):
        Fernet(OLD).decrypt(after.encode())

    new_only = make_app(SECRETS_KEYS=[NEW])  # the old key removed
    client = new_only.test_client()
    password_step = client.post("/login", data={"email": "lee@example.org", "password": PASSWORD})
    assert password_step.location.endswith("/login/code")
    code = pyotp.TOTP(SECRET).now()
    assert client.post("/login/code", data={"code": code}).status_code == 302
    assert client.get("/therapist/").status_code == 200


def test_the_rotate_command_explains_itself():
    result = (
        create_app(app_settings("sqlite://"))
        .test_cli_runner()
        .invoke(args=["secrets", "rotate", "--help"])
    )
    assert result.exit_code == 0 and "newest key in SECRETS_KEYS" in result.output


def _production(**settings):
    return app_settings(
        "sqlite://",
        TESTING=False,
        DEBUG=False,
        SECRET_KEY="x" * 40,
        SERVER_NAME="family.example-clinic.org",
        DEV_MAILBOX=False,
        **settings,
    )


def test_the_app_refuses_to_start_without_secrets_keys_outside_debug():
    with pytest.raises(ConfigurationError, match="SECRETS_KEYS is not set"):
        create_app(_production(SECRETS_KEYS=None))
    with pytest.raises(ConfigurationError, match="SECRETS_KEYS holds a value"):
        create_app(_production(SECRETS_KEYS="not-a-key"))
    assert create_app(_production(SECRETS_KEYS=NEW)).config["SECRETS_KEYS"] == [NEW]
