"""Reads for tests that check what a request wrote, each in its own app context (a request
made through the test client has ended its own), and what a request read (`count_queries`)."""

import re

from sqlalchemy import func, select

from familylink.extensions import db


def count_rows(app, model, *where) -> int:
    """How many rows of `model` match every condition in `where`."""
    with app.app_context():
        return db.session.scalar(select(func.count(model.id)).where(*where))


_ONE_PATIENTS_CONSENT = re.compile(r"consent_records\.patient_id = (\?|%\()")


def consent_reads(counter) -> int:
    """Statements of a `count_queries` counter asking which consent of one patient is in
    force for one family member (the gate's question for a page about that patient, and
    `active_consent`'s); a list of many people's consents (`family_in_force`, the same-day
    warning's `linked_patients`) is another question, and so is the lock a booking takes on
    its members' consent rows before reading them afresh (`access.hold_consents`: FOR SHARE,
    then one list question for all of them), which exists to be a second read."""
    return sum(
        1 for s in counter.statements if _ONE_PATIENTS_CONSENT.search(s) and "FOR SHARE" not in s
    )


_ONE_MEMBERS_CONSENTS = re.compile(r"family_links\.family_user_id = (\?|%\()")


def member_consent_lists(counter) -> int:
    """Statements of a `count_queries` counter listing one family member's consents about
    all their patients (`access.linked_patients`, `family_patients`), not about one."""
    return sum(
        1
        for s in counter.statements
        if _ONE_MEMBERS_CONSENTS.search(s) and not _ONE_PATIENTS_CONSENT.search(s)
    )
