"""Discharge, in the browser: the therapist ends Jordan's episode of care; Maria's consent,
"until the end of this episode, plus 3 days", keeps working until then and ends when the
consent sweep reaches it; Jordan's disclosure log shows the end (issue 16, point 4).

The server's clock is frozen (live_server.clock.set) and moved on, as the sweep's `--now` is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from familylink.models import Role
from tests import factories
from tests.e2e.helpers import assert_accessible, flash, heading, sign_in, sign_out
from tests.moments import NOON

# Discharged on 2026-11-18 (from the start of that day, New York time), plus 3 days.
ACCESS_ENDS = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)


def _jordan_with_a_consent_until_the_end_of_his_episode() -> int:
    lee = factories.create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
    jordan = factories.create_user(
        Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee
    )
    maria = factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
    factories.create_consent(jordan, maria, days_after_episode=3)
    return jordan.id


def test_a_discharge_ends_family_access_at_the_episode_end_plus_the_days_chosen(
    page: Page, live_server, new_context
):
    live_server.clock.set(NOON)
    with live_server.database():
        jordan_id = _jordan_with_a_consent_until_the_end_of_his_episode()

    sign_in(page, "lee@example.org")
    page.goto(f"/therapist/patients/{jordan_id}/family")
    heading(page, "Family contacts of Jordan Rivera")
    page.get_by_label("Date the episode ended").fill("2026-11-18")
    page.get_by_label("Reason").select_option("completed")
    page.get_by_role("button", name="End this episode of care").click()
    expect(page.get_by_text("Tick the box to confirm.").first).to_be_visible()  # asked first
    page.get_by_label(re.compile("^I confirm")).check()
    page.get_by_role("button", name="End this episode of care").click()
    flash(page, "The episode of care has ended.")
    expect(page.get_by_role("heading", name="Start a new episode")).to_be_visible()
    assert_accessible(page)
    sign_out(page)

    maria = new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    maria_page = maria.new_page()
    sign_in(maria_page, "maria@example.org")
    expect(maria_page.get_by_text("Jordan").first).to_be_visible()  # the 3 days still run

    live_server.clock.set(ACCESS_ENDS)
    result = live_server.app.test_cli_runner().invoke(
        args=["consent", "sweep", "--now", ACCESS_ENDS.isoformat()]
    )
    assert result.exit_code == 0, result.output
    assert "1 consents expired" in result.output

    maria_page.goto("/family/")  # her sign-in sessions ended with her access
    heading(maria_page, "Sign in")
    sign_in(maria_page, "maria@example.org")
    expect(maria_page.get_by_text("Jordan")).to_have_count(0)
    expect(maria_page.get_by_text(re.compile(r"^Your access ended on "))).to_be_visible()

    sign_in(page, "jordan@example.org")
    heading(page, "Hello, Jordan")
    expect(page.get_by_role("heading", name="Your episodes of care")).to_be_visible()
    expect(page.get_by_role("cell", name="November 18, 2026")).to_be_visible()
    assert_accessible(page)
    page.goto("/patient/shared")
    row = page.get_by_role("row").filter(has_text="Access ended (the consent reached its end)")
    expect(row).to_contain_text("Maria Rivera")
    assert_accessible(page)
