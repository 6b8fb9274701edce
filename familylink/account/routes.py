"""Each person's own sign-in security: sessions, two-step sign-in, password and email."""

from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user, login_required

from familylink.account.forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    EnrolForm,
    LanguageForm,
    PasswordAgainForm,
)
from familylink.auth import guard
from familylink.auth.forms import ConfirmForm
from familylink.extensions import limiter
from familylink.services import accounts, language, mfa, sessions
from familylink.services.errors import DomainError
from familylink.services.program import get_program
from familylink.web import (
    apply_error,
    form_status,
    reauth_limit,
    request_now,
    run,
    signed_in_key,
    submit,
)

bp = Blueprint("account", __name__)


@bp.route("/")
@login_required
def home():
    return _home()


def _home(language_form=None):
    return render_template(
        "account/home.html",
        # Without two-step sign-in the page says "off": no codes to count.
        remaining_codes=current_user.mfa_enabled and mfa.remaining_recovery_codes(current_user),
        language_form=language_form or LanguageForm(language=current_user.locale),
    )


@bp.route("/language", methods=["POST"])
@login_required
def change_language():
    form = LanguageForm()
    done = submit(
        form,
        lambda f: language.choose(current_user, f.language.data, now=request_now()),
        redirect_to=url_for("account.home"),
        message=lambda _result: _language_saved(),
    )
    return done or (_home(language_form=form), 400)


def _language_saved() -> str:
    refresh()  # the message is said in the language just chosen
    return _("Your language is saved.")


@bp.route("/sessions")
@login_required
def session_list():
    return render_template(
        "account/sessions.html",
        sessions=sessions.active_sessions(current_user, now=request_now()),
        current_id=guard.current_session_id(),
        form=ConfirmForm(),
    )


@bp.route("/sessions/<int:session_id>/end", methods=["POST"])
@login_required
def end_session(session_id: int):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    sessions.end_own_session(current_user, session_id, now=request_now())  # NotFound → 404
    if guard.current_session_id() == session_id:
        guard.end_current("ended_by_user")
        flash(_("You are signed out."), "info")
        return redirect(url_for("auth.login"))
    flash(_("That session is ended."), "success")
    return redirect(url_for("account.session_list"))


def _mfa_on(codes_form=None, off_form=None):
    """The page of someone with two-step sign-in on: new recovery codes or turn it off,
    each asking for the password again (400 when one comes back with a message)."""
    codes_form = codes_form or PasswordAgainForm(prefix="codes")
    off_form = off_form or PasswordAgainForm(prefix="off")
    page = render_template(
        "account/mfa_on.html",
        remaining_codes=mfa.remaining_recovery_codes(current_user),
        codes_form=codes_form,
        off_form=off_form,
    )
    return page, max(form_status(codes_form), form_status(off_form))


@bp.route("/mfa", methods=["GET", "POST"])
@login_required
def mfa_setup():
    if current_user.mfa_enabled:
        return _mfa_on()
    secret = mfa.begin_enrolment(current_user)
    form = EnrolForm()
    if form.validate_on_submit():
        try:
            codes = run(mfa.confirm_enrolment, current_user, form.code.data, now=request_now())
        except DomainError as error:
            apply_error(form, error)
        else:
            return _no_store(render_template("account/mfa_codes.html", codes=codes))
    status = form_status(form)
    page = render_template("account/mfa_setup.html", form=form, secret=secret)
    return _no_store(page, status)


@bp.route("/mfa/qr.svg")
@login_required
def mfa_qr():
    """The enrolment QR code, drawn here as SVG (no inline script, no data: URL)."""
    if current_user.mfa_enabled or not current_user.totp_secret:
        abort(404)
    uri = mfa.provisioning_uri(current_user, get_program().name)
    response = make_response(mfa.qr_svg(uri))
    response.headers["Content-Type"] = "image/svg+xml"
    return response


@bp.route("/mfa/recovery-codes", methods=["POST"])
@limiter.limit(reauth_limit, methods=["POST"], key_func=signed_in_key)
@login_required
def mfa_new_codes():
    if not current_user.mfa_enabled:
        abort(404)
    form = PasswordAgainForm(prefix="codes")
    if form.validate_on_submit():
        try:
            codes = run(
                mfa.renew_recovery_codes, current_user, form.password.data, now=request_now()
            )
        except DomainError as error:
            apply_error(form, error)
        else:
            return _no_store(render_template("account/mfa_codes.html", codes=codes))
    return _mfa_on(codes_form=form)


@bp.route("/mfa/off", methods=["POST"])
@limiter.limit(reauth_limit, methods=["POST"], key_func=signed_in_key)
@login_required
def mfa_disable():
    if not current_user.mfa_enabled or current_user.is_staff:
        abort(404)
    form = PasswordAgainForm(prefix="off")
    done = submit(
        form,
        lambda f: mfa.disable(current_user, f.password.data, now=request_now()),
        redirect_to=url_for("account.home"),
        message=_("Two-step sign-in is off."),
    )
    return done or _mfa_on(off_form=form)


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(reauth_limit, methods=["POST"], key_func=signed_in_key)
@login_required
def change_password():
    form = ChangePasswordForm()
    done = submit(
        form,
        lambda f: accounts.change_password(
            current_user,
            current_password=f.current_password.data,
            new_password=f.new_password.data,
            now=request_now(),
            keep=guard.current_session(),
        ),
        redirect_to=url_for("account.home"),
        message=_("Your password is changed. Other devices were signed out."),
    )
    if done is not None:
        return done
    return render_template("account/password.html", form=form), form_status(form)


@bp.route("/email", methods=["GET", "POST"])
@limiter.limit(reauth_limit, methods=["POST"], key_func=signed_in_key)
@login_required
def change_email():
    form = ChangeEmailForm()
    done = submit(
        form,
        lambda f: accounts.request_email_change(
            current_user, password=f.password.data, new_email=f.new_email.data, now=request_now()
        ),
        redirect_to=url_for("account.home"),
        message=_("We sent a link to the new address. Your address changes when you open it."),
    )
    if done is not None:
        return done
    return render_template("account/email.html", form=form), form_status(form)


def _no_store(body, status: int = 200):
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response
