"""Times as the booking forms carry them: a UTC instant in a fixed text form."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from familylink.services.errors import DomainError
from familylink.services.timefmt import format_local
from familylink.web import in_date_range

SLOT_FORMAT = "%Y-%m-%dT%H:%MZ"


def slot_choices(slots, zone: str) -> list[tuple[str, str]]:
    return [(s.strftime(SLOT_FORMAT), format_local(s, zone)) for s in slots]


def parse_slot(value: str | None) -> datetime:
    slot = slot_or_none(value)
    if slot is None:
        raise DomainError(_("Choose a time from the list."), field="slot")
    return slot


def slot_or_none(value: str | None) -> datetime | None:
    try:
        slot = datetime.strptime(value or "", SLOT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    # Near year 1 or 9999 a slot shifted into a time zone or by its length would overflow.
    return slot if in_date_range(slot.date()) else None


def slot_week(slot: datetime, zone: str) -> date:
    """The local day (in `zone`) of a slot: the week picker's ?week= that shows it."""
    return slot.astimezone(ZoneInfo(zone)).date()
