"""Reminder delivery rate: FamilyLink's outbox sender against plain smtplib (prints figures).

    .venv/bin/python bench/reminders.py [--count 10000] [--database sqlite|postgresql|both]

Seeds sessions whose COUNT reminders are due, runs the real sweep (`reminders.run_sweep`) and
the real sender (`mail.send_pending`, as `flask mail send` does) against a local aiosmtpd
sink (its own process). Just before and just after the sender, COUNT pre-built messages of
the same size go with plain smtplib over one connection to the same sink; the mean of those
two runs is the baseline. Prints both rates and their ratio, the sweep's seconds, and on
PostgreSQL the rate of two sender processes at once on the same emails queued again.
The databases are throwaway: a temporary SQLite file, and the PostgreSQL database named by
--pg-url (dropped and recreated tables; never point it at real data).
"""

from __future__ import annotations

import argparse
import multiprocessing
import smtplib
import socket
import sys
import tempfile
import time
from datetime import timedelta
from email.policy import SMTP
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import func, select, text, update  # noqa: E402

from bench.harness import say  # noqa: E402
from familylink import create_app  # noqa: E402
from familylink.extensions import db  # noqa: E402
from familylink.models import OutboxEmail, OutboxStatus, Role, User  # noqa: E402
from familylink.models.types import utcnow  # noqa: E402
from familylink.services import mail, reminders  # noqa: E402
from familylink.services.mail import delivery  # noqa: E402
from familylink.services.program import get_program  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/familylink_bench"


class CountingSink:
    """Accepts every message and counts it; nothing is stored."""

    def __init__(self, counter):
        self.counter = counter

    async def handle_DATA(self, server, session, envelope):
        with self.counter.get_lock():
            self.counter.value += 1
        return "250 OK"


def serve_sink(port: int, counter, ready, stop) -> None:
    """The sink in a process of its own, as a real mail server would be: it does not
    compete with the sender for the interpreter lock."""
    controller = Controller(CountingSink(counter), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class Sink:
    def __init__(self):
        self.port = free_port()
        self.counter = multiprocessing.Value("i", 0)
        self.ready, self.stop = multiprocessing.Event(), multiprocessing.Event()
        self.process = multiprocessing.Process(
            target=serve_sink, args=(self.port, self.counter, self.ready, self.stop)
        )

    @property
    def count(self) -> int:
        return self.counter.value

    @count.setter
    def count(self, value: int) -> None:
        self.counter.value = value

    def __enter__(self):
        self.process.start()
        if not self.ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.process.join(30)


PER_THERAPIST = 60  # one-minute sessions, one a minute, all due for their 2-hour reminder


def seed_due_reminders(count: int, now) -> None:
    """The seeding step: sessions whose 2-hour reminders are due now, `count` in all.

    Each session has one family's seat with one consented family member attending, so it
    gets two reminders (the family member's and the patient's). Sessions last a minute and
    start a minute apart, PER_THERAPIST per therapist (PostgreSQL refuses overlapping
    appointments of one therapist), so that every 2-hour reminder moment falls in the
    last hour: `queue_due_reminders(now)` then queues exactly `count` reminders.
    """
    from familylink.models import (
        Appointment,
        AppointmentAttendee,
        AppointmentFamily,
        SessionType,
    )
    from tests.factories import create_consent

    booked_at = now - timedelta(days=2)
    sessions = count // 2
    families = min(sessions, 250)
    quick = SessionType(name="Family session", duration_minutes=1, location="Room 2")
    db.session.add(quick)
    therapists = [
        User(
            role=Role.THERAPIST,
            name=f"Dr. Therapist{t}",
            email=f"therapist{t}@example.org",
            verified_at=booked_at,
            created_at=booked_at,
        )
        for t in range(-(-sessions // PER_THERAPIST))
    ]
    db.session.add_all(therapists)
    db.session.flush()
    pairs = []
    for i in range(families):
        patient = User(
            role=Role.PATIENT,
            name=f"Patient Person{i}",
            email=f"patient{i}@example.org",
            therapist_id=therapists[0].id,
            verified_at=booked_at,
            created_at=booked_at,
        )
        family = User(
            role=Role.FAMILY,
            name=f"Family Member{i}",
            email=f"family{i}@example.org",
            verified_at=booked_at,
            created_at=booked_at,
        )
        db.session.add_all([patient, family])
        db.session.flush()
        create_consent(patient, family, now=booked_at)
        pairs.append((patient, family))
    for i in range(sessions):
        therapist = therapists[i // PER_THERAPIST]
        starts_at = now + timedelta(minutes=61 + i % PER_THERAPIST)
        patient, family = pairs[i % families]
        appointment = Appointment(
            uid=f"bench-{i}@familylink",
            therapist_id=therapist.id,
            session_type=quick,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=1),
            capacity=1,
            created_at=booked_at,
        )
        seat = AppointmentFamily(
            appointment=appointment, patient_id=patient.id, created_at=booked_at
        )
        db.session.add_all([appointment, seat])
        db.session.add(AppointmentAttendee(seat=seat, user_id=family.id, added_at=booked_at))
    db.session.commit()


def prebuilt_messages(app, count: int) -> list[tuple[str, str, bytes]]:
    """`count` messages exactly as the sender builds them, built before timing starts."""
    with app.app_context():
        row = db.session.scalar(select(OutboxEmail).limit(1))
        sender = ("Family Sessions", app.config["MAIL_DEFAULT_SENDER"])
        data = delivery.build_message(row, f"{sender[0]} <{sender[1]}>").as_bytes(policy=SMTP)
        return [(sender[1], row.to_address, data) for _ in range(count)]


def plain_smtplib_seconds(messages: list[tuple[str, str, bytes]], sink: Sink) -> float:
    """Seconds plain smtplib takes to send `messages` over one connection to the sink."""
    sink.count = 0
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
        for sender, to, data in messages:
            smtp.sendmail(sender, [to], data)
    seconds = time.perf_counter() - started
    assert sink.count == len(messages)
    return seconds


def ensure_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        ):
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def bench_app(url: str, port: int):
    return create_app(
        {
            "SECRET_KEY": "benchmark-secret-key-not-for-production",
            "SECRETS_KEYS": "7vY2mvLMaTUSb5ogjqrwPxtDN7HuQSumKUBysuHDL8o=",  # benchmarks only
            "SQLALCHEMY_DATABASE_URI": url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": port,
            "DEV_MAILBOX": False,
            "SERVER_NAME": "familylink.test",
        }
    )


def sender_process(url: str, port: int, ready, go) -> None:
    """One more sender, as a second `flask mail send` would be: its own process and app."""
    app = bench_app(url, port)
    with app.app_context():
        get_program()  # loaded before the clock starts, like the single sender's
        ready.release()
        go.wait()
        mail.send_pending(now=utcnow(), worker=f"bench-{multiprocessing.current_process().pid}")


# A sent row keeps no message (delivery.CLEARED); the messages are kept here before the first
# pass, so the several senders deliver the same emails again, not empty ones.
KEEP_MESSAGES = (
    "CREATE TABLE bench_messages AS"
    " SELECT id, text_body, html_body, attachment_data FROM outbox_emails"
)
RESTORE_MESSAGES = (
    "UPDATE outbox_emails SET text_body = m.text_body, html_body = m.html_body,"
    " attachment_data = m.attachment_data FROM bench_messages AS m WHERE outbox_emails.id = m.id"
)


def senders_seconds(app, url: str, sink: Sink, senders: int, count: int) -> float:
    """Queue the same emails again and time `senders` processes delivering them together."""
    with app.app_context():
        db.session.execute(text(RESTORE_MESSAGES))
        db.session.execute(text("DROP TABLE bench_messages"))
        emptied = select(func.count()).where(OutboxEmail.text_body == "")
        assert db.session.scalar(emptied) == 0, "the messages were not put back"
        db.session.execute(
            update(OutboxEmail).values(
                status=OutboxStatus.PENDING, attempts=0, sent_at=None, claimed_by=None
            )
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    spawn = multiprocessing.get_context("spawn")
    ready, go = spawn.Semaphore(0), spawn.Event()
    processes = [
        spawn.Process(target=sender_process, args=(url, sink.port, ready, go))
        for _ in range(senders)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.acquire()
    sink.count = 0
    started = time.perf_counter()
    go.set()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - started
    assert all(process.exitcode == 0 for process in processes)
    with app.app_context():
        sent = db.session.scalar(
            select(func.count()).where(OutboxEmail.status == OutboxStatus.SENT)
        )
    assert sent == count == sink.count, (sent, count, sink.count)
    return seconds


def run(database: str, url: str, count: int, sink: Sink, senders: int = 1) -> dict:
    app = bench_app(url, sink.port)
    with app.app_context():
        db.drop_all()
        db.create_all()
        now = utcnow()
        started = time.perf_counter()
        say(f"[{database}] seeding {count:,} due reminders…")
        seed_due_reminders(count, now)
        seeded = time.perf_counter() - started

        started = time.perf_counter()
        say(f"[{database}] reminder sweep…")
        queued = reminders.run_sweep(now)
        db.session.commit()  # as the worker and `flask reminders send` do
        sweep_seconds = time.perf_counter() - started
        assert queued == count, (queued, count)
        assert reminders.run_sweep(now) == 0  # a second sweep queues nothing
        db.session.commit()

        # Plain smtplib runs just before and just after the sender, on the same messages:
        # the machine's load drifts, and the mean of the two brackets it.
        messages = prebuilt_messages(app, count)
        if senders > 1:
            db.session.execute(text("DROP TABLE IF EXISTS bench_messages"))  # a run stopped
            db.session.execute(text(KEEP_MESSAGES))
            db.session.commit()
        say(f"[{database}] plain smtplib, then the sender, then plain smtplib again…")
        raw_before = plain_smtplib_seconds(messages, sink)
        sink.count = 0
        started = time.perf_counter()
        report = mail.send_pending(now=now, worker="bench")
        sender_seconds = time.perf_counter() - started
        sent = db.session.scalar(
            select(func.count()).where(OutboxEmail.status == OutboxStatus.SENT)
        )
        assert report.sent == count == sent == sink.count, (report, sent, sink.count)
    raw_after = plain_smtplib_seconds(messages, sink)
    several_rate = None
    if senders > 1:
        say(f"[{database}] {senders} senders at once…")
        several_rate = count / senders_seconds(app, url, sink, senders, count)
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
    return {
        "database": database,
        "seed_s": seeded,
        "sweep_s": sweep_seconds,
        "familylink_rate": count / sender_seconds,
        "smtplib_rate": count / ((raw_before + raw_after) / 2),
        "several_rate": several_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="emails per run")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="a THROWAWAY database")
    args = parser.parse_args()

    results = []
    with Sink() as sink, tempfile.TemporaryDirectory() as folder:
        if args.database in ("sqlite", "both"):
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
            results.append(run("SQLite", url, args.count, sink))
        if args.database in ("postgresql", "both"):
            ensure_postgres(args.pg_url)
            results.append(run("PostgreSQL", args.pg_url, args.count, sink, senders=2))

    print(f"{args.count} reminders each; sink: aiosmtpd in its own process on 127.0.0.1")
    print("FamilyLink/s: the real sender delivering the reminders the sweep queued")
    print("smtplib/s: plain smtplib, mean of a run just before and one just after the sender")
    print("2 senders/s: two sender processes at once, on the same emails queued again")
    print("sweep s: the reminder sweep queueing them all")
    print(
        f"{'database':<12}{'FamilyLink/s':>14}{'smtplib/s':>12}{'ratio':>8}"
        f"{'2 senders/s':>13}{'sweep s':>9}{'seed s':>9}"
    )
    for r in results:
        ratio = r["familylink_rate"] / r["smtplib_rate"]
        several = "-" if r["several_rate"] is None else f"{r['several_rate']:.0f}"
        print(
            f"{r['database']:<12}{r['familylink_rate']:>14.0f}{r['smtplib_rate']:>12.0f}"
            f"{ratio:>8.2f}{several:>13}{r['sweep_s']:>9.2f}{r['seed_s']:>9.1f}"
        )


if __name__ == "__main__":
    main()
