"""Migrations build the same schema as the models, on the suite's database engine."""

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import bindparam, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from familylink import bind_migrations, create_app, demo
from familylink.extensions import db
from familylink.models import (
    Assignment,
    ConsentClosure,
    ConsentRecord,
    FamilyLink,
    ModuleProgress,
    Program,
    ProgressUpdateRecipient,
    User,
)
from familylink.models.accounts import PROGRAM_DEFAULTS
from familylink.models.types import UTCDateTime
from tests.conftest import app_settings, ensure_postgres_database
from tests.moments import NOON


@pytest.fixture
def empty_database_url(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    url = make_url(database_url).set(database=make_url(database_url).database + "_migrations")
    rendered = url.render_as_string(hide_password=False)
    ensure_postgres_database(rendered)
    engine = create_engine(rendered)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return rendered


def _migrating_app(database_url):
    # As `flask db` has it: a test builds the app outside any flask command.
    app = create_app(app_settings(database_url))
    bind_migrations(app)
    return app


def test_upgrade_from_empty_matches_the_models(empty_database_url):
    app = _migrating_app(empty_database_url)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "render_as_batch": True}
            )
            differences = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert differences == []


def test_the_migrations_make_the_audit_log_append_only_on_postgresql(empty_database_url):
    if not empty_database_url.startswith("postgresql"):
        pytest.skip("the append-only trigger is PostgreSQL's")
    app = _migrating_app(empty_database_url)
    with app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_events (at, action, outcome) VALUES (now(), 'x', 'success')"
                )
            )
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text("UPDATE audit_events SET action = 'y'"))
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events"))
        db.engine.dispose()


def _program_rows() -> list:
    with db.engine.connect() as conn:
        rows = conn.execute(select(Program.__table__)).mappings().all()
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def test_upgrade_from_empty_inserts_the_default_program_row(empty_database_url):
    app = _migrating_app(empty_database_url)
    with app.app_context():
        upgrade()
        rows = _program_rows()
        db.engine.dispose()
    # Columns without a default (the after-hours phone) start empty; families may not book a
    # weekly series until the admin says so (the database's default).
    empty = {"after_hours_phone": None, "video_room_template": None}
    assert rows == [{**PROGRAM_DEFAULTS, **empty, "families_may_book_series": False}]


def test_the_seed_keeps_a_program_row_made_before_it(empty_database_url):
    app = _migrating_app(empty_database_url)
    with app.app_context():
        upgrade(revision="1fccd79c7884")
        with db.engine.begin() as conn:
            conn.execute(insert(Program.__table__), [{**PROGRAM_DEFAULTS, "name": "Lakeside"}])
        upgrade()
        rows = _program_rows()
        db.engine.dispose()
    assert [row["name"] for row in rows] == ["Lakeside"]


def test_episodes_migration_gives_each_patient_episode_one_and_downgrades(empty_database_url):
    from datetime import UTC, datetime

    from flask_migrate import downgrade
    from sqlalchemy import inspect

    from familylink.models import ConsentRecord, User

    start = datetime(2026, 9, 1, 4, 0, tzinfo=UTC)
    end = datetime(2026, 10, 1, 4, 0, tzinfo=UTC)
    app = _migrating_app(empty_database_url)
    with app.app_context():
        upgrade(revision="8d3f6a1c2b7e")
        with db.engine.begin() as conn:
            conn.execute(
                insert(User.__table__),
                [
                    {"id": 1, "email": "t@example.org", "name": "T", "role": "therapist"},
                    {"id": 2, "email": "p@example.org", "name": "P", "role": "patient",
                     "therapist_id": 1},
                ],
            )  # fmt: skip
            # The episode columns of that time (the model has them no more: d2a6f8b0c4e7).
            conn.execute(
                text(
                    "UPDATE users SET episode_start = :start, episode_end = :end WHERE id = 2"
                ).bindparams(
                    bindparam("start", start, type_=UTCDateTime),
                    bindparam("end", end, type_=UTCDateTime),
                ),
            )
            conn.execute(
                insert(ConsentRecord.__table__).values(
                    id=7, patient_id=2, patient_name="P", program_name="X", recipient_name="M",
                    recipient_relationship="Mother", recipient_email="m@example.org",
                    purpose="p", scope_scheduling=True, scope_attendance=False,
                    scope_progress=False, family_visible=False, information_description="i",
                    revocation_statement="r", expiry_kind="episode_end",
                    expiry_days_after_episode=5, expiry_description="e", signature_name="P",
                    signed_at=start, method="portal", attested=False, form_version="1",
                    text_snapshot="t", created_at=start,
                )
            )  # fmt: skip
        upgrade(revision="4e1a9c7d2f60")
        with db.engine.connect() as conn:
            episodes = conn.execute(text("SELECT id, patient_id, number FROM episodes")).all()
            consent_episode = conn.execute(
                text("SELECT episode_id FROM consent_records WHERE id = 7")
            ).scalar()
        downgrade(revision="8d3f6a1c2b7e")
        with db.engine.connect() as conn:
            inspector = inspect(conn)
            tables = inspector.get_table_names()
            consent_columns = {c["name"] for c in inspector.get_columns("consent_records")}
        db.engine.dispose()
    assert [(patient, number) for _, patient, number in episodes] == [(2, 1)]
    assert consent_episode == episodes[0][0]
    assert "episodes" not in tables and "episode_id" not in consent_columns


PERSON_KEYED = "3c9e5a7d1f20"


def _seed_the_demo() -> None:
    """The demo, seeded at head on the migrating app's empty database (a test then takes the
    schema back past its revision with the rows in it)."""
    upgrade()
    demo.seed(password="demo password long enough", now=NOON, progress=lambda _: None)
    db.session.commit()
    db.session.remove()


def _rows(sql: str) -> list:
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def test_consents_and_links_keyed_to_the_person_migrate_a_copy_of_the_demo(empty_database_url):
    """Seed the demo at head, go back past the change, change an address the way the old code
    did (the link kept the old address) and sign a consent to the new one (it reached nobody),
    then upgrade: every consent is bound to the person it was for, and links stay."""
    app = _migrating_app(empty_database_url)
    with app.app_context():
        _seed_the_demo()
        bound = _rows("SELECT id, recipient_user_id FROM consent_records ORDER BY id")
        links = _rows("SELECT patient_id, family_user_id FROM family_links ORDER BY id")
        assert bound and all(user_id is not None for _id, user_id in bound)

        downgrade(revision="8d3f6a1c2b7e")
        # The downgrade puts each link's address back, from the member's account.
        assert _rows(
            "SELECT count(*) FROM family_links l JOIN users u ON u.id = l.family_user_id "
            "WHERE l.recipient_email = lower(u.email)"
        ) == [(len(links),)]
        ((maria_id,),) = _rows("SELECT id FROM users WHERE email = 'maria@example.org'")
        with db.engine.begin() as conn:
            conn.execute(
                text("UPDATE users SET email = 'maria.new@example.org' WHERE id = :id"),
                {"id": maria_id},
            )
            row = dict(
                conn.execute(
                    text(
                        "SELECT * FROM consent_records WHERE recipient_email = "
                        "'maria@example.org' ORDER BY id DESC"
                    )
                )
                .mappings()
                .first()
            )
            row.pop("id")
            row["recipient_email"] = "maria.new@example.org"
            columns = ", ".join(row)
            values = ", ".join(f":{name}" for name in row)
            conn.execute(text(f"INSERT INTO consent_records ({columns}) VALUES ({values})"), row)
            new_id = conn.execute(text("SELECT max(id) FROM consent_records")).scalar()

        upgrade()
        assert (
            _rows(
                "SELECT id, recipient_user_id FROM consent_records "
                f"WHERE id <> {new_id} ORDER BY id"
            )
            == bound
        )
        assert _rows(f"SELECT recipient_user_id FROM consent_records WHERE id = {new_id}") == [
            (maria_id,)
        ]
        assert _rows("SELECT patient_id, family_user_id FROM family_links ORDER BY id") == links
        db.engine.dispose()


# --- Progress per (family member, patient, module): revision 4f2b9d7c1e05 ------------------

BEFORE_PROGRESS_PER_PATIENT = "3c9e5a7d1f20"


def _demo_people(conn) -> dict:
    rows = conn.execute(select(User.email, User.id)).all()
    return {email.split("@")[0]: user_id for email, user_id in rows}


def _old_progress(family_user_id, module_id, reflection, *, shared=True, at=NOON):
    """A progress row as the revision before kept it: per (member, module), no patient."""
    return {
        "family_user_id": family_user_id,
        "module_id": module_id,
        "opened_at": at,
        "reflection": reflection,
        "reflection_shared": shared,
        "updated_at": at,
    }


def _progress_rows(conn) -> dict:
    rows = conn.execute(
        select(
            ModuleProgress.reflection, ModuleProgress.patient_id, ModuleProgress.reflection_shared
        )
    ).all()
    return {reflection: (patient_id, shared) for reflection, patient_id, shared in rows}


def test_the_demos_progress_moves_to_its_patient_and_back(empty_database_url):
    """On a copy of the demo: go back before the revision, keep progress as it was kept then,
    upgrade, and each row is about the patient of its one assignment, or about nobody and
    shared with nobody; downgrading keeps one row per (member, module), sharing less."""
    app = _migrating_app(empty_database_url)
    with app.app_context():
        _seed_the_demo()
        downgrade(revision=BEFORE_PROGRESS_PER_PATIENT)
        with db.engine.begin() as conn:
            people = _demo_people(conn)
            # Maria's weekly sequence about Jordan assigns every module, once each.
            first, second = conn.execute(
                select(Assignment.module_id)
                .where(Assignment.family_user_id == people["maria"])
                .order_by(Assignment.module_id)
                .limit(2)
            ).scalars()
            # Kim has the first module assigned about two patients.
            for patient in ("casey", "sam"):
                conn.execute(
                    insert(Assignment.__table__).values(
                        module_id=first,
                        family_user_id=people["kim"],
                        patient_id=people[patient],
                        assigned_by_id=people["patel"],
                        source="manual",
                        created_at=NOON,
                        release_at=NOON,
                    )
                )
            conn.execute(
                insert(ModuleProgress.__table__),
                [
                    _old_progress(people["maria"], first, "maria, assigned"),
                    _old_progress(people["maria"], second, "maria, private", shared=False),
                    _old_progress(people["luis"], first, "luis, chose it"),
                    _old_progress(people["kim"], first, "kim, two patients"),
                ],
            )
        upgrade()
        with db.engine.begin() as conn:
            assert _progress_rows(conn) == {
                "maria, assigned": (people["jordan"], True),
                "maria, private": (people["jordan"], False),
                "luis, chose it": (None, False),
                "kim, two patients": (None, False),
            }
            # Now Kim keeps one reading about Casey and one about Sam; and she is linked to both.
            conn.execute(
                insert(ModuleProgress.__table__),
                [
                    {**_old_progress(people["kim"], first, f"kim, {p}"), "patient_id": people[p]}
                    for p in ("casey", "sam")
                ],
            )
            conn.execute(
                insert(FamilyLink.__table__).values(
                    patient_id=people["sam"],
                    family_user_id=people["kim"],
                    linked_at=NOON,
                )
            )
        downgrade(revision=BEFORE_PROGRESS_PER_PATIENT)
        with db.engine.begin() as conn:
            rows = conn.execute(
                text("SELECT family_user_id, module_id, reflection_shared FROM module_progress")
            ).all()
            kims = [shared for member, _module, shared in rows if member == people["kim"]]
            marias = {
                module: shared for member, module, shared in rows if member == people["maria"]
            }
            assert len(rows) == 4 and kims == [False]
            assert marias == {first: True, second: False}
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(select(func.count(ModuleProgress.id))).scalar() == 4
        db.engine.dispose()


def _encrypts_and_decrypts(url, *, before: str, revision: str, rows, stored: str, plain: str):
    """Migration `revision` encrypts the value `stored` (a SELECT of one value) that `rows`
    (statements run at `before`) left as `plain`, and its downgrade gives `plain` back."""
    from flask_migrate import downgrade

    from familylink.models.encryption import keyring

    app = _migrating_app(url)
    with app.app_context():
        upgrade(revision=before)
        with db.engine.begin() as conn:
            for statement in rows:
                conn.execute(text(statement), {"yes": True, "plain": plain})
        upgrade(revision=revision)
        with db.engine.connect() as conn:
            token = conn.execute(text(stored)).scalar_one()
        assert token != plain and keyring().decrypt(token.encode()).decode() == plain
        downgrade(revision=before)
        with db.engine.connect() as conn:
            assert conn.execute(text(stored)).scalar_one() == plain
        db.engine.dispose()


THERAPIST_ROW = (
    "INSERT INTO users (id, email, name, role, timezone, active, created_at{extra}) VALUES"
    " (1, 'lee@example.org', 'Lee', 'therapist', 'America/New_York', :yes,"
    " '2026-11-30 00:00:00'{value})"
)


def test_the_totp_migration_encrypts_existing_secrets_and_its_downgrade_decrypts_them(
    empty_database_url,
):
    _encrypts_and_decrypts(
        empty_database_url,
        before="8d3f6a1c2b7e",
        revision="c4e1f7a9b2d3",
        rows=[THERAPIST_ROW.format(extra=", totp_secret", value=", :plain")],
        stored="SELECT totp_secret FROM users WHERE email = 'lee@example.org'",
        plain="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    )


def test_the_room_link_migration_encrypts_pasted_links_and_its_downgrade_decrypts_them(
    empty_database_url,
):
    _encrypts_and_decrypts(
        empty_database_url,
        before="da361f2cac43",
        revision="e7b3c1d9f2a4",
        rows=[
            THERAPIST_ROW.format(extra="", value=""),
            "INSERT INTO session_types (id, name, duration_minutes, capacity, mode, active)"
            " VALUES (1, 'Video', 50, 1, 'video', :yes)",
            "INSERT INTO appointments (uid, therapist_id, session_type_id, starts_at, ends_at,"
            " capacity, status, sequence, created_at, room_link) VALUES ('a@familylink', 1, 1,"
            " '2026-12-03 15:00:00', '2026-12-03 15:50:00', 1, 'scheduled', 0,"
            " '2026-11-30 00:00:00', :plain)",
        ],
        stored="SELECT room_link FROM appointments",
        plain="https://zoom.example.org/j/123456789?pwd=a-passcode",
    )


def test_the_after_hours_phone_migration_upgrades_and_downgrades(empty_database_url):
    app = _migrating_app(empty_database_url)
    with app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE programs SET after_hours_phone = '555-201-3344'"))
        downgrade(revision="c4e1f7a9b2d3")
        with db.engine.connect() as conn:
            columns = list(conn.execute(text("SELECT * FROM programs")).keys())
        assert "after_hours_phone" not in columns
        upgrade()
        with db.engine.connect() as conn:
            phones = conn.execute(text("SELECT after_hours_phone FROM programs")).scalars().all()
        db.engine.dispose()
    assert phones == [None]


def test_the_progress_withdrawal_migration_withdraws_releases_a_later_closure_ended(
    empty_database_url,
):
    """f3a8c6d1b2e7 on a copy of the demo: a release is withdrawn as of the first revocation
    or expiry of that patient's consent to that member closed after it; a closure before the
    release, or another patient's consent to the member, leaves the release alone."""
    recipients = ProgressUpdateRecipient.__table__
    app = _migrating_app(empty_database_url)
    with app.app_context():
        _seed_the_demo()
        downgrade(revision="e7b3c1d9f2a4")
        with db.engine.begin() as conn:
            people = _demo_people(conn)
            # Ada's update from Sam was released after her first consent to him expired.
            update_id, released_at = conn.execute(
                select(recipients.c.update_id, recipients.c.released_at).where(
                    recipients.c.family_user_id == people["ada"],
                    recipients.c.released_at.is_not(None),
                )
            ).one()
            open_consent = conn.scalar(
                select(ConsentRecord.id)
                .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
                .where(
                    ConsentRecord.patient_id == people["sam"],
                    ConsentRecord.recipient_user_id == people["ada"],
                    ConsentClosure.id.is_(None),
                )
            )
            revoked_at = released_at + timedelta(hours=20)
            conn.execute(
                insert(ConsentClosure.__table__).values(
                    consent_id=open_consent, reason="revoked", closed_at=revoked_at
                )
            )
            # Pat (whose consent from Riley was revoked after this) never had one from Sam.
            conn.execute(
                insert(recipients).values(
                    update_id=update_id,
                    family_user_id=people["pat"],
                    released_at=NOON - timedelta(days=3),
                )
            )
        upgrade()
        with db.engine.connect() as conn:
            withdrawn = dict(
                conn.execute(
                    select(recipients.c.family_user_id, recipients.c.withdrawn_at).where(
                        recipients.c.update_id == update_id
                    )
                ).all()
            )
        db.engine.dispose()
    assert withdrawn == {people["ada"]: revoked_at, people["pat"]: None}


def test_the_readings_withdrawal_migration_withdraws_readings_a_later_closure_ended(
    empty_database_url,
):
    """a7d2e9c4b815 on a copy of the demo: a reading released before a revocation of that
    patient's consent to that member is withdrawn (stopped) as of it, and so are the
    member's notes on it; a reading released, and notes opened, after it stay as they are."""
    assignments, notes = Assignment.__table__, ModuleProgress.__table__
    app = _migrating_app(empty_database_url)
    with app.app_context():
        _seed_the_demo()
        downgrade(revision="f3a8c6d1b2e7")
        revoked_at = NOON - timedelta(days=2)
        with db.engine.begin() as conn:
            people = _demo_people(conn)
            consent_id, patient_id, member_id = conn.execute(
                select(ConsentRecord.id, ConsentRecord.patient_id, ConsentRecord.recipient_user_id)
                .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
                .where(ConsentRecord.recipient_user_id.is_not(None), ConsentClosure.id.is_(None))
                .order_by(ConsentRecord.id)
            ).first()
            pair = {"patient_id": patient_id, "family_user_id": member_id}
            conn.execute(assignments.delete().where(assignments.c.family_user_id == member_id))
            conn.execute(notes.delete().where(notes.c.family_user_id == member_id))
            modules = list(conn.scalars(text("SELECT id FROM learning_modules ORDER BY id")))
            for module_id, released in ((modules[0], NOON - timedelta(days=3)), (modules[1], NOON)):
                conn.execute(
                    insert(assignments).values(
                        module_id=module_id,
                        assigned_by_id=people["lee"],
                        release_at=released,
                        released_at=released,
                        created_at=released,
                        source="manual",
                        **pair,
                    )
                )
                conn.execute(
                    insert(notes).values(
                        module_id=module_id,
                        opened_at=released,
                        updated_at=released,
                        reflection=f"notes {module_id}",
                        reflection_shared=False,
                        **pair,
                    )
                )
            conn.execute(
                insert(ConsentClosure.__table__).values(
                    consent_id=consent_id, reason="revoked", closed_at=revoked_at
                )
            )
        upgrade()
        with db.engine.connect() as conn:
            stopped = dict(
                conn.execute(
                    select(assignments.c.module_id, assignments.c.stopped_at).where(
                        assignments.c.family_user_id == member_id
                    )
                ).all()
            )
            withdrawn = dict(
                conn.execute(
                    select(notes.c.module_id, notes.c.withdrawn_at).where(
                        notes.c.family_user_id == member_id
                    )
                ).all()
            )
        db.engine.dispose()
    assert stopped == {modules[0]: revoked_at, modules[1]: None}
    assert withdrawn == {modules[0]: revoked_at, modules[1]: None}
