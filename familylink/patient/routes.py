"""The patient's side: their consents, one family member at a time, and what was shared."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from familylink.i18n import normalise
from familylink.models import Role, UpdateStatus
from familylink.patient.forms import ConsentForm, RevokeForm, UpdateDecisionForm
from familylink.services import audit, episodes, homes, progress_updates
from familylink.services import consent as consent_service
from familylink.services.errors import Conflict, ValidationError
from familylink.web import (
    as_id,
    back_on_refusal,
    form_status,
    query_id,
    request_now,
    role_required,
    run,
    submit,
)

bp = Blueprint("patient", __name__)


@bp.route("/")
@role_required(Role.PATIENT)
def home():
    rows = episodes.episodes_of(current_user.id)
    planned = homes.planned_for_patient(current_user, now=request_now())
    return render_template("patient/home.html", episodes=rows, planned=planned)


@bp.route("/consents")
@role_required(Role.PATIENT)
def consents():
    now = request_now()
    rows = consent_service.consents_of(current_user, now=now)
    audit.record_patient_views(current_user, [current_user.id], page="consents", now=now)
    return render_template("patient/consents.html", rows=rows)


@bp.route("/consents/new", methods=["GET", "POST"])
@role_required(Role.PATIENT)
def new_consent():
    form = ConsentForm(invitation_locale=normalise(current_user.locale))
    renewing = _renewing(form)
    done = submit(
        form,
        lambda f: consent_service.sign_consent(
            current_user,
            f.details(),
            now=request_now(),
            ip=request.remote_addr,
            user_agent=request.user_agent.string,
        ),
        redirect_to=url_for("patient.consents"),
        message=lambda record: _(
            "Signed. %(name)s can see only what you chose, until it ends or you revoke it.",
            name=record.recipient_name,
        ),
    )
    if done is not None:
        return done
    return render_template(
        "patient/consent_form.html", form=form, renewing=renewing, **consent_service.form_terms()
    ), form_status(form)


def _renewing(form):
    """The consent named by ?renew= (audited as a view); a GET fills the form from it."""
    renew_id = query_id("renew")
    if not renew_id:
        return None
    renewing = consent_service.consent_for_viewer(current_user, renew_id, now=request_now())
    if request.method == "GET":
        form.fill_from(renewing)
    return renewing


@bp.route("/consents/<int:consent_id>")
@role_required(Role.PATIENT)
def consent_detail(consent_id: int):
    record = consent_service.consent_for_viewer(current_user, consent_id, now=request_now())
    return render_template(
        "consent/printable.html", **consent_service.printable(record, now=request_now())
    )


@bp.route("/consents/<int:consent_id>/revoke", methods=["GET", "POST"])
@role_required(Role.PATIENT)
def revoke(consent_id: int):
    now = request_now()
    form = RevokeForm()
    if form.validate_on_submit():
        try:
            record = run(consent_service.revoke_consent, current_user, consent_id, now=now)
        except Conflict as error:
            flash(error.message, "info")
            return redirect(url_for("patient.consents"))
        told = consent_service.after_revocation(record, now=now, timezone=current_user.timezone)
        flash(told.message, "info" if told.access_goes_on else "success")
        return redirect(url_for("patient.consents"))
    record = consent_service.consent_for_viewer(current_user, consent_id, now=now)
    return render_template(
        "patient/revoke.html",
        consent=record,
        status=consent_service.status_of(record, current_user, now),
        others=consent_service.other_grants(record, now=now),
        form=form,
    )


@bp.route("/shared")
@role_required(Role.PATIENT)
def shared():
    rows = consent_service.disclosures_of(current_user)
    audit.record_patient_views(current_user, [current_user.id], page="shared", now=request_now())
    return render_template("patient/shared.html", rows=rows)


@bp.route("/sessions")
@role_required(Role.PATIENT)
def sessions():
    from flask_login import current_user

    from familylink.services import booking
    from familylink.web import request_now

    seats = booking.patient_sessions(current_user, now=request_now())
    return render_template("patient/sessions.html", seats=seats)


@bp.route("/updates")
@role_required(Role.PATIENT)
def updates():
    rows = progress_updates.patient_page(current_user, now=request_now())
    return render_template(
        "patient/updates.html",
        updates=rows,
        form=UpdateDecisionForm(formdata=None),
        awaiting=UpdateStatus.AWAITING_PATIENT,
    )


DECIDED = {
    UpdateStatus.RELEASED: _l("Approved. Only the people it was written for can read it."),
    UpdateStatus.CHANGES_REQUESTED: _l("Your therapist will see your note and can revise it."),
    UpdateStatus.DECLINED: _l("Declined. Nobody will see this update."),
}


@bp.route("/updates/<int:update_id>", methods=["POST"])
@role_required(Role.PATIENT)
@back_on_refusal(lambda update_id: url_for("patient.updates"))
def decide_update(update_id: int):
    form = UpdateDecisionForm()
    if not form.validate_on_submit():
        raise ValidationError(_("Nothing was changed. Please try again."))
    update = progress_updates.decide(
        current_user,
        update_id,
        version_id=as_id(form.version_id.data),
        decision=form.decision.data,
        note=form.note.data,
        now=request_now(),
    )
    flash(str(DECIDED[update.status]), "success")
    return redirect(url_for("patient.updates"))
