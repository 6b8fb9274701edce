"""The therapist's side: their own patients, and enrolling new ones."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from familylink.extensions import db, limiter
from familylink.models import Role, SeatStatus
from familylink.services import access, accounts
from familylink.services import consent as consent_service
from familylink.services.errors import Conflict, ValidationError
from familylink.services.program import get_program
from familylink.therapist.forms import (
    WEEKDAYS,
    EnrolPatientForm,
    PaperConsentForm,
    WrittenRevocationForm,
)
from familylink.web import apply_error, booking_limit, request_now, role_required

bp = Blueprint("therapist", __name__)


@bp.route("/")
@role_required(Role.THERAPIST)
def home():
    patients = access.therapist_patients(current_user, now=request_now(), what="my patients")
    db.session.commit()
    return render_template("therapist/home.html", patients=patients, form=EnrolPatientForm())


@bp.route("/patients", methods=["POST"])
@role_required(Role.THERAPIST)
def enrol_patient():
    form = EnrolPatientForm()
    if form.validate_on_submit():
        zone = ZoneInfo(get_program().timezone)
        start = datetime.combine(form.episode_start.data, time(0, 0), tzinfo=zone)
        try:
            accounts.invite_user(
                role=Role.PATIENT,
                name=form.name.data,
                email=form.email.data,
                invited_by=current_user,
                therapist=current_user,
                episode_start=start,
                now=request_now(),
            )
        except ValidationError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            flash(f"{form.name.data} is enrolled and has been emailed an invitation.", "success")
            return redirect(url_for("therapist.home"))
    return render_template(
        "therapist/home.html",
        patients=access.therapist_patients(current_user, now=request_now(), what="my patients"),
        form=form,
    ), 400


@bp.route("/patients/<int:patient_id>/family")
@role_required(Role.THERAPIST)
def family_contacts(patient_id: int):
    patient, rows = consent_service.family_contacts(current_user, patient_id, now=request_now())
    db.session.commit()
    return render_template("therapist/family_contacts.html", patient=patient, rows=rows)


@bp.route("/patients/<int:patient_id>/consents/paper", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def record_paper_consent(patient_id: int):
    patient = access.therapist_patient(
        current_user, patient_id, now=request_now(), what="paper consent"
    )
    form = PaperConsentForm()
    if form.validate_on_submit():
        try:
            consent_service.record_paper_consent(
                current_user,
                patient_id,
                form.details(),
                signed_on=form.signed_on.data,
                attested=bool(form.attested.data),
                now=request_now(),
                ip=request.remote_addr,
                user_agent=request.user_agent.string,
            )
        except ValidationError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            flash("The paper consent is recorded and the invitation is on its way.", "success")
            return redirect(url_for("therapist.family_contacts", patient_id=patient_id))
    status = 400 if form.errors or form.form_errors else 200
    db.session.commit()  # the audit row of the view
    return render_template(
        "therapist/paper_consent.html",
        form=form,
        patient=patient,
        **consent_service.form_terms(),
    ), status


@bp.route("/consents/<int:consent_id>")
@role_required(Role.THERAPIST)
def consent_detail(consent_id: int):
    record = consent_service.consent_for_viewer(current_user, consent_id, now=request_now())
    db.session.commit()
    return render_template(
        "consent/printable.html", **consent_service.printable(record, now=request_now())
    )


@bp.route("/consents/<int:consent_id>/revoke", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def record_revocation(consent_id: int):
    now = request_now()
    record = consent_service.consent_for_viewer(current_user, consent_id, now=now)
    form = WrittenRevocationForm()
    if form.validate_on_submit():
        try:
            consent_service.revoke_consent(
                current_user, consent_id, now=now, method="written", note=form.note.data
            )
        except Conflict as error:
            db.session.rollback()
            flash(error.message, "info")
            return redirect(url_for("therapist.family_contacts", patient_id=record.patient_id))
        except ValidationError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            flash(f"Revocation recorded. {record.recipient_name} no longer has access.", "success")
            return redirect(url_for("therapist.family_contacts", patient_id=record.patient_id))
    else:
        db.session.commit()  # the audit row of the view
    status = 400 if form.errors or form.form_errors else 200
    details = consent_service.printable(record, now=now)
    return render_template("therapist/revoke.html", form=form, **details), status


# --- Calendar: day and week views, attendance ------------------------------------------------


@bp.route("/calendar")
@role_required(Role.THERAPIST)
def calendar():
    from datetime import date as date_type
    from datetime import timedelta

    from familylink.services import booking

    zone = ZoneInfo(current_user.timezone)
    view = "day" if request.args.get("view") == "day" else "week"
    try:
        day = date_type.fromisoformat(request.args.get("date", ""))
    except ValueError:
        day = request_now().astimezone(zone).date()
    first = day - timedelta(days=day.weekday()) if view == "week" else day
    days = 7 if view == "week" else 1
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(first + timedelta(days=days), time(0), tzinfo=zone)
    appointments, people = booking.therapist_calendar(current_user, start, end, now=request_now())
    db.session.commit()  # the audit rows of the patients shown
    step = timedelta(days=days)
    return render_template(
        "therapist/calendar.html",
        appointments=appointments,
        people=people,
        view=view,
        first=first,
        last=first + timedelta(days=days - 1),
        previous=(first - step).isoformat(),
        following=(first + step).isoformat(),
        now=request_now(),
    )


@bp.route("/seats/<int:seat_id>/attendance", methods=["POST"])
@role_required(Role.THERAPIST)
def attendance(seat_id: int):
    from familylink.services import booking
    from familylink.services.errors import DomainError, NotFound

    try:
        seat = booking.mark_attendance(
            actor=current_user,
            seat_id=seat_id,
            value=request.form.get("value", ""),
            now=request_now(),
        )
    except NotFound:
        raise
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("therapist.calendar")), 303
    db.session.commit()
    flash("Saved.", "success")
    day = seat.appointment.starts_at.astimezone(ZoneInfo(current_user.timezone)).date()
    return redirect(url_for("therapist.calendar", date=day.isoformat()))


# --- Availability, session types, groups, booking for a family ------------------------------


def _availability_page(status=200, **forms):
    from sqlalchemy import select as sa_select

    from familylink.models import AvailabilityOverride, AvailabilityWindow
    from familylink.services import booking
    from familylink.therapist.forms import OverrideForm, SessionTypeForm, WindowForm

    windows = db.session.scalars(
        sa_select(AvailabilityWindow)
        .where(AvailabilityWindow.therapist_id == current_user.id)
        .order_by(AvailabilityWindow.weekday, AvailabilityWindow.start_time)
    ).all()
    overrides = db.session.scalars(
        sa_select(AvailabilityOverride)
        .where(AvailabilityOverride.therapist_id == current_user.id)
        .order_by(AvailabilityOverride.day)
    ).all()
    return render_template(
        "therapist/availability.html",
        windows=windows,
        overrides=overrides,
        session_types=booking.all_session_types(),
        window_form=forms.get("window_form") or WindowForm(),
        override_form=forms.get("override_form") or OverrideForm(),
        type_form=forms.get("type_form") or SessionTypeForm(),
        weekdays=dict(WEEKDAYS),
    ), status


@bp.route("/availability")
@role_required(Role.THERAPIST)
def availability():
    return _availability_page()


def _submit(form, key, action):
    from familylink.services.errors import DomainError

    if form.validate_on_submit():
        try:
            action(form)
        except DomainError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            flash("Saved.", "success")
            return redirect(url_for("therapist.availability"))
    return _availability_page(400, **{key: form})


@bp.route("/availability/windows", methods=["POST"])
@role_required(Role.THERAPIST)
def add_window():
    from familylink.services import booking
    from familylink.therapist.forms import WindowForm

    return _submit(
        WindowForm(),
        "window_form",
        lambda f: booking.add_window(
            actor=current_user,
            weekday=f.weekday.data,
            start=f.start_time.data,
            end=f.end_time.data,
            now=request_now(),
        ),
    )


@bp.route("/availability/overrides", methods=["POST"])
@role_required(Role.THERAPIST)
def add_override():
    from familylink.services import booking
    from familylink.therapist.forms import OverrideForm

    return _submit(
        OverrideForm(),
        "override_form",
        lambda f: booking.add_override(
            actor=current_user,
            day=f.day.data,
            off=f.off.data,
            start=f.start_time.data,
            end=f.end_time.data,
            now=request_now(),
        ),
    )


@bp.route("/availability/<kind>/<int:item_id>/delete", methods=["POST"])
@role_required(Role.THERAPIST)
def remove_availability(kind: str, item_id: int):
    from familylink.services import booking

    booking.remove_availability(actor=current_user, kind=kind, item_id=item_id, now=request_now())
    db.session.commit()
    flash("Removed.", "success")
    return redirect(url_for("therapist.availability"))


@bp.route("/session-types", methods=["POST"])
@role_required(Role.THERAPIST)
def add_session_type():
    from familylink.services import booking
    from familylink.therapist.forms import SessionTypeForm

    return _submit(
        SessionTypeForm(),
        "type_form",
        lambda f: booking.add_session_type(
            actor=current_user,
            name=f.name.data,
            duration_minutes=f.duration_minutes.data,
            capacity=f.capacity.data,
            mode=f.mode.data,
            location=f.location.data,
            video_link=f.video_link.data,
            cancellation_window_hours=f.cancellation_window_hours.data,
            now=request_now(),
        ),
    )


@bp.route("/groups", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def groups():
    from familylink.services import booking
    from familylink.services.errors import DomainError
    from familylink.therapist.forms import GroupForm

    form = GroupForm()
    form.session_type.choices = [(t.id, t.name) for t in booking.all_session_types() if t.is_group]
    if form.validate_on_submit():
        try:
            made = booking.schedule_group(
                actor=current_user,
                session_type_id=form.session_type.data,
                first_day=form.first_day.data,
                start_time=form.start_time.data,
                weeks=form.weeks.data,
                capacity=form.capacity.data,
                now=request_now(),
            )
        except DomainError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            flash(f"{len(made)} group session(s) scheduled.", "success")
            day = made[0].starts_at.astimezone(ZoneInfo(current_user.timezone)).date()
            return redirect(url_for("therapist.calendar", date=day.isoformat()))
    status = 400 if form.errors or form.form_errors else 200
    return render_template("therapist/groups.html", form=form), status


@bp.route("/book", methods=["GET", "POST"])
@limiter.limit(booking_limit, methods=["POST"])
@role_required(Role.THERAPIST)
def book_for_family():
    from datetime import UTC

    from familylink.services import booking
    from familylink.services.errors import DomainError, NotFound
    from familylink.services.timefmt import format_local
    from familylink.therapist.forms import BookForFamilyForm

    value = request.args.get("patient", "")
    patients = access.therapist_patients(current_user, now=request_now(), what="book for family")
    patient = next((p for p in patients if str(p.id) == value), None)
    if patient is None and value:
        abort(404)  # someone else's patient, or no such person
    if patient is None:
        return render_template("therapist/book.html", patients=patients, patient=None, form=None)
    now = request_now()
    types = booking.private_session_types()
    form = BookForFamilyForm()
    form.session_type.choices = [(t.id, t.name) for t in types]
    chosen = next((t for t in types if t.id == form.session_type.data), types[0] if types else None)
    slots = booking.slots_for(current_user.id, chosen, now=now) if chosen else []
    form.slot.choices = [
        (s.strftime("%Y-%m-%dT%H:%MZ"), format_local(s, current_user.timezone)) for s in slots
    ]
    form.attendees.choices = [(m.id, m.name) for m in booking.scheduling_family(patient, now=now)]
    if form.validate_on_submit():
        try:
            try:
                starts = datetime.strptime(form.slot.data, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
            except ValueError:
                raise DomainError("Choose a time from the list.", field="slot")
            booking.book_private(
                actor=current_user,
                patient_id=patient.id,
                session_type_id=form.session_type.data,
                starts_at=starts,
                attendee_ids=form.attendees.data,
                note=form.note.data,
                now=now,
            )
        except NotFound:
            raise
        except DomainError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            flash("Booked. The family has been emailed.", "success")
            day = starts.astimezone(ZoneInfo(current_user.timezone)).date()
            return redirect(url_for("therapist.calendar", date=day.isoformat()))
    status = 400 if request.method == "POST" else 200
    db.session.commit()  # the audit row of the view
    return render_template(
        "therapist/book.html", patients=patients, patient=patient, form=form
    ), status


@bp.route("/seats/<int:seat_id>/cancel", methods=["POST"])
@role_required(Role.THERAPIST)
def cancel_seat(seat_id: int):
    from familylink.services import booking
    from familylink.services.errors import DomainError, NotFound

    try:
        booking.cancel_seat(actor=current_user, seat_id=seat_id, now=request_now())
    except NotFound:
        raise
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
    else:
        db.session.commit()
        flash("Cancelled. The family has been emailed.", "success")
    return redirect(url_for("therapist.calendar")), 303


@bp.route("/seats/<int:seat_id>/reschedule", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def reschedule_seat(seat_id: int):
    """Move a private session to another free time; the family gets an updated .ics."""
    from datetime import UTC

    from familylink.booking.forms import RescheduleForm
    from familylink.services import booking
    from familylink.services.errors import DomainError
    from familylink.services.timefmt import format_local

    now = request_now()
    seat = access.seat(current_user, seat_id, now=now, what="reschedule")
    appointment = seat.appointment
    movable = (
        seat.status == SeatStatus.BOOKED
        and not appointment.is_group
        and appointment.starts_at > now
    )
    form = RescheduleForm()
    slots = (
        booking.slots_for(
            appointment.therapist_id, appointment.session_type, now=now, exclude_id=appointment.id
        )
        if movable
        else []
    )
    form.slot.choices = [
        (s.strftime("%Y-%m-%dT%H:%MZ"), format_local(s, current_user.timezone)) for s in slots
    ]
    if movable and form.validate_on_submit():
        try:
            try:
                starts = datetime.strptime(form.slot.data, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
            except ValueError:
                raise DomainError("Choose a time from the list.", field="slot")
            if starts not in slots:
                raise DomainError("Choose a time from the list.", field="slot")
            booking.reschedule(actor=current_user, seat_id=seat.id, starts_at=starts, now=now)
        except DomainError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            flash("Moved. The family has been emailed a calendar update.", "success")
            day = starts.astimezone(ZoneInfo(current_user.timezone)).date()
            return redirect(url_for("therapist.calendar", date=day.isoformat()))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "therapist/reschedule.html", form=form, seat=seat, appointment=appointment, movable=movable
    ), status
