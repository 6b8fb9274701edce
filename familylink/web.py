"""Small helpers shared by the blueprints (the web side only; services never import this)."""

from collections.abc import Callable
from datetime import datetime
from functools import wraps

from flask import abort, current_app, request
from flask_login import current_user, login_required

from familylink.models.types import utcnow
from familylink.services.errors import DomainError


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
    target = request.args.get("next", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def _record_denial() -> None:
    """Audit a signed-in person turned away from a page their role may not open."""
    from familylink.extensions import db
    from familylink.services import audit

    audit.record(
        "access.denied",
        actor=current_user,
        outcome="denied",
        detail={"endpoint": request.endpoint},
        now=request_now(),
    )
    db.session.commit()


def form_limit() -> str:
    """The limit of account forms (sign-up, reset, invitations) from the FORM_LIMIT setting."""
    return current_app.config["FORM_LIMIT"]


def booking_limit() -> str:
    """The booking POST rate limit: `@limiter.limit(booking_limit, methods=["POST"])`."""
    return current_app.config["BOOKING_LIMIT"]
