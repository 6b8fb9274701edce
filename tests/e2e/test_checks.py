"""The page checks themselves: each must catch what it looks for, or the scans prove nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.e2e.helpers import assert_accessible, assert_focus_visible, horizontal_overflow

BROKEN = """<!doctype html><html lang="en"><head><title>Broken</title>
<link rel="stylesheet" href="/static/style.css"></head><body><main>
<h1>Broken</h1>
<label>Name</label><input id="nameless">
<p style="color:#bbb;background:#fff">Pale grey text nobody can read</p>
<div style="width:900px">Too wide for a phone</div>
<a href="#" id="plain" style="outline:none">A link with its focus hidden</a>
</main></body></html>"""


@pytest.fixture
def broken_page(page: Page) -> Page:
    # Served from the app's origin (so its style sheet applies) without its CSP, which would
    # rightly block the inline styles this deliberately bad page needs.
    page.route("**/broken", lambda route: route.fulfill(content_type="text/html", body=BROKEN))
    page.goto("/broken")
    return page


def test_axe_reports_an_unlabelled_field_and_low_contrast(broken_page: Page):
    with pytest.raises(AssertionError) as failure:
        assert_accessible(broken_page)
    assert "label" in str(failure.value) and "color-contrast" in str(failure.value)


def test_sideways_scrolling_is_measured(broken_page: Page):
    broken_page.set_viewport_size({"width": 320, "height": 640})
    assert horizontal_overflow(broken_page) > 0


def test_a_hidden_focus_ring_is_caught(broken_page: Page):
    broken_page.get_by_text("A link with its focus hidden").focus()
    with pytest.raises(AssertionError, match="no visible focus outline"):
        assert_focus_visible(broken_page)
