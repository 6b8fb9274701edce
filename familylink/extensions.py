"""Every Flask extension, created unbound; the app factory binds them."""

import select
import sqlite3
import time
from typing import TYPE_CHECKING

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry, Pool

if TYPE_CHECKING:
    import psycopg

# Stable constraint names, so migrations can alter constraints on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Objects keep their loaded values after a commit: a view commits (say, its audit rows) and
# then renders what it already loaded, without reloading each object one by one.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
# Flask-Migrate is not here: it brings Alembic and Mako (about 11 MB a process), which only
# `flask db` and the migration tests use; `familylink.bind_migrations` binds it for them.
login_manager = LoginManager()
mail = Mail()
csrf = CSRFProtect()
# English and Spanish (familylink/i18n.py chooses per request); every string goes through gettext
# (`_()` in templates, `flask_babel.gettext`/`lazy_gettext` in Python).
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite files: write-ahead log, so readers never block the one writer (web requests
    and mail senders share the file), and no disk flush per commit (NORMAL): a crash of the
    app loses nothing; a power cut may undo the last commits, whole, never half of one."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Enforce foreign keys as PostgreSQL does, so SQLite runs catch what production would.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@event.listens_for(Engine, "handle_error")
def _no_row_values_in_errors(context) -> None:
    """PostgreSQL's errors quote the row they refused ("Failing row contains (…)", "Key
    (dedupe_key)=(…) already exists"): a live reset link, a note about a patient. An error's
    message goes to logs and tracebacks, so it keeps only the server's primary message; the
    detail, the SQLSTATE and the constraint stay on `orig.diag` for code that needs them.
    A data error (SQLSTATE class 22) quotes the value in the primary message itself
    ('invalid input syntax for type integer: "…"'), so it keeps what comes before the colon.
    (The values a statement was sent with are hidden by `hide_parameters`, see config.)"""
    orig = context.original_exception
    diag = getattr(orig, "diag", None)
    if diag is None:
        return
    primary = diag.message_primary or ""
    if (diag.sqlstate or "").startswith("22"):
        primary = primary.split(":", 1)[0]
    elif not diag.message_detail:
        return
    orig.args = (primary,)
    if context.sqlalchemy_exception is not None:
        name = f"{type(orig).__module__}.{type(orig).__name__}"
        context.sqlalchemy_exception.args = (f"({name}) {orig.args[0]}",)


# A pooled PostgreSQL connection unused for longer than this is pinged before it is used: a
# firewall or NAT between the app and the server may forget an idle connection without a word
# (their idle limits are minutes), which nothing on this side would notice otherwise.
PING_AFTER_IDLE_SECONDS = 60
_IDLE_SINCE = "idle_since"  # in a pool entry's info, which goes with its DBAPI connection


@event.listens_for(Pool, "checkin")
def _note_idle_since(_dbapi_connection, entry: ConnectionPoolEntry) -> None:
    entry.info[_IDLE_SINCE] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _refuse_dead_connections(dbapi_connection, entry: ConnectionPoolEntry, _proxy) -> None:
    """What pool_pre_ping promised (no page fails on a connection the server has dropped, a
    restart, an administrator's kill), without its round trip at every check-out.

    A server going away writes to each idle connection (a FATAL message, then the end of the
    socket), and says nothing to one otherwise (the app LISTENs for nothing): a connection
    with anything to read has been dropped. Raising DisconnectionError makes the pool replace
    it before the page uses it."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        return  # a file: nothing between the app and it to go away
    idle_since = entry.info.get(_IDLE_SINCE)
    if idle_since is None:
        return  # just connected
    if dbapi_connection.closed or _has_word_from_server(dbapi_connection):
        raise DisconnectionError("the server closed this connection while it was idle")
    if time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS and not _answers(dbapi_connection):
        raise DisconnectionError("this connection no longer answers")


def _has_word_from_server(connection: "psycopg.Connection") -> bool:
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _answers(connection: "psycopg.Connection") -> bool:
    """SQLAlchemy's ping: an empty statement outside any transaction."""
    from psycopg import Error  # only PostgreSQL connections come here; SQLite never loads it

    autocommit = connection.autocommit
    try:
        connection.autocommit = True
        connection.execute(";")
    except Error:
        return False
    finally:
        if not connection.closed:
            connection.autocommit = autocommit
    return True
