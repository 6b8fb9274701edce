"""The few iCalendar lines our calendar files are made of, written directly: the same bytes as
the icalendar library's `Calendar.to_ical()` for them (its property order, escaping, quoting
and folding), which spent a large part of a booking POST under cProfile building and
walking its component objects for ten lines. `tests/unit/test_calendar_writer.py` holds
every file against the library's, on generated texts.

An event is a list of (name, value) pairs, its values already written (`text`, `utc`,
`organizer`); the file puts them in the library's order.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

# The library's order: these first, as listed, then the others by name (its `sorted=True`).
_CALENDAR_FIRST = ("VERSION", "PRODID", "CALSCALE", "METHOD")
_EVENT_FIRST = (
    "SUMMARY",
    "DTSTART",
    "DTEND",
    "DURATION",
    "DTSTAMP",
    "UID",
    "RECURRENCE-ID",
    "SEQUENCE",
    "RRULE",
    "RDATE",
    "EXDATE",
)
_LIMIT = 75  # octets a line may reach before it is folded (RFC 5545, 3.1)
_PARAMETER_ESCAPES = re.compile(r'\^|\r\n|\r|\n|"')
_PARAMETER_ESCAPED = {"^": "^^", "\r\n": "^n", "\r": "^n", "\n": "^n", '"': "^'"}
_QUOTED = re.compile("[,;:’]")  # noqa: RUF001 (the library quotes a value with ’ too)


def text(value: str) -> str:
    """A TEXT value (RFC 5545, 3.3.11): backslash, semicolon and comma escaped, each line
    break written as \\n."""
    return (
        value.replace(r"\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", r"\;")
        .replace(",", r"\,")
        .replace("\r\n", r"\n")
        .replace("\n", r"\n")
        .replace("\r", r"\n")
    )


def utc(instant: datetime) -> str:
    """A UTC DATE-TIME (`20261120T150000Z`); any other instant is refused, since the library
    would name its zone instead."""
    if instant.tzinfo is None or instant.utcoffset() != timedelta(0):
        raise ValueError(f"not a UTC instant: {instant!r}")
    return instant.strftime("%Y%m%dT%H%M%SZ")


def parameter(value: str, *, quoted_with: str = "") -> str:
    """A parameter value: RFC 6868's escapes (^^, ^n, ^'), in double quotes when it holds a
    character that ends a parameter, or one of `quoted_with`."""
    escaped = _PARAMETER_ESCAPES.sub(lambda found: _PARAMETER_ESCAPED[found[0]], value)
    if _QUOTED.search(escaped) or any(char in value for char in quoted_with):
        return f'"{escaped}"'
    return escaped


def organizer(name: str, address: str) -> tuple[str, str]:
    """The ORGANIZER line's parameters and value: `;CN=<name>` (quoted when it holds a space
    or an apostrophe, as the library quotes a CN) and `mailto:<address>`."""
    return ";CN=" + parameter(name, quoted_with=" '"), f"mailto:{address}"


def fold(line: str) -> str:
    """A content line folded before it would reach 75 octets, never inside a character nor
    just after a backslash or caret (an escape stays on one line, as the library keeps it)."""
    if line.isascii():
        return line if len(line) < _LIMIT else _fold_ascii(line)
    pieces, current, size = [], [], 0
    for char in line:
        length = len(char.encode())
        if current and size + length >= _LIMIT:
            carried = current.pop() if len(current) > 1 and current[-1] in "\\^" else None
            pieces.append("".join(current))
            current = [carried] if carried is not None else []
            size = len(carried.encode()) if carried is not None else 0
        current.append(char)
        size += length
    if current:
        pieces.append("".join(current))
    return "\r\n ".join(pieces)


def _fold_ascii(line: str) -> str:
    """`fold` of a line of one-octet characters, by slices rather than by character (a
    booking's DESCRIPTION is over 75): each piece 74 characters, one fewer when it would
    end just after a backslash or caret, which then begins the next."""
    pieces, start = [], 0
    while len(line) - start >= _LIMIT:
        end = start + _LIMIT - 1
        if line[end - 1] in "\\^":
            end -= 1
        pieces.append(line[start:end])
        start = end
    pieces.append(line[start:])
    return "\r\n ".join(pieces)


def _content_lines(properties: list[tuple], first: tuple[str, ...]) -> list[str]:
    rank = {name: index for index, name in enumerate(first)}
    ordered = sorted(properties, key=lambda item: (rank.get(item[0], len(first)), item[0]))
    return [fold(f"{name}{''.join(params)}:{value}") for name, *params, value in ordered]


def calendar(properties: list[tuple], events: list[list[tuple]]) -> bytes:
    """The file: the calendar's own properties, then each event's, in the library's order;
    each property is (NAME, value) or (NAME, parameters, value)."""
    lines = ["BEGIN:VCALENDAR", *_content_lines(properties, _CALENDAR_FIRST)]
    for event in events:
        lines += ["BEGIN:VEVENT", *_content_lines(event, _EVENT_FIRST), "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()
