"""Every page each role can reach, and their error states: no WCAG 2.1 A/AA violation (axe),
usable at 320 px wide and at 200% zoom.

200% zoom in a 1280×800 window lays the page out in a 640×400 CSS-pixel viewport drawn at
twice the density; that is what these checks use. To cover a new page, add its path (or a
step that reaches its error state) to the lists below.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time

import pytest
from playwright.sync_api import Page, expect

from familylink.models import Role
from tests import factories
from tests.e2e.helpers import assert_accessible, follow, heading, horizontal_overflow, sign_in
from tests.moments import NOON as NOW

PHONE = {"width": 320, "height": 640}
ZOOM_200 = {"width": 640, "height": 400}
DESKTOP = {"width": 1280, "height": 800}


def check_page(page: Page) -> None:
    """axe at desktop and phone width; no sideways scrolling at 320 px or at 200% zoom."""
    assert_accessible(page)
    for size in (PHONE, ZOOM_200):
        page.set_viewport_size(size)
        assert horizontal_overflow(page) <= 0, f"{page.url} scrolls sideways at {size}"
        expect(page.get_by_role("heading", level=1)).to_be_in_viewport(ratio=0.5)
    page.set_viewport_size(PHONE)
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)


def visit_all(page: Page, paths: list[str]) -> None:
    for path in paths:
        page.goto(path)
        check_page(page)


ANONYMOUS_PAGES = [
    "/",
    "/login",
    "/register",
    "/register/check-email",
    "/reset",
    "/help/crisis",
    "/verify/not-a-real-token",
    "/reset/not-a-real-token",
    "/invitation/not-a-real-token",
    "/no/such/page",
]


def test_every_public_page(page: Page):
    visit_all(page, ANONYMOUS_PAGES)


def _submit(page: Page, button: str, fields: dict[str, str] | None = None) -> None:
    for label, value in (fields or {}).items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name=button).click()


# Error states a visitor can reach: (path, what to fill in, the button, text that must show).
ERROR_STATES = [
    (
        "/login",
        {"Email address": "nobody@example.org", "Password": "wrong password here"},
        "Sign in",
        "That email and password don't match an account.",
    ),
    ("/login", {}, "Sign in", "Enter your email address."),
    (
        "/register",
        {"Your name": "", "Email address": "not an address", "Password": "short"},
        "Create account",
        "Enter your name.",
    ),
    (
        "/register",
        {"Your name": "Maria", "Email address": "maria@example.org", "Password": "password1234"},
        "Create account",
        "This password is too common.",
    ),
    ("/reset", {"Email address": "not an address"}, "Send the link", "Enter an email address like"),
    ("/verify/not-a-real-token", {}, "Confirm my address", "This link does not work"),
    (
        "/reset/not-a-real-token",
        {"New password": "long enough, but the link is bad"},
        "Save my new password",
        "This link does not work",
    ),
]


@pytest.mark.parametrize(("path", "fields", "button", "message"), ERROR_STATES)
def test_error_states_are_accessible(page: Page, path, fields, button, message):
    page.goto(path)
    _submit(page, button, fields)
    expect(page.get_by_text(message).first).to_be_visible()
    check_page(page)


ACCOUNT_PAGES = ["/account/", "/account/sessions", "/account/password", "/account/email"]


def _clinic():
    """A therapist with hours and session types, Jordan, Maria (consented, with a booked
    session and a weekly group), and the learning modules."""
    from familylink.services import booking, learning
    from tests.booking_setup import create_clinic

    learning.load_modules(now=NOW)
    clinic = create_clinic(scopes=("scheduling", "attendance", "progress"))
    clinic.family.email = "maria@example.org"
    seat = booking.book_private(
        actor=clinic.family,
        patient_id=clinic.patient.id,
        session_type_id=clinic.private.id,
        starts_at=booking.slots_for(clinic.therapist.id, clinic.private, now=NOW)[0],
        attendee_ids=[],
        note="",
        request_key="scan",
        now=NOW,
    )
    booking.schedule_group(
        actor=clinic.therapist,
        session_type_id=clinic.group.id,
        first_day=date(2026, 11, 25),
        start_time=time(17),
        weeks=2,
        capacity=2,
        now=NOW,
    )
    slug = learning.all_modules()[0].slug
    # Scanned with the program's after-hours line shown in the footer and crisis box.
    from familylink.services.program import forget_cached_program, program_row

    program_row().after_hours_phone = "555-201-3344"
    forget_cached_program()
    return clinic, seat, slug


def _family_with_a_consent() -> tuple[str, list[str]]:
    clinic, seat, slug = _clinic()
    patient = clinic.patient.id
    return clinic.family.email, [
        "/family/",
        f"/family/patients/{patient}",
        "/booking/",
        f"/booking/new?patient={patient}",
        f"/booking/new?patient={patient}&week=not-a-week",  # the week picker's message
        f"/booking/groups?patient={patient}",
        f"/booking/{seat.id}",
        "/booking/feed",
        "/learn/",
        "/learn/?q=zzzz",
        f"/learn/modules/{slug}",
        # The safety readings, with their numbered references and source lists.
        "/learn/modules/safety-and-crisis",
        "/learn/modules/withdrawal-can-be-dangerous",
        "/learn/modules/suicide-warning-signs-and-a-safer-home",
        *ACCOUNT_PAGES,
    ]


def _family_alone() -> tuple[str, list[str]]:
    email = factories.create_user(Role.FAMILY, name="Kim Nguyen").email
    return email, ["/family/", "/booking/", "/learn/", *ACCOUNT_PAGES]


def _patient() -> tuple[str, list[str]]:
    clinic, _seat, _slug = _clinic()
    from familylink.services import consent

    record = consent.active_consent(clinic.family.id, clinic.patient.id, now=NOW)
    paths = [
        "/patient/",
        "/patient/consents",
        "/patient/consents/new",
        "/patient/shared",
        "/patient/sessions",
        "/patient/updates",
        *ACCOUNT_PAGES,
    ]
    paths += [f"/patient/consents/{record.id}", f"/patient/consents/{record.id}/revoke"]
    return clinic.patient.email, paths


def _therapist_with_patients() -> tuple[str, list[str]]:
    clinic, seat, _slug = _clinic()
    from familylink.services import consent

    therapist = clinic.therapist
    record = consent.active_consent(clinic.family.id, clinic.patient.id, now=NOW)
    factories.create_user(Role.PATIENT, name="Sam Okafor", therapist=therapist, password=None)
    patient = clinic.patient.id
    return therapist.email, [
        "/therapist/",
        "/therapist/attendance",
        "/therapist/calendar",
        "/therapist/calendar?view=day&date=2026-11-18",
        f"/therapist/seats/{seat.id}/cancel",
        "/therapist/book",
        f"/therapist/book?patient={patient}",  # the week picker
        f"/therapist/seats/{seat.id}/reschedule",  # the week picker, to move a session
        "/therapist/groups",
        "/therapist/availability",
        f"/therapist/patients/{patient}/family",
        f"/therapist/patients/{patient}/consents/paper",
        f"/therapist/patients/{patient}/updates",
        "/learn/therapist",
        f"/learn/therapist/patients/{patient}",
        f"/therapist/consents/{record.id}",
        f"/therapist/consents/{record.id}/revoke",
        *ACCOUNT_PAGES,
    ]


def _admin() -> tuple[str, list[str]]:
    grace = factories.create_user(Role.THERAPIST, name="Grace Lee")
    factories.create_user(Role.THERAPIST, name="Ravi Patel", password=None)
    from familylink.services import learning

    learning.load_modules(now=NOW)
    email = factories.create_user(Role.ADMIN, name="Alex Admin").email
    return email, [
        "/admin/",
        "/admin/settings",
        "/admin/audit",
        "/admin/accounts",
        "/admin/accounts?q=zzzz",
        f"/admin/accounts/{grace.id}/two-step",
        "/learn/admin",
        *ACCOUNT_PAGES,
    ]


def _bad_enrolment(page: Page) -> None:
    _submit(page, "Enrol and send invitation", {"Patient's email address": "nope"})
    expect(page.get_by_text("Enter a name.")).to_be_visible()


def _bad_invitation(page: Page) -> None:
    _submit(page, "Send invitation", {"Full name": "Ravi Patel", "Email address": "nope"})
    expect(page.get_by_text("Enter an email address like name@example.com.")).to_be_visible()


def _bad_settings(page: Page) -> None:
    _submit(page, "Save settings", {"Program name": "", "Booking horizon (days)": "0"})
    expect(page.get_by_text("Enter a name.")).to_be_visible()


def _bad_reminders(page: Page) -> None:
    for box in (
        page.get_by_role("group", name="Reminder emails before a session")
        .get_by_role("checkbox")
        .all()
    ):
        box.uncheck()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Tick at least one reminder time.")).to_be_visible()


def _bad_account_search(page: Page) -> None:
    page.goto("/admin/accounts?page=0&q=a")
    expect(page.get_by_text("Use a page number.")).to_be_visible()


def _bad_consent(page: Page) -> None:
    page.get_by_role("button", name="Sign and send invitation").click()
    expect(page.get_by_text("Enter the family member's name.")).to_be_visible()


def _bad_password_change(page: Page) -> None:
    _submit(page, "Change my password", {"Current password": "not my password at all"})
    expect(
        page.get_by_text("Enter your current password.")
        .or_(page.get_by_text("That password is not right."))
        .or_(page.locator(".error"))
        .first
    ).to_be_visible()


ROLES: list[tuple[str, Callable[[], tuple[str, list[str]]], list[tuple[str, Callable]]]] = [
    (
        "family, linked",
        _family_with_a_consent,
        [("/account/password", _bad_password_change)],
    ),
    ("family, not linked yet", _family_alone, []),
    ("patient", _patient, [("/patient/consents/new", _bad_consent)]),
    ("therapist", _therapist_with_patients, [("/therapist/", _bad_enrolment)]),
    (
        "admin",
        _admin,
        [
            ("/admin/", _bad_invitation),
            ("/admin/settings", _bad_settings),
            ("/admin/settings", _bad_reminders),
            ("/admin/accounts", _bad_account_search),
        ],
    ),
]


@pytest.mark.parametrize(("who", "make_user", "errors"), ROLES, ids=[r[0] for r in ROLES])
def test_every_page_a_role_reaches(page: Page, live_server, who, make_user, errors):
    live_server.clock.set(NOW)
    with live_server.database():
        email, paths = make_user()
    sign_in(page, email)
    check_page(page)  # the home page it lands on
    visit_all(page, [*paths, "/help/crisis", "/no/such/page"])
    for path, make_error in errors:
        page.goto(path)
        make_error(page)
        check_page(page)


def test_the_development_mailbox(serve_app, new_context):
    server = serve_app(MAIL_SERVER=None, DEV_MAILBOX=True)
    page = new_context(base_url=server.url, viewport=DESKTOP).new_page()
    page.goto("/register")
    _submit(
        page,
        "Create account",
        {
            "Your name": "Maria Rivera",
            "Email address": "maria@example.org",
            "Password": "harbor lantern cedar ninety",
        },
    )
    server.deliver_mail()
    page.goto("/dev/mailbox")
    heading(page, "Development mailbox")
    check_page(page)
    follow(page, "Confirm your email address")
    check_page(page)
