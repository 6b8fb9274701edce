"""The therapist's calendar and home read rows bounded by what they show, not by the size of
the program or the therapist's history: on PostgreSQL, with thousands of other consents and
a long past, no statement of the page reads more than a few hundred rows (EXPLAIN ANALYZE).

At the bench's scale (100,000 consents) the calendar once took 25 s: its consent read walked
every open consent in the program."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from familylink.extensions import db
from tests.booking_setup import Clinic, create_clinic, family_seat
from tests.moments import NOON

OTHERS = 3000  # other patients, each with a family member, a consent and a link
PAST = 2000  # the clinic's family's sessions with the therapist before last week
# Rows a statement may read: what one week or one therapist's patients need, far below
# OTHERS and PAST.
MOST_ROWS_READ = 300
SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON, "PROGRAM_CACHE_SECONDS": 3600}


def _fill(clinic: Clinic) -> None:
    """The program grown around the clinic in a few INSERT ... SELECT statements."""
    ids = {
        "therapist": clinic.therapist.id,
        "patient": clinic.patient.id,
        "family": clinic.family.id,
        "now": NOON,
        "others": OTHERS,
        "past": PAST,
        "before": NOON - timedelta(days=8),
    }
    statements = [
        """INSERT INTO users (email, name, role, timezone, active, created_at)
           SELECT 'other-' || kind || '-' || n || '@example.org', 'Other ' || n, kind,
                  'America/New_York', true, :now
           FROM generate_series(1, :others) AS n, (VALUES ('patient'), ('family')) AS k(kind)""",
        """INSERT INTO consent_records (patient_id, patient_name, program_name, recipient_name,
               recipient_relationship, recipient_email, recipient_user_id, purpose,
               scope_scheduling, scope_attendance, scope_progress, information_description,
               revocation_statement, expiry_kind, expires_at, expiry_description,
               signature_name, signed_at, method, attested, form_version, text_snapshot,
               created_at)
           SELECT p.id, p.name, 'Program', f.name, 'Parent', f.email, f.id, 'Family therapy',
                  true, true, false, 'Session times', 'You may revoke.', 'date',
                  :now + interval '180 days', '180 days', p.name, :now, 'portal', false,
                  'grown', 'grown', :now
           FROM users p JOIN users f ON f.email = replace(p.email, '-patient-', '-family-')
           WHERE p.email LIKE 'other-patient-%'""",
        """INSERT INTO family_links (patient_id, family_user_id, linked_at)
           SELECT patient_id, recipient_user_id, :now FROM consent_records
           WHERE form_version = 'grown'""",
        """INSERT INTO appointments (uid, therapist_id, session_type_id, starts_at, ends_at,
               capacity, status, sequence, created_at)
           SELECT 'past-' || n, :therapist, (SELECT min(id) FROM session_types),
                  :before - n * interval '2 hours', :before - n * interval '2 hours'
                      + interval '50 minutes', 1, 'scheduled', 0, :now
           FROM generate_series(1, :past) AS n""",
        """INSERT INTO appointment_families (appointment_id, patient_id, status, created_at)
           SELECT id, :patient, 'booked', :now FROM appointments WHERE uid LIKE 'past-%'""",
        """INSERT INTO appointment_attendees (seat_id, user_id, added_at)
           SELECT s.id, :family, :now FROM appointment_families s
           JOIN appointments a ON a.id = s.appointment_id WHERE a.uid LIKE 'past-%'""",
    ]
    for statement in statements:
        db.session.execute(text(statement), {k: v for k, v in ids.items() if f":{k}" in statement})
    db.session.execute(text("ANALYZE"))  # its statistics are kept only when committed
    db.session.commit()


def _rows_read(plan: dict) -> int:
    """Rows the plan's scans read, counting those their filters threw away, in every loop."""
    own = 0
    if plan["Node Type"] in SCANS:
        kept = plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)
        own = (kept + plan.get("Rows Removed by Index Recheck", 0)) * plan["Actual Loops"]
    return own + sum(_rows_read(child) for child in plan.get("Plans", ()))


def _most_rows_read(app, client, path: str) -> tuple[int, str]:
    """The most rows one SELECT of the page reads, and the start of that statement."""
    captured = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            captured.append((statement, parameters))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", keep)
        try:
            assert client.get(path).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", keep)
        assert captured
        read = []
        with db.engine.connect() as conn:
            for statement, parameters in captured:
                explained = conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
                ).scalar()
                plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]
                read.append((_rows_read(plan["Plan"]), " ".join(statement.split())[:200]))
    return max(read)


@pytest.fixture
def grown_clinic(app):
    """The booking clinic, its family booked tomorrow, in a program grown by `_fill`."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("query plans are PostgreSQL's (the bench's scale database)")
    with app.app_context():
        made = create_clinic()
        family_seat(made, NOON + timedelta(days=1), booked_at=NOON)
        _fill(made)
        return made.therapist.email


@pytest.mark.parametrize(
    "path", ["/therapist/calendar", "/therapist/calendar?view=week", "/therapist/"]
)
def test_the_therapist_pages_read_rows_bounded_by_what_they_show(
    app, client, auth, grown_clinic, path
):
    auth.login(grown_clinic)
    most, statement = _most_rows_read(app, client, path)
    assert most <= MOST_ROWS_READ, f"{most} rows read by: {statement}"
