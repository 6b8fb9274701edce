"""Time zones: everything is stored in UTC and shown in the viewer's own IANA zone."""

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

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
    text = local.strftime("%A, %B %-d, %Y, %-I:%M %p")
    if with_zone:
        text += f" {local.tzname()}"
    return text


def format_local_date(instant: datetime | None, zone: str) -> str:
    if instant is None:
        return ""
    return local_time(instant, zone).strftime("%B %-d, %Y")
