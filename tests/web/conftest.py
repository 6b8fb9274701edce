"""The world of the route crawls (tests/web/test_authorization_matrix.py and
tests/web/test_hostile_ids_and_dates.py), built and signed in once per module.

Each of their ~140 cases per module needs the same world (tests.web.test_authorization_matrix
.build_world) with every kind of person signed in. Building it through the models and
signing ten people in took about a second a case; now one app per module builds it once,
every row is kept (DatabaseSnapshot) with each person's session cookie, and each case gets
every table back exactly as built (ids included), whatever the case before it wrote, and
fresh clients carrying those cookies. After each case every table is emptied, as after any
test, so the module's other tests find a fresh install.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from familylink.extensions import db
from familylink.models.types import utcnow
from tests.conftest import (
    DatabaseSnapshot,
    _app_emptied_afterwards,
    _empty_all_tables,
    app_settings,
    client_with_session,
    session_cookie_of,
)
from tests.web.test_authorization_matrix import SIGNED_IN, World, build_world

# A person's session ends after SESSION_IDLE_MINUTES (30) without a request, counted from
# the snapshot's last-seen time: a world older than this is built again, so that no case
# quietly asks as a signed-out visitor.
REBUILD_AFTER = timedelta(minutes=10)


@dataclass
class SignedInWorld:
    app: Flask
    world: World
    cookies: dict[str, str]  # actor -> their session cookie (no entry: anonymous)

    def client(self, actor: str) -> FlaskClient:
        """A fresh test client, signed in as `actor` (anonymous: no cookie)."""
        return client_with_session(self.app, self.cookies.get(actor))


class _WorldOfTheModule:
    def __init__(self, app: Flask):
        self.app = app
        self.built_at: datetime | None = None
        self.snapshot: DatabaseSnapshot | None = None
        self.signed_in: SignedInWorld | None = None

    def fresh(self) -> SignedInWorld:
        if self.built_at is None or utcnow() - self.built_at > REBUILD_AFTER:
            self._build()
        else:
            with self.app.app_context():
                self.snapshot.restore()
                db.session.remove()
        return self.signed_in

    def _build(self) -> None:
        with self.app.app_context():
            db.session.rollback()
            _empty_all_tables()
            db.session.remove()
        self.built_at = utcnow()
        world = build_world(self.app)
        cookies = {actor: session_cookie_of(self.app, world.emails[actor]) for actor in SIGNED_IN}
        with self.app.app_context():
            self.snapshot = DatabaseSnapshot()
            db.session.remove()
        self.signed_in = SignedInWorld(self.app, world, cookies)


@pytest.fixture(scope="module")
def _crawl_world(_schema, database_url):
    for app in _app_emptied_afterwards(app_settings(database_url)):
        yield _WorldOfTheModule(app)


@pytest.fixture
def signed_in_world(_crawl_world) -> SignedInWorld:
    """The crawl's world as built, everyone signed in; every table emptied afterwards."""
    yield _crawl_world.fresh()
    with _crawl_world.app.app_context():
        db.session.rollback()
        _empty_all_tables()
        db.session.remove()
