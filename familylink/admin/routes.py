"""Program settings and therapist accounts."""

import csv
import io
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from familylink.admin.forms import (
    OUTBOX_STATUS_NAMES,
    ROLE_NAMES,
    AccountSearchForm,
    AuditFilterForm,
    ButtonForm,
    DirectorInviteForm,
    InviteForm,
    ProgramForm,
    RetryEmailForm,
    reminder_choices,
)
from familylink.extensions import db
from familylink.models import Role, User
from familylink.services import account_admin, accounts, audit, mfa, outbox_admin
from familylink.services.program import get_program, update_program
from familylink.web import (
    back_on_refusal,
    form_status,
    refusal_target,
    request_now,
    role_required,
    submit,
)

bp = Blueprint("admin", __name__)


def _home(invite_form=None, director_form=None):
    staff = db.session.scalars(
        select(User).where(User.role.in_((Role.THERAPIST, Role.DIRECTOR))).order_by(User.name)
    ).all()
    return render_template(
        "admin/home.html",
        therapists=[user for user in staff if user.role == Role.THERAPIST],
        directors=[user for user in staff if user.role == Role.DIRECTOR],
        invite_form=invite_form or InviteForm(),
        director_form=director_form or DirectorInviteForm(prefix="director"),
    )


@bp.route("/")
@role_required(Role.ADMIN)
def home():
    return _home()


@bp.route("/settings", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def settings():
    program = get_program()
    form = ProgramForm(obj=program)
    form.reminder_offsets_hours.choices = reminder_choices(program.reminder_offsets_hours)
    if not form.is_submitted():
        form.reminder_offsets_hours.data = list(program.reminder_offsets_hours)
    done = submit(
        form,
        _save_settings,
        redirect_to=url_for("admin.settings"),
        message=_("Program settings saved."),
    )
    if done is not None:
        return done
    return render_template("admin/settings.html", form=form), form_status(form)


def _save_settings(form) -> None:
    update_program(**form.settings(), actor=current_user, now=request_now())


@bp.route("/therapists", methods=["POST"])
@role_required(Role.ADMIN)
def invite_therapist():
    return _invite(InviteForm(), "invite_form", accounts.invite_therapist)


@bp.route("/directors", methods=["POST"])
@role_required(Role.ADMIN)
def invite_director():
    return _invite(DirectorInviteForm(prefix="director"), "director_form", accounts.invite_director)


def _invite(form, key: str, invite):
    """Invite a member of staff (`accounts.invite_therapist` or `invite_director`) from the
    admin's home page; a refusal shows the page again with the form."""
    done = submit(
        form,
        lambda f: invite(current_user, name=f.name.data, email=f.email.data, now=request_now()),
        redirect_to=url_for("admin.home"),
        message=lambda user: _("Invitation sent to %(email)s.", email=user.email),
    )
    return done if done is not None else (_home(**{key: form}), 400)


# --- Accounts: the same operations as `flask account disable|enable|reset-mfa` ---


@bp.route("/accounts")
@role_required(Role.ADMIN)
def accounts_list():
    form = AccountSearchForm(request.args)
    valid = form.validate()
    found = None
    if valid:
        found = account_admin.list_accounts(
            current_user,
            search=form.q.data or "",
            role=form.role.data or None,
            page=form.page.data or 1,
            now=request_now(),
        )
    return render_template(
        "admin/accounts.html",
        form=form,
        found=found,
        button_form=ButtonForm(),
        role_names=ROLE_NAMES,
    ), 200 if valid else 400


@bp.route("/accounts/<int:user_id>/active", methods=["POST"])
@role_required(Role.ADMIN)
@back_on_refusal(lambda user_id: url_for("admin.accounts_list"))
def account_active(user_id: int):
    if not ButtonForm().validate_on_submit():
        abort(400)
    user = account_admin.account(current_user, user_id, now=request_now())
    active = request.form.get("active") == "1"
    changed = account_admin.set_account_active(user, active, actor=current_user, now=request_now())
    said = {
        (True, True): _("%(name)s can sign in again."),
        (False, True): _("%(name)s is disabled and signed out everywhere."),
        (True, False): _("%(name)s can already sign in."),
        (False, False): _("%(name)s is already disabled."),
    }[active, changed]
    flash(said % {"name": user.name}, "success" if changed else "info")
    return redirect(refusal_target())


@bp.route("/accounts/<int:user_id>/two-step", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def account_reset_two_step(user_id: int):
    user = account_admin.account(current_user, user_id, now=request_now())
    form = ButtonForm()
    done = submit(
        form,
        lambda f: mfa.reset(user, actor=current_user, now=request_now()),
        redirect_to=url_for("admin.accounts_list"),
        message=lambda cleared: (
            _("Two-step sign-in of %(name)s is cleared and their sessions ended.", name=user.name)
            if cleared
            else _("%(name)s has no two-step sign-in to reset.", name=user.name)
        ),
    )
    if done is not None:
        return done
    return render_template("admin/account_two_step.html", user=user, form=form), form_status(form)


AUDIT_COLUMNS = [
    "at",
    "actor_id",
    "actor_role",
    "action",
    "object_type",
    "object_id",
    "patient_id",
    "recipient_id",
    "outcome",
    "request_id",
    "ip",
    "detail",
]


def _audit_filters(form: AuditFilterForm) -> dict:
    """Turn the filter form into `audit.search` arguments (dates in the program's zone)."""
    zone = ZoneInfo(get_program().timezone)
    filters: dict = {}
    if form.who.data:
        actor = accounts.find_user_by_email(form.who.data.strip())
        filters["actor"] = actor
        filters["actor_missing"] = actor is None
    if form.patient.data:
        filters["patient_id"] = form.patient.data
    if form.action.data:
        filters["action"] = form.action.data.strip()
    if form.start.data:
        filters["start"] = datetime.combine(form.start.data, time(0, 0), tzinfo=zone)
    if form.end.data:
        filters["end"] = datetime.combine(
            form.end.data + timedelta(days=1), time(0, 0), tzinfo=zone
        )
    return filters


@bp.route("/audit")
@role_required(Role.ADMIN)
def audit_log():
    form = AuditFilterForm(request.args)
    valid = form.validate()
    events = audit.look_up(current_user, now=request_now(), **_audit_filters(form)) if valid else []
    return render_template("admin/audit.html", form=form, events=events), 200 if valid else 400


@bp.route("/audit.csv")
@role_required(Role.ADMIN)
def audit_export():
    form = AuditFilterForm(request.args)
    if not form.validate():
        # Only the filters go back: any other argument (`endpoint`, `_external`) would be
        # read by url_for itself.
        kept = {name: value for name, value in request.args.items() if name in form}
        return redirect(url_for("admin.audit_log", **kept))
    filters = _audit_filters(form)
    events = audit.look_up(current_user, now=request_now(), exported=True, limit=None, **filters)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    for event in events:
        writer.writerow([audit.csv_cell(getattr(event, column)) for column in AUDIT_COLUMNS])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=audit-log.csv"},
    )


@bp.route("/outbox")
@role_required(Role.ADMIN)
def outbox():
    return render_template(
        "admin/outbox.html",
        status_names=OUTBOX_STATUS_NAMES,
        counts=outbox_admin.outbox_counts(),
        failed=outbox_admin.failed_emails(current_user, now=request_now()),
        retry_form=RetryEmailForm(),
    )


@bp.route("/outbox/<int:email_id>/retry", methods=["POST"])
@role_required(Role.ADMIN)
@back_on_refusal(lambda email_id: url_for("admin.outbox"))
def retry_email(email_id: int):
    form = RetryEmailForm()
    if not form.validate_on_submit():
        abort(400)
    outbox_admin.retry_failed(email_id, actor=current_user, now=request_now())
    flash(_("Email %(number)s is queued again.", number=email_id), "success")
    return redirect(url_for("admin.outbox"))


# --- Session types (therapists can add them too; only the admin edits and retires them) ---


@bp.route("/session-types", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def session_types():
    from familylink.services import booking
    from familylink.therapist.forms import SessionTypeForm

    form = SessionTypeForm()
    done = submit(
        form,
        lambda f: booking.add_session_type(
            actor=current_user, now=request_now(), **f.booking_arguments()
        ),
        redirect_to=url_for("admin.session_types"),
        message=lambda _result: _("Session type “%(name)s” added.", name=form.name.data),
    )
    if done is not None:
        return done
    status = 400 if request.method == "POST" else 200
    return render_template(
        "admin/session_types.html", types=booking.every_session_type(), form=form
    ), status


@bp.route("/session-types/<int:type_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit_session_type(type_id: int):
    from familylink.services import booking
    from familylink.therapist.forms import SessionTypeForm

    session_type = booking.session_type_for_admin(current_user, type_id)
    form = SessionTypeForm(obj=session_type)
    done = submit(
        form,
        lambda f: booking.update_session_type(
            actor=current_user,
            session_type_id=type_id,
            now=request_now(),
            **f.booking_arguments(),
        ),
        redirect_to=url_for("admin.session_types"),
        message=_("Session type saved."),
    )
    if done is not None:
        return done
    status = 400 if request.method == "POST" else 200
    return render_template(
        "admin/session_type_edit.html", form=form, session_type=session_type
    ), status


@bp.route("/session-types/<int:type_id>/active", methods=["POST"])
@role_required(Role.ADMIN)
@back_on_refusal(lambda type_id: url_for("admin.session_types"))
def session_type_active(type_id: int):
    from familylink.services import booking

    active = request.form.get("active") == "1"
    booking.set_session_type_active(
        actor=current_user, session_type_id=type_id, active=active, now=request_now()
    )
    flash(
        _("Session type turned back on.")
        if active
        else _("Session type turned off: it can't be booked any more; booked sessions go ahead."),
        "success",
    )
    return redirect(url_for("admin.session_types"))
