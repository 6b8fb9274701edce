"""A page's audit rows of what it showed are written at its commit, in its transaction.

On SQLite the first write of a transaction takes the database's one write lock until the
commit; a view row written early in the view held it while the page rendered (issues 15, 19).
The guarantee stays: no page is answered unless its audit rows committed with it.
"""

import sqlite3

import pytest
from flask import before_render_template
from flask_login import current_user
from sqlalchemy import create_engine, event, func, select

from familylink.extensions import db
from familylink.models import AuditEvent, ModuleProgress, Role, User
from familylink.services import access, audit
from familylink.services.errors import NotFound
from familylink.web import request_now, run
from tests.factories import create_consent, create_user
from tests.web.test_query_counts import FAMILY, _add_linked_patients, _forget_openings, _ids

DISCLOSED = AuditEvent.action == "disclosure.viewed"
FAMILY_PAGES = [
    "/family/",
    "/family/patients/{patient}",
    "/learn/modules/{slug}?patient={patient}",
]


@pytest.fixture
def settings_override():
    return {"PROGRAM_CACHE_SECONDS": 3600}


def _raw(connection):
    return connection.connection.dbapi_connection


def _audit_rows(app, *where) -> list[tuple[int, str]]:
    with app.app_context():
        query = select(AuditEvent.id, AuditEvent.action).where(*where).order_by(AuditEvent.id)
        return [tuple(row) for row in db.session.execute(query)]


@pytest.mark.parametrize("path", FAMILY_PAGES)
def test_a_family_page_renders_before_its_audit_rows_are_written(app, client, auth, path):
    _add_linked_patients(app, 2)
    auth.login(FAMILY)
    path = path.format(**_ids(app))
    client.get(path)  # warm: a first opening of a reading writes its progress row
    with app.app_context():
        engine = db.engine
    written: list[str] = []
    seen: list[tuple] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS"):
            written.append(statement)

    def rendering(sender, template, context, **extra):
        raw = _raw(db.session.connection())
        locked = isinstance(raw, sqlite3.Connection) and raw.in_transaction
        seen.append((template.name, len(written), locked))

    event.listen(engine, "before_cursor_execute", note)
    before_render_template.connect(rendering, app)
    try:
        response = client.get(path)
    finally:
        before_render_template.disconnect(rendering, app)
        event.remove(engine, "before_cursor_execute", note)
    assert response.status_code == 200
    assert seen and all(count == 0 and not locked for _name, count, locked in seen), seen
    # One INSERT at the commit, and the rows are there for anyone after the request.
    assert len(written) == 1
    with app.app_context():
        family_id = db.session.scalar(select(User.id).where(User.email == FAMILY))
    assert _audit_rows(app, AuditEvent.actor_id == family_id, AuditEvent.action.like("disclosure%"))


def test_a_first_opening_of_a_reading_commits_nothing_before_the_page_is_answered(
    app, client, auth
):
    """The first opening writes its progress row in a savepoint; on SQLite a savepoint taken
    with no transaction open is itself the transaction, and its release commits. The page's
    held rows are written before it, so it stays inside the request's one transaction."""
    _add_linked_patients(app, 1)
    _forget_openings(app)
    auth.login(FAMILY)
    path = "/learn/modules/{slug}?patient={patient}".format(**_ids(app))
    with app.app_context():
        other = create_engine(db.engine.url)
    seen: list[tuple[int, int]] = []

    def rendering(sender, template, context, **extra):
        with other.connect() as connection:
            seen.append(
                (
                    connection.scalar(select(func.count(ModuleProgress.id))),
                    connection.scalar(select(func.count(AuditEvent.id)).where(DISCLOSED)),
                )
            )

    before_render_template.connect(rendering, app)
    try:
        assert client.get(path).status_code == 200
    finally:
        before_render_template.disconnect(rendering, app)
        other.dispose()
    assert seen and set(seen) == {(0, 0)}
    with app.app_context():
        assert db.session.scalar(select(func.count(ModuleProgress.id))) == 1


@pytest.fixture
def gate_routes(app):
    """Routes standing for any page: open the signed-in family member's patient (the
    disclosure row held), then fail, or act in `run`."""

    def opened():
        patient_id = int(current_user.name.split()[-1])
        return access.patient(current_user, patient_id, now=request_now(), what="test page")

    def then_fails():
        opened()
        raise RuntimeError("a bug after the gate")

    def then_acts():
        opened()
        run(lambda: audit.record("test.acted", actor=current_user))
        return "done"

    def then_refused():
        opened()
        try:
            run(access.patient, current_user, 2**31 - 1, now=request_now(), what="other")
        except NotFound:
            return "refused", 404
        return "not refused"

    app.add_url_rule("/_t-fails", "test_fails", then_fails)
    app.add_url_rule("/_t-acts", "test_acts", then_acts)
    app.add_url_rule("/_t-refused", "test_refused", then_refused)
    with app.app_context():
        patient = create_user(Role.PATIENT, therapist=create_user(Role.THERAPIST))
        db.session.flush()
        member = create_user(Role.FAMILY, email="m@example.org", name=f"Member {patient.id}")
        create_consent(patient, member)
        db.session.commit()
        return member.id


def test_a_page_that_fails_after_the_gate_leaves_no_row(app, client, auth, gate_routes):
    auth.login("m@example.org")
    assert client.get("/_t-fails").status_code == 500
    assert _audit_rows(app, AuditEvent.action == "disclosure.viewed") == []


def test_an_actions_rows_come_after_the_pages_view_rows(app, client, auth, gate_routes):
    auth.login("m@example.org")
    assert client.get("/_t-acts").status_code == 200
    rows = _audit_rows(app, AuditEvent.action.in_(["disclosure.viewed", "test.acted"]))
    assert [action for _id, action in rows] == ["disclosure.viewed", "test.acted"]


def test_a_refusal_in_run_keeps_its_row_after_the_pages_view_row(app, client, auth, gate_routes):
    auth.login("m@example.org")
    assert client.get("/_t-refused").status_code == 404
    rows = _audit_rows(app, AuditEvent.action.in_(["disclosure.viewed", "access.denied"]))
    assert [action for _id, action in rows] == ["disclosure.viewed", "access.denied"]


# --- Outside requests: commands, sweeps and tests commit the same way ------------------------


@pytest.fixture
def patients(app):
    with app.app_context():
        therapist = create_user(Role.THERAPIST)
        found = [create_user(Role.PATIENT, therapist=therapist) for _ in range(3)]
        db.session.commit()
        return therapist.id, [p.id for p in found]


def _views(actor_id: int) -> int:
    return len(
        db.session.scalars(
            select(AuditEvent.id).where(
                AuditEvent.actor_id == actor_id, AuditEvent.action == "patient_data.viewed"
            )
        ).all()
    )


@pytest.mark.parametrize(("rolled_back", "kept"), [(False, 3), (True, 0)])
def test_a_commit_writes_the_held_rows_and_a_rollback_drops_them(app, patients, rolled_back, kept):
    """As a command or a sweep commits: no lock taken for the rows before the commit."""
    therapist_id, patient_ids = patients
    with app.app_context():
        therapist = db.session.get(User, therapist_id)
        audit.record_patient_views(therapist, patient_ids, page="sweep")
        raw = _raw(db.session.connection())
        assert not (isinstance(raw, sqlite3.Connection) and raw.in_transaction)
        if rolled_back:
            db.session.rollback()
        db.session.commit()
    with app.app_context():
        assert _views(therapist_id) == kept


def test_the_log_read_in_the_same_transaction_shows_the_held_rows(app, patients):
    therapist_id, patient_ids = patients
    with app.app_context():
        therapist = db.session.get(User, therapist_id)
        audit.record_patient_views(therapist, patient_ids, page="sweep")
        assert len(audit.search(actor=therapist)) == 3
