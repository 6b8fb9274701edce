"""Behind a reverse proxy (TRUSTED_PROXIES=N): the client's address and scheme come from
the proxy's X-Forwarded-For and -Proto headers, and only when that is configured."""

import pytest
from sqlalchemy import select

from familylink import ConfigurationError, create_app
from familylink.extensions import db
from familylink.models import AuditEvent
from tests.conftest import app_settings

PROXY = "10.0.0.1"


def _login(client, forwarded_for, email="nobody@example.org"):
    return client.post(
        "/login",
        data={"email": email, "password": "not the password"},
        environ_base={"REMOTE_ADDR": PROXY},
        headers={"X-Forwarded-For": forwarded_for},
    )


def _audited_ips(app):
    with app.app_context():
        return db.session.scalars(
            select(AuditEvent.ip).where(AuditEvent.action == "auth.sign_in_failed")
        ).all()


@pytest.mark.parametrize(("proxies", "seen"), [(0, PROXY), (1, "203.0.113.7")])
def test_audit_rows_see_the_forwarded_client_only_behind_trusted_proxies(
    app, make_app, proxies, seen
):
    served = make_app(TRUSTED_PROXIES=proxies)
    assert _login(served.test_client(), "203.0.113.7").status_code == 400
    assert _audited_ips(served) == [seen]


def test_with_two_proxies_the_client_is_the_second_address_from_the_right(app, make_app):
    served = make_app(TRUSTED_PROXIES=2)
    _login(served.test_client(), "198.51.100.9, 203.0.113.7, 10.0.0.2")
    assert _audited_ips(served) == ["203.0.113.7"]


@pytest.mark.parametrize(("proxies", "second_client_limited"), [(0, True), (1, False)])
def test_the_sign_in_limit_counts_per_forwarded_client_only_behind_trusted_proxies(
    app, make_app, proxies, second_client_limited
):
    served = make_app(
        TRUSTED_PROXIES=proxies, RATELIMIT_ENABLED=True, LOGIN_LIMIT_PER_IP="2 per 15 minutes"
    )
    client = served.test_client()
    for n in range(2):
        assert _login(client, "203.0.113.7", f"p{n}@example.org").status_code == 400
    assert _login(client, "203.0.113.7", "p9@example.org").status_code == 429
    other = _login(client, "198.51.100.9", "p8@example.org").status_code
    assert other == (429 if second_client_limited else 400)


@pytest.mark.parametrize(("proxies", "hsts"), [(0, False), (1, True)])
def test_hsts_is_sent_when_a_trusted_proxy_says_the_request_came_over_https(
    app, make_app, proxies, hsts
):
    served = make_app(TRUSTED_PROXIES=proxies)
    response = served.test_client().get(
        "/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    )
    assert ("Strict-Transport-Security" in response.headers) is hsts


@pytest.mark.parametrize("value", ["yes", "-1", "11", "²", "١"])
def test_a_bad_trusted_proxies_setting_refuses_to_start_naming_it(database_url, value):
    with pytest.raises(ConfigurationError, match="TRUSTED_PROXIES"):
        create_app(app_settings(database_url, TRUSTED_PROXIES=value))
