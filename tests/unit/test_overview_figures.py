"""The overview's counting queries, tested directly: the family-session counts equal a plain
count of the rows, and the period's bounds reach the indexes (no function of a column)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AppointmentStatus,
    Attendance,
    Role,
    SeatStatus,
    SessionType,
)
from familylink.services import overview
from familylink.services.overview import figures
from tests import factories
from tests.conftest import _empty_all_tables

ZONE = "America/New_York"
#: A period starting and ending inside months, with a clock change (March) inside it.
FIRST, LAST = date(2026, 1, 12), date(2026, 3, 20)
SESSION_MEASURES = ("booked", "attended", "no_show", "late_cancelled", "group_seats")

seats = st.lists(
    st.tuples(
        st.sampled_from(list(SeatStatus)),
        st.sampled_from([None, Attendance.ATTENDED, Attendance.NO_SHOW]),
    ),
    max_size=3,
)
appointments = st.lists(
    st.tuples(
        # Hours from 3 days before the period to 3 days after it: its edges are inside.
        st.integers(-72, (LAST - FIRST).days * 24 + 96),
        st.sampled_from([1, 1, 4]),  # capacity: private or a group
        st.sampled_from([AppointmentStatus.SCHEDULED, AppointmentStatus.SCHEDULED, "cancelled"]),
        st.integers(0, 1),  # which therapist
        seats,
    ),
    max_size=12,
    # One session a therapist an hour: PostgreSQL refuses a therapist's overlapping sessions.
    unique_by=lambda appointment: (appointment[0], appointment[3]),
)


def _plain_counts(months) -> dict[str, dict[tuple[int, int], int]]:
    """The family-session measures by their definition, one Python loop over the rows."""
    out = {measure: {} for measure in (*SESSION_MEASURES, "group_places")}

    def add(measure, key, value=1):
        out[measure][key] = out[measure].get(key, 0) + value

    for appointment in db.session.scalars(select(Appointment)):
        if appointment.status != AppointmentStatus.SCHEDULED:
            continue
        index = next(
            (i for i, m in enumerate(months) if m.starts <= appointment.starts_at < m.ends), None
        )
        if index is None:
            continue
        key = (index, appointment.therapist_id)
        if appointment.capacity > 1:
            add("group_places", (index, figures.NO_THERAPIST), appointment.capacity)
        for seat in appointment.seats:
            booked = seat.status == SeatStatus.BOOKED
            if seat.status in (SeatStatus.BOOKED, SeatStatus.LATE_CANCELLED):
                add("booked", key)
            if booked and seat.attendance == Attendance.ATTENDED:
                add("attended", key)
            if booked and seat.attendance == Attendance.NO_SHOW:
                add("no_show", key)
            if seat.status == SeatStatus.LATE_CANCELLED:
                add("late_cancelled", key)
            if booked and appointment.capacity > 1:
                add("group_seats", key)
    return out


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(appointments)
def test_the_family_session_counts_equal_a_plain_count_of_the_rows(app, program):
    ids = itertools.count(9_100_001)
    with app.test_request_context():
        _empty_all_tables()
        therapists = [factories.create_user(Role.THERAPIST) for _ in range(2)]
        patient = factories.create_user(Role.PATIENT, therapist=therapists[0])
        kind = SessionType(name="Family session", duration_minutes=50, capacity=1, active=True)
        db.session.add(kind)
        db.session.flush()
        start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
        for hours, capacity, status, therapist, its_seats in program:
            at = start + timedelta(hours=hours, minutes=30)
            appointment = Appointment(
                id=next(ids),
                uid=f"fig-{hours}-{therapist}-{next(ids)}@familylink.test",
                therapist_id=therapists[therapist].id,
                session_type_id=kind.id,
                starts_at=at,
                ends_at=at + timedelta(minutes=20),
                capacity=capacity,
                status=status,
            )
            db.session.add(appointment)
            db.session.flush()
            for seat_status, attendance in its_seats:
                db.session.add(
                    AppointmentFamily(
                        appointment_id=appointment.id,
                        patient_id=patient.id,
                        status=seat_status,
                        attendance=attendance,
                    )
                )
        db.session.flush()
        months = figures.months_of(FIRST, LAST, ZONE)
        counts = figures.count_everything(months)
        expected = _plain_counts(months)
        for measure, cells in expected.items():
            found = {key: value for key, value in counts.cells[measure].items() if value}
            assert found == cells, measure
        db.session.rollback()


def test_days_to_the_first_session_count_only_a_place_still_booked(app):
    """A cancelled place marked attended (as the attendance form once allowed) is no first
    session: the days run to the first attended place still booked."""
    with app.test_request_context():
        therapist = factories.create_user(Role.THERAPIST)
        started = datetime(2026, 1, 20, 17, 0, tzinfo=UTC)
        patient = factories.create_user(
            Role.PATIENT, therapist=therapist, now=started + timedelta(days=14)
        )
        kind = SessionType(name="Family session", duration_minutes=50, capacity=1, active=True)
        db.session.add(kind)
        db.session.flush()
        for days, status in (
            (3, SeatStatus.CANCELLED),
            (5, SeatStatus.LATE_CANCELLED),
            (9, SeatStatus.BOOKED),
        ):
            at = started + timedelta(days=days)
            appointment = Appointment(
                uid=f"first-{days}@familylink.test",
                therapist_id=therapist.id,
                session_type_id=kind.id,
                starts_at=at,
                ends_at=at + timedelta(minutes=50),
                capacity=1,
            )
            appointment.seats.append(
                AppointmentFamily(
                    patient_id=patient.id, status=status, attendance=Attendance.ATTENDED
                )
            )
            db.session.add(appointment)
        db.session.flush()
        counts = figures.count_everything(figures.months_of(FIRST, LAST, ZONE))
        db.session.rollback()
    assert dict(counts.days_to_first_session) == {0: [9.0]}


def _sessions_statement(months) -> tuple[str, object]:
    """The family-session query as sent to the database, with its parameters."""
    captured = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        figures._sessions(figures.Counts(defaultdict(dict), defaultdict(list)), months)
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    return captured[-1]


def test_the_family_sessions_period_is_a_range_on_the_indexed_starts_at(app):
    """The period's bounds compare the column itself (no function of it), so an index on
    it can answer them. On SQLite the plan shows it; on PostgreSQL the planner's choice for
    these tiny tables says nothing (`python -m bench.overview --explain` shows it at scale)."""
    with app.test_request_context():
        statement, parameters = _sessions_statement(figures.months_of(FIRST, LAST, ZONE))
        connection = db.session.connection()
        plan = ""
        if db.engine.dialect.name == "sqlite":
            plan = "\n".join(
                row[-1]
                for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            )
        db.session.rollback()
    assert "appointments.starts_at >= " in statement and "appointments.starts_at < " in statement
    if plan:
        assert "USING INDEX ix_appointments_starts_at (starts_at>? AND starts_at<?)" in plan, plan


@pytest.mark.parametrize(
    ("table", "column", "index"),
    [
        ("appointments", "starts_at", "ix_appointments_starts_at"),
        ("consent_records", "signed_at", "ix_consent_records_signed_at"),
        ("consent_closures", "closed_at", "ix_consent_closures_closed_at"),
        ("episodes", "started_on", "ix_episodes_started_on"),
        ("appointments", "starts_at", "ix_appointments_group_starts"),  # groups only
    ],
)
def test_each_overview_period_column_has_an_index(app, table, column, index):
    with app.app_context():
        names = {i["name"] for i in db.inspect(db.engine).get_indexes(table)}
    assert index in names, (table, column, sorted(names))


@pytest.mark.parametrize(
    ("day", "count", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 1)),
        (date(2026, 12, 15), 1, date(2027, 1, 1)),
        (date(2026, 1, 1), -1, date(2025, 12, 1)),
        (date(2026, 3, 9), -14, date(2025, 1, 1)),
        (date(2026, 5, 20), 0, date(2026, 5, 1)),
    ],
)
def test_add_months_gives_the_first_day_of_the_month_counted_to(day, count, expected):
    assert figures.add_months(day, count) == expected


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 3, 14), date(2026, 1, 1)),  # February ended at the start of 1 March
        (date(2026, 3, 15), date(2026, 2, 1)),
        (date(2026, 1, 14), date(2025, 11, 1)),
        (date(2026, 1, 15), date(2025, 12, 1)),
    ],
)
def test_a_month_is_final_fourteen_days_after_it_ends(today, expected):
    assert overview.last_final_month(today) == expected


def test_a_withdrawn_reading_opened_again_under_a_later_consent_counts_once(app):
    """Notes are counted with the assignment they belong to: the withdrawn ones with the
    assignment withdrawn with them, a later consent's with an assignment in force only."""
    from familylink.services import consent, learning

    at = datetime(2026, 2, 10, 17, 0, tzinfo=UTC)
    with app.test_request_context():
        learning.load_modules(now=at - timedelta(days=1))
        therapist = factories.create_user(Role.THERAPIST)
        patient = factories.create_user(Role.PATIENT, therapist=therapist, now=at)
        member = factories.create_user(Role.FAMILY)
        first = factories.create_consent(patient, member, now=at)
        module = learning.all_modules()[0]
        learning.assign_modules(
            therapist=therapist,
            patient_id=patient.id,
            family_user_id=member.id,
            module_ids=[module.id],
            note=None,
            now=at,
        )
        page = learning.module_page(module.slug, "en")

        def read(day):
            learning.save_progress(
                member,
                page,
                patient_id=patient.id,
                completed=True,
                reflection=None,
                share_with=None,
                now=at + timedelta(days=day),
            )

        read(1)
        consent.revoke_consent(patient, first.id, now=at + timedelta(days=2))
        factories.create_consent(patient, member, now=at + timedelta(days=4))
        read(5)  # the old release email's link, opened under the new consent
        counts = figures.count_everything(figures.months_of(FIRST, LAST, ZONE))
        db.session.rollback()
    found = {m: sum(counts.cells[m].values()) for m in ("readings_assigned", "readings_opened")}
    assert found == {"readings_assigned": 1, "readings_opened": 1}
