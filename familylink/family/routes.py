"""The family member's side: only what active consents allow."""

from flask import Blueprint, render_template
from flask_login import current_user

from familylink.models import Role
from familylink.services import consent
from familylink.web import request_now, role_required

bp = Blueprint("family", __name__)


@bp.route("/")
@role_required(Role.FAMILY)
def home():
    linked = consent.linked_patients(current_user, now=request_now())
    return render_template("family/home.html", linked=linked)
