"""TOTP secrets and pasted video links are encrypted at rest with SECRETS_KEYS (newest
first), and `flask secrets rotate` moves every one to the newest key (issue 17)."""

from datetime import timedelta

import pyotp
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, text

from familylink import ConfigurationError, create_app
from familylink.extensions import db
from familylink.models import Appointment, AuditEvent, Role, SessionType, User
from familylink.services import secrets_at_rest
from tests.booking_setup import create_clinic, family_seat
from tests.conftest import app_settings
from tests.factories import PASSWORD, saved_user
from tests.moments import NOON

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SECRET = pyotp.random_base32()
ROOM_LINK = "https://zoom.example.org/j/123456789?pwd=the-passcode"


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


def _paste_a_room_link(app) -> int:
    """A video session of Dr. Lee's with a link she pasted; its appointment's id."""
    with app.app_context():
        clinic = create_clinic()
        video = SessionType(name="Family session (video)", duration_minutes=50, mode="video")
        seat = family_seat(clinic, NOON + timedelta(days=2), booked_at=NOON, session_type=video)
        seat.appointment.room_link = ROOM_LINK
        db.session.commit()
        return seat.appointment_id


def _stored_link(app, appointment_id: int) -> str:
    with app.app_context():
        return db.session.execute(
            text("SELECT room_link FROM appointments WHERE id = :id"), {"id": appointment_id}
        ).scalar_one()


def test_a_pasted_room_link_is_stored_as_a_token_and_read_back_as_pasted(app):
    appointment_id = _paste_a_room_link(app)
    stored = _stored_link(app, appointment_id)
    assert "passcode" not in stored and stored.startswith("gAAAAA")
    with app.app_context():
        assert db.session.get(Appointment, appointment_id).room_link == ROOM_LINK


def test_rotation_moves_every_secret_to_the_newest_key_and_sign_in_still_works(app, make_app):
    old_only = make_app(SECRETS_KEYS=[OLD])
    saved_user(old_only, Role.THERAPIST, "lee@example.org", totp_secret=SECRET)
    saved_user(old_only, Role.FAMILY, "ana@example.org", mfa=True)
    appointment_id = _paste_a_room_link(old_only)
    before = _stored(old_only)
    assert Fernet(OLD).decrypt(before.encode()).decode() == SECRET

    both = make_app(SECRETS_KEYS=f"{NEW},{OLD}")  # the new key first, as a deployment sets it
    result = both.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    # Three two-step secrets (Dr. Lee, Ana, the clinic's therapist), then the pasted link.
    assert "3 of 4 re-encrypted\n4 of 4 re-encrypted" in result.output
    assert "Done: 4 secrets" in result.output
    link = _stored_link(both, appointment_id)
    assert Fernet(NEW).decrypt(link.encode()).decode() == ROOM_LINK

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


def test_rotation_leaves_a_value_written_while_it_runs(make_app):
    """A link forgotten (or pasted) between rotation's read and its write is not put back."""
    old_only = make_app(SECRETS_KEYS=[OLD])
    appointment_id = _paste_a_room_link(old_only)
    both = make_app(SECRETS_KEYS=f"{NEW},{OLD}")
    with both.app_context():

        def meanwhile(done, total):
            if done == 1:  # the therapists' secrets are done; the link is next
                db.session.execute(
                    text("UPDATE appointments SET room_link = NULL WHERE id = :id"),
                    {"id": appointment_id},
                )

        read = len(db.session.execute(select(User.id).where(User.totp_secret.is_not(None))).all())
        rotated = secrets_at_rest.rotate_secrets(now=NOON, progress=meanwhile, batch=1)
        counted = db.session.scalar(
            select(AuditEvent.detail).where(AuditEvent.action == "secrets.rotated")
        )
        db.session.commit()
    assert _stored_link(both, appointment_id) is None
    # What was re-encrypted: the two-step secrets, not the link read and then left alone.
    assert read >= 1 and rotated == read and counted == {"count": read}


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
