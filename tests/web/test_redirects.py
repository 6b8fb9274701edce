"""Open redirects: every user-given redirect target passes `web.local_target`, and a corpus
of known payloads ends on the default page, never on another host and never in a 500."""

from __future__ import annotations

import pytest

from familylink.extensions import db
from familylink.models import Role
from familylink.web import local_target
from tests.conftest import AuthActions
from tests.factories import PASSWORD, create_user
from tests.web.test_authorization_matrix import build_world

# Each one was, somewhere, read by a browser, a proxy or Werkzeug as a trip to another host,
# or broke the Location header.
PAYLOADS = [
    "//evil.example/x",
    "///evil.example/x",
    "////evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/\t/evil.example/x",
    "/%09/evil.example/x",
    "/%0a/evil.example",
    "/%0d/evil.example",
    "/%0d%0aSet-Cookie:%20x=1",
    "/\r\nLocation: https://evil.example",
    "/%0D%0ALocation:%20https://evil.example",
    "/%250d%250aSet-Cookie:x",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5c%5cevil.example",
    "%5C%5Cevil.example",
    "/%252F%252Fevil.example",
    "/%25252F%25252Fevil.example",
    "/%00//evil.example",
    "/\x00/evil.example",
    "/ /evil.example",
    "/%20/evil.example",
    " //evil.example",
    "/\x0b/evil.example",
    "/\x0c/evil.example",
    "/\x7f/evil.example",
    "/\u0085/evil.example",
    "/\u00a0/evil.example",
    "/\u2028/evil.example",
    "/\u200b/evil.example",
    "/\ufeff/evil.example",
    "/\uff0fevil.example",  # full-width solidus
    "\uff0f\uff0fevil.example",
    "/%EF%BC%8Fevil.example",
    "/\u2215evil.example",  # division slash
    "/\u2044evil.example",  # fraction slash
    "/\u29f8evil.example",  # big solidus
    "/\ufe68evil.example",  # small reverse solidus
    "/%E2%88%95evil.example",
    "https://evil.example",
    "http:evil.example",
    "https:/evil.example",
    "https:///evil.example",
    "HTTPS://evil.example",
    "//evil.example@familylink.test",
    "/@evil.example",  # harmless as a path, but only with its slash: kept below as local
    "@evil.example",
    "evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "/javascript:alert(1)//%0a",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "/%ff",
    "/%c0%af/evil.example",
    "",
    ".",
    "../evil",
    "?next=//evil.example",
    "#//evil.example",
]
HARMLESS = {"/@evil.example"}  # a path on this site named "@evil.example"
HOSTILE = [p for p in PAYLOADS if p not in HARMLESS]


@pytest.mark.parametrize("target", HOSTILE)
def test_local_target_refuses_every_payload(target):
    assert local_target(target) is None


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/account/sessions",
        "/booking/new?patient=3&type=2",
        "/learn/?q=a%2Fb",
        "/admin/audit?start=2026-01-01&end=2026-02-01",
        "/therapist/calendar?date=2026-11-02#today",
        "/@evil.example",
    ],
)
def test_local_target_keeps_paths_on_this_site(target):
    assert local_target(target) == target


def test_local_target_refuses_what_is_not_text():
    assert local_target(None) is None
    assert local_target(b"/account") is None  # type: ignore[arg-type]


def _nul(target: str) -> bool:
    # A NUL byte in any value is refused with a 400 before any view runs (auth/guard.py).
    return "\x00" in target


def _lands_home(response, target: str) -> bool:
    if _nul(target):
        return response.status_code == 400
    expected = "/@evil.example" if target in HARMLESS else "/"
    return response.status_code == 302 and response.location in (
        expected,
        f"http://familylink.test{expected}",
    )


@pytest.fixture
def people(app):
    with app.app_context():
        create_user(Role.FAMILY, email="maria@example.org")
        create_user(Role.THERAPIST, email="lee@example.org")
        db.session.commit()


@pytest.mark.parametrize("target", PAYLOADS)
def test_sign_in_never_leaves_the_site(app, client, people, target):
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": "maria@example.org", "password": PASSWORD},
    )
    assert _lands_home(response, target), (target, response.status_code, response.location)


@pytest.mark.parametrize("target", PAYLOADS)
def test_the_code_step_never_leaves_the_site(app, client, people, target):
    first = client.post(
        "/login",
        query_string={"next": target},
        data={"email": "lee@example.org", "password": PASSWORD},
    )
    if _nul(target):
        assert first.status_code == 400
        first = client.post("/login", data={"email": "lee@example.org", "password": PASSWORD})
    assert first.status_code == 302, target
    assert first.location.startswith("/login/code"), target
    assert target in HARMLESS or "evil" not in first.location, target
    code = AuthActions(client, app).current_code("lee@example.org")
    # The step is also tried with the payload sent straight to it, not carried from sign-in.
    response = client.post("/login/code", query_string={"next": target}, data={"code": code})
    assert _lands_home(response, target), (target, response.status_code, response.location)


REFERERS = [
    "http://familylink.test//evil.example/x",
    "http://familylink.test/\\evil.example",
    "http://familylink.test/%2F%2Fevil.example",
    "http://familylink.test/%5Cevil.example",
    "http://familylink.test/%0d%0aSet-Cookie:x=1",
    "http://familylink.test/\uff0fevil.example",
    "http://evil.example/therapist/calendar",
    "https://familylink.test.evil.example/therapist/calendar",
    "javascript:alert(1)",
    "//evil.example/x",
]


@pytest.mark.parametrize("referer", REFERERS)
def test_a_refused_button_goes_back_only_to_a_page_of_this_site(app, referer):
    world = build_world(app)
    client = app.test_client()
    AuthActions(client, app).login(world.emails["other_therapist"])
    seat_id = world.objects["seat_id"]
    # No attendance value: the rules refuse it, and the answer goes "back".
    response = client.post(f"/therapist/seats/{seat_id}/attendance", headers={"Referer": referer})
    assert response.status_code == 303, referer
    assert response.location in ("/therapist/calendar", "http://familylink.test/therapist/calendar")


def test_a_refused_button_goes_back_to_the_local_page_it_was_on(app):
    world = build_world(app)
    client = app.test_client()
    AuthActions(client, app).login(world.emails["other_therapist"])
    response = client.post(
        f"/therapist/seats/{world.objects['seat_id']}/attendance",
        headers={"Referer": "http://familylink.test/therapist/calendar?date=2026-11-02"},
    )
    assert response.location.endswith("/therapist/calendar?date=2026-11-02")


def test_a_cr_lf_target_signs_in_and_lands_home(app, client, people):
    # It used to end in a 500 after the sign-in session had been written.
    response = client.post(
        "/login",
        query_string={"next": "/%0d%0aSet-Cookie:%20x=1"},
        data={"email": "maria@example.org", "password": PASSWORD},
    )
    assert response.status_code == 302 and "Set-Cookie" not in response.location
    assert client.get("/account/").status_code == 200
