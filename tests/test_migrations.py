"""Migrations build the same schema as the models, on the suite's database engine."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from familylink import create_app, demo
from familylink.extensions import db
from familylink.models import Assignment, FamilyLink, ModuleProgress, Program, User
from familylink.models.accounts import PROGRAM_DEFAULTS
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


def test_upgrade_from_empty_matches_the_models(empty_database_url):
    app = create_app(app_settings(empty_database_url))
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
    app = create_app(app_settings(empty_database_url))
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
    app = create_app(app_settings(empty_database_url))
    with app.app_context():
        upgrade()
        rows = _program_rows()
        db.engine.dispose()
    assert rows == [PROGRAM_DEFAULTS]


def test_the_seed_keeps_a_program_row_made_before_it(empty_database_url):
    app = create_app(app_settings(empty_database_url))
    with app.app_context():
        upgrade(revision="1fccd79c7884")
        with db.engine.begin() as conn:
            conn.execute(insert(Program.__table__), [{**PROGRAM_DEFAULTS, "name": "Lakeside"}])
        upgrade()
        rows = _program_rows()
        db.engine.dispose()
    assert [row["name"] for row in rows] == ["Lakeside"]


# --- Progress per (family member, patient, module): revision 4f2b9d7c1e05 ------------------

BEFORE_PROGRESS_PER_PATIENT = "8d3f6a1c2b7e"


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
    app = create_app(app_settings(empty_database_url))
    with app.app_context():
        upgrade()
        demo.seed(password="demo password long enough", now=NOON, progress=lambda _: None)
        db.session.commit()
        db.session.remove()
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
                    recipient_email="kim@example.org",
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
