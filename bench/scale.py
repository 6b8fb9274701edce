"""Scale: the page figures again with 100,000 families on PostgreSQL.

Measures every page on the demo data, then bulk-fills the same database with 100,000 family
members, 20,000 patients, 200 therapists, 1,000,000 sessions and 2,000,000 outbox rows
(INSERT … SELECT generate_series), and measures again. Goal: each page's p50 within 1.5x of
its small-data figure. Prints the indexes the slowest three pages' queries use (EXPLAIN).

    .venv/bin/python -m bench.scale [--factor 1.0] [--seconds 5] [--name familylink_scale]
"""

from __future__ import annotations

import argparse
import re
import time

from sqlalchemy import create_engine, event, text

from bench import pages
from bench.harness import say

FILL = [
    (
        "therapists",
        """INSERT INTO users (email, name, role, timezone, active, created_at, verified_at)
           SELECT 'scale-therapist-' || n || '@example.org', 'Scale Therapist ' || n,
                  'therapist', 'America/New_York', true, now(), now()
           FROM generate_series(0, :therapists - 1) AS n""",
    ),
    (
        "patients",
        """INSERT INTO users (email, name, role, timezone, active, created_at, verified_at,
                              therapist_id)
           SELECT 'scale-patient-' || n || '@example.org', 'Scale Patient ' || n, 'patient',
                  'America/New_York', true, now(), now(), :t0 + n % :therapists
           FROM generate_series(0, :patients - 1) AS n""",
    ),
    (
        "family members",
        """INSERT INTO users (email, name, role, timezone, active, created_at, verified_at)
           SELECT 'scale-family-' || n || '@example.org', 'Scale Family ' || n, 'family',
                  'America/Chicago', true, now(), now()
           FROM generate_series(0, :families - 1) AS n""",
    ),
    (
        "consents",
        """INSERT INTO consent_records (patient_id, patient_name, program_name, recipient_name,
               recipient_relationship, recipient_email, recipient_user_id, purpose,
               scope_scheduling,
               scope_attendance, scope_progress, information_description,
               revocation_statement, expiry_kind, expires_at, expiry_description,
               signature_name, signed_at, method, attested, form_version, text_snapshot,
               created_at)
           SELECT :p0 + n % :patients, 'Scale Patient', 'Program', 'Scale Family ' || n,
                  'Parent', 'scale-family-' || n || '@example.org', :f0 + n,
                  'Family therapy', true,
                  true, false, 'Session times', 'You may revoke.', 'date',
                  now() + interval '180 days', '180 days', 'Scale Patient', now(), 'portal',
                  false, 'scale', 'scale', now()
           FROM generate_series(0, :families - 1) AS n""",
    ),
    (
        "family links",
        """INSERT INTO family_links (patient_id, family_user_id, linked_at)
           SELECT :p0 + n % :patients, :f0 + n, now()
           FROM generate_series(0, :families - 1) AS n""",
    ),
    (
        "sessions",
        """INSERT INTO appointments (uid, therapist_id, session_type_id, starts_at, ends_at,
               capacity, status, sequence, created_at)
           SELECT 'scale-' || n, :t0 + n % :therapists, :session_type,
                  date_trunc('hour', now()) - interval '2000 hours'
                      + (n / :therapists) * interval '1 hour',
                  date_trunc('hour', now()) - interval '2000 hours'
                      + (n / :therapists) * interval '1 hour' + interval '50 minutes',
                  1, 'scheduled', 0, now()
           FROM generate_series(0, :sessions - 1) AS n""",
    ),
    (
        "seats",
        """INSERT INTO appointment_families (appointment_id, patient_id, status, created_at)
           SELECT :a0 + n, :p0 + (n % :therapists) + :therapists * ((n / :therapists) % 100)
                  % :patients, 'booked', now()
           FROM generate_series(0, :sessions - 1) AS n""",
    ),
    (
        "attendees",
        """INSERT INTO appointment_attendees (seat_id, user_id, added_at)
           SELECT s.id, :f0 + (s.patient_id - :p0), now()
           FROM appointment_families s WHERE s.appointment_id >= :a0""",
    ),
    (
        "outbox rows",
        """INSERT INTO outbox_emails (kind, dedupe_key, to_address, subject, text_body,
               html_body, status, attempts, next_attempt_at, created_at, sent_at)
           SELECT 'reminder', 'scale:' || n, 'scale-family-' || (n % :families) || '@example.org',
                  'Your appointment reminder', 'text', '<p>html</p>',
                  CASE WHEN n % 100 = 0 THEN 'failed' ELSE 'sent' END, 1, now(), now(), now()
           FROM generate_series(0, :outbox - 1) AS n""",
    ),
]


def factor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--factor", type=float, default=1.0, help="scale the row counts (1.0: full)"
    )


def fill_summary(factor: float, seconds: float) -> str:
    """What `fill` made and how long it took, for a bench's report."""
    return (
        f"Bulk fill at factor {factor:g} (1 = 100,000 family members, 20,000 patients, "
        f"200 therapists, 1,000,000 sessions, 2,000,000 outbox rows) took "
        f"{seconds / 60:.1f} minutes"
    )


def fill(url: str, factor: float) -> float:
    sizes = {
        "therapists": max(2, int(200 * factor)),
        "patients": max(10, int(20_000 * factor)),
        "families": max(20, int(100_000 * factor)),
        "sessions": max(100, int(1_000_000 * factor)),
        "outbox": max(100, int(2_000_000 * factor)),
    }
    engine = create_engine(url.replace("postgresql+psycopg", "postgresql+psycopg", 1))
    started = time.monotonic()
    with engine.begin() as conn:
        sizes["session_type"] = conn.scalar(
            text("SELECT id FROM session_types WHERE capacity = 1 ORDER BY id LIMIT 1")
        )
        # Rebuilt once at the end instead of row by row: the same check, much faster.
        conn.execute(
            text("ALTER TABLE appointments DROP CONSTRAINT ex_appointments_therapist_overlap")
        )
        for label, sql in FILL:
            step = time.monotonic()
            if label == "patients":
                sizes["t0"] = conn.scalar(
                    text("SELECT min(id) FROM users WHERE email LIKE 'scale-therapist-%'")
                )
            if label == "consents":
                sizes["p0"] = conn.scalar(
                    text("SELECT min(id) FROM users WHERE email LIKE 'scale-patient-%'")
                )
                sizes["f0"] = conn.scalar(
                    text("SELECT min(id) FROM users WHERE email LIKE 'scale-family-%'")
                )
            if label == "seats":
                sizes["a0"] = conn.scalar(
                    text("SELECT min(id) FROM appointments WHERE uid LIKE 'scale-%'")
                )
            params = {k: v for k, v in sizes.items() if f":{k}" in sql}
            count = conn.execute(text(sql), params).rowcount
            say(f"[scale] {label}: {count:,} rows in {time.monotonic() - step:.0f} s")
        step = time.monotonic()
        conn.execute(
            text(
                "ALTER TABLE appointments ADD CONSTRAINT ex_appointments_therapist_overlap "
                "EXCLUDE USING gist (therapist_id WITH =, tsrange(starts_at, ends_at) WITH &&) "
                "WHERE (status = 'scheduled')"
            )
        )
        say(f"[scale] overlap constraint rebuilt in {time.monotonic() - step:.0f} s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return time.monotonic() - started


INDEX_LINE = re.compile(
    r"(Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)\S* (?:using|on) (\S+)"
)


def in_process_app(url: str):
    """The app on `url` for requests through Flask's test client (no CSRF, no rate limit)."""
    from familylink import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "benchmark-secret-key-not-for-production",
            "SECRETS_KEYS": "7vY2mvLMaTUSb5ogjqrwPxtDN7HuQSumKUBysuHDL8o=",  # benchmarks only
            "SERVER_NAME": "127.0.0.1",
            "RATELIMIT_ENABLED": False,
            "SESSION_COOKIE_SECURE": False,
        }
    )


def explain(url: str, ids: dict, page: dict) -> list[str]:
    """The scans each SELECT of the page uses, read from EXPLAIN."""
    import pyotp

    from familylink.extensions import db

    app = in_process_app(url)
    client = app.test_client()
    if page["account"]:
        step = client.post(
            "/login", data={"email": page["account"], "password": pages.DEMO_PASSWORD}
        )
        if step.location and "/login/code" in step.location:
            # The next 30-second step's code: the current one was just used by the page run,
            # and a used code is refused (the app accepts one step either side).
            code = pyotp.TOTP(ids["lee_secret"]).at(time.time() + 30)
            client.post(step.location, data={"code": code})
    if client.get(page["path"]).status_code != 200:
        raise RuntimeError(f"could not open {page['path']} to explain it")
    captured = []
    with app.app_context():
        engine = db.engine

        def keep(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("SELECT") and not executemany:
                captured.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", keep)
        client.get(page["path"])
        event.remove(engine, "before_cursor_execute", keep)
        scans = []
        with engine.connect() as conn:
            for statement, parameters in captured:
                plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
                found = sorted(
                    {f"{kind} {name}" for kind, name in INDEX_LINE.findall("\n".join(plan))}
                )
                scans.append("; ".join(found) or "no table scan")
        engine.dispose()
    return scans


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    factor_option(parser)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per page")
    parser.add_argument(
        "--name",
        default="familylink_scale",
        help="the PostgreSQL database to create afresh (one per engineer on a shared server)",
    )
    args = parser.parse_args(argv)
    env, ids = pages.prepare("postgresql", args.name)
    small = pages.measure_pages(env, ids, args.seconds, "small data", with_post=False)
    fill_seconds = fill(env["DATABASE_URL"], args.factor)
    large = pages.measure_pages(env, ids, args.seconds, "large data", with_post=False)
    lines = [
        "## Scale (PostgreSQL)",
        "",
        f"{fill_summary(args.factor, fill_seconds)} (goal: under 10). "
        f"wrk -c8 -d{args.seconds}s per page.",
        "",
        "| page | p50 small (ms) | p50 large (ms) | large / small | goal ≤ 1.5 |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    ratios = []
    for before, after in zip(small["rows"], large["rows"], strict=True):
        ratio = after["result"].p50_ms / max(before["result"].p50_ms, 0.01)
        ratios.append((ratio, after))
        lines.append(
            f"| {after['label']} | {before['result'].p50_ms:.1f} | {after['result'].p50_ms:.1f} | "
            f"{ratio:.2f} | {'met' if ratio <= 1.5 else 'NOT met'} |"
        )
    lines += ["", "Scans used by the queries of the three slowest pages at scale (EXPLAIN):", ""]
    slowest = sorted(large["rows"], key=lambda row: row["result"].p50_ms, reverse=True)[:3]
    for row in slowest:
        lines.append(f"- **{row['label']}**")
        for number, scans in enumerate(explain(env["DATABASE_URL"], ids, row), start=1):
            lines.append(f"  - query {number}: {scans}")
    text_out = "\n".join(lines) + "\n"
    print(text_out)
    return text_out


if __name__ == "__main__":
    main()
