"""A family member books a weekly series on a 320 px phone across the 2026-11-01 fall-back:
Maria (in Chicago) picks Tuesday, October 27 at 9:00 AM her time (10:00 AM at the clinic in
New York), repeats it for 4 weeks, sees every week in her zone and the therapist's, books
them all, then cancels the last two from the third week, after a confirmation. The program
lets families book a series. Each page is checked with axe; nothing scrolls sideways. The
server's clock is Thursday, October 22, 2026."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.booking_setup import create_clinic
from tests.e2e.helpers import assert_accessible, flash, heading, horizontal_overflow, sign_in
from tests.e2e.test_accessibility import PHONE
from tests.moments import WEEK_BEFORE_FALL_BACK


def _phone_page_checked(page: Page) -> None:
    assert horizontal_overflow(page) <= 0
    assert_accessible(page)


def test_a_family_books_four_weeks_across_the_fall_back_and_cancels_the_last_two(
    page: Page, live_server
):
    from familylink.services.program import program_row

    live_server.clock.set(WEEK_BEFORE_FALL_BACK)
    with live_server.database():
        clinic = create_clinic(family_zone="America/Chicago")
        program_row().families_may_book_series = True
        email, patient = clinic.family.email, clinic.patient.id

    page.set_viewport_size(PHONE)
    sign_in(page, email)
    page.goto(f"/booking/new?patient={patient}&week=2026-10-26")
    heading(page, "Book a family session for Jordan")
    page.get_by_role("group", name="Tuesday, October 27").get_by_label(
        "9:00 AM", exact=True
    ).check()
    page.get_by_label("Repeat weekly").select_option(label="For 4 weeks")
    _phone_page_checked(page)
    page.get_by_role("button", name="Continue").click()

    heading(page, "Check your weekly sessions")
    rows = page.get_by_role("table", name="Every week of the series").get_by_role("row")
    expect(rows).to_have_count(5)  # the heading, then four weeks, none in conflict
    # Each week in the therapist's zone, then Maria's: 10 AM in New York, 9 AM in Chicago.
    expect(rows.nth(1)).to_contain_text("Tuesday, October 27, 2026, 10:00 AM EDT")
    expect(rows.nth(1)).to_contain_text("Tuesday, October 27, 2026, 9:00 AM CDT")
    expect(rows.nth(2)).to_contain_text("Tuesday, November 3, 2026, 10:00 AM EST")
    expect(rows.nth(2)).to_contain_text("Tuesday, November 3, 2026, 9:00 AM CST")
    expect(rows.nth(4)).to_contain_text("Tuesday, November 17, 2026, 9:00 AM CST")
    _phone_page_checked(page)
    page.get_by_role("button", name="Book all 4 weeks").click()

    flash(page, "Booked every week. We have emailed a calendar file for each one.")
    heading(page, "Family sessions")
    _phone_page_checked(page)
    page.get_by_role("link", name="Tuesday, November 10, 2026, 9:00 AM CST").click()

    heading(page, "Your session")
    page.get_by_role("link", name="Cancel this and all later weeks…").click()
    heading(page, "Cancel weekly sessions")
    listed = page.get_by_role("list", name="This week and every later week")
    expect(listed.get_by_role("listitem")).to_have_text(
        ["Tuesday, November 10, 2026, 9:00 AM CST", "Tuesday, November 17, 2026, 9:00 AM CST"]
    )
    _phone_page_checked(page)
    page.get_by_role("button", name="Cancel all 2 sessions").click()

    flash(page, "Cancelled 2 sessions. We have emailed you a calendar update for each.")
    heading(page, "Family sessions")
    sessions = page.get_by_role("listitem").filter(has_text="Family session with")
    expect(sessions.filter(has_text="cancelled")).to_have_count(2)
    expect(sessions.filter(has_text="November 3, 2026")).not_to_contain_text("cancelled")
    _phone_page_checked(page)
