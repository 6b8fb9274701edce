"""The patient's side."""

from flask import Blueprint, render_template

from familylink.models import Role
from familylink.web import role_required

bp = Blueprint("patient", __name__)


@bp.route("/")
@role_required(Role.PATIENT)
def home():
    return render_template("patient/home.html")
