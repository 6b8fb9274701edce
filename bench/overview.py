"""The program overview at scale: its page and CSV timed on PostgreSQL, small and large data.

Loads the demo into a fresh PostgreSQL database, times the admin's overview page and CSV
(a year up to today: every month's aggregates, the charts, the audit row) in this process
through Flask's test client, then bulk-fills the database as bench/scale.py does (factor 1:
100,000 family members, 20,000 patients, 200 therapists, 1,000,000 sessions, 2,000,000
outbox rows) and times them again. Prints p50 and the slowest of the runs, and the SQL
statements per request. Goal: the page's p50 under 1 s at factor 1.

    .venv/bin/python -m bench.overview [--factor 1.0] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy import event

from bench import pages, scale
from bench.harness import say

ACCOUNT = "overview-bench@example.org"


def _signed_in_admin(app):
    """A test client signed in as an admin made for the benchmark (two-step sign-in on)."""
    from familylink.extensions import db
    from familylink.models import Role, User
    from familylink.models.types import utcnow
    from familylink.services.passwords import hash_password

    secret = pyotp.random_base32()
    with app.app_context():
        if db.session.query(User).filter_by(email=ACCOUNT).first() is None:
            db.session.add(
                User(
                    email=ACCOUNT,
                    name="Bench Admin",
                    role=Role.ADMIN,
                    password_hash=hash_password(pages.DEMO_PASSWORD),
                    verified_at=utcnow(),
                    totp_secret=secret,
                    totp_enabled_at=utcnow(),
                )
            )
        else:
            db.session.query(User).filter_by(email=ACCOUNT).update({"totp_last_step": None})
            user = db.session.query(User).filter_by(email=ACCOUNT).one()
            user.totp_secret = secret
        db.session.commit()
    client = app.test_client()
    step = client.post("/login", data={"email": ACCOUNT, "password": pages.DEMO_PASSWORD})
    client.post(step.location, data={"code": pyotp.TOTP(secret).now()})
    return client


def time_pages(url: str, runs: int) -> list[dict]:
    """p50 and slowest (ms) and statements per request of the page and the CSV."""
    app = scale.in_process_app(url)
    client = _signed_in_admin(app)
    # Yesterday in UTC is never after today in the program's time zone.
    last = (datetime.now(UTC) - timedelta(days=1)).date()
    first = (last - timedelta(days=365)).replace(day=1)
    query = f"first={first}&last={last}"
    results = []
    for label, path in (("Overview page", f"/overview/?{query}"), ("Overview CSV", None)):
        path = path or f"/overview/overview.csv?{query}"
        timings, statements = [], []
        with app.app_context():
            from familylink.extensions import db

            engine = db.engine
        for _ in range(runs + 1):  # the first run warms the caches, and is not counted
            seen = []

            def count(*_args, seen=seen):
                seen.append(1)

            event.listen(engine, "before_cursor_execute", count)
            started = time.perf_counter()
            response = client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
            event.remove(engine, "before_cursor_execute", count)
            statements.append(len(seen))
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}")
        timings, statements = timings[1:], statements[1:]
        results.append(
            {
                "label": label,
                "p50": statistics.median(timings),
                "max": max(timings),
                "statements": max(statements),
            }
        )
        say(f"[overview] {label}: p50 {results[-1]['p50']:.0f} ms")
    with app.app_context():
        from familylink.extensions import db

        db.engine.dispose()
    return results


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale.factor_option(parser)
    parser.add_argument("--runs", type=int, default=7, help="timed requests per page")
    args = parser.parse_args(argv)
    env, _ids = pages.prepare("postgresql", "familylink_overview_bench")
    url = env["DATABASE_URL"]
    small = time_pages(url, args.runs)
    fill_seconds = scale.fill(url, args.factor)
    large = time_pages(url, args.runs)
    lines = [
        "## Program overview at scale (PostgreSQL)",
        "",
        f"{scale.fill_summary(args.factor, fill_seconds)}. A year of months up to today, the "
        f"admin's view (with the per-therapist table), {args.runs} requests each in-process "
        "(test client).",
        "",
        "| request | p50 small (ms) | p50 large (ms) | slowest large (ms) | statements |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for before, after in zip(small, large, strict=True):
        lines.append(
            f"| {after['label']} | {before['p50']:.0f} | {after['p50']:.0f} | "
            f"{after['max']:.0f} | {after['statements']} |"
        )
    text_out = "\n".join(lines) + "\n"
    print(text_out)
    return text_out


if __name__ == "__main__":
    main()
