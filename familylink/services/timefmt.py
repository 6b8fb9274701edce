"""Time zones: everything is stored in UTC and shown in the viewer's own IANA zone, in the
language of the request (or of the email being rendered, under `flask_babel.force_locale`).

Babel writes the day and month names. English keeps the forms US families know ("Wednesday,
March 11, 2026, 5:00 PM EDT"); Spanish names the place instead of an abbreviation nobody
reads in Spanish ("miércoles, 11 de marzo de 2026, 17:00 (hora de Nueva York)"), and says
daylight or standard time wherever a wall-clock time happens twice (the autumn change).
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from babel.dates import format_datetime, get_timezone_location, get_timezone_name

from familylink.i18n import gettext as _
from familylink.i18n import spoken_locale


@dataclass(frozen=True)
class _Style:
    """How one language writes a day, a date and a clock time (Babel/CLDR patterns)."""

    day: str
    date: str
    clock: str
    hour: str  # a row of a grid of hours
    abbreviates_zones: bool  # "EST"; otherwise the zone's city is named ("hora de …")


STYLES = {
    "en": _Style("EEEE, MMMM d, y", "MMMM d, y", "h:mm a", "h a", abbreviates_zones=True),
    "es": _Style(
        "EEEE, d 'de' MMMM 'de' y", "d 'de' MMMM 'de' y", "H:mm", "H:mm", abbreviates_zones=False
    ),
}
DEFAULT_STYLE = "en"

# Offered first in every time zone list: where US programs and families mostly live.
COMMON_US_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
]


@cache
def all_timezones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


def timezone_choices() -> list[tuple[str, str]]:
    rest = [z for z in all_timezones() if z not in COMMON_US_ZONES]
    return [(z, z.replace("_", " ")) for z in COMMON_US_ZONES + rest]


def is_valid_timezone(name: str | None) -> bool:
    if not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return name in available_timezones()


def local_time(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone))


def times_language() -> str:
    """The language times are written in now: the one being spoken (none outside a request
    or app: the default). A page that writes many times may find it once and pass it."""
    locale = spoken_locale()
    language = locale.language if locale is not None else DEFAULT_STYLE
    return language if language in STYLES else DEFAULT_STYLE


def babel_locale(language: str | None = None) -> Locale:
    """Babel's locale for `language`, by default the language being spoken (English
    outside a request or app)."""
    return _parsed_locale(language or times_language())


@cache
def _parsed_locale(language: str) -> Locale:
    # Parsing a locale reads CLDR data: once per language, not once per date written.
    return Locale.parse(language)


@cache
def _city(zone: str, language: str) -> str:
    return get_timezone_location(ZoneInfo(zone), locale=babel_locale(language), return_city=True)


def _write(local: datetime, pattern_name: str, language: str | None = None) -> str:
    # The patterns name no zone, so the wall-clock time alone decides the words.
    return _written(local.replace(tzinfo=None), pattern_name, language or times_language())


@lru_cache(maxsize=4096)
def _written(wall_clock: datetime, pattern_name: str, language: str) -> str:
    # A sweep writes the same few start times for thousands of reminders: Babel once each.
    pattern = getattr(STYLES[language], pattern_name)
    return format_datetime(wall_clock, pattern, locale=babel_locale(language))


def _day_and_time(local: datetime, language: str | None = None) -> str:
    language = language or times_language()
    return _(
        "%(day)s, %(time)s",
        day=_write(local, "day", language),
        time=_write(local, "clock", language),
    )


def _happens_twice(local: datetime) -> bool:
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()


def zone_name(
    local: datetime, zone: str, *, precise: bool = False, language: str | None = None
) -> str:
    """The zone of a local time as the language writes it: "EST", or "hora de Nueva York".
    `precise` (or a wall-clock time that happens twice) says daylight or standard time."""
    language = language or times_language()
    if STYLES[language].abbreviates_zones:
        return local.tzname() or zone
    city = _city(zone, language)
    if not (precise or _happens_twice(local)):
        return _("%(city)s time", city=city)
    if local.dst():
        return _("%(city)s daylight time", city=city)
    return _("%(city)s standard time", city=city)


def zone_title(zone: str) -> str:
    """The zone itself, on no particular date, as the language names it: "Eastern Time"
    (Babel's generic name), or in Spanish the place ("Nueva York", read "horario de Nueva
    York"); never the IANA key ("America/New_York")."""
    return _zone_title(zone, times_language())


@cache
def _zone_title(zone: str, language: str) -> str:
    if STYLES[language].abbreviates_zones:
        return get_timezone_name(ZoneInfo(zone), locale=babel_locale(language))
    return _city(zone, language)


def format_local(instant: datetime | None, zone: str, *, with_zone: bool = True) -> str:
    """'Wednesday, March 11, 2026, 5:00 PM EDT' in the given zone; the zone is always named."""
    if instant is None:
        return ""
    local = local_time(instant, zone)
    language = times_language()  # once per time written, not once per part of it
    text = _day_and_time(local, language)
    if with_zone:
        text = _("%(time)s %(zone)s", time=text, zone=zone_name(local, zone, language=language))
    return text


def format_local_date(instant: datetime | None, zone: str) -> str:
    """'March 11, 2026'."""
    if instant is None:
        return ""
    return _write(local_time(instant, zone), "date")


def format_end_date(instant: datetime | None, zone: str) -> str:
    """The day something ended on, 'March 10, 2026': an end at local midnight is the end of
    the day before (a consent "through March 10" ends at the midnight after it)."""
    if instant is None:
        return ""
    local = local_time(instant, zone)
    return _write(local - timedelta(days=1) if _is_midnight(local) else local, "date")


def wall_clock(
    at: time | datetime, pattern_name: str = "clock", language: str | None = None
) -> str:
    """A clock time as it reads on the wall, in the language being spoken ('9:00 AM',
    '9:00'; with "hour", a grid's row: '9 AM', '9:00'): a weekly window, a grid's hours, a
    time already local whose zone the page names elsewhere. `language` is `times_language()`
    when a page writing many times asked for it once."""
    if isinstance(at, datetime):
        at = at.time()
    return _write(datetime.combine(_ANY_DAY, at), pattern_name, language)


_ANY_DAY = date(2000, 1, 3)  # a wall-clock time alone: no day's clock change applies


def format_clock(instant: datetime, zone: str) -> str:
    """Only the clock time ('9:00 AM', '9:00'): the day and the zone are named elsewhere.
    A wall-clock time that happens twice (the hour repeated when the clocks go back) names
    its zone too ('1:00 AM EDT', '1:00 AM EST'), so the two never read the same."""
    return clock_times([instant], zone)[0]


def clock_times(instants, zone: str) -> list[str]:
    """`format_clock` of each instant: a page of times (a week picker's) looks up the zone
    and the language being spoken once, not once per time."""
    tz, language = ZoneInfo(zone), times_language()
    clocks = []
    for instant in instants:
        local = instant.astimezone(tz)
        clock = _written(local.replace(tzinfo=None), "clock", language)
        if _happens_twice(local):
            clock = _(
                "%(time)s %(zone)s", time=clock, zone=zone_name(local, zone, language=language)
            )
        clocks.append(clock)
    return clocks


def _is_midnight(local: datetime) -> bool:
    return local.time() == time(0)


def format_span(start: datetime, end: datetime, zone: str) -> str:
    """'Wednesday, December 9, 2026, 11:00 PM to midnight EST': an end at the midnight after
    the start's day reads "midnight", never the next day's 12:00 AM; an end on another day
    names that day; when the clocks change in between, each time names its own zone."""
    first, last = local_time(start, zone), local_time(end, zone)
    if _is_midnight(last) and last.date() == first.date() + timedelta(days=1):
        until = _("midnight")
    elif last.date() == first.date():
        until = _write(last, "clock")
    else:
        until = _day_and_time(last)
    if first.tzname() == last.tzname():
        return _(
            "%(start)s to %(end)s %(zone)s",
            start=_day_and_time(first),
            end=until,
            zone=zone_name(first, zone),
        )
    return _(
        "%(start)s %(start_zone)s to %(end)s %(end_zone)s",
        start=_day_and_time(first),
        start_zone=zone_name(first, zone, precise=True),
        end=until,
        end_zone=zone_name(last, zone, precise=True),
    )


def format_end(instant: datetime | None, zone: str) -> str:
    """When something ends: at local midnight, 'the end of Wednesday, December 9, 2026
    (midnight EST)' (the day it ends, not the next day's 12:00 AM); otherwise as format_local."""
    if instant is None:
        return ""
    local = local_time(instant, zone)
    if not _is_midnight(local):
        return format_local(instant, zone)
    day = datetime.combine(local.date() - timedelta(days=1), time(12), local.tzinfo)
    return _(
        "the end of %(day)s (midnight %(zone)s)",
        day=_write(day, "day"),
        zone=zone_name(local, zone),
    )
