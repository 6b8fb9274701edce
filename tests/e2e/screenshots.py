"""Save desktop (1280×800) and phone (390×844) screenshots of the key pages to docs/screenshots/.

Run with `make screenshots` (every page), or `python -m tests.e2e.screenshots NAME…` for
only the named shots (e.g. `overview`). It loads the demo data into a throwaway SQLite
database in tmp/, serves the app from a thread, signs in as each demo role in Debian's
Chromium and saves <page>-desktop.png and <page>-phone.png. The shots named *-es are taken
after choosing Español with the footer switch (issue 23). Nothing outside tmp/ and
docs/screenshots/ changes.
"""

from __future__ import annotations

import os
import sys

from playwright.sync_api import Page, sync_playwright

from familylink import create_app, i18n
from familylink.extensions import db
from familylink.models.types import utcnow
from tests.e2e import helpers
from tests.e2e.browser import (
    BROWSER_SCRATCH,
    CHROMIUM,
    PROJECT_ROOT,
    Clock,
    LiveServer,
    launch_options,
)

OUT = PROJECT_ROOT / "docs" / "screenshots"
WORK = PROJECT_ROOT / "tmp" / "screenshots"
PASSWORD = "screenshot-demo-2026"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

# (file name, who is signed in (None: nobody), path, what to do on the page before the shot)
SHOTS = [
    ("welcome", None, "/", None),
    ("sign-in", None, "/login", None),
    ("sign-in-error", None, "/login", "bad_sign_in"),
    ("register", None, "/register", None),
    ("crisis", None, "/help/crisis", None),
    ("family-home", "maria@example.org", "/family/", None),
    ("patient-home", "jordan@example.org", "/patient/", None),
    ("therapist-patients", "lee@example.org", "/therapist/", None),
    ("admin-therapists", "admin@example.org", "/admin/", None),
    ("admin-settings", "admin@example.org", "/admin/settings", None),
    ("family-booking", "maria@example.org", "/booking/", "open_booking"),
    ("therapist-calendar", "lee@example.org", "/therapist/calendar", None),
    ("therapist-cancel", "lee@example.org", "/therapist/calendar", "open_cancel"),
    ("consent-form", "jordan@example.org", "/patient/consents/new", None),
    ("module", "maria@example.org", "/learn/", "open_first_module"),
    ("overview", "director@example.org", "/overview/", "show_enrolment"),
    # The same pages in Spanish: each one's person chooses Español in the footer first.
    ("welcome-es", None, "/", None),
    ("crisis-es", None, "/help/crisis", None),
    ("family-home-es", "maria@example.org", "/family/", None),
    ("family-booking-es", "maria@example.org", "/booking/", "open_booking_es"),
    ("consent-form-es", "jordan@example.org", "/patient/consents/new", None),
]
SPANISH = "-es"


def bad_sign_in(page: Page) -> None:
    page.get_by_label("Email address").fill("maria@example.org")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()


def open_booking(page: Page) -> None:
    """The week picker: the demo has two kinds of private session, so the first step asks."""
    page.get_by_role("link", name="book a family session").first.click()
    page.get_by_role("link", name="Family session", exact=True).click()


def open_booking_es(page: Page) -> None:
    page.get_by_role("link", name="reservar una sesión familiar").first.click()
    # Session types are named by the program's admin (data, not translated).
    page.get_by_role("link", name="Family session", exact=True).click()


def open_first_module(page: Page) -> None:
    page.get_by_role("main").get_by_role("link").filter(has=page.locator("strong")).first.click()


def open_cancel(page: Page) -> None:
    """The confirmation a therapist sees before a family's place is cancelled."""
    page.get_by_role("link", name="Cancel…").first.click()


def show_enrolment(page: Page) -> None:
    """The overview's first table, enrolment: its chart and small counts hidden."""
    page.get_by_role("heading", name="Enrolment").scroll_into_view_if_needed()
    page.evaluate("document.getElementById('h-enrolment').scrollIntoView()")


STEPS = {
    "bad_sign_in": bad_sign_in,
    "open_booking": open_booking,
    "open_booking_es": open_booking_es,
    "open_first_module": open_first_module,
    "open_cancel": open_cancel,
    "show_enrolment": show_enrolment,
}


def sign_in(page: Page, email: str) -> None:
    """Sign in as a demo user; demo staff set up two-step sign-in on their first visit."""
    helpers.sign_in(page, email, PASSWORD)
    if page.get_by_role("heading", name="Set up two-step sign-in").is_visible():
        helpers.enrol_two_step(page)


def choose_language(page: Page, name: str) -> None:
    """The footer switch; a signed-in person's account keeps the choice."""
    page.goto("/")
    page.get_by_role("contentinfo").get_by_role("button", name=name).click()


def build_app():
    WORK.mkdir(parents=True, exist_ok=True)
    database = WORK / "demo.db"
    database.unlink(missing_ok=True)
    catalogues = WORK / "translations"  # the .mo files are built, not committed (i18n.py)
    i18n.compile_catalogues(catalogues)
    app = create_app(
        {
            "BABEL_TRANSLATION_DIRECTORIES": str(catalogues),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
            "SECRET_KEY": "screenshots-only",
            # The dev mailbox is a debug-mode tool; the demo is served as `make run` serves it.
            "DEBUG": True,
            "DEV_MAILBOX": True,
            "MAIL_SERVER": None,
            "SESSION_COOKIE_SECURE": False,
            "RATELIMIT_ENABLED": False,
            "ARGON2_PARAMETERS": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
            "NOW_OVERRIDE": Clock(),
        }
    )
    with app.app_context():
        from familylink import demo

        db.create_all()
        demo.seed(password=PASSWORD, now=utcnow(), progress=lambda _message: None)
        db.session.commit()
        db.session.remove()
    return app


def main(argv: list[str] | None = None) -> int:
    names = set(sys.argv[1:] if argv is None else argv)
    unknown = names - {name for name, *_ in SHOTS}
    if unknown:
        print(f"no such shot: {', '.join(sorted(unknown))}")
        return 2
    shots = [shot for shot in SHOTS if not names or shot[0] in names]
    if not os.access(CHROMIUM, os.X_OK):
        print(f"{CHROMIUM} is missing: apt-get install chromium (make screenshots does it).")
        return 1
    app = build_app()
    server = LiveServer(app).start()
    OUT.mkdir(parents=True, exist_ok=True)
    BROWSER_SCRATCH.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(BROWSER_SCRATCH)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**launch_options())
            for size_name, viewport in SIZES.items():
                signed_in_as = {}
                for name, email, path, step in shots:
                    spanish = name.endswith(SPANISH)
                    context = signed_in_as.get((email, spanish))
                    if context is None:
                        context = browser.new_context(
                            base_url=server.url,
                            viewport=viewport,
                            locale="en-US",
                            timezone_id="America/New_York",
                            has_touch=size_name == "phone",
                        )
                        signed_in_as[email, spanish] = context
                        if email:
                            sign_in(context.new_page(), email)
                        if spanish:
                            choose_language(context.new_page(), "Español")
                    page = context.new_page()
                    page.goto(path)
                    if step:
                        STEPS[step](page)
                    target = OUT / f"{name}-{size_name}.png"
                    page.screenshot(path=str(target))
                    page.close()
                    print(f"saved {target.relative_to(PROJECT_ROOT)}")
                for (email, spanish), context in signed_in_as.items():
                    if email and spanish:  # the next size's English shots find English again
                        choose_language(context.new_page(), "English")
                    context.close()
            browser.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
