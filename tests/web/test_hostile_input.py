"""Hostile input to every form and query parameter, as each kind of person.

Hypothesis draws markup and script payloads, SQL fragments, 100 kB strings, control
characters, CR/LF, NUL bytes, wrong types, missing and duplicated fields. Whatever
arrives: never a 500, never the payload reflected unescaped, and a refused request
changes nothing.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from tests.web.test_authorization_matrix import (
    EXPECTED,
    QUERY_ARGS,
    URL_ARGS,
    state_snapshot,
)

ROLES = ("anonymous", "family_consented", "patient", "therapist", "admin")

MARKUP = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg/onload=alert(1)>",
    "</textarea><b>bold</b>",
]
PAYLOADS = [
    *MARKUP,
    "javascript:alert(1)",
    "' OR '1'='1' --",
    "1; DROP TABLE users; --",
    "x" * 100_000,
    "\x00",
    "a\x00b",
    "line\r\nSet-Cookie: evil=1",
    "\x1b[31m\x07\x08\x7f",
    "{{ 7*7 }}",
    "%00%0d%0a",
    "../../etc/passwd",
    "-1",
    "0",
    "99999999999999999999",
    "1e309",
    "NaN",
    "[]",
    "true",
    "",
    "\u202e\ufeff\u200b",
]
ALONE = ["a\x00b", MARKUP[1]]
UNIFORM = ["a\x00b", MARKUP[1], "x" * 100_000, "line\r\nX-Evil: 1", "99999999999999999999"]
hostile_value = st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=40))

# Fields of forms that have no page of their own (they sit on another page).
POST_ONLY_FIELDS = {
    "admin.invite_therapist": ["name", "email"],
    "therapist.enrol_patient": ["name", "email", "episode_start"],
    "therapist.discharge": ["ended_on", "reason", "confirm"],
    "therapist.readmit": ["started_on"],
}
# Never sent: they end the asker's own session, which is their whole job.
SKIP = {("auth.logout", "POST"), ("static", "GET")}
ALWAYS_TRIED = ["next", "role", "patient_id", "therapist_id"]


def _field_names(page: str) -> list[str]:
    names = re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', page)
    return [n for n in dict.fromkeys(names) if n != "csrf_token"]


def _url(app, endpoint, world):
    from flask import url_for

    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {a: URL_ARGS[a](world) for a in rule.arguments}
    values.update(QUERY_ARGS.get(endpoint, lambda world: {})(world))
    with app.test_request_context():
        return url_for(endpoint, **values)


ROUTES = sorted(key for key in EXPECTED if key not in SKIP)


@pytest.mark.slow
@pytest.mark.parametrize(("endpoint", "method"), ROUTES)
def test_hostile_values_never_break_a_page(signed_in_world, endpoint, method):
    app, world = signed_in_world.app, signed_in_world.world
    clients = {role: signed_in_world.client(role) for role in ROLES}
    url = _url(app, endpoint, world)
    fields: dict[str, list[str]] = {}
    for role, client in clients.items():
        page = client.get(url).get_data(as_text=True) if "GET" in _methods(app, endpoint) else ""
        names = POST_ONLY_FIELDS.get(endpoint) or _field_names(page)
        fields[role] = [*names, *ALWAYS_TRIED]

    # First the worst of each kind alone in each field (so the other fields cannot stop
    # it at validation), then in every field at once; then Hypothesis mixes them.
    for role, client in clients.items():
        for value in ALONE:
            for name in fields[role]:
                if name not in ALWAYS_TRIED[1:]:
                    _send_and_check(app, client, method, url, role, [(name, value)])
        for value in UNIFORM:
            _send_and_check(app, client, method, url, role, [(n, value) for n in fields[role]])

    @settings(
        max_examples=6,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def check(data):
        for role, client in clients.items():
            sent = []
            for name in fields[role]:
                how = data.draw(st.sampled_from(["one", "one", "missing", "twice"]), label=name)
                if how == "missing":
                    continue
                for _ in range(2 if how == "twice" else 1):
                    sent.append((name, data.draw(hostile_value, label=name)))
            _send_and_check(app, client, method, url, role, sent)

    check()


def _send_and_check(app, client, method, url, role, sent):
    with app.app_context():
        before = state_snapshot()
    if method == "GET":
        path, _, query = url.partition("?")
        response = client.get(path, query_string=[*parse_qsl(query), *sent])
    else:
        response = client.post(url, data=MultiDict(sent))
    body = response.get_data(as_text=True)
    response.close()
    assert response.status_code < 500, (role, [(k, v[:40]) for k, v in sent])
    for _name, value in sent:
        if "<" in value and len(value) > 3:
            assert value not in body, f"{role} saw {value!r} unescaped"
    if response.status_code >= 400:
        with app.app_context():
            assert state_snapshot() == before, (role, response.status_code)


def _methods(app, endpoint):
    return {m for r in app.url_map.iter_rules() if r.endpoint == endpoint for m in r.methods}


@pytest.mark.parametrize(
    "path", ["/login", "/register", "/reset", "/reset/abc", "/admin/audit", "/account/email"]
)
def test_invalid_utf8_and_nul_bytes_are_refused_calmly(app, client, path):
    body = b"email=%FF%FE%00&name=%C0%AF&password=%ED%A0%80&who=%FF"
    response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code < 500
    assert client.get(path + "?next=%FF%00&who=%C0").status_code < 500


def test_a_nul_byte_anywhere_in_a_form_is_a_400(client):
    response = client.post("/login", data={"email": "a@example.org\x00", "password": "x"})
    assert response.status_code == 400
