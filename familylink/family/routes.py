"""The family member's side: only what active consents allow."""

from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_login import current_user

from familylink.auth import guard
from familylink.extensions import db, limiter
from familylink.family.forms import AcceptForm, InvitationRegisterForm
from familylink.models import Role
from familylink.services import consent
from familylink.services.errors import Conflict, InvalidToken, ValidationError
from familylink.services.program import get_program
from familylink.web import apply_error, form_limit, request_now, role_required

bp = Blueprint("family", __name__)


@bp.route("/")
@role_required(Role.FAMILY)
def home():
    linked = consent.family_overview(current_user, now=request_now())
    db.session.commit()  # the disclosure rows
    return render_template("family/home.html", linked=linked)


@bp.route("/patients/<int:patient_id>")
@role_required(Role.FAMILY)
def patient(patient_id: int):
    person, record = consent.patient_for_family(
        current_user, patient_id, scope=None, now=request_now(), disclosure="patient page"
    )
    db.session.commit()
    return render_template(
        "family/patient.html",
        person=person,
        consent=record,
        scope_explanations=consent.SCOPE_EXPLANATIONS,
        redisclosure_notice=consent.REDISCLOSURE_NOTICE,
    )


def _no_referrer(body: str, status: int = 200):
    response = make_response(body, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _invalid(message: str):
    db.session.rollback()
    return _no_referrer(render_template("auth/token_invalid.html", message=message), 400)


@bp.route("/join/<token>", methods=["GET", "POST"])
@limiter.limit(form_limit, methods=["POST"])
def accept_invitation(token: str):
    """Accept a patient's invitation: register, or link the signed-in account at that address."""
    now = request_now()
    try:
        invite, record = consent.invitation(token, now=now)
    except InvalidToken as error:
        return _invalid(error.message)
    if current_user.is_authenticated:
        form = AcceptForm()
        try:
            consent.check_addressee(current_user, invite, record, now=now)
        except Conflict:
            db.session.commit()  # the audit row of the refusal
            return _no_referrer(
                render_template("family/wrong_address.html", message=consent.WRONG_ADDRESS), 403
            )
        if form.validate_on_submit():
            try:
                consent.accept_invitation(token, current_user, now=now)
            except InvalidToken as error:
                return _invalid(error.message)
            except Conflict:
                db.session.rollback()
                return _no_referrer(
                    render_template("family/wrong_address.html", message=consent.WRONG_ADDRESS),
                    403,
                )
            db.session.commit()
            flash("You're connected. Welcome.", "success")
            return redirect(url_for("family.home"))
        return _no_referrer(render_template("family/accept.html", form=form, record=record))
    form = InvitationRegisterForm()
    if not form.is_submitted():
        form.name.data = record.recipient_name
        form.timezone.data = get_program().timezone
    if form.validate_on_submit():
        try:
            user = consent.register_through_invitation(
                token,
                name=form.name.data,
                password=form.password.data,
                timezone=form.timezone.data,
                now=now,
            )
        except InvalidToken as error:
            return _invalid(error.message)
        except ValidationError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            guard.start(user)
            flash("Your account is ready and you're connected. Welcome.", "success")
            return redirect(url_for("family.home"))
    status = 400 if form.errors or form.form_errors else 200
    return _no_referrer(
        render_template("family/register.html", form=form, email=invite.email, token=token),
        status,
    )
