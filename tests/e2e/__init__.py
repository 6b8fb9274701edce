"""Browser journeys: Debian's Chromium, driven by Playwright, against the app served in a thread.

Adding a journey (booking, consent, learning...): write tests/e2e/test_<area>.py; every test
here is marked `e2e` automatically (SQLite runs only). The fixtures in tests/conftest.py:

- `page`: a fresh tab (its own cookies) on `live_server`; fails the test on any 5xx answer,
  script error or Content-Security-Policy violation. Find things by label and role.
- `live_server`: the app in a thread with CSRF on; `live_server.database()` seeds or reads the
  database (commits on exit); `live_server.clock.set(instant)` freezes the server's now;
  `live_server.deliver_mail(now=...)` runs the mail sender once.
- `inbox`: `inbox.latest(to)` / `inbox.link(to)` deliver the outbox to the SMTP sink and read
  the newest email to an address, or the first link in it.
- `serve_app(**settings)`: another server with other settings; `new_context(base_url=...)`.

tests/e2e/helpers.py has sign_in/sign_out, assert_accessible (axe, WCAG 2.1 A/AA),
horizontal_overflow, tab_to/assert_focus_visible; test_accessibility.check_page runs them all
at desktop, 320 px and 200% zoom. New pages belong in test_accessibility's lists too.
"""
