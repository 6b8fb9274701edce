"""Time zones: everything is stored in UTC and shown in the viewer's own IANA zone."""

from datetime import datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask_babel import gettext as _

DAY = "%A, %B %-d, %Y"
DAY_AND_TIME = DAY + ", %-I:%M %p"
TIME = "%-I:%M %p"

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


def format_local(instant: datetime | None, zone: str, *, with_zone: bool = True) -> str:
    """'Wednesday, March 11, 2026, 5:00 PM EDT' in the given zone; the zone is always named."""
    if instant is None:
        return ""
    local = local_time(instant, zone)
    text = local.strftime(DAY_AND_TIME)
    if with_zone:
        text += f" {local.tzname()}"
    return text


def format_local_date(instant: datetime | None, zone: str) -> str:
    if instant is None:
        return ""
    return local_time(instant, zone).strftime("%B %-d, %Y")


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
        until = last.strftime(TIME)
    else:
        until = last.strftime(DAY_AND_TIME)
    if first.tzname() == last.tzname():
        return _(
            "%(start)s to %(end)s %(zone)s",
            start=first.strftime(DAY_AND_TIME),
            end=until,
            zone=first.tzname(),
        )
    return _(
        "%(start)s %(start_zone)s to %(end)s %(end_zone)s",
        start=first.strftime(DAY_AND_TIME),
        start_zone=first.tzname(),
        end=until,
        end_zone=last.tzname(),
    )


def format_end(instant: datetime | None, zone: str) -> str:
    """When something ends: at local midnight, 'the end of Wednesday, December 9, 2026
    (midnight EST)' (the day it ends, not the next day's 12:00 AM); otherwise as format_local."""
    if instant is None:
        return ""
    local = local_time(instant, zone)
    if not _is_midnight(local):
        return format_local(instant, zone)
    day = local.date() - timedelta(days=1)
    return _("the end of %(day)s (midnight %(zone)s)", day=day.strftime(DAY), zone=local.tzname())
