"""The family's week picker in a browser: by mouse, by keyboard alone, and on a 320 px phone,
each page scanned with axe; and the same picker moving a booked session, by keyboard alone.
The server's clock is NOON (Wednesday, November 18, 2026)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    assert_accessible,
    flash,
    heading,
    horizontal_overflow,
    sign_in,
    tab_to,
)
from tests.e2e.test_accessibility import PHONE
from tests.moments import NOON


def _maria_and_a_clinic(live_server) -> int:
    from tests.booking_setup import create_clinic

    live_server.clock.set(NOON)
    with live_server.database():
        clinic = create_clinic()
        clinic.family.email = "maria@example.org"
        return clinic.patient.id


def test_a_family_member_walks_the_weeks_and_books_with_the_mouse(page: Page, live_server):
    patient_id = _maria_and_a_clinic(live_server)
    sign_in(page, "maria@example.org")
    page.goto(f"/booking/new?patient={patient_id}")
    heading(page, "Book a family session for Jordan")
    expect(page.get_by_role("heading", name="Week of Monday, November 16, 2026")).to_be_visible()
    expect(page.get_by_role("group", name="Wednesday, November 18")).to_contain_text(
        "No free times on this day."
    )
    assert_accessible(page)
    page.get_by_role("link", name="Next week →").click()
    expect(page.get_by_role("heading", name="Week of Monday, November 23, 2026")).to_be_visible()
    page.get_by_role("link", name="← Previous week").click()
    expect(page.get_by_role("heading", name="Week of Monday, November 16, 2026")).to_be_visible()
    page.get_by_role("link", name="Next week →").click()
    page.get_by_role("group", name="Tuesday, November 24").get_by_label(
        "2:00 PM", exact=True
    ).check()
    page.get_by_role("button", name="Continue").click()
    heading(page, "Check your booking")
    expect(page.get_by_text("Tuesday, November 24, 2026, 2:00 PM EST")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Choose another time").click()
    expect(page.get_by_role("heading", name="Week of Monday, November 23, 2026")).to_be_visible()
    tuesday = page.get_by_role("group", name="Tuesday, November 24")
    expect(tuesday.get_by_label("2:00 PM", exact=True)).to_be_checked()  # the choice kept
    page.get_by_role("group", name="Tuesday, November 24").get_by_label(
        "3:00 PM", exact=True
    ).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Book this time").click()
    heading(page, "You're booked")
    expect(page.get_by_text("When: Tuesday, November 24, 2026, 3:00 PM EST")).to_be_visible()


def test_a_family_member_changes_week_and_books_with_the_keyboard_alone(page: Page, live_server):
    patient_id = _maria_and_a_clinic(live_server)
    sign_in(page, "maria@example.org")
    page.goto(f"/booking/new?patient={patient_id}")
    tab_to(page, "Next week →", limit=40)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Week of Monday, November 23, 2026")).to_be_visible()
    tab_to(page, "9:00 AM", limit=40)  # Monday's first free time
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    checked = page.get_by_role("radio", checked=True)
    expect(checked).to_have_accessible_name("11:00 AM")
    expect(checked).to_have_value("2026-11-23T16:00Z")
    tab_to(page, "Continue", limit=10)
    page.keyboard.press("Enter")
    heading(page, "Check your booking")
    expect(page.get_by_text("Monday, November 23, 2026, 11:00 AM EST")).to_be_visible()
    tab_to(page, "Book this time")
    page.keyboard.press("Enter")
    heading(page, "You're booked")


def test_the_week_picker_works_on_a_320_px_phone(page: Page, live_server):
    patient_id = _maria_and_a_clinic(live_server)
    page.set_viewport_size(PHONE)
    sign_in(page, "maria@example.org")
    page.goto(f"/booking/new?patient={patient_id}")
    heading(page, "Book a family session for Jordan")
    assert horizontal_overflow(page) <= 0
    assert_accessible(page)
    page.get_by_role("group", name="Friday, November 20").get_by_label(
        "4:00 PM", exact=True
    ).check()
    page.get_by_role("button", name="Continue").click()
    heading(page, "Check your booking")
    assert horizontal_overflow(page) <= 0
    assert_accessible(page)
    page.get_by_role("button", name="Book this time").click()
    heading(page, "You're booked")


def test_a_family_member_moves_a_session_with_the_keyboard_alone(page: Page, live_server):
    """The session page's "Move to another time" is the same week picker: Tab to the next
    week, Tab to a time, arrow keys within the day, Tab to "Move", Enter."""
    from datetime import UTC, datetime

    from tests.booking_setup import create_clinic, family_seat

    live_server.clock.set(NOON)
    with live_server.database():
        clinic = create_clinic()
        clinic.family.email = "maria@example.org"
        # Monday, November 30, 2026, 10:00 AM in New York: outside the cancellation window.
        seat_id = family_seat(clinic, datetime(2026, 11, 30, 15, tzinfo=UTC), booked_at=NOON).id
    sign_in(page, "maria@example.org")
    page.goto(f"/booking/{seat_id}")
    heading(page, "Your session")
    expect(page.get_by_role("heading", name="Move to another time")).to_be_visible()
    expect(page.get_by_role("heading", name="Week of Monday, November 16, 2026")).to_be_visible()
    assert_accessible(page)
    tab_to(page, "Next week →", limit=60)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Week of Monday, November 23, 2026")).to_be_visible()
    tab_to(page, "9:00 AM", limit=60)  # Monday's first free time
    page.keyboard.press("ArrowDown")
    checked = page.get_by_role("radio", checked=True)
    expect(checked).to_have_accessible_name("10:00 AM")
    expect(checked).to_have_value("2026-11-23T15:00Z")
    assert_accessible(page)
    tab_to(page, "Move", limit=60)
    page.keyboard.press("Enter")
    flash(page, "Moved. We have emailed you a calendar update.")
    expect(page.get_by_text("When: Monday, November 23, 2026, 10:00 AM EST")).to_be_visible()
