"""The therapist's side: their own patients, and enrolling new ones."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import Role, User
from familylink.services import accounts
from familylink.services import consent as consent_service
from familylink.services.errors import Conflict, ValidationError
from familylink.services.program import get_program
from familylink.therapist.forms import EnrolPatientForm, PaperConsentForm, WrittenRevocationForm
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


@bp.route("/patients/<int:patient_id>/family")
@role_required(Role.THERAPIST)
def family_contacts(patient_id: int):
    patient, rows = consent_service.family_contacts(current_user, patient_id, now=request_now())
    db.session.commit()
    return render_template("therapist/family_contacts.html", patient=patient, rows=rows)


@bp.route("/patients/<int:patient_id>/consents/paper", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def record_paper_consent(patient_id: int):
    patient = consent_service.own_patient(current_user, patient_id)
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
