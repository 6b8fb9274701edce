"""What can be booked: session types (admin and therapist) and each therapist's
availability windows and one-day overrides."""

from __future__ import annotations

from datetime import date, datetime, time

from flask_babel import gettext as _
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AvailabilityOverride, AvailabilityWindow, Role, SessionType, User
from familylink.services import audit, screening
from familylink.services.booking.slots import LONGEST_SESSION_MINUTES
from familylink.services.errors import NotFound, ValidationError

# --- Session types -------------------------------------------------------------------------


# The booking page lists them on every request: built once (it has no parameter at all).
_PRIVATE_SESSION_TYPES = (
    select(SessionType)
    .where(SessionType.active.is_(True), SessionType.capacity == 1)
    .order_by(SessionType.name)
)


def private_session_types() -> list[SessionType]:
    return list(db.session.scalars(_PRIVATE_SESSION_TYPES))


def all_session_types() -> list[SessionType]:
    return list(
        db.session.scalars(
            select(SessionType).where(SessionType.active.is_(True)).order_by(SessionType.name)
        )
    )


def every_session_type() -> list[SessionType]:
    """Active and inactive, for the admin page."""
    return list(
        db.session.scalars(
            select(SessionType).order_by(SessionType.active.desc(), SessionType.name)
        )
    )


def bookable_type(session_type_id: int, *, group: bool) -> SessionType:
    """An active session type of that kind (group or private), for a new booking or group."""
    session_type = db.session.get(SessionType, session_type_id)
    if session_type is None or not session_type.active or session_type.is_group != group:
        raise ValidationError(_("Choose a session type from the list."), field="session_type")
    return session_type


def add_session_type(*, actor: User, now: datetime, **details) -> SessionType:
    """A new active session type; `details` are those of `_checked_fields`."""
    if actor.role not in (Role.THERAPIST, Role.ADMIN):
        raise NotFound()
    fields = _checked_fields(**details)
    session_type = SessionType(**fields, active=True)
    db.session.add(session_type)
    db.session.flush()
    audit.record("session_type.added", actor=actor, obj=session_type, now=now)
    _audit_confirmed_words(actor, session_type, now=now)
    return session_type


def _audit_confirmed_words(actor: User, session_type: SessionType, *, now: datetime) -> None:
    """A location saved with clinical words its author confirmed: which field, which words."""
    words = screening.clinical_words(session_type.location or "")
    if words:
        audit.record(
            "screening.confirmed",
            actor=actor,
            obj=session_type,
            detail={"field": "location", "words": list(words)},
            now=now,
        )


def _checked_fields(
    *,
    name: str,
    duration_minutes: int,
    capacity: int,
    mode: str,
    location: str | None,
    cancellation_window_hours: int | None,
    location_confirmed: tuple[str, ...] = (),
) -> dict:
    """A session type's columns from a form, or ValidationError naming the field: the same
    rules whether it is added or changed. `location_confirmed`: the clinical words in the
    location that the person saw and chose to keep (a real address such as "Recovery
    Drive"); see `screening.screen`. Name and location can reach emails and calendar
    files, so each goes through the one screen. A video type has no link of its own: each
    session gets its own room (`booking.rooms`)."""
    if not (name or "").strip():
        raise ValidationError(_("Give the session type a name."), field="name")
    name = screening.screen(name, field="name")
    location = screening.screen(location, field="location", confirmed=location_confirmed)
    if duration_minutes is None or not 10 <= duration_minutes <= LONGEST_SESSION_MINUTES:
        raise ValidationError(
            _("Use 10 to %(most)d minutes.", most=LONGEST_SESSION_MINUTES),
            field="duration_minutes",
        )
    if capacity is None or not 1 <= capacity <= 50:
        raise ValidationError(_("Use 1 (one family) to 50 families."), field="capacity")
    if mode not in ("in_person", "video"):
        raise ValidationError(_("Choose in person or video."), field="mode")
    if cancellation_window_hours is not None and not 0 <= cancellation_window_hours <= 336:
        raise ValidationError(_("Use 0 to 336 hours."), field="cancellation_window_hours")
    return {
        "name": name,
        "duration_minutes": duration_minutes,
        "capacity": capacity,
        "mode": mode,
        "location": location or None,
        "cancellation_window_hours": cancellation_window_hours,
    }


def session_type_for_admin(actor: User, session_type_id: int) -> SessionType:
    session_type = db.session.get(SessionType, session_type_id)
    if actor.role != Role.ADMIN or session_type is None:
        raise NotFound()
    return session_type


def update_session_type(
    *, actor: User, session_type_id: int, now: datetime, **details
) -> SessionType:
    """Change a session type (admin). Booked appointments keep their times and capacity; a
    private type stays private and a group type stays a group (make a new type instead).
    `details` are those of `_checked_fields`."""
    session_type = session_type_for_admin(actor, session_type_id)
    fields = _checked_fields(**details)
    if (fields["capacity"] > 1) != session_type.is_group:
        raise ValidationError(
            _(
                "A private session type can't become a group, or a group private. "
                "Add a new session type instead."
            ),
            field="capacity",
        )
    before = {
        "name": session_type.name,
        "duration_minutes": session_type.duration_minutes,
        "capacity": session_type.capacity,
        "mode": session_type.mode,
    }
    for column, value in fields.items():
        setattr(session_type, column, value)
    db.session.flush()
    audit.record("session_type.changed", actor=actor, obj=session_type, detail=before, now=now)
    _audit_confirmed_words(actor, session_type, now=now)
    return session_type


def set_session_type_active(
    *, actor: User, session_type_id: int, active: bool, now: datetime
) -> SessionType:
    """Deactivate (no new bookings or groups; booked ones go ahead) or reactivate a type."""
    session_type = session_type_for_admin(actor, session_type_id)
    session_type.active = active
    db.session.flush()
    audit.record(
        "session_type.activated" if active else "session_type.deactivated",
        actor=actor,
        obj=session_type,
        now=now,
    )
    return session_type


# --- Availability (therapist) ----------------------------------------------------------------


def _check_span(start: time | None, end: time | None) -> None:
    if start is None or end is None or start >= end:
        raise ValidationError(_("The end time must be after the start time."), field="end_time")


def add_window(*, actor: User, weekday: int, start: time, end: time, now: datetime):
    if actor.role != Role.THERAPIST:
        raise NotFound()
    if weekday not in range(7):
        raise ValidationError(_("Choose a day of the week."), field="weekday")
    _check_span(start, end)
    window = AvailabilityWindow(
        therapist_id=actor.id, weekday=weekday, start_time=start, end_time=end
    )
    db.session.add(window)
    db.session.flush()
    audit.record("availability.added", actor=actor, obj=window, now=now)
    return window


def add_override(
    *, actor: User, day: date, off: bool, start: time | None, end: time | None, now: datetime
):
    if actor.role != Role.THERAPIST:
        raise NotFound()
    if not off or start or end:
        _check_span(start, end)
    override = AvailabilityOverride(
        therapist_id=actor.id, day=day, off=off, start_time=start, end_time=end
    )
    db.session.add(override)
    db.session.flush()
    audit.record("availability.override_added", actor=actor, obj=override, now=now)
    return override


def remove_availability(*, actor: User, kind: str, item_id: int, now: datetime) -> None:
    model = {"window": AvailabilityWindow, "override": AvailabilityOverride}.get(kind)
    item = db.session.get(model, item_id) if model else None
    if item is None or item.therapist_id != actor.id:
        raise NotFound()
    audit.record("availability.removed", actor=actor, obj=item, now=now)
    db.session.delete(item)
    db.session.flush()
