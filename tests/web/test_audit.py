"""The audit log: complete rows, append-only, no secrets, and the admin's viewer."""

import csv
import io
import logging
import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from familylink.extensions import db
from familylink.models import AuditEvent, OutboxEmail, Role, User
from familylink.services import audit
from tests.factories import PASSWORD, create_user, saved_user
from tests.moments import NOON
from tests.web.test_auth_routes import GOOD


def _rows(app, action=None):
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            query = query.where(AuditEvent.action == action)
        return db.session.scalars(query).all()


def test_the_audit_log_refuses_update_and_delete_on_postgresql(app_ctx, now):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    event = audit.record("test.event", now=now)
    db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(update(AuditEvent).values(action="changed"))
    db.session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(delete(AuditEvent).where(AuditEvent.id == event.id))
    db.session.rollback()
    assert db.session.scalar(select(AuditEvent.action)) == "test.event"


def test_a_web_sign_in_row_says_who_what_when_where_and_which_request(app, client, auth):
    user_id = saved_user(app)
    auth.login("maria@example.org")
    (row,) = _rows(app, "auth.signed_in")
    assert row.actor_id == user_id and row.actor_role == "family"
    assert row.outcome == "success" and row.at is not None
    assert row.ip == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f-]{36}", row.request_id)


def test_sign_in_failures_sign_out_and_denials_are_audited(app, client, auth):
    user_id = saved_user(app)
    auth.login("maria@example.org", "wrong password here")
    auth.login("maria@example.org")
    assert client.get("/therapist/").status_code == 404
    auth.logout()
    actions = [(r.action, r.outcome) for r in _rows(app) if r.actor_id == user_id]
    assert ("auth.sign_in_failed", "failure") in actions
    assert ("access.denied", "denied") in actions
    assert ("auth.signed_out", "success") in actions
    assert ("auth.session_ended", "success") in actions


def test_no_password_token_code_or_session_id_reaches_the_log_or_the_audit_rows(
    app, client, auth, caplog
):
    caplog.set_level(logging.DEBUG)
    client.post("/register", data=GOOD)
    with app.app_context():
        body = db.session.scalar(select(OutboxEmail.text_body))
    token = body.split("/verify/")[1].split()[0]
    client.post(f"/verify/{token}")
    client.post("/login", data={"email": "maria@example.org", "password": "wrong " + PASSWORD})
    auth.login("maria@example.org", GOOD["password"])
    cookie = client.get_cookie("session", domain="familylink.test").value
    from flask.sessions import SecureCookieSessionInterface

    sid = SecureCookieSessionInterface().get_signing_serializer(app).loads(cookie)["sid"]
    client.get("/account/mfa")
    with app.app_context():
        secret = db.session.scalar(select(User.totp_secret))
    code = pyotp.TOTP(secret).now()
    client.post("/account/mfa", data={"code": code})
    auth.logout()
    secrets_used = [GOOD["password"], "wrong " + PASSWORD, token, sid, secret, cookie]
    with app.app_context():
        dumped = " ".join(
            str([getattr(r, c.name) for c in AuditEvent.__table__.columns])
            for r in db.session.scalars(select(AuditEvent))
        )
    logged = caplog.text
    for secret_value in secrets_used:
        assert secret_value not in dumped
        assert secret_value not in logged


def test_a_secret_key_is_left_out_of_a_detail_at_any_depth(app_ctx, now):
    detail = {
        "Password": "top level",
        "changes": {"video": {"old": "a", "new": "b", "token": "nested"}},
        "forms": [{"field": "email", "csrf_token": "in a list"}, ("secret", "a tuple")],
    }
    event = audit.record("program.updated", detail=detail, now=now)
    db.session.commit()
    stored = db.session.scalar(select(AuditEvent.detail).where(AuditEvent.id == event.id))
    assert stored == {
        "changes": {"video": {"old": "a", "new": "b"}},
        "forms": [{"field": "email"}, ["secret", "a tuple"]],
    }
    assert detail["changes"]["video"]["token"] == "nested", "the caller's dict is not changed"


@pytest.fixture
def admin_client(app):
    with app.app_context():
        create_user(Role.ADMIN, email="admin@example.org")
        db.session.commit()
    from tests.conftest import AuthActions

    client = app.test_client()
    AuthActions(client, app).login("admin@example.org")
    return client


def _seed_events(app):
    with app.app_context():
        lee = create_user(Role.THERAPIST, email="lee@example.org")
        patient = create_user(Role.PATIENT, therapist=lee)
        audit.record("consent.granted", actor=patient, patient_id=patient.id, now=NOON)
        audit.record(
            "disclosure.viewed", actor=lee, patient_id=patient.id, now=NOON - timedelta(days=3)
        )
        audit.record(
            "auth.signed_in", actor=lee, object_type="=HYPERLINK(1)", object_id=1, now=NOON
        )
        db.session.commit()
        return lee.id, patient.id


def _listed_actions(response):
    return re.findall(r"<td>([a-z_]+\.[a-z_.]+)</td>", response.get_data(as_text=True))


def test_admins_filter_the_audit_log_by_who_patient_action_and_date(app, admin_client):
    _lee, patient_id = _seed_events(app)
    by_who = admin_client.get("/admin/audit?who=lee@example.org")
    assert set(_listed_actions(by_who)) == {"disclosure.viewed", "auth.signed_in"}
    by_patient = admin_client.get(f"/admin/audit?patient={patient_id}")
    # The search by who showed a row about the patient: the admin's view of it is listed too.
    assert set(_listed_actions(by_patient)) == {
        "consent.granted",
        "disclosure.viewed",
        "patient_data.viewed",
    }
    by_action = admin_client.get("/admin/audit?action=consent.")
    assert _listed_actions(by_action) == ["consent.granted"]
    by_date = admin_client.get(
        f"/admin/audit?patient={patient_id}&start={(NOON - timedelta(days=4)).date()}"
        f"&end={(NOON - timedelta(days=2)).date()}"
    )
    assert _listed_actions(by_date) == ["disclosure.viewed"]
    nobody = admin_client.get("/admin/audit?who=nobody@example.org")
    assert _listed_actions(nobody) == []


def test_a_bad_filter_gets_a_message_not_an_error(app, admin_client):
    response = admin_client.get("/admin/audit?patient=abc&start=yesterday")
    assert response.status_code == 400
    assert 'id="patient-error"' in response.get_data(as_text=True)


def test_the_csv_export_has_every_column_and_no_formulas(app, admin_client):
    _seed_events(app)
    response = admin_client.get("/admin/audit.csv?who=lee@example.org")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {r["action"] for r in rows} == {"disclosure.viewed", "auth.signed_in"}
    assert {"at", "actor_id", "actor_role", "patient_id", "outcome", "request_id", "ip"} <= set(
        rows[0]
    )
    assert not any(value.startswith("=") for row in rows for value in row.values())
    assert "'=HYPERLINK(1)" in {row["object_type"] for row in rows}
    assert _rows(app, "audit.exported")


@pytest.mark.parametrize("path", ["/admin/audit", "/admin/audit.csv"])
def test_looking_up_a_patients_history_is_itself_audited(app, admin_client, path):
    lee_id, patient_id = _seed_events(app)
    action = "audit.exported" if path.endswith(".csv") else "audit.viewed"
    asked = {"patient": patient_id, "who": "lee@example.org", "action": "disclosure."}
    assert admin_client.get(path, query_string=asked).status_code == 200
    (row,) = _rows(app, action)
    assert row.patient_id == patient_id and row.actor_role == Role.ADMIN
    assert row.detail == {"actor_id": str(lee_id), "action": "disclosure.", "rows": 1}
    # An id no account has is kept as asked, not as a patient (the column refers to one).
    assert admin_client.get(path, query_string={"patient": 999999}).status_code == 200
    row = _rows(app, action)[-1]
    assert row.patient_id is None and row.detail == {"patient_id": "999999", "rows": 0}


@pytest.mark.parametrize("path", ["/admin/audit", "/admin/audit.csv"])
def test_a_search_that_shows_rows_about_patients_is_a_view_of_each(app, admin_client, path):
    """Not only a search for one patient: rows found by action or by date name patients too."""
    _lee, patient_id = _seed_events(app)
    with app.app_context():
        other = create_user(Role.PATIENT)
        audit.record("consent.granted", actor=other, patient_id=other.id, now=NOON)
        db.session.commit()
        other_id = other.id
    assert admin_client.get(path, query_string={"action": "consent."}).status_code == 200
    assert sorted(_viewed(app, "audit log")) == sorted([(True, patient_id), (True, other_id)])
    # A search for one patient names them in its own row, not twice.
    admin_client.get(path, query_string={"patient": patient_id})
    assert sorted(_viewed(app, "audit log")) == sorted([(True, patient_id), (True, other_id)])


def test_only_admins_open_the_audit_log(app, client, auth):
    saved_user(app)
    auth.login("maria@example.org")
    assert client.get("/admin/audit").status_code == 404
    assert client.get("/admin/audit.csv").status_code == 404


def test_the_test_schema_has_the_append_only_trigger(app_ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    names = db.session.scalars(
        text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_events'::regclass")
    ).all()
    assert "audit_events_append_only" in names


def test_emptying_the_tables_after_a_test_leaves_the_append_only_trigger_on(app_ctx, now):
    # The fixtures' emptying turns the trigger off for its own DELETE only (tests/conftest.py).
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    from tests.conftest import _empty_all_tables

    audit.record("test.event", now=now)
    db.session.commit()
    _empty_all_tables()
    assert db.session.scalar(select(AuditEvent.id)) is None
    event = audit.record("test.event", now=now)
    db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(delete(AuditEvent).where(AuditEvent.id == event.id))
    db.session.rollback()


# --- Views of patient-linked data ------------------------------------------------------------


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def _calendar_with_patients(app, count: int) -> dict:
    """`count` patients of one therapist, each with a booked family session on one day."""
    from familylink.services import booking
    from tests.booking_setup import add_family, create_clinic

    with app.app_context():
        made = create_clinic()
        patients = [(made.patient, made.family)]
        for n in range(1, count):
            patient = create_user(Role.PATIENT, therapist=made.therapist)
            patients.append((patient, add_family(patient, f"Family Member {n}")))
        for patient, member in patients:
            slot = booking.slots_for(made.therapist.id, made.private, now=NOON)[0]
            booking.book_private(
                actor=member,
                patient_id=patient.id,
                session_type_id=made.private.id,
                starts_at=slot,
                now=NOON,
            )
        db.session.commit()
        return {
            "therapist": made.therapist.email,
            "patients": sorted(p.id for p, _ in patients),
            "date": slot.date().isoformat(),
        }


def _viewed(app, page):
    return [
        (row.actor_id is not None, row.patient_id)
        for row in _rows(app, "patient_data.viewed")
        if row.detail == {"page": page}
    ]


def test_the_calendar_audits_one_row_per_patient_shown(app, client, auth):
    made = _calendar_with_patients(app, 3)
    auth.login(made["therapist"])
    response = client.get(f"/therapist/calendar?view=day&date={made['date']}")
    assert response.status_code == 200
    assert _viewed(app, "calendar") == [(True, pid) for pid in made["patients"]]


def test_the_calendars_statements_do_not_grow_with_the_patients_shown(
    app, client, auth, count_queries
):
    made = _calendar_with_patients(app, 4)
    auth.login(made["therapist"])
    path = f"/therapist/calendar?view=day&date={made['date']}"
    client.get(path)
    with count_queries() as counter:
        client.get(path)
    with count_queries() as empty:
        client.get("/therapist/calendar?view=day&date=2030-01-01")
    # Seats, attendees and four audit rows: a fixed few statements more than an empty day.
    assert counter.count - empty.count <= 3


def test_booking_for_a_family_and_the_paper_consent_form_are_audited(app, client, auth):
    made = _calendar_with_patients(app, 1)
    (patient_id,) = made["patients"]
    auth.login(made["therapist"])
    client.get(f"/therapist/book?patient={patient_id}")
    client.get(f"/therapist/patients/{patient_id}/consents/paper")
    assert _viewed(app, "book for family") == [(True, patient_id)]
    assert _viewed(app, "paper consent") == [(True, patient_id)]


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("", "home"),
        ("consents", "consents"),
        ("shared", "shared"),
        ("sessions", "sessions"),
        ("updates", "progress updates"),
    ],
)
def test_the_patients_own_pages_are_audited(app, client, auth, path, page):
    with app.app_context():
        patient = create_user(Role.PATIENT)
        patient_id, email = patient.id, patient.email
        db.session.commit()
    auth.login(email)
    assert client.get(f"/patient/{path}").status_code == 200
    assert _viewed(app, page) == [(True, patient_id)]


@pytest.mark.parametrize(
    ("path", "page"), [("/therapist/", "my patients"), ("/learn/therapist", "family reading")]
)
def test_the_therapists_lists_of_patients_are_audited(app, client, auth, path, page):
    made = _calendar_with_patients(app, 2)
    auth.login(made["therapist"])
    assert client.get(path).status_code == 200
    assert _viewed(app, page) == [(True, pid) for pid in made["patients"]]


def test_the_book_page_list_of_patients_is_audited(app, client, auth):
    made = _calendar_with_patients(app, 2)
    auth.login(made["therapist"])
    assert client.get("/therapist/book").status_code == 200
    assert _viewed(app, "book for family") == [(True, pid) for pid in made["patients"]]


def test_the_therapists_reschedule_page_is_audited(app, client, auth):
    from familylink.models import AppointmentFamily

    made = _calendar_with_patients(app, 1)
    (patient_id,) = made["patients"]
    with app.app_context():
        seat_id = db.session.scalar(select(AppointmentFamily.id))
    auth.login(made["therapist"])
    assert client.get(f"/therapist/seats/{seat_id}/reschedule").status_code == 200
    assert _viewed(app, "reschedule") == [(True, patient_id)]


def test_the_admin_outbox_list_is_audited_per_patient_shown(app, client, auth, now):
    from familylink.services import mail

    with app.app_context():
        admin = create_user(Role.ADMIN)
        patients = [create_user(Role.PATIENT) for _ in range(2)]
        for n, patient in enumerate(patients * 2):
            row = mail.queue_email(
                "password_reset",
                to=f"failed{n}@example.org",
                dedupe_key=f"outbox-audit:{n}",
                now=now,
                patient_id=patient.id,
            )
            row.status = "failed"
        db.session.commit()
        email, patient_ids = admin.email, sorted(p.id for p in patients)
    auth.login(email)
    assert client.get("/admin/outbox").status_code == 200
    assert _viewed(app, "outbox") == [(True, pid) for pid in patient_ids]


def test_the_family_booking_list_is_audited_as_a_disclosure(app, client, auth):
    from tests.booking_setup import create_clinic

    with app.app_context():
        made = create_clinic()
        email, patient_id = made.family.email, made.patient.id
        db.session.commit()
    auth.login(email)
    assert client.get("/booking/").status_code == 200
    shown = [
        (row.patient_id, row.detail)
        for row in _rows(app, "disclosure.viewed")
        if row.detail.get("what") == "booking list"
    ]
    assert shown == [(patient_id, {"what": "booking list"})]


@pytest.mark.parametrize("suffix", ["", "/calendar.ics"], ids=["seat page", "calendar file"])
def test_another_familys_seat_is_404_and_no_disclosure(app, client, auth, suffix):
    """Drew, consented to the same patient, opens Maria's seat: nothing is shown to him, so
    nothing is added to the patient's accounting of disclosures (the refusal is audited)."""
    from tests.booking_setup import add_family, create_clinic, family_seat

    with app.app_context():
        made = create_clinic()
        drew = add_family(made.patient, "Drew Hale", email="drew@example.org")
        db.session.commit()
        seat_id, drew_id = family_seat(made, NOON + timedelta(days=2), booked_at=NOON).id, drew.id
    auth.login("drew@example.org")
    assert client.get(f"/booking/{seat_id}{suffix}").status_code == 404
    assert [row for row in _rows(app, "disclosure.viewed") if row.actor_id == drew_id] == []
    assert [row.actor_id for row in _rows(app, "access.denied")] == [drew_id]
