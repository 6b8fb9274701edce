"""Prepare a freshly seeded demo database for the page benchmarks; print what they need.

Run with DATABASE_URL set: `python -m bench.demo_setup [--open-hours]`. Prints JSON with the
ids, the therapist's authenticator secret and (with --open-hours) a list of free slots.
"""

from __future__ import annotations

import argparse
import json
from datetime import time

import pyotp
from sqlalchemy import select

from familylink import create_app
from familylink.extensions import db
from familylink.models import AvailabilityWindow, LearningModule, SessionType, User
from familylink.models.types import utcnow
from familylink.services import booking
from familylink.services.program import program_row

# How far ahead bookings may be made while the booking POST runs: long enough that a fast
# machine does not use up the free slots within the run (28 days gave about 650, which a
# machine doing 80 bookings a second used up in 8 seconds).
OPEN_WEEKS = 12


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--open-hours",
        action="store_true",
        help="give the therapist every hour of every day for OPEN_WEEKS weeks, so the booking "
        "POST has fresh slots",
    )
    args = parser.parse_args(argv)
    app = create_app()
    with app.app_context():
        users = {u.email: u for u in db.session.scalars(select(User))}
        lee, jordan = users["lee@example.org"], users["jordan@example.org"]
        if not lee.totp_secret or not lee.totp_enabled_at:
            lee.totp_secret = pyotp.random_base32()
            lee.totp_enabled_at = utcnow()
        private = db.session.scalars(
            select(SessionType).where(SessionType.capacity == 1).order_by(SessionType.id)
        ).first()
        module = db.session.scalars(select(LearningModule).order_by(LearningModule.order)).first()
        slots = []
        if args.open_hours:
            program_row().booking_horizon_days = OPEN_WEEKS * 7
            for weekday in range(7):
                db.session.add(
                    AvailabilityWindow(
                        therapist_id=lee.id,
                        weekday=weekday,
                        start_time=time(0, 0),
                        end_time=time(23, 59),
                    )
                )
            db.session.flush()
            free = booking.slots_for(lee.id, private, now=utcnow())
            slots = [s.strftime("%Y-%m-%dT%H:%MZ") for s in free]
        db.session.commit()
        print(
            json.dumps(
                {
                    "jordan": jordan.id,
                    "private_type": private.id,
                    "module_slug": module.slug,
                    "lee_secret": lee.totp_secret,
                    "slots": slots,
                }
            )
        )


if __name__ == "__main__":
    main()
