"""Small helpers shared by the blueprints (the web side only; services never import this)."""

import secrets
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from functools import wraps
from urllib.parse import unquote, urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy.exc import OperationalError
from werkzeug.routing import IntegerConverter, ValidationError

from familylink.extensions import db
from familylink.i18n import spoken_locale
from familylink.models.types import utcnow
from familylink.services import audit
from familylink.services.booking.slots import TAKEN
from familylink.services.errors import Conflict, DomainError
from familylink.services.program import get_program


def request_now() -> datetime:
    """The current instant; tests and demos may pin it with the NOW_OVERRIDE setting."""
    override = current_app.config.get("NOW_OVERRIDE")
    return override() if callable(override) else (override or utcnow())


def apply_error(form, error: DomainError) -> None:
    """Show a service's error beside its field, or at the top of the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = list(field.errors) + [error.message]
    else:
        form.form_errors.append(error.message)


def form_status(form) -> int:
    """400 when the form comes back with a message on it, else 200."""
    return 400 if form.errors or form.form_errors else 200


# How many times a call that lost a deadlock or a serialization check is run again before the
# person is told someone else got there first; SQLSTATEs of those two failures.
RETRIES = 3
_CONTENTION = {"40P01", "40001"}


def run(action: Callable, *args, **kwargs):
    """Call a service inside a savepoint: when it raises (a refusal, a 404), whatever it
    changed is undone, and the audit rows of the refusal stay for the request's commit.

    When the database aborts the call for a deadlock (40P01) or a serialization failure
    (40001), the savepoint is rolled back and the whole call runs again, reading afresh (the
    request is READ COMMITTED), up to RETRIES times; then it is refused with TAKEN.

    The request commits once, after the view (see `register_request_hooks`); so no view
    decides whether an audit row survives.
    """
    _begin_sqlite_transaction()
    audit.write_held()  # the page's rows first: the log keeps the order things happened in
    for attempt in range(RETRIES + 1):
        try:
            with audit.keep_refusals(), db.session.begin_nested():
                return action(*args, **kwargs)
        except DomainError as error:
            error.undone = True
            raise
        except OperationalError as error:
            if getattr(error.orig, "sqlstate", None) not in _CONTENTION:
                raise
            if attempt == RETRIES:
                refusal = Conflict(TAKEN)
                refusal.undone = True
                raise refusal from error


def _begin_sqlite_transaction() -> None:
    # pysqlite opens a transaction only before a write, so a SAVEPOINT taken before any
    # write would itself be the transaction, and releasing it would commit the request
    # early. Opening it here keeps "commit once, after the view" true on SQLite too.
    # IMMEDIATE takes the write lock now, waiting its turn (the busy timeout): a deferred
    # BEGIN would read first and then fail at once with "database is locked" when another
    # process had written meanwhile (seen under load at sign-in).
    raw = db.session.connection().connection.dbapi_connection
    if isinstance(raw, sqlite3.Connection) and not raw.in_transaction:
        raw.execute("BEGIN IMMEDIATE")


def try_run(form, action: Callable, *args, **kwargs):
    """`run(action, …)` for a step that only reads (a plan shown before confirming): its
    result, or None with the refusal put beside its field."""
    try:
        return run(action, *args, **kwargs)
    except DomainError as error:
        apply_error(form, error)
        return None


def submit(form, action: Callable, *, redirect_to, message=None):
    """The form shape: on a valid submission run `action(form)` through `run`; a refusal
    goes beside its field (the caller renders the form again, see `form_status`), success
    flashes `message` and redirects. `redirect_to` and `message` may be callables of the
    action's result. Returns the redirect, or None when the form is to be shown again.
    """
    if not form.validate_on_submit():
        return None
    try:
        result = run(action, form)
    except DomainError as error:
        apply_error(form, error)
        return None
    if message:
        flash(message(result) if callable(message) else message, "success")
    return redirect(redirect_to(result) if callable(redirect_to) else redirect_to)


def back_on_refusal(fallback: Callable[..., str]) -> Callable:
    """For a button-only POST: the view runs in a savepoint (see `run`); a refusal is
    flashed and answered by the app's DomainError handler with a 303 to the page the
    button was on, or to `fallback(**view_kwargs)` when the browser did not say.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            g.refusal_fallback = lambda: fallback(**kwargs)
            return run(view, *args, **kwargs)

        return wrapped

    return decorator


def refusal_target() -> str:
    """Where a refused button-only POST goes back to: a same-host Referer, else the view's
    fallback, else home."""
    referer = urlsplit(request.referrer or "")
    if referer.netloc == request.host:
        target = local_target(referer.path + (f"?{referer.query}" if referer.query else ""))
        if target is not None:
            return target
    fallback = g.get("refusal_fallback")
    return fallback() if fallback else "/"


# Every table's id is an INTEGER: 2^31-1 is PostgreSQL's largest, and a larger number can
# only be a wrong or hostile one (SQLite would overflow past 2^63 and answer 500).
MAX_ID = 2**31 - 1
_MAX_ID_DIGITS = len(str(MAX_ID))


def as_id(value) -> int | None:
    """`value` (text from a URL, query or form) as an id of 1..MAX_ID, else None."""
    text = str(value).strip() if value is not None else ""
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_ID_DIGITS:
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def query_id(name: str) -> int | None:
    """The id in ?name= (1..MAX_ID), or None when it is missing or could be no id at all."""
    return as_id(request.args.get(name))


class IdConverter(IntegerConverter):
    """Replaces Flask's `int` converter for every route: a path id outside 1..MAX_ID is
    "no such page" (404) before any view or query sees it."""

    regex = rf"\d{{1,{_MAX_ID_DIGITS}}}"

    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, min=1, max=MAX_ID)

    def to_python(self, value: str) -> int:
        number = as_id(value)
        if number is None:
            raise ValidationError()
        return number


class IdLinks:
    """The address of one action for any of many rows: `IdLinks(endpoint, "seat_id", **values)`
    called with a row's id gives `url_for(endpoint, seat_id=id, **values)`.

    The address is routed once, on the first call, with an id no row has (past MAX_ID), and
    each row's id is put in that path segment: a page that offers the same action on every
    row (the calendar's seats) routes it once, not once per row. Raises ValueError when the
    id is not a whole segment of the path (a route it cannot serve)."""

    __slots__ = ("_endpoint", "_name", "_values", "_parts")
    _PLACE = f"/{MAX_ID + 1}/"

    def __init__(self, endpoint: str, name: str, **values):
        self._endpoint, self._name, self._values = endpoint, name, values
        self._parts: tuple[str, str] | None = None

    def __call__(self, id_: int) -> str:
        if self._parts is None:
            built = url_for(self._endpoint, **{self._name: MAX_ID + 1}, **self._values)
            path, query = built.split("?", 1) if "?" in built else (built, None)
            head, found, tail = path.partition(self._PLACE)
            if not found:
                raise ValueError(f"{self._endpoint}: {self._name} is not a path segment")
            self._parts = (head + "/", "/" + tail + ("?" + query if query is not None else ""))
        return f"{self._parts[0]}{int(id_)}{self._parts[1]}"


# Dates people may type or pass: anything outside is a typo or an attack, and near the ends
# of Python's range a date shifted into a time zone or by a week would overflow.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2100, 12, 31)
DATE_OUT_OF_RANGE = _l("Enter a date between 1900-01-01 and 2100-12-31, like 2026-11-02.")


def in_date_range(day: date) -> bool:
    return FIRST_DAY <= day <= LAST_DAY


def parse_day(text) -> date | None:
    """THE parser of a date typed or passed as YYYY-MM-DD: the date, or None when it is not
    one or lies outside FIRST_DAY..LAST_DAY."""
    if not isinstance(text, str) or len(text.strip()) != 10:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return day if in_date_range(day) else None


def role_required(*roles: str) -> Callable:
    """Signed in with one of these roles; any other signed-in person gets 404, not a hint."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                _record_denial()
                abort(404)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def safe_next(default: str) -> str:
    """The ?next= target when it is a local path, else the default."""
    target = local_target(request.args.get("next"))
    return default if target is None else target


# Enough rounds to see through double and triple encoding; a target still encoded after
# that is refused rather than trusted.
_DECODE_ROUNDS = 4


def local_target(target: str | None) -> str | None:
    """THE check for every redirect to a user-given place (?next=, the Referer): `target`
    when it is a path on this site, else None.

    Browsers and Werkzeug forgive a lot (they drop tabs and newlines, read a backslash as a
    slash, fold a full-width solidus into "/"), so anything they might read as another host
    is refused, in the text as sent and in every percent-decoded form of it: printable ASCII
    only, no space or backslash, one leading "/", and no scheme or host after `urlsplit`.
    """
    if not isinstance(target, str) or not target:
        return None
    form = target
    for _ in range(_DECODE_ROUNDS):
        if not _plain_local_path(form):
            return None
        try:
            decoded = unquote(form, errors="strict")
        except UnicodeDecodeError:
            return None
        if decoded == form:
            return target
        form = decoded
    return None


def _plain_local_path(form: str) -> bool:
    # ASCII only: no unicode slash, full-width solidus or invisible character gets through.
    if not form.isascii() or not form.isprintable() or " " in form or "\\" in form:
        return False
    if not form.startswith("/") or form.startswith("//"):
        return False
    parts = urlsplit(form)
    return not parts.scheme and not parts.netloc


def _record_denial() -> None:
    """Audit a signed-in person turned away from a page their role may not open."""
    audit.record(
        "access.denied",
        actor=current_user,
        outcome="denied",
        detail={"endpoint": request.endpoint},
        now=request_now(),
    )


def form_limit() -> str:
    """The limit of account forms (sign-up, reset, invitations) from the FORM_LIMIT setting."""
    return current_app.config["FORM_LIMIT"]


def booking_limit() -> str:
    """The booking POST rate limit: `@limiter.limit(booking_limit, methods=["POST"])`."""
    return current_app.config["BOOKING_LIMIT"]


def reauth_limit() -> str:
    """The rate limit of every form that asks a signed-in person for their password again."""
    return current_app.config["REAUTH_LIMIT"]


def signed_in_key() -> str:
    """A rate-limit key per signed-in person (whatever their address), for `reauth_limit`."""
    return f"user:{current_user.get_id()}"


# Parts of pages as rendered, by template and what the part depends on (see `rendered_once`).
_rendered_parts: dict[tuple, Markup] = {}
# Stands for the request's CSRF token in a kept part: random in each process, so no words a
# part shows (a program name an admin typed) can be mistaken for it.
_TOKEN_STAND_IN = secrets.token_urlsafe(24)


def rendered_once(template: str, *depends_on) -> Markup:
    """`template` rendered once per language, program setting (name, after-hours number),
    path the app is served under and `depends_on` (a role), then kept for the process.

    Only for words and links that are the same for everyone who shares that key: never a
    person's name or data. A form's CSRF token (`csrf_token()`, which belongs to one
    session) is kept as a stand-in and each use puts in the request's own token."""
    program = get_program()
    key = (
        template,
        str(spoken_locale()),
        request.script_root,
        program.name,
        program.after_hours_phone,
        *depends_on,
    )
    block = _rendered_parts.get(key)
    if block is None:
        if len(_rendered_parts) > 64:  # a few parts, languages and roles, settings tried
            _rendered_parts.clear()
        written = render_template(template, csrf_token=lambda: _TOKEN_STAND_IN)
        block = _rendered_parts[key] = Markup(written)  # noqa: S704
    if _TOKEN_STAND_IN in block:
        return block.replace(_TOKEN_STAND_IN, generate_csrf())
    return block


def crisis_numbers() -> Markup:
    """The crisis numbers (`_crisis.html`): the same words on every module page, where
    rendering them was about a tenth of the page."""
    return rendered_once("_crisis.html")
