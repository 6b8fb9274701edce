"""Sign-up, verification, sign-in and out, password reset, invitations."""

import hashlib

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from familylink.auth import guard
from familylink.auth.forms import (
    ConfirmForm,
    LoginForm,
    MfaCodeForm,
    RegisterForm,
    ResetRequestForm,
    SetPasswordForm,
)
from familylink.extensions import db, limiter
from familylink.services import accounts, audit, lockout, mfa
from familylink.services.errors import DomainError, InvalidToken, ValidationError
from familylink.services.program import get_program
from familylink.web import apply_error, form_status, request_now, run, safe_next, submit

bp = Blueprint("auth", __name__)


def _start_session(user) -> None:
    # A fresh server-side session on sign-in: nothing from before it (a planted id) carries over.
    guard.start(user)


# Limits read from settings at request time, so tests and deployments can change them.
def _login_ip_limit() -> str:
    return current_app.config["LOGIN_LIMIT_PER_IP"]


def _login_address_limit() -> str:
    return current_app.config["LOGIN_LIMIT_PER_ADDRESS"]


def _form_limit() -> str:
    return current_app.config["FORM_LIMIT"]


def _submitted_address() -> str:
    """The rate-limit key for the address typed in (hashed: keys never hold an address)."""
    address = (request.form.get("email") or "").strip().lower()[:254]
    return "address:" + hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()


MFA_PENDING_SECONDS = 5 * 60


def _no_referrer(body: str, status: int = 200):
    """Token pages must not leak their URL to anything they link to."""
    response = make_response(body, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _invalid_token(error: InvalidToken):
    return _no_referrer(render_template("auth/token_invalid.html", message=error.message), 400)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_form_limit, methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = RegisterForm()
    if request.method == "GET":
        form.timezone.data = get_program().timezone
        form.email.data = request.args.get("email", "")[:254] or None
    done = submit(
        form,
        lambda f: accounts.register_family_member(
            name=f.name.data,
            email=f.email.data,
            password=f.password.data,
            timezone=f.timezone.data,
            now=request_now(),
        ),
        redirect_to=url_for("auth.check_email"),
    )
    if done is not None:
        return done
    return render_template("auth/register.html", form=form), form_status(form)


@bp.route("/register/check-email")
def check_email():
    return render_template("auth/check_email.html")


@bp.route("/verify/<token>", methods=["GET", "POST"])
def verify_email(token: str):
    # A button, not the bare link, confirms: mail scanners that open links must not use it up.
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            run(accounts.verify_email, token, now=request_now())
        except InvalidToken as error:
            return _invalid_token(error)
        flash(_("Thank you. Your email address is confirmed. You can sign in now."), "success")
        return redirect(url_for("auth.login"))
    return _no_referrer(render_template("auth/verify.html", form=form))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_ip_limit, methods=["POST"])
@limiter.limit(_login_address_limit, methods=["POST"], key_func=_submitted_address)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = run(
                accounts.authenticate, form.email.data, form.password.data, now=request_now()
            )
        except DomainError as error:
            apply_error(form, error)
        else:
            if user.mfa_enabled:
                session.clear()
                session["mfa_user"] = user.id
                session["mfa_since"] = request_now().timestamp()
                session["mfa_password"] = mfa.password_step_mark(user)
                return redirect(url_for("auth.login_code", next=safe_next("") or None))
            _start_session(user)
            return redirect(safe_next(url_for("main.home")))
    return render_template("auth/login.html", form=form), form_status(form)


def _pending_mfa_user():
    from familylink.models import User

    user_id, since = session.get("mfa_user"), session.get("mfa_since")
    if not isinstance(user_id, int) or not isinstance(since, int | float):
        return None
    if request_now().timestamp() - since > MFA_PENDING_SECONDS:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.active or not user.mfa_enabled:
        return None
    return user if session.get("mfa_password") == mfa.password_step_mark(user) else None


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(_login_ip_limit, methods=["POST"])
def login_code():
    """The second step: a code from the authenticator app, or a recovery code."""
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    user = _pending_mfa_user()
    if user is None:
        session.clear()
        flash(_("Please sign in again."), "info")
        return redirect(url_for("auth.login"))
    form = MfaCodeForm()
    if form.validate_on_submit():
        try:
            run(_second_step, user, form.code.data, now=request_now())
        except DomainError as error:
            apply_error(form, error)
        else:
            _start_session(user)
            return redirect(safe_next(url_for("main.home")))
    return render_template("auth/login_code.html", form=form), form_status(form)


def _second_step(user, code: str, *, now) -> None:
    if lockout.is_locked_out(user, now=now):
        audit.record("mfa.failed", actor=user, outcome="failure", now=now)
        raise ValidationError(mfa.WRONG_CODE, field="code")
    mfa.verify_second_step(user, code, now=now)
    audit.record("auth.signed_in", actor=user, now=now)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("main.home"))
    audit.record("auth.signed_out", actor=current_user, now=request_now())
    guard.end_current("signed_out")
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(_form_limit, methods=["POST"])
def request_reset():
    form = ResetRequestForm()
    if form.validate_on_submit():
        try:
            run(accounts.request_password_reset, form.email.data, now=request_now())
        except DomainError as error:
            apply_error(form, error)
        else:
            return render_template("auth/reset_sent.html")
    return render_template("auth/reset_request.html", form=form), form_status(form)


def _set_password_page(token: str, template: str, service):
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            run(service, token, form.password.data, now=request_now())
        except InvalidToken as error:
            return _invalid_token(error)
        except DomainError as error:
            apply_error(form, error)
        else:
            guard.end_current("password_reset")
            flash(_("Your password is set. Please sign in."), "success")
            return redirect(url_for("auth.login"))
    return _no_referrer(render_template(template, form=form), form_status(form))


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_form_limit, methods=["POST"])
def reset_password(token: str):
    return _set_password_page(token, "auth/reset_password.html", accounts.reset_password)


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@limiter.limit(_form_limit, methods=["POST"])
def accept_invitation(token: str):
    return _set_password_page(token, "auth/accept_invitation.html", accounts.accept_invitation)


@bp.route("/email-change/<token>", methods=["GET", "POST"])
@limiter.limit(_form_limit, methods=["POST"])
def confirm_email_change(token: str):
    """The link sent to a new address; a button (not the bare link) confirms it."""
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            run(accounts.confirm_email_change, token, now=request_now())
        except InvalidToken as error:
            return _invalid_token(error)
        flash(_("Your new email address is confirmed. Use it to sign in from now on."), "success")
        return redirect(url_for("main.home"))
    return _no_referrer(render_template("auth/confirm_email_change.html", form=form))
