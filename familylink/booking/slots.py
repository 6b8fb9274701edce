"""Times as the booking forms carry them: a UTC instant in a fixed text form."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import request
from flask_babel import gettext as _
from markupsafe import Markup, escape

from familylink import i18n
from familylink.booking.week import day_labels
from familylink.services.errors import DomainError
from familylink.services.scheduling import local_to_utc
from familylink.services.timefmt import clock_times
from familylink.web import in_date_range, parse_day

SLOT_FORMAT = "%Y-%m-%dT%H:%MZ"


def week_radios(days, slot_format: str, zone: str, name: str, chosen) -> list[tuple]:
    """A week picker's days, each with its times' radio buttons as one `Markup` (empty for a
    day without times): for each time an item whose input (in the form's field `name`) has
    the time's value as the form sends it back and an id its label, the clock time in
    `zone`, points at; the time `chosen` (the field's data) checked. A template filter
    (`week.days|week_radios(slot_format, zone, field.name, field.data)`): written here, in
    one call per week, since the template writing each time's item was a large part of
    the booking page under cProfile; the week's clock times written
    together (`clock_times`: the zone and the language looked up once). Every value is
    escaped as the template's autoescape did."""
    clocks = iter(clock_times([slot for day in days for slot in day.slots], zone))
    name = escape(name)
    week = []
    for day in days:
        items = []
        for slot in day.slots:
            value = slot.strftime(slot_format)
            text = str(escape(value))  # escaping writes no ":", so the id may drop them after
            slot_id = "slot-" + text.replace(":", "")
            checked = " checked" if value == chosen else ""
            items.append(
                f'<li class="check"><input type="radio" name="{name}" id="{slot_id}" '
                f'value="{text}"{checked}> '
                f'<label for="{slot_id}">{escape(next(clocks))}</label></li>'
            )
        week.append((day, Markup("\n      ".join(items))))  # noqa: S704  each part escaped
    return week


def week_days(days, slot_format: str, zone: str, field) -> Markup:
    """A week picker's days as `week_times` writes them (`week.days|week_days(slot_format,
    zone, field)`): a fieldset a day, tied to the field's error when it has one, its legend
    the day in the reader's language, then its times (`week_radios`) or the words for a day
    without any. Written in one call rather than a template loop over the days. The words
    are trusted as the template trusted them."""
    tied = ' aria-describedby="slot-error"' if field.errors else ""
    none_free = None
    written = []
    labels = iter(day_labels([day.day for day in days]))
    for _day, radios in week_radios(days, slot_format, zone, field.name, field.data):
        if radios:
            times = f'<ul class="times">\n      {radios}\n    </ul>'
        else:
            none_free = none_free or i18n.gettext("No free times on this day.")
            times = f'<p class="muted">{none_free}</p>'
        written.append(
            f'\n  <fieldset class="day"{tied}>\n    <legend>{escape(next(labels))}</legend>'
            f"\n    \n    {times}\n    \n  </fieldset>\n  "
        )
    return Markup("".join(written))  # noqa: S704  each part escaped, or the catalogue's


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


def typed_slot(day_text: str | None, clock_text: str | None, zone: str) -> str:
    """A day and a clock time typed in `zone` (the date and time inputs send 2026-11-22 and
    19:00) as a slot in SLOT_FORMAT. Raises DomainError (field "other_time") when either
    is missing or malformed, or when the clocks skip that time that day."""
    day = parse_day(day_text)
    try:
        clock = datetime.strptime(clock_text or "", "%H:%M").time()
    except ValueError:
        clock = None
    if day is None or clock is None:
        raise DomainError(_("Enter both a day and a time."), field="other_time")
    try:
        return local_to_utc(day, clock, zone).strftime(SLOT_FORMAT)
    except DomainError as error:
        raise DomainError(error.message, field="other_time") from error


def slot_week(slot: datetime, zone: str) -> date:
    """The local day (in `zone`) of a slot: the week picker's ?week= that shows it."""
    return slot.astimezone(ZoneInfo(zone)).date()


def shown_week(pick, zone: str, *, chosen: datetime | None = None, arg: str = "week"):
    """The week a picker page shows and a notice when the one asked for cannot be: the
    week of `chosen` (a time just refused), else the request's `arg` (?week=), else the
    first week with a free time. `pick(day)`: the service's week holding `day` (None: the
    first with a free time), raising DomainError for a week it may not show."""
    asked = request.args.get(arg)
    day = slot_week(chosen, zone) if chosen else parse_day(asked)
    notice = None
    if asked and day is None:
        notice = _("That is not a week we can show. Here are the coming weeks.")
    try:
        week = pick(day)
    except DomainError as error:
        notice = error.message
        week = pick(None)
    return week, notice
