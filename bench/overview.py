"""The program overview at scale: its page and CSV timed on PostgreSQL, small and large data.

Loads the demo into a fresh PostgreSQL database, times the director's overview page and CSV
(a year up to today: every month's aggregates, the charts, the audit row) in this process
through Flask's test client, then bulk-fills the database as bench/scale.py does (factor 1:
100,000 family members, 20,000 patients, 200 therapists, 1,000,000 sessions, 2,000,000
outbox rows) and times them again. Prints p50 and the slowest of the runs, and the SQL
statements per request. Goal: the page's p50 under 1 s at factor 1.

    .venv/bin/python -m bench.overview [--factor 1.0] [--runs 7] [--database NAME] [--reuse]

--reuse skips loading and filling when the database already holds the filled data (it only
brings its schema up to date with `flask db upgrade`), so the large figures can be measured
again after a change without another fill.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy import event

from bench import harness, pages, scale
from bench.harness import say

ACCOUNT = "overview-bench@example.org"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _a_year() -> str:
    """The query of the twelve months up to the latest final one."""
    from familylink.services.overview import last_final_month
    from familylink.services.overview.figures import add_months

    # Yesterday in UTC is never after today in the program's time zone.
    last = last_final_month((datetime.now(UTC) - timedelta(days=1)).date())
    return f"first={add_months(last, -11):%Y-%m}&last={last:%Y-%m}"


def _load() -> str:
    """The machine's load average (1, 5, 15 minutes): the machine is shared."""
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def _signed_in_director(app):
    """A test client signed in as a program director made for the benchmark (two-step on)."""
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
                    name="Bench Director",
                    role=Role.DIRECTOR,
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


class _ChartTimer:
    """Wraps the page's chart drawing to add up the time it takes within each request."""

    def __init__(self):
        from familylink.overview import routes

        self.routes, self.draw, self.seconds = routes, routes.bar_chart, 0.0

    def __enter__(self):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return self.draw(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        self.routes.bar_chart = timed
        return self

    def __exit__(self, *exc):
        self.routes.bar_chart = self.draw


def time_pages(url: str, runs: int) -> list[dict]:
    """p50 and slowest (ms), the charts' time (ms: the first request, which draws them,
    and the median of the timed ones) and statements per request of the page and the CSV."""
    from familylink.overview.charts import forget_drawn_charts

    forget_drawn_charts()  # the first request draws them, as in a fresh worker
    app = scale.in_process_app(url)
    client = _signed_in_director(app)
    query = _a_year()
    results = []
    for label, path in (("Overview page", f"/overview/?{query}"), ("Overview CSV", None)):
        path = path or f"/overview/overview.csv?{query}"
        timings, statements, charts = [], [], []
        with app.app_context():
            from familylink.extensions import db

            engine = db.engine
        for _ in range(runs + 1):  # the first run warms the caches, and is not counted
            seen = []

            def count(*_args, seen=seen):
                seen.append(1)

            event.listen(engine, "before_cursor_execute", count)
            with _ChartTimer() as drawing:
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
            event.remove(engine, "before_cursor_execute", count)
            charts.append(drawing.seconds * 1000)
            statements.append(len(seen))
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}")
        first_charts = charts[0]
        timings, statements, charts = timings[1:], statements[1:], charts[1:]
        results.append(
            {
                "label": label,
                "p50": statistics.median(timings),
                "charts": statistics.median(charts),
                "first_charts": first_charts,
                "max": max(timings),
                "statements": max(statements),
            }
        )
        say(f"[overview] {label}: p50 {results[-1]['p50']:.0f} ms")
    with app.app_context():
        from familylink.extensions import db

        db.engine.dispose()
    return results


def explain(url: str) -> list[str]:
    """Each SELECT of one overview page request, run again under EXPLAIN (ANALYZE,
    BUFFERS): its execution time, the buffers it read and the scans it used."""
    app = scale.in_process_app(url)
    client = _signed_in_director(app)
    query = _a_year()
    captured = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            captured.append((statement, parameters))

    with app.app_context():
        from familylink.extensions import db

        engine = db.engine
    client.get(f"/overview/?{query}")  # warm
    event.listen(engine, "before_cursor_execute", keep)
    client.get(f"/overview/?{query}")
    event.remove(engine, "before_cursor_execute", keep)
    lines = []
    with engine.connect() as conn:
        for number, (statement, parameters) in enumerate(captured, start=1):
            plan = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters
            ).scalar()[0]
            text_plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
            scans = sorted(
                {f"{kind} {name}" for kind, name in scale.INDEX_LINE.findall("\n".join(text_plan))}
            )
            top = plan["Plan"]
            blocks = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
            tables = sorted(set(re.findall(r"(?:FROM|JOIN) (\w+)", statement)))
            lines.append(
                f"| {number} | {', '.join(tables) or '-'} | {plan['Execution Time']:.1f} | "
                f"{blocks} | {'; '.join(scans) or '-'} |"
            )
    engine.dispose()
    return lines


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale.factor_option(parser)
    parser.add_argument("--runs", type=int, default=7, help="timed requests per page")
    parser.add_argument(
        "--database", default="familylink_overview_bench", help="PostgreSQL database to use"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also run each query of the large page under EXPLAIN (ANALYZE, BUFFERS)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time the already filled database again (no demo load, no fill)",
    )
    args = parser.parse_args(argv)
    if args.reuse:
        url = PG_URL.format(name=args.database)
        harness.flask_command(harness.app_environment(url), "db", "upgrade")
        small, fill_seconds = None, None
    else:
        env, _ids = pages.prepare("postgresql", args.database)
        url = env["DATABASE_URL"]
        small = time_pages(url, args.runs)
        fill_seconds = scale.fill(url, args.factor)
    large = time_pages(url, args.runs)
    fill = (
        f"took {fill_seconds / 60:.1f} minutes"
        if fill_seconds is not None
        else "was done by an earlier run (--reuse)"
    )
    lines = [
        "## Program overview at scale (PostgreSQL)",
        "",
        f"Bulk fill at factor {args.factor:g} (1 = 100,000 family members, 20,000 patients, "
        f"200 therapists, 1,000,000 sessions, 2,000,000 outbox rows) {fill}. A year of months "
        f"up to today, the director's view (the counts are still split by therapist), {args.runs} "
        f"requests each in-process (test client). Load average {_load()}.",
        "",
        "| request | p50 small (ms) | p50 large (ms) | slowest large (ms) "
        "| charts, first / later (ms) | statements |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for before, after in zip(small or [None] * len(large), large, strict=True):
        small_p50 = f"{before['p50']:.0f}" if before else "-"
        lines.append(
            f"| {after['label']} | {small_p50} | {after['p50']:.0f} | "
            f"{after['max']:.0f} | {after['first_charts']:.0f} / {after['charts']:.0f} | "
            f"{after['statements']} |"
        )
    if args.explain:
        lines += [
            "",
            "Each SELECT of one large page request under EXPLAIN (ANALYZE, BUFFERS):",
            "",
            "| query | tables | ms | buffers | scans |",
            "| ---: | --- | ---: | ---: | --- |",
            *explain(url),
        ]
    text_out = "\n".join(lines) + "\n"
    print(text_out)
    return text_out


if __name__ == "__main__":
    main()
