"""The `flask account` commands: disable, enable, reset-mfa."""

from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, Role, User
from tests.conftest import AuthActions
from tests.factories import saved_user


def _user(app, user_id):
    with app.app_context():
        return db.session.get(User, user_id)


def test_disabling_from_the_command_line_signs_the_person_out(app, runner):
    user_id = saved_user(app)
    client = app.test_client()
    AuthActions(client, app).login("maria@example.org")
    result = runner.invoke(args=["account", "disable", "maria@example.org"])
    assert result.exit_code == 0, result.output
    assert not _user(app, user_id).active
    assert client.get("/family/").status_code == 302
    assert runner.invoke(args=["account", "enable", "maria@example.org"]).exit_code == 0
    assert _user(app, user_id).active


def test_the_last_active_admin_is_not_disabled_from_the_command_line(app, runner):
    admin_id = saved_user(app, Role.ADMIN, "admin@example.org")
    result = runner.invoke(args=["account", "disable", "admin@example.org"])
    assert result.exit_code != 0 and "last active admin" in result.output
    assert _user(app, admin_id).active
    saved_user(app, Role.ADMIN, "second@example.org")
    assert runner.invoke(args=["account", "disable", "admin@example.org"]).exit_code == 0
    assert not _user(app, admin_id).active


def test_an_unknown_address_is_a_clear_error(runner):
    result = runner.invoke(args=["account", "disable", "nobody@example.org"])
    assert result.exit_code != 0 and "No account has the address" in result.output


def test_resetting_mfa_makes_staff_enrol_again(app, runner):
    user_id = saved_user(app, Role.THERAPIST, "lee@example.org")
    client = app.test_client()
    AuthActions(client, app).login("lee@example.org")
    result = runner.invoke(args=["account", "reset-mfa", "lee@example.org"])
    assert result.exit_code == 0, result.output
    assert not _user(app, user_id).mfa_enabled
    assert client.get("/therapist/").status_code == 302  # its session ended
    AuthActions(client, app).login("lee@example.org")
    response = client.get("/therapist/")
    assert response.status_code == 302 and response.location.endswith("/account/mfa")
    with app.app_context():
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "mfa.reset"))


def test_create_admin_makes_a_verified_admin_and_audits_it_without_an_actor(app, runner):
    result = runner.invoke(
        args=["create-admin", "--name", "Alex Admin", "--email", "Alex@Example.org"],
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.email == "alex@example.org"))
        assert admin.role == Role.ADMIN and admin.verified_at is not None
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.created"))
        assert (event.actor_id, event.object_id) == (None, admin.id)
        assert "password" not in str(event.detail)


def test_create_admin_refuses_an_address_in_use_and_writes_nothing(app, runner):
    saved_user(app, Role.FAMILY, "maria@example.org")
    result = runner.invoke(
        args=["create-admin", "--name", "Maria Admin", "--email", "maria@example.org"],
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code != 0 and "already exists" in result.output
    with app.app_context():
        created = select(AuditEvent).where(AuditEvent.action == "account.created")
        assert db.session.scalar(created) is None


def test_create_admin_refuses_a_name_that_would_reveal_the_kind_of_care(app, runner):
    result = runner.invoke(
        args=["create-admin", "--name", "Alex, Rehab Director", "--email", "alex@example.org"],
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code != 0 and 'leave out "Rehab"' in result.output
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "alex@example.org")) is None
