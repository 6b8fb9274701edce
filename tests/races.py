"""Helpers for races between two transactions on PostgreSQL: one side holds its transaction
open while the other is seen waiting for a lock (pg_stat_activity)."""

import threading
import time

from sqlalchemy import text

from familylink.extensions import db

#: How long a side waits, at most, to see the other one blocked on its lock.
WAIT_LIMIT = 30


def someone_waits_for_a_lock() -> bool:
    """Return True once another session of this database waits for a lock; False after
    WAIT_LIMIT with nobody waiting."""
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
                return True
            time.sleep(0.02)
    return False


def race(app, first, second) -> dict:
    """`first` runs and holds its transaction open until `second`, begun after it, waits
    for a lock; then `first` commits and `second` goes on. Each side's outcome: what it
    returned, or the exception it raised (its transaction rolled back); "waited": whether
    `second` was seen waiting (else `first` committed after WAIT_LIMIT)."""
    holding = threading.Event()
    outcome = {}

    def side(name, action, *, before=None, after=None):
        with app.app_context():
            try:
                if before:
                    before()
                outcome[name] = action()
                if after:
                    after()
                db.session.commit()
            except Exception as error:  # the outcome the test asserts on
                db.session.rollback()
                outcome[name] = error
            finally:
                holding.set()
                db.session.remove()

    def held():
        holding.set()
        outcome["waited"] = someone_waits_for_a_lock()

    threads = [
        threading.Thread(target=side, args=("first", first), kwargs={"after": held}),
        threading.Thread(
            target=side,
            args=("second", second),
            kwargs={"before": lambda: holding.wait(timeout=WAIT_LIMIT)},
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * WAIT_LIMIT)
    return outcome
