"""Migrations build the same schema as the models, on the suite's database engine."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from familylink import create_app
from familylink.extensions import db
from familylink.models import Program
from familylink.models.accounts import PROGRAM_DEFAULTS
from tests.conftest import app_settings, ensure_postgres_database


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
    # Columns without a default (the after-hours phone) start empty.
    assert rows == [{**PROGRAM_DEFAULTS, "after_hours_phone": None}]


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


def test_the_after_hours_phone_migration_upgrades_and_downgrades(empty_database_url):
    app = create_app(app_settings(empty_database_url))
    with app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE programs SET after_hours_phone = '555-201-3344'"))
        downgrade(revision="8d3f6a1c2b7e")
        with db.engine.connect() as conn:
            columns = list(conn.execute(text("SELECT * FROM programs")).keys())
        assert "after_hours_phone" not in columns
        upgrade()
        with db.engine.connect() as conn:
            phones = conn.execute(text("SELECT after_hours_phone FROM programs")).scalars().all()
        db.engine.dispose()
    assert phones == [None]
