"""Progress updates, in the browser: Dr. Lee writes an update for Jordan's family, Jordan reads
the exact text and approves it, and Maria (whose consent includes general progress) reads it
on Jordan's page, on a phone, with the redisclosure notice (issue 20 point 1)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from familylink.models import Role
from tests import factories
from tests.e2e.helpers import (
    assert_accessible,
    flash,
    heading,
    horizontal_overflow,
    nav,
    sign_in,
    sign_out,
)
from tests.moments import NOON

PHONE = {"width": 320, "height": 640}
WORKED_ON = "What we worked on: taking turns to talk about the week."
HELP = "How the family can help this week: one short walk together."
NEXT = "What is next: planning a calm weekend."


def _jordan_sharing_progress_with_maria() -> int:
    lee = factories.create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
    jordan = factories.create_user(
        Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee
    )
    maria = factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
    factories.create_consent(jordan, maria, scopes=("scheduling", "progress"))
    return jordan.id


def test_a_therapist_drafts_the_patient_approves_and_the_family_member_reads(
    page: Page, live_server, new_context
):
    live_server.clock.set(NOON)
    with live_server.database():
        jordan_id = _jordan_sharing_progress_with_maria()

    sign_in(page, "lee@example.org")
    page.goto(f"/therapist/patients/{jordan_id}/family")
    page.get_by_role("link", name="Progress updates for the family").click()
    heading(page, "Progress updates for the family of Jordan Rivera")
    text = page.get_by_label("The update")
    expect(text).to_have_value(
        "What we worked on:\n\nHow the family can help this week:\n\nWhat is next:\n"
    )
    text.fill(f"{WORKED_ON}\n\n{HELP}\n\n{NEXT} He stays sober.")
    page.get_by_role("button", name="Send to Jordan to read").click()
    expect(page.get_by_text("“sober”").first).to_be_visible()  # warned, not saved
    assert_accessible(page)
    page.get_by_label("The update").fill(f"{WORKED_ON}\n\n{HELP}\n\n{NEXT}")
    page.get_by_role("button", name="Send to Jordan to read").click()
    flash(page, "Sent to Jordan to read.")
    expect(page.get_by_text("Waiting for the patient to read it")).to_be_visible()
    sign_out(page)

    maria = new_context(base_url=live_server.url, viewport=PHONE)
    maria_page = maria.new_page()
    sign_in(maria_page, "maria@example.org")
    maria_page.goto(f"/family/patients/{jordan_id}")
    expect(maria_page.get_by_text("one short walk together")).to_have_count(0)  # a draft

    sign_in(page, "jordan@example.org")
    nav(page, "Updates")
    heading(page, "Updates for your family")
    expect(page.get_by_text("one short walk together")).to_be_visible()
    expect(page.get_by_text("Maria Rivera")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Approve and share").click()
    flash(page, "Approved.")
    page.goto("/patient/shared")
    row = page.get_by_role("row").filter(has_text="A progress update you approved")
    expect(row).to_contain_text("Maria Rivera")

    maria_page.goto(f"/family/patients/{jordan_id}")
    expect(maria_page.get_by_role("heading", name="Updates from the care team")).to_be_visible()
    expect(maria_page.get_by_text("one short walk together")).to_be_visible()
    expect(maria_page.get_by_text("disclosed to you from records protected")).to_be_visible()
    assert horizontal_overflow(maria_page) == 0
    assert_accessible(maria_page)
