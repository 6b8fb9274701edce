"""The pieces every browser run shares: Debian's Chromium and the app served in a thread.

Used by the fixtures in tests/conftest.py and by `make screenshots` (tests/e2e/screenshots.py).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

from familylink.extensions import db
from familylink.models.types import utcnow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
BROWSER_SCRATCH = PROJECT_ROOT / "tmp" / "scratch"


def launch_options() -> dict:
    return {"executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


class Clock:
    """The server's idea of now: real time until a test sets an instant (NOW_OVERRIDE)."""

    def __init__(self):
        self.instant = None

    def set(self, instant) -> None:
        self.instant = instant

    def __call__(self):
        return self.instant or utcnow()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # one line per request would drown the output
        pass


class LiveServer:
    """The app served on 127.0.0.1 from a background thread of the test process."""

    # Running servers by their URL, so a helper holding only a page can reach the database
    # behind it (to read a staff member's authenticator secret, as their phone would).
    running: dict[str, LiveServer] = {}

    def __init__(self, app):
        self.app = app
        self.clock = app.config["NOW_OVERRIDE"]
        self._server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        app.config["SERVER_NAME"] = f"127.0.0.1:{self.port}"  # links in emails point here
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        LiveServer.running[self.url] = self
        return self

    @classmethod
    def serving(cls, url: str) -> LiveServer:
        """The running server that served `url`."""
        for base, server in cls.running.items():
            if url.startswith(base + "/") or url == base:
                return server
        raise LookupError(f"no live server serves {url}")

    def authenticator_code(self, email: str) -> str:
        """What the staff member's authenticator app shows now (the server's now); the
        replay guard is reset, so two sign-ins in the same 30 seconds both work."""
        import pyotp
        from sqlalchemy import select

        from familylink.models import User

        with self.database() as session:
            user = session.scalars(select(User).where(User.email == email.lower())).one()
            user.totp_last_step = None
            return pyotp.TOTP(user.totp_secret).at(self.clock())

    def stop(self) -> None:
        LiveServer.running.pop(self.url, None)
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()

    @contextmanager
    def database(self):
        """Read or seed the database as the server sees it; commits on a clean exit."""
        with self.app.app_context():
            try:
                yield db.session
                db.session.commit()
            finally:
                db.session.remove()

    def deliver_mail(self, now=None):
        """Run one pass of the mail sender, as the worker would (at the server's clock)."""
        from familylink.services import mail

        with self.app.app_context():
            try:
                return mail.send_pending(now=now or self.clock())
            finally:
                db.session.remove()

    def send_reminders(self, at) -> None:
        """The reminder sweep at `at`, as the worker's timer runs it (the clock moves there)."""
        self.clock.set(at)
        result = self.app.test_cli_runner().invoke(
            args=["reminders", "send", "--now", at.isoformat()]
        )
        assert result.exit_code == 0, result.output
