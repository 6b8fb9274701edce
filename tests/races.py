"""Helpers for races between two transactions on PostgreSQL: one side holds its transaction
open while the other is seen waiting for a lock (pg_stat_activity)."""

import time

from sqlalchemy import text

from familylink.extensions import db

#: How long a side waits, at most, to see the other one blocked on its lock.
WAIT_LIMIT = 30


def someone_waits_for_a_lock() -> None:
    """Return once another session of this database waits for a lock (or WAIT_LIMIT)."""
    deadline = time.monotonic() + WAIT_LIMIT
    with db.engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.02)
