"""The therapist's booking pages: the calendar, booking for a family, moving and cancelling
a place, attendance. They keep their /therapist/... addresses."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from familylink.booking.forms import (
    BookForFamilyForm,
    TherapistCancelForm,
    TherapistMoveForm,
)
from familylink.booking.slots import SLOT_FORMAT, shown_week, slot_or_none
from familylink.booking.week import week_grid, week_of
from familylink.extensions import limiter
from familylink.models import Role
from familylink.services import access, booking
from familylink.services.errors import DomainError
from familylink.web import (
    apply_error,
    back_on_refusal,
    booking_limit,
    parse_day,
    query_id,
    request_now,
    role_required,
    run,
    submit,
    try_run,
)

bp = Blueprint("therapist_booking", __name__)


def _calendar_on(seat) -> str:
    """The calendar on the week of the seat's session."""
    day = seat.appointment.starts_at.astimezone(ZoneInfo(current_user.timezone)).date()
    return url_for("therapist_booking.calendar", date=week_of(day).isoformat())


def _week_asked() -> tuple[str, str | None]:
    """The view and the day a request or a button asks for (the week or day it came from):
    an odd view is the week; the day is the text as sent (None when none was), which every
    caller checks with `parse_day` before it is used."""
    view = "day" if request.values.get("view") == "day" else "week"
    return view, request.values.get("week") or request.values.get("date")


def _back_to_calendar(seat) -> str:
    """Where an action on the calendar returns: the week (or day) the button was on, when the
    form says one `parse_day` accepts; else the week of the session."""
    view, asked = _week_asked()
    day = parse_day(asked)
    if day is None:
        return _calendar_on(seat)
    if view == "day":
        return url_for("therapist_booking.calendar", view="day", date=day.isoformat())
    return url_for("therapist_booking.calendar", date=week_of(day).isoformat())


def _calendar_span(zone: ZoneInfo, now: datetime) -> tuple[str, date, int]:
    view, asked = _week_asked()
    if asked is None:
        # No date asked: the week of the next session, or this week when there is none.
        upcoming = booking.next_session_start(current_user, now=now)
        day = (upcoming or now).astimezone(zone).date()
    else:
        # A malformed or far-off date shows this week, as it always has.
        day = parse_day(asked) or now.astimezone(zone).date()
    if view == "week":
        return view, week_of(day), 7
    return view, day, 1


def _calendar_page(view: str, first: date, days: int, appointments, people, now) -> str:
    # The therapist looked up once, not through the proxy for every seat.
    therapist = current_user._get_current_object()
    zone = ZoneInfo(therapist.timezone)
    step = timedelta(days=days)
    return render_template(
        "booking/therapist_calendar.html",
        grid=week_grid(appointments, first, days, zone),
        appointments=appointments,
        people=people,
        weekly={a.id: a.series_place for a in appointments if a.series_place},
        taken=booking.taken_places_of(appointments),
        changes={
            s.id: booking.therapist_changes(therapist, s, now=now)
            for a in appointments
            for s in a.seats
        },
        view=view,
        first=first,
        last=first + timedelta(days=days - 1),
        previous=(first - step).isoformat(),
        following=(first + step).isoformat(),
        today=now.astimezone(zone).date().isoformat(),
        now=now,
    )


@bp.route("/calendar")
@role_required(Role.THERAPIST)
def calendar():
    zone = ZoneInfo(current_user.timezone)
    now = request_now()
    view, first, days = _calendar_span(zone, now)
    appointments, people = booking.therapist_calendar(
        current_user,
        datetime.combine(first, time(0), tzinfo=zone),
        datetime.combine(first + timedelta(days=days), time(0), tzinfo=zone),
        now=now,
    )
    return _calendar_page(view, first, days, appointments, people, now)


@bp.route("/seats/<int:seat_id>/attendance", methods=["POST"])
@role_required(Role.THERAPIST)
@back_on_refusal(lambda seat_id: url_for("therapist_booking.calendar"))
def attendance(seat_id: int):
    seat = booking.mark_attendance(
        actor=current_user, seat_id=seat_id, value=request.form.get("value", ""), now=request_now()
    )
    flash(_("Saved."), "success")
    return redirect(_back_to_calendar(seat))


def _chosen_patient(patients):
    value = request.args.get("patient", "")
    patient = next((p for p in patients if str(p.id) == value), None)
    if patient is None and value:
        abort(404)  # someone else's patient, or no such person
    return patient


def _book_form(patient, now) -> BookForFamilyForm:
    """The form, with the kinds of session and the patient's family who may be booked."""
    return BookForFamilyForm(
        types=booking.private_session_types(),
        family=booking.scheduling_family(patient, now=now),
        type_asked=query_id("type"),
    )


def _book_page(form, patients, patient, now, status=200):
    """The booking page: the patients, or one patient's week picker (in the therapist's zone)."""
    week, notice = None, None
    if form is not None and form.chosen is not None and form.attendees.choices:
        zone = current_user.timezone

        def pick(day):
            return booking.week_of_slots(current_user.id, form.chosen, now=now, zone=zone, week=day)

        week, notice = shown_week(pick, zone, chosen=slot_or_none(form.slot.data))
    page = render_template(
        "booking/therapist_book.html",
        patients=patients,
        patient=patient,
        form=form,
        week=week,
        notice=notice,
        slot_format=SLOT_FORMAT,
    )
    return page, status


@bp.route("/book", methods=["GET", "POST"])
@limiter.limit(booking_limit, methods=["POST"])
@role_required(Role.THERAPIST)
def book_for_family():
    now = request_now()
    patients = access.therapist_patients(current_user, now=now, what="book for family")
    patient = _chosen_patient(patients)
    if patient is None:
        return _book_page(None, patients, None, now)
    form = _book_form(patient, now)
    if request.method == "POST" and form.weeks.data:
        return _book_series(form, patients, patient, now)
    done = submit(
        form,
        lambda f: booking.book_private(
            actor=current_user,
            patient_id=patient.id,
            now=now,
            **f.booking_choices(),
        ),
        redirect_to=_calendar_on,
        message=_("Booked. The family has been emailed."),
    )
    if done is not None:
        return done
    return _book_page(form, patients, patient, now, 400 if request.method == "POST" else 200)


def _series_page(form, patient, plan, *, patients, now):
    """The confirmation page of a weekly series: every week in each zone, conflicts first."""
    if plan is None:
        return _book_page(form, patients, patient, now, 400)
    status = 409 if plan.conflicts else 200
    return render_template("booking/therapist_series.html", form=form, plan=plan), status


def _book_series(form, patients, patient, now):
    """A weekly series: plan and list every week; book them all once confirmed and free."""
    page = {"patients": patients, "now": now}
    if not form.validate_on_submit():
        return _series_page(form, patient, None, **page)
    choices = {"actor": current_user, "patient_id": patient.id, "now": now}
    choices.update(form.series_choices())
    if not form.confirmed.data:
        plan = try_run(form, booking.plan_series, **choices)
        return _series_page(form, patient, plan, **page)
    try:  # planned once, under the therapist's lock: booked, or the weeks as they are now
        key, note = form.request_key.data, form.note.data  # a repeated form finds its series
        series = run(booking.book_series, request_key=key, note=note, **choices)
    except DomainError as error:
        apply_error(form, error)
        return _series_page(form, patient, getattr(error, "plan", None), **page)
    flash(_("Booked every week. The family has been emailed."), "success")
    return redirect(_calendar_on_day(series.first_day))


def _calendar_on_day(day: date) -> str:
    return url_for("therapist_booking.calendar", date=week_of(day).isoformat())


@bp.route("/seats/<int:seat_id>/cancel", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def cancel_seat(seat_id: int):
    """Cancel a family's place: a page that asks for confirmation and a reason first."""
    now = request_now()
    seat = access.seat(current_user, seat_id, now=now, what="cancel")
    form = TherapistCancelForm()
    if request.method == "GET":
        form.view.data, form.week.data = _week_asked()
        form.future.data = "1" if request.args.get("future") == "1" else ""
    cancellable = booking.therapist_changes(current_user, seat, now=now)["cancel"]
    if cancellable:
        done = submit(
            form,
            lambda f: (booking.cancel_future if f.future.data else booking.therapist_cancel)(
                actor=current_user, seat_id=seat.id, reason=f.reason.data, now=now
            ),
            redirect_to=lambda _done: _back_to_calendar(seat),
            message=_("Cancelled. The family has been emailed."),
        )
        if done is not None:
            return done
    page = render_template(
        "booking/therapist_cancel.html",
        form=form,
        seat=seat,
        cancellable=cancellable,
        weeks=booking.future_seats(seat, now=now) if form.future.data else [],
    )
    return page, 400 if request.method == "POST" else 200


@bp.route("/seats/<int:seat_id>/reschedule", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def reschedule_seat(seat_id: int):
    """Move a private session to another time; the family gets an updated .ics. The week of
    times shown is ?times= (?week= is the calendar week to go back to)."""
    now = request_now()
    seat = access.seat(current_user, seat_id, now=now, what="reschedule")
    movable = booking.therapist_changes(current_user, seat, now=now)["move"]
    form = TherapistMoveForm(zone=current_user.timezone)
    if movable:
        done = submit(
            form,
            lambda f: booking.reschedule(
                actor=current_user, seat_id=seat.id, starts_at=slot_or_none(f.slot.data), now=now
            ),
            redirect_to=_back_to_calendar,
            message=_("Moved. The family has been emailed a calendar update."),
        )
        if done is not None:
            return done
    page = render_template(
        "booking/therapist_reschedule.html",
        form=form,
        seat=seat,
        appointment=seat.appointment,
        movable=movable,
        slot_format=SLOT_FORMAT,
        **_move_week(seat.appointment, form, now, movable),
    )
    return page, 400 if request.method == "POST" else 200


def _move_week(appointment, form, now, movable) -> dict:
    """The picker's week of times to move `appointment` (and, on the series page, the weeks
    after it) to, in the therapist's zone (the week of a time just chosen or refused, else
    ?times=, else the first with a free time)."""
    if not movable:
        return {"week": None, "notice": None}
    zone = current_user.timezone
    week, notice = shown_week(
        lambda day: booking.week_of_moves(
            appointment, actor=current_user, now=now, zone=zone, week=day
        ),
        zone,
        chosen=slot_or_none(form.slot.data),
        arg="times",
    )
    return {"week": week, "notice": notice}


@bp.route("/seats/<int:seat_id>/move-future", methods=["GET", "POST"])
@limiter.limit(booking_limit, methods=["POST"])
@role_required(Role.THERAPIST)
def move_future(seat_id: int):
    """Move this week of a series and every later one: choose this week's new time in the
    week picker (?times= the week shown), see every week with its conflicts, then confirm
    (all or nothing)."""
    now = request_now()
    seat = access.seat(current_user, seat_id, now=now, what="series move")
    form = TherapistMoveForm(zone=current_user.timezone)
    plan = None
    series = booking.therapist_changes(current_user, seat, now=now)["series"]
    if series and form.validate_on_submit():
        choices = {"actor": current_user, "seat_id": seat.id, "now": now}
        choices["starts_at"] = slot_or_none(form.slot.data)
        plan = try_run(form, booking.plan_move, **choices)
        if plan is not None and form.confirmed.data and not plan.conflicts:
            done = submit(
                form,
                lambda f: booking.move_future(**choices),
                redirect_to=lambda moved: _calendar_on(moved[0]),
                message=_("Moved every week. The family has been emailed calendar updates."),
            )
            if done is not None:
                return done
            plan = try_run(form, booking.plan_move, **choices)
    return _move_future_page(form, seat, plan, now, series)


def _move_future_page(form, seat, plan, now, series):
    """The series move page: the weeks planned (409 while any cannot be used), then the week
    picker to choose (another) time."""
    page = render_template(
        "booking/therapist_move_future.html",
        form=form,
        seat=seat,
        plan=plan,
        series=series,
        slot_format=SLOT_FORMAT,
        **_move_week(seat.appointment, form, now, series),
    )
    if plan is not None:
        return page, 409 if plan.conflicts else 200
    return page, 400 if request.method == "POST" else 200
