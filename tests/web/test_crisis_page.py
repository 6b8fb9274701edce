"""The crisis page and footer: every line, with tel:, sms: and chat links, and the program's
after-hours number only when an admin has set it."""

import pytest

from tests.factories import set_after_hours_phone

LINES = [
    'href="tel:911"',
    'href="tel:988"',
    'href="sms:988"',
    'href="https://988lifeline.org/chat"',
    "press 2, or text AYUDA to 988",
    "press 1, or text",
    'href="sms:838255"',
    'href="tel:+18007997233"',
    'href="sms:88788"',
    "text START to",
    'href="tel:+18006624357"',
]


@pytest.mark.parametrize("line", LINES)
def test_the_crisis_page_shows_each_line(client, line):
    page = client.get("/help/crisis").get_data(as_text=True)
    assert line in page


def test_the_after_hours_number_is_on_the_crisis_page_and_footer_when_set(app, client):
    set_after_hours_phone(app, "(555) 201-3344")
    page = client.get("/help/crisis").get_data(as_text=True)
    assert 'id="crisis-after-hours"' in page
    assert 'href="tel:+15552013344"' in page and 'href="sms:+15552013344"' in page
    assert 'id="footer-after-hours"' in client.get("/login").get_data(as_text=True)


def test_the_after_hours_number_is_absent_when_unset(client):
    page = client.get("/help/crisis").get_data(as_text=True)
    assert "after-hours" not in page and "after hours" not in page.lower()


def test_the_footer_offers_call_text_and_chat_on_every_page(client):
    page = client.get("/login").get_data(as_text=True)
    footer = page[page.index('class="site-footer"') :]
    for link in ('href="tel:988"', 'href="sms:988"', 'href="https://988lifeline.org/chat"'):
        assert link in footer


def test_the_crisis_numbers_are_rendered_once_per_language_and_setting(app, client):
    """The block is the same on every module page of a language: rendered again only for
    another language or changed program settings, and still said in each language."""
    spanish = {"Accept-Language": "es"}
    client.get("/help/crisis")
    client.get("/help/crisis", headers=spanish)
    template = app.jinja_env.get_template("_crisis.html")
    rendered = []
    original = template.root_render_func

    def counted(context):
        rendered.append(1)
        yield from original(context)

    template.root_render_func = counted
    try:
        english_page = client.get("/help/crisis").get_data(as_text=True)
        spanish_page = client.get("/help/crisis", headers=spanish).get_data(as_text=True)
        assert rendered == []
        # A number no other test sets: the rendered blocks are kept for the process.
        set_after_hours_phone(app, "(555) 867-5309")
        changed = client.get("/help/crisis").get_data(as_text=True)
    finally:
        template.root_render_func = original
    assert "press 2, or text AYUDA to 988" in english_page
    assert "AYUDA" in spanish_page and "press 2, or text AYUDA" not in spanish_page
    assert rendered == [1] and 'href="tel:+15558675309"' in changed
