"""The program director's journey: invited by the admin, sets a password and two-step
sign-in, reads the program overview (checked with axe) and downloads its CSV."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from familylink.models import Role
from tests import factories
from tests.e2e.helpers import (
    assert_accessible,
    enrol_two_step,
    flash,
    heading,
    horizontal_overflow,
    sign_in,
    sign_out,
)
from tests.overview_world import Cohort, build

NEW_PASSWORD = "lantern harbor maple seven"


def test_the_admin_invites_a_director_who_reads_the_overview_and_downloads_it(
    page: Page, live_server, inbox
):
    with live_server.database():
        factories.create_user(Role.ADMIN, name="Alex Admin", email="admin@example.org")
        build({(0, 0): Cohort(enrolled=12, with_family=12, attended=4)})

    sign_in(page, "admin@example.org")
    page.get_by_label("Name of the program director").fill("Dana Director")
    page.get_by_label("Program director's email").fill("dana@example.org")
    page.get_by_role("button", name="Invite the program director").click()
    flash(page, "Invitation sent to dana@example.org")
    expect(page.get_by_text("Dana Director")).to_contain_text("invitation not yet accepted")
    assert_accessible(page)
    sign_out(page)

    page.goto(inbox.link("dana@example.org"))
    heading(page, "Set up your account")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save and continue").click()
    flash(page, "Your password is set")
    sign_in(page, "dana@example.org", NEW_PASSWORD)
    heading(page, "Set up two-step sign-in")  # like staff, before anything else
    enrol_two_step(page)

    heading(page, "Program overview")
    page.get_by_label("First month (YYYY-MM)").fill("2026-03")
    page.get_by_label("Last month (YYYY-MM)").fill("2026-01")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("The last month must not be before the first month.")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("First month (YYYY-MM)").fill("2026-01")
    page.get_by_label("Last month (YYYY-MM)").fill("2026-03")
    page.get_by_role("button", name="Show").click()
    enrolment = page.get_by_role("table", name="Enrolment")
    expect(enrolment.get_by_role("row", name="2026-01")).to_contain_text("12")
    sessions = page.get_by_role("table", name="Family sessions")
    expect(sessions.get_by_role("row", name="2026-01")).to_contain_text("fewer than 11")
    expect(page.get_by_role("img", name="Enrolment per month: bar chart.")).to_be_visible()
    expect(page.get_by_text("Per therapist")).to_have_count(0)
    assert_accessible(page)
    page.set_viewport_size({"width": 375, "height": 800})
    assert horizontal_overflow(page) == 0

    with page.expect_download() as download:
        page.get_by_role("link", name="Download these figures as CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("Row,Table,Measure,Value")
    assert "2026-01,Enrolment,Patients enrolled,12" in text
    # No one's name: the patients' and family members' names carry these marks.
    assert "Dana" not in text and "qvw" not in text and "kjh" not in text
