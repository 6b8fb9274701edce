"""The program overview page and its CSV: who may open them, the period, what they show
(counts only, small ones hidden), the audit rows."""

import csv
import io
import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, OutboxEmail, Role, User
from familylink.services.overview import COUNT
from familylink.services.overview.suppression import SMALL_CELL_MAX
from tests import factories
from tests.conftest import _empty_all_tables
from tests.overview_world import FIRST, LAST, MONTHS, TODAY, Cohort, build

PERIOD = f"/overview/?first={FIRST:%Y-%m}&last={LAST:%Y-%m}"
CSV = f"/overview/overview.csv?first={FIRST:%Y-%m}&last={LAST:%Y-%m}"


@pytest.fixture
def settings_override():
    # Settings are cached for seconds; a slow machine could refresh them between the
    # requests the query count compares.
    return {"NOW_OVERRIDE": TODAY, "PROGRAM_CACHE_SECONDS": 3600}


@pytest.fixture
def director_client(app, client, auth):
    """`client` signed in as a program director (two-step sign-in done)."""
    with app.app_context():
        factories.create_user(Role.DIRECTOR, name="Dee Director", email="director@example.org")
        db.session.commit()
    auth.login("director@example.org")
    return client


def _world(app, cohorts, therapists=2, **more):
    with app.test_request_context():
        built = build(cohorts, therapists=therapists, **more)
        db.session.commit()
    return built


def _csv(client, url=CSV) -> list[list[str]]:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def _value(rows, row, measure) -> str:
    return next(r[3] for r in rows if r[0] == row and r[2] == measure)


def test_the_director_sees_the_overview_without_the_per_therapist_table(director_client):
    response = director_client.get("/overview/")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Program overview" in body and "Per therapist" not in body


def test_the_admin_sees_the_per_therapist_table(admin_client):
    body = admin_client.get("/overview/").get_data(as_text=True)
    assert "Per therapist" in body


def test_counts_per_month_and_for_the_period(app, director_client):
    _world(app, {(0, 0): Cohort(enrolled=12, with_family=12, attended=11), (1, 1): Cohort()})
    rows = _csv(director_client)
    assert _value(rows, "2026-01", "Patients enrolled") == "12"
    assert _value(rows, "2026-01", "Share with a consented family member within 14 days") == (
        "100%"
    )
    assert _value(rows, "2026-01", "Attended") == "11"
    assert _value(rows, "2026-02", "Attended") == "0"
    assert _value(rows, "Whole period", "Attended") == "11"
    assert _value(rows, "2026-01", "Sent") == "11"  # one reminder per session, all sent
    assert _value(rows, "2026-01", "Share of sessions whose families got every reminder") == (
        "100%"
    )


def test_a_small_count_reads_fewer_than_11_and_its_total_does_not_give_it_away(
    app, director_client
):
    _world(app, {(0, 0): Cohort(enrolled=4), (1, 0): Cohort(enrolled=30)})
    rows = _csv(director_client)
    assert _value(rows, "2026-01", "Patients enrolled") == "fewer than 11"
    assert _value(rows, "2026-02", "Patients enrolled") == "30"
    # 34 - 30 would tell the hidden 4: a total with a hidden month is not shown.
    assert _value(rows, "Whole period", "Patients enrolled") == "not shown"
    assert _value(rows, "Whole period", "Attended") == "0"


def test_page_and_csv_name_no_one_and_show_no_id_or_text(app, admin_client, client, auth):
    built = _world(
        app,
        {
            (0, 0): Cohort(enrolled=14, with_family=13, attended=12, no_show=11, revoked=12),
            (1, 1): Cohort(enrolled=3, with_family=2, attended=2, late_cancelled=1),
            (2, 0): Cohort(enrolled=25, with_family=1, attended=40),
        },
    )
    with app.app_context():
        therapist_names = {
            name for name in built.names if name.startswith("Thera")
        }  # the admin's per-therapist table names them, by design
    pages = {
        "admin page": admin_client.get(PERIOD).get_data(as_text=True),
        "admin csv": admin_client.get(CSV).get_data(as_text=True),
    }
    auth.logout()
    with app.app_context():
        factories.create_user(Role.DIRECTOR, email="director@example.org")
        db.session.commit()
    auth.login("director@example.org")
    pages["director page"] = client.get(PERIOD).get_data(as_text=True)
    pages["director csv"] = client.get(CSV).get_data(as_text=True)
    for where, text in pages.items():
        shown_names = built.names - (therapist_names if where.startswith("admin") else set())
        for secret in shown_names | built.emails | built.texts:
            assert secret not in text, (where, secret)
        for number in built.ids:
            assert str(number) not in text, (where, number)
    assert all(name in pages["admin page"] for name in therapist_names)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("first=2026-03&last=2026-01", "must not be before the first month"),
        # Today is 2026-04-15: April has not ended, and March is final from today.
        ("first=2026-01&last=2026-04", "can be 2026-03 at the latest"),
        ("first=2023-01&last=2026-01", "at most 24 months"),
        ("first=2026-01", "Enter the last month"),
        ("first=2026-13&last=2026-03", "Enter a month as YYYY-MM"),
        ("first=2026-01-01&last=2026-03-31", "Enter a month as YYYY-MM"),
        ("first=tomorrow&last=2026-03", "Enter a month as YYYY-MM"),
        ("first=0000-01&last=2026-03", "Enter a month as YYYY-MM"),
    ],
)
def test_a_bad_period_is_refused_with_a_message_and_nothing_is_counted(
    app, director_client, query, message
):
    for url in (f"/overview/?{query}", f"/overview/overview.csv?{query}"):
        response = director_client.get(url)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
    assert not {"overview.viewed", "overview.exported"} & set(actions)


def test_each_view_and_export_is_audited(app, director_client):
    director_client.get(PERIOD)
    director_client.get(CSV)
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("overview.%")).order_by(AuditEvent.id)
        ).all()
    assert [(e.action, e.actor_role, e.patient_id) for e in events] == [
        ("overview.viewed", "director", None),
        ("overview.exported", "director", None),
    ]
    assert events[0].detail == {"first": str(FIRST), "last": str(LAST)}


def test_the_charts_are_inline_svg_with_no_script_or_inline_style(app, director_client):
    _world(app, {(0, 0): Cohort(enrolled=12, attended=20)})
    body = director_client.get(PERIOD).get_data(as_text=True)
    assert body.count("<svg") == 5
    assert "<script" not in body and "<style" not in body and " style=" not in body
    assert 'role="img" aria-label="Enrolment per month: bar chart."' in body


def test_each_chart_is_drawn_once_for_the_same_figures_and_again_when_they_change(
    app, director_client, monkeypatch
):
    import pygal

    from familylink.overview import charts

    charts.forget_drawn_charts()
    drawn = []
    real_bar = pygal.Bar
    monkeypatch.setattr(pygal, "Bar", lambda **kw: drawn.append(1) or real_bar(**kw))
    _world(app, {(0, 0): Cohort(enrolled=12, attended=20)})
    first = director_client.get(PERIOD).get_data(as_text=True)
    assert len(drawn) == 5
    again = director_client.get(PERIOD).get_data(as_text=True)
    assert len(drawn) == 5  # the same figures: the five charts drawn before
    svg = re.compile(r"<svg.*?</svg>", re.S)
    assert svg.findall(again) == svg.findall(first)
    _world(app, {(1, 0): Cohort(attended=25)}, ids_from=8_500_001, tag="Later")
    changed = director_client.get(PERIOD).get_data(as_text=True)
    # Only the charts whose figures changed are drawn again (sessions, reminders).
    assert len(drawn) == 7
    assert svg.findall(changed) != svg.findall(first)


COUNT_CELL = re.compile(r"<td>(\d+)</td>")
small = st.integers(0, 14)
cohorts = st.builds(
    Cohort,
    enrolled=small,
    with_family=small,
    attended=small,
    no_show=small,
    late_cancelled=st.integers(0, 3),
    revoked=st.integers(0, 3),
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.dictionaries(st.tuples(st.integers(0, 2), st.integers(0, 1)), cohorts, max_size=4))
def test_no_cell_shows_a_small_count_and_no_hidden_one_can_be_worked_out(
    app, client, auth, program
):
    with app.app_context():
        _empty_all_tables()
        factories.create_user(Role.ADMIN, email="admin@example.org")
        db.session.commit()
    _world(app, program)
    auth.login("admin@example.org")
    page = client.get(PERIOD).get_data(as_text=True)
    assert not [n for n in COUNT_CELL.findall(page) if 1 <= int(n) <= SMALL_CELL_MAX]
    rows = _csv(client)[1:]
    columns: dict[tuple[str, str], list[str]] = {}
    totals: dict[tuple[str, str], str] = {}
    for row, table, measure, value in rows:
        if value.isdigit():
            assert not 1 <= int(value) <= SMALL_CELL_MAX, (row, table, measure, value)
        key = (table, measure)
        if row in ("Whole period", "All therapists"):
            totals[key] = value
        else:
            columns.setdefault(key, []).append(value)
    for key, values in columns.items():
        if totals[key].isdigit() and key[1] not in RATES_AND_MEDIANS:
            # A shown total is the sum of shown counts: it tells nothing more. (The admin's
            # therapist column may instead be hidden whole.)
            whole_column_hidden = key[0].startswith("Per therapist") and not any(
                value.isdigit() for value in values
            )
            assert whole_column_hidden or all(value.isdigit() for value in values), (
                key,
                values,
                totals[key],
            )
    _assert_no_small_difference_of_nested_counts(rows)


RATES_AND_MEDIANS = {
    "Share with a consented family member within 14 days",
    "Median days to the first family session",
    "Group fill rate",
    "Share of sessions whose families got every reminder",
}


def _overview_queries(client, count_queries, url) -> int:
    client.get(url)  # warm: the program settings
    with count_queries() as counter:
        response = client.get(url)
    assert response.status_code == 200
    return counter.count


@pytest.mark.parametrize("url", [PERIOD, CSV])
def test_the_overview_takes_the_same_few_queries_with_more_data(
    app, admin_client, count_queries, url
):
    _world(app, {(0, 0): Cohort(enrolled=2, with_family=1, attended=2)})
    small = _overview_queries(admin_client, count_queries, url)
    # The aggregates, the therapist names, the session and the audit row.
    assert small <= 16
    every_month = Cohort(enrolled=14, with_family=12, attended=15, no_show=3, revoked=2)
    more = {(m, t): every_month for m in range(3) for t in range(3)}
    _world(app, more, therapists=3, ids_from=8_000_001, tag="More")
    assert _overview_queries(admin_client, count_queries, url) == small


def test_the_admin_invites_a_program_director(app, admin_client):
    response = admin_client.post(
        "/admin/directors",
        data={"director-name": "Dana Director", "director-email": "Dana@Example.org"},
    )
    assert response.status_code == 302
    with app.app_context():
        director = db.session.scalar(select(User).where(User.email == "dana@example.org"))
        kinds = db.session.scalars(
            select(OutboxEmail.kind).where(OutboxEmail.to_user_id == director.id)
        ).all()
    assert director.role == Role.DIRECTOR and director.password_hash is None
    assert kinds == ["staff_invitation"]


def test_a_bad_director_invitation_is_refused_beside_its_field(app, admin_client):
    response = admin_client.post(
        "/admin/directors", data={"director-name": "Dana", "director-email": "not-an-address"}
    )
    assert response.status_code == 400
    assert "Enter" in response.get_data(as_text=True) or "valid" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User).where(User.role == Role.DIRECTOR)) is None


def test_a_director_must_set_up_two_step_sign_in_before_the_overview(app, client, auth):
    with app.app_context():
        factories.create_user(Role.DIRECTOR, email="director@example.org", mfa=False)
        db.session.commit()
    auth.login("director@example.org")
    response = client.get("/overview/")
    assert response.status_code == 302 and "/account/mfa" in response.location


# What a reader can work out from several pages: the rule above holds across them.

MONTH_PARAMS = {"first": "2026-01", "last": "2026-03"}


def _period_csv(client, first: int, last: int) -> list[list[str]]:
    """The CSV of the months `first` to `last` (indexes into MONTHS, January = 0)."""
    months = [f"{year}-{number:02d}" for year, number in MONTHS]
    return _csv(client, f"/overview/overview.csv?first={months[first]}&last={months[last]}")


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def test_two_periods_tell_no_small_month(app, director_client):
    _world(app, {(0, 0): Cohort(attended=30, enrolled=25), (1, 0): Cohort(attended=4)})
    periods = [(a, b) for a in range(3) for b in range(a, 3)]
    totals = {period: _period_csv(director_client, *period) for period in periods}
    for measure in ("Attended", "Patients enrolled", "Booked", "Sent"):
        shown = {
            period: _number(_value(rows, "Whole period", measure))
            for period, rows in totals.items()
        }
        for (a, b), (c, d) in itertools.combinations(periods, 2):
            longer, shorter = shown[(a, b)], shown[(c, d)]
            nested = (a == c or b == d) and (a, b) != (c, d)
            if nested and longer is not None and shorter is not None:
                assert not 1 <= abs(longer - shorter) <= SMALL_CELL_MAX, (measure, a, b, c, d)


# Measures that count some of another's records, in one row: (the whole, its part).
NESTED_MEASURES = [
    ("Patients enrolled", "With a consented family member within 14 days"),
    ("Booked", "Attended"),
    ("Booked", "No-show"),
    ("Booked", "Late-cancelled"),
    ("Booked", "Group places taken"),
    ("Waitlist offers made", "Waitlist offers claimed"),
    ("Waitlist offers made", "Waitlist offers expired"),
    ("Assigned", "Opened"),
    ("Opened", "Completed"),
    ("Assigned", "Completed"),
    ("Sessions with reminders", "Sessions whose families got every reminder"),
]


@pytest.mark.parametrize(
    "cohort",
    [
        Cohort(enrolled=20, with_family=19),
        Cohort(enrolled=25, with_family=25, attended=30, no_show=3),
        Cohort(enrolled=30, with_family=11, attended=12, late_cancelled=1),
    ],
)
def test_a_count_and_its_part_tell_no_small_difference(app, admin_client, cohort):
    _world(app, {(0, 0): cohort, (1, 0): cohort})
    _assert_no_small_difference_of_nested_counts(_period_csv(admin_client, 0, 2)[1:])


def _assert_no_small_difference_of_nested_counts(rows):
    by_row: dict[str, dict[str, str]] = {}
    for row, _table, measure, value in rows:
        by_row.setdefault(row, {})[measure] = value
    for row, values in by_row.items():
        for whole, part in NESTED_MEASURES:
            if whole in values and part in values:
                both = _number(values[whole]), _number(values[part])
                if None not in both:
                    assert not 1 <= both[0] - both[1] <= SMALL_CELL_MAX, (row, whole, part)


def test_the_therapist_table_does_not_give_the_period_back(app, admin_client):
    # Ten sessions in each of two months, all one therapist's: each month is hidden (attended
    # is part of the small Booked), so the period's 20 must not be readable from the
    # therapists' column either: it is not shown.
    _world(app, {(0, 0): Cohort(attended=10), (1, 0): Cohort(attended=10)})
    rows = _period_csv(admin_client, 0, 1)[1:]
    for label in ("2026-01", "2026-02"):
        assert _value(rows, label, "Booked") == "fewer than 11"
        assert _value(rows, label, "Attended") == "not shown"
    column = {
        row: value
        for row, table, measure, value in rows
        if table == "Per therapist, whole period" and measure == "Attended"
    }
    assert len(column) >= 2 and set(column.values()) == {"not shown"}, column
    assert _value(rows, "Whole period", "Attended") == "not shown"


def test_a_hidden_month_is_not_pinned_by_what_the_rule_says_of_its_neighbours(app, director_client):
    # The old rule hid 11 only so that 1 stayed hidden, and showed the total 42: a reader who
    # knew that read 42 - 30 - 11 = 1. Now a month's cell is its own: 11 is shown, and the
    # total, with a hidden month in it, is not.
    _world(
        app, {(0, 0): Cohort(attended=1), (1, 0): Cohort(attended=11), (2, 0): Cohort(attended=30)}
    )
    rows = _period_csv(director_client, 0, 2)
    cells = [_value(rows, label, "Booked") for label in ("2026-01", "2026-02", "2026-03")]
    assert cells == ["fewer than 11", "11", "30"]
    assert _value(rows, "Whole period", "Booked") == "not shown"


def _cells(page: str) -> list[str]:
    return re.findall(r"<td>([^<]*)</td>", page)


def test_a_spanish_reader_reads_rates_and_medians_written_the_spanish_way(app, director_client):
    """Spanish writes 12,5 and 100 % (a space before the sign, kept on the line), not 12.5
    and 100%: the page's rates and medians in the reader's language (Flask-Babel's
    `format_percent`, `format_decimal`)."""
    every_month = Cohort(enrolled=12, with_family=12, attended=11)
    _world(app, {(m, t): every_month for m in range(3) for t in range(2)})
    english = _cells(director_client.get(PERIOD).get_data(as_text=True))
    assert "100%" in english
    assert any(re.fullmatch(r"\d+\.\d", cell) for cell in english)
    director_client.post("/language", data={"language": "es"})
    spanish = _cells(director_client.get(PERIOD).get_data(as_text=True))
    assert "100\xa0%" in spanish
    assert any(re.fullmatch(r"\d+,\d", cell) for cell in spanish)
    assert not [cell for cell in spanish if re.fullmatch(r"\d+%|\d+\.\d", cell)]


def test_display_writes_numbers_in_the_language_being_spoken(app):
    from babel.numbers import format_decimal, format_percent
    from flask_babel import force_locale

    from familylink.services import overview
    from familylink.services.overview import MEDIAN, RATE

    with app.test_request_context(), force_locale("es"):
        assert overview.display(12.5, MEDIAN) == format_decimal(12.5, "#,##0.0", locale="es")
        assert overview.display(0.5, RATE) == format_percent(0.5, locale="es") == "50\xa0%"
        assert overview.display(1234, COUNT) == "1234"


def test_the_page_and_the_csv_round_every_rate_and_median_alike(app):
    """23 of 40 is 57.5%: the page and its CSV say the same whole percent (and medians the
    same tenth), the CSV only written one way in every language."""
    from familylink.services import overview
    from familylink.services.overview import MEDIAN, RATE

    fractions = {(a, b) for b in range(1, 201) for a in range(b + 1)}
    with app.test_request_context():
        differ = [
            (a, b)
            for a, b in fractions
            if overview.display(a / b, RATE) != overview.csv_value(a / b, RATE)
            or overview.display(a / b * 10, MEDIAN) != overview.csv_value(a / b * 10, MEDIAN)
        ]
    assert differ == []


def test_the_csv_keeps_one_number_format_whatever_the_readers_language(app, director_client):
    """The CSV is for spreadsheets and scripts: its words are in the reader's language, its
    figures are written the same in every language (docs/overview.md says why)."""
    every_month = Cohort(enrolled=12, with_family=12, attended=11)
    _world(app, {(m, t): every_month for m in range(3) for t in range(2)})
    english = [row[3] for row in _csv(director_client)[1:]]
    director_client.post("/language", data={"language": "es"})
    spanish = [row[3] for row in _csv(director_client)[1:]]
    assert "100%" in spanish and any(re.fullmatch(r"\d+\.\d", value) for value in spanish)
    figures = [value for value in english if re.fullmatch(r"[\d.%]+", value)]
    assert figures == [value for value in spanish if re.fullmatch(r"[\d.%]+", value)]
