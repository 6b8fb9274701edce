"""A page never fails on a pooled connection the server has dropped; a page on a
connection in use a moment ago sends the server nothing before its own statements; and the
family pages leave the statements psycopg prepared on a connection in place.

The app runs with production's engine settings here (the other tests turn pinging off).
"""

import psycopg
import pytest
from sqlalchemy import make_url, text

from familylink import config, extensions
from familylink.extensions import db
from familylink.models import Role
from tests.factories import saved_user
from tests.unit.test_served_imports import _loaded

PAGE = "/account/"


@pytest.fixture
def settings_override():
    return {"SQLALCHEMY_ENGINE_OPTIONS": config.from_environment()["SQLALCHEMY_ENGINE_OPTIONS"]}


@pytest.fixture
def signed_in(app, client, auth):
    saved_user(app, Role.FAMILY)
    auth.login("maria@example.org")
    assert client.get(PAGE).status_code == 200  # the pool holds a used connection now
    return client


@pytest.fixture
def postgresql_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite: a file, no server to drop a connection")


def _pooled_backends(app) -> list[int]:
    """The server process behind each connection idle in the app's pool (each checked out at
    once, so each is a different one, then given back)."""
    with app.app_context():
        engine = db.engine
    held = [engine.connect() for _ in range(engine.pool.checkedin())]
    pids = [connection.scalar(text("SELECT pg_backend_pid()")) for connection in held]
    for connection in held:
        connection.rollback()
        connection.close()
    return pids


def _kill(database_url: str, pids: list[int]) -> None:
    """What a server restart or an administrator does to each of them (a FATAL message, then
    the socket's end), waiting until each process has gone."""
    url = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as admin:
        for pid in pids:
            assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]


def test_a_page_after_the_server_dropped_the_pooled_connections_still_answers(
    postgresql_only, app, signed_in, database_url
):
    dropped = _pooled_backends(app)
    assert dropped
    _kill(database_url, dropped)

    assert signed_in.get(PAGE).status_code == 200
    assert not set(_pooled_backends(app)) & set(dropped)


def test_a_connection_in_use_a_moment_ago_is_not_pinged(app, signed_in, monkeypatch):
    pings = []
    with app.app_context():
        dialect_class = type(db.engine.dialect)
    original = dialect_class.do_ping
    monkeypatch.setattr(
        dialect_class, "do_ping", lambda self, c: pings.append(c) or original(self, c)
    )
    monkeypatch.setattr(extensions, "_answers", lambda c: pings.append(c) or True, raising=False)

    assert signed_in.get(PAGE).status_code == 200
    assert signed_in.get(PAGE).status_code == 200
    assert pings == []


def test_a_connection_idle_past_the_limit_is_pinged_and_replaced_if_silent(
    postgresql_only, app, signed_in, monkeypatch
):
    # A firewall may forget an idle connection without a word: nothing to read on the
    # socket, yet the connection is gone. Past the idle limit, the pool asks it first.
    before = set(_pooled_backends(app))
    asked = []
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", -1)
    monkeypatch.setattr(extensions, "_answers", lambda c: asked.append(c) or False)

    assert signed_in.get(PAGE).status_code == 200
    assert asked
    monkeypatch.undo()
    assert set(_pooled_backends(app)) != before


def test_a_worker_serving_sqlite_does_not_load_psycopg_for_the_check(tmp_path):
    assert "psycopg" not in _loaded(tmp_path)


def test_the_ping_of_a_long_idle_connection_leaves_it_as_it_was(postgresql_only, app):
    with app.app_context():
        raw = db.session.connection().connection.dbapi_connection
        db.session.rollback()
        assert extensions._answers(raw)
        assert raw.autocommit is False
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


@pytest.mark.parametrize("path", ["/family/", "/learn/modules/what-iop-is?patient={jordan}"])
def test_a_family_page_keeps_the_statements_prepared_on_its_connection(
    postgresql_only, app, client, auth, reading_world, path
):
    # psycopg prepares a statement on its fifth run on a connection, and forgets every one
    # it prepared (DEALLOCATE ALL) at a ROLLBACK, and at a ROLLBACK TO SAVEPOINT as long as
    # that statement is not prepared itself: a page rolling back would run each unprepared.
    ids = reading_world()
    auth.login("maria@example.org")
    page = path.format(jordan=ids["jordan"])
    for _ in range(8):
        assert client.get(page).status_code == 200

    with app.app_context():
        engine = db.engine
    held = [engine.connect() for _ in range(engine.pool.checkedin())]
    try:
        prepared = [c.scalar(text("SELECT count(*) FROM pg_prepared_statements")) for c in held]
    finally:
        for connection in held:
            connection.rollback()
            connection.close()
    assert max(prepared) >= 3
