"""Pages against the framework's ceiling.

Serves FamilyLink and a hello-world Flask app with the same gunicorn settings (2 sync
workers), drives each page with wrk (8 connections, after a warm-up) and prints requests/s,
p50, p99 and the ratio to hello-world, on SQLite and on PostgreSQL, on the demo data.

    .venv/bin/python -m bench.pages [--database sqlite|postgresql|both] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench import harness
from bench.harness import ROOT, say
from familylink.services.program import CACHE_SECONDS

GOALS = {"get": 0.25, "post": 0.10, "p99_ms": 50.0, "rss_mb": 120.0}
DEMO_PASSWORD = "family-demo-2026"
FAMILY = "maria@example.org"
THERAPIST = "lee@example.org"


def pages_to_measure(ids: dict) -> list[dict]:
    return [
        {"label": "Sign-in page (anonymous)", "account": None, "path": "/login"},
        {"label": "Family dashboard", "account": FAMILY, "path": "/family/"},
        {
            "label": "Booking page, the first week with free slots",
            "account": FAMILY,
            "path": f"/booking/new?patient={ids['jordan']}&type={ids['private_type']}",
        },
        {
            "label": "Therapist week calendar",
            "account": THERAPIST,
            "path": "/therapist/calendar?view=week",
        },
        {
            "label": "Module page",
            "account": FAMILY,
            "path": f"/learn/modules/{ids['module_slug']}",
        },
    ]


def _browser(app, account: str, ids: dict) -> harness.Browser:
    browser = harness.Browser(app.base)
    secret = ids["lee_secret"] if account == THERAPIST else None
    browser.sign_in(account, DEMO_PASSWORD, totp_secret=secret)
    return browser


def _measure_booking_post(app, env, ids, seconds, ceiling, database) -> dict:
    """Each request books a fresh slot: the therapist is given every hour first."""
    opened = json.loads(harness.python_module(env, "bench.demo_setup", "--open-hours"))
    # The longer booking horizon reaches the running workers once their cached copy of the
    # program settings has expired.
    time.sleep(CACHE_SECONDS + 1)
    browser = _browser(app, FAMILY, ids)
    path = f"/booking/new?patient={ids['jordan']}&type={ids['private_type']}"
    os.environ.update(
        BOOK_PATH=path,
        BOOK_SLOTS=",".join(opened["slots"]),
        BOOK_CSRF=browser.csrf_token(path),
        BOOK_THREADS="2",
    )
    script = str(ROOT / "bench" / "book.lua")
    result = harness.run_wrk(
        app.base + path, seconds=seconds, cookie=browser.cookie_header(), script=script
    )
    ratio = result.requests_per_second / ceiling.requests_per_second
    say(f"[{database}] booking POST: {result.requests_per_second:.0f} req/s ({ratio:.2f})")
    return {
        "label": f"Booking POST, a real booking each ({len(opened['slots'])} free slots)",
        "method": "POST",
        "result": result,
        "ratio": ratio,
    }


def prepare(database: str, name: str = "familylink_bench") -> tuple[dict, dict]:
    """A fresh database of that kind with the demo loaded: (environment, ids)."""
    url = harness.database_url(database, name)
    env = harness.app_environment(url)
    env["DEMO_PASSWORD"] = DEMO_PASSWORD
    say(f"[{database}] migrating and loading demo data…")
    harness.flask_command(env, "db", "upgrade")
    harness.flask_command(env, "seed-demo")
    ids = json.loads(harness.python_module(env, "bench.demo_setup"))
    return env, ids


def measure_pages(env: dict, ids: dict, seconds: int, label: str, with_post: bool = True) -> dict:
    """Every page (and the booking POST) against hello-world, in one run."""
    say(f"[{label}] starting hello-world and FamilyLink under gunicorn…")
    hello = harness.start_gunicorn("bench.hello:app", env)
    app = harness.start_gunicorn("wsgi:app", env)
    rows = []
    try:
        harness.run_wrk(hello.base + "/", seconds=2)
        ceiling = harness.run_wrk(hello.base + "/", seconds=seconds)
        say(f"[{label}] hello-world: {ceiling.requests_per_second:.0f} req/s")
        for page in pages_to_measure(ids):
            cookie = None
            if page["account"]:
                cookie = _browser(app, page["account"], ids).cookie_header()
            target = app.base + page["path"]
            harness.run_wrk(target, seconds=2, cookie=cookie)
            result = harness.run_wrk(target, seconds=seconds, cookie=cookie)
            ratio = result.requests_per_second / ceiling.requests_per_second
            rows.append({**page, "result": result, "ratio": ratio})
            rate = result.requests_per_second
            say(f"[{label}] {page['label']}: {rate:.0f} req/s ({ratio:.2f})")
        if with_post:
            rows.append(_measure_booking_post(app, env, ids, seconds, ceiling, label))
        rss = app.worker_rss_mb()
    finally:
        app.stop()
        hello.stop()
    return {"database": label, "ceiling": ceiling, "rows": rows, "rss": rss}


def measure(database: str, seconds: int) -> dict:
    env, ids = prepare(database)
    return measure_pages(env, ids, seconds, database)


def report(results: list[dict], seconds: int) -> str:
    lines = ["## Pages against hello-world", ""]
    lines.append(
        f"gunicorn, 2 sync workers, wrk -t2 -c8 -d{seconds}s after a 2 s warm-up; demo data. "
        "Goals: signed-in GET pages ≥ 0.25 of hello-world's requests/s, the booking POST "
        "≥ 0.10, p99 under 50 ms, every worker under 120 MB."
    )
    for result in results:
        ceiling = result["ceiling"]
        lines += [
            "",
            f"### {result['database']}",
            "",
            f"hello-world: {ceiling.requests_per_second:.0f} req/s, p50 {ceiling.p50_ms:.1f} ms, "
            f"p99 {ceiling.p99_ms:.1f} ms",
            "",
            "| page | req/s | p50 ms | p99 ms | errors | ratio | goal |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for row in result["rows"]:
            r = row["result"]
            goal = GOALS["post"] if row.get("method") == "POST" else GOALS["get"]
            met = row["ratio"] >= goal and r.p99_ms < GOALS["p99_ms"] and r.errors == 0
            lines.append(
                f"| {row['label']} | {r.requests_per_second:.0f} | {r.p50_ms:.1f} | "
                f"{r.p99_ms:.1f} | {r.errors}{f' ({r.error_kinds})' if r.errors else ''} | "
                f"{row['ratio']:.2f} | "
                f"{'met' if met else 'NOT met'} |"
            )
        rss = ", ".join(f"{mb:.0f} MB" for mb in result["rss"])
        worst = max(result["rss"]) if result["rss"] else 0
        lines += [
            "",
            f"Worker memory after the run (RSS): {rss} — "
            f"{'met' if worst < GOALS['rss_mb'] else 'NOT met'} (goal < 120 MB).",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per page")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    text = report([measure(kind, args.seconds) for kind in kinds], args.seconds)
    print(text)
    return text


if __name__ == "__main__":
    main()
