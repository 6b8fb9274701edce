"""Practice tools for family members (CRAFT): worksheets, message rewrites, a rewards plan and
a family safety plan.

A `PracticeEntry` belongs to the family member who wrote it and to nobody else. It is private
by default; the member may share it with the therapist of one patient (`shared_patient_id`),
who reads it only while that patient's consent to the member is in force (the gate,
`services/access.py`). The patient never reads it.
"""

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from familylink.extensions import db
from familylink.models.types import (
    LabelledEnum,
    TextVersionColumns,
    UTCDateTime,
    partial_index,
    utcnow,
)


class ToolKind(LabelledEnum):
    """The four tools, each with its name and a line saying what it is for (`description`)."""

    # Functional analysis: triggers, what happens, the short-term pull, the long-term cost.
    BEFORE_AFTER = (
        "before_after",
        _l("Before and after"),
        _l("Look at one pattern: what sets it off, what it gives, what it costs."),
    )
    # "Say it so it can be heard": a message and its rewrites.
    MESSAGE = (
        "message",
        _l("Say it so it can be heard"),
        _l("Write something you want to say, check it, rewrite it. Every version is kept."),
    )
    REWARDS = (
        "rewards",
        _l("Rewards and consequences plan"),
        _l("What you will do when your loved one is sober, and stop doing when not."),
    )
    # One per family member; printable, and shown to them on the crisis page.
    SAFETY_PLAN = (
        "safety_plan",
        _l("Family safety plan"),
        _l("Warning signs, who to call, where the naloxone is, a safe place. Print it."),
    )


class PracticeEntry(db.Model):
    """One filled-in tool: its answers by field name, and whom it is shared with."""

    __tablename__ = "practice_entries"
    __table_args__ = (
        # One safety plan per family member; the other tools may be filled in many times.
        partial_index(
            "uq_practice_entries_one_safety_plan",
            "family_user_id",
            where="kind = 'safety_plan'",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    family_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(120))
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    # The patient whose therapist may read this entry; None (the default): nobody.
    shared_patient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list["MessageVersion"]] = relationship(
        back_populates="entry", order_by="MessageVersion.number.desc()"
    )

    @property
    def tool(self) -> ToolKind:
        return ToolKind(self.kind)


class MessageVersion(TextVersionColumns, db.Model):
    """One wording of a message, kept when the member rewrites it, with the elements of
    positive communication they ticked as present."""

    __tablename__ = "practice_message_versions"
    __table_args__ = (UniqueConstraint("entry_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("practice_entries.id"), index=True)
    checked: Mapped[list] = mapped_column(JSON, default=list)

    entry: Mapped[PracticeEntry] = relationship(back_populates="versions")
