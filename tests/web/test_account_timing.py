"""Who has an account must not show in how long sign-up and reset take (issue 17).

Known and unknown addresses are sent in turn (so the machine's load falls on both alike)
and the medians compared. The tests' usual argon2 parameters make a hash cost nearly
nothing, which would hide the gap a hash in one branch only makes; here a hash costs about
20 ms, well above the 5 ms tolerated (argon2-cffi's own parameters, used in production,
cost more still, and only make the sampling slower and noisier)."""

import statistics
import time

import pytest

from familylink.extensions import db
from familylink.models import Role
from tests.factories import create_user
from tests.web.test_auth_routes import GOOD

SAMPLES = 40
# The largest gap between the medians that we accept, in seconds.
MAX_GAP = 0.005
REAL_COST = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}


@pytest.fixture
def real_cost_app(app, make_app):
    """The app with a hash of real cost, and SAMPLES known accounts.
    `app` is requested so its teardown empties the tables afterwards."""
    timed = make_app(ARGON2_PARAMETERS=REAL_COST)
    with timed.app_context():
        known = [create_user(Role.FAMILY, password=None).email for _ in range(SAMPLES)]
        db.session.commit()
    return timed, known


def _medians(client, path, form_for_known, form_for_unknown, known):
    times = {"known": [], "unknown": []}
    expected = client.post(path, data=form_for_unknown(0)).status_code  # warm up
    for n, address in enumerate(known):
        for kind, data in (
            ("known", form_for_known(address)),
            ("unknown", form_for_unknown(n + 1)),
        ):
            start = time.perf_counter()
            response = client.post(path, data=data)
            times[kind].append(time.perf_counter() - start)
            assert response.status_code == expected
    return statistics.median(times["known"]), statistics.median(times["unknown"])


def test_sign_up_takes_as_long_for_a_known_address_as_for_a_new_one(real_cost_app):
    timed, known = real_cost_app
    client = timed.test_client()
    known_median, unknown_median = _medians(
        client,
        "/register",
        lambda address: {**GOOD, "email": address},
        lambda n: {**GOOD, "email": f"new.person{n}@example.org"},
        known,
    )
    assert abs(known_median - unknown_median) < MAX_GAP, (known_median, unknown_median)


def test_a_reset_takes_as_long_for_a_known_address_as_for_an_unknown_one(real_cost_app):
    timed, known = real_cost_app
    client = timed.test_client()
    known_median, unknown_median = _medians(
        client,
        "/reset",
        lambda address: {"email": address},
        lambda n: {"email": f"nobody{n}@example.org"},
        known,
    )
    assert abs(known_median - unknown_median) < MAX_GAP, (known_median, unknown_median)
