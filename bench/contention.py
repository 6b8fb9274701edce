"""Booking under contention: 50 signed-in clients race for 10 group seats and 1 private slot.

Real HTTP through gunicorn (4 sync workers) on PostgreSQL; every client posts at the same
moment (a barrier). Prints who won, who got a clear refusal, and the throughput.

    .venv/bin/python -m bench.contention [--clients 50] [--seats 10]
"""

from __future__ import annotations

import argparse
import threading
import time
import urllib.error
import urllib.parse
from datetime import time as dtime
from datetime import timedelta

from bench import harness
from bench.harness import say

PASSWORD = "contention-bench-2026"


def prepare(url: str, clients: int, seats: int) -> dict:
    """Demo program plus `clients` families, a group of `seats` and one private slot."""
    from sqlalchemy import select

    from familylink import create_app
    from familylink.demo import _consent
    from familylink.extensions import db
    from familylink.models import Role, SessionType, User
    from familylink.models.types import utcnow
    from familylink.services import booking
    from familylink.services.passwords import hash_password

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "benchmark-secret-key-not-for-production",
            "SECRETS_KEYS": "7vY2mvLMaTUSb5ogjqrwPxtDN7HuQSumKUBysuHDL8o=",  # benchmarks only
            "SERVER_NAME": "127.0.0.1",
        }
    )
    with app.app_context():
        now = utcnow()
        lee = db.session.scalar(select(User).where(User.email == "lee@example.org"))
        hashed = hash_password(PASSWORD)
        families = []
        for n in range(clients):
            patient = User(
                role=Role.PATIENT,
                name=f"Racer Patient{n}",
                email=f"racer-patient{n}@example.org",
                therapist_id=lee.id,
                verified_at=now,
            )
            member = User(
                role=Role.FAMILY,
                name=f"Racer Family{n}",
                email=f"racer{n}@example.org",
                password_hash=hashed,
                verified_at=now,
            )
            db.session.add_all([patient, member])
            db.session.flush()
            _consent(
                patient,
                member,
                "Parent",
                ("scheduling",),
                signed=now - timedelta(days=1),
                ends=now + timedelta(days=90),
            )
            families.append((member.email, patient.id))
        types = list(db.session.scalars(select(SessionType).order_by(SessionType.id)))
        group_type = next(t for t in types if t.capacity > 1)
        private = next(t for t in types if t.capacity == 1)
        day = (now + timedelta(days=3)).date()
        (group,) = booking.schedule_group(
            actor=lee,
            session_type_id=group_type.id,
            first_day=day,
            start_time=dtime(19, 0),
            weeks=1,
            capacity=seats,
            now=now,
        )
        slot = booking.slots_for(lee.id, private, now=now)[0]
        db.session.commit()
        result = {
            "families": families,
            "group": group.id,
            "private_type": private.id,
            "slot": slot.strftime("%Y-%m-%dT%H:%MZ"),
        }
        db.session.remove()
        db.engine.dispose()
    return result


def race(server, world: dict, target: str) -> dict:
    """Everyone posts at once; count bookings and refusals from the redirects."""
    browsers = []
    for email, patient_id in world["families"]:
        browser = harness.Browser(server.base)
        browser.sign_in(email, PASSWORD)
        if target == "group":
            path = f"/booking/groups/{world['group']}?patient={patient_id}"
            token = browser.csrf_token(f"/booking/groups?patient={patient_id}")
            fields = {"csrf_token": token}
        else:
            path = f"/booking/new?patient={patient_id}&type={world['private_type']}"
            fields = {
                "csrf_token": browser.csrf_token(path),
                "slot": world["slot"],
                "confirmed": "1",
            }
        browsers.append((browser, path, fields))
    barrier = threading.Barrier(len(browsers))
    outcomes: list[str] = [""] * len(browsers)

    def attempt(index: int) -> None:
        browser, path, fields = browsers[index]
        body = urllib.parse.urlencode({**fields, "request_key": f"race-{target}-{index}"})
        barrier.wait(timeout=60)
        try:
            with browser.opener.open(browser.base + path, data=body.encode(), timeout=60) as r:
                final = r.geturl()
                page = r.read().decode()
        except urllib.error.HTTPError as error:
            final, page = error.url, error.read().decode()
            if error.code >= 500:
                outcomes[index] = "server error"
                return
        if "/booking/" in final and "booked=1" in final:
            outcomes[index] = "booked"
        elif "Sorry" in page:
            outcomes[index] = "refused clearly"
        else:
            outcomes[index] = "other"

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(browsers))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    counts = {name: outcomes.count(name) for name in sorted(set(outcomes))}
    return {"counts": counts, "seconds": elapsed, "requests": len(browsers)}


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seats", type=int, default=10)
    args = parser.parse_args(argv)
    url = harness.database_url("postgresql", "familylink_contention")
    env = harness.app_environment(url)
    say("[contention] migrating and loading demo data…")
    harness.flask_command(env, "db", "upgrade")
    harness.flask_command(env, "seed-demo")
    world = prepare(url, args.clients, args.seats)
    server = harness.start_gunicorn("wsgi:app", env, workers=4, ready_path="/healthz")
    try:
        say(f"[contention] {args.clients} clients race for {args.seats} group seats…")
        group = race(server, world, "group")
        say(f"[contention] {args.clients} clients race for 1 private slot…")
        private = race(server, world, "private")
    finally:
        server.stop()
    expected = {"group": args.seats, "private": 1}
    lines = [
        "## Booking under contention (PostgreSQL)",
        "",
        f"{args.clients} signed-in clients, gunicorn with 4 sync workers, all posting at the same "
        "moment (a barrier).",
        "",
        "| race | booked | refused clearly | other | server errors | expected | seconds | req/s |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for name, result in (("group seats", group), ("private slot", private)):
        counts = result["counts"]
        want = expected["group" if name == "group seats" else "private"]
        ok = counts.get("booked", 0) == want and counts.get("refused clearly", 0) == (
            result["requests"] - want
        )
        lines.append(
            f"| {name} | {counts.get('booked', 0)} | {counts.get('refused clearly', 0)} | "
            f"{counts.get('other', 0)} | {counts.get('server error', 0)} | "
            f"{want} booked, the rest refused — {'met' if ok else 'NOT met'} | "
            f"{result['seconds']:.2f} | {result['requests'] / result['seconds']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    return text


if __name__ == "__main__":
    main()
