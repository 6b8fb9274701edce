"""SQL statements per page: few, and the same with little or much data (no N+1)."""

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import Role, User
from tests.factories import create_consent, create_user

MAX_QUERIES = 8
THERAPIST = "therapist@example.org"
FAMILY = "family@example.org"


def _add_linked_patients(app, count: int) -> None:
    """Patients of THERAPIST, each with a consent to FAMILY (created on first call)."""
    with app.app_context():
        therapist = db.session.scalar(select(User).where(User.email == THERAPIST))
        family = db.session.scalar(select(User).where(User.email == FAMILY))
        therapist = therapist or create_user(Role.THERAPIST, email=THERAPIST)
        family = family or create_user(Role.FAMILY, email=FAMILY)
        for _ in range(count):
            patient = create_user(Role.PATIENT, therapist=therapist)
            create_consent(patient, family, scopes=("scheduling", "attendance"))
        db.session.commit()


def _queries_for(client, count_queries, path: str) -> int:
    client.get(path)  # warm: the first request may load settings
    with count_queries() as counter:
        response = client.get(path)
    assert response.status_code == 200, path
    return counter.count


PAGES = [(None, "/login"), (FAMILY, "/family/"), (THERAPIST, "/therapist/")]
SIGNED_IN_PAGES = [page for page in PAGES if page[0]]


@pytest.mark.parametrize(("account", "path"), PAGES)
def test_pages_use_few_queries(app, client, auth, count_queries, account, path):
    _add_linked_patients(app, 10)
    if account:
        auth.login(account)
    assert _queries_for(client, count_queries, path) <= MAX_QUERIES


@pytest.mark.parametrize(("account", "path"), SIGNED_IN_PAGES)
def test_query_count_does_not_grow_with_data(app, client, auth, count_queries, account, path):
    _add_linked_patients(app, 1)
    auth.login(account)
    small = _queries_for(client, count_queries, path)
    _add_linked_patients(app, 40)
    assert _queries_for(client, count_queries, path) == small
