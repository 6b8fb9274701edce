"""The patient's side."""

from flask import Blueprint, render_template

from familylink.models import Role
from familylink.web import role_required

bp = Blueprint("patient", __name__)


@bp.route("/")
@role_required(Role.PATIENT)
def home():
    return render_template("patient/home.html")


@bp.route("/sessions")
@role_required(Role.PATIENT)
def sessions():
    from flask_login import current_user

    from familylink.services import booking
    from familylink.web import request_now

    seats = booking.patient_appointments(current_user, now=request_now())
    return render_template("patient/sessions.html", seats=seats)
