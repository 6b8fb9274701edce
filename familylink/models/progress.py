"""Progress updates: short, plain notes a therapist writes for a patient's family, released
only once the patient has approved the exact text (DESIGN.md, the `progress` scope).

A `ProgressUpdate` is one update about one patient; each text the therapist writes is a
`ProgressUpdateVersion`, never changed afterwards, so the patient approves one exact version
(its `approved_at`) and a later revision cannot slip past them. `ProgressUpdateRecipient`
names each family member it is for; `released_at` is set only for those whose consent covered
the progress scope at the moment of release, and `withdrawn_at` once their access about the
patient ends (a later consent does not show it again). Reading it later still goes through
the gate.
"""

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from familylink.extensions import db
from familylink.models.types import LabelledEnum, TextVersionColumns, UTCDateTime, utcnow


class UpdateStatus(LabelledEnum):
    """Where an update stands, with the words staff and the patient see for it."""

    # The newest version waits for the patient.
    AWAITING_PATIENT = "awaiting_patient", _l("Waiting for the patient to read it")
    # The patient asked the therapist to revise it.
    CHANGES_REQUESTED = "changes_requested", _l("The patient asked for changes")
    # Approved and released: final.
    RELEASED = "released", _l("Approved and shared")
    # The patient said no: final, shared with nobody.
    DECLINED = "declined", _l("Declined by the patient: shared with nobody")


class ProgressUpdate(db.Model):
    __tablename__ = "progress_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=UpdateStatus.AWAITING_PATIENT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    versions: Mapped[list["ProgressUpdateVersion"]] = relationship(
        back_populates="update", order_by="ProgressUpdateVersion.number"
    )
    recipients: Mapped[list["ProgressUpdateRecipient"]] = relationship(
        back_populates="update", order_by="ProgressUpdateRecipient.id"
    )

    @property
    def status_label(self) -> str:
        return UpdateStatus(self.status).label

    @property
    def current(self) -> "ProgressUpdateVersion":
        """The newest version: the one the patient is asked about."""
        return self.versions[-1]

    @property
    def approved(self) -> "ProgressUpdateVersion | None":
        """The exact text the patient approved: the only one a family member ever sees."""
        return next((v for v in self.versions if v.approved_at is not None), None)


class ProgressUpdateVersion(TextVersionColumns, db.Model):
    """One text of an update, as the therapist wrote it; the patient's request for changes,
    if any, is kept with the version it was about."""

    __tablename__ = "progress_update_versions"
    __table_args__ = (UniqueConstraint("update_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("progress_updates.id"), index=True)
    # Set on the one version the patient approved, never on any other.
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    change_note: Mapped[str | None] = mapped_column(Text)

    update: Mapped[ProgressUpdate] = relationship(back_populates="versions")


class ProgressUpdateRecipient(db.Model):
    __tablename__ = "progress_update_recipients"
    __table_args__ = (UniqueConstraint("update_id", "family_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("progress_updates.id"), index=True)
    family_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the member's access about the patient ended (or a renewal no longer covered
    # progress) after the release: never shown to them again, whatever consent comes later.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    update: Mapped[ProgressUpdate] = relationship(back_populates="recipients")
    member = relationship("User", foreign_keys=[family_user_id])
