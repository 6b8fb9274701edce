"""Settings, read from the environment.

Every setting the app reads is listed in README.md. Defaults suit local development;
production must set SECRET_KEY and SERVER_NAME (the app refuses to start without them) and
DATABASE_URL.
"""

import os
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'familylink.db'}")
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants the driver named.
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def from_environment() -> dict:
    """Return the settings dictionary built from environment variables."""
    debug = _bool("FLASK_DEBUG")
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "DEBUG": debug,
        "SQLALCHEMY_DATABASE_URI": _database_url(),
        # No pool_pre_ping: its round trip at every check-out is replaced by a look at the
        # connection's socket (extensions._refuse_dead_connections).
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "MAIL_SERVER": os.environ.get("MAIL_SERVER"),
        "MAIL_PORT": _int("MAIL_PORT", 25),
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS"),
        "MAIL_USE_SSL": _bool("MAIL_USE_SSL"),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": os.environ.get(
            "MAIL_DEFAULT_SENDER", "no-reply@familylink.localhost"
        ),
        "MAIL_TIMEOUT": _int("MAIL_TIMEOUT", 10),
        "MAIL_BATCH_SIZE": _int("MAIL_BATCH_SIZE", 200),
        "MAIL_MAX_ATTEMPTS": _int("MAIL_MAX_ATTEMPTS", 8),
        "MAIL_LEASE_SECONDS": _int("MAIL_LEASE_SECONDS", 120),
        "REMINDER_LOOKBACK_MINUTES": _int("REMINDER_LOOKBACK_MINUTES", 360),
        "SERVER_NAME": os.environ.get("SERVER_NAME"),
        "PREFERRED_URL_SCHEME": os.environ.get("PREFERRED_URL_SCHEME", "http"),
        "TRUSTED_HOSTS": _list("TRUSTED_HOSTS"),
        # Fernet keys for secrets kept in the database (TOTP secrets), newest first.
        "SECRETS_KEYS": _list("SECRETS_KEYS"),
        # How many reverse proxies in front of the app set X-Forwarded-For and -Proto
        # (checked at start-up by _check_trusted_proxies). 0: trust no such header.
        "TRUSTED_PROXIES": os.environ.get("TRUSTED_PROXIES", "0"),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        # Only benchmarks turn rate limiting off; never in production.
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", default=True),
        "DEV_MAILBOX": _bool("DEV_MAILBOX", default=debug),
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", default=not debug),
        "DEMO_PASSWORD": os.environ.get("DEMO_PASSWORD", "family-demo-2026"),
    }


DEFAULTS = {
    "TESTING": False,
    "WTF_CSRF_ENABLED": True,
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session, which times out itself
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_DURATION": 0,
    # The cookie only carries the session id; the sessions table enforces the idle and
    # absolute limits. So the cookie is not re-signed and re-sent on every response, and
    # lasts as long as the absolute limit (set from SESSION_ABSOLUTE_MINUTES by
    # apply_session_defaults).
    "SESSION_REFRESH_EACH_REQUEST": False,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_HEADERS_ENABLED": False,
    # Argon2id parameters: None means argon2-cffi's own defaults (RFC 9106 low-memory).
    # Tests pass cheaper ones so the suite stays fast; production never sets them.
    "ARGON2_PARAMETERS": None,
    "TOKEN_LIFETIMES_HOURS": {
        "verify": 48,
        "reset": 1,
        "invite": 7 * 24,
        "family_invite": 14 * 24,
        "email_change": 48,
    },
    "MAIL_BATCH_SIZE": 200,
    # Compiled catalogues (`make translations` writes them beside the .po files).
    "BABEL_TRANSLATION_DIRECTORIES": str(PROJECT_ROOT / "familylink" / "translations"),
    "BABEL_DEFAULT_LOCALE": "en",
    "MAIL_MAX_ATTEMPTS": 8,
    "MAIL_LEASE_SECONDS": 120,
    # Server-side sessions (HIPAA automatic logoff): idle and absolute limits, in minutes.
    "SESSION_IDLE_MINUTES": 30,
    "SESSION_ABSOLUTE_MINUTES": 12 * 60,
    # Soft lockout: this many failed sign-ins for one account within the window refuse
    # even a correct password until the window has passed (same answer as any failure).
    "LOCKOUT_FAILURES": 5,
    "LOCKOUT_MINUTES": 15,
    # Sign-in, sign-up, reset, invitation and booking limits (Flask-Limiter notation).
    "LOGIN_LIMIT_PER_IP": "20 per 15 minutes",
    "LOGIN_LIMIT_PER_ADDRESS": "10 per 15 minutes",
    "FORM_LIMIT": "10 per hour",
    "BOOKING_LIMIT": "30 per hour",
    # Forms that ask a signed-in person for their password again, per person.
    "REAUTH_LIMIT": "10 per 15 minutes",
}

# Seconds a SQLite connection waits for another process's write lock before giving up
# ("database is locked"): web requests and mail senders share one file.
SQLITE_BUSY_TIMEOUT = 30


def apply_session_defaults(config: dict) -> None:
    """The session cookie lives as long as the absolute session limit, whatever that is."""
    config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=config["SESSION_ABSOLUTE_MINUTES"])


def apply_host_defaults(config: dict) -> None:
    """Outside debug, answer only requests for the configured host (Werkzeug compares host
    names without the port) unless TRUSTED_HOSTS names others."""
    if (
        config.get("TRUSTED_HOSTS") is None
        and not config.get("DEBUG")
        and config.get("SERVER_NAME")
    ):
        config["TRUSTED_HOSTS"] = [config["SERVER_NAME"]]


def apply_database_defaults(config: dict) -> None:
    """Engine options that depend on the final database URL (after test overrides)."""
    url = config.get("SQLALCHEMY_DATABASE_URI") or ""
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    # An error's message, logged or printed, never shows the values a statement was sent
    # with: they may be a live link in an email's body, or what someone wrote about a patient.
    options.setdefault("hide_parameters", True)
    if (
        url.startswith("sqlite")
        and ":memory:" not in url
        and url not in ("sqlite://", "sqlite:///")
    ):
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT)
        options["connect_args"] = connect_args
    config["SQLALCHEMY_ENGINE_OPTIONS"] = options
