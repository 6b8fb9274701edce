"""The audit log: one append-only row for every sign-in, disclosure and change.

The web layer sets where a request comes from (IP, request id) once per request; services
call `record` without knowing about requests.
"""

from contextvars import ContextVar
from datetime import datetime

from familylink.extensions import db
from familylink.models import AuditEvent, User
from familylink.models.types import utcnow

_origin: ContextVar[dict | None] = ContextVar("audit_origin", default=None)

# Keys never written to the log, whatever a caller passes in `detail`.
_SECRET_KEYS = {"password", "token", "session", "session_id", "csrf_token", "secret"}


def set_origin(ip: str | None, request_id: str | None) -> None:
    _origin.set({"ip": ip, "request_id": request_id})


def clear_origin() -> None:
    _origin.set(None)


def record(
    action: str,
    *,
    actor: User | None = None,
    patient_id: int | None = None,
    recipient_id: int | None = None,
    obj=None,
    object_type: str | None = None,
    object_id: int | None = None,
    outcome: str = "success",
    detail: dict | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Add an audit row to the session (flushed with the caller's transaction)."""
    origin = _origin.get() or {}
    if obj is not None:
        object_type = object_type or obj.__tablename__
        object_id = object_id if object_id is not None else obj.id
    clean_detail = {k: v for k, v in (detail or {}).items() if k.lower() not in _SECRET_KEYS}
    event = AuditEvent(
        at=now or utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_role=actor.role if actor is not None else None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        patient_id=patient_id,
        recipient_id=recipient_id,
        outcome=outcome,
        ip=origin.get("ip"),
        request_id=origin.get("request_id"),
        detail=clean_detail or None,
    )
    db.session.add(event)
    return event
