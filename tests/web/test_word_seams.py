"""Small wording seams of pages: a count that needs its plural, and a greeting with no name
to give."""

from __future__ import annotations

import re

import pytest

from familylink.extensions import db
from familylink.models import RecoveryCode, Role, User
from tests.factories import saved_user


def _rename(app, user_id, name):
    with app.app_context():
        db.session.get(User, user_id).name = name
        db.session.commit()


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "You have 1 unused recovery code."),
        ("es", "Tiene 1 código de recuperación sin usar."),
    ],
)
def test_one_unused_recovery_code_is_said_in_the_singular(app, client, auth, language, expected):
    user_id = saved_user(app, Role.FAMILY, "maria@example.org", mfa=True, locale=language)
    with app.app_context():
        db.session.add(RecoveryCode(user_id=user_id, code_hash="0" * 64))
        db.session.commit()
    auth.login("maria@example.org")
    assert expected in client.get("/account/mfa").get_data(as_text=True)


@pytest.mark.parametrize(("role", "page"), [(Role.FAMILY, "/family/"), (Role.PATIENT, "/patient/")])
@pytest.mark.parametrize(("language", "nameless"), [("en", "Hello"), ("es", "Hola")])
def test_a_home_page_greets_someone_without_a_name_cleanly(
    app, client, auth, role, page, language, nameless
):
    user_id = saved_user(app, role, "maria@example.org", locale=language)
    _rename(app, user_id, "  ")
    auth.login("maria@example.org")
    response = client.get(page)
    assert response.status_code == 200
    assert re.search(r"<h1>\s*" + nameless + r"\s*</h1>", response.get_data(as_text=True))
