"""What a family's booked seat still allows, and the one rule of "late": the cancellation
window (the session type's, else the program's). Inside it a family member's cancellation
is late (late-cancelled, the therapist told) and a move is theirs no more (they ask the
therapist); the therapist's changes are never late. The session page (`changes_of`), the
therapist's calendar and pages (`therapist_changes`), the question before a cancel
(`cancellation_of`), the series' "this and all later weeks" list
(`series.future_seats_for`), `seats.cancel_seat` and `seats.reschedule` all ask here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _

from familylink.models import Appointment, AppointmentFamily, Role, SeatStatus, User
from familylink.models.scheduling import is_on_calendar
from familylink.services import access
from familylink.services.errors import ValidationError
from familylink.services.program import get_program


def cancellation_window(appointment: Appointment) -> timedelta:
    hours = appointment.session_type.cancellation_window_hours
    if hours is None:
        hours = get_program().cancellation_window_hours
    return timedelta(hours=hours)


def inside_window(appointment: Appointment, now: datetime) -> bool:
    """True while a family member may still change it without it being late."""
    return appointment.starts_at - now >= cancellation_window(appointment)


def is_late(actor: User, appointment: Appointment, now: datetime) -> bool:
    """Whether a change `actor` makes to it now is late: a family member's inside the
    cancellation window; the therapist's never is."""
    return actor.role == Role.FAMILY and not inside_window(appointment, now)


def moves_freely(actor: User) -> bool:
    """Whether `actor` may move a session to any time not yet started that overlaps none of
    the therapist's other sessions (the therapist: "the therapist can always reschedule"),
    rather than only into the free times families book (notice, horizon, hours)."""
    return actor.role == Role.THERAPIST


@dataclass(frozen=True)
class Cancellation:
    """A booked seat `actor` may cancel, and whether cancelling it now counts as late."""

    seat: AppointmentFamily
    late: bool

    @classmethod
    def of(cls, actor: User, seat: AppointmentFamily, now: datetime) -> Cancellation:
        return cls(seat, is_late(actor, seat.appointment, now))


@dataclass(frozen=True)
class SeatChanges:
    """What a page offers for a seat: `cancel` (a booked place not yet started), `move`
    (also a private session, and not late), `late` (cancelling now counts as late), and
    `calendar` (the session is on the family's calendar: booked, in a session still
    scheduled, as `AppointmentFamily.on_calendar` says; only then does a page offer to add
    it to a calendar or show its join link, and its calendar file is otherwise the
    cancellation, `calendar.ics.seat_file`)."""

    cancel: bool
    move: bool
    late: bool
    calendar: bool


def changes_of(actor: User, seat: AppointmentFamily, *, now: datetime) -> SeatChanges:
    """What `actor`, already allowed the seat (`access.seat`), may still do to it now."""
    appointment = seat.appointment
    # The rule of `on_calendar`, on the fields the calendar's plain rows have too.
    on_calendar = is_on_calendar(seat.status, appointment.status)
    ahead = seat.status == SeatStatus.BOOKED and appointment.starts_at > now
    late = ahead and is_late(actor, appointment, now)
    return SeatChanges(
        cancel=ahead,
        move=ahead and not appointment.is_group and not late,
        late=late,
        calendar=on_calendar,
    )


def therapist_changes(actor: User, seat: AppointmentFamily, *, now: datetime) -> dict[str, bool]:
    """What the therapist's pages offer for a seat (`actor` the therapist): `changes_of`
    (cancel a booked place still ahead, move it too when private; never late), this and
    all future weeks too in a weekly series, and attendance once the session has started
    (the page shows flags, the rule lives here). `seat` is the model or the calendar's plain
    row (`listings.CalendarSeat`), which has the fields these rules read."""
    can = changes_of(actor, seat, now=now)
    return {
        "cancel": can.cancel,
        "move": can.move,
        "series": can.cancel and seat.appointment.weekly_series_id is not None,
        "attendance": seat.status == SeatStatus.BOOKED and not can.cancel,
    }


def cancellable(actor: User, seat: AppointmentFamily, now: datetime) -> Cancellation:
    """The cancellation of a seat still booked and not yet started; ValidationError else."""
    if seat.status != SeatStatus.BOOKED:
        raise ValidationError(_("That booking is already cancelled."))
    if seat.appointment.starts_at <= now:
        raise ValidationError(_("That session has already started."))
    return Cancellation.of(actor, seat, now)


def cancellation_of(actor: User, seat_id: int, *, now: datetime) -> Cancellation:
    """What cancelling this one seat would do (the page that asks first). Raises as
    `seats.cancel_seat`, changing nothing."""
    return cancellable(actor, access.seat(actor, seat_id, now=now, what="appointment"), now)
