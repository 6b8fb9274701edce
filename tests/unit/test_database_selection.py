"""Which tests the PostgreSQL run of `make test` keeps (`--database-tests-only`)."""

from pathlib import Path

import pytest

from tests.conftest import _uses_the_test_database


class _Item:
    """What the selection reads of a collected test."""

    def __init__(self, *, fixtures=(), markers=()):
        self.fixturenames = list(fixtures)
        self.path = Path(__file__)
        self._markers = {name: getattr(pytest.mark, name) for name in markers}

    def get_closest_marker(self, name):
        return self._markers.get(name)


def test_a_test_with_the_database_fixture_is_kept_and_one_without_is_left_out():
    assert _uses_the_test_database(_Item(fixtures=["app", "database_url"]))
    assert _uses_the_test_database(_Item(markers=["postgres"]))
    assert not _uses_the_test_database(_Item(fixtures=["now"]))


def test_a_test_marked_sqlite_only_is_left_out_though_it_uses_the_database():
    item = _Item(fixtures=["app", "database_url"], markers=["sqlite_only"])
    assert not _uses_the_test_database(item)
