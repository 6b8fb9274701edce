"""Fixtures shared by every test.

The suite runs against TEST_DATABASE_URL: SQLite (a file in a temporary folder) when it is
unset, PostgreSQL when it names one. The schema is created once per run; every test gets a
fresh app and finds every table empty afterwards.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from familylink import create_app
from familylink.extensions import db
from familylink.models.types import utcnow
from tests import factories
from tests.moments import NOON

CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


def ensure_postgres_database(url: str) -> None:
    """Create the PostgreSQL test database when missing; fail clearly when the server is down."""
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            )
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    except OperationalError as error:
        pytest.exit(
            f"PostgreSQL is not reachable at {parsed.render_as_string(hide_password=True)}: "
            f"{str(error).splitlines()[0]}\nStart it with: pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start",
            returncode=1,
        )
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = _database_url(tmp_path_factory)
    if url.startswith("postgresql"):
        ensure_postgres_database(url)
    return url


def app_settings(database_url: str, **extra) -> dict:
    settings = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "ARGON2_PARAMETERS": CHEAP_ARGON2,
        "MAIL_SERVER": None,
        "DEV_MAILBOX": True,
        "SESSION_COOKIE_SECURE": False,
        "SERVER_NAME": "familylink.test",
    }
    settings.update(extra)
    return settings


@pytest.fixture(scope="session")
def _schema(database_url):
    app = create_app(app_settings(database_url))
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.engine.dispose()
    return True


def _empty_all_tables() -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def settings_override() -> dict:
    """Override in a test module to change the app's settings for its tests."""
    return {}


@pytest.fixture
def app(_schema, database_url, settings_override):
    app = create_app(app_settings(database_url, **settings_override))
    yield app
    with app.app_context():
        db.session.rollback()
        _empty_all_tables()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def make_app(_schema, database_url):
    """Factory for an extra app with other settings; its connections are closed afterwards."""
    made = []

    def make(**overrides):
        app = create_app(app_settings(database_url, **overrides))
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app_ctx(app):
    """An app context for service tests; the session is rolled back after the test."""
    with app.app_context():
        yield app
        db.session.rollback()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def now():
    return NOON


@pytest.fixture
def create_user(app_ctx):
    """Factory fixture: create_user(Role.THERAPIST, name=..., ...) → a flushed User."""
    return factories.create_user


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, email: str, password: str = factories.PASSWORD, follow: bool = False):
        return self._client.post(
            "/login", data={"email": email, "password": password}, follow_redirects=follow
        )

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Email: a real SMTP server on loopback, and a guard against any other SMTP connection.

_allowed_smtp_ports: set[int] = set()


@pytest.fixture(autouse=True)
def _only_the_test_smtp_server(monkeypatch):
    """Fail any test that opens an SMTP connection other than to the test server."""
    original = smtplib.SMTP.connect

    def guarded(self, host="localhost", port=0, source_address=None):
        if host not in {"127.0.0.1", "localhost"} or int(port) not in _allowed_smtp_ports:
            raise AssertionError(f"unexpected SMTP connection to {host}:{port}")
        return original(self, host, port, source_address)

    monkeypatch.setattr(smtplib.SMTP, "connect", guarded)


DISCONNECT = "disconnect"  # a `replies` entry: drop the connection instead of answering


@dataclass
class SinkHandler:
    """Collects messages; `replies` queues SMTP answers (e.g. '451 try later') for DATA.

    `stall_at=n` makes the n-th DATA (counting from 1) wait before its 250 until `resume` is
    set; `stalled` is set while it waits. The message counts as received once answered.
    """

    messages: list = field(default_factory=list)
    replies: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stall_at: int | None = None
    stalled: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)
    data_count: int = 0

    async def handle_DATA(self, server, session, envelope: Envelope):
        with self.lock:
            self.data_count += 1
            stall = self.data_count == self.stall_at
            reply = self.replies.pop(0) if self.replies else None
        if reply == DISCONNECT:
            server.transport.close()
            return "421 closing"
        if reply is not None:
            return reply
        if stall:
            self.stalled.set()
            while not self.resume.is_set():
                await asyncio.sleep(0.02)
        with self.lock:
            self.messages.append(envelope)
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self):
        self.handler = SinkHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self):
        self.controller.start()
        _allowed_smtp_ports.add(self.port)
        return self

    def stop(self):
        self.handler.resume.set()  # a stalled answer must not hold the server open
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def restart(self):
        """Start again on the same port, as a mail server coming back after an outage."""
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def messages(self):
        return self.handler.messages

    def parsed(self) -> list[EmailMessage]:
        """Every received message, parsed (headers decoded, parts walkable)."""
        return [
            message_from_bytes(envelope.content, policy=default_policy)
            for envelope in self.handler.messages
        ]

    def outbox_ids(self) -> list[int]:
        """The outbox row named by each received message (X-FamilyLink-Id), in arrival order."""
        return [int(message["X-FamilyLink-Id"]) for message in self.parsed()]

    def settings(self) -> dict:
        return {
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": self.port,
            "DEV_MAILBOX": False,
            "MAIL_SUPPRESS_SEND": False,  # Flask-Mail suppresses mail under TESTING otherwise
        }


@pytest.fixture
def smtp_server():
    sink = SmtpSink().start()
    yield sink
    sink.stop()
    _allowed_smtp_ports.discard(sink.port)


@pytest.fixture
def mail_app(smtp_server, _schema, database_url):
    """An app whose outbox is delivered to the test SMTP server."""
    app = create_app(app_settings(database_url, **smtp_server.settings()))
    yield app
    with app.app_context():
        db.session.rollback()
        _empty_all_tables()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def utc_now():
    return utcnow()
