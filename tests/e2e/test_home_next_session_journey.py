"""A family member with a session tomorrow sees it first on her home page: when, where, the
calendar file and the page to reschedule or cancel it, on a phone too (issue 19, point 5)."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect

from familylink.models import Role
from tests import factories
from tests.booking_setup import add_appointment, create_session_types
from tests.e2e.helpers import assert_accessible, heading, horizontal_overflow, sign_in
from tests.moments import NOON

TOMORROW = NOON + timedelta(days=1)  # Thursday, 12:00 in New York


def _marias_session_tomorrow() -> int:
    lee = factories.create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
    jordan = factories.create_user(
        Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee
    )
    maria = factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
    factories.create_consent(jordan, maria)
    private, _group = create_session_types()
    return add_appointment(lee, jordan, maria, private, starts_at=TOMORROW, booked_at=NOON).id


def test_a_family_member_sees_tomorrows_session_first_on_her_home(page: Page, live_server):
    with live_server.database():
        seat_id = _marias_session_tomorrow()
    live_server.clock.set(NOON)
    page.set_viewport_size({"width": 320, "height": 700})
    sign_in(page, "maria@example.org")
    heading(page, "Hello, Maria")
    first_heading = page.locator("main h2").first
    expect(first_heading).to_have_text("Your next session")
    next_session = page.get_by_role("region", name="Your next session")
    expect(next_session).to_contain_text("Thursday, November 19, 2026")
    expect(next_session).to_contain_text("Room 2")
    expect(next_session.get_by_role("link", name="Add to my calendar (.ics)")).to_have_attribute(
        "href", f"/booking/{seat_id}/calendar.ics"
    )
    assert horizontal_overflow(page) == 0
    assert_accessible(page)
    next_session.get_by_role("link", name="Reschedule or cancel").click()
    heading(page, "Your session")
