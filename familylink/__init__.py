"""FamilyLink: the family side of intensive outpatient care."""

import logging
import secrets
import sys
import time
import uuid
from collections import ChainMap
from collections.abc import Callable
from pathlib import Path

from flask import Flask, g, request
from flask.globals import _cv_request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.templating import Environment
from itsdangerous import BadSignature, URLSafeTimedSerializer

from familylink import config as settings
from familylink.extensions import babel, csrf, db, limiter, login_manager, mail

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigurationError(RuntimeError):
    pass


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, its signer made once per secret key rather than once
    per request (each request made the same object again); a changed
    SECRET_KEY or SECRET_KEY_FALLBACKS gets a signer of its own.

    A cookie's signature is checked once per process: the exact text of a cookie that
    passed is remembered with the time it was signed, so the next request with it checks
    only its age and reads its contents afresh (each request its own dict: flashes are
    lists changed in place)."""

    def __init__(self):
        self._signers: dict[tuple, URLSafeTimedSerializer | None] = {}
        self._signed_at: dict[tuple, int] = {}

    def open_session(self, app: Flask, request) -> SecureCookieSession | None:
        signer = self.get_signing_serializer(app)
        if signer is None:
            return None
        text = request.cookies.get(self.get_cookie_name(app))
        if not text:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        key = (signer, text)
        signed_at = self._signed_at.get(key)
        try:
            if signed_at is None:
                data, moment = signer.loads(text, max_age=max_age, return_timestamp=True)
                if len(self._signed_at) >= 1024:  # at most a worker's recent visitors
                    self._signed_at.clear()
                self._signed_at[key] = int(moment.timestamp())
                return self.session_class(data)
        except BadSignature:
            return self.session_class()
        age = int(time.time()) - signed_at
        if age > max_age or age < 0:  # as itsdangerous refuses it: expired, or from ahead
            del self._signed_at[key]
            return self.session_class()
        return self.session_class(signer.load_payload(text.rsplit(".", 2)[0].encode()))

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        signer = self._signers.get(keys)
        if signer is None:
            if len(self._signers) > 4:  # keys rotated while serving: keep only the new ones
                self._signers.clear()
            signer = self._signers[keys] = super().get_signing_serializer(app)
        return signer


class TemplateGlobals(ChainMap):
    """A template's globals over the environment's, as Jinja's own ChainMap, whose names are
    given as a set: each `{% import %}` and `{% from … import %}` takes the difference of the
    importing template's names and these (Jinja's `_get_default_module`), which through
    ChainMap's keys view was one Python-level look-up per global, each render."""

    def keys(self):
        return set().union(*self.maps)


class Templates(Environment):
    """Flask's Jinja environment, whose templates' globals are `TemplateGlobals`."""

    def make_globals(self, d):
        return TemplateGlobals({} if d is None else d, self.globals)


# The values whose link is remembered (`FamilyLink.url_for`): exactly these types, since
# True and 1 are equal keys but different links, and a lazy text changes with the language.
# No two values of these types are equal, so the values alone are the key.
_PLAIN_VALUES = frozenset({int, str, type(None)})


class FamilyLink(Flask):
    """Flask, whose checks of unsafe settings may wait until the app serves a request."""

    deferred_checks: list[Callable[[Flask], None]]
    session_interface = SessionCookies()
    jinja_environment = Templates

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plain_functions: set = set()
        self._built_urls: dict[tuple, str] = {}

    def wsgi_app(self, environ, start_response):
        # Deferred only for `flask … --help`; should such an app ever be served, the checks
        # refuse before the first request is answered.
        while self.deferred_checks:
            self.deferred_checks.pop(0)(self)
        return super().wsgi_app(environ, start_response)

    def url_for(self, endpoint: str, /, **options) -> str:
        """Flask's link, remembered for the address the app is served under: a page builds a
        dozen links, each a walk through Werkzeug's rules to the same answer as last time.

        Only a request's plain link (a full endpoint name, values that are whole numbers,
        text or None) is remembered; anything else
        (an anchor, a scheme, an external link, a relative endpoint, an app with URL
        defaults) is Flask's own."""
        context = _cv_request.get(None)
        if (
            context is None
            or endpoint[:1] == "."
            or any(self.url_default_functions.values())
            or any(name[:1] == "_" for name in options)
            or any(type(value) not in _PLAIN_VALUES for value in options.values())
        ):
            return super().url_for(endpoint, **options)
        key = (endpoint, context.request.script_root, *options.items())
        built = self._built_urls.get(key)
        if built is None:
            built = super().url_for(endpoint, **options)
            if len(self._built_urls) >= 4096:  # ids in links: keep the recent ones
                self._built_urls.clear()
            self._built_urls[key] = built
        return built

    def ensure_sync(self, func):
        """Flask's own answer, remembered: Flask asks it of every request hook, view and
        handler on every request (each answer a walk through `inspect`), and a
        function that is not a coroutine function never becomes one."""
        if func in self._plain_functions:
            return func
        synced = super().ensure_sync(func)
        if synced is func:
            if len(self._plain_functions) > 1000:  # should anything pass a new one each time
                self._plain_functions.clear()
            self._plain_functions.add(func)
        return synced


def _built_for_a_command() -> bool:
    """Flask's CLI builds the app inside its click context; gunicorn imports `wsgi` without."""
    import click

    return click.get_current_context(silent=True) is not None


def _only_asking_for_help() -> bool:
    """Flask's CLI builds the app to find a command even when it will only print that
    command's help: `flask --app wsgi mail send --help` must work with no settings at all.
    Click prints the help and exits when `--help` is the last word, whatever came before."""
    return _built_for_a_command() and sys.argv[-1:] == ["--help"]


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app: settings from the environment, then `overrides` (tests pass theirs)."""
    app = FamilyLink(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        instance_path=str(settings.INSTANCE_DIR),
    )
    app.config.update(settings.DEFAULTS)
    app.config.update(settings.from_environment())
    app.config.update(overrides or {})
    settings.apply_database_defaults(app.config)
    settings.apply_session_defaults(app.config)
    settings.apply_host_defaults(app.config)
    _check_database_url(app)  # not deferred: without it not even a command's --help is built
    checks = [
        _check_secret_key,
        _check_server_name,
        _check_dev_mailbox,
        _check_mail_login,
        _check_trusted_proxies,
        _check_secrets_keys,
    ]
    app.deferred_checks = checks if _only_asking_for_help() else []
    if not app.deferred_checks:
        for check in checks:
            check(app)
    apply_proxy_fix(app)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    register_extensions(app)
    register_request_hooks(app)
    register_converters(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_template_helpers(app)
    register_commands(app)
    register_sweeps(app)
    return app


# A shorter key can be guessed offline from one signed session cookie.
MINIMUM_SECRET_KEY_LENGTH = 32


def _check_secret_key(app: Flask) -> None:
    key = app.config.get("SECRET_KEY")
    if app.config.get("DEBUG") or app.config.get("TESTING"):
        if not key:
            app.config["SECRET_KEY"] = secrets.token_hex(32)
        return
    how = (
        "Set it to a long random value, e.g. the output of "
        "`.venv/bin/python -c 'import secrets; print(secrets.token_hex(32))'`."
    )
    if not key:
        raise ConfigurationError(f"SECRET_KEY is not set. {how}")
    if len(key) < MINIMUM_SECRET_KEY_LENGTH:
        raise ConfigurationError(
            f"SECRET_KEY is shorter than {MINIMUM_SECRET_KEY_LENGTH} characters. {how}"
        )


def _check_server_name(app: Flask) -> None:
    # Links in emails are built from SERVER_NAME alone; with none, a production app would
    # send links to 127.0.0.1.
    if app.config.get("SERVER_NAME") or app.config.get("DEBUG") or app.config.get("TESTING"):
        return
    raise ConfigurationError(
        "SERVER_NAME is not set. Set it to the host name people use to reach FamilyLink, "
        "e.g. `SERVER_NAME=family.example-clinic.org`: the links in emails are built from it."
    )


def _check_dev_mailbox(app: Flask) -> None:
    # The dev mailbox shows every email the app writes, live reset links included.
    config = app.config
    if not config.get("DEV_MAILBOX") or config.get("MAIL_SERVER"):
        return
    if config.get("DEBUG") or config.get("TESTING"):
        return
    raise ConfigurationError(
        "DEV_MAILBOX is on without MAIL_SERVER outside debug mode, which would show every "
        "email, with its sign-in links, at /dev/mailbox. Set MAIL_SERVER to your SMTP host "
        "and unset DEV_MAILBOX, or use FLASK_DEBUG=1 on your own machine only."
    )


def _check_mail_login(app: Flask) -> None:
    # An SMTP password sent without TLS can be read by anyone on the way.
    config = app.config
    if not config.get("MAIL_PASSWORD") or config.get("MAIL_USE_TLS") or config.get("MAIL_USE_SSL"):
        return
    if config.get("DEBUG") or config.get("TESTING"):
        return
    raise ConfigurationError(
        "MAIL_PASSWORD is set but neither MAIL_USE_TLS nor MAIL_USE_SSL is on, so the password "
        "would cross the network in clear. Set MAIL_USE_TLS=1 (port 587) or MAIL_USE_SSL=1 "
        "(port 465)."
    )


def _check_secrets_keys(app: Flask) -> None:
    # TOTP secrets are encrypted with these keys; whoever reads them can make sign-in codes.
    from cryptography.fernet import Fernet

    from familylink.models.encryption import dev_key, parse_keys

    keys = parse_keys(app.config.get("SECRETS_KEYS"))
    how = (
        "Make one with `.venv/bin/python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'`; to rotate, put the new key first "
        "(comma-separated, newest first) and run `flask --app wsgi secrets rotate`."
    )
    if not keys:
        if not (app.config.get("DEBUG") or app.config.get("TESTING")):
            raise ConfigurationError(
                "SECRETS_KEYS is not set: it encrypts the two-step sign-in secrets and pasted"
                f" video links. {how}"
            )
        keys = [dev_key()]
    for key in keys:
        try:
            Fernet(key)
        except ValueError:
            raise ConfigurationError(
                f"SECRETS_KEYS holds a value that is not a Fernet key (32 bytes, url-safe "
                f"base64). {how}"
            ) from None
    app.config["SECRETS_KEYS"] = keys


def _check_database_url(app: Flask) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    example = (
        "Give one like `sqlite:////srv/familylink/familylink.db` or "
        "`postgresql://user:password@db-host/familylink`."
    )
    try:
        url = make_url(app.config.get("SQLALCHEMY_DATABASE_URI") or "")
        dialect = url.get_dialect()
    except ArgumentError:  # unparsable, or a database SQLAlchemy has no dialect for
        raise ConfigurationError(
            "DATABASE_URL is not a database address FamilyLink can use (not repeated here: it "
            f"may hold a password). {example}"
        ) from None
    # The schema (an exclusion constraint, partial indexes) and the tests cover these two.
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"DATABASE_URL names {url.get_backend_name()}: FamilyLink runs on SQLite or "
            f"PostgreSQL. {example}"
        )
    try:
        dialect.import_dbapi()
    except ImportError:
        raise ConfigurationError(
            f"The database driver {url.get_driver_name()} that DATABASE_URL names is not "
            f"installed (requirements.txt installs psycopg, for PostgreSQL). {example}"
        ) from None


def _check_trusted_proxies(app: Flask) -> None:
    value = str(app.config.get("TRUSTED_PROXIES") or "0").strip()
    if not (value.isascii() and value.isdigit()) or int(value) > 10:
        raise ConfigurationError(
            f"TRUSTED_PROXIES must be a whole number from 0 to 10, not {value!r}: how many "
            "reverse proxies in front of FamilyLink add X-Forwarded-For and X-Forwarded-Proto "
            "(usually 1; 0 when people reach the app directly)."
        )
    app.config["TRUSTED_PROXIES"] = int(value)


def apply_proxy_fix(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies, take the client's address and scheme from
    the headers those proxies add (rate limits, audit rows, HSTS and Secure cookies see the
    client and https, not the proxy). The host never comes from a header: links are built
    from SERVER_NAME and requests for other hosts are refused."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    proxies = app.config.get("TRUSTED_PROXIES")
    if isinstance(proxies, int) and proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=0)


def register_extensions(app: Flask) -> None:
    from familylink import models  # noqa: F401  (every table known to Alembic)

    db.init_app(app)
    if _built_for_a_command():
        bind_migrations(app)
    mail.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    from flask_babel import lazy_gettext

    from familylink import i18n

    babel.init_app(app, locale_selector=i18n.select_locale)
    i18n.install(app, babel)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please sign in to see that page.")
    login_manager.login_message_category = "info"
    login_manager.localize_callback = str  # flashed as plain text, in the request's language
    # The session row is the control (idle and absolute limits, ended at sign-out and from
    # the account page). Flask-Login's "strong" mode did nothing here: on a permanent session
    # a changed identifier only marks it not fresh, and nothing asks for freshness; and its
    # identifier took the address from X-Forwarded-For whatever TRUSTED_PROXIES says.
    login_manager.session_protection = None


def bind_migrations(app: Flask) -> None:
    """`flask db …` and the migrations' own functions (`flask_migrate.upgrade`), for this app.

    Only a flask command (and the migration tests) binds it: Flask-Migrate imports Alembic and
    Mako, about 11 MB in each process, and a served worker never migrates (issue 19)."""
    from flask_migrate import Migrate

    Migrate(
        app,
        db,
        directory=str(PROJECT_ROOT / "migrations"),
        render_as_batch=True,
        compare_type=True,
    )


# Every response's security headers: (the name as compared, the name, the value).
SECURITY_HEADERS = tuple(
    (name.lower(), name, value)
    for name, value in (
        (
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'",
        ),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
    )
)


def register_request_hooks(app: Flask) -> None:
    from werkzeug.exceptions import SecurityError

    from familylink.services import audit

    @app.before_request
    def refuse_untrusted_hosts():
        # A Host outside TRUSTED_HOSTS: answered before any other hook reads the session.
        if isinstance(request.routing_exception, SecurityError):
            raise request.routing_exception

    @app.before_request
    def remember_origin():
        g.request_id = str(uuid.uuid4())
        audit.set_origin(request.remote_addr, g.request_id)

    @app.teardown_request
    def forget_origin(_exc=None):
        audit.clear_origin()

    # Registered first, so it runs after every other after_request hook has had its say.
    @app.after_request
    def commit_the_request(response):
        # The one commit of a request: what the view changed and the audit rows it recorded.
        # A refused service call has already been undone by its savepoint (web.run); an
        # unexpected error never gets here with a 2xx-4xx: the 500 handler rolled back.
        # A request that never made a session (the anonymous sign-in page) has nothing to
        # commit; making one to commit nothing cost that page about a tenth of its time.
        if not db.session.registry.has():
            return response
        if response.status_code < 500:
            db.session.commit()
        else:
            db.session.rollback()
        return response

    from flask_login import current_user

    @app.after_request
    def security_headers(response):
        headers = response.headers
        # Each said unless the view said otherwise (a link's page: Referrer-Policy
        # no-referrer). One pass over the names the response has: Werkzeug's `setdefault`
        # searches them again, and raises and catches a KeyError, for every header missing.
        said = {name.lower() for name, _value in headers.items()}
        for key, name, value in SECURITY_HEADERS:
            if key not in said:
                headers.add(name, value)
        if request.is_secure and "strict-transport-security" not in said:
            headers.add("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if current_user.is_authenticated:
            headers["Cache-Control"] = "no-store"
        return response

    # Server-side sessions and the staff two-step rule (after the audit origin is set).
    from familylink.auth import guard

    guard.init_app(app)


def register_converters(app: Flask) -> None:
    from familylink.web import IdConverter

    # Every `<int:...>` in a route is an id: out of range, it is a 404, never a query.
    app.url_map.converters["int"] = IdConverter


def register_blueprints(app: Flask) -> None:
    from familylink.account.routes import bp as account_bp
    from familylink.admin.routes import bp as admin_bp
    from familylink.auth.routes import bp as auth_bp
    from familylink.dev.routes import bp as dev_bp
    from familylink.family.routes import bp as family_bp
    from familylink.main.routes import bp as main_bp
    from familylink.patient.routes import bp as patient_bp
    from familylink.therapist.routes import bp as therapist_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(therapist_bp, url_prefix="/therapist")
    app.register_blueprint(patient_bp, url_prefix="/patient")
    app.register_blueprint(family_bp, url_prefix="/family")
    from familylink.learn.routes import bp as learn_bp

    app.register_blueprint(learn_bp, url_prefix="/learn")
    from familylink.booking.room_routes import bp as rooms_bp
    from familylink.booking.routes import bp as booking_bp
    from familylink.booking.therapist_routes import bp as therapist_booking_bp

    app.register_blueprint(booking_bp, url_prefix="/booking")
    # The therapist's booking pages live with booking and keep their /therapist/... paths.
    app.register_blueprint(therapist_booking_bp, url_prefix="/therapist")
    # /join/<token> (in emails and calendar files) and the therapist's room page.
    app.register_blueprint(rooms_bp)
    app.register_blueprint(account_bp, url_prefix="/account")
    from familylink.overview.routes import bp as overview_bp

    app.register_blueprint(overview_bp, url_prefix="/overview")
    if app.config.get("DEV_MAILBOX") and not app.config.get("MAIL_SERVER"):
        app.register_blueprint(dev_bp, url_prefix="/dev")


def _booking_sweep(now):
    from familylink.services.booking import sweep

    sweep(now)


def register_errorhandlers(app: Flask) -> None:
    from flask import flash, redirect, render_template
    from flask_babel import lazy_gettext as _l
    from flask_wtf.csrf import CSRFError
    from werkzeug.exceptions import HTTPException, SecurityError

    from familylink.services.errors import DomainError, NotFound
    from familylink.web import refusal_target

    log = logging.getLogger("familylink")

    def render_error(code: int, title: str, message: str):
        # str(): a lazy string would reach the page unescaped (Flask-Babel's __html__).
        page = render_template(
            "errors/error.html", code=code, title=str(title), message=str(message)
        )
        return page, code

    # Lazy: each page is said in the language of the request it answers.
    messages = {
        400: (_l("Something in that request was not right"), _l("Please go back and try again.")),
        403: (_l("You can't open this page"), _l("Your account does not have access to it.")),
        404: (
            _l("We can't find that page"),
            _l("The link may be old, or the page may have moved."),
        ),
        405: (_l("That didn't work"), _l("Please go back and use the buttons on the page.")),
        413: (_l("That was too much to send"), _l("Please send less text or a smaller file.")),
        429: (
            _l("Please wait a moment"),
            _l("There were too many attempts in a short time. Try again in a few minutes."),
        ),
    }

    @app.errorhandler(SecurityError)
    def untrusted_host(error: SecurityError):
        # No page template: with an untrusted Host no URL can be built for its links.
        said = _l(
            "This server does not answer for that host name. Check the address and try again."
        )
        return str(said), 400, {"Content-Type": "text/plain; charset=utf-8"}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        title, message = messages.get(
            error.code, (_l("Something went wrong"), _l("Please try again."))
        )
        return render_error(error.code or 500, title, message)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return render_error(
            400,
            _l("This form has expired"),
            _l(
                "For your safety, forms stop working after a while. Go back, reload the page "
                "and try again."
            ),
        )

    @app.errorhandler(NotFound)
    def not_found(error: NotFound):
        title, message = messages[404]
        return render_error(404, title, message)

    @app.errorhandler(DomainError)
    def refused(error: DomainError):
        """A button-only POST the rules refused: say why on the page the button was on."""
        if not getattr(error, "undone", False):
            # Not run in a savepoint (web.run): nothing it half-changed may be committed.
            db.session.rollback()
        flash(error.message, "error")
        return redirect(refusal_target(), 303)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error")
        db.session.rollback()
        return render_error(
            500,
            _l("Something went wrong on our side"),
            _l("Nothing was changed. Please try again."),
        )


def register_template_helpers(app: Flask) -> None:
    from flask_login import current_user
    from jinja2 import pass_context

    from familylink.forms import use_html_params
    from familylink.models import Scope
    from familylink.services import attendance
    from familylink.services.consent import REDISCLOSURE_NOTICE
    from familylink.services.program import get_program
    from familylink.services.timefmt import (
        format_clock,
        format_end,
        format_end_date,
        format_local,
        format_local_date,
        wall_clock,
    )

    # Form fields' attributes: WTForms' characters, without a string.Formatter per attribute.
    use_html_params()

    def viewer_zone(context) -> str:
        # The signed-in person as Flask-Login put them in the page's context, read in one
        # step rather than through its proxy; a template without them (macros imported
        # without context) asks the proxy.
        user = context.get("current_user")
        if user is None:
            user = current_user._get_current_object()
        if user is not None and user.is_authenticated:
            return user.timezone
        return get_program().timezone

    @app.template_filter("local")
    @pass_context
    def local_filter(context, instant, zone: str | None = None):
        return format_local(instant, zone or viewer_zone(context))

    @app.template_filter("local_end")
    @pass_context
    def local_end_filter(context, instant, zone: str | None = None):
        """When something ends: a local midnight reads as the end of the day before."""
        return format_end(instant, zone or viewer_zone(context))

    @app.template_filter("local_clock")
    @pass_context
    def local_clock_filter(context, instant, zone: str | None = None):
        """Only the clock time ("9:00 AM"): the week picker names the day and zone once."""
        return format_clock(instant, zone or viewer_zone(context))

    # A weekly window's times ("9:00 AM", "9:00"): wall-clock times of no one day or zone.
    app.add_template_filter(wall_clock, "wall_clock")

    @app.template_filter("local_end_date")
    def local_end_date_filter(instant, zone: str | None = None):
        """The day something ended on, in the program's time (where consent ends are
        midnights, whatever the reader's zone): a midnight reads as the day before."""
        return format_end_date(instant, zone or get_program().timezone)

    @app.template_filter("local_date")
    @pass_context
    def local_date_filter(context, instant, zone: str | None = None):
        return format_local_date(instant, zone or viewer_zone(context))

    from familylink.forms import checkbox_items, form_field, hidden_input
    from familylink.web import IdLinks, crisis_numbers, rendered_once

    # Every form field, `{{ field(f) }}`: one Python call, not a macro.
    app.jinja_env.globals["field"] = form_field
    # Each box of the `checkboxes` macro, `{{ f|checkbox_items }}`: one Python call a group,
    # not WTForms' field and label a box (a filter: each global adds to every import).
    app.add_template_filter(checkbox_items, "checkbox_items")
    # A hidden field, `{{ form.csrf_token|hidden_input }}`: as WTForms writes it, in one call.
    app.add_template_filter(hidden_input, "hidden_input")

    app.jinja_env.globals["crisis_numbers"] = crisis_numbers
    # The menu and the footer's words, rendered once per language, role and settings.
    app.jinja_env.globals["rendered_once"] = rendered_once
    # One action's address for every row of a page, routed once (the calendar's seats).
    app.jinja_env.globals["id_links"] = IdLinks
    # Templates name each scope by its own words (the consent form's), not by copies of them.
    app.jinja_env.globals["Scope"] = Scope
    # The §2.32 notice in the language of the moment (`templates/family/_redisclosure.html`).
    app.jinja_env.globals["redisclosure_notice_text"] = lambda: str(REDISCLOSURE_NOTICE)
    # A family member's weekly program attendance, in the words the service chooses.
    app.jinja_env.globals.update(
        week_label=attendance.week_label, week_sentence=attendance.week_sentence
    )

    @app.context_processor
    def inject_program():
        return {"program": get_program()}

    # `<html lang>` and the language switch: the language this response speaks.
    from familylink.i18n import LANGUAGES, first_word, greeting, normalise, spoken_locale

    app.jinja_env.filters["first_word"] = first_word

    app.jinja_env.globals.update(
        html_lang=lambda: normalise(str(spoken_locale())), LANGUAGES=LANGUAGES, greeting=greeting
    )


def register_commands(app: Flask) -> None:
    from familylink.cli import register

    register(app)


def register_sweeps(app: Flask) -> None:
    """Work the mail worker runs before each delivery pass, in this order: consents that
    ended are closed before anything is released to the people they covered.
    """
    from familylink.cli import run_consent_sweep
    from familylink.services import learning, mail

    # The one place that tells the sender whose consent still holds (the mail code imports
    # no domain rule, and refuses to send without this).
    from familylink.services.access import recipients_allowed

    app.extensions[mail.CONSENT_CHECK] = recipients_allowed

    sweeps = app.extensions.setdefault("familylink_sweeps", [])
    from familylink.services.booking.rooms import forget_ended_room_links

    sweeps.extend(
        [run_consent_sweep, _booking_sweep, forget_ended_room_links, learning.release_due]
    )
    from familylink.services import reminders, tokens

    sweeps.append(reminders.run_sweep)
    # Last: emails too late to be useful (a failed one too) keep nothing of their message,
    # and expired account links (a reset, an invitation) open nothing and keep an address.
    sweeps.extend([mail.expire_unsent, tokens.purge_expired])
