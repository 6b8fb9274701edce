"""The family member's side: only what active consents allow."""

from flask import Blueprint, flash, make_response, redirect, render_template, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from familylink.auth import guard
from familylink.extensions import limiter
from familylink.family.forms import AcceptForm, InvitationRegisterForm
from familylink.models import Role
from familylink.services import access, attendance, consent, homes, progress_updates
from familylink.services.errors import Conflict, InvalidToken, ValidationError
from familylink.services.program import get_program, local_day
from familylink.web import apply_error, form_limit, form_status, request_now, role_required, run

bp = Blueprint("family", __name__)


@bp.route("/")
@role_required(Role.FAMILY)
def home():
    now = request_now()
    # The user itself, not the proxy: the home's reads and audit rows ask it a dozen times.
    member = current_user._get_current_object()
    page = homes.family_home(member, now=now, language=get_locale().language)
    standing = None if page.linked else consent.family_standing(member, now=now)
    return render_template("family/home.html", home=page, linked=page.linked, standing=standing)


@bp.route("/patients/<int:patient_id>")
@role_required(Role.FAMILY)
def patient(patient_id: int):
    now = request_now()
    person, record = consent.patient_for_family(
        current_user, patient_id, scope=None, now=now, disclosure="patient page"
    )
    return render_template(
        "family/patient.html",
        person=person,
        consent=record,
        # An "end of episode" consent follows the episode it was signed in, not the current one.
        ends=access.consent_end(record, person),
        # Read through the gate at this moment: an ended consent hides them at once.
        updates=progress_updates.released_to(current_user, patient_id, now=now),
        # None without the attendance scope: the page then says nothing about attendance.
        weeks=attendance.family_summary(current_user, person.id, now=now),
        today=local_day(now),
    )


def _no_referrer(body: str, status: int = 200):
    response = make_response(body, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _invalid(message: str):
    return _no_referrer(render_template("auth/token_invalid.html", message=message), 400)


def _wrong_address():
    return _no_referrer(
        render_template("family/wrong_address.html", message=str(consent.WRONG_ADDRESS)), 403
    )


@bp.route("/join/<token>", methods=["GET", "POST"])
@limiter.limit(form_limit, methods=["POST"])
def accept_invitation(token: str):
    """Accept a patient's invitation: register, or link the signed-in account at that address."""
    now = request_now()
    try:
        invite, record = run(consent.invitation, token, now=now)
    except InvalidToken as error:
        return _invalid(error.message)
    if invite.locale and "locale" not in session:  # unless the visitor chose on the switch
        session["locale"] = invite.locale
    if current_user.is_authenticated:
        return _link_signed_in(token, invite, record, now)
    return _register(token, invite, record, now)


def _link_signed_in(token: str, invite, record, now):
    form = AcceptForm()
    try:
        run(consent.check_addressee, current_user, invite, record, now=now)
    except Conflict:
        return _wrong_address()
    if form.validate_on_submit():
        try:
            run(
                consent.accept_invitation,
                token,
                current_user,
                now=now,
                session=guard.current_session(),
            )
        except InvalidToken as error:
            return _invalid(error.message)
        except Conflict:
            return _wrong_address()
        flash(_("You're connected. Welcome."), "success")
        return redirect(url_for("family.home"))
    return _no_referrer(render_template("family/accept.html", form=form, record=record))


def _register(token: str, invite, record, now):
    form = InvitationRegisterForm()
    if not form.is_submitted():
        form.name.data = record.recipient_name
        form.timezone.data = get_program().timezone
    if form.validate_on_submit():
        try:
            user = run(
                consent.register_through_invitation,
                token,
                name=form.name.data,
                password=form.password.data,
                timezone=form.timezone.data,
                now=now,
                locale=str(get_locale()),  # the page's: the invitation's, unless switched
            )
        except InvalidToken as error:
            return _invalid(error.message)
        except ValidationError as error:
            apply_error(form, error)
        else:
            guard.start(user)
            flash(_("Your account is ready and you're connected. Welcome."), "success")
            return redirect(url_for("family.home"))
    return _no_referrer(
        render_template(
            "family/register.html",
            form=form,
            email=invite.email,
            token=token,
            # Kept for the account that held the address when it was sent (an email change).
            kept_for_account=invite.user_id is not None,
        ),
        form_status(form),
    )
