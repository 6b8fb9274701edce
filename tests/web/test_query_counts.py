"""SQL statements per page: few, and the same with little or much data (no N+1)."""

import functools
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    Assignment,
    LearningModule,
    ModuleProgress,
    ProgramAttendance,
    Role,
    SessionType,
    User,
)
from familylink.services import learning
from tests.booking_setup import add_weekday_hours, create_session_types
from tests.conftest import (
    DatabaseSnapshot,
    QueryCounter,
    _app_emptied_afterwards,
    _empty_all_tables,
    app_settings,
    client_with_session,
    session_cookie_of,
)
from tests.factories import create_consent, create_user
from tests.moments import NOON
from tests.queries import consent_reads, member_consent_lists

MAX_QUERIES = 8
THERAPIST = "therapist@example.org"
FAMILY = "family@example.org"
# The first appointment: some are past and some upcoming however many there are.
FIRST_START = NOON - timedelta(minutes=50)


@pytest.fixture
def settings_override():
    # Settings are cached for seconds; a slow machine could refresh them between requests.
    return {"NOW_OVERRIDE": NOON, "PROGRAM_CACHE_SECONDS": 3600}


def _add_linked_patients(app, count: int) -> None:
    """Patients of THERAPIST, each with a consent to FAMILY (created on first call).

    Each patient also has a booked appointment from just before NOON (10 minutes apart) that FAMILY
    and another family member of that patient attend, and a released reading about them that
    FAMILY has opened and shared a reflection on, so the booking, calendar and reading pages
    grow with the data too.
    """
    with app.app_context():
        therapist = db.session.scalar(select(User).where(User.email == THERAPIST))
        family = db.session.scalar(select(User).where(User.email == FAMILY))
        if therapist is None:
            therapist = create_user(Role.THERAPIST, email=THERAPIST)
            add_weekday_hours(therapist)
            create_session_types()
            learning.load_modules(now=NOON)
        family = family or create_user(Role.FAMILY, email=FAMILY)
        private = db.session.scalar(select(SessionType).where(SessionType.capacity == 1))
        booked = db.session.query(Appointment).count()
        module = db.session.scalar(select(LearningModule).order_by(LearningModule.id))
        for n in range(booked, booked + count):
            patient = create_user(Role.PATIENT, therapist=therapist, password=None)
            create_consent(patient, family, scopes=("scheduling", "attendance"))
            relative = create_user(Role.FAMILY, password=None)
            create_consent(
                patient, relative, scopes=("scheduling",), expires_at=NOON + timedelta(days=3)
            )
            starts = FIRST_START + timedelta(minutes=10 * n)
            appointment = Appointment(
                uid=f"query-count-{n}@familylink",
                therapist_id=therapist.id,
                session_type=private,
                starts_at=starts,
                ends_at=starts + timedelta(minutes=5),
            )
            seat = AppointmentFamily(appointment=appointment, patient_id=patient.id)
            db.session.add_all([appointment, seat])
            for person in (family, relative):
                db.session.add(AppointmentAttendee(seat=seat, user_id=person.id, added_at=NOON))
            reading = {
                "module_id": module.id,
                "family_user_id": family.id,
                "patient_id": patient.id,
            }
            # Program days of the last four weeks: the therapist's day form and the family's
            # weekly summary grow with them too.
            db.session.add_all(
                ProgramAttendance(
                    patient_id=patient.id,
                    day=NOON.date() - timedelta(days=days_ago),
                    status="attended",
                    recorded_by_id=therapist.id,
                    recorded_at=NOON,
                )
                for days_ago in range(0, 28, 3)
            )
            db.session.add_all(
                [
                    Assignment(
                        **reading,
                        assigned_by_id=therapist.id,
                        release_at=NOON,
                        released_at=NOON,
                    ),
                    ModuleProgress(
                        **reading, opened_at=NOON, reflection="shared", reflection_shared=True
                    ),
                ]
            )
        db.session.commit()


def _ids(app) -> dict:
    with app.app_context():
        family = db.session.scalar(select(User).where(User.email == FAMILY))
        seat = db.session.scalar(select(AppointmentFamily).order_by(AppointmentFamily.id))
        private = db.session.scalar(select(SessionType).where(SessionType.capacity == 1))
        slug = db.session.scalar(select(LearningModule.slug).order_by(LearningModule.id))
        assert family is not None
        return {"patient": seat.patient_id, "seat": seat.id, "private": private.id, "slug": slug}


def _queries_for(app, client, count_queries, path: str) -> int:
    path = path.format(**_ids(app))
    client.get(path)  # warm: the first request may load settings
    with count_queries() as counter:
        response = client.get(path)
    assert response.status_code == 200, path
    return counter.count


PAGES = [
    (None, "/login"),
    (FAMILY, "/family/"),
    (THERAPIST, "/therapist/"),
    (THERAPIST, "/therapist/attendance?day=2026-11-18"),
    # The patient's page with the weekly program attendance summary (the attendance scope).
    (FAMILY, "/family/patients/{patient}"),
    # Booking: the free slots of the next four weeks around 1,000 booked appointments.
    (FAMILY, "/booking/new?patient={patient}&type={private}"),
    (FAMILY, "/booking/{seat}"),
    (FAMILY, "/booking/"),
    # The therapist's week pickers: booking for a family, moving a session.
    (THERAPIST, "/therapist/book?patient={patient}"),
    (THERAPIST, "/therapist/seats/{seat}/reschedule"),
    (THERAPIST, "/therapist/calendar?date=2026-11-18"),
    # Without a date the calendar first looks for the week of the next session.
    (THERAPIST, "/therapist/calendar"),
    (THERAPIST, "/therapist/calendar?view=day&date=2026-11-18"),
    # Reading: the family's list of assigned readings, one about a patient, the therapist's view.
    (FAMILY, "/learn/"),
    (FAMILY, "/learn/modules/{slug}?patient={patient}"),
    (THERAPIST, "/learn/therapist/patients/{patient}"),
]
SIGNED_IN_PAGES = [page for page in PAGES if page[0]]


class _TenAndAThousand:
    """The pages' two worlds, built once for the module (the thousand patients through the
    models took most of a minute a page): ten linked patients with THERAPIST and FAMILY
    signed in, and the same after 990 more. Each test restores the one it reads."""

    def __init__(self, app):
        self.app = app
        _add_linked_patients(app, 10)
        self.cookies = {account: session_cookie_of(app, account) for account in (THERAPIST, FAMILY)}
        with app.app_context():
            self.ten = DatabaseSnapshot()
        _add_linked_patients(app, 990)
        with app.app_context():
            self.thousand = DatabaseSnapshot()
            _empty_all_tables(many_rows=True)
            db.session.remove()

    def client(self, account):
        return client_with_session(self.app, self.cookies.get(account))

    def restore(self, snapshot: DatabaseSnapshot) -> None:
        with self.app.app_context():
            snapshot.restore()
            db.session.remove()


@pytest.fixture(scope="module")
def _built_worlds(_schema, database_url):
    settings = app_settings(database_url, NOW_OVERRIDE=NOON, PROGRAM_CACHE_SECONDS=3600)
    for app in _app_emptied_afterwards(settings):
        yield _TenAndAThousand(app)


@pytest.fixture
def worlds(_built_worlds):
    """Both worlds; every table emptied after the test, as after any other."""
    yield _built_worlds
    with _built_worlds.app.app_context():
        db.session.rollback()
        _empty_all_tables(many_rows=True)
        db.session.remove()


def _count_queries(app):
    with app.app_context():
        return QueryCounter(db.engine)


@pytest.mark.parametrize(("account", "path"), PAGES)
def test_pages_use_few_queries(worlds, account, path):
    worlds.restore(worlds.ten)
    client = worlds.client(account)
    count_queries = functools.partial(_count_queries, worlds.app)
    assert _queries_for(worlds.app, client, count_queries, path) <= MAX_QUERIES


@pytest.mark.parametrize(("account", "path"), SIGNED_IN_PAGES)
def test_query_count_does_not_grow_with_data(worlds, account, path):
    app, client = worlds.app, worlds.client(account)
    count_queries = functools.partial(_count_queries, app)
    worlds.restore(worlds.ten)
    small = _queries_for(app, client, count_queries, path)
    worlds.restore(worlds.thousand)
    assert _queries_for(app, client, count_queries, path) == small


def _add_accounts(app, count: int) -> None:
    """`count` more accounts: a patient and a family member with a consent, and sessions."""
    from familylink.services import sessions

    with app.app_context():
        therapist = db.session.scalar(select(User).where(User.role == Role.THERAPIST))
        therapist = therapist or create_user(Role.THERAPIST)
        for _ in range(count // 2):
            patient = create_user(Role.PATIENT, therapist=therapist)
            member = create_user(Role.FAMILY)
            create_consent(patient, member)
            sessions.start_session(member, now=NOON)
        db.session.commit()


def _accounts_page_queries(client, count_queries) -> int:
    client.get("/admin/accounts")  # warm
    with count_queries() as counter:
        response = client.get("/admin/accounts")
    assert response.status_code == 200
    return counter.count


def test_the_admin_accounts_page_does_not_grow_with_accounts(app, admin_client, count_queries):
    _add_accounts(app, 10)
    small = _accounts_page_queries(admin_client, count_queries)
    assert small <= MAX_QUERIES
    _add_accounts(app, 190)
    assert _accounts_page_queries(admin_client, count_queries) == small


def test_the_program_attendance_summary_does_not_grow_with_recorded_days(
    app, client, auth, count_queries
):
    _add_linked_patients(app, 1)
    auth.login(FAMILY)
    path = "/family/patients/{patient}"
    one_week = _queries_for(app, client, count_queries, path)
    with app.app_context():
        patient_id, therapist_id = db.session.execute(
            select(User.id, User.therapist_id).where(User.role == Role.PATIENT)
        ).one()
        db.session.execute(ProgramAttendance.__table__.delete())
        db.session.add_all(
            ProgramAttendance(
                patient_id=patient_id,
                day=NOON.date() - timedelta(days=days_ago),
                status=("attended", "absent", "excused")[days_ago % 3],
                recorded_by_id=therapist_id,
                recorded_at=NOON,
            )
            for days_ago in range(200)
        )
        db.session.commit()
    page = client.get(path.format(**_ids(app))).get_data(as_text=True)
    assert "This week:" in page and "excused" in page
    assert _queries_for(app, client, count_queries, path) == one_week <= MAX_QUERIES


def _forget_openings(app) -> None:
    """Every assigned reading unopened again: the family home then lists them all as new."""
    with app.app_context():
        db.session.execute(ModuleProgress.__table__.delete())
        db.session.commit()


# The session with its person, the gate's one consent read, the sessions ahead, the new
# readings, and the INSERT of the page's disclosure rows.
FAMILY_HOME_STATEMENTS = 5
# What the family home never shows of a session or a reading: the statements reading them
# (FROM appointment_families, FROM module_assignments) select the columns it shows only.
_NOT_SHOWN = ("password_hash", "body_html", "body_markdown", "key_points", ".note", "room_link")


def _family_home_statements(app, client, count_queries) -> list[str]:
    client.get("/family/")  # warm: the first request may load settings
    with count_queries() as counter:
        response = client.get("/family/")
    assert response.status_code == 200
    assert "New readings for you" in response.get_data(as_text=True)
    return [s for s in counter.statements if s.strip().upper() != "SELECT 1"]


def test_the_family_home_does_not_grow_with_new_readings_and_sessions(
    app, client, auth, count_queries
):
    _add_linked_patients(app, 10)
    _forget_openings(app)
    auth.login(FAMILY)
    small = _family_home_statements(app, client, count_queries)
    _add_linked_patients(app, 190)
    _forget_openings(app)
    large = _family_home_statements(app, client, count_queries)
    assert len(large) == len(small) == FAMILY_HOME_STATEMENTS
    home_reads = [
        s for s in large if "FROM appointment_families" in s or "FROM module_assignments" in s
    ]
    assert len(home_reads) == 2
    assert [word for s in home_reads for word in _NOT_SHOWN if word in s] == []


def test_the_gates_consent_read_leaves_out_the_signed_text(app, client, auth, count_queries):
    """Every family page reads the member's open consents. It does not read the text the
    patient signed (PostgreSQL keeps it compressed and unpacks it on every read: about 40%
    of the statement's server time), and joins consent_closures once: the join that finds
    no closure also gives each consent its (empty) closure."""
    _add_linked_patients(app, 1)
    auth.login(FAMILY)
    client.get("/family/")
    with count_queries() as counter:
        assert client.get("/family/").status_code == 200
    gate = [s for s in counter.statements if "FROM consent_records" in s]
    assert len(gate) == 1
    assert "text_snapshot" not in gate[0]
    assert gate[0].count("JOIN consent_closures") == 1


PATIENT = "patient@example.org"


def _add_planned_sessions(app, count: int) -> None:
    """`count` more upcoming family sessions for PATIENT, each with two family members coming."""
    with app.app_context():
        patient = db.session.scalar(select(User).where(User.email == PATIENT))
        if patient is None:
            therapist = create_user(Role.THERAPIST)
            create_session_types()
            patient = create_user(Role.PATIENT, email=PATIENT, therapist=therapist)
        private = db.session.scalar(select(SessionType).where(SessionType.capacity == 1))
        booked = db.session.query(Appointment).count()
        for n in range(booked, booked + count):
            starts = NOON + timedelta(hours=n)
            appointment = Appointment(
                uid=f"planned-{n}@familylink",
                therapist_id=patient.therapist_id,
                session_type=private,
                starts_at=starts,
                ends_at=starts + timedelta(minutes=50),
            )
            seat = AppointmentFamily(appointment=appointment, patient_id=patient.id)
            db.session.add_all([appointment, seat])
            for _ in range(2):
                member = create_user(Role.FAMILY, password=None)
                create_consent(patient, member)
                db.session.add(AppointmentAttendee(seat=seat, user_id=member.id, added_at=NOON))
        db.session.commit()


def _patient_page_queries(client, count_queries, path: str) -> int:
    client.get(path)  # warm
    with count_queries() as counter:
        response = client.get(path)
    assert response.status_code == 200
    return counter.count


# The patient's home and their sessions page: each planned session with who is coming.
@pytest.mark.parametrize("path", ["/patient/", "/patient/sessions"])
def test_the_patients_pages_do_not_grow_with_planned_sessions(
    app, client, auth, count_queries, path
):
    _add_planned_sessions(app, 3)
    auth.login(PATIENT)
    small = _patient_page_queries(client, count_queries, path)
    _add_planned_sessions(app, 60)
    assert _patient_page_queries(client, count_queries, path) == small <= MAX_QUERIES


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_booking_page_reads_the_members_consent_once(app, client, auth, count_queries, method):
    """The page opens the patient and finds whom the member may invite from one reading of
    their consent (GET: the week; POST: the confirmation step)."""
    _add_linked_patients(app, 3)
    auth.login(FAMILY)
    ids = _ids(app)
    path = "/booking/new?patient={patient}&type={private}".format(**ids)
    form = {"slot": "2026-11-20T15:00Z", "request_key": "query-count"}
    send = (lambda: client.get(path)) if method == "GET" else (lambda: client.post(path, data=form))
    send()  # warm
    with count_queries() as counter:
        response = send()
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert consent_reads(counter) == 1


# The pages the benchmark measures against the honest minimal page (bench/pages.py): each of
# their statements is built once per worker, not on every request (building a statement and
# its cache key cost more than running it). Each statement executed is the same object as in
# the request before.
PAGES_BUILT_ONCE = [
    (FAMILY, "/family/"),
    (FAMILY, "/booking/new?patient={patient}&type={private}"),
    (FAMILY, "/learn/modules/{slug}?patient={patient}"),
    (FAMILY, "/learn/modules/{slug}"),
    (THERAPIST, "/therapist/calendar?view=week&date=2026-11-18"),
    (THERAPIST, "/therapist/calendar"),
]


def _statements_of(app, client, path: str) -> list:
    with app.app_context():
        engine = db.engine
    executed = []

    def note(conn, clauseelement, multiparams, params, execution_options):
        executed.append(clauseelement)

    event.listen(engine, "before_execute", note)
    try:
        response = client.get(path)
    finally:
        event.remove(engine, "before_execute", note)
    assert response.status_code == 200, path
    return executed


@pytest.mark.parametrize(("account", "path"), PAGES_BUILT_ONCE)
def test_benchmarked_pages_build_no_statement_per_request(app, client, auth, account, path):
    _add_linked_patients(app, 3)
    auth.login(account)
    path = path.format(**_ids(app))
    client.get(path)  # warm: the first request may load settings
    before = _statements_of(app, client, path)
    again = _statements_of(app, client, path)
    assert len(again) == len(before) > 0
    rebuilt = [str(b) for a, b in zip(before, again, strict=True) if a is not b]
    assert rebuilt == []


def test_the_confirming_booking_post_reads_the_members_consent_once(
    app, client, auth, count_queries
):
    """The page's one reading of the member's consent (`booking.open_for_booking`) is the
    one the booking itself is made under: `book_private` does not open the patient again."""
    _add_linked_patients(app, 3)
    auth.login(FAMILY)
    ids = _ids(app)
    path = "/booking/new?patient={patient}&type={private}".format(**ids)
    form = {"slot": "2026-11-20T15:00Z", "confirmed": "1"}
    with count_queries() as counter:
        response = client.post(path, data={**form, "request_key": "query-count"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert "booked=1" in response.headers["Location"]
    assert consent_reads(counter) == 1


# The family's booking page and its booking POST, as the benchmark drives them (bench/pages.py):
# what each statement is for. On PostgreSQL the POST also locks the members' consent rows
# (FOR SHARE) and the therapist (an advisory lock); SQLite's write lock does both.
BOOKING_PAGE_STATEMENTS = [
    "the session and its user",
    "the member's consent in force (the gate)",
    "the kinds of session",
    "the therapist's availability and bookings up to the booking horizon (one UNION ALL)",
    "the disclosure's audit row",
]
UNDER_THE_THERAPISTS_LOCK = [
    "a booking made before with this form's key",
    "the therapist's availability and bookings around the time (one UNION ALL)",
    "the appointment",
    "its seat",
    "who is coming",
    "the emails, in one statement, read back by none",
    "the booking's audit row and the emails', in one statement",
    "the savepoint released",
]
BOOKING_POST_STATEMENTS = [
    "the session and its user",
    "the member's consent in force (the gate)",
    "the kinds of session",
    "the disclosure's audit row",
    "the savepoint the booking runs in (web.run)",
    "the members' consents read afresh (access.hold_consents)",
    "the therapist (named in the email and the calendar file)",
    *UNDER_THE_THERAPISTS_LOCK,
]
LOCKS_ON_POSTGRESQL = 2


def _add_bookings_ahead(app, count: int) -> None:
    """`count` more of the therapist's sessions, a day apart from a week after NOON on: none
    near the times the tests below book."""
    with app.app_context():
        therapist = db.session.scalar(select(User).where(User.email == THERAPIST))
        private = db.session.scalar(select(SessionType).where(SessionType.capacity == 1))
        booked = db.session.query(Appointment).count()
        for n in range(booked, booked + count):
            starts = NOON + timedelta(days=7 + n, hours=1)
            db.session.add(
                Appointment(
                    uid=f"ahead-{n}@familylink",
                    therapist_id=therapist.id,
                    session_type=private,
                    starts_at=starts,
                    ends_at=starts + timedelta(minutes=50),
                )
            )
        db.session.commit()


def _booking_post_statements(app, client, count_queries, slot: str) -> list[str]:
    path = "/booking/new?patient={patient}&type={private}".format(**_ids(app))
    form = {"slot": slot, "confirmed": "1", "request_key": f"statements-{slot}"}
    with count_queries() as counter:
        response = client.post(path, data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return [s for s in counter.statements if s.strip().upper() != "SELECT 1"]


def test_the_booking_page_costs_its_statements_and_no_more(app, client, auth, count_queries):
    _add_linked_patients(app, 3)
    auth.login(FAMILY)
    path = "/booking/new?patient={patient}&type={private}"
    assert _queries_for(app, client, count_queries, path) == len(BOOKING_PAGE_STATEMENTS)
    _add_bookings_ahead(app, 60)
    assert _queries_for(app, client, count_queries, path) == len(BOOKING_PAGE_STATEMENTS)


def test_the_booking_post_costs_its_statements_and_no_more(app, client, auth, count_queries):
    """Each booking: the same statements, however many sessions the therapist has ahead."""
    _add_linked_patients(app, 3)
    auth.login(FAMILY)
    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"
    locks = LOCKS_ON_POSTGRESQL if postgresql else 0
    expected = len(BOOKING_POST_STATEMENTS) + locks
    client.get("/booking/new?patient={patient}&type={private}".format(**_ids(app)))  # warm
    first = _booking_post_statements(app, client, count_queries, "2026-11-20T15:00Z")
    assert len(first) == expected, "\n".join(first)
    _add_bookings_ahead(app, 60)
    assert len(_booking_post_statements(app, client, count_queries, "2026-11-20T16:00Z")) == (
        expected
    )


def test_the_booking_post_holds_the_therapists_lock_for_its_writes_only(
    app, client, auth, count_queries
):
    """Every booking with the therapist waits for this one's lock (on SQLite, the write
    lock, from its first look under it): what it reads without the lock is read first."""
    _add_linked_patients(app, 3)
    auth.login(FAMILY)
    client.get("/booking/new?patient={patient}&type={private}".format(**_ids(app)))  # warm
    statements = _booking_post_statements(app, client, count_queries, "2026-11-20T15:00Z")
    locked = next(
        n
        for n, s in enumerate(statements)
        if "pg_advisory_xact_lock" in s or "appointment_families.request_key" in s
    )
    if "pg_advisory_xact_lock" in statements[locked]:
        locked += 1
    under = statements[locked:]
    assert len(under) == len(UNDER_THE_THERAPISTS_LOCK), "\n".join(under)
    assert not any("FROM users" in s for s in under), "\n".join(under)


def test_the_booking_list_reads_the_members_consents_once(app, client, auth, count_queries):
    """The patients to book for and the sessions ahead come from one reading of the member's
    consents (`access.family_patients`, passed on to `booking.upcoming_for_family`)."""
    _add_linked_patients(app, 10)  # the sessions of the last five are still ahead
    auth.login(FAMILY)
    client.get("/booking/")  # warm
    with count_queries() as counter:
        response = client.get("/booking/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.count("book a family session") == 10 and page.count("Family session with") == 5
    assert member_consent_lists(counter) == 1


# The two pages issue 19 measures against the honest minimal page, pinned statement by
# statement: the session with its person; the week's appointments with their seats and
# families; the consents in force of the patients shown; the audit rows, in one INSERT. The
# module page: the module; the member's progress on it (the module not read again); the
# consents that say whom a reflection may reach (or, about one patient, that patient's);
# the audit rows.
PINNED = [
    (THERAPIST, "/therapist/calendar?view=week&date=2026-11-18", 4),
    (FAMILY, "/learn/modules/{slug}", 5),
    (FAMILY, "/learn/modules/{slug}?patient={patient}", 5),
]


@pytest.mark.parametrize(("account", "path", "statements"), PINNED)
def test_the_measured_pages_statements_are_pinned(
    app, client, auth, count_queries, account, path, statements
):
    _add_linked_patients(app, 3)
    auth.login(account)
    assert _queries_for(app, client, count_queries, path) == statements


@pytest.mark.parametrize("query", ["", "?patient={patient}"])
def test_the_module_page_reads_the_module_once(app, client, auth, count_queries, query):
    """Its text, key points and sources are read once: the member's progress does not join
    the module the page already holds."""
    _add_linked_patients(app, 3)
    auth.login(FAMILY)
    path = f"/learn/modules/{{slug}}{query}".format(**_ids(app))
    client.get(path)
    with count_queries() as counter:
        assert client.get(path).status_code == 200
    assert sum("body_html" in s for s in counter.statements) == 1
