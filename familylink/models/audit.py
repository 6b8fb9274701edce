"""The append-only audit log."""

import uuid
from datetime import datetime

from sqlalchemy import DDL, JSON, ForeignKey, String, Uuid, event, insert_sentinel
from sqlalchemy.orm import Mapped, mapped_column

from familylink.extensions import db
from familylink.models.types import UTCDateTime, utcnow


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[int | None]
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # For disclosures: the family member the patient's information went to.
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(20), default="success")
    ip: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(36))
    detail: Mapped[dict | None] = mapped_column(JSON)
    # Lets SQLite write a page's audit rows in one INSERT (PostgreSQL does so anyway): the
    # ORM batches only when it can match returned ids to rows.
    insert_key: Mapped[uuid.UUID] = insert_sentinel("insert_key", Uuid(), default=uuid.uuid4)


# Append-only on PostgreSQL: a trigger refuses UPDATE and DELETE of any row. The migration
# creates the same trigger; this listener covers schemas made by create_all (the tests).
APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_events_append_only
BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
"""

event.listen(
    AuditEvent.__table__,
    "after_create",
    DDL(APPEND_ONLY_FUNCTION).execute_if(dialect="postgresql"),
)
event.listen(
    AuditEvent.__table__,
    "after_create",
    DDL(APPEND_ONLY_TRIGGER).execute_if(dialect="postgresql"),
)
