"""Command-line commands: `flask --app wsgi <command> --help` explains each."""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import click
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo, with_appcontext
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from familylink.extensions import db
from familylink.models.types import utcnow
from familylink.services import consent, learning, reminders
from familylink.web import FIRST_DAY, LAST_DAY, in_date_range

log = logging.getLogger(__name__)

T = TypeVar("T")


class Instant(click.ParamType):
    """--now's type, shared by every command that takes it: an ISO 8601 instant (UTC when no
    offset is given) on a day the pages accept too (`web.in_date_range`). Year 1 or 9999
    would overflow the first sum a week or a time zone away, a traceback, not an answer."""

    name = "instant"

    def convert(self, value, param, ctx) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            instant = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(
                "use ISO 8601, for example 2026-12-01T15:00 or 2026-12-01T10:00-05:00", param, ctx
            )
        if not in_date_range(instant.date()):
            self.fail(f"use a date between {FIRST_DAY} and {LAST_DAY}", param, ctx)
        return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


class Seconds(click.FloatRange):
    """A number of seconds within the range: click's FloatRange lets nan through (it
    compares false with both bounds)."""

    def convert(self, value, param, ctx) -> float:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


def _reason(error: OperationalError) -> str:
    """The driver's own words, on one line (not the statement, which may be long)."""
    return (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]


class Command(click.Command):
    """Every command here (not `flask db`): refused in one line, before it starts, when the
    database cannot be opened or has not been migrated; a database failure on the way (a
    read-only file, a full disk) is one line too, not a traceback. `--help` never gets here."""

    def invoke(self, ctx: click.Context):
        if not current_app:  # as `with_appcontext` would, a moment later
            ctx.with_resource(ctx.ensure_object(ScriptInfo).load_app().app_context())
        where = db.engine.url.render_as_string(hide_password=True)
        try:
            with db.engine.connect() as connection:
                tables = set(inspect(connection).get_table_names())
        except OperationalError as error:
            raise click.ClickException(
                f"The database at {where} cannot be opened ({_reason(error)}): check DATABASE_URL."
            ) from None
        if not tables.issuperset(db.metadata.tables):
            raise click.ClickException(
                f"The database at {where} is not set up: run `flask --app wsgi db upgrade`."
            )
        try:
            return super().invoke(ctx)
        except OperationalError as error:
            db.session.rollback()
            raise click.ClickException(
                f"The database at {where} failed: {_reason(error)}."
            ) from None


class Commands(AppGroup):
    command_class = Command


def committed(action: Callable[[], T]) -> T:
    """Run one command's operation as its single transaction: committed when it succeeds,
    rolled back with the service's own message (and exit code 1) when it refuses."""
    from familylink.services.errors import DomainError

    try:
        result = action()
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    db.session.commit()
    return result


now_option = click.option(
    "--now",
    type=Instant(),
    metavar="ISO-TIME",
    # Without it, the clock when the command runs.
    callback=lambda ctx, param, value: value or utcnow(),
    help="Act as if it were this instant (for trying things out).",
)


def sweep_command(
    group: AppGroup,
    name: str,
    help: str,
    sweep: Callable[[datetime], T],
    said: Callable[[T], str],
) -> click.Command:
    """A command that runs one of the mail worker's sweeps by hand (or from cron): once, as
    of --now, committed, then says `said(its result)`."""

    @group.command(name, help=help)
    @now_option
    def command(now):
        click.echo(said(committed(lambda: sweep(now))))

    return command


mail_cli = Commands("mail", help="Deliver queued emails from the outbox.")


@mail_cli.command(
    "send",
    help="Run the worker's sweeps (reminders due included), deliver every email that is due"
    " now, once, then exit (cron-friendly).",
)
@now_option
def mail_send(now):
    from familylink.services import mail

    # The worker's sweeps first (reminders due by then among them), so `--now` shows them.
    failed = _run_sweeps(now)
    report = mail.send_pending(now=now, worker=_worker_name())
    click.echo(f"Mail pass done: {report}.")
    if failed:
        raise click.ClickException(
            f"these sweeps failed (logged; the next run tries them again): {', '.join(failed)}"
        )


@mail_cli.command("worker", help="Deliver emails in a loop until stopped (Ctrl+C or SIGTERM).")
@click.option(
    "--interval",
    default=10.0,
    show_default=True,
    type=Seconds(min=1, max=24 * 60 * 60),
    help="Seconds to wait between passes (1 to 86400).",
)
@click.option(
    "--passes",
    default=0,
    type=click.IntRange(min=0),
    help="Stop after this many passes (0: run until stopped).",
)
def mail_worker(interval, passes):
    from familylink.services import mail

    stopping = {"now": False}

    def stop(*_):
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    # Refuses to start with no consent check: a pass that fails is only logged (below).
    mail.wired_consent_check()
    worker = _worker_name()
    click.echo(f"Mail worker {worker} started; passes every {interval:g} s.")
    done = 0
    try:
        while not stopping["now"]:
            _run_sweeps(None)
            try:
                report = mail.send_pending(now=utcnow(), worker=worker)
            except Exception as error:  # noqa: BLE001 - a lost connection must not stop it
                db.session.rollback()
                log.exception("mail delivery failed; the next pass tries again")
                why = _reason(error) if isinstance(error, OperationalError) else repr(error)
                click.echo(f"{datetime.now():%H:%M:%S} mail delivery failed: {why}", err=True)
            else:
                if report.sent or report.failed or report.retried:
                    click.echo(f"{datetime.now():%H:%M:%S} {report}")
            db.session.remove()
            done += 1
            if passes and done >= passes:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    click.echo("Mail worker stopped.")


def _run_sweeps(now: datetime | None) -> list[str]:
    """The mail worker's sweeps (consents, reminders, ...), as of `now` (None: the clock at
    each one), each committed on its own: services never commit. One that fails (a deadlock,
    a lost connection, a row changed under it) is rolled back and logged, and the others and
    delivery still run: it is tried again on the next pass. Returns the names of those."""
    failed = []
    for hook in current_app.extensions.get("familylink_sweeps", []):
        try:
            hook(now or utcnow())
            db.session.commit()
        except Exception:  # noqa: BLE001 - logged with its traceback, tried again next pass
            db.session.rollback()
            name = f"{hook.__module__}.{hook.__qualname__}"
            log.exception("sweep %s failed; the next pass runs it again", name)
            failed.append(name)
    return failed


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@click.command(
    "seed-demo", cls=Command, help="Load the demo program, people and data (see README)."
)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has accounts.")
def seed_demo(if_empty):
    from familylink import demo

    if demo.has_accounts():
        if if_empty:
            click.echo("The database already has accounts; demo data not loaded.")
            return
        raise click.ClickException(
            "The database already has accounts, and the demo data goes into an empty one only:"
            " nothing was loaded. Use --if-empty to skip it without an error."
        )
    password = current_app.config["DEMO_PASSWORD"]
    accounts = demo.seed(password=password, now=utcnow(), progress=click.echo)
    db.session.commit()
    click.echo(f"\nDemo accounts (password for all: {password}):")
    for role, name, email in accounts:
        click.echo(f"  {role:<10} {name:<22} {email}")


@click.command(
    "create-admin", cls=Command, help="Create an administrator account (asks for the password)."
)
@click.option("--name", help="The administrator's full name (asked when not given).")
@click.option("--email", help="The administrator's email address (asked when not given).")
@click.option(
    "--password", help="At least 12 characters (asked, twice and hidden, when not given)."
)
@with_appcontext
def create_admin(name, email, password):
    from familylink.services import accounts

    # Asked here, not by click while parsing: `Command` checks the database first, so
    # nobody types a password for a command that cannot run.
    name = name or click.prompt("Name")
    email = email or click.prompt("Email")
    password = password or click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = committed(
        lambda: accounts.create_admin(name=name, email=email, password=password, now=utcnow())
    )
    click.echo(f"Administrator {user.email} created.")


learn_cli = Commands("learn", help="Learning modules: load the texts, release assigned readings.")


@learn_cli.command(
    "load",
    help="Load familylink/content/*.md, and their Spanish texts in content/es/, into the "
    "database. Safe to repeat: only new or changed files are saved, each English one as a "
    "new version.",
)
def learn_load():
    report = committed(lambda: learning.load_modules(now=utcnow()))
    click.echo(f"Modules: {report}.")


def _released(report: learning.ReleaseReport) -> str:
    released, stopped = len(report.released), report.stopped
    said = f"Released {released} reading{'s' if released != 1 else ''}"
    if stopped:  # their consent ended (or ends before --now): stopped for good, and audited
        return f"{said}; stopped {stopped} whose consent no longer allows them."
    return f"{said}."


learn_release = sweep_command(
    learn_cli,
    "release",
    "Release every assigned reading that is due (the weekly sequence) and queue its email.",
    learning.release_due,
    _released,
)


consent_cli = Commands("consent", help="Consents: expire ended ones and send expiry reminders.")


consent_sweep = sweep_command(
    consent_cli,
    "sweep",
    "Close consents whose end has come (access ends, emails cancelled, people told) "
    "and remind patients 14 days before a consent ends. Safe to run repeatedly; the mail "
    "worker also runs it on every pass.",
    consent.sweep_consents,
    lambda report: f"Consent sweep done: {report}.",
)


def run_consent_sweep(now: datetime) -> None:
    """The mail worker's hook: one consent sweep, committed."""
    consent.sweep_consents(now)
    db.session.commit()


account_cli = Commands(
    "account",
    help="Disable or enable an account, reset its two-step sign-in, or remove expired links.",
)


def _account(email: str):
    from familylink.services.accounts import find_user_by_email

    user = find_user_by_email(email.strip())
    if user is None:
        raise click.ClickException(f"No account has the address {email}.")
    return user


@account_cli.command("disable", help="Disable an account; its sessions end at once.")
@click.argument("email")
def account_disable(email):
    from familylink.services.account_admin import set_account_active

    if committed(lambda: set_account_active(_account(email), False, actor=None, now=utcnow())):
        click.echo(f"{email} is disabled and signed out everywhere.")
    else:
        click.echo(f"{email} is already disabled; nothing to do.")


@account_cli.command("enable", help="Enable a disabled account again.")
@click.argument("email")
def account_enable(email):
    from familylink.services.account_admin import set_account_active

    if committed(lambda: set_account_active(_account(email), True, actor=None, now=utcnow())):
        click.echo(f"{email} is enabled.")
    else:
        click.echo(f"{email} is already enabled; nothing to do.")


@account_cli.command(
    "reset-mfa",
    help="Clear two-step sign-in for someone who lost their phone and recovery codes "
    "(check who is asking first). Staff set it up again at their next sign-in.",
)
@click.argument("email")
def account_reset_mfa(email):
    from familylink.services import mfa

    if committed(lambda: mfa.reset(_account(email), actor=None, now=utcnow())):
        click.echo(f"Two-step sign-in of {email} is cleared and its sessions ended.")
    else:
        click.echo(f"{email} has no two-step sign-in; nothing to do.")


@account_cli.command(
    "purge-tokens",
    help="Remove the account links (password reset, invitations, email confirmation) whose "
    "time is up, used or not: they open nothing. The mail worker also does it on every pass.",
)
@now_option
def account_purge_tokens(now):
    from familylink.services import tokens

    click.echo("Removing expired account links...")
    count = committed(lambda: tokens.purge_expired(now))
    click.echo(f"Done: {count} expired token{'s' if count != 1 else ''} removed.")


secrets_cli = Commands("secrets", help="Secrets kept encrypted in the database (SECRETS_KEYS).")


@secrets_cli.command(
    "rotate",
    help="Re-encrypt every secret kept encrypted (two-step sign-in secrets, pasted video "
    "links) under the newest key in SECRETS_KEYS (the first). Put a new key first, run "
    "this, then remove the old keys.",
)
def secrets_rotate():
    from familylink.services.secrets_at_rest import rotate_secrets

    def progress(done: int, total: int) -> None:
        click.echo(f"{done} of {total} re-encrypted")

    count = committed(lambda: rotate_secrets(now=utcnow(), progress=progress))
    click.echo(f"Done: {count} secret{'s' if count != 1 else ''} now under the newest key.")


reminders_cli = Commands("reminders", help="Appointment reminders.")


reminders_send = sweep_command(
    reminders_cli,
    "send",
    "Queue the reminders that are due (one sweep, cron-friendly); `mail send` delivers them.",
    reminders.run_sweep,
    lambda count: f"Reminder sweep done: {count} queued.",
)


def register(app: Flask) -> None:
    app.cli.add_command(consent_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(seed_demo)
    app.cli.add_command(create_admin)
    app.cli.add_command(learn_cli)
    app.cli.add_command(account_cli)
    app.cli.add_command(reminders_cli)
    app.cli.add_command(secrets_cli)
