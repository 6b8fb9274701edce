"""Issue 23's "done": every page anyone of the demo can reach, and the anonymous pages, shows
no English that skipped gettext. The demo world is loaded, each demo person signs in and every
same-site GET link reachable from their home is followed (breadth first, each path once) under
the pseudo-locale; one run lists every page's leftover words."""

import re
from collections import deque
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select

from familylink import demo, i18n
from familylink.extensions import db
from familylink.models import (
    AppointmentFamily,
    AuditEvent,
    ConsentRecord,
    Program,
    ProgressUpdateVersion,
    SessionType,
    TokenPurpose,
    User,
)
from familylink.services import tokens
from familylink.services.timefmt import timezone_choices
from tests.conftest import _VisibleText
from tests.moments import NOON
from tests.web.test_consent_routes import FORM, settings_override  # noqa: F401  the app at NOON
from tests.web.test_consent_routes import _invitation_link as family_invitation_link
from tests.web.test_spanish_es_learn import module_texts

PASSWORD = "demo password long enough"
HOST = "http://familylink.test"
# Not pages: signing out, files to download, the health probe and the static files.
SKIPPED_PATHS = ("/logout", "/static/", "/healthz")
SKIPPED_ENDINGS = (".ics", ".csv", ".svg")
ANONYMOUS = ("/", "/login", "/reset", "/help/crisis", "/register")

# Whether a page's words went through gettext does not depend on the database, and the crawl
# of ~600 pages is one of the longest tests: the PostgreSQL run leaves it out. The same pages
# are served on PostgreSQL by their own route tests.
pytestmark = pytest.mark.sqlite_only


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
        "purpose",
        "expiry_description",
    ),
    ProgressUpdateVersion: ("text", "change_note"),
    AppointmentFamily: ("note",),
}
# A consent's document is shown in the language it was signed in (judged on its own in
# test_spanish_es_consent), inside an element that says which.
RECOVERY_CODES = re.compile(r"<code>[0-9a-f]{5}(?:-[0-9a-f]{5})+</code>")
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
        found += module_texts()
        return [value for value in found if isinstance(value, str) and value.strip()]


def _audit_identifiers(app) -> list[str]:
    """The audit log's rows show their own identifiers (actions, object types, roles,
    outcomes, request ids), as its filters and its CSV name them: data, not sentences."""
    columns = (AuditEvent.action, AuditEvent.object_type, AuditEvent.actor_role)
    with app.app_context():
        found = [str(v) for c in columns for v in db.session.scalars(select(c).distinct()) if v]
        found += db.session.scalars(select(AuditEvent.outcome).distinct())
        found += [r[:8] for r in db.session.scalars(select(AuditEvent.request_id)) if r]
    return found


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


def _page_key(url: str) -> tuple:
    """A page is its path and the names of its query's fields (a week picker is one page,
    whatever the week)."""
    parts = urlsplit(url)
    return parts.path, tuple(sorted(parse_qs(parts.query)))


def crawl(client, start: str, check, failures: dict, who: str) -> int:
    """Visit every same-site page reachable from `start`, each page once; `check` each.
    A link that answers an error is a failure too."""
    seen, queue, visited = {_page_key(start)}, deque([start]), 0
    while queue:
        url = queue.popleft()
        response = client.get(url, follow_redirects=True)
        visited += 1
        page = response.get_data(as_text=True)
        if response.status_code >= 400:
            failures[f"{who} {url}"] = [f"status {response.status_code}"]
        if response.mimetype != "text/html":
            continue
        words = check(page, url)
        if words:
            failures[f"{who} {url}"] = sorted(set(words))
        for path in _same_site_paths(page):
            if _page_key(path) not in seen:
                seen.add(_page_key(path))
                queue.append(path)
    return visited


def _invitation_links(app, client, auth) -> list[str]:
    """A new patient's invitation, and the link Jordan's invitation email carries to someone
    new she signs a consent for (through her page, as she would)."""
    auth.login("jordan@example.org", PASSWORD)
    form = {**FORM, "recipient_name": "Rosa Diaz", "recipient_email": "rosa@example.org"}
    signed = client.post("/patient/consents/new", data=form)
    assert signed.status_code == 302, "the consent form refused the demo's new consent"
    auth.logout()
    with app.app_context():
        invite = tokens.issue_token(TokenPurpose.INVITE, email="new@example.org", now=NOON)
        maria = db.session.scalar(select(User).where(User.email == "maria@example.org"))
        reset = tokens.issue_token(TokenPurpose.RESET, email=maria.email, user=maria, now=NOON)
        db.session.commit()
    return [
        f"/invitation/{invite}",
        family_invitation_link(app, "rosa@example.org"),
        f"/reset/{reset}",
        "/register/check-email",
    ]


def _sign_in(app, client, auth, email: str, check, failures: dict) -> int:
    """Sign in; staff who have not set up two-step sign-in yet are sent to do it first (that
    page and its recovery codes are judged too), as they would on their first day."""
    auth.login(email, PASSWORD)
    home = client.get("/")
    if home.status_code != 302 or not home.location.endswith("/account/mfa"):
        return 0
    visited = crawl(client, "/account/mfa", check, failures, email)
    with app.app_context():
        secret = db.session.scalar(select(User.totp_secret).where(User.email == email))
    done = client.post("/account/mfa", data={"code": pyotp.TOTP(secret).at(NOON)})
    words = check(RECOVERY_CODES.sub("", done.get_data(as_text=True)), "/account/mfa")
    if done.status_code != 200 or words:
        failures[f"{email} POST /account/mfa"] = words or [f"status {done.status_code}"]
    # Signing in again now asks for the code, on its own page.
    auth.logout()
    client.post("/login", data={"email": email, "password": PASSWORD})
    visited += crawl(client, "/login/code", check, failures, email)
    client.post("/login/code", data={"code": auth.current_code(email)})
    return visited + 1


def test_every_page_passes_through_gettext(app, client, auth, demo_world, pseudo_locale):
    invitations = _invitation_links(app, client, auth)
    data = data_strings(app)
    failures: dict[str, list[str]] = {}

    def check(page, url):
        # The audit log shows rows the crawl itself wrote: its identifiers are read afresh.
        shown = data + (_audit_identifiers(app) if url.startswith("/admin/audit") else [])
        return pseudo_locale(SIGNED_DOCUMENT.sub("", page), *shown)

    visited = 0
    for url in (*ANONYMOUS, *invitations):
        visited += crawl(client, url, check, failures, "anonymous")
    for email in demo_world:
        visited += _sign_in(app, client, auth, email, check, failures)
        home = client.get("/")
        if home.status_code == 302 and "/login" in home.location:
            failures[f"{email} /"] = ["not signed in"]
        visited += crawl(client, "/", check, failures, email)
        auth.logout()
    report = "\n".join(f"{where}: {' '.join(words)}" for where, words in failures.items())
    assert visited > 500, "the crawl no longer reaches the demo's pages"
    assert not failures, f"{len(failures)} of {visited} pages show untranslated words:\n{report}"
