"""The therapist's booking pages: the calendar, booking for a family, moving and cancelling
a place, attendance. They keep their /therapist/... addresses."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from familylink.booking.forms import BookForFamilyForm, RescheduleForm
from familylink.booking.slots import slot_choices, slot_or_none
from familylink.extensions import limiter
from familylink.models import Role
from familylink.services import access, booking
from familylink.web import (
    back_on_refusal,
    booking_limit,
    parse_day,
    request_now,
    role_required,
    submit,
)

bp = Blueprint("therapist_booking", __name__)


def _calendar_on(seat) -> str:
    """The calendar on the local day of the seat's session."""
    day = seat.appointment.starts_at.astimezone(ZoneInfo(current_user.timezone)).date()
    return url_for("therapist_booking.calendar", date=day.isoformat())


def _calendar_span(zone: ZoneInfo) -> tuple[str, date, int]:
    view = "day" if request.args.get("view") == "day" else "week"
    # A missing, malformed or far-off date shows this week, as it always has.
    day = parse_day(request.args.get("date")) or request_now().astimezone(zone).date()
    if view == "week":
        return view, day - timedelta(days=day.weekday()), 7
    return view, day, 1


@bp.route("/calendar")
@role_required(Role.THERAPIST)
def calendar():
    zone = ZoneInfo(current_user.timezone)
    view, first, days = _calendar_span(zone)
    start = datetime.combine(first, time(0), tzinfo=zone)
    now = request_now()
    appointments, people = booking.therapist_calendar(
        current_user,
        start,
        datetime.combine(first + timedelta(days=days), time(0), tzinfo=zone),
        now=now,
    )
    step = timedelta(days=days)
    return render_template(
        "booking/therapist_calendar.html",
        appointments=appointments,
        people=people,
        changes={
            s.id: booking.therapist_changes(s, now=now) for a in appointments for s in a.seats
        },
        view=view,
        first=first,
        last=first + timedelta(days=days - 1),
        previous=(first - step).isoformat(),
        following=(first + step).isoformat(),
    )


@bp.route("/seats/<int:seat_id>/attendance", methods=["POST"])
@role_required(Role.THERAPIST)
@back_on_refusal(lambda seat_id: url_for("therapist_booking.calendar"))
def attendance(seat_id: int):
    seat = booking.mark_attendance(
        actor=current_user, seat_id=seat_id, value=request.form.get("value", ""), now=request_now()
    )
    flash("Saved.", "success")
    return redirect(_calendar_on(seat))


def _chosen_patient(patients):
    value = request.args.get("patient", "")
    patient = next((p for p in patients if str(p.id) == value), None)
    if patient is None and value:
        abort(404)  # someone else's patient, or no such person
    return patient


def _book_form(patient, now) -> BookForFamilyForm:
    types = booking.private_session_types()
    form = BookForFamilyForm()
    form.session_type.choices = [(t.id, t.name) for t in types]
    chosen = next((t for t in types if t.id == form.session_type.data), types[0] if types else None)
    slots = booking.slots_for(current_user.id, chosen, now=now) if chosen else []
    form.slot.choices = slot_choices(slots, current_user.timezone)
    form.attendees.choices = [(m.id, m.name) for m in booking.scheduling_family(patient, now=now)]
    return form


@bp.route("/book", methods=["GET", "POST"])
@limiter.limit(booking_limit, methods=["POST"])
@role_required(Role.THERAPIST)
def book_for_family():
    patients = access.therapist_patients(current_user, now=request_now(), what="book for family")
    patient = _chosen_patient(patients)
    if patient is None:
        return render_template(
            "booking/therapist_book.html", patients=patients, patient=None, form=None
        )
    now = request_now()
    form = _book_form(patient, now)
    done = submit(
        form,
        lambda f: booking.book_private(
            actor=current_user,
            patient_id=patient.id,
            now=now,
            **f.booking_choices(),
        ),
        redirect_to=_calendar_on,
        message="Booked. The family has been emailed.",
    )
    if done is not None:
        return done
    page = render_template(
        "booking/therapist_book.html", patients=patients, patient=patient, form=form
    )
    return page, 400 if request.method == "POST" else 200


@bp.route("/seats/<int:seat_id>/cancel", methods=["POST"])
@role_required(Role.THERAPIST)
@back_on_refusal(lambda seat_id: url_for("therapist_booking.calendar"))
def cancel_seat(seat_id: int):
    booking.cancel_seat(actor=current_user, seat_id=seat_id, now=request_now())
    flash("Cancelled. The family has been emailed.", "success")
    return redirect(url_for("therapist_booking.calendar")), 303


def _move_form(appointment, now) -> RescheduleForm:
    # The list offers the therapist's free times; the service decides what may be chosen.
    form = RescheduleForm()
    slots = booking.slots_for(
        appointment.therapist_id, appointment.session_type, now=now, exclude_id=appointment.id
    )
    form.slot.choices = slot_choices(slots, current_user.timezone)
    return form


@bp.route("/seats/<int:seat_id>/reschedule", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def reschedule_seat(seat_id: int):
    """Move a private session to another time; the family gets an updated .ics."""
    now = request_now()
    seat = access.seat(current_user, seat_id, now=now, what="reschedule")
    appointment = seat.appointment
    movable = booking.therapist_changes(seat, now=now)["move"]
    form = _move_form(appointment, now) if movable else RescheduleForm()
    if movable:
        done = submit(
            form,
            lambda f: booking.reschedule(
                actor=current_user, seat_id=seat.id, starts_at=slot_or_none(f.slot.data), now=now
            ),
            redirect_to=_calendar_on,
            message="Moved. The family has been emailed a calendar update.",
        )
        if done is not None:
            return done
    page = render_template(
        "booking/therapist_reschedule.html",
        form=form,
        seat=seat,
        appointment=appointment,
        movable=movable,
    )
    return page, 400 if request.method == "POST" else 200
