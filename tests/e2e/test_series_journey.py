"""The therapist books a weekly series across the 2026-11-01 fall-back: four Tuesdays at
10:00 AM in New York from October 27, listed first (EDT, then EST), booked, then the third
and fourth cancelled at once from the calendar. Each page is checked with axe. The server's
clock is Thursday, October 22, 2026."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from tests.booking_setup import create_clinic
from tests.e2e.helpers import assert_accessible, flash, heading, horizontal_overflow, sign_in
from tests.e2e.test_staff_pages import DESKTOP, PHONE
from tests.moments import WEEK_BEFORE_FALL_BACK


def test_a_therapist_books_four_weeks_across_the_fall_back_and_cancels_the_last_two(
    page: Page, live_server
):
    live_server.clock.set(WEEK_BEFORE_FALL_BACK)
    with live_server.database():
        clinic = create_clinic()
        email, patient = clinic.therapist.email, clinic.patient.id

    sign_in(page, email)
    page.goto(f"/therapist/book?patient={patient}")
    heading(page, "Book a family session")
    expect(page.get_by_role("heading", name="Week of Monday, October 19, 2026")).to_be_visible()
    page.get_by_role("link", name="Next week →").click()
    expect(page.get_by_role("heading", name="Week of Monday, October 26, 2026")).to_be_visible()
    page.get_by_role("group", name="Tuesday, October 27").get_by_label(
        "10:00 AM", exact=True
    ).check()
    page.get_by_label("Repeat weekly").select_option(label="For 4 weeks")
    page.get_by_label("Maria Rivera").check()
    assert_accessible(page)
    page.get_by_role("button", name="Book").click()

    heading(page, "Book every week")
    weeks = page.get_by_role("table", name="Every week of the series")
    for when in (
        "Tuesday, October 27, 2026, 10:00 AM EDT",
        "Tuesday, November 3, 2026, 10:00 AM EST",
        "Tuesday, November 10, 2026, 10:00 AM EST",
        "Tuesday, November 17, 2026, 10:00 AM EST",
    ):
        expect(weeks.get_by_role("cell", name=when).first).to_be_visible()
    assert_accessible(page)
    page.set_viewport_size(PHONE)  # the list fits a phone: nothing scrolls the page sideways
    assert horizontal_overflow(page) <= 0
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)
    page.get_by_role("button", name="Book all 4 weeks").click()

    flash(page, "Booked every week. The family has been emailed.")
    heading(page, "Calendar: October 26 to November 1, 2026")
    assert_accessible(page)
    page.get_by_role("link", name="Next week").first.click()
    page.get_by_role("link", name="Next week").first.click()
    heading(page, "Calendar: November 9 to November 15, 2026")
    page.get_by_role(
        "link", name="Cancel this and all future… Jordan Rivera's family's weekly sessions"
    ).click()

    heading(page, "Cancel a session")
    listed = page.get_by_role("list", name="This week and every later week of the series")
    expect(listed.get_by_role("listitem")).to_have_text(
        ["Tuesday, November 10, 2026, 10:00 AM EST", "Tuesday, November 17, 2026, 10:00 AM EST"]
    )
    assert_accessible(page)
    page.get_by_label("The family asked to cancel").check()
    page.get_by_role("button", name="Cancel all 2 sessions").click()

    flash(page, "Cancelled. The family has been emailed.")
    heading(page, "Calendar: November 9 to November 15, 2026")
    expect(page.get_by_role("table").get_by_text("(cancelled)")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Previous week").first.click()
    heading(page, "Calendar: November 2 to November 8, 2026")
    expect(page.get_by_role("table").get_by_text("(cancelled)")).to_have_count(0)
    expect(
        page.get_by_role("link", name="Cancel this one… Jordan Rivera's family's place")
    ).to_be_visible()


def test_a_therapist_moves_all_future_weeks_across_the_fall_back_with_the_keyboard_alone(
    page: Page, live_server
):
    """ "Move all future" is the week picker too: Tab to the next week, Tab to a time, arrow
    keys, Tab to "Check every week", Enter; every week is listed at the same New York time
    (EDT, then EST) before anything moves; Tab to "Move all 4 weeks", Enter."""
    from sqlalchemy import select

    from familylink.extensions import db
    from familylink.models import Appointment, AppointmentFamily
    from familylink.services import booking
    from tests.e2e.helpers import tab_to

    live_server.clock.set(WEEK_BEFORE_FALL_BACK)
    with live_server.database():
        clinic = create_clinic()
        series = booking.book_series(
            actor=clinic.therapist,
            patient_id=clinic.patient.id,
            session_type_id=clinic.private.id,
            first_start=datetime(2026, 10, 27, 14, 0, tzinfo=UTC),  # 10:00 AM EDT
            weeks=4,
            attendee_ids=[clinic.family.id],
            now=WEEK_BEFORE_FALL_BACK,
        )
        seat_id = db.session.scalars(
            select(AppointmentFamily.id)
            .join(AppointmentFamily.appointment)
            .where(Appointment.weekly_series_id == series.id)
            .order_by(Appointment.starts_at)
        ).first()
        email = clinic.therapist.email

    sign_in(page, email)
    page.goto(f"/therapist/seats/{seat_id}/move-future")
    heading(page, "Move this and all future weeks")
    expect(page.get_by_role("heading", name="Week of Monday, October 19, 2026")).to_be_visible()
    assert_accessible(page)
    tab_to(page, "Next week →", limit=60)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Week of Monday, October 26, 2026")).to_be_visible()
    tab_to(page, "9:00 AM", limit=60)  # Monday's first free time
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    checked = page.get_by_role("radio", checked=True)
    expect(checked).to_have_accessible_name("11:00 AM")
    expect(checked).to_have_value("2026-10-26T15:00Z")
    tab_to(page, "Check every week", limit=60)
    page.keyboard.press("Enter")

    heading(page, "Move this and all future weeks")
    weeks = page.get_by_role("table", name="The new time of each week")
    for when in (
        "Monday, October 26, 2026, 11:00 AM EDT",
        "Monday, November 2, 2026, 11:00 AM EST",
        "Monday, November 9, 2026, 11:00 AM EST",
        "Monday, November 16, 2026, 11:00 AM EST",
    ):
        expect(weeks.get_by_role("cell", name=when).first).to_be_visible()
    monday = page.get_by_role("group", name="Monday, October 26")
    expect(monday.get_by_label("11:00 AM", exact=True)).to_be_checked()  # the choice kept
    assert_accessible(page)
    page.set_viewport_size(PHONE)  # the weeks and the picker fit a phone
    assert horizontal_overflow(page) <= 0
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)
    tab_to(page, "Move all 4 weeks", backwards=True, limit=80)
    page.keyboard.press("Enter")

    flash(page, "Moved every week. The family has been emailed calendar updates.")
    heading(page, "Calendar: October 26 to November 1, 2026")
    assert_accessible(page)
