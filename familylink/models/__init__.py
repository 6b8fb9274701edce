"""Every model, imported here so Alembic and the app see the whole schema."""

from familylink.models.accounts import (
    AccountToken,
    Episode,
    EpisodeEndReason,
    Program,
    Role,
    TokenPurpose,
    User,
)
from familylink.models.attendance import ProgramAttendance, ProgramAttendanceStatus
from familylink.models.audit import AuditEvent
from familylink.models.consent import (
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    ExpiryKind,
    FamilyLink,
    Scope,
)
from familylink.models.learning import (
    Assignment,
    AssignmentSource,
    LearningModule,
    ModuleProgress,
    ModuleVersion,
    VersionSource,
)
from familylink.models.mail import OutboxEmail, OutboxStatus
from familylink.models.practice import MessageVersion, PracticeEntry, ToolKind
from familylink.models.progress import (
    ProgressUpdate,
    ProgressUpdateRecipient,
    ProgressUpdateVersion,
    UpdateStatus,
)
from familylink.models.scheduling import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AppointmentSeries,
    AppointmentStatus,
    Attendance,
    AvailabilityOverride,
    AvailabilityWindow,
    CalendarFeed,
    SeatStatus,
    SessionMode,
    SessionType,
    WaitlistEntry,
    WaitlistStatus,
)
from familylink.models.security import RecoveryCode, UserSession

__all__ = [
    "AccountToken",
    "AuditEvent",
    "ProgramAttendance",
    "ProgramAttendanceStatus",
    "Episode",
    "EpisodeEndReason",
    "ClosureReason",
    "ConsentClosure",
    "ConsentRecord",
    "ExpiryKind",
    "FamilyLink",
    "Scope",
    "MessageVersion",
    "PracticeEntry",
    "ToolKind",
    "OutboxEmail",
    "OutboxStatus",
    "ProgressUpdate",
    "ProgressUpdateRecipient",
    "ProgressUpdateVersion",
    "UpdateStatus",
    "Program",
    "Role",
    "TokenPurpose",
    "User",
    "Assignment",
    "AssignmentSource",
    "LearningModule",
    "ModuleProgress",
    "ModuleVersion",
    "VersionSource",
    "Appointment",
    "AppointmentAttendee",
    "AppointmentFamily",
    "AppointmentSeries",
    "AppointmentStatus",
    "Attendance",
    "AvailabilityOverride",
    "AvailabilityWindow",
    "CalendarFeed",
    "SeatStatus",
    "SessionMode",
    "SessionType",
    "WaitlistEntry",
    "WaitlistStatus",
    "RecoveryCode",
    "UserSession",
]
