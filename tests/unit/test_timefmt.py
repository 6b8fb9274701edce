"""Times read naturally in the viewer's zone: a span that ends at midnight ends at
"midnight", never at the next day's 12:00 AM, on ordinary days and across DST changes."""

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from familylink.services.timefmt import (
    babel_locale,
    clock_times,
    format_clock,
    format_end,
    format_local,
    format_local_date,
    format_span,
)

NY = "America/New_York"


def at(zone, *parts):
    """A local wall-clock time in `zone` as a UTC instant (the first of two on a fold), so
    adding minutes adds real time, not wall-clock time."""
    return datetime(*parts, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    "start, minutes, expected",
    [
        # The case: read as "ends Thursday, December 10, 12:00 AM" before.
        (at(NY, 2026, 12, 9, 23), 60, "Wednesday, December 9, 2026, 11:00 PM to midnight EST"),
        (at(NY, 2026, 3, 11, 17), 60, "Wednesday, March 11, 2026, 5:00 PM to 6:00 PM EDT"),
        # The evening before and the evening of the spring change (2 AM March 8, 2026).
        (at(NY, 2026, 3, 7, 23), 60, "Saturday, March 7, 2026, 11:00 PM to midnight EST"),
        (at(NY, 2026, 3, 8, 23), 60, "Sunday, March 8, 2026, 11:00 PM to midnight EDT"),
        (at(NY, 2026, 3, 8, 1, 30), 60, "Sunday, March 8, 2026, 1:30 AM EST to 3:30 AM EDT"),
        # The evening before and the evening of the autumn change (2 AM November 1, 2026).
        (at(NY, 2026, 10, 31, 23), 60, "Saturday, October 31, 2026, 11:00 PM to midnight EDT"),
        (at(NY, 2026, 11, 1, 23), 60, "Sunday, November 1, 2026, 11:00 PM to midnight EST"),
        (at(NY, 2026, 11, 1, 1, 30), 60, "Sunday, November 1, 2026, 1:30 AM EDT to 1:30 AM EST"),
        # Past midnight, not at it: the end names its own day.
        (
            at(NY, 2026, 12, 9, 23, 30),
            60,
            "Wednesday, December 9, 2026, 11:30 PM to Thursday, December 10, 2026, 12:30 AM EST",
        ),
        (at(NY, 2026, 12, 9, 22, 30), 90, "Wednesday, December 9, 2026, 10:30 PM to midnight EST"),
    ],
)
def test_a_span_reads_naturally(start, minutes, expected):
    assert format_span(start, start + timedelta(minutes=minutes), NY) == expected


def test_a_zone_whose_clocks_skip_midnight_names_the_real_end():
    """Santiago springs forward at midnight (September 6, 2026): 11 PM plus an hour is 1 AM."""
    zone = "America/Santiago"
    start = at(zone, 2026, 9, 5, 23)
    text = format_span(start, start + timedelta(hours=1), zone)
    assert (
        text
        == "Saturday, September 5, 2026, 11:00 PM -04 to Sunday, September 6, 2026, 1:00 AM -03"
    )


@pytest.mark.parametrize("zone", [NY, "America/Los_Angeles", "Europe/London", "America/Santiago"])
def test_no_session_ending_at_local_midnight_reads_as_the_next_days_12_am(zone):
    day = date(2026, 1, 1)
    while day.year == 2026:
        start = at(zone, day.year, day.month, day.day, 23)
        after = day + timedelta(days=1)
        end = at(zone, after.year, after.month, after.day, 0)
        text = format_span(start, end, zone)
        assert "12:00 AM" not in text, text
        if end.astimezone(ZoneInfo(zone)).time() == time(0):  # midnight exists that night
            assert " to midnight " in text, text
        day += timedelta(days=1)


def test_an_end_at_midnight_names_the_day_it_ends():
    end = at(NY, 2026, 12, 10, 0)
    assert format_end(end, NY) == "the end of Wednesday, December 9, 2026 (midnight EST)"


def test_an_end_at_midnight_after_a_dst_change_names_the_day_it_ends():
    assert (
        format_end(at(NY, 2026, 3, 9, 0), NY) == "the end of Sunday, March 8, 2026 (midnight EDT)"
    )
    assert (
        format_end(at(NY, 2026, 11, 2, 0), NY)
        == "the end of Sunday, November 1, 2026 (midnight EST)"
    )


def test_an_end_at_another_time_reads_as_that_time():
    end = at(NY, 2026, 12, 9, 17)
    assert format_end(end, NY) == "Wednesday, December 9, 2026, 5:00 PM EST"


# --- In the reader's language (Babel), across the autumn change (2 AM November 1, 2026).


@pytest.fixture
def speaking(app_ctx):
    """Format under a language, as a request or an email being rendered would."""
    from flask_babel import force_locale

    def speak(language, function, *args):
        with force_locale(language):
            return function(*args)

    return speak


# An hour from each New York wall-clock time (the first of two on the fold), as each language
# reads it: the night of the change tells the same hour twice apart.
SPANS = """
en 2026-12-01T10:00 Tuesday, December 1, 2026, 10:00 AM to 11:00 AM EST
es 2026-12-01T10:00 martes, 1 de diciembre de 2026, 10:00 a 11:00 (hora de Nueva York)
es 2026-12-09T23:00 miércoles, 9 de diciembre de 2026, 23:00 a la medianoche (hora de Nueva York)
en 2026-11-01T01:30 Sunday, November 1, 2026, 1:30 AM EDT to 1:30 AM EST
es 2026-11-01T01:30 domingo, 1 de noviembre de 2026, 1:30 (hora de verano de Nueva York) \
a 1:30 (hora estándar de Nueva York)
es 2026-10-31T23:00 sábado, 31 de octubre de 2026, 23:00 a la medianoche (hora de Nueva York)
es 2026-11-01T23:00 domingo, 1 de noviembre de 2026, 23:00 a la medianoche (hora de Nueva York)
"""


def _table(text: str) -> list[tuple[str, datetime, str]]:
    rows = []
    for line in text.strip().splitlines():
        language, moment, expected = line.split(maxsplit=2)
        rows.append((language, at(NY, *datetime.fromisoformat(moment).timetuple()[:5]), expected))
    return rows


@pytest.mark.parametrize("language, start, expected", _table(SPANS))
def test_a_span_reads_in_the_readers_language(speaking, language, start, expected):
    end = start + timedelta(hours=1)
    assert speaking(language, format_span, start, end, NY) == expected


@pytest.mark.parametrize(
    "language, instant, expected",
    [
        ("en", at(NY, 2026, 11, 1, 1, 30), "Sunday, November 1, 2026, 1:30 AM EDT"),
        (
            "en",
            at(NY, 2026, 11, 1, 1, 30) + timedelta(hours=1),
            "Sunday, November 1, 2026, 1:30 AM EST",
        ),
        (
            "es",
            at(NY, 2026, 11, 1, 1, 30),
            "domingo, 1 de noviembre de 2026, 1:30 (hora de verano de Nueva York)",
        ),
        (
            "es",
            at(NY, 2026, 11, 1, 1, 30) + timedelta(hours=1),
            "domingo, 1 de noviembre de 2026, 1:30 (hora estándar de Nueva York)",
        ),
        (
            "es",
            at(NY, 2026, 11, 1, 3),
            "domingo, 1 de noviembre de 2026, 3:00 (hora de Nueva York)",
        ),
        (
            "es",
            at("America/Los_Angeles", 2026, 11, 2, 9),
            "lunes, 2 de noviembre de 2026, 9:00 (hora de Los Ángeles)",
        ),
    ],
)
def test_a_moment_reads_in_the_readers_language(speaking, language, instant, expected):
    zone = "America/Los_Angeles" if "Ángeles" in expected else NY
    assert speaking(language, format_local, instant, zone) == expected


def test_an_end_at_midnight_reads_in_spanish(speaking):
    text = speaking("es", format_end, at(NY, 2026, 12, 10, 0), NY)
    assert text == "el final del miércoles, 9 de diciembre de 2026 (medianoche, hora de Nueva York)"


def test_dates_and_clock_times_read_in_spanish(speaking):
    instant = at(NY, 2026, 11, 1, 17)
    assert speaking("es", format_local_date, instant, NY) == "1 de noviembre de 2026"
    assert speaking("es", format_clock, instant, NY) == "17:00"
    assert speaking("en", format_local_date, instant, NY) == "November 1, 2026"
    assert speaking("en", format_clock, instant, NY) == "5:00 PM"


def test_the_hour_repeated_when_the_clocks_go_back_never_reads_the_same_twice(speaking):
    """Sunday, November 1, 2026 in New York: 1:00 AM EDT, then 1:00 AM EST an hour later.
    The week picker shows clock times alone; the repeated hour names its zone."""
    first = at(NY, 2026, 11, 1, 1)
    second = first + timedelta(hours=1)
    hours = [first - timedelta(hours=1), first, second, second + timedelta(hours=1)]
    english = [speaking("en", format_clock, h, NY) for h in hours]
    assert english == ["12:00 AM", "1:00 AM EDT", "1:00 AM EST", "2:00 AM"]
    assert speaking("en", format_clock, first + timedelta(minutes=30), NY) == "1:30 AM EDT"
    spanish = [speaking("es", format_clock, h, NY) for h in (first, second)]
    assert spanish[0] != spanish[1] and all(text.startswith("1:00") for text in spanish)
    # An ordinary day, and the spring change (no hour happens twice): the clock alone.
    assert speaking("en", format_clock, at(NY, 2026, 11, 2, 1), NY) == "1:00 AM"
    assert speaking("en", format_clock, at(NY, 2026, 3, 8, 1), NY) == "1:00 AM"


def test_a_week_pickers_times_written_together_read_as_each_alone(speaking):
    """`week_radios` writes a week's times in one call (`clock_times`: the zone and the
    language looked up once): across the fall-back night each still reads as it does
    alone, the repeated hour naming its zone, in each language, each under its own day."""
    from familylink.booking.slots import SLOT_FORMAT, week_radios
    from familylink.services.booking.picker import Day

    first = at(NY, 2026, 11, 1, 1)
    hours = [first + timedelta(hours=n) for n in range(-1, 3)]
    assert speaking("en", clock_times, hours, NY) == [
        "12:00 AM",
        "1:00 AM EDT",
        "1:00 AM EST",
        "2:00 AM",
    ]
    # Not a real week's days: a day without times between two with, to see each time land
    # under its own day.
    days = [Day(date(2026, 10, 31), hours[:1]), Day(date(2026, 11, 1), []), Day(None, hours[1:])]
    for language in ("en", "es"):
        alone = [speaking(language, format_clock, h, NY) for h in hours]
        assert speaking(language, clock_times, hours, NY) == alone
        week = speaking(language, week_radios, days, SLOT_FORMAT, NY, "slot", None)
        assert [day for day, _ in week] == days
        assert [re.findall(r">([^<>]*)</label>", radios) for _, radios in week] == [
            alone[:1],
            [],
            alone[1:],
        ]
    (_, first_day), (_, empty), (_, last_day) = week_radios(days, SLOT_FORMAT, NY, "slot", None)
    assert first_day == (
        '<li class="check"><input type="radio" name="slot" id="slot-2026-11-01T0400Z" '
        'value="2026-11-01T04:00Z"> <label for="slot-2026-11-01T0400Z">12:00 AM</label></li>'
    )
    assert empty == "" and not empty  # the template's "No free times on this day."
    assert re.findall(r'value="([^"]+)"', last_day) == [
        "2026-11-01T05:00Z",
        "2026-11-01T06:00Z",
        "2026-11-01T07:00Z",
    ]
    assert clock_times([], NY) == [] and week_radios([], SLOT_FORMAT, NY, "slot", None) == []


def test_a_week_pickers_radios_escape_what_they_write_and_check_the_chosen_time(speaking):
    """The radios are written in Python, not by the template's autoescape: a field name (a
    form's prefix) with quotes or brackets stays one attribute value, and only the time the
    field holds is checked."""
    from markupsafe import Markup

    from familylink.booking.slots import SLOT_FORMAT, week_radios
    from familylink.services.booking.picker import Day

    hours = [at(NY, 2026, 11, 19, 9), at(NY, 2026, 11, 19, 10)]
    [(_, radios)] = week_radios(
        [Day(date(2026, 11, 19), hours)], SLOT_FORMAT, NY, 'x"><b>&', "2026-11-19T15:00Z"
    )
    assert isinstance(radios, Markup)
    assert radios.count('name="x&#34;&gt;&lt;b&gt;&amp;"') == 2 and "<b>" not in radios
    assert re.findall(r'value="([^"]+)"( checked)?>', radios) == [
        ("2026-11-19T14:00Z", ""),
        ("2026-11-19T15:00Z", " checked"),
    ]
    assert re.findall(r'id="([^"]+)"', radios) == re.findall(r'for="([^"]+)"', radios)


def test_babel_locale_is_the_language_spoken_else_english(speaking):
    """The one "Babel locale or English" of the app: day names, dates and the week grid."""
    assert babel_locale().language == "en"  # no request: English
    assert speaking("es", babel_locale).language == "es"
    assert speaking("es", babel_locale, "en").language == "en"  # a language named wins
    assert speaking("es", lambda: babel_locale().days["format"]["wide"][0]) == "lunes"


@pytest.mark.parametrize(
    ("language", "pattern", "expected"),
    [("en", "clock", "1:30 PM"), ("es", "clock", "13:30"), ("en", "hour", "1 PM")],
)
def test_a_wall_clock_time_is_written_in_the_readers_language(
    speaking, language, pattern, expected
):
    from familylink.services.timefmt import wall_clock

    assert speaking(language, wall_clock, time(13, 30), pattern) == expected
