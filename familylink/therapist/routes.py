"""The therapist's side: their own patients, and enrolling new ones."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, url_for
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
