"""The therapist's side: their own patients, and enrolling new ones."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import Role, User
from familylink.services import accounts
from familylink.services.errors import ValidationError
from familylink.services.program import get_program
from familylink.therapist.forms import EnrolPatientForm
from familylink.web import apply_error, request_now, role_required

bp = Blueprint("therapist", __name__)


def _own_patients():
    return db.session.scalars(
        select(User)
        .where(User.role == Role.PATIENT, User.therapist_id == current_user.id)
        .order_by(User.name)
    ).all()


@bp.route("/")
@role_required(Role.THERAPIST)
def home():
    return render_template("therapist/home.html", patients=_own_patients(), form=EnrolPatientForm())


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
    return render_template("therapist/home.html", patients=_own_patients(), form=form), 400


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
    appointments = booking.therapist_appointments(current_user, start, end)
    step = timedelta(days=days)
    return render_template(
        "therapist/calendar.html",
        appointments=appointments,
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
