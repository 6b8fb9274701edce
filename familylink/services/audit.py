"""The audit log: one append-only row for every sign-in, disclosure and change.

The web layer sets where a request comes from (IP, request id) once per request; services
call `record` without knowing about requests.
"""

import functools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from sqlalchemy import Connection, Update, bindparam, event, insert, or_, select
from sqlalchemy.orm import Session, SessionTransaction

from familylink.extensions import db
from familylink.models import AuditEvent, User
from familylink.models.types import utcnow
from familylink.services.bulk import insert_rows

_origin: ContextVar[dict | None] = ContextVar("audit_origin", default=None)
# The values of refusal rows (outcome other than "success") recorded inside `keep_refusals`.
_refusals: ContextVar[list[dict] | None] = ContextVar("audit_refusals", default=None)

# Where a session keeps the rows `record_many` holds for its commit (Session.info).
_HELD = "audit_rows_held"

# Keys never written to the log, whatever a caller passes in `detail`, at any depth.
_SECRET_KEYS = {"password", "token", "session", "session_id", "csrf_token", "secret"}


def _without_secrets(value):
    """`value` with every secret key left out, in nested dicts and lists too: a caller that
    logs a form or a list of changes must not carry a password one level down."""
    if isinstance(value, dict):
        return {
            key: _without_secrets(item)
            for key, item in value.items()
            if str(key).lower() not in _SECRET_KEYS
        }
    if isinstance(value, list | tuple):
        return [_without_secrets(item) for item in value]
    return value


def set_origin(ip: str | None, request_id: str | None) -> None:
    _origin.set({"ip": ip, "request_id": request_id})


def clear_origin() -> None:
    _origin.set(None)


def values(
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
) -> dict:
    """The column values of one audit row: the request's origin, and `detail` without any
    secret key."""
    origin = _origin.get() or {}
    if obj is not None:
        object_type = object_type or obj.__tablename__
        object_id = object_id if object_id is not None else obj.id
    clean_detail = _without_secrets(detail or {})
    return {
        "at": now or utcnow(),
        "actor_id": actor.id if actor is not None else None,
        "actor_role": actor.role if actor is not None else None,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "patient_id": patient_id,
        "recipient_id": recipient_id,
        "outcome": outcome,
        "ip": origin.get("ip"),
        "request_id": origin.get("request_id"),
        "detail": clean_detail or None,
    }


def record(action: str, **fields) -> AuditEvent:
    """Add an audit row to the session (flushed with the caller's transaction); `fields`
    are those of `values`."""
    return _add(**values(action, **fields))


def record_about(action: str, obj, **fields) -> AuditEvent:
    """Audit an event about one of a patient's records (a consent, a seat, an email...):
    the row names the record and the patient it belongs to."""
    return record(action, obj=obj, patient_id=obj.patient_id, **fields)


def record_many(
    rows: list[dict], *, connection: Connection | None = None, at_once: bool = False
) -> None:
    """Write audit rows made by `values` in one INSERT in the caller's transaction, no ORM
    objects: for the pages' view rows, the sweeps, whose rows come by the thousand, and the
    mail sender. The rows are those `record` would write, each with its own insert_key.

    On the session and outside any savepoint (a page's rows of what it showed, a sweep's),
    the rows are held and INSERTed just before the session commits, and dropped if it rolls
    back: the same transaction, but on SQLite the write lock is then not held while the page
    renders. In a savepoint (an action in `web.run`) they are written at once, so a refusal's
    rows survive its rollback (`keep_refusals`). `at_once`: written now wherever it is, as
    `record`'s row is flushed (a change's own row, which the caller may read back)."""
    if not rows:
        return
    refusals = _refusals.get()
    if refusals is not None:
        refusals.extend(row for row in rows if row["outcome"] != "success")
    keyed = [{**row, "insert_key": uuid.uuid4()} for row in rows]
    if connection is None:
        session = db.session()
        if refusals is None and not at_once and not session.in_nested_transaction():
            if not session.in_transaction():
                session.begin()  # whose end, commit or rollback, the rows go with
            session.info.setdefault(_HELD, []).extend(keyed)
            return
        write_held(session)  # rows held before this savepoint come first in the log
        session.flush()  # the session's transaction, after the rows they refer to
        connection = session.connection()
    insert_rows(connection, AuditEvent.__table__, keyed)


def record_each(change: Update, params: dict, row: dict, *, connection: Connection) -> int:
    """Run `change` (an UPDATE … RETURNING, on PostgreSQL) with `params` and write `row` (made
    by `values`, given its own insert_key) once for each row it changed, in one statement:
    a change and its audit row in one round trip, and no audit row if nothing changed.
    Returns how many were written."""
    keyed = {**row, "insert_key": uuid.uuid4()}
    audited = {f"audit_{name}": value for name, value in keyed.items()}
    return connection.execute(_for_each(change, tuple(keyed)), params | audited).rowcount


@functools.cache
def _for_each(change: Update, names: tuple[str, ...]):
    table = AuditEvent.__table__
    row = select(*(bindparam(f"audit_{name}", type_=table.c[name].type) for name in names))
    statement = insert(table).from_select(names, row.select_from(change.cte()))
    return statement.execution_options(preserve_rowcount=True)  # PostgreSQL's INSERT count


def write_held(session: Session | None = None) -> None:
    """INSERT the rows `record_many` held for the session's commit, now (before an action
    starts, so the log keeps the order things happened in; before the log is read)."""
    session = session or db.session()
    held = session.info.pop(_HELD, None)
    if held:
        session.flush()
        insert_rows(session.connection(), AuditEvent.__table__, held)


@event.listens_for(Session, "before_commit")
def _write_held_at_commit(session: Session) -> None:
    # Every commit, the request's, a command's, a sweep's or a test's: the held rows go in
    # with the transaction they belong to (a savepoint's release writes them too: the same
    # transaction).
    write_held(session)


@event.listens_for(Session, "after_transaction_end")
def _drop_held_at_end(session: Session, transaction: SessionTransaction) -> None:
    # The transaction is over: committed (written above) or rolled back (dropped with it).
    if transaction.parent is None:
        session.info.pop(_HELD, None)


def _add(**values) -> AuditEvent:
    row = AuditEvent(**values)
    db.session.add(row)
    refusals = _refusals.get()
    if refusals is not None and values["outcome"] != "success":
        refusals.append(values)
    return row


@contextmanager
def keep_refusals() -> Iterator[None]:
    """Around a savepoint that a refusal rolls back: the refusal's own audit rows (a failed
    sign-in, a denied access) are added again after the rollback, so they are not lost with
    the changes they refused.

    Use it outside the savepoint: `with keep_refusals(), db.session.begin_nested(): ...`.
    """
    refusals: list[dict] = []
    token = _refusals.set(refusals)
    try:
        yield
    except BaseException:
        _refusals.reset(token)
        # Re-added through `_add`, so an enclosing keep_refusals keeps them too.
        for values in refusals:
            _add(**values)
        raise
    else:
        _refusals.reset(token)
        # Kept by the savepoint: an enclosing keep_refusals must know them for its own rollback.
        outer = _refusals.get()
        if outer is not None:
            outer.extend(refusals)


def patient_view_values(
    actor: User, patient_ids, *, page: str, now: datetime | None = None
) -> list[dict]:
    """The rows of `record_patient_views`, for a caller that writes them with others."""
    return [
        values("patient_data.viewed", actor=actor, patient_id=pid, detail={"page": page}, now=now)
        for pid in sorted(set(patient_ids))
    ]


def record_patient_views(
    actor: User, patient_ids, *, page: str, now: datetime | None = None
) -> None:
    """One "patient_data.viewed" row per distinct patient shown on a page, written at once
    in the caller's transaction (`record_many`: every page writes these, and the ORM's unit
    of work cost more than the INSERT itself)."""
    record_many(patient_view_values(actor, patient_ids, page=page, now=now))


def disclosure_values(member: User, patient_id: int, *, what: str, now: datetime, obj=None):
    """The row of a family member being shown `what` about a patient ("disclosure.viewed";
    the patient's "what was shared" page lists them)."""
    return values(
        "disclosure.viewed",
        actor=member,
        patient_id=patient_id,
        recipient_id=member.id,
        obj=obj,
        detail={"what": what},
        now=now,
    )


def record_disclosures(member: User, patient_ids, *, what: str, now: datetime, obj=None) -> None:
    """One "disclosure.viewed" row per distinct patient whose data a family member was shown,
    written at once like the page views above."""
    record_many(
        [
            disclosure_values(member, pid, what=what, now=now, obj=obj)
            for pid in sorted(set(patient_ids))
        ]
    )


def search(
    *,
    actor: User | None = None,
    actor_missing: bool = False,
    patient_id: int | None = None,
    action: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = 200,
) -> list[AuditEvent]:
    """Audit rows matching every filter given, newest first.

    `action` matches a whole action or its prefix ("auth." finds every sign-in event);
    `start` is inclusive, `end` exclusive. An `actor_missing` search (an address with no
    account) finds nothing rather than everything.
    """
    write_held()  # the rows this transaction recorded are part of the log it shows
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if actor_missing:
        return []
    if actor is not None:
        query = query.where(AuditEvent.actor_id == actor.id)
    if patient_id is not None:
        query = query.where(AuditEvent.patient_id == patient_id)
    if action:
        query = query.where(
            or_(AuditEvent.action == action, AuditEvent.action.startswith(action, autoescape=True))
        )
    if start is not None:
        query = query.where(AuditEvent.at >= start)
    if end is not None:
        query = query.where(AuditEvent.at < end)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def look_up(viewer: User, *, now: datetime, exported: bool = False, **filters) -> list[AuditEvent]:
    """`search` for an admin's page ("audit.viewed") or CSV file ("audit.exported"), recorded
    with what was asked: a patient's whole access history is patient-linked, so the row
    names the patient searched for (when one has that id), the other filters in `detail`.
    Any other patient a row found names is shown too: a "patient_data.viewed" row each."""
    events = search(**filters)
    asked = {name: filters.get(name) for name in ("action", "start", "end")}
    asked["actor_id"] = filters["actor"].id if filters.get("actor") is not None else None
    patient_id = filters.get("patient_id")
    if patient_id is not None and db.session.get(User, patient_id) is None:
        asked["patient_id"], patient_id = patient_id, None  # no such account to name
    record(
        "audit.exported" if exported else "audit.viewed",
        actor=viewer,
        patient_id=patient_id,
        detail={k: str(v) for k, v in asked.items() if v is not None} | {"rows": len(events)},
        now=now,
    )
    named = {event.patient_id for event in events if event.patient_id is not None}
    record_patient_views(viewer, named - {patient_id}, page="audit log", now=now)
    return events


def csv_cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + text
    return text
