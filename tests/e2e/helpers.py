"""What the browser journeys share: signing in and out, and the checks every page must pass.

Journeys find things the way a person does, by visible labels and roles
(`page.get_by_label("Email address")`, `page.get_by_role("button", name="Sign in")`),
never by CSS ids, so a renamed label is a failing test and a missing one cannot hide.
"""

from __future__ import annotations

import re

import pyotp
from axe_playwright_python.base import AxeResults
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

from tests.e2e.browser import LiveServer
from tests.factories import PASSWORD

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
_axe = Axe()
_AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in from the sign-in page and wait for the page it leads to.

    Staff (therapists, admins) are asked for their authenticator code next; it is computed
    from their secret with pyotp at the server's clock, as their phone would show it.
    """
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    signed_in = page.get_by_role("button", name="Sign out")
    code_step = page.get_by_role("heading", name="Enter your code")
    expect(signed_in.or_(code_step)).to_be_visible()
    if code_step.is_visible():
        page.get_by_label("Code").fill(LiveServer.serving(page.url).authenticator_code(email))
        page.get_by_role("button", name="Sign in").click()
    expect(signed_in).to_be_visible()


def enrol_two_step(page: Page) -> None:
    """On "Set up two-step sign-in": type the shown key into an authenticator (pyotp) and
    confirm with its code, then continue past the recovery codes."""
    heading(page, "Set up two-step sign-in")
    secret = page.locator("code").first.inner_text().strip()
    now = LiveServer.serving(page.url).clock()
    page.get_by_label("Code").fill(pyotp.TOTP(secret).at(now))
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    heading(page, "Your recovery codes")
    page.get_by_role("link", name="I have saved them, continue").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()


def follow(page: Page, name: str | re.Pattern, within: Locator | None = None) -> None:
    """Click a link and wait for the page it opens: a check that reads the page at once
    (axe, a width) would otherwise read the old one, or one half torn down."""
    with page.expect_navigation():
        (within or page).get_by_role("link", name=name).click()


def nav(page: Page, name: str) -> None:
    """Follow a link of the main navigation (the page body may have a link of the same name)."""
    follow(page, name, within=page.get_by_role("navigation", name="Main"))


def flash(page: Page, text: str) -> None:
    """The page shows this status message."""
    expect(page.get_by_role("status")).to_contain_text(text)


def assert_accessible(page: Page) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe.axe_script)  # once per page load; it is large
    results = AxeResults(page.evaluate("options => axe.run(document, options)", _AXE_OPTIONS))
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0 when nothing scrolls sideways)."""
    return page.evaluate(
        "() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )


def focus_ring(page: Page) -> dict:
    """The focused element, its computed outline, and whether it is on screen."""
    return page.evaluate(
        """() => {
          const el = document.activeElement;
          const style = getComputedStyle(el);
          const box = el.getBoundingClientRect();
          return {
            element: el.outerHTML.slice(0, 120),
            tag: el.tagName.toLowerCase(),
            outlineStyle: style.outlineStyle,
            outlineWidth: parseFloat(style.outlineWidth),
            outlineColor: style.outlineColor,
            onScreen: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
                      && box.left < window.innerWidth,
          };
        }"""
    )


def assert_focus_visible(page: Page, *, settle_ms: int = 3000) -> dict:
    """The focused element shows a focus outline of 2 px or more, on screen. A page still
    settling (its stylesheet applied a moment after the key press, on a busy machine) gets
    `settle_ms` to show it; a page whose style hides the outline fails after that."""
    ring = focus_ring(page)
    for _ in range(settle_ms // 50):
        if ring["outlineStyle"] != "none" and ring["outlineWidth"] >= 2:
            break
        page.wait_for_timeout(50)
        ring = focus_ring(page)
    assert ring["tag"] != "body", "focus was lost (it is on the page body)"
    assert ring["outlineStyle"] != "none" and ring["outlineWidth"] >= 2, (
        f"no visible focus outline on {ring['element']}: {ring}"
    )
    assert ring["onScreen"], f"the focused element is off screen: {ring['element']}"
    return ring


def heading(page: Page, name: str | re.Pattern) -> None:
    """The page's main heading reads `name`."""
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def focused_name(page: Page) -> str:
    """The accessible name of the focused element, as a screen reader would announce it
    (an input's label, a button's or link's text)."""
    return page.evaluate(
        """() => {
          const el = document.activeElement;
          const label = el.labels && el.labels.length ? el.labels[0].textContent : null;
          return (label || el.getAttribute('aria-label') || el.textContent || '').trim();
        }"""
    )


def tab_to(page: Page, name: str, *, backwards: bool = False, limit: int = 25) -> None:
    """Press Tab (Shift+Tab backwards) until `name` has focus; every stop must show its focus."""
    key = "Shift+Tab" if backwards else "Tab"
    # A page still loading (a busy machine) may show the browser's own thin outline, not
    # the page's focus style: seen once in CI, on a page's first Tab stop.
    page.wait_for_load_state("load")
    seen = []
    for _ in range(limit):
        page.keyboard.press(key)
        assert_focus_visible(page)
        seen.append(focused_name(page))
        if seen[-1] == name:
            return
    raise AssertionError(f"{key} never reached {name!r}; focus went through {seen}")
