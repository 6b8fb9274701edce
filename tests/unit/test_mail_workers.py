"""Sender processes sharing the outbox: real `flask mail send` processes, a real SMTP sink.

Every delivered message carries X-FamilyLink-Id (its outbox row), so the sink can count
how often each row arrived.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select

from familylink.extensions import db
from familylink.models import OutboxEmail, OutboxStatus
from familylink.models.types import utcnow

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mail_ctx(mail_app):
    with mail_app.app_context():
        yield mail_app


def seed_outbox(count: int, now) -> list[int]:
    """`count` due rows, inserted in one statement (rendering is not what these tests test)."""
    db.session.execute(
        insert(OutboxEmail),
        [
            {
                "kind": "password_reset",
                "dedupe_key": f"worker-test:{i}",
                "to_address": f"person{i}@example.org",
                "subject": "Reset your password",
                "text_body": f"Message {i}",
                "html_body": f"<p>Message {i}</p>",
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
            for i in range(count)
        ],
    )
    db.session.commit()
    return list(db.session.scalars(select(OutboxEmail.id).order_by(OutboxEmail.id)))


def worker_env(database_url: str, sink, **settings) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY="worker-test-secret-long-enough-for-production",
        # Outside debug the app refuses to start without one (issue 17).
        SECRETS_KEYS=Fernet.generate_key().decode(),
        SERVER_NAME="familylink.test",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(sink.port),
        MAIL_DEFAULT_SENDER="no-reply@familylink.localhost",
        FLASK_DEBUG="0",
        DEV_MAILBOX="0",
    )
    env.update({key: str(value) for key, value in settings.items()})
    return env


def start_sender(env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "mail", "send", *extra],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    return output


def _statuses() -> dict[str, int]:
    db.session.rollback()  # see what the other processes committed
    rows = db.session.execute(
        select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)
    ).all()
    return dict(rows)


def test_concurrent_sender_processes_deliver_each_email_exactly_once(
    mail_ctx, smtp_server, database_url, now
):
    postgres = db.engine.dialect.name == "postgresql"
    # PostgreSQL shares with SKIP LOCKED; SQLite serialises claims on its write lock.
    processes, count = (4, 2000) if postgres else (2, 300)
    ids = seed_outbox(count, now)
    env = worker_env(database_url, smtp_server, MAIL_BATCH_SIZE=20)
    senders = [start_sender(env) for _ in range(processes)]
    try:
        for sender in senders:
            finish(sender)
    finally:
        for sender in senders:  # a failed assertion must not leave the others running
            if sender.poll() is None:
                sender.kill()
                sender.communicate()
    received = Counter(smtp_server.outbox_ids())
    assert set(received) == set(ids)
    assert max(received.values()) == 1
    assert _statuses() == {OutboxStatus.SENT: count}


def test_a_killed_sender_loses_nothing_and_repeats_at_most_the_message_in_flight(
    mail_ctx, smtp_server, database_url, now
):
    ids = seed_outbox(10, now)
    smtp_server.handler.stall_at = 4  # the server holds back its 250 for the fourth message
    env = worker_env(database_url, smtp_server, MAIL_BATCH_SIZE=10, MAIL_LEASE_SECONDS=60)
    victim = start_sender(env)
    try:
        assert smtp_server.handler.stalled.wait(timeout=120), "the sender never got that far"
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
    in_flight = ids[3]
    # The server now accepts the message the dead sender was waiting on (it had the whole
    # message): that is the window the README names, so this row may arrive twice.
    smtp_server.handler.resume.set()
    assert _statuses() == {OutboxStatus.SENT: 3, OutboxStatus.PENDING: 7}

    # Before the lease ends nobody else touches the dead sender's rows ...
    finish(start_sender(env))
    assert _statuses() == {OutboxStatus.SENT: 3, OutboxStatus.PENDING: 7}
    # ... and after it, another sender delivers them.
    after_lease = (utcnow() + timedelta(seconds=61)).isoformat()
    finish(start_sender(env, "--now", after_lease))

    received = Counter(smtp_server.outbox_ids())
    assert set(received) == set(ids)
    assert {row for row, times in received.items() if times > 1} <= {in_flight}
    assert _statuses() == {OutboxStatus.SENT: 10}
