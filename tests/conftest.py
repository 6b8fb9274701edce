"""Fixtures shared by every test.

The suite runs against TEST_DATABASE_URL: SQLite (a file in a temporary folder) when it is
unset, PostgreSQL when it names one. The schema is created once per run; every test gets a
fresh app and finds every table as a fresh install has it afterwards (empty, but for the
default Program row the migration inserts). A few modules whose every test starts from one
large world build it once on an app of their own and put every row back before each test
(`DatabaseSnapshot`: the route crawls in tests/web/conftest.py, the query counts); they too
leave every table as a fresh install has it after each test.

Markers (pyproject.toml): `e2e` (every test under tests/e2e, SQLite runs only), `postgres`
(needs PostgreSQL), `sqlite_only` (checks what no database can change, such as whether a
page's words went through gettext: `--database-tests-only`, the PostgreSQL run of `make
test`, leaves it out, as it leaves out every test that never reaches the test database).
"""

from __future__ import annotations

import asyncio
import functools
import html.parser
import os
import re
import smtplib
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from jinja2 import BytecodeCache
from sqlalchemy import Integer, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from familylink import FamilyLink, create_app, i18n
from familylink.extensions import db
from familylink.models import Role
from familylink.models.accounts import insert_default_program
from familylink.models.types import utcnow
from tests import factories
from tests.e2e.browser import BROWSER_SCRATCH, CHROMIUM, Clock, LiveServer, launch_options
from tests.moments import NOON

CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


def _reuse_compiled_url_builders() -> None:
    """Every test builds a fresh app, and three quarters of create_app's time went to
    Werkzeug generating and compiling the same Python code for each of ~100 routes' URL
    builders. The code depends only on the rule, its parsed parts, its defaults and its
    converters, so it is compiled once per run and bound to each new app's rule as before.
    (Tests only: the app itself builds each rule once per process anyway.)"""
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    compiled: dict = {}

    def reuse(self, append_unknown=True):
        key = (
            self.rule,
            tuple(self._trace),
            append_unknown,
            tuple(sorted((k, repr(v)) for k, v in (self.defaults or {}).items())),
            tuple(sorted((k, type(c)) for k, c in self._converters.items())),
        )
        if key not in compiled:
            compiled[key] = compile_builder(self, append_unknown)
        return compiled[key]

    Rule._compile_builder = reuse


_reuse_compiled_url_builders()


class _TemplateCodeOfThisRun(BytecodeCache):
    """Each test's fresh app has a fresh Jinja environment, which compiled every template it
    rendered again (a fifth of a page test's time). Jinja's own bytecode cache keeps each
    template's code for the run, keyed by the template's source checksum (an edited
    template is compiled again) and by the environment's options that shape the code."""

    def __init__(self):
        self.code: dict = {}

    @staticmethod
    def _shape(environment) -> tuple:
        return (
            tuple(sorted(environment.extensions)),
            getattr(environment, "newstyle_gettext", None),
            getattr(environment.autoescape, "__func__", environment.autoescape),  # app's method
            environment.trim_blocks,
            environment.lstrip_blocks,
            environment.keep_trailing_newline,
            environment.optimized,
            getattr(environment.finalize, "__func__", environment.finalize),
        )

    def load_bytecode(self, bucket) -> None:
        found = self.code.get((bucket.key, self._shape(bucket.environment)))
        if found is not None and found[0] == bucket.checksum:
            bucket.code = found[1]

    def dump_bytecode(self, bucket) -> None:
        self.code[(bucket.key, self._shape(bucket.environment))] = (bucket.checksum, bucket.code)


FamilyLink.jinja_options = {**FamilyLink.jinja_options, "bytecode_cache": _TemplateCodeOfThisRun()}


class _OneEngineForTheTestDatabase:
    """Each test's fresh app made its own PostgreSQL engine: a new server process per test
    (forked, its catalogue caches empty) and the dialect's first-connect queries, ~40 ms a
    test on a loaded machine. Apps whose engine settings are the same now share one engine
    for the run's test database: each test still gets a fresh app and session, and a
    connection goes back to the pool rolled back (SQLAlchemy's reset on return), with every
    table emptied by the app fixture's teardown. Other databases (SQLite, the migration
    tests' own database) keep an engine per app. (Tests only.)"""

    url = None  # the run's PostgreSQL test database, set by the database_url fixture
    engines: dict = {}

    @classmethod
    def install(cls) -> None:
        from flask_sqlalchemy import SQLAlchemy

        make_engine = SQLAlchemy._make_engine

        def shared(extension, bind_key, options, app):
            if cls.url is None or make_url(options["url"]) != cls.url:
                return make_engine(extension, bind_key, options, app)
            key = repr(sorted((name, repr(value)) for name, value in options.items()))
            if key not in cls.engines:
                cls.engines[key] = make_engine(extension, bind_key, options, app)
            return cls.engines[key]

        SQLAlchemy._make_engine = shared

    @classmethod
    def close_unless_shared(cls, engine) -> None:
        """Close the pool's connections, but not those of a shared engine (the next test's)."""
        if engine not in cls.engines.values():
            engine.dispose()


_OneEngineForTheTestDatabase.install()


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
        _OneEngineForTheTestDatabase.url = make_url(url)
    return url


@pytest.fixture
def racing_transactions(database_url) -> None:
    """For a test that races two transactions: PostgreSQL only. On SQLite every action holds
    the write lock from its start (BEGIN IMMEDIATE), so they cannot interleave."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite: the write lock, held by BEGIN IMMEDIATE, serializes everything")


@functools.cache
def compiled_translations() -> str:
    """The catalogues as the .po files (and parts/ drafts) stand now, plus the pseudo-locale
    that marks every string: compiled once per run, so no test reads a stale .mo."""
    directory = Path(tempfile.mkdtemp(prefix="familylink-translations-"))
    i18n.compile_catalogues(directory)
    i18n.compile_pseudo(directory)
    return str(directory)


def _engine_options(database_url: str) -> dict:
    """No ping before each check-out of a pooled connection (a round trip each, ~5 a test;
    a test's connections live as long as its app, so none goes stale), and on PostgreSQL no
    wait for the WAL to reach the disk at each commit (synchronous_commit=off: what the
    other sessions see, and when, is unchanged; only a crash of the server could lose the
    last commits, and a test database is emptied after every test anyway)."""
    options: dict = {"pool_pre_ping": False}
    if database_url.startswith("postgresql"):
        options["connect_args"] = {"options": "-c synchronous_commit=off"}
    return options


def app_settings(database_url: str, **extra) -> dict:
    settings = {
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
        "BABEL_TRANSLATION_DIRECTORIES": compiled_translations(),
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


def _empty_all_tables(*, many_rows: bool = False) -> None:
    """Leave every table as a fresh install has it: empty but for the default Program row,
    and (on PostgreSQL) every id sequence back at its start.

    `many_rows`: after a world of thousands of rows, PostgreSQL empties them with TRUNCATE
    (its fixed ~100 ms beats DELETE's check of every foreign key, row by row, through
    tables full of deleted rows: 10-35 s after the query counts' thousand patients)."""
    if many_rows and db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    else:
        _delete_every_row()
    insert_default_program(db.session)
    db.session.commit()


def _delete_every_row() -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        _empty_written_tables_postgresql(tables)
    else:
        for table in tables:
            db.session.execute(table.delete())


class DatabaseSnapshot:
    """Every row of every table as it stands (call inside an app context), to be put back
    before each test of a module whose tests all start from the same world: writing back a
    few hundred rows in one statement a table costs a few milliseconds, building the world
    through the models and signing its people in again cost most of a second a test."""

    def __init__(self):
        # In id order, as the rows were first written: a row that names another of its own
        # table (a patient's therapist) comes after it, as the foreign key needs.
        self.rows = {
            table: [
                dict(row._mapping)
                for row in db.session.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in db.metadata.sorted_tables
        }

    def restore(self) -> None:
        """Every table exactly as it was taken (ids too), whatever the last test wrote."""
        _delete_every_row()
        for table, rows in self.rows.items():
            if rows:
                db.session.execute(table.insert(), rows)
        if db.engine.dialect.name == "postgresql":
            self._move_sequences_past_the_rows()
        db.session.commit()

    def _move_sequences_past_the_rows(self) -> None:
        """Rows written back with their ids leave each sequence at its start: the next
        row a test inserts takes the id after the highest, as it would have in the world."""
        moves = [
            f"setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
            f"{max(row[column.name] for row in rows)})"
            for table, rows in self.rows.items()
            if rows
            for column in table.primary_key.columns
            if isinstance(column.type, Integer)  # no sequence: setval(NULL, ...) is NULL
        ]
        if moves:
            db.session.execute(text("SELECT " + ", ".join(moves)))


# A test writes only a few of the ~30 tables: DELETE from each that holds rows (children
# first) and restart each sequence that was used. audit_events' trigger refuses DELETE, and a
# TRUNCATE of it cost 60-90 ms after every test (new files for the table and its five
# indexes, even with no rows), more than all the rest of the emptying: its user triggers are
# disabled for the DELETE and enabled again in the same transaction (which only the table's
# owner may do, as only the owner may TRUNCATE it). All of it is one DO block, one round
# trip: on a loaded machine each round trip waits for the server process to be scheduled.
@functools.cache
def _emptying_block(table_names: tuple[str, ...]) -> str:
    steps = []
    for name in table_names:
        empty = f'DELETE FROM "{name}";'
        if name == "audit_events":
            empty = f'ALTER TABLE "{name}" DISABLE TRIGGER USER; {empty} '
            empty += f'ALTER TABLE "{name}" ENABLE TRIGGER USER;'
        steps.append(f'IF EXISTS (SELECT FROM "{name}") THEN {empty} END IF;')
    steps.append(
        "PERFORM setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false) "
        "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL;"
    )
    return "DO $$ BEGIN\n" + "\n".join(steps) + "\nEND $$"


def _empty_written_tables_postgresql(tables) -> None:
    db.session.execute(text(_emptying_block(tuple(table.name for table in tables))))


class _VisibleText(html.parser.HTMLParser):
    """What a person sees or hears of a page: text outside script/style, and the attributes
    screen readers and browsers show."""

    SHOWN_ATTRIBUTES = ("alt", "title", "placeholder", "aria-label")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._hidden += 1
        self.parts.extend(value for name, value in attrs if name in self.SHOWN_ATTRIBUTES and value)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


# Words that are data, not sentences: Babel's English day, month and period names (dates are
# formatted for the locale, not translated by gettext) and zone abbreviations.
_DATA_WORDS = re.compile(
    r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
    r"[a-z]*\b|\b(?:AM|PM|am|pm|E[SD]T|C[SD]T|M[SD]T|P[SD]T|UTC|GMT)\b"
)
_MARKED = re.compile(
    re.escape(i18n.PSEUDO_OPEN)
    + r"[^"
    + i18n.PSEUDO_OPEN
    + i18n.PSEUDO_CLOSE
    + r"]*"
    + re.escape(i18n.PSEUDO_CLOSE)
)


def untranslated_words(page: str, *data: str) -> list[str]:
    """Visible words of `page` (rendered under the pseudo-locale) that skipped gettext.

    Marked strings (`⟦…⟧`, innermost first, as placeholders nest) are removed, then the
    `data` the test put in the world (names, addresses, titles, module content) and dates;
    any word of two letters or more left over is English that no translator will see."""
    parser = _VisibleText()
    parser.feed(page)
    text = "\n".join(parser.parts)
    while True:
        unmarked = _MARKED.sub(" ", text)
        if unmarked == text:
            break
        text = unmarked
    for value in sorted(filter(None, data), key=len, reverse=True):
        text = text.replace(value, " ")
    text = _DATA_WORDS.sub(" ", text)
    return re.findall(r"[A-Za-zÀ-ÿ]{2,}", text)


@pytest.fixture
def pseudo_locale(app):
    """Every request of this test speaks the pseudo-locale; returns `untranslated_words`."""
    app.config["FORCE_LOCALE"] = i18n.PSEUDO_LOCALE
    return untranslated_words


@pytest.fixture
def settings_override() -> dict:
    """Override in a test module to change the app's settings for its tests."""
    return {}


@pytest.fixture
def clinic(app) -> dict:
    """The booking pages' clinic (tests/booking_setup.py): who is in it, by email and id.
    A module that needs more builds its own `clinic`."""
    from tests.booking_setup import create_clinic

    with app.app_context():
        made = create_clinic()
        ids = {
            "therapist": made.therapist.email,
            "therapist_id": made.therapist.id,
            "patient": made.patient.id,
            "patient_email": made.patient.email,
            "family": made.family.email,
            "family_id": made.family.id,
            "private": made.private.id,
            "group": made.group.id,
        }
        db.session.commit()
    return ids


@pytest.fixture
def reading_world(app):
    """The reading and practice pages' people, as a factory: modules loaded; Dr. Lee's
    patient Jordan consents to Maria; Dr. Patel has Casey; Drew is a family member.
    `jordan_name`: Jordan's full name; `drew_for_casey`: Casey consents to Drew too;
    `admin`: an administrator, admin@example.org. Returns the ids by first name, "consent"
    (Jordan's to Maria) and "modules" ({slug: id})."""
    from familylink.services import learning

    def make(*, jordan_name=None, drew_for_casey=False, admin=False) -> dict:
        create_user, create_consent = factories.create_user, factories.create_consent
        with app.app_context():
            learning.load_modules(now=NOON)
            lee = create_user(Role.THERAPIST, email="lee@example.org")
            patel = create_user(Role.THERAPIST, email="patel@example.org")
            jordan = create_user(
                Role.PATIENT, name=jordan_name, email="jordan@example.org", therapist=lee
            )
            casey = create_user(Role.PATIENT, email="casey@example.org", therapist=patel)
            maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
            drew = create_user(Role.FAMILY, name="Drew Hale", email="drew@example.org")
            if admin:
                create_user(Role.ADMIN, email="admin@example.org")
            record = create_consent(jordan, maria, now=NOON)
            if drew_for_casey:
                create_consent(casey, drew, now=NOON)
            db.session.commit()
            return {
                "jordan": jordan.id,
                "casey": casey.id,
                "maria": maria.id,
                "drew": drew.id,
                "consent": record.id,
                "modules": {m.slug: m.id for m in learning.all_modules()},
            }

    return make


def _app_emptied_afterwards(settings: dict):
    """An app for one test; afterwards every table it wrote is emptied and its connections
    closed (or, on PostgreSQL, returned to the run's pool)."""
    app = create_app(settings)
    yield app
    with app.app_context():
        db.session.rollback()
        _empty_all_tables()
        db.session.remove()
        _OneEngineForTheTestDatabase.close_unless_shared(db.engine)


@pytest.fixture
def app(_schema, database_url, settings_override):
    yield from _app_emptied_afterwards(app_settings(database_url, **settings_override))


@pytest.fixture
def make_app(_schema, database_url):
    """Factory for an extra app with other settings (and, given `url`, on another database
    than the test database); its connections are closed afterwards."""
    made = []

    def make(url: str | None = None, **overrides):
        app = create_app(app_settings(url or database_url, **overrides))
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            _OneEngineForTheTestDatabase.close_unless_shared(db.engine)


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
    """Sign in through the real pages; completes two-step sign-in with pyotp when asked."""

    def __init__(self, client, app=None):
        self._client = client
        self._app = app

    def login(self, email: str, password: str = factories.PASSWORD, follow: bool = False):
        response = self._client.post("/login", data={"email": email, "password": password})
        if response.status_code == 302 and "/login/code" in response.location:
            return self._client.post(
                response.location,
                data={"code": self.current_code(email)},
                follow_redirects=follow,
            )
        if follow and response.status_code == 302:
            return self._client.get(response.location, follow_redirects=True)
        return response

    def current_code(self, email: str) -> str:
        """The authenticator code for `email` at the app's now (replay guard reset first)."""
        import pyotp
        from sqlalchemy import select

        from familylink.models import User
        from familylink.web import request_now

        with self._app.test_request_context():
            user = db.session.scalar(select(User).where(User.email == email.lower()))
            user.totp_last_step = None
            db.session.commit()
            return pyotp.TOTP(user.totp_secret).at(request_now())

    def logout(self):
        return self._client.post("/logout")


def session_cookie_of(app, email: str) -> str:
    """Sign `email` in through the real pages; their session cookie, for clients made later
    (`client_with_session`) by tests that share one signed-in world."""
    client = app.test_client()
    assert AuthActions(client, app).login(email).status_code == 302, email
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"], domain=app.config["SERVER_NAME"])
    assert cookie is not None, email
    return cookie.value


def client_with_session(app, cookie: str | None):
    """A fresh test client carrying a session cookie (None: an anonymous visitor)."""
    client = app.test_client()
    if cookie is not None:
        client.set_cookie(
            app.config["SESSION_COOKIE_NAME"], cookie, domain=app.config["SERVER_NAME"]
        )
    return client


@pytest.fixture
def auth(client, app):
    return AuthActions(client, app)


@pytest.fixture
def admin_client(app, client, auth):
    """`client` signed in as the admin admin@example.org (two-step sign-in done)."""
    with app.app_context():
        factories.create_user(Role.ADMIN, name="Alex Admin", email="admin@example.org")
        db.session.commit()
    auth.login("admin@example.org")
    return client


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
    yield from _app_emptied_afterwards(app_settings(database_url, **smtp_server.settings()))


@pytest.fixture
def utc_now():
    return utcnow()


class QueryCounter:
    """Counts the SQL statements the app sends while active (cursor executes)."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    def __enter__(self):
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._record)

    @property
    def count(self) -> int:
        # The connection pool's liveness ping is not the page's work.
        return sum(1 for s in self.statements if s.strip().upper() != "SELECT 1")


@pytest.fixture
def count_queries(app):
    """`with count_queries() as counter: client.get(...)`; then counter.count."""

    def make():
        with app.app_context():
            engine = db.engine
        return QueryCounter(engine)

    return make


# --- Browser tests (tests/e2e): the app served in a thread, Debian's Chromium via Playwright.
#
# The app runs on the test database in a background thread of this process, so a test can
# read and seed the database and deliver the outbox to the SMTP sink while the browser clicks.
# Chromium is Debian's (/usr/bin/chromium, installed by `make test`); Playwright's own browser
# downloads are never used. Its scratch files (profile, artifacts) stay in the ignored tmp/.
# The plumbing (Chromium's flags, LiveServer, Clock) lives in tests/e2e/browser.py.


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    """Launch Debian's Chromium; a missing browser fails the browser tests (never skips)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing, so the browser tests cannot run. `make test` installs it "
            "(apt-get install chromium); or run: apt-get update && apt-get install -y chromium",
            pytrace=False,
        )
    return launch_options()


@pytest.fixture(scope="session")
def base_url():
    """Each test's server has its own port, so pages get it from the `page` fixture instead.
    (This also replaces pytest-playwright's own base_url, which pytest 9 warns about.)"""
    return None


@pytest.fixture(scope="session")
def playwright():
    """Playwright's driver, told to keep its temporary files (Chromium's fresh profile
    directory, downloads, artifacts) in tmp/scratch rather than the system's /tmp."""
    from playwright.sync_api import sync_playwright

    BROWSER_SCRATCH.mkdir(parents=True, exist_ok=True)
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(BROWSER_SCRATCH)  # read by the driver process it starts
    try:
        driver = sync_playwright().start()
    finally:
        if before is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = before
    yield driver
    driver.stop()


def browser_settings(database_url: str, **extra) -> dict:
    """Settings for a served app: real forms (CSRF on), cheap hashing, no rate limits."""
    settings = {"WTF_CSRF_ENABLED": True, "NOW_OVERRIDE": Clock(), "SERVER_NAME": None}
    settings.update(extra)
    return app_settings(database_url, **settings)


@pytest.fixture
def serve_app(_schema, database_url):
    """Factory: serve_app(**settings) → a started LiveServer; stopped and emptied afterwards."""
    servers = []

    def serve(**overrides) -> LiveServer:
        server = LiveServer(create_app(browser_settings(database_url, **overrides))).start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.stop()
    for server in servers[:1]:
        with server.app.app_context():
            _empty_all_tables()
            db.session.remove()
    for server in servers:
        with server.app.app_context():
            db.engine.dispose()


@pytest.fixture
def live_server(serve_app, smtp_server) -> LiveServer:
    """The app in a thread, its emails delivered (by live_server.deliver_mail()) to smtp_server."""
    return serve_app(**smtp_server.settings())


class Inbox:
    """What the SMTP sink received: delivers the outbox first, then reads the latest email."""

    LINK = re.compile(r"https?://[^\s<>\"']+")

    def __init__(self, server: LiveServer, sink: SmtpSink):
        self.server = server
        self.sink = sink

    def latest(self, to: str) -> EmailMessage:
        """The newest email to `to` (after a delivery pass); fails when there is none."""
        self.server.deliver_mail()
        wanted = to.lower()
        found = [m for m in self.sink.parsed() if wanted in str(m["To"]).lower()]
        assert found, f"no email to {to}; received: {[str(m['To']) for m in self.sink.parsed()]}"
        return found[-1]

    @staticmethod
    def text(message: EmailMessage) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    def link(self, to: str) -> str:
        """The first link in the plain-text part of the newest email to `to`."""
        message = self.latest(to)
        links = self.LINK.findall(self.text(message))
        assert links, f"no link in the email {message['Subject']!r} to {to}"
        return links[0]


@pytest.fixture
def inbox(live_server, smtp_server) -> Inbox:
    return Inbox(live_server, smtp_server)


@pytest.fixture
def page(new_context, live_server):
    """A fresh browser tab (own context: own cookies) on the live server.

    The test fails when the server answers 5xx or the browser reports an error (a script
    error, or a style or script the Content-Security-Policy blocked).
    """
    context = new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 800},
        locale="en-US",
        timezone_id="America/New_York",
    )
    tab = context.new_page()
    problems: list[str] = []
    tab.on(
        "response",
        lambda r: problems.append(f"{r.status} from {r.url}") if r.status >= 500 else None,
    )
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message):
        # A 4xx answer to a form is expected (and logged by Chromium); anything else is not.
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(f"console: {message.text}")

    tab.on("console", on_console)
    yield tab
    assert not problems, "the browser saw problems:\n" + "\n".join(problems)


E2E_DIR = Path(__file__).resolve().parent / "e2e"


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only the tests that use the test database (`make test` passes it to the "
        "PostgreSQL run: the others already ran, identically, on SQLite)",
    )


def pytest_collection_modifyitems(config, items):
    """Everything under tests/e2e is a browser test (marked e2e: SQLite runs only).
    With --database-tests-only, tests that never reach the test database are deselected, and
    so are those marked sqlite_only (see _uses_the_test_database)."""
    for item in items:
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
    if config.getoption("--database-tests-only"):
        kept = [item for item in items if _uses_the_test_database(item)]
        if len(kept) < len(items):
            kept_ids = {id(item) for item in kept}
            config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept_ids])
            items[:] = kept


_SOURCES: dict[Path, str] = {}


def _uses_the_test_database(item) -> bool:
    """A test reaches TEST_DATABASE_URL through the `database_url` fixture (every app fixture
    depends on it), or reads the variable itself, or is marked postgres. A test marked
    sqlite_only uses the database only to set the scene for what it checks (whether a page's
    words went through gettext), which is the same on every database."""
    if item.get_closest_marker("sqlite_only"):
        return False
    if "database_url" in getattr(item, "fixturenames", ()) or item.get_closest_marker("postgres"):
        return True
    path = Path(str(item.path))
    if path not in _SOURCES:
        _SOURCES[path] = path.read_text()
    return "TEST_DATABASE_URL" in _SOURCES[path]


# --- The privacy oracle (tests/privacy): one app on a movable clock for a whole run.


@pytest.fixture
def oracle_app(make_app):
    """An app whose clock the oracle moves (NOW_OVERRIDE is a Clock); emptied afterwards."""
    app = make_app(NOW_OVERRIDE=Clock())
    yield app
    with app.app_context():
        db.session.rollback()
        _empty_all_tables()


@pytest.fixture(scope="session")
def oracle_readings(tmp_path_factory):
    """A folder with the two readings the oracle's worlds load (all ten cost time)."""
    from tests.privacy.world import readings_directory

    return readings_directory(tmp_path_factory.mktemp("readings"))


def pytest_terminal_summary(terminalreporter):
    """After a run that included the privacy oracle, say how much it explored."""
    import sys

    oracle = sys.modules.get("tests.privacy.test_oracle")
    if oracle is None or not oracle.EXPLORED:
        return
    terminalreporter.section("privacy oracle")
    for name, seen in oracle.EXPLORED.items():
        terminalreporter.write_line(
            f"{name}: {seen.examples} examples, {seen.steps} steps, "
            f"{len(seen.states)} distinct states, {seen.pages} pages and "
            f"{seen.emails} queued emails checked"
        )
        if seen.markers:
            counts = ", ".join(f"{kind} {n}" for kind, n in sorted(seen.markers.items()))
            terminalreporter.write_line(f"  markers found: {counts}")
