import pytest

from familylink.services.errors import ValidationError
from familylink.services.passwords import check_password_rules, hash_password, verify_password


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short pass", "at least 12"),
        ("x" * 129, "at most 128"),
        ("password1234", "too common"),
        ("aaaaaaaaaaaaaaaa", "too common"),
        ("maria.rivera-garden", "email address"),
        ("riverside family hope", "program's name"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(app_ctx, password, message):
    with pytest.raises(ValidationError) as caught:
        check_password_rules(password, email="maria.rivera@example.org", program_name="Riverside")
    assert message in caught.value.message
    assert caught.value.field == "password"


def test_a_long_uncommon_password_passes(app_ctx):
    check_password_rules(
        "lantern orchard pebble", email="maria@example.org", program_name="Riverside"
    )


def test_passwords_are_hashed_with_argon2id(app_ctx):
    hashed = hash_password("lantern orchard pebble")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "lantern orchard pebble")
    assert not verify_password(hashed, "lantern orchard pebbles")


def test_an_account_without_a_password_never_matches(app_ctx):
    assert not verify_password(None, "")
    assert not verify_password("not-a-hash", "anything at all")
