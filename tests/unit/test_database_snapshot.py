"""The snapshot the route crawls start each case from (tests/web/conftest.py): every table
back exactly as taken, whatever was written since, and new rows numbered as they would
have been in the world taken."""

from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, Role, User
from tests.conftest import DatabaseSnapshot
from tests.factories import create_user


def _every_row() -> dict:
    return {
        table.name: sorted(
            (tuple(row) for row in db.session.execute(select(table))), key=lambda row: repr(row)
        )
        for table in db.metadata.sorted_tables
    }


def test_a_restored_snapshot_is_every_row_as_taken_and_new_ids_follow_on(app_ctx):
    kept = create_user(Role.THERAPIST, name="Kept Therapist")
    create_user(Role.PATIENT, name="Kept Patient", therapist=kept)
    deleted = create_user(Role.FAMILY, name="Deleted Later")
    db.session.commit()
    snapshot = DatabaseSnapshot()
    taken = _every_row()
    highest = max(db.session.scalars(select(User.id)))

    kept.name = "Renamed"
    create_user(Role.FAMILY)
    create_user(Role.ADMIN)
    db.session.add(AuditEvent(action="test.write", detail={}))
    db.session.commit()
    db.session.execute(User.__table__.delete().where(User.id == deleted.id))
    db.session.commit()

    snapshot.restore()
    db.session.expire_all()
    assert _every_row() == taken
    assert db.session.get(User, kept.id).name == "Kept Therapist"
    assert db.session.get(User, deleted.id).name == "Deleted Later"
    newcomer = create_user(Role.FAMILY)
    db.session.commit()
    assert newcomer.id == highest + 1
