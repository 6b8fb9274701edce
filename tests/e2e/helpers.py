"""What the browser journeys share: signing in and out, and the checks every page must pass.

Journeys find things the way a person does, by visible labels and roles
(`page.get_by_label("Email address")`, `page.get_by_role("button", name="Sign in")`),
never by CSS ids, so a renamed label is a failing test and a missing one cannot hide.
"""

from __future__ import annotations

import re

from axe_playwright_python.base import AxeResults
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
_axe = Axe()
_AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}


def sign_in(page: Page, email: str, password: str = PASSWORD, *, server=None) -> None:
    """Sign in from the sign-in page and wait for the page it leads to.

    Staff are asked for an authenticator code: with `server` (the live server) the code is
    worked out with pyotp from the account's secret at the server's clock and typed in.
    """
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if server is not None:
        page.wait_for_load_state()
        if "/login/code" in page.url:
            page.get_by_label("Code").fill(authenticator_code(server, email))
            page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def authenticator_code(server, email: str) -> str:
    """The code `email`'s authenticator shows at the live server's now (replay guard reset)."""
    import pyotp
    from sqlalchemy import select

    from familylink.extensions import db
    from familylink.models import User
    from familylink.web import request_now

    with server.app.test_request_context():
        user = db.session.scalar(select(User).where(User.email == email.lower()))
        user.totp_last_step = None
        db.session.commit()
        return pyotp.TOTP(user.totp_secret).at(request_now())


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()


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


def assert_focus_visible(page: Page) -> dict:
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
    seen = []
    for _ in range(limit):
        page.keyboard.press(key)
        assert_focus_visible(page)
        seen.append(focused_name(page))
        if seen[-1] == name:
            return
    raise AssertionError(f"{key} never reached {name!r}; focus went through {seen}")
