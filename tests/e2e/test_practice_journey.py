"""A family member's practice tools, in the browser: the safety plan filled in, printed as a
one-page card and shown on the crisis page; a message rewritten and shared with the therapist
of the patient it is about, who reads it there. Every tool page is scanned with axe.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from familylink.models import Role
from tests import factories
from tests.e2e.helpers import (
    assert_accessible,
    flash,
    follow,
    heading,
    horizontal_overflow,
    nav,
    sign_in,
)
from tests.moments import NOON

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
SCRATCH = Path(__file__).resolve().parents[2] / "tmp"
# The longest a plan may be (each answer at its limit) must still print on one page.
LONGEST = 400


def _world(live_server) -> None:
    live_server.clock.set(NOON)
    with live_server.database():
        therapist = factories.create_user(
            Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org"
        )
        patient = factories.create_user(Role.PATIENT, name="Jordan Rivera", therapist=therapist)
        maria = factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        factories.create_consent(patient, maria, now=NOON)
    factories.set_after_hours_phone(live_server.app, "(555) 010-2000")


def _pdf_pages(page: Page, paper: str) -> int:
    pdf = page.pdf(format=paper, print_background=False)
    return pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")


def _print_check(page: Page, name: str) -> None:
    page.emulate_media(media="print")
    SCRATCH.mkdir(exist_ok=True)
    page.screenshot(path=str(SCRATCH / f"safety-card-{name}.png"), full_page=True)
    for paper in ("A4", "Letter"):
        assert _pdf_pages(page, paper) == 1, f"the {name} card takes more than one {paper} page"
    page.emulate_media(media="screen")


def test_a_safety_plan_is_printed_on_one_page_and_a_rewrite_reaches_the_therapist(
    page: Page, live_server, new_context
):
    _world(live_server)
    page.set_viewport_size(PHONE)
    sign_in(page, "maria@example.org")
    nav(page, "Practice")
    heading(page, "Practice tools")
    assert_accessible(page)

    # The safety plan: filled in on a phone, then the card, printed.
    page.get_by_role("link", name="Family safety plan").click()
    heading(page, "Family safety plan")
    assert_accessible(page)
    page.get_by_label("Warning signs that things are getting unsafe").fill("Shouting, no sleep")
    page.get_by_label("People I can call, and when").fill("Aunt Rosa 555-0101, any time")
    page.get_by_label("Where the naloxone is").fill("Kitchen drawer by the sink")
    page.get_by_label("A safe place I can go").fill("Rosa's house on Elm Street")
    page.get_by_role("button", name="Save").click()
    flash(page, "Saved.")
    assert horizontal_overflow(page) == 0
    page.get_by_role("link", name="Show the card to print").click()
    heading(page, "Family safety plan")
    card = page.get_by_role("article", name="Family safety plan")
    expect(card.get_by_text("Kitchen drawer by the sink")).to_be_visible()
    expect(card.get_by_role("link", name="(555) 010-2000")).to_be_visible()
    assert_accessible(page)
    _print_check(page, "short")

    # At every answer's limit it still fits one page.
    page.get_by_role("link", name="Change the plan").click()
    for label in (
        "Warning signs that things are getting unsafe",
        "People I can call, and when",
        "Where the naloxone is",
        "A safe place I can go",
    ):
        page.get_by_label(label).fill(("Long words to fill the box " * 20)[:LONGEST])
    page.get_by_role("button", name="Save").click()
    flash(page, "Saved.")
    page.get_by_role("link", name="Show the card to print").click()
    _print_check(page, "longest")

    # The crisis page shows it to her.
    page.goto("/help/crisis")
    expect(page.get_by_role("heading", name="Your family safety plan")).to_be_visible()
    assert_accessible(page)

    # A message, rewritten, then shared with Jordan's therapist.
    page.set_viewport_size(DESKTOP)
    nav(page, "Practice")
    follow(page, "Say it so it can be heard")
    assert_accessible(page)
    page.get_by_label("A short name, for you").fill("Dinner")
    page.get_by_label("Your message").fill("You never come to dinner anymore.")
    page.get_by_role("button", name="Save").click()
    flash(page, "Saved.")
    page.get_by_label("Your message").fill("I miss you at dinner. Could you join us at six?")
    page.get_by_label("Brief: one or two sentences, one request.").check()
    page.get_by_label("Names your feeling, calmly").check()
    page.get_by_label("Share with").select_option(label="Jordan Rivera's therapist")
    page.get_by_role("button", name="Save").click()
    flash(page, "Saved.")
    expect(page.get_by_role("heading", name="Earlier versions")).to_be_visible()
    assert_accessible(page)

    lee = new_context(base_url=live_server.url, viewport=DESKTOP).new_page()
    sign_in(lee, "lee@example.org")
    nav(lee, "Family reading")
    lee.get_by_role("link", name="Jordan Rivera").click()
    shared = lee.get_by_role("region", name="Practice tools shared with you")
    expect(shared).to_contain_text("I miss you at dinner. Could you join us at six?")
    expect(shared).not_to_contain_text("Kitchen drawer by the sink")
    assert_accessible(lee)
