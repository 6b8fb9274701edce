"""A patient's attendance at the program itself, one row per program day.

This is the patient's own attendance at their program days (recorded by their therapist),
not a family's attendance at a family session (that is `AppointmentFamily.attendance`, the
family's own). A correction updates the day's row; the audit log keeps what it said before.
"""

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from familylink.extensions import db
from familylink.models.types import LabelledEnum, UTCDateTime


class ProgramAttendanceStatus(LabelledEnum):
    """How the patient was at a program day, with the word the therapist's form shows."""

    ATTENDED = "attended", _l("Attended")
    ABSENT = "absent", _l("Absent")
    EXCUSED = "excused", _l("Excused")


class ProgramAttendance(db.Model):
    __tablename__ = "program_attendance"
    __table_args__ = (UniqueConstraint("patient_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The program day, in the program's time zone.
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # When it was last recorded or corrected.
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
