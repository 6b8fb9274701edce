"""Bad input to the commands, and a database that cannot be used: a clear message, nothing
changed, never a Python traceback."""

import logging
import signal
import sqlite3
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from familylink import ConfigurationError, create_app
from familylink.extensions import db
from familylink.models import Assignment, AuditEvent, OutboxEmail, Role, User
from familylink.models.mail import OutboxStatus
from familylink.services import learning, mail
from familylink.services.mail import delivery
from tests.conftest import app_settings
from tests.factories import saved_user
from tests.moments import NOON
from tests.queries import count_rows


def _clean(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.output


def _queue_one(app, now=NOON) -> None:
    with app.app_context():
        mail.queue_email(
            "password_reset",
            to="person@example.org",
            dedupe_key="bad-input",
            now=now,
            context={"link": "https://familylink.test/reset/x", "recipient": None},
        )
        db.session.commit()


def _audit_count(app, action: str) -> int:
    return count_rows(app, AuditEvent, AuditEvent.action == action)


# --- 1. Only SQLite's lock is "outbox busy" ----------------------------------------------------


def _failing_claim(monkeypatch, message: str) -> None:
    """The claim's UPDATE (its text names `locked_until`) fails with this driver message."""
    real = db.session.execute

    def execute(statement, *args, **kwargs):
        if str(statement).startswith("UPDATE outbox_emails SET locked_until="):
            raise OperationalError(str(statement), {}, sqlite3.OperationalError(message))
        return real(statement, *args, **kwargs)

    monkeypatch.setattr(db.session, "execute", execute)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("message", ["database is locked", "database table is locked"])
def test_a_held_write_lock_is_an_empty_batch(app_ctx, monkeypatch, caplog, message):
    _failing_claim(monkeypatch, message)
    assert delivery.claim_batch(now=NOON, limit=10, worker="w") == []
    assert "outbox busy" in caplog.text


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "message",
    ["attempt to write a readonly database", "disk I/O error", "no such table: outbox_emails"],
)
def test_any_other_database_error_is_not_taken_for_a_busy_outbox(
    app_ctx, monkeypatch, caplog, message
):
    _failing_claim(monkeypatch, message)
    with pytest.raises(OperationalError, match=message):
        delivery.claim_batch(now=NOON, limit=10, worker="w")
    assert "outbox busy" not in caplog.text


@pytest.mark.sqlite_only
def test_mail_send_names_a_database_error_in_one_line(app, runner, monkeypatch):
    _queue_one(app)
    with app.app_context():
        _failing_claim(monkeypatch, "attempt to write a readonly database")
        output = _clean(runner.invoke(args=["mail", "send", "--now", "2026-11-20T12:00"]))
    assert "outbox busy" not in output
    assert "attempt to write a readonly database" in output.splitlines()[-1]


@pytest.mark.sqlite_only
def test_the_worker_says_what_fails_on_each_pass_and_keeps_going(app, monkeypatch, caplog):
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    _queue_one(app)
    with app.app_context():
        _failing_claim(monkeypatch, "disk I/O error")
        result = app.test_cli_runner().invoke(args=["mail", "worker", "--passes", "2"])
    output = _clean(result, 0)
    assert "outbox busy" not in output and "outbox busy" not in caplog.text
    assert output.count("mail delivery failed: disk I/O error") == 2
    assert slept == [10.0] and "Mail worker stopped." in output
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all("disk I/O error" in str(r.exc_info[1]) for r in errors)


# --- 2. seed-demo on a populated database ------------------------------------------------------


def test_seed_demo_on_a_database_with_accounts_refuses_naming_if_empty(app, runner):
    saved_user(app)
    output = _clean(runner.invoke(args=["seed-demo"]))
    assert "--if-empty" in output and "IntegrityError" not in output
    assert count_rows(app, User) == 1


def test_seed_demo_if_empty_on_a_database_with_accounts_still_does_nothing(app, runner):
    saved_user(app)
    output = _clean(runner.invoke(args=["seed-demo", "--if-empty"]), 0)
    assert "demo data not loaded" in output
    assert count_rows(app, User) == 1


# --- 3. The worker's --interval and --passes ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--interval", "-5"],
        ["--interval", "0"],
        ["--interval", "0.5"],
        ["--interval", "nan"],
        ["--interval", "inf"],
        ["--interval", "1e400"],
        ["--interval", "86401"],
        ["--interval", "ten"],
        ["--passes", "-1"],
    ],
)
def test_a_bad_interval_or_passes_is_refused_before_anything_is_sent(
    app, monkeypatch, smtp_server, args
):
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail("slept"))
    _queue_one(app)
    result = app.test_cli_runner().invoke(args=["mail", "worker", "--passes", "3", *args])
    output = _clean(result, 2)
    assert "Invalid value" in output and "started" not in output
    with app.app_context():
        assert db.session.scalar(select(OutboxEmail.status)) == OutboxStatus.PENDING


def test_a_sensible_interval_is_slept_between_passes(app, monkeypatch):
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    result = app.test_cli_runner().invoke(
        args=["mail", "worker", "--passes", "3", "--interval", "1.5"]
    )
    _clean(result, 0)
    assert slept == [1.5, 1.5]


# --- 4. learn release that stops readings says so and audits it -------------------------------


@pytest.fixture
def sequence(app, reading_world):
    world = reading_world()
    with app.app_context():
        lee = db.session.scalar(select(User).where(User.email == "lee@example.org"))
        learning.apply_sequence(
            therapist=lee, patient_id=world["jordan"], family_user_id=world["maria"], now=NOON
        )
        db.session.commit()
    return world


def test_learn_release_after_the_consent_ended_reports_and_audits_what_it_stopped(
    app, runner, sequence
):
    waiting = count_rows(app, Assignment, Assignment.released_at.is_(None))
    assert waiting > 0
    output = _clean(runner.invoke(args=["learn", "release", "--now", "2099-01-01T00:00"]), 0)
    assert f"Released 0 readings; stopped {waiting}" in output
    assert count_rows(app, Assignment, Assignment.stopped_at.is_not(None)) == waiting
    with app.app_context():
        rows = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "learning.stopped")
        ).all()
        assert [(r.patient_id, r.recipient_id, r.detail) for r in rows] == [
            (sequence["jordan"], sequence["maria"], {"assignments": waiting})
        ]
    again = _clean(runner.invoke(args=["learn", "release", "--now", "2099-01-01T00:00"]), 0)
    assert "Released 0 readings." in again and "stopped" not in again
    assert _audit_count(app, "learning.stopped") == 1


def test_learn_release_while_the_consent_holds_stops_nothing(app, runner, sequence):
    output = _clean(runner.invoke(args=["learn", "release", "--now", "2026-11-24T17:00"]), 0)
    assert output.strip() == "Released 1 reading."
    assert _audit_count(app, "learning.stopped") == 0


# --- 5. Database settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["notaurl", "sqlite//x.db", "nosuchdriver://host/db", "postgresql+nosuch://h/d"]
)
def test_an_unparsable_database_url_refuses_to_start_naming_it(database_url, value):
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        create_app(app_settings(database_url, SQLALCHEMY_DATABASE_URI=value))


@pytest.mark.parametrize(
    ("value", "said"),
    [
        # A driver that is not installed: a traceback from deep inside SQLAlchemy before.
        (
            "postgresql+pg8000://user:secret@db-host/familylink",
            "pg8000 that DATABASE_URL names is not installed",
        ),
        # Other databases: FamilyLink is built and tested on SQLite and PostgreSQL only.
        ("mysql://user:secret@db-host/familylink", "SQLite or PostgreSQL"),
    ],
)
def test_a_database_url_familylink_cannot_use_refuses_to_start_in_one_line(
    database_url, value, said
):
    with pytest.raises(ConfigurationError, match="DATABASE_URL") as refused:
        create_app(app_settings(database_url, SQLALCHEMY_DATABASE_URI=value))
    assert said in str(refused.value) and "secret" not in str(refused.value)


COMMANDS = [
    ["mail", "send"],
    ["mail", "worker", "--passes", "1"],
    ["seed-demo"],
    ["seed-demo", "--if-empty"],
    ["learn", "release"],
    ["account", "enable", "maria@example.org"],
    ["consent", "sweep"],
    ["create-admin"],  # refused before it asks for anything
]


@pytest.fixture
def cli_app(make_app, monkeypatch):
    """An app on a database of the test's choosing (`make_app` closes its connections)."""
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    return make_app


@pytest.mark.parametrize("args", COMMANDS)
def test_a_database_that_is_not_set_up_is_one_clear_line(cli_app, tmp_path, args):
    empty = tmp_path / "empty.db"
    output = _clean(cli_app(f"sqlite:///{empty}").test_cli_runner().invoke(args=args))
    assert "is not set up: run `flask --app wsgi db upgrade`" in output
    assert str(empty) in output and len(output.strip().splitlines()) == 1


@pytest.mark.parametrize("args", COMMANDS)
def test_a_database_in_a_missing_directory_is_one_clear_line(cli_app, tmp_path, args):
    url = f"sqlite:///{tmp_path}/no/such/directory/familylink.db"
    output = _clean(cli_app(url).test_cli_runner().invoke(args=args))
    assert "cannot be opened" in output and "DATABASE_URL" in output
    assert "unable to open database file" in output
    assert len(output.strip().splitlines()) == 1


def test_help_needs_no_database(cli_app, tmp_path):
    runner = cli_app(f"sqlite:///{tmp_path}/no/such/directory/familylink.db").test_cli_runner()
    for args in COMMANDS:
        result = runner.invoke(args=[*args[:2], "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, result.output


# --- Minor: nothing to do is said, and not audited ---------------------------------------------


def test_enabling_an_enabled_account_says_so_and_audits_nothing(app, runner):
    saved_user(app)
    output = _clean(runner.invoke(args=["account", "enable", "maria@example.org"]), 0)
    assert "already enabled" in output
    assert _audit_count(app, "account.enabled") == 0


def test_disabling_a_disabled_account_says_so_and_audits_nothing(app, runner):
    saved_user(app, active=False)
    output = _clean(runner.invoke(args=["account", "disable", "maria@example.org"]), 0)
    assert "already disabled" in output
    assert _audit_count(app, "account.disabled") == 0


def test_resetting_mfa_of_an_account_without_it_says_so_and_audits_nothing(app, runner):
    user_id = saved_user(app, Role.FAMILY, "drew@example.org")
    with app.app_context():
        assert not db.session.get(User, user_id).mfa_enabled
    output = _clean(runner.invoke(args=["account", "reset-mfa", "drew@example.org"]), 0)
    assert "no two-step sign-in" in output
    assert _audit_count(app, "mfa.reset") == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(AuditEvent.id))) == 0
