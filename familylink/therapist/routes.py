"""The therapist's side: their own patients, and enrolling new ones."""

from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AvailabilityOverride, AvailabilityWindow, Role
from familylink.services import (
    access,
    accounts,
    attendance,
    booking,
    episodes,
    homes,
    progress_updates,
)
from familylink.services import consent as consent_service
from familylink.services.errors import Conflict, DomainError
from familylink.services.program import local_day
from familylink.therapist.forms import (
    DischargeForm,
    EnrolPatientForm,
    GroupForm,
    NewProgressUpdateForm,
    OverrideForm,
    PaperConsentForm,
    ProgramAttendanceForm,
    ProgressUpdateForm,
    ReadmitForm,
    SessionTypeForm,
    WindowForm,
    WrittenRevocationForm,
    weekday_choices,
)
from familylink.web import (
    apply_error,
    back_on_refusal,
    form_status,
    parse_day,
    request_now,
    role_required,
    run,
    submit,
)

bp = Blueprint("therapist", __name__)


@bp.route("/")
@role_required(Role.THERAPIST)
def home():
    return _home_page(EnrolPatientForm())


def _home_page(form, status: int = 200):
    page = homes.therapist_home(current_user, now=request_now())
    return render_template(
        "therapist/home.html", home=page, patients=page.patients, form=form
    ), status


@bp.route("/patients", methods=["POST"])
@role_required(Role.THERAPIST)
def enrol_patient():
    form = EnrolPatientForm()
    done = submit(
        form,
        lambda f: accounts.enrol_patient(current_user, now=request_now(), **f.enrolment()),
        redirect_to=url_for("therapist.home"),
        message=_("%(name)s is enrolled and has been emailed an invitation.", name=form.name.data),
    )
    return done if done is not None else _home_page(form, 400)


def _contacts_page(patient_id: int, status: int = 200, **forms):
    """The therapist's page about one patient: family contacts and episodes of care."""
    patient, rows = consent_service.family_contacts(current_user, patient_id, now=request_now())
    history = episodes.episodes_of(patient.id)
    return render_template(
        "therapist/family_contacts.html",
        patient=patient,
        rows=rows,
        episodes=history,
        in_progress=episodes.in_progress(history),
        discharge_form=forms.get("discharge_form") or DischargeForm(formdata=None),
        readmit_form=forms.get("readmit_form") or ReadmitForm(formdata=None),
    ), status


@bp.route("/patients/<int:patient_id>/family")
@role_required(Role.THERAPIST)
def family_contacts(patient_id: int):
    return _contacts_page(patient_id)


@bp.route("/patients/<int:patient_id>/discharge", methods=["POST"])
@role_required(Role.THERAPIST)
def discharge(patient_id: int):
    return _change_episode(
        patient_id,
        "discharge_form",
        DischargeForm(),
        lambda f: episodes.discharge(
            current_user,
            patient_id,
            ended_on=f.ended_on.data,
            reason=f.reason.data,
            now=request_now(),
        ),
        _("The episode of care has ended."),
    )


@bp.route("/patients/<int:patient_id>/readmit", methods=["POST"])
@role_required(Role.THERAPIST)
def readmit(patient_id: int):
    return _change_episode(
        patient_id,
        "readmit_form",
        ReadmitForm(),
        lambda f: episodes.readmit(
            current_user, patient_id, started_on=f.started_on.data, now=request_now()
        ),
        _("A new episode of care has started."),
    )


def _change_episode(patient_id: int, form_name: str, form, change, message: str):
    """Discharge and readmission are posted from the family contacts page and return to it:
    on refusal, the page again with the posted form and its messages."""
    done = submit(
        form,
        change,
        redirect_to=url_for("therapist.family_contacts", patient_id=patient_id),
        message=message,
    )
    return done or _contacts_page(patient_id, 400, **{form_name: form})


def _paper_consent_recorded(record) -> str:
    """The flash: an invitation goes only to a person the consent is not yet bound to."""
    if record.recipient_user_id is None:
        return _("The paper consent is recorded and the invitation is on its way.")
    return _(
        "The paper consent is recorded. %(name)s is already linked, so no invitation"
        " is sent: it applies now.",
        name=record.recipient_name,
    )


@bp.route("/patients/<int:patient_id>/consents/paper", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def record_paper_consent(patient_id: int):
    patient = access.therapist_patient(
        current_user, patient_id, now=request_now(), what="paper consent"
    )
    form = PaperConsentForm(locale=patient.locale, invitation_locale=patient.locale)
    done = submit(
        form,
        lambda f: consent_service.record_paper_consent(
            current_user,
            patient_id,
            f.details(),
            signed_on=f.signed_on.data,
            attested=bool(f.attested.data),
            now=request_now(),
            ip=request.remote_addr,
            user_agent=request.user_agent.string,
        ),
        redirect_to=url_for("therapist.family_contacts", patient_id=patient_id),
        message=_paper_consent_recorded,
    )
    if done is not None:
        return done
    return render_template(
        "therapist/paper_consent.html", form=form, patient=patient, **consent_service.form_terms()
    ), form_status(form)


@bp.route("/consents/<int:consent_id>")
@role_required(Role.THERAPIST)
def consent_detail(consent_id: int):
    record = consent_service.consent_for_viewer(current_user, consent_id, now=request_now())
    return render_template(
        "consent/printable.html", **consent_service.printable(record, now=request_now())
    )


@bp.route("/consents/<int:consent_id>/revoke", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def record_revocation(consent_id: int):
    now = request_now()
    record = consent_service.consent_for_viewer(current_user, consent_id, now=now)
    form = WrittenRevocationForm()
    contacts = url_for("therapist.family_contacts", patient_id=record.patient_id)
    if form.validate_on_submit():
        try:
            run(
                consent_service.revoke_consent,
                current_user,
                consent_id,
                now=now,
                method="written",
                note=form.note.data,
            )
        except Conflict as error:
            flash(error.message, "info")  # already ended: say so, nothing to fix on the form
            return redirect(contacts)
        except DomainError as error:
            apply_error(form, error)
        else:
            told = consent_service.after_revocation(record, now=now, timezone=current_user.timezone)
            flash(told.message, "info" if told.access_goes_on else "success")
            return redirect(contacts)
    details = consent_service.printable(record, now=now)
    return render_template("therapist/revoke.html", form=form, **details), form_status(form)


# --- Program attendance ----------------------------------------------------------------------


def _saved(changed: int) -> str:
    if not changed:
        return _("Nothing changed.")
    return ngettext("Saved %(num)d change.", "Saved %(num)d changes.", changed)


@bp.route("/attendance", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def program_attendance():
    """One program day's attendance of the therapist's own patients (a day to come shows today)."""
    now = request_now()
    form = ProgramAttendanceForm()
    if not form.is_submitted():
        form.day.data = min(parse_day(request.args.get("day")) or local_day(now), local_day(now))
    done = submit(
        form,
        lambda f: attendance.record_program_attendance(
            current_user, f.day.data, f.statuses(request.form), now=now
        ),
        redirect_to=lambda _changed: url_for("therapist.program_attendance", day=form.day.data),
        message=_saved,
    )
    if done is not None:
        return done
    sheet = attendance.day_sheet(current_user, form.day.data or local_day(now), now=now)
    chosen = form.statuses(request.form) if form.is_submitted() else sheet.statuses
    return render_template(
        "therapist/program_attendance.html",
        form=form,
        sheet=sheet,
        chosen=chosen,
        today=local_day(now),
    ), form_status(form)


# --- Availability, session types, groups ----------------------------------------------------


def _availability_page(status=200, **forms):
    windows = db.session.scalars(
        select(AvailabilityWindow)
        .where(AvailabilityWindow.therapist_id == current_user.id)
        .order_by(AvailabilityWindow.weekday, AvailabilityWindow.start_time)
    ).all()
    overrides = db.session.scalars(
        select(AvailabilityOverride)
        .where(AvailabilityOverride.therapist_id == current_user.id)
        .order_by(AvailabilityOverride.day)
    ).all()
    return render_template(
        "therapist/availability.html",
        windows=windows,
        overrides=overrides,
        session_types=booking.all_session_types(),
        window_form=forms.get("window_form") or WindowForm(),
        override_form=forms.get("override_form") or OverrideForm(),
        type_form=forms.get("type_form") or SessionTypeForm(),
        weekdays=dict(weekday_choices()),
    ), status


@bp.route("/availability")
@role_required(Role.THERAPIST)
def availability():
    return _availability_page()


def _add(form, key: str, add):
    """Add what `form` describes with the booking operation `add` (a window, a date's
    override, a session type); a refusal shows the availability page again with the form."""
    done = submit(
        form,
        lambda f: add(actor=current_user, now=request_now(), **f.booking_arguments()),
        redirect_to=url_for("therapist.availability"),
        message=_("Saved."),
    )
    return done if done is not None else _availability_page(400, **{key: form})


@bp.route("/availability/windows", methods=["POST"])
@role_required(Role.THERAPIST)
def add_window():
    return _add(WindowForm(), "window_form", booking.add_window)


@bp.route("/availability/overrides", methods=["POST"])
@role_required(Role.THERAPIST)
def add_override():
    return _add(OverrideForm(), "override_form", booking.add_override)


@bp.route("/availability/<kind>/<int:item_id>/delete", methods=["POST"])
@role_required(Role.THERAPIST)
@back_on_refusal(lambda kind, item_id: url_for("therapist.availability"))
def remove_availability(kind: str, item_id: int):
    booking.remove_availability(actor=current_user, kind=kind, item_id=item_id, now=request_now())
    flash(_("Removed."), "success")
    return redirect(url_for("therapist.availability"))


@bp.route("/session-types", methods=["POST"])
@role_required(Role.THERAPIST)
def add_session_type():
    return _add(SessionTypeForm(), "type_form", booking.add_session_type)


@bp.route("/groups", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def groups():
    form = GroupForm()
    form.session_type.choices = [(t.id, t.name) for t in booking.all_session_types() if t.is_group]
    done = submit(
        form,
        lambda f: booking.schedule_group(
            actor=current_user,
            session_type_id=f.session_type.data,
            first_day=f.first_day.data,
            start_time=f.start_time.data,
            weeks=f.weeks.data,
            capacity=f.capacity.data,
            now=request_now(),
        ),
        redirect_to=_calendar_of_first,
        message=lambda made: ngettext(
            "%(num)d group session scheduled.", "%(num)d group sessions scheduled.", len(made)
        ),
    )
    if done is not None:
        return done
    return render_template("therapist/groups.html", form=form), form_status(form)


def _calendar_of_first(made) -> str:
    day = made[0].starts_at.astimezone(ZoneInfo(current_user.timezone)).date()
    return url_for("therapist_booking.calendar", date=day.isoformat())


# --- Progress updates --------------------------------------------------------------------------


@bp.route("/patients/<int:patient_id>/updates", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def progress_updates_page(patient_id: int):
    now = request_now()
    patient, updates, family = progress_updates.therapist_page(current_user, patient_id, now=now)
    form = NewProgressUpdateForm(family)
    done = submit(
        form,
        lambda f: progress_updates.draft_update(
            current_user,
            patient_id,
            text=f.text.data,
            family_user_id=f.recipient_id(),
            confirmed=f.confirmed_words(),
            now=now,
        ),
        redirect_to=url_for("therapist.progress_updates_page", patient_id=patient_id),
        message=_(
            "Sent to %(name)s to read. Nobody else sees it unless they approve it.",
            name=patient.first_name,
        ),
    )
    if done is not None:
        return done
    return render_template(
        "therapist/progress_updates.html",
        patient=patient,
        updates=updates,
        family=family,
        form=form,
    ), form_status(form)


@bp.route("/updates/<int:update_id>/revise", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def revise_update(update_id: int):
    now = request_now()
    update = progress_updates.therapist_update(current_user, update_id, now=now)
    form = ProgressUpdateForm()
    if not form.is_submitted():
        form.text.data = update.current.text
    done = submit(
        form,
        lambda f: progress_updates.revise_update(
            current_user, update_id, text=f.text.data, confirmed=f.confirmed_words(), now=now
        ),
        redirect_to=url_for("therapist.progress_updates_page", patient_id=update.patient_id),
        message=_("The new version is waiting for the patient to read it."),
    )
    if done is not None:
        return done
    return render_template("therapist/revise_update.html", update=update, form=form), form_status(
        form
    )
