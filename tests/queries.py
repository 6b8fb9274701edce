"""Reads for tests that check what a request wrote, each in its own app context (a request
made through the test client has ended its own)."""

from sqlalchemy import func, select

from familylink.extensions import db


def count_rows(app, model, *where) -> int:
    """How many rows of `model` match every condition in `where`."""
    with app.app_context():
        return db.session.scalar(select(func.count(model.id)).where(*where))
