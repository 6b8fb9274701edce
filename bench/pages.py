"""Pages against two baselines: hello-world and the honest minimal page.

Serves FamilyLink, a hello-world Flask app and the honest minimal page (bench/honest.py:
only what every signed-in page must do, with Core SQL) with the same gunicorn settings
(2 sync workers), drives each page with wrk (8 connections, after a warm-up) and prints
requests/s, p50, p99 and the ratio to each baseline, on SQLite and on PostgreSQL, on the
demo data. The goals are against the honest page, measured in the same run (before and
after the pages, the mean taken, since the machine's load drifts).

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

# Against the honest page: every signed-in GET page, and the booking POST on PostgreSQL.
GOALS = {"get": 0.7, "get_p99_ms": 50.0, "post": 0.3, "post_p99_ms": 100.0, "rss_mb": 120.0}
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


def _measure_booking_post(app, env, ids, seconds, database) -> dict:
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
    say(f"[{database}] booking POST: {result.requests_per_second:.0f} req/s")
    return {
        "label": f"Booking POST, a real booking each ({len(opened['slots'])} free slots)",
        "account": FAMILY,
        "method": "POST",
        "result": result,
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


def _mean(first: harness.WrkResult, second: harness.WrkResult) -> harness.WrkResult:
    return harness.WrkResult(
        (first.requests_per_second + second.requests_per_second) / 2,
        (first.p50_ms + second.p50_ms) / 2,
        (first.p99_ms + second.p99_ms) / 2,
        first.errors + second.errors,
        ", ".join(kind for kind in (first.error_kinds, second.error_kinds) if kind),
    )


def measure_pages(env: dict, ids: dict, seconds: int, label: str, with_post: bool = True) -> dict:
    """Every page (and the booking POST) against hello-world and the honest page, in one run.

    The honest page is measured just before and just after FamilyLink's GET pages, signed in
    with the family member's own cookie; its baseline is the mean of the two."""
    say(f"[{label}] starting hello-world, the honest page and FamilyLink under gunicorn…")
    hello = harness.start_gunicorn("bench.hello:app", env)
    honest = harness.start_gunicorn("bench.honest:app", env, ready_path="/healthz")
    app = harness.start_gunicorn("wsgi:app", env, ready_path="/healthz")
    rows = []
    try:
        harness.run_wrk(hello.base + "/", seconds=2)
        ceiling = harness.run_wrk(hello.base + "/", seconds=seconds)
        say(f"[{label}] hello-world: {ceiling.requests_per_second:.0f} req/s")
        honest_url = f"{honest.base}/?patient={ids['jordan']}"
        honest_cookie = _browser(app, FAMILY, ids).cookie_header()
        harness.run_wrk(honest_url, seconds=2, cookie=honest_cookie)
        honest_before = harness.run_wrk(honest_url, seconds=seconds, cookie=honest_cookie)
        say(f"[{label}] honest page: {honest_before.requests_per_second:.0f} req/s")
        for page in pages_to_measure(ids):
            cookie = None
            if page["account"]:
                cookie = _browser(app, page["account"], ids).cookie_header()
            target = app.base + page["path"]
            harness.run_wrk(target, seconds=2, cookie=cookie)
            result = harness.run_wrk(target, seconds=seconds, cookie=cookie)
            rows.append({**page, "result": result})
            say(f"[{label}] {page['label']}: {result.requests_per_second:.0f} req/s")
        honest_after = harness.run_wrk(honest_url, seconds=seconds, cookie=honest_cookie)
        say(f"[{label}] honest page again: {honest_after.requests_per_second:.0f} req/s")
        if with_post:
            rows.append(_measure_booking_post(app, env, ids, seconds, label))
        rss = app.worker_rss_mb()
    finally:
        app.stop()
        honest.stop()
        hello.stop()
    baseline = _mean(honest_before, honest_after)
    for row in rows:
        rate = row["result"].requests_per_second
        row["ratio"] = rate / baseline.requests_per_second
        row["hello_ratio"] = rate / ceiling.requests_per_second
    return {
        "database": label,
        "ceiling": ceiling,
        "honest": baseline,
        "honest_runs": (honest_before, honest_after),
        "rows": rows,
        "rss": rss,
    }


def measure(database: str, seconds: int, name: str = "familylink_bench") -> dict:
    env, ids = prepare(database, name)
    return measure_pages(env, ids, seconds, database)


def goal_for(row: dict, database: str) -> tuple[float, float] | None:
    """(ratio to the honest page, p99 in ms) a row must reach, or None when it has none."""
    if row["account"] is None:
        return None  # the goals are for signed-in pages
    if row.get("method") == "POST":
        return (GOALS["post"], GOALS["post_p99_ms"]) if database == "postgresql" else None
    return GOALS["get"], GOALS["get_p99_ms"]


def verdict(row: dict, database: str) -> str:
    goal = goal_for(row, database)
    if goal is None:
        return "-"
    ratio, p99 = goal
    r = row["result"]
    met = row["ratio"] >= ratio and r.p99_ms < p99 and r.errors == 0
    return f"≥ {ratio:.2f}, p99 < {p99:.0f} ms: {'met' if met else 'NOT met'}"


def report(results: list[dict], seconds: int) -> str:
    lines = ["## Pages against the honest minimal page", ""]
    lines.append(
        f"gunicorn, 2 sync workers, wrk -t2 -c8 -d{seconds}s after a 2 s warm-up; demo data. "
        "The honest page (bench/honest.py) does only what every signed-in page must: the "
        "session row by id, one consent row, one audit insert and commit, a small template "
        "with a CSRF token, Core SQL; measured before and after the GET pages, the mean is "
        "the baseline. Goals: every signed-in GET page ≥ 0.7 of the honest page's "
        "requests/s with p99 under 50 ms; the booking POST on PostgreSQL ≥ 0.3 with p99 "
        "under 100 ms; every worker under 120 MB."
    )
    for result in results:
        ceiling, honest = result["ceiling"], result["honest"]
        before, after = result["honest_runs"]
        database = result["database"]
        lines += [
            "",
            f"### {database}",
            "",
            f"hello-world: {ceiling.requests_per_second:.0f} req/s, p50 {ceiling.p50_ms:.1f} ms, "
            f"p99 {ceiling.p99_ms:.1f} ms",
            "",
            f"honest page: {honest.requests_per_second:.0f} req/s "
            f"({before.requests_per_second:.0f} before, {after.requests_per_second:.0f} after), "
            f"p50 {honest.p50_ms:.1f} ms, p99 {honest.p99_ms:.1f} ms, errors {honest.errors}"
            f"{f' ({honest.error_kinds})' if honest.errors else ''}",
            "",
            "| page | req/s | p50 ms | p99 ms | errors | / hello | / honest | goal |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for row in result["rows"]:
            r = row["result"]
            lines.append(
                f"| {row['label']} | {r.requests_per_second:.0f} | {r.p50_ms:.1f} | "
                f"{r.p99_ms:.1f} | {r.errors}{f' ({r.error_kinds})' if r.errors else ''} | "
                f"{row['hello_ratio']:.2f} | {row['ratio']:.2f} | {verdict(row, database)} |"
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
    parser.add_argument(
        "--name",
        default="familylink_bench",
        help="the PostgreSQL database to create afresh (one per engineer on a shared server)",
    )
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    text = report([measure(kind, args.seconds, args.name) for kind in kinds], args.seconds)
    print(text)
    return text


if __name__ == "__main__":
    main()
