"""Pages against the framework's ceiling.

Serves FamilyLink and a hello-world Flask app with the same gunicorn settings (2 sync
workers), drives each page with wrk (8 connections, 10 s, after a warm-up) and prints
requests/s, p50, p99 and the ratio to hello-world, on SQLite and on PostgreSQL.

    .venv/bin/python -m bench.pages [--database sqlite|postgresql|both] [--seconds 10]
"""

from __future__ import annotations

import argparse

from bench import harness
from bench.harness import say

GOALS = {"get": 0.25, "post": 0.10, "p99_ms": 50.0, "rss_mb": 120.0}
DEMO_PASSWORD = "family-demo-2026"


def pages_to_measure() -> list[dict]:
    """(label, signed-in account or None, path). Paths that need data come from the demo."""
    return [
        {"label": "Sign-in page (anonymous)", "account": None, "path": "/login"},
        {"label": "Family dashboard", "account": "maria@example.org", "path": "/family/"},
    ]


def measure(database: str, seconds: int) -> dict:
    url = harness.database_url(database, "familylink_bench")
    env = harness.app_environment(url)
    env["DEMO_PASSWORD"] = DEMO_PASSWORD
    say(f"[{database}] migrating and loading demo data…")
    harness.flask_command(env, "db", "upgrade")
    harness.flask_command(env, "seed-demo")

    say(f"[{database}] starting hello-world and FamilyLink under gunicorn…")
    hello = harness.start_gunicorn("bench.hello:app", env)
    app = harness.start_gunicorn("wsgi:app", env)
    rows = []
    try:
        harness.run_wrk(hello.base + "/", seconds=2)
        ceiling = harness.run_wrk(hello.base + "/", seconds=seconds)
        say(f"[{database}] hello-world: {ceiling.requests_per_second:.0f} req/s")
        for page in pages_to_measure():
            cookie = None
            if page["account"]:
                browser = harness.Browser(app.base)
                browser.sign_in(page["account"], DEMO_PASSWORD)
                cookie = browser.cookie_header()
            target = app.base + page["path"]
            harness.run_wrk(target, seconds=2, cookie=cookie)
            result = harness.run_wrk(target, seconds=seconds, cookie=cookie)
            ratio = result.requests_per_second / ceiling.requests_per_second
            rows.append({**page, "result": result, "ratio": ratio})
            rate = result.requests_per_second
            say(f"[{database}] {page['label']}: {rate:.0f} req/s ({ratio:.2f})")
        rss = app.worker_rss_mb()
    finally:
        app.stop()
        hello.stop()
    return {"database": database, "ceiling": ceiling, "rows": rows, "rss": rss}


def report(results: list[dict], seconds: int) -> str:
    lines = ["## Pages against hello-world", ""]
    lines.append(
        f"gunicorn, 2 sync workers, wrk -t2 -c8 -d{seconds}s after a 2 s warm-up; demo data."
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
                f"{r.p99_ms:.1f} | {r.errors} | {row['ratio']:.2f} | "
                f"{'met' if met else 'NOT met'} (≥ {goal}, p99 < 50 ms) |"
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
