"""A week picker's days are written by `week_days` in one call; each day must read exactly
as the `week_times` macro's loop over `week_radios` wrote it (the plain path, below): the
fieldset tied to the field's error, the day's legend, its times or the words for a day
without any, in each language, across the night the clocks go back."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import render_template_string

from familylink.booking.slots import SLOT_FORMAT, week_days, week_radios
from familylink.services.booking.picker import Day

# The macro's loop before `week_days`.
PLAIN = """{% for day, radios in week_radios(days, slot_format, zone, f.name, f.data) %}
  <fieldset class="day"{% if f.errors %} aria-describedby="slot-error"{% endif %}>
    <legend>{{ day.day|day_label }}</legend>
    {% if radios %}
    <ul class="times">
      {{ radios }}
    </ul>
    {% else %}
    <p class="muted">{{ _('No free times on this day.') }}</p>
    {% endif %}
  </fieldset>
  {% endfor %}"""

NY = "America/New_York"


@dataclass
class Slot:
    """What `week_days` reads of a form's field."""

    name: str = "slot"
    data: str | None = None
    errors: list = field(default_factory=list)


def _days() -> list[Day]:
    # Sunday November 1, 2026: 1:00 AM happens twice in New York.
    first = datetime(2026, 11, 1, 4, tzinfo=UTC)
    night = [first + timedelta(hours=n) for n in range(4)]
    later = [datetime(2026, 11, 3, 14, tzinfo=UTC), datetime(2026, 11, 3, 15, tzinfo=UTC)]
    return [
        Day(date(2026, 10, 31), []),
        Day(date(2026, 11, 1), night),
        Day(date(2026, 11, 2), []),
        Day(date(2026, 11, 3), later),
    ]


CASES = {
    "plain": Slot(),
    "chosen": Slot(data="2026-11-03T15:00Z"),
    "refused": Slot(data="2026-11-03T16:00Z", errors=["Choose a time from the list."]),
    "odd_name": Slot(name='x"><b>&'),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("language", ["en", "es"])
def test_each_day_is_written_as_the_macro_wrote_it(app, case, language):
    app.config["FORCE_LOCALE"] = language
    try:
        with app.test_request_context():
            for days in (_days(), _days()[:1], []):
                context = {"days": days, "slot_format": SLOT_FORMAT, "zone": NY, "f": CASES[case]}
                plain = render_template_string(PLAIN, week_radios=week_radios, **context)
                written = week_days(days, SLOT_FORMAT, NY, CASES[case])
                assert str(written) == plain
    finally:
        app.config.pop("FORCE_LOCALE")


def test_the_written_days_are_not_empty(app):
    with app.test_request_context():
        written = str(week_days(_days(), SLOT_FORMAT, NY, CASES["chosen"]))
    assert written.count('<fieldset class="day">') == 4
    assert written.count("No free times on this day.") == 2
    assert 'value="2026-11-03T15:00Z" checked>' in written
