"""Booking pages for family members: book, see, move and cancel their sessions."""

import secrets

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from familylink.booking.forms import BookPrivateForm, GroupSeatForm, RescheduleForm
from familylink.booking.slots import (
    SLOT_FORMAT,
    parse_slot,
    shown_week,
    slot_or_none,
    slot_week,
    week_days,
)
from familylink.booking.week import day_label
from familylink.extensions import limiter
from familylink.models import Role, Scope, SeatStatus
from familylink.services import access, booking, mail
from familylink.services.calendar.ics import seat_file
from familylink.services.errors import Conflict, DomainError
from familylink.services.program import get_program
from familylink.web import (
    apply_error,
    back_on_refusal,
    booking_limit,
    form_status,
    query_id,
    request_now,
    role_required,
    run,
    try_run,
)

bp = Blueprint("booking", __name__)
# Every page names days in its reader's language: `{{ day|day_label }}`, `|day_label('full')`.
bp.add_app_template_filter(day_label)
# Every week picker's days and times: `{{ week.days|week_days(slot_format, zone, field) }}`.
bp.add_app_template_filter(week_days)


def _patient_id() -> int:
    patient_id = query_id("patient")
    if patient_id is None:
        abort(404)
    return patient_id


@bp.route("/")
@role_required(Role.FAMILY)
def index():
    now = request_now()
    linked = access.family_patients(
        current_user, now=now, what="booking list", scope=Scope.SCHEDULING
    )
    seats = booking.upcoming_for_family(current_user, now=now, linked=linked)
    weekly = booking.series_places([s.appointment for s in seats])
    return render_template("booking/index.html", linked=linked, seats=seats, weekly=weekly)


@bp.route("/new", methods=["GET", "POST"])
@limiter.limit(booking_limit, methods=["POST"])
@role_required(Role.FAMILY)
def new():
    now = request_now()
    # The one reading of the member's consent on this page (its patient and whom it lets
    # them invite): tests/web/test_query_counts.py counts it.
    opened = booking.open_for_booking(current_user, _patient_id(), now=now, what="booking page")
    patient = opened.patient
    types = booking.private_session_types()
    chosen = _chosen_type(types)
    if chosen is None:  # the first step: the kind of session, chosen once
        page = render_template("booking/choose_type.html", patient=patient, types=types)
        return page, 200 if request.method == "GET" else 400
    form = _new_form()
    if not form.validate_on_submit() or form.change.data:
        return _render_week(form, opened, chosen, types, now, form_status(form))
    if form.weeks.data:  # refused by the service unless the program allows it
        return _book_series(form, opened, chosen, types, now)
    return _book_once(form, opened, chosen, types, now)


def _book_once(form, opened, chosen, types, now):
    """The confirmation step, then the booking of one session (under the page's reading
    of the consent, `opened`)."""
    patient = opened.patient
    try:
        if not form.confirmed.data:
            preview = run(_preview_private, form, opened, chosen, now)
            return _render_confirm(form, patient, chosen, preview)
        seat = run(_book_private, form, opened, chosen, now)
    except DomainError as error:
        # The same form sent twice at once: the other request booked it; show that.
        done = booking.booked_with_key(form.request_key.data, current_user)
        if done is not None:
            return redirect(url_for("booking.show", seat_id=done.id, booked=1))
        apply_error(form, error)
        status = 409 if isinstance(error, Conflict) else 400
        return _render_week(form, opened, chosen, types, now, status)
    return redirect(url_for("booking.show", seat_id=seat.id, booked=1))


def _book_series(form, opened, session_type, types, now):
    """A weekly series: every week listed (conflicts first); once confirmed and all free,
    every week booked, else 409 with the fresh list. Nothing is booked while any week
    can't be. Planned and booked under the page's reading of the consent, `opened`."""
    patient = opened.patient
    choices = {"actor": current_user, "patient_id": patient.id, "now": now, "opened": opened}
    choices.update(session_type_id=session_type.id, **form.series_choices())
    if not form.confirmed.data:
        plan = try_run(form, booking.plan_series, **choices)
    else:
        key, note = form.request_key.data, form.note.data
        try:  # planned under the therapist's lock; a repeated form finds its series
            run(booking.book_series, request_key=key, note=note, **choices)
            flash(_("Booked every week. We have emailed a calendar file for each one."), "success")
            return redirect(url_for("booking.index"))
        except DomainError as error:
            plan = getattr(error, "plan", None)  # SeriesConflict: the weeks, as they are now
            if plan is None:
                apply_error(form, error)
    if plan is None:
        return _render_week(form, opened, session_type, types, now, 400)
    week = slot_week(choices["first_start"], current_user.timezone)
    page = render_template(
        "booking/series_confirm.html", form=form, patient=patient, plan=plan, week=week
    )
    return page, 409 if plan.conflicts else 200


def _chosen_type(types):
    """The kind of session: the only one, or the one named by ?type= (None: ask first)."""
    if len(types) == 1:
        return types[0]
    wanted = query_id("type")
    return next((t for t in types if t.id == wanted), None)


def _new_form() -> BookPrivateForm:
    form = BookPrivateForm()
    # Whom the member may invite is read when a page shows the checkboxes or a form names
    # someone (`_invitable`): the confirmed step of a booking for the member alone needs
    # neither.
    form.invitable = None
    form.attendees.choices = []
    if not form.request_key.data:
        form.request_key.data = secrets.token_urlsafe(24)
    return form


def _invitable(form, opened, now) -> list:
    """Whom the member may invite (under the page's reading of the consent), read once a
    request; the form's checkboxes offer them."""
    if form.invitable is None:
        form.invitable = booking.invitable_people(current_user, opened, now=now)
        form.attendees.choices = [(m.id, m.name) for m in form.invitable]
    return form.invitable


def _invited(form, opened, now) -> list | None:
    """`_invitable` when the form names someone besides the member, else None (nobody to
    check: the services ask no list)."""
    return _invitable(form, opened, now) if form.attendees.data else None


def _preview_private(form, opened, session_type, now):
    return booking.preview_private(
        actor=current_user,
        patient=opened.patient,
        session_type=session_type,
        starts_at=parse_slot(form.slot.data),
        attendee_ids=form.attendees.data,
        invitable=_invited(form, opened, now),
        now=now,
    )


def _book_private(form, opened, session_type, now):
    return booking.book_private(
        actor=current_user,
        patient_id=opened.patient.id,
        session_type_id=session_type.id,
        request_key=form.request_key.data,
        now=now,
        opened=opened,
        invitable=_invited(form, opened, now),
        **form.booking_choices(),
    )


def _shown_week(form, patient, session_type, now):
    """The week to show and a message when the one asked for cannot be: the week of the
    time just refused, else ?week=, else the first week with a free time."""
    zone = current_user.timezone

    def pick(day):
        return booking.week_of_slots(
            patient.therapist_id, session_type, now=now, zone=zone, week=day
        )

    return shown_week(pick, zone, chosen=slot_or_none(form.slot.data))


def _render_week(form, opened, session_type, types, now, status):
    _invitable(form, opened, now)
    patient = opened.patient
    week, notice = _shown_week(form, patient, session_type, now)
    if notice is not None and status < 400:
        status = 400
    page = render_template(
        "booking/new.html",
        form=form,
        patient=patient,
        session_type=session_type,
        types=types,
        week=week,
        notice=notice,
        slot_format=SLOT_FORMAT,
        may_repeat=get_program().families_may_book_series,
    )
    return page, status


def _render_confirm(form, patient, session_type, preview):
    return render_template(
        "booking/confirm.html",
        form=form,
        patient=patient,
        session_type=session_type,
        preview=preview,
        week=slot_week(preview.starts_at, current_user.timezone),
    )


@bp.route("/groups")
@role_required(Role.FAMILY)
def groups():
    now = request_now()
    patient = booking.patient_for_actor(current_user, _patient_id(), now=now, what="groups")
    occurrences = booking.open_groups(patient, now=now)
    form = GroupSeatForm(request_key=secrets.token_urlsafe(24))
    mine = {
        s.appointment_id
        for s in booking.upcoming_for_family(current_user, now=now)
        if s.status == SeatStatus.BOOKED
    }
    free = booking.free_places_of(occurrences, now=now)
    waiting = booking.waitlist_places(current_user, patient, [a.id for a in occurrences], now=now)
    return render_template(
        "booking/groups.html",
        patient=patient,
        occurrences=occurrences,
        form=form,
        mine=mine,
        free=free,
        waiting=waiting,
    )


@bp.route("/groups/<int:appointment_id>", methods=["POST"])
@limiter.limit(booking_limit, methods=["POST"])
@role_required(Role.FAMILY)
@back_on_refusal(lambda appointment_id: url_for("booking.groups", patient=_patient_id()))
def take_seat(appointment_id: int):
    now = request_now()
    patient_id = _patient_id()
    form = GroupSeatForm()
    if request.form.get("waitlist"):
        booking.join_waitlist(
            actor=current_user, patient_id=patient_id, appointment_id=appointment_id, now=now
        )
        flash(_("You are on the waitlist. We will email you if a place opens."), "success")
        return redirect(url_for("booking.groups", patient=patient_id))
    seat = booking.book_group_seat(
        actor=current_user,
        patient_id=patient_id,
        appointment_id=appointment_id,
        attendee_ids=form.attendees.data,
        request_key=form.request_key.data,
        now=now,
    )
    return redirect(url_for("booking.show", seat_id=seat.id, booked=1))


@bp.route("/<int:seat_id>")
@role_required(Role.FAMILY)
def show(seat_id: int):
    now = request_now()
    seat = access.seat(current_user, seat_id, now=now, what="appointment")
    appointment = seat.appointment
    change = booking.changes_of(current_user, seat, now=now)
    week, notice = _move_week(appointment, now) if change.move else (None, None)
    return render_template(
        "booking/show.html",
        seat=seat,
        appointment=appointment,
        booked=request.args.get("booked") == "1",
        change=change,
        form=RescheduleForm(),
        week=week,
        notice=notice,
        slot_format=SLOT_FORMAT,
        coming=access.attendees_shown_to(current_user, seat, now=now),
    )


def _move_week(appointment, now):
    """The week of times the session may move to (?week=, else the first with a free time)."""
    zone = current_user.timezone
    return shown_week(
        lambda day: booking.week_of_moves(
            appointment, actor=current_user, now=now, zone=zone, week=day
        ),
        zone,
    )


@bp.route("/<int:seat_id>/cancel", methods=["GET", "POST"])
@role_required(Role.FAMILY)
@back_on_refusal(lambda seat_id: url_for("booking.show", seat_id=seat_id))
def cancel(seat_id: int):
    """Asks first (the session, and whether it would count as late), then cancels."""
    if request.method == "GET":
        asked = booking.cancellation_of(current_user, seat_id, now=request_now())
        return render_template("booking/cancel.html", seat=asked.seat, late=asked.late)
    seat = booking.cancel_seat(actor=current_user, seat_id=seat_id, now=request_now())
    if seat.status == SeatStatus.LATE_CANCELLED:
        flash(
            _("Cancelled. Because it was close to the time, your therapist has been told."), "info"
        )
    else:
        flash(_("Cancelled. We have emailed you a calendar update."), "success")
    return redirect(url_for("booking.index"))


@bp.route("/<int:seat_id>/cancel-future", methods=["GET", "POST"])
@role_required(Role.FAMILY)
@back_on_refusal(lambda seat_id: url_for("booking.show", seat_id=seat_id))
def cancel_future(seat_id: int):
    """This week of a series and every later one the member is coming to: listed (a week
    inside the cancellation window marked late) and cancelled once confirmed."""
    now = request_now()
    if request.method == "GET":
        weeks = booking.future_seats_for(current_user, seat_id, now=now)
        return render_template("booking/cancel_future.html", weeks=weeks)
    cancelled = booking.cancel_future(actor=current_user, seat_id=seat_id, now=now)
    flash(
        ngettext(
            "Cancelled %(num)d session. We have emailed you a calendar update for it.",
            "Cancelled %(num)d sessions. We have emailed you a calendar update for each.",
            len(cancelled),
        ),
        "success",
    )
    return redirect(url_for("booking.index"))


@bp.route("/<int:seat_id>/reschedule", methods=["POST"])
@role_required(Role.FAMILY)
@back_on_refusal(lambda seat_id: url_for("booking.show", seat_id=seat_id))
def reschedule(seat_id: int):
    form = RescheduleForm()
    booking.reschedule(
        actor=current_user,
        seat_id=seat_id,
        starts_at=slot_or_none(form.slot.data),
        now=request_now(),
    )
    flash(_("Moved. We have emailed you a calendar update."), "success")
    return redirect(url_for("booking.show", seat_id=seat_id))


@bp.route("/<int:seat_id>/calendar.ics")
@role_required(Role.FAMILY)
def ics(seat_id: int):
    now = request_now()
    seat = access.seat(current_user, seat_id, now=now, what="appointment")
    # The session while the seat is on the calendar, else its cancellation (the email's).
    file = seat_file(seat, current_user, now=now)
    return Response(
        file.data,
        content_type=file.content_type,
        headers={"Content-Disposition": f"attachment; filename={file.filename}"},
    )


@bp.route("/claim/<int:entry_id>", methods=["GET", "POST"])
@limiter.limit(booking_limit, methods=["POST"])
@role_required(Role.FAMILY)
@back_on_refusal(lambda entry_id: url_for("booking.index"))
def claim(entry_id: int):
    if request.method == "GET":
        access.waitlist_entry(current_user, entry_id)
        return render_template("booking/claim.html", entry_id=entry_id, form=GroupSeatForm())
    seat = booking.claim_offer(actor=current_user, entry_id=entry_id, now=request_now())
    return redirect(url_for("booking.show", seat_id=seat.id, booked=1))


@bp.route("/waitlist/<int:entry_id>/leave", methods=["POST"])
@role_required(Role.FAMILY)
@back_on_refusal(lambda entry_id: url_for("booking.index"))
def leave_waitlist(entry_id: int):
    entry = booking.leave_waitlist(actor=current_user, entry_id=entry_id, now=request_now())
    flash(_("Your family has left the waitlist."), "success")
    return redirect(url_for("booking.groups", patient=entry.patient_id)), 303


# --- Private calendar feed (any signed-in person) --------------------------------------------


@bp.route("/feed", methods=["GET", "POST"])
@role_required(Role.FAMILY, Role.PATIENT, Role.THERAPIST)
def feed():
    from familylink.booking.forms import FeedForm
    from familylink.services.calendar import feeds as calendar

    form = FeedForm()
    new_url = None
    if form.validate_on_submit():
        if form.action.data == "off":
            calendar.turn_off_feed(current_user, now=request_now())
            flash(_("Your calendar feed is off. The old link no longer works."), "success")
        else:
            token = calendar.turn_on_feed(current_user, now=request_now())
            # The secret link is built from the settings, like every emailed link.
            new_url = mail.external_url("booking.feed_ics", token=token)
    current = calendar.feed_of(current_user)
    return render_template(
        "booking/feed.html", form=form, new_url=new_url, active=bool(current and current.active)
    )


@bp.route("/feed/<token>.ics")
def feed_ics(token: str):
    from familylink.services.calendar import feeds as calendar

    data = calendar.feed_for_token(token, now=request_now())
    if data is None:
        abort(404)
    return Response(data, mimetype="text/calendar", headers={"Cache-Control": "no-store"})
