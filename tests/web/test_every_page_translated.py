"""Issue 23's "done": every page anyone of the demo can reach, and the anonymous pages, shows
no English that skipped gettext. The demo world is loaded, each demo person signs in and every
same-site GET link reachable from their home is followed (breadth first, each path once) under
the pseudo-locale; one run lists every page's leftover words."""

import re
from collections import deque
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from familylink import demo, i18n
from familylink.extensions import db
from familylink.models import (
    ConsentRecord,
    LearningModule,
    ModuleTranslation,
    Program,
    ProgressUpdateVersion,
    SessionType,
    TokenPurpose,
    User,
)
from familylink.services import learning, tokens
from familylink.services.timefmt import timezone_choices
from tests.conftest import _VisibleText
from tests.moments import NOON
from tests.web.test_spanish_es_learn import _body_words

PASSWORD = "demo password long enough"
HOST = "http://familylink.test"
# Not pages: signing out, files to download, the health probe and the static files.
SKIPPED_PATHS = ("/logout", "/static/", "/healthz")
SKIPPED_ENDINGS = (".ics", ".csv", ".svg")
ANONYMOUS = ("/", "/login", "/reset", "/help/crisis", "/register")


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def demo_world(app):
    """The demo at NOON; returns the demo people's addresses."""
    with app.app_context():
        people = demo.seed(password=PASSWORD, now=NOON, progress=lambda _: None)
        db.session.commit()
    return [email for _role, _name, email in people]


# The columns people typed or chose as data (not codes such as a session's mode, which the
# pages must show in words).
DATA_COLUMNS = {
    Program: ("name", "sender_name", "timezone", "after_hours_phone", "video_room_template"),
    SessionType: ("name", "location"),
    ConsentRecord: (
        "patient_name",
        "program_name",
        "recipient_name",
        "recipient_relationship",
        "recipient_email",
        "signature_name",
    ),
    ProgressUpdateVersion: ("text", "change_note"),
}
# A consent's document is shown in the language it was signed in (judged on its own in
# test_spanish_es_consent), inside an element that says which.
SIGNED_DOCUMENT = re.compile(r'<div lang="[a-z]{2}">.*?</div>', re.S)


def data_strings(app) -> list[str]:
    """What the demo put in the database and the pages show as data, not chrome: people,
    the program, session types and their places, what people typed on consents and progress
    updates, the time zones' names and every module text in both languages."""
    with app.app_context():
        found = list(i18n.LANGUAGES.values())  # the switch names each language in its own words
        for user in db.session.scalars(select(User)):
            found += [user.name, user.first_name, user.email]
        found += [label for _zone, label in timezone_choices()]  # place names, as data
        for model, keys in DATA_COLUMNS.items():
            for row in db.session.scalars(select(model)):
                for key in keys:
                    found += (getattr(row, key) or "").splitlines()
        texts = list(db.session.scalars(select(LearningModule)))
        texts += list(db.session.scalars(select(ModuleTranslation)))
        for text in texts:
            found += [text.title, text.summary, text.topic, text.reflection, text.exercise]
            found += text.key_points + _body_words(text.body_html)
            for words, address in learning.source_links(text.sources):
                found += [words, address]
        return [value for value in found if isinstance(value, str) and value.strip()]


class _Links(_VisibleText):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        super().handle_starttag(tag, attrs)
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)


def _same_site_paths(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    paths = []
    for href in parser.links:
        if href.startswith(HOST):
            href = href[len(HOST) :]
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue
        if parts.path.startswith(SKIPPED_PATHS) or parts.path.endswith(SKIPPED_ENDINGS):
            continue
        paths.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return paths


def crawl(client, start: str, check, failures: dict, who: str) -> int:
    """Visit every same-site page reachable from `start`, each path once; `check` each."""
    seen, queue, visited = {urlsplit(start).path}, deque([start]), 0
    while queue:
        url = queue.popleft()
        response = client.get(url, follow_redirects=True)
        visited += 1
        page = response.get_data(as_text=True)
        if response.status_code >= 500:
            failures[f"{who} {url}"] = [f"status {response.status_code}"]
            continue
        if response.mimetype != "text/html":
            continue
        words = check(page)
        if words:
            failures[f"{who} {url}"] = sorted(set(words))
        for path in _same_site_paths(page):
            if urlsplit(path).path not in seen:
                seen.add(urlsplit(path).path)
                queue.append(path)
    return visited


def _invitation_links(app) -> list[str]:
    """A new account's invitation and a family member's consent invitation."""
    with app.app_context():
        patient = db.session.scalar(select(User).where(User.email == "jordan@example.org"))
        invite = tokens.issue_token(
            TokenPurpose.INVITE, email="new@example.org", user=None, now=NOON
        )
        family = tokens.issue_token(
            TokenPurpose.FAMILY_INVITE,
            email="newfamily@example.org",
            user=patient,
            now=NOON,
        )
        db.session.commit()
    return [f"/invitation/{invite}", f"/family/join/{family}"]


def test_every_page_passes_through_gettext(app, client, auth, demo_world, pseudo_locale):
    data = data_strings(app)
    failures: dict[str, list[str]] = {}

    def check(page):
        return pseudo_locale(SIGNED_DOCUMENT.sub("", page), *data)

    visited = 0
    for url in (*ANONYMOUS, *_invitation_links(app)):
        visited += crawl(client, url, check, failures, "anonymous")
    for email in demo_world:
        auth.login(email, PASSWORD)
        visited += crawl(client, "/", check, failures, email)
        auth.logout()
    report = "\n".join(f"{where}: {' '.join(words)}" for where, words in failures.items())
    assert not failures, f"{len(failures)} of {visited} pages show untranslated words:\n{report}"
