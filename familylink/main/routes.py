"""The landing page, each role's way home, the crisis page and the health check."""

from flask import Blueprint, jsonify, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from familylink.extensions import db, limiter
from familylink.models import Role
from familylink.services import learning

bp = Blueprint("main", __name__)

HOME_BY_ROLE = {
    Role.FAMILY: "family.home",
    Role.PATIENT: "patient.home",
    Role.THERAPIST: "therapist.home",
    Role.ADMIN: "admin.home",
    Role.DIRECTOR: "overview.page",
}


@bp.route("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for(HOME_BY_ROLE[current_user.role]))
    return render_template("main/index.html")


@bp.route("/help/crisis")
def crisis():
    # A family member's own safety plan, when filled in; nobody else's, and no one else sees it.
    plan = None
    if current_user.is_authenticated:
        plan = learning.practice.safety_plan(current_user)
    return render_template(
        "main/crisis.html", safety_plan=plan if learning.practice.is_filled_in(plan) else None
    )


@bp.route("/healthz")
@limiter.exempt
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
