"""Learning modules for families: the texts, their saved versions, assignments and progress.

A module's text lives in `LearningModule`; every text ever saved (from a content file or an
admin edit) is a `ModuleVersion`, so any earlier text can be restored; a text in another
language (Spanish) is a `ModuleTranslation`, loaded from its file. An `Assignment` ties a
module to one family member *about one patient* (it is patient-linked data); `ModuleProgress`
is the family member's reading record and private reflection, kept per (family member,
patient, module): progress about a patient can reach that patient's therapist only, and a
reading done on the member's own (no patient) reaches nobody.
"""

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from familylink.extensions import db
from familylink.models.types import UTCDateTime, VersionColumns, partial_index, utcnow


class VersionSource(enum.StrEnum):
    FILE = "file"  # loaded from familylink/content/
    EDIT = "edit"  # saved by an admin in the app
    RESTORE = "restore"  # an earlier version brought back


class AssignmentSource(enum.StrEnum):
    MANUAL = "manual"
    SEQUENCE = "sequence"


class ModuleTextColumns:
    """The text of a module, the same columns in the module, each saved version and each
    translation."""

    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(String(80))
    reading_minutes: Mapped[int] = mapped_column(Integer)
    key_points: Mapped[list] = mapped_column(JSON)
    reflection: Mapped[str] = mapped_column(Text)
    exercise: Mapped[str] = mapped_column(Text)
    sources: Mapped[list] = mapped_column(JSON)
    body_markdown: Mapped[str] = mapped_column(Text)


class LearningModule(ModuleTextColumns, db.Model):
    __tablename__ = "learning_modules"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    # `order` is an SQL keyword: the column is named sort_order, the attribute stays `order`.
    order: Mapped[int] = mapped_column("sort_order", Integer, default=0)
    key_points: Mapped[list] = mapped_column(JSON, default=list)
    sources: Mapped[list] = mapped_column(JSON, default=list)
    # The sanitized HTML of body_markdown, made when the text is saved; pages show only this.
    body_html: Mapped[str] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    # Hash of the content file's text when it was last loaded: an unchanged file is skipped.
    file_hash: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list["ModuleVersion"]] = relationship(
        back_populates="module", order_by="ModuleVersion.number.desc()"
    )


class ModuleVersion(ModuleTextColumns, VersionColumns, db.Model):
    """One saved text of a module, never changed afterwards."""

    __tablename__ = "module_versions"
    __table_args__ = (UniqueConstraint("module_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("learning_modules.id"), index=True)
    source: Mapped[str] = mapped_column(String(10))
    order: Mapped[int] = mapped_column("sort_order", Integer)
    published: Mapped[bool] = mapped_column(Boolean)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    module: Mapped[LearningModule] = relationship(back_populates="versions")


class ModuleTranslation(ModuleTextColumns, db.Model):
    """A module's text in another language, loaded from familylink/content/<language>/.

    It was written from one English file: `source_sha256` is that file's hash. Pages show it
    only while the module's English text is still that file (`LearningModule.file_hash`);
    otherwise they show English. The module's own settings (slug, order, published) stay on
    the module. Translations change only by loading their files (git keeps their history).
    """

    __tablename__ = "module_translations"
    __table_args__ = (UniqueConstraint("module_id", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("learning_modules.id"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    # The sanitized HTML of body_markdown, made when the text is loaded; pages show only this.
    body_html: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    file_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    module: Mapped[LearningModule] = relationship(lazy="joined")

    @property
    def slug(self) -> str:
        return self.module.slug


class Assignment(db.Model):
    """A module given to one family member about one patient, released at `release_at`."""

    __tablename__ = "module_assignments"
    __table_args__ = (UniqueConstraint("module_id", "family_user_id", "patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("learning_modules.id"), index=True)
    family_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    assigned_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(10), default=AssignmentSource.MANUAL)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    release_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the family member's access about the patient ended: before release (it is
    # never released) or after it (withdrawn: no page shows it to them again, whatever
    # consent comes later). Assigning the module again starts the row afresh.
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A practice tool (ToolKind value) the therapist suggests trying with this reading.
    tool: Mapped[str | None] = mapped_column(String(20))

    module: Mapped[LearningModule] = relationship(lazy="joined")


class ModuleProgress(db.Model):
    """A family member's reading of one module about one patient (or, with no patient, on
    their own); the reflection is theirs alone unless shared with that patient's therapist."""

    __tablename__ = "module_progress"
    __table_args__ = (
        # One current reading per (member, patient, module); those withdrawn when the
        # member's access about the patient ended are kept beside it.
        partial_index(
            "uq_module_progress_current",
            "family_user_id",
            "patient_id",
            "module_id",
            where="withdrawn_at IS NULL",
            unique=True,
        ),
        # NULLs are distinct in a unique constraint: one reading of their own per module.
        partial_index(
            "uq_module_progress_own_reading",
            "family_user_id",
            "module_id",
            where="patient_id IS NULL",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    family_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The patient this reading is about (its assignment's, or the one the member chose to
    # share with); None for a reading done on their own, which is shared with nobody.
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("learning_modules.id"), index=True)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reflection: Mapped[str | None] = mapped_column(Text)
    reflection_shared: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the member's access about the patient ended: the notes are kept, but no page
    # shows them again (nor as a reading about the patient); a later consent starts a new
    # row.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    module: Mapped[LearningModule] = relationship(lazy="joined")
