"""A consent's end date may be at most a year after it was signed: the form says "no more
than one year from today", and a paper form's today is the day the patient signed it, not
the day their therapist records it."""

from datetime import UTC, date, datetime, timedelta

import pytest

from familylink.models import Role
from familylink.services import consent
from familylink.services.errors import ValidationError
from tests.factories import consent_details as details

#: The day the tests' clock (NOON) falls on in the program's time zone, the oldest day a
#: paper form may be dated on it, and a year after each.
TODAY = date(2026, 11, 18)
SIXTY_DAYS_BACK = TODAY - timedelta(days=60)


@pytest.fixture
def people(create_user):
    lee = create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
    jordan = create_user(
        Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee
    )
    return lee, jordan


def _paper(people, now, *, signed_on: date, ends: date):
    lee, jordan = people
    return consent.record_paper_consent(
        lee, jordan.id, details(expiry_date=ends), signed_on=signed_on, attested=True, now=now
    )


def test_a_paper_form_may_end_a_year_after_it_was_signed(app_ctx, people, now):
    record = _paper(people, now, signed_on=SIXTY_DAYS_BACK, ends=date(2027, 9, 19))
    # The end of 2027-09-19 in New York (EDT): 04:00 UTC the next day.
    assert record.expires_at == datetime(2027, 9, 20, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize("ends", [date(2027, 9, 20), date(2027, 11, 18)])
def test_a_paper_form_may_not_end_more_than_a_year_after_it_was_signed(app_ctx, people, now, ends):
    """Dated 60 days back, the form can't run to a year after the day it is recorded."""
    with pytest.raises(ValidationError) as caught:
        _paper(people, now, signed_on=SIXTY_DAYS_BACK, ends=ends)
    assert caught.value.field == "expiry_date"
    assert "one year after the day the form was signed" in caught.value.message


def test_a_paper_form_signed_today_may_end_a_year_from_today(app_ctx, people, now):
    record = _paper(people, now, signed_on=TODAY, ends=date(2027, 11, 18))
    assert record.expires_at == datetime(2027, 11, 19, 5, 0, tzinfo=UTC)


def test_the_portal_form_may_end_a_year_from_today_and_no_later(app_ctx, people, now):
    _, jordan = people
    record = consent.sign_consent(jordan, details(expiry_date=date(2027, 11, 18)), now=now)
    assert record.expires_at == datetime(2027, 11, 19, 5, 0, tzinfo=UTC)
    with pytest.raises(ValidationError) as caught:
        consent.sign_consent(jordan, details(expiry_date=date(2027, 11, 19)), now=now)
    assert caught.value.field == "expiry_date"
    assert caught.value.message == "Choose a date no more than one year from today."
