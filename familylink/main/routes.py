"""The landing page, each role's way home, the crisis page and the health check."""

from flask import Blueprint, flash, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from familylink.extensions import db, limiter
from familylink.i18n import LANGUAGES
from familylink.models import Role
from familylink.services import language, learning
from familylink.services.errors import DomainError
from familylink.web import refusal_target, request_now, run

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


@bp.route("/language", methods=["POST"])
def set_language():
    """The switch in every page's footer: anyone may choose; a signed-in person keeps it."""
    chosen = request.form.get("language", "")
    if chosen not in LANGUAGES:
        flash(_("Choose one of the languages listed."), "error")
        return redirect(refusal_target())
    session["locale"] = chosen
    if current_user.is_authenticated:
        try:
            run(language.choose, current_user, chosen, now=request_now())
        except DomainError as error:
            flash(str(error), "error")
    return redirect(refusal_target())


@bp.route("/healthz")
@limiter.exempt
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
