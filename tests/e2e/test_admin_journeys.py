"""The admin's journeys: finding an account and disabling it (the person is signed out at
once), resetting two-step sign-in, and ticking reminder times. Each step is checked with axe."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select

from familylink.models import Program, Role
from tests import factories
from tests.e2e.helpers import assert_accessible, flash, heading, horizontal_overflow, sign_in

PHONE = {"width": 320, "height": 640}


def test_the_admin_finds_an_account_and_disables_it_and_the_person_is_signed_out(
    page: Page, live_server, new_context
):
    with live_server.database():
        factories.create_user(Role.ADMIN, name="Alex Admin", email="admin@example.org")
        factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        factories.create_user(Role.FAMILY, name="Sam Other", email="sam@example.org")
        factories.create_user(Role.THERAPIST, name="Grace Lee", email="lee@example.org")

    maria = new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    maria_page = maria.new_page()
    sign_in(maria_page, "maria@example.org")

    sign_in(page, "admin@example.org")
    page.get_by_role("link", name="Accounts").click()
    heading(page, "Accounts")
    page.get_by_label("Name or email address contains").fill("RIVERA")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("1 account found.")).to_be_visible()
    expect(page.get_by_role("cell", name="Sam Other")).to_have_count(0)
    assert_accessible(page)
    # On a phone the table scrolls inside its box, and says so.
    page.set_viewport_size(PHONE)
    expect(page.get_by_text("scroll it sideways")).to_be_visible()
    assert horizontal_overflow(page) <= 0
    assert_accessible(page)
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("button", name="Disable Maria Rivera").click()
    flash(page, "Maria Rivera is disabled and signed out everywhere.")
    expect(page.get_by_role("button", name="Enable Maria Rivera")).to_be_visible()
    assert_accessible(page)

    # Maria's next click finds her signed out, and she cannot sign in again.
    maria_page.reload()
    expect(maria_page.get_by_role("button", name="Sign out")).to_have_count(0)
    maria.close()

    # Two-step sign-in of a therapist: a page asks first.
    page.get_by_label("Name or email address contains").fill("lee@")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Reset two-step sign-in of Grace Lee").click()
    heading(page, "Reset two-step sign-in of Grace Lee")
    expect(page.get_by_text("set it up again at their next sign-in")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Reset two-step sign-in").click()
    flash(page, "Two-step sign-in of Grace Lee is cleared")

    # Trying to disable oneself is refused with a message.
    page.get_by_label("Name or email address contains").fill("admin@")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Disable Alex Admin").click()
    expect(page.get_by_text("You can't disable your own account.")).to_be_visible()
    assert_accessible(page)


def test_the_admin_ticks_reminder_times(page: Page, live_server):
    with live_server.database():
        factories.create_user(Role.ADMIN, name="Alex Admin", email="admin@example.org")
    sign_in(page, "admin@example.org")
    page.goto("/admin/settings")
    times = page.get_by_role("group", name="Reminder emails before a session")
    expect(times.get_by_role("checkbox", name="2 days before", exact=True)).to_be_checked()
    expect(times.get_by_role("checkbox", name="2 hours before", exact=True)).to_be_checked()
    times.get_by_role("checkbox", name="2 days before", exact=True).uncheck()
    times.get_by_role("checkbox", name="1 week before", exact=True).check()
    times.get_by_role("checkbox", name="1 day before", exact=True).check()
    page.get_by_role("button", name="Save settings").click()
    flash(page, "Program settings saved.")
    assert_accessible(page)
    expect(times.get_by_role("checkbox", name="1 week before", exact=True)).to_be_checked()
    expect(times.get_by_role("checkbox", name="2 days before", exact=True)).not_to_be_checked()
    with live_server.database() as session:
        program = session.scalars(select(Program)).one()
        assert program.reminder_offsets_hours == [168, 24, 2]
