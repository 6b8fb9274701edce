"""Sign-up, verification, sign-in and out, password reset, invitations."""

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from familylink.auth.forms import (
    ConfirmForm,
    LoginForm,
    RegisterForm,
    ResetRequestForm,
    SetPasswordForm,
)
from familylink.extensions import db, limiter
from familylink.services import accounts, audit
from familylink.services.errors import InvalidToken, ValidationError
from familylink.services.program import get_program
from familylink.web import apply_error, request_now, safe_next

bp = Blueprint("auth", __name__)


def _start_session(user) -> None:
    # A fresh session on sign-in: nothing from before it (a planted id) carries over.
    session.clear()
    login_user(user)
    session.permanent = True


def _no_referrer(body: str, status: int = 200):
    """Token pages must not leak their URL to anything they link to."""
    response = make_response(body, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = RegisterForm()
    if request.method == "GET":
        form.timezone.data = get_program().timezone
        form.email.data = request.args.get("email", "")[:254] or None
    if form.validate_on_submit():
        try:
            accounts.register_family_member(
                name=form.name.data,
                email=form.email.data,
                password=form.password.data,
                timezone=form.timezone.data,
                now=request_now(),
            )
        except ValidationError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            return redirect(url_for("auth.check_email"))
    status = 400 if form.errors else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/register/check-email")
def check_email():
    return render_template("auth/check_email.html")


@bp.route("/verify/<token>", methods=["GET", "POST"])
def verify_email(token: str):
    # A button, not the bare link, confirms: mail scanners that open links must not use it up.
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            accounts.verify_email(token, now=request_now())
        except InvalidToken as error:
            db.session.rollback()
            return _no_referrer(
                render_template("auth/token_invalid.html", message=error.message), 400
            )
        db.session.commit()
        flash("Thank you. Your email address is confirmed. You can sign in now.", "success")
        return redirect(url_for("auth.login"))
    return _no_referrer(render_template("auth/verify.html", form=form))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20 per 15 minutes", methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(form.email.data, form.password.data, now=request_now())
        except ValidationError as error:
            db.session.commit()  # keep the audit row of the failure
            apply_error(form, error)
        else:
            db.session.commit()
            _start_session(user)
            return redirect(safe_next(url_for("main.home")))
    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("main.home"))
    audit.record("auth.signed_out", actor=current_user, now=request_now())
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def request_reset():
    form = ResetRequestForm()
    if form.validate_on_submit():
        try:
            accounts.request_password_reset(form.email.data, now=request_now())
        except ValidationError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            return render_template("auth/reset_sent.html")
    status = 400 if form.errors else 200
    return render_template("auth/reset_request.html", form=form), status


def _set_password_page(token: str, template: str, service):
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            service(token, form.password.data, now=request_now())
        except InvalidToken as error:
            db.session.rollback()
            return _no_referrer(
                render_template("auth/token_invalid.html", message=error.message), 400
            )
        except ValidationError as error:
            db.session.rollback()
            apply_error(form, error)
        else:
            db.session.commit()
            logout_user()
            session.clear()
            flash("Your password is set. Please sign in.", "success")
            return redirect(url_for("auth.login"))
    status = 400 if form.errors else 200
    return _no_referrer(render_template(template, form=form), status)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def reset_password(token: str):
    return _set_password_page(token, "auth/reset_password.html", accounts.reset_password)


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def accept_invitation(token: str):
    return _set_password_page(token, "auth/accept_invitation.html", accounts.accept_invitation)
