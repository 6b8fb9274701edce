"""The web side of server-side sessions and the staff two-step rule.

The signed cookie holds Flask-Login's user id and our random session id (`sid`). The user
id alone is never trusted: a request is signed in only when `sid` names a live session
row of that same user. Everything else about the session lives in the database.
"""

from __future__ import annotations

from flask import Flask, abort, g, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from familylink.extensions import db, login_manager
from familylink.services import sessions
from familylink.web import request_now

SESSION_KEY = "sid"

# What a staff member without two-step sign-in may still open: the enrolment itself.
MFA_ENROLMENT_ENDPOINTS = {
    "account.mfa_setup",
    "account.mfa_qr",
    "auth.logout",
    "static",
    "main.crisis",
    "main.healthz",
}


def is_background_request() -> bool:
    """Polling and other automatic requests say so; they must not keep a session alive."""
    return request.headers.get("X-Background") == "1"


def load_user(user_id: str):
    raw = session.get(SESSION_KEY)
    now = request_now()
    live = sessions.resolve(raw, now=now, touch=not is_background_request())
    # Committed apart from the view's own changes: the activity stamp, or the ending of a
    # session that just timed out. A live session resolve did not touch changed nothing
    # (most requests), and nothing before this hook writes: no commit, no question.
    if live is None:
        pending = db.session()
        if pending.new or pending.dirty or pending.deleted:
            db.session.commit()
    elif live.touched:
        db.session.commit()
    if live is None or str(live.user.id) != str(user_id):
        session.clear()
        return None
    g.user_session_id = live.id
    return live.user


def start(user) -> None:
    """Sign `user` in with a brand-new session id; nothing from before carries over."""
    session.clear()
    _record, raw = sessions.start_session(
        user,
        now=request_now(),
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )
    db.session.commit()
    login_user(user)
    session[SESSION_KEY] = raw
    session.permanent = True


def current_session_id() -> int | None:
    """The id of this request's UserSession row, or None (signed out)."""
    return g.get("user_session_id")


def current_session():
    """The UserSession row of this request, or None."""
    from familylink.models import UserSession

    session_id = current_session_id()
    return db.session.get(UserSession, session_id) if session_id else None


def end_current(reason: str) -> None:
    record = current_session()
    if record is not None:
        sessions.end_session(record, reason, now=request_now())
        db.session.commit()
    logout_user()
    session.clear()


def refuse_nul_bytes():
    """No form or query value ever needs a NUL byte, and PostgreSQL refuses them in text."""
    # A request with no body (no Content-Type: every GET a browser sends) has no form to
    # parse; Werkzeug would make an empty one on reading `request.form`.
    sent = (request.args, request.form) if request.want_form_data_parsed else (request.args,)
    for values in sent:
        for key, value in values.items(multi=True):
            if "\x00" in key or "\x00" in value:
                abort(400)


def init_app(app: Flask) -> None:
    login_manager.user_loader(load_user)
    app.before_request(refuse_nul_bytes)

    @app.before_request
    def load_session_and_require_staff_mfa():
        # Loading the user here (not lazily mid-view) keeps the session's commit separate
        # from whatever the view itself changes.
        user = current_user._get_current_object()  # one look-up through the proxy
        if not user.is_authenticated:
            return None
        if (
            user.is_staff
            and not user.mfa_enabled
            and request.endpoint not in MFA_ENROLMENT_ENDPOINTS
        ):
            return redirect(url_for("account.mfa_setup"))
        return None
