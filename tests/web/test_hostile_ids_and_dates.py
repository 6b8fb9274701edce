"""Hostile ids and dates, on every route: ids past 2^63 and 2^31 (PostgreSQL's integer),
zero and negative ids, and dates far in the past or future never answer a 5xx.

The walk covers `app.url_map`: every id in a path, every query argument a page reads and
every field of its form, one at a time (the other fields keep the page's own values, so
the hostile one is the one that gets through validation), as each kind of person who can
reach the page.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict
from werkzeug.routing import IntegerConverter

from familylink.extensions import db
from familylink.models import Appointment, Role
from familylink.web import DATE_OUT_OF_RANGE, IdConverter, as_id, parse_day
from tests.booking_setup import create_clinic
from tests.factories import create_user
from tests.web.test_authorization_matrix import (
    ACTORS,
    EXPECTED,
    QUERY_ARGS,
    URL_ARGS,
)

HUGE_IDS = [str(2**63 + 1), str(2**31), "9" * 5000]
IDS = [*HUGE_IDS, "0", "-1"]
# Far-off days, a five-digit year, and the same as a booking slot (a UTC instant).
DATES = ["9999-12-31", "0001-01-01", "10000-01-01", "9999-12-31T23:59Z", "0001-01-01T00:00Z"]
VALUES = [*IDS, *DATES]
# Read from the query string by some page, whether or not a form shows them.
QUERY_NAMES = ["patient", "type", "week", "renew", "date", "day", "start", "end"]
# Id and date fields of forms, tried on every POST even when no page shows the form.
FORM_NAMES = [
    "session_type",
    "attendees",
    "modules",
    "family",
    "slot",
    "value",
    "weekday",
    "first_day",
    "day",
    "episode_start",
    "ended_on",
    "started_on",
    "signed_on",
    "expiry_date",
]
# Fields of forms that sit on another page than the one they post to.
POST_ONLY_FIELDS = {
    "admin.invite_therapist": {"name": "A Name", "email": "a@example.org"},
    "therapist.enrol_patient": {
        "name": "New Patient",
        "email": "new.patient@example.org",
        "episode_start": "2026-11-02",
    },
    "therapist.discharge": {"ended_on": "2026-11-18", "reason": "completed", "confirm": "y"},
    "therapist.readmit": {"started_on": "2026-11-18"},
    "therapist.add_window": {"weekday": "0", "start_time": "09:00", "end_time": "12:00"},
    "therapist.add_override": {"day": "2026-12-24", "off": "y"},
    "therapist.add_session_type": {
        "name": "Talk",
        "duration_minutes": "60",
        "capacity": "1",
        "mode": "in_person",
    },
}
SKIP = {("auth.logout", "POST"), ("static", "GET")}
SIGNED_IN_KINDS = ("family_consented", "patient", "other_therapist", "admin")


def _askers(key) -> list[str]:
    """Who reaches the view: those the matrix lets in; for object pages nobody owns, every
    signed-in kind (the view runs, then finds the object is not theirs)."""
    answers = EXPECTED[key]
    askers = [
        a for a in ACTORS if answers[a] != 404 and not (a == "anonymous" and answers[a] == 302)
    ]
    return askers or list(SIGNED_IN_KINDS)


def _path(rule, world, ids: dict[str, str]) -> str:
    def value(match):
        name = match.group(2)
        return ids.get(name) or str(URL_ARGS[name](world))

    return re.sub(r"<(?:(\w+):)?(\w+)>", value, rule.rule)


def _baseline(page: str) -> MultiDict:
    """The form's own values as the page shows them (first choice of each list)."""
    values = MultiDict()
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'\bname="([^"]+)"', tag)
        if not name or name.group(1) == "csrf_token":
            continue
        kind = re.search(r'\btype="([^"]+)"', tag)
        kind = kind.group(1) if kind else "text"
        if kind in ("checkbox", "radio") and "checked" not in tag:
            continue
        value = re.search(r'\bvalue="([^"]*)"', tag)
        values.add(name.group(1), value.group(1) if value else "")
    for name, body in re.findall(r'<select[^>]*\bname="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        option = re.search(r'<option[^>]*\bvalue="([^"]*)"', body)
        if option:
            values.add(name, option.group(1))
    for name, body in re.findall(
        r'<textarea[^>]*\bname="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S
    ):
        values.add(name, body.strip() or "x")
    return values


def _check(response, what):
    status = response.status_code
    response.close()
    assert status < 500, what


@pytest.mark.slow
@pytest.mark.parametrize(("endpoint", "method"), sorted(key for key in EXPECTED if key not in SKIP))
def test_hostile_ids_and_dates_never_answer_a_server_error(signed_in_world, endpoint, method):
    app, world = signed_in_world.app, signed_in_world.world
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    int_args = [a for a in rule.arguments if isinstance(rule._converters[a], IntegerConverter)]
    query = dict(QUERY_ARGS.get(endpoint, lambda w: {})(world))
    good_path = _path(rule, world, {})
    for actor in _askers((endpoint, method)):
        client = signed_in_world.client(actor)
        # Every id in the path.
        for arg in int_args:
            for value in IDS:
                path = _path(rule, world, {arg: value})
                response = (
                    client.get(path, query_string=query)
                    if method == "GET"
                    else (client.post(path, query_string=query))
                )
                _check(response, (actor, method, path[:80]))
        page = ""
        if "GET" in rule.methods:
            response = client.get(good_path, query_string=query)
            page = response.get_data(as_text=True)
            response.close()
        baseline = _baseline(page)
        for name, value in POST_ONLY_FIELDS.get(endpoint, {}).items():
            baseline[name] = value
        # Every query argument a page might read, and (POST) every field of its form.
        # (once each: a page's own field may also be one of QUERY_NAMES)
        for name in dict.fromkeys([*QUERY_NAMES, *(baseline.keys() if method == "GET" else [])]):
            for value in VALUES:
                if method == "GET":
                    response = client.get(good_path, query_string={**query, name: value})
                else:
                    response = client.post(
                        good_path, query_string={**query, name: value}, data=baseline
                    )
                _check(response, (actor, method, good_path, "?" + name, value[:30]))
        if method == "POST":
            for name in dict.fromkeys([*baseline.keys(), *FORM_NAMES]):
                for value in VALUES:
                    data = MultiDict(baseline)
                    data.setlist(name, [value])
                    response = client.post(good_path, query_string=query, data=data)
                    _check(response, (actor, method, good_path, name, value[:30]))


# --- The helpers the walk relies on, and what a person sees ------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("42", 42),
        (str(2**31 - 1), 2**31 - 1),
        (str(2**31), None),
        (str(2**63 + 1), None),
        ("0", None),
        ("-1", None),
        ("+1", None),
        ("1e3", None),
        (" 7 ", 7),
        ("٣", None),  # an Arabic-Indic digit: isdigit() says yes, an id it is not
        ("9" * 5000, None),
        ("", None),
        (None, None),
    ],
)
def test_as_id_accepts_only_ids_a_table_can_hold(text, expected):
    assert as_id(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-02", "2026-11-02"),
        ("1900-01-01", "1900-01-01"),
        ("2100-12-31", "2100-12-31"),
        ("1899-12-31", None),
        ("2101-01-01", None),
        ("9999-12-31", None),
        ("0001-01-01", None),
        ("2026-02-30", None),
        ("20261102", None),
        ("2026-11-02T10:00", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_day_refuses_dates_outside_the_sane_range(text, expected):
    day = parse_day(text)
    assert (day.isoformat() if day else None) == expected


def test_the_int_converter_of_every_route_is_the_bounded_one(app):
    rules = [r for r in app.url_map.iter_rules() if r.arguments]
    converters = [c for r in rules for c in r._converters.values() if c.regex.startswith(r"\d")]
    assert converters and all(isinstance(c, IdConverter) for c in converters)


def test_a_far_off_date_is_refused_beside_the_field_and_changes_nothing(app, client, auth):
    with app.app_context():
        made = create_clinic()
        therapist, group = made.therapist.email, made.group.id
        db.session.commit()
    auth.login(therapist)
    for day in ("9999-12-31", "0001-01-01"):
        response = client.post(
            "/therapist/groups",
            data={"session_type": group, "first_day": day, "start_time": "17:00", "weeks": 1},
        )
        assert response.status_code == 400
        assert str(DATE_OUT_OF_RANGE) in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Appointment.id))) == 0


def test_the_audit_log_refuses_a_far_off_date_with_a_message(app, client, auth):
    with app.app_context():
        admin = create_user(Role.ADMIN).email
        db.session.commit()
    auth.login(admin)
    response = client.get("/admin/audit", query_string={"start": "0001-01-01"})
    assert response.status_code == 400
    assert str(DATE_OUT_OF_RANGE) in response.get_data(as_text=True)
    # The export sends a refused filter back to the page that says why.
    response = client.get("/admin/audit.csv", query_string={"end": "9999-12-31"})
    assert response.status_code == 302 and "/admin/audit" in response.location


def test_the_calendar_shows_this_week_for_a_far_off_date(app, client, auth):
    with app.app_context():
        therapist = create_user(Role.THERAPIST).email
        db.session.commit()
    auth.login(therapist)
    for day in ("9999-12-31", "0001-01-01", "1900-01-01", "2100-12-31"):
        assert client.get("/therapist/calendar", query_string={"date": day}).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/booking/99999999999999999999", f"/booking/{2**31}", "/booking/0", "/booking/-1"],
)
def test_an_id_no_table_can_hold_is_not_found(app, client, auth, path):
    with app.app_context():
        member = create_user(Role.FAMILY).email
        db.session.commit()
    auth.login(member)
    assert client.get(path).status_code == 404
    assert (
        client.get("/booking/new", query_string={"patient": path.rsplit("/", 1)[1]}).status_code
        == 404
    )


@pytest.mark.parametrize("extra", ["endpoint", "_external", "_scheme", "_anchor", "values"])
def test_a_refused_export_sends_back_only_the_filters(app, client, auth, extra):
    with app.app_context():
        admin = create_user(Role.ADMIN).email
        db.session.commit()
    auth.login(admin)
    response = client.get("/admin/audit.csv", query_string={"end": "9999-12-31", extra: "x"})
    assert response.status_code == 302
    assert response.location.startswith("/admin/audit?") and extra not in response.location
