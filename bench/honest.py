"""The honest minimal page: only what every signed-in FamilyLink page must do, nothing else.

A second baseline beside hello-world for `bench.pages`, served by the same gunicorn settings
and reading the same database. Per request, with SQLAlchemy Core on FamilyLink's own tables:

1. the signed session cookie (FamilyLink's own, same secret) gives the session id; its
   session row is read with its user (ended? disabled? idle or absolute limit passed?);
2. one consent row: the newest open consent from the patient in `?patient=` to that user;
3. one audit row inserted and the transaction committed;
4. a small Jinja template with a CSRF token (Flask-WTF's, as FamilyLink's forms use), compiled
   once per worker as FamilyLink's templates are.

No ORM, no Flask-Login, no blueprints, no layout. It is a bench tool, not a second way to
serve pages: nothing in FamilyLink imports it.

    DATABASE_URL=... SECRET_KEY=... gunicorn bench.honest:app
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta

from flask import Flask, abort, render_template, request, session
from flask_wtf.csrf import generate_csrf
from jinja2 import DictLoader
from sqlalchemy import and_, create_engine, insert, select

from familylink.config import apply_database_defaults, from_environment
from familylink.models import AuditEvent, ConsentClosure, ConsentRecord, FamilyLink, User
from familylink.models import UserSession as SessionRow

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)

app = Flask(__name__)
app.config.update(SECRET_KEY=os.environ["SECRET_KEY"], SESSION_REFRESH_EACH_REQUEST=False)
# FamilyLink's engine settings (SQLite's busy timeout; its SQLite pragmas and its check of
# pooled PostgreSQL connections come with the models' import).
_database = {
    "SQLALCHEMY_DATABASE_URI": os.environ["DATABASE_URL"],
    "SQLALCHEMY_ENGINE_OPTIONS": from_environment()["SQLALCHEMY_ENGINE_OPTIONS"],
}
apply_database_defaults(_database)
engine = create_engine(
    _database["SQLALCHEMY_DATABASE_URI"], **_database["SQLALCHEMY_ENGINE_OPTIONS"]
)

sessions, users = SessionRow.__table__, User.__table__
consents, links, closures = ConsentRecord.__table__, FamilyLink.__table__, ConsentClosure.__table__
audit_events = AuditEvent.__table__

SESSION_ROW = (
    select(
        sessions.c.id,
        sessions.c.created_at,
        sessions.c.last_seen_at,
        users.c.id.label("user_id"),
        users.c.role,
        users.c.active,
    )
    .join(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.ended_at.is_(None))
)
CONSENT_ROW = (
    select(consents.c.id, consents.c.scope_scheduling, consents.c.expires_at)
    .join(
        links,
        and_(
            links.c.patient_id == consents.c.patient_id,
            links.c.family_user_id == consents.c.recipient_user_id,
        ),
    )
    .outerjoin(closures, closures.c.consent_id == consents.c.id)
    .where(closures.c.id.is_(None))
    .order_by(consents.c.signed_at.desc(), consents.c.id.desc())
    .limit(1)
)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Honest page</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Hello, {{ role }}</h1>
<p>Consent {{ consent_id }} covers scheduling: {{ 'yes' if scheduling else 'no' }}.</p>
<form method="post"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<button>Save</button></form></main></body></html>"""
app.jinja_env.globals["csrf_token"] = generate_csrf
# A template file compiled once per worker, as FamilyLink's are: render_template_string
# compiles its source on every call (the largest part of this page under cProfile), which
# made the baseline slower than a real page and every ratio against it too kind.
app.jinja_loader = DictLoader({"honest.html": PAGE})


@app.get("/")
def honest_page():
    raw = session.get("sid")
    patient_id = request.args.get("patient", type=int)
    if not isinstance(raw, str) or patient_id is None:
        abort(403)
    now = datetime.now(UTC)
    digest = hashlib.sha256(raw.encode()).hexdigest()
    with engine.begin() as conn:  # one transaction, committed at the end of the block
        row = conn.execute(SESSION_ROW.where(sessions.c.id_hash == digest)).one_or_none()
        if (
            row is None
            or not row.active
            or now - row.created_at >= ABSOLUTE
            or now - row.last_seen_at >= IDLE
        ):
            abort(403)
        consent = conn.execute(
            CONSENT_ROW.where(
                links.c.family_user_id == row.user_id, consents.c.patient_id == patient_id
            )
        ).one_or_none()
        if consent is None or (consent.expires_at is not None and consent.expires_at <= now):
            abort(403)
        conn.execute(
            insert(audit_events),
            {
                "at": now,
                "actor_id": row.user_id,
                "actor_role": row.role,
                "action": "patient_data.viewed",
                "patient_id": patient_id,
                "outcome": "success",
                "ip": request.remote_addr,
                "request_id": str(uuid.uuid4()),
                "detail": {"page": "honest"},
                "insert_key": uuid.uuid4(),
            },
        )
    return render_template(
        "honest.html", role=row.role, consent_id=consent.id, scheduling=consent.scope_scheduling
    )


@app.get("/healthz")
def healthz():
    return "ok"
