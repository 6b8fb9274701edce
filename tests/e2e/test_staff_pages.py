"""The therapist's week grid (desktop and phone), cancelling from it with a reason, staff
headers on one line at 1280 px, and wide tables that say they scroll on a phone. Each step
is checked with axe."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect

from familylink.models import Role
from tests import factories
from tests.booking_setup import add_appointment, create_clinic
from tests.e2e.helpers import (
    assert_accessible,
    flash,
    heading,
    horizontal_overflow,
    nav,
    sign_in,
)
from tests.moments import NOON

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


def _one_line(page: Page) -> None:
    """The main menu is one line: no taller than its tallest item."""
    box = page.get_by_role("navigation", name="Main").bounding_box()
    tallest = max(
        item.bounding_box()["height"]
        for item in page.get_by_role("navigation", name="Main").locator("li").all()
    )
    assert box["height"] <= tallest + 2, box


def test_the_therapist_works_from_the_week_grid_on_a_desktop_and_a_phone(page: Page, live_server):
    live_server.clock.set(NOON)
    with live_server.database():
        clinic = create_clinic()
        # Next week's Thursday, 11:00 AM in New York: the calendar opens on that week.
        add_appointment(
            clinic.therapist,
            clinic.patient,
            clinic.family,
            clinic.private,
            starts_at=NOON + timedelta(days=8, hours=-1),
            booked_at=NOON,
        )
        email = clinic.therapist.email
        patient = clinic.patient.id

    page.set_viewport_size(DESKTOP)
    sign_in(page, email)
    _one_line(page)
    nav(page, "Calendar")
    heading(page, "Calendar: November 23 to November 29, 2026")
    grid = page.get_by_role("table")
    expect(grid.get_by_role("columnheader", name="Thu, Nov 26")).to_be_visible()
    expect(grid.get_by_role("rowheader", name="11 AM")).to_be_visible()
    expect(grid.get_by_role("link", name="11:00 AM Family session: Jordan Rivera")).to_be_visible()
    assert_accessible(page)
    _one_line(page)

    # On a phone the week is a list per day, and nothing scrolls sideways.
    page.set_viewport_size(PHONE)
    expect(grid).to_be_hidden()
    expect(page.get_by_role("heading", name="Thursday, November 26")).to_be_visible()
    assert horizontal_overflow(page) <= 0
    assert_accessible(page)

    # Cancelling asks why first, and brings the therapist back to the same week.
    page.get_by_role("link", name="Cancel… Jordan Rivera's family's place").click()
    heading(page, "Cancel a session")
    page.get_by_role("button", name="Cancel the session").click()
    expect(page.get_by_text("Choose why the session is cancelled.").first).to_be_visible()
    assert_accessible(page)
    page.get_by_label("The program is closed that day").check()
    page.get_by_role("button", name="Cancel the session").click()
    flash(page, "Cancelled. The family has been emailed.")
    heading(page, "Calendar: November 23 to November 29, 2026")
    page.set_viewport_size(DESKTOP)
    expect(page.get_by_role("table").get_by_text("(cancelled)")).to_be_visible()
    assert_accessible(page)

    # The family contacts table says it scrolls on a phone.
    page.goto(f"/therapist/patients/{patient}/family")
    page.set_viewport_size(PHONE)
    expect(page.get_by_text("scroll it sideways").first).to_be_visible()
    assert horizontal_overflow(page) <= 0


def test_staff_headers_fit_one_line_and_wide_tables_say_they_scroll(page: Page, live_server):
    live_server.clock.set(NOON)
    with live_server.database():
        admin = factories.create_user(Role.ADMIN, name="Alex Admin").email
        factories.create_user(Role.FAMILY, name="Maria Rivera")
    page.set_viewport_size(DESKTOP)
    sign_in(page, admin)
    _one_line(page)
    page.goto("/admin/accounts?q=rivera")
    _one_line(page)
    expect(page.get_by_text("scroll it sideways")).to_be_hidden()
    page.set_viewport_size(PHONE)
    expect(page.get_by_text("scroll it sideways")).to_be_visible()
    assert horizontal_overflow(page) <= 0
    assert_accessible(page)
