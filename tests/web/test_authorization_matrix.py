"""Who may open what: every endpoint in app.url_map, asked by every kind of person.

The expected answers live in ONE table, `EXPECTED`, keyed by (endpoint, method). A new
route that is not in the table fails `test_every_route_is_in_the_table`, so nothing
ships unchecked. To add a feature's routes, add rows (and any URL arguments to
`URL_ARGS`): ids in URLs always belong to someone else, so object routes answer 404.

Answers: 200/400 the page (400: the empty form was refused), 302 a redirect (to sign in
for anonymous visitors), 404 "not yours / no such thing" — never a hint that it exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    AccountToken,
    AuditEvent,
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    FamilyLink,
    OutboxEmail,
    Program,
    Role,
    User,
    UserSession,
)
from familylink.models.types import utcnow
from familylink.services import mailer, sessions
from tests.conftest import AuthActions
from tests.factories import create_consent, create_user
from tests.web.test_auth_routes import GOOD

ACTORS = (
    "anonymous",
    "family_consented",  # active consent from the patient
    "family_no_consent",  # signed up, never linked
    "family_revoked",  # the patient revoked their consent
    "family_expired",  # their consent ran out
    "patient",
    "other_patient",  # a patient of another therapist
    "therapist",  # the patient's therapist
    "other_therapist",
    "admin",
)
FAMILY = ("family_consented", "family_no_consent", "family_revoked", "family_expired")
PATIENTS = ("patient", "other_patient")
THERAPISTS = ("therapist", "other_therapist")
SIGNED_IN = ACTORS[1:]
STAFF = (*THERAPISTS, "admin")

# Who may see the patient's name anywhere (every response is checked for it).
MAY_SEE_PATIENT = {"family_consented", "patient", "therapist"}


def every(answer: int, **exceptions: int) -> dict[str, int]:
    """The same answer for everyone, except those named."""
    return {actor: exceptions.get(actor, answer) for actor in ACTORS}


def only(*allowed: str, ok: int = 200) -> dict[str, int]:
    """Signed-in `allowed` get `ok`; other signed-in people 404; anonymous sent to sign in."""
    return {
        actor: 302 if actor == "anonymous" else (ok if actor in allowed else 404)
        for actor in ACTORS
    }


def signed_in(ok: int = 200) -> dict[str, int]:
    return only(*SIGNED_IN, ok=ok)


def anonymous_only(ok: int = 200) -> dict[str, int]:
    """Sign-in pages: signed-in people are sent home."""
    return every(302, anonymous=ok)


# fmt: off
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("static", "GET"): every(200),
    ("main.home", "GET"): anonymous_only(),
    ("main.crisis", "GET"): every(200),
    ("main.healthz", "GET"): every(200),
    ("auth.register", "GET"): anonymous_only(),
    ("auth.register", "POST"): anonymous_only(400),
    ("auth.check_email", "GET"): every(200),
    ("auth.verify_email", "GET"): every(200),
    ("auth.verify_email", "POST"): every(400),  # someone else's / unknown token
    ("auth.login", "GET"): anonymous_only(),
    ("auth.login", "POST"): anonymous_only(400),
    ("auth.login_code", "GET"): every(302),  # no password step pending
    ("auth.login_code", "POST"): every(302),
    ("auth.logout", "POST"): every(302),
    ("auth.request_reset", "GET"): every(200),
    ("auth.request_reset", "POST"): every(400),
    ("auth.reset_password", "GET"): every(200),
    ("auth.reset_password", "POST"): every(400),
    ("auth.accept_invitation", "GET"): every(200),
    ("auth.accept_invitation", "POST"): every(400),
    ("auth.confirm_email_change", "GET"): every(200),
    ("auth.confirm_email_change", "POST"): every(400),
    ("admin.home", "GET"): only("admin"),
    ("admin.settings", "GET"): only("admin"),
    ("admin.settings", "POST"): only("admin", ok=400),
    ("admin.invite_therapist", "POST"): only("admin", ok=400),
    ("admin.audit_log", "GET"): only("admin"),
    ("admin.audit_export", "GET"): only("admin"),
    ("therapist.home", "GET"): only(*THERAPISTS),
    ("therapist.enrol_patient", "POST"): only(*THERAPISTS, ok=400),
    ("patient.home", "GET"): only(*PATIENTS),
    ("family.home", "GET"): only(*FAMILY),
    ("account.home", "GET"): signed_in(),
    ("account.session_list", "GET"): signed_in(),
    ("account.end_session", "POST"): signed_in(404),  # someone else's session
    ("account.mfa_setup", "GET"): signed_in(),
    # Not yet enrolled: the empty code is refused. Staff are enrolled: the status page.
    ("account.mfa_setup", "POST"): {**signed_in(400), **{a: 200 for a in STAFF}},
    ("account.mfa_qr", "GET"): signed_in(404),  # enrolled, or no enrolment started
    ("account.mfa_new_codes", "POST"): only(*STAFF),
    ("account.mfa_disable", "POST"): signed_in(404),  # staff may not; others have it off
    ("account.change_password", "GET"): signed_in(),
    ("account.change_password", "POST"): signed_in(400),
    ("account.change_email", "GET"): signed_in(),
    ("account.change_email", "POST"): signed_in(400),
    # The development mailbox exists only with DEV_MAILBOX and no SMTP server (never in
    # production: tests/web/test_pages.py), and shows every email by design.
    ("dev.mailbox", "GET"): every(200),
    ("dev.message", "GET"): every(200),
    # Scheduling, round 2 (issue 4). A seat id that is nobody's: 404 for everyone, even the
    # therapist (tests/web/test_booking_pages.py moves a real seat of their own).
    ("therapist.reschedule_seat", "GET"): only(),
    ("therapist.reschedule_seat", "POST"): only(),
    ("admin.session_types", "GET"): only("admin"),
    ("admin.session_types", "POST"): only("admin", ok=400),
    ("admin.edit_session_type", "GET"): only(),  # no session type with that id
    ("admin.edit_session_type", "POST"): only(),
    ("admin.session_type_active", "POST"): only(),
}
# fmt: on

# Values for URL arguments: always something that is not the asker's.
URL_ARGS = {
    "filename": lambda world: "style.css",
    "token": lambda world: "someone-elses-token-3f9a1c",
    "session_id": lambda world: world.victim_session_id,
    "email_id": lambda world: world.victim_email_id,
    "seat_id": lambda world: 987654,
    "type_id": lambda world: 987654,
}

# Sent with every POST: none of them may change who owns what or who may do what.
EXTRA_FIELDS = {
    "role": "admin",
    "status": "active",
    "therapist_id": "0",
    "patient_id": "0",
    "consent_id": "0",
}


@dataclass
class World:
    ids: dict[str, int] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    patient_name: str = ""
    victim_session_id: int = 0
    victim_email_id: int = 0


def build_world(app) -> World:
    world = World()
    now = utcnow()
    with app.test_request_context():
        therapist = create_user(Role.THERAPIST, name="Dana Therapist")
        other_therapist = create_user(Role.THERAPIST)
        patient = create_user(Role.PATIENT, name="Jordan Zyxwvutsky", therapist=therapist)
        other_patient = create_user(Role.PATIENT, therapist=other_therapist)
        people = {
            "therapist": therapist,
            "other_therapist": other_therapist,
            "patient": patient,
            "other_patient": other_patient,
            "admin": create_user(Role.ADMIN),
        }
        for name in FAMILY:
            people[name] = create_user(Role.FAMILY)
        create_consent(patient, people["family_consented"], now=now)
        revoked = create_consent(patient, people["family_revoked"], now=now)
        db.session.add(
            ConsentClosure(
                consent_id=revoked.id,
                reason=ClosureReason.REVOKED,
                closed_at=now - timedelta(hours=1),
                closed_by_id=patient.id,
            )
        )
        create_consent(
            patient,
            people["family_expired"],
            now=now - timedelta(days=200),
            expires_at=now - timedelta(days=1),
        )
        victim = create_user(Role.FAMILY)
        victim_session, _raw = sessions.start_session(victim, now=now)
        email = mailer.queue_email(
            "password_reset",
            to=victim,
            dedupe_key="matrix:victim",
            now=now,
            context={"link": "https://familylink.test/reset/x"},
        )
        db.session.commit()
        world.ids = {name: user.id for name, user in people.items()}
        world.emails = {name: user.email for name, user in people.items()}
        world.patient_name = patient.name
        world.victim_session_id = victim_session.id
        world.victim_email_id = email.id
    return world


def _routes(app) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_route_is_in_the_table(app):
    routes = _routes(app)
    missing = sorted(routes - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - routes)
    assert not missing, f"add these routes to EXPECTED in {__file__}: {missing}"
    assert not stale, f"these rows name routes that no longer exist: {stale}"


def test_every_row_names_every_kind_of_person():
    for key, answers in EXPECTED.items():
        assert set(answers) == set(ACTORS), key


def _url(app, endpoint: str, world: World) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {arg: URL_ARGS[arg](world) for arg in rule.arguments}
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **values)


def _clients(app, world: World) -> dict:
    clients = {"anonymous": app.test_client()}
    for actor in SIGNED_IN:
        client = app.test_client()
        response = AuthActions(client, app).login(world.emails[actor])
        assert response.status_code == 302, actor
        clients[actor] = client
    return clients


def state_snapshot() -> dict:
    """What a refused request must not change (audit rows and sessions may grow).

    Call inside an app context.
    """
    return {
        "users": db.session.execute(
            select(
                User.id,
                User.email,
                User.name,
                User.role,
                User.therapist_id,
                User.active,
                User.password_hash,
                User.totp_enabled_at,
                User.timezone,
            ).order_by(User.id)
        ).all(),
        "consents": db.session.scalar(select(func.count(ConsentRecord.id))),
        "closures": db.session.scalar(select(func.count(ConsentClosure.id))),
        "links": db.session.scalar(select(func.count(FamilyLink.id))),
        "emails": db.session.scalar(select(func.count(OutboxEmail.id))),
        "tokens": db.session.scalar(select(func.count(AccountToken.id))),
        "program": db.session.execute(select(Program.__table__)).all(),
        "ended_sessions": db.session.scalar(
            select(func.count(UserSession.id)).where(UserSession.ended_at.is_not(None))
        ),
    }


def _snapshot(app) -> dict:
    with app.app_context():
        return state_snapshot()


@pytest.mark.parametrize(("endpoint", "method"), sorted(EXPECTED))
def test_each_route_answers_each_person_as_the_table_says(app, endpoint, method):
    world = build_world(app)
    clients = _clients(app, world)
    url = _url(app, endpoint, world)
    before = _snapshot(app)
    wrong = {}
    for actor in ACTORS:
        client = clients[actor]
        response = client.get(url) if method == "GET" else client.post(url, data=EXTRA_FIELDS)
        expected = EXPECTED[(endpoint, method)][actor]
        if response.status_code != expected:
            wrong[actor] = (response.status_code, expected)
        body = response.get_data(as_text=True)
        response.close()
        if actor not in MAY_SEE_PATIENT and "Zyxwvutsky" in body:
            wrong[actor] = "shows the patient's name"
    assert not wrong, f"{method} {url}: actor -> (got, expected): {wrong}"
    if method == "POST" and endpoint != "auth.logout":
        # Only refused or empty forms were sent: nothing may have changed.
        assert _snapshot(app) == before


def _user_by_email(app, email):
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


def test_sign_up_ignores_a_role_or_ids_sent_with_the_form(app, client):
    client.post("/register", data={**GOOD, **EXTRA_FIELDS})
    user = _user_by_email(app, "maria@example.org")
    assert user.role == Role.FAMILY and user.therapist_id is None


def test_enrolling_a_patient_ignores_a_therapist_id_sent_with_the_form(app):
    world = build_world(app)
    client = app.test_client()
    AuthActions(client, app).login(world.emails["therapist"])
    response = client.post(
        "/therapist/patients",
        data={
            "name": "New Patient",
            "email": "new.patient@example.org",
            "episode_start": "2026-11-01",
            **EXTRA_FIELDS,
            "therapist_id": str(world.ids["other_therapist"]),
        },
    )
    assert response.status_code == 302
    user = _user_by_email(app, "new.patient@example.org")
    assert user.role == Role.PATIENT and user.therapist_id == world.ids["therapist"]


def test_inviting_a_therapist_ignores_a_role_sent_with_the_form(app):
    world = build_world(app)
    client = app.test_client()
    AuthActions(client, app).login(world.emails["admin"])
    response = client.post(
        "/admin/therapists",
        data={"name": "New Therapist", "email": "new.t@example.org", **EXTRA_FIELDS},
    )
    assert response.status_code == 302
    assert _user_by_email(app, "new.t@example.org").role == Role.THERAPIST


def test_denials_of_other_roles_pages_are_audited(app):
    world = build_world(app)
    client = app.test_client()
    AuthActions(client, app).login(world.emails["family_consented"])
    client.get("/admin/audit")
    with app.app_context():
        denied = db.session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "access.denied",
                AuditEvent.actor_id == world.ids["family_consented"],
            )
        )
    assert denied is not None and denied.outcome == "denied"
