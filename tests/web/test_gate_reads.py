"""What the gate's consent reads select on the family pages: the consent rule's columns and
what the pages show of a consent (its scopes, its end, whether the member may see the rest
of the family), never the consent's words; the closures joined once."""

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import LearningModule, Role, SessionType
from familylink.services import learning
from tests.booking_setup import add_weekday_hours, create_session_types
from tests.factories import create_consent, create_user
from tests.moments import NOON

FAMILY = "family@example.org"
RELATIVE_NAME = "Rowan Relative"
# The consent's words and the people it names as signed: the consent page and the signing
# flow read them, the gate's answer on every family page does not.
CONSENT_WORDS = (
    "patient_name",
    "program_name",
    "recipient_name",
    "recipient_relationship",
    "purpose",
    "information_description",
    "revocation_statement",
    "expiry_description",
    "signature_name",
    "text_snapshot",
    "user_agent",
)


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON, "PROGRAM_CACHE_SECONDS": 3600}


def _world(app) -> dict:
    """A patient whose consent lets FAMILY see the rest of the family (so the booking page
    asks who else holds the scheduling scope), and a relative who does."""
    with app.app_context():
        therapist = create_user(Role.THERAPIST)
        add_weekday_hours(therapist)
        create_session_types()
        learning.load_modules(now=NOON)
        patient = create_user(Role.PATIENT, therapist=therapist, password=None)
        family = create_user(Role.FAMILY, email=FAMILY)
        relative = create_user(Role.FAMILY, name=RELATIVE_NAME, password=None)
        create_consent(
            patient, family, scopes=("scheduling", "attendance", "progress"), family_visible=True
        )
        create_consent(patient, relative, scopes=("scheduling",))
        db.session.commit()
        private = db.session.scalar(select(SessionType.id).where(SessionType.capacity == 1))
        slug = db.session.scalar(select(LearningModule.slug).order_by(LearningModule.id))
        return {"patient": patient.id, "private": private, "slug": slug}


FAMILY_PAGES = [
    "/family/",
    "/family/patients/{patient}",
    "/booking/",
    "/booking/new?patient={patient}&type={private}",
    "/learn/",
    "/learn/modules/{slug}",
    "/learn/modules/{slug}?patient={patient}",
]


@pytest.mark.parametrize("path", FAMILY_PAGES)
def test_the_family_pages_read_no_consent_words(app, client, auth, count_queries, path):
    path = path.format(**_world(app))
    auth.login(FAMILY)
    client.get(path)  # warm: the first request may load settings
    with count_queries() as counter:
        response = client.get(path)
    assert response.status_code == 200, path
    reads = [s for s in counter.statements if "FROM consent_records" in s]
    assert reads, "the page asks the gate"
    loaded = [word for s in reads for word in CONSENT_WORDS if f"consent_records.{word}" in s]
    assert loaded == []
    assert [s.count("JOIN consent_closures") for s in reads] == [1] * len(reads)


def test_the_booking_page_still_shows_whom_the_consent_lets_the_member_invite(app, client, auth):
    """The family members in force (`access.family_in_force`), read without their consents'
    words, still reach the page."""
    path = "/booking/new?patient={patient}&type={private}".format(**_world(app))
    auth.login(FAMILY)
    assert RELATIVE_NAME in client.get(path).get_data(as_text=True)
