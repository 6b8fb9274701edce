"""The program's settings (one row).

Nearly every page and email reads them and an admin changes them rarely, so each process
keeps a read-only snapshot for a few seconds instead of querying on every request. A change
is seen at once by the process that made it and by the others within CACHE_SECONDS.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, fields
from datetime import date, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import Program, User
from familylink.services import audit, screening
from familylink.services.errors import ValidationError
from familylink.services.timefmt import is_valid_timezone

CACHE_SECONDS = 5.0
#: At most this many reminder times (the settings form offers as many boxes to tick).
MAX_REMINDERS = 5


@dataclass(frozen=True)
class ProgramSettings:
    """A read-only copy of the Program row."""

    id: int
    name: str
    sender_name: str
    timezone: str
    reminder_offsets_hours: tuple[int, ...]
    cancellation_window_hours: int
    booking_horizon_days: int
    minimum_notice_hours: int
    waitlist_hold_hours: int
    buffer_minutes: int = 10
    after_hours_phone: str | None = None
    #: An https address with "{room}" for video rooms; None: therapists paste a link per session.
    video_room_template: str | None = None
    #: Families may book a weekly series themselves (off: only the therapist does).
    families_may_book_series: bool = False

    @property
    def after_hours_tel(self) -> str | None:
        """The after-hours number as a tel:/sms: target (digits, with a leading +)."""
        return tel_target(self.after_hours_phone) if self.after_hours_phone else None

    @classmethod
    def of(cls, program: Program) -> ProgramSettings:
        values = {f.name: getattr(program, f.name) for f in fields(cls)}
        values["reminder_offsets_hours"] = tuple(program.reminder_offsets_hours)
        return cls(**values)


def tel_target(phone: str) -> str:
    """A North American number in digits for a tel: link, e.g. '+15551234567'."""
    digits = re.sub(r"\D", "", phone)
    return "+" + (digits if len(digits) == 11 else "1" + digits)


_PHONE_CHARACTERS = re.compile(r"\+?[0-9 ().-]+")


def clean_phone(phone: str | None, *, field: str) -> str | None:
    """`phone` stripped, None when empty, or ValidationError naming `field` unless it is a
    ten-digit North American number (an optional leading 1 or +1; spaces, dots, dashes and
    brackets allowed)."""
    phone = screening.refuse_controls(phone, field=field)
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("1") and len(digits) == 11:
        digits = digits[1:]
    if (
        len(phone) > 32
        or not _PHONE_CHARACTERS.fullmatch(phone)
        or len(digits) != 10
        or digits[0] in "01"
    ):
        raise ValidationError(
            _("Enter a phone number with its area code, like 555-123-4567."), field=field
        )
    return phone


ROOM_PLACEHOLDER = "{room}"


def clean_room_template(template: str | None, *, field: str) -> str | None:
    """`template` stripped, None when empty (therapists paste a link per session), or
    ValidationError naming `field` unless it is an https address holding "{room}" once, in
    its path (a room token in the host would make every session its own host). Every room
    address lands in the attendees' browser history, so it goes through the one screen."""
    template = screening.screen(template, field=field)
    if not template:
        return None
    parts = urlsplit(template.replace(ROOM_PLACEHOLDER, "room"))
    if (
        len(template) > 300
        or " " in template
        or parts.scheme != "https"
        or not parts.hostname
        or template.count(ROOM_PLACEHOLDER) != 1
        or ROOM_PLACEHOLDER in urlsplit(template).netloc
        or "{" in template.replace(ROOM_PLACEHOLDER, "")
    ):
        raise ValidationError(
            _(
                "Give an https:// address with {room} where each session's room name goes, "
                "like https://meet.example.org/{room}."
            ),
            field=field,
        )
    return template


def _cache() -> dict:
    return current_app.extensions.setdefault("familylink_program", {})


def forget_cached_program() -> None:
    _cache().clear()


class ProgramMissing(RuntimeError):
    """The Program row is absent: the database was not built with ``flask db upgrade``."""


def _read_row() -> Program:
    program = db.session.scalar(select(Program).order_by(Program.id).limit(1))
    if program is None:
        # Never created here: a page load that writes would hide a database built without
        # the migrations, and two first requests at once would each insert a row.
        raise ProgramMissing(
            "The programs table is empty: run `flask db upgrade`, whose migration inserts "
            "the default program settings."
        )
    return program


def program_row() -> Program:
    """The Program row itself, for changing it; raises ProgramMissing when there is none."""
    forget_cached_program()
    return _read_row()


def get_program() -> ProgramSettings:
    """The program's settings, at most CACHE_SECONDS old (PROGRAM_CACHE_SECONDS overrides
    it: query-count tests on a slow machine must not see a refresh mid-measurement)."""
    cache = _cache()
    settings, loaded_at = cache.get("settings"), cache.get("loaded_at", 0.0)
    lifetime = current_app.config.get("PROGRAM_CACHE_SECONDS", CACHE_SECONDS)
    if settings is None or time.monotonic() - loaded_at > lifetime:
        settings = ProgramSettings.of(_read_row())
        cache.update(settings=settings, loaded_at=time.monotonic())
    return settings


def start_of_day(day: date) -> datetime:
    """The start of `day` in the program's time zone: when an episode of care starts or
    ends (enrolment, discharge, readmission)."""
    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(get_program().timezone))


def local_day(moment: datetime) -> date:
    """The day `moment` falls on in the program's time zone."""
    return moment.astimezone(ZoneInfo(get_program().timezone)).date()


def check_day(day: date | None, *, field: str, now: datetime, not_before: date = date.min) -> None:
    """ValidationError on `field` unless `day` is a day of care that can be recorded now:
    given, no later than today and not before `not_before` (program time). An episode's
    start (enrolment, readmission) and its end (discharge) are days that have come."""
    if day is None:
        raise ValidationError(_("Enter a date, like 2026-11-02."), field=field)
    if day > local_day(now):
        raise ValidationError(_("Choose a date no later than today."), field=field)
    if day < not_before:
        raise ValidationError(
            _("Choose a date on or after %(day)s.", day=not_before.isoformat()), field=field
        )


def update_program(
    *,
    name: str,
    sender_name: str,
    timezone: str,
    reminder_offsets_hours: list[int],
    cancellation_window_hours: int,
    booking_horizon_days: int,
    minimum_notice_hours: int,
    waitlist_hold_hours: int,
    buffer_minutes: int | None = None,
    after_hours_phone: str | None | object = ...,
    video_room_template: str | None | object = ...,
    families_may_book_series: bool | None = None,
    actor: User | None,
    now: datetime,
) -> Program:
    """Change the program's settings; raises ValidationError naming the offending field.

    Audited as ``program.updated`` with each changed field's old and new value (the settings
    hold no secrets); `actor` is None when done from the command line.
    """
    if not is_valid_timezone(timezone):
        raise ValidationError(_("Choose a time zone from the list."), field="timezone")
    name = screening.refuse_controls(name, field="name")
    # On every email (42 CFR Part 2): the one screen for text that reaches an inbox.
    sender_name = screening.screen(sender_name, field="sender_name")
    offsets = sorted({int(h) for h in reminder_offsets_hours}, reverse=True)
    if not offsets or any(h < 1 or h > 24 * 14 for h in offsets) or len(offsets) > MAX_REMINDERS:
        raise ValidationError(
            _("Give one to five reminder times, each between 1 and 336 hours before."),
            field="reminder_offsets_hours",
        )
    if buffer_minutes is not None and not 0 <= buffer_minutes <= 120:
        raise ValidationError(_("Use 0 to 120 minutes."), field="buffer_minutes")
    wanted = {
        "name": name.strip(),
        "sender_name": sender_name.strip(),
        "timezone": timezone,
        "reminder_offsets_hours": offsets,
        "cancellation_window_hours": cancellation_window_hours,
        "booking_horizon_days": booking_horizon_days,
        "minimum_notice_hours": minimum_notice_hours,
        "waitlist_hold_hours": waitlist_hold_hours,
    }
    if buffer_minutes is not None:
        wanted["buffer_minutes"] = buffer_minutes
    if families_may_book_series is not None:
        wanted["families_may_book_series"] = bool(families_may_book_series)
    if after_hours_phone is not ...:
        wanted["after_hours_phone"] = clean_phone(after_hours_phone, field="after_hours_phone")
    if video_room_template is not ...:
        wanted["video_room_template"] = clean_room_template(
            video_room_template, field="video_room_template"
        )
    program = program_row()
    changes = {}
    for field, value in wanted.items():
        old = getattr(program, field)
        if old != value:
            changes[field] = {"old": old, "new": value}
            setattr(program, field, value)
    if changes:
        audit.record(
            "program.updated", actor=actor, obj=program, detail={"changes": changes}, now=now
        )
    db.session.flush()
    forget_cached_program()
    return program
