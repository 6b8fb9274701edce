"""Python calls and SQL statements per request, in-process (prints figures).

    .venv/bin/python -m bench.calls [--database sqlite|postgresql|both] [--requests 20]

The pages of `bench.pages`, the honest minimal page (bench/honest.py) and the booking POST
as bench/book.lua sends it, each requested through Flask's test client on a fresh demo
database prepared as `bench.pages` prepares it, signed in as there. Per page: the mean
Python function calls of one request under cProfile (after three warm requests), the SQL
statements it sent, and its mean wall time unprofiled.
Calls do not move with the machine's load, so two runs of different code compare even on a
busy machine; the wall times do move, and compare only within one run.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import re
import subprocess
import sys
import time
import uuid

from sqlalchemy import event

from bench import harness
from bench.harness import ROOT, say
from bench.pages import DEMO_PASSWORD, FAMILY, THERAPIST, pages_to_measure, prepare
from familylink.services.program import CACHE_SECONDS

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Client:
    """A test client of the app at the address it is configured for (SERVER_NAME)."""

    def __init__(self, app):
        self.client, self.base = app.test_client(), f"http://{app.config['SERVER_NAME']}"

    def get(self, path: str, **options):
        return self.client.get(path, base_url=self.base, **options)

    def post(self, path: str, data: dict):
        return self.client.post(path, data=data, base_url=self.base)


def _sign_in(client: Client, email: str, totp_secret: str | None) -> None:
    page = client.get("/login").get_data(as_text=True)
    fields = {"csrf_token": TOKEN.search(page).group(1), "email": email}
    answer = client.post("/login", data=fields | {"password": DEMO_PASSWORD})
    if totp_secret and "/login/code" in answer.headers.get("Location", ""):
        import pyotp

        page = client.get("/login/code").get_data(as_text=True)
        code = pyotp.TOTP(totp_secret).now()
        client.post("/login/code", data={"csrf_token": TOKEN.search(page).group(1), "code": code})
    if "Sign out" not in client.get("/", follow_redirects=True).get_data(as_text=True):
        raise RuntimeError(f"could not sign in as {email}")


class StatementCounter:
    """Counts the statements an engine sends while `counting` is on."""

    def __init__(self, engine):
        self.count, self.counting = 0, False
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_):
        if self.counting:
            self.count += 1


def measure(get, engines, requests: int, expected: int = 200) -> dict:
    """Calls, statements and milliseconds per request of `get()` (which must answer
    `expected`)."""
    for _ in range(3):
        answer = get()
        if answer.status_code != expected:
            raise RuntimeError(f"answered {answer.status_code}")
    counters = [StatementCounter(engine) for engine in engines]
    started = time.perf_counter()
    for _ in range(requests):
        get()
    seconds = time.perf_counter() - started
    profile = cProfile.Profile()
    for counter in counters:
        counter.counting = True
    profile.enable()
    for _ in range(requests):
        get()
    profile.disable()
    for counter in counters:
        counter.counting = False
    return {
        "calls": pstats.Stats(profile).total_calls / requests,
        "statements": sum(counter.count for counter in counters) / requests,
        "ms": 1000 * seconds / requests,
    }


def run(database: str, requests: int) -> list[dict]:
    env, ids = prepare(database, "familylink_calls")
    os.environ.update(env)
    from familylink import create_app
    from familylink.extensions import db

    app = create_app()
    with app.app_context():
        engine = db.engine
    clients = {}
    for account, secret in ((FAMILY, None), (THERAPIST, ids["lee_secret"])):
        clients[account] = Client(app)
        _sign_in(clients[account], account, secret)
    clients[None] = Client(app)
    rows = []
    from bench import honest

    cookie_name = app.config["SESSION_COOKIE_NAME"]
    cookie = clients[FAMILY].client.get_cookie(cookie_name, domain=app.config["SERVER_NAME"])
    honest_client = honest.app.test_client()
    honest_client.set_cookie(cookie_name, cookie.value, domain="localhost")
    say(f"[{database}] honest page…")
    get = functools.partial(honest_client.get, f"/?patient={ids['jordan']}")
    honest_row = measure(get, [honest.engine], requests)
    rows.append({"label": "Honest minimal page", **honest_row})
    for page in pages_to_measure(ids):
        say(f"[{database}] {page['label']}…")
        get = functools.partial(clients[page["account"]].get, page["path"])
        rows.append({"label": page["label"], **measure(get, [engine], requests)})
    say(f"[{database}] booking POST…")
    rows.append(
        {
            "label": "Booking POST, a real booking each",
            **_booking_post(env, ids, app, requests, engine),
        }
    )
    for row in rows:
        row["per_honest"] = row["calls"] / honest_row["calls"]
    return rows


def _booking_post(env: dict, ids: dict, app, requests: int, engine) -> dict:
    """The booking POST as bench/book.lua sends it: the confirmed step, a fresh slot and
    a new one-time key each time, after the therapist's hours are opened (`--open-hours`)."""
    opened = json.loads(harness.python_module(env, "bench.demo_setup", "--open-hours"))
    # The longer booking horizon reaches this process once its program settings expire.
    time.sleep(CACHE_SECONDS + 1)
    client = Client(app)
    _sign_in(client, FAMILY, None)
    path = f"/booking/new?patient={ids['jordan']}&type={ids['private_type']}"
    fixed = {"csrf_token": TOKEN.search(client.get(path).get_data(as_text=True)).group(1)}
    slots = iter(opened["slots"])

    def post():
        form = fixed | {"confirmed": "1", "slot": next(slots), "request_key": uuid.uuid4().hex}
        return client.post(path, data=form)

    # A booking answers with a redirect to its page; a refusal shows the form again (200).
    return measure(post, [engine], requests, expected=302)


def report(database: str, rows: list[dict], requests: int) -> str:
    lines = [
        f"{database}: {requests} requests a page through the test client, demo data",
        f"{'page':<48}{'calls':>9}{'/ honest':>10}{'statements':>12}{'ms':>8}",
    ]
    for row in rows:
        lines.append(
            f"{row['label']:<48}{row['calls']:>9,.0f}{row['per_honest']:>10.2f}"
            f"{row['statements']:>12.1f}{row['ms']:>8.2f}"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--requests", type=int, default=20, help="requests a page (profiled)")
    args = parser.parse_args(argv)
    if args.database != "both":
        print(report(args.database, run(args.database, args.requests), args.requests))
        return
    # Each database in a process of its own: the app, the honest page and their caches are
    # made for one database (from the environment) when first imported.
    for kind in ("sqlite", "postgresql"):
        command = [sys.executable, "-m", "bench.calls", "--database", kind]
        subprocess.run([*command, "--requests", str(args.requests)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
