"""Every Flask extension, created unbound; the app factory binds them."""

import sqlite3

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

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
