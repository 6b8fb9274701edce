"""Program attendance, in the browser: Dr. Lee records two program days on a phone from the
menu; Maria (with the attendance scope) reads the weekly summary on Jordan's page; Luis
(scheduling only) sees nothing of it (issue 20, point 2)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from familylink.models import Role
from tests import factories
from tests.e2e.helpers import assert_accessible, flash, heading, horizontal_overflow, sign_in
from tests.moments import NOON

PHONE = {"width": 320, "height": 640}
DESKTOP = {"width": 1280, "height": 800}


def _jordan_and_his_parents() -> int:
    lee = factories.create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
    jordan = factories.create_user(Role.PATIENT, name="Jordan Rivera", therapist=lee)
    factories.create_user(Role.PATIENT, name="Sam Okafor", therapist=lee)
    maria = factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
    luis = factories.create_user(Role.FAMILY, name="Luis Rivera", email="luis@example.org")
    factories.create_consent(jordan, maria, scopes=("scheduling", "attendance"))
    factories.create_consent(jordan, luis, scopes=("scheduling",))
    return jordan.id


def _record(page: Page, day: str, status: str) -> None:
    page.get_by_label("Program day").fill(day)
    page.get_by_role("button", name="Show this day").click()
    page.get_by_role("group", name="Jordan Rivera").get_by_label(status).check()
    page.get_by_role("button", name="Save attendance").click()
    flash(page, "Saved 1 change.")


def test_a_therapist_records_program_days_on_a_phone_and_the_family_reads_the_week(
    page: Page, live_server, new_context
):
    live_server.clock.set(NOON)
    with live_server.database():
        jordan_id = _jordan_and_his_parents()

    lee = new_context(base_url=live_server.url, viewport=PHONE).new_page()
    sign_in(lee, "lee@example.org")
    lee.get_by_role("link", name="Record today's program attendance").click()
    heading(lee, "Program attendance")
    # Nothing is chosen for anyone until the therapist chooses it.
    expect(lee.get_by_role("radio", checked=True)).to_have_count(0)
    assert horizontal_overflow(lee) <= 0
    assert_accessible(lee)
    _record(lee, "2026-11-16", "Attended")
    _record(lee, "2026-11-17", "Absent")
    _record(lee, "2026-11-17", "Excused")  # a correction
    expect(lee.get_by_role("group", name="Jordan Rivera").get_by_label("Excused")).to_be_checked()
    expect(
        lee.get_by_role("group", name="Sam Okafor").get_by_role("radio", checked=True)
    ).to_have_count(0)
    assert_accessible(lee)

    sign_in(page, "maria@example.org")
    page.goto(f"/family/patients/{jordan_id}")
    expect(page.get_by_role("heading", name="Program attendance")).to_be_visible()
    expect(
        page.get_by_text("Jordan came to 1 of 2 program days. 1 absence was excused.")
    ).to_be_visible()
    assert_accessible(page)

    luis = new_context(base_url=live_server.url, viewport=DESKTOP).new_page()
    sign_in(luis, "luis@example.org")
    luis.goto(f"/family/patients/{jordan_id}")
    heading(luis, "Jordan")
    expect(luis.get_by_text("program day")).to_have_count(0)
    expect(luis.get_by_role("heading", name="Program attendance")).to_have_count(0)
