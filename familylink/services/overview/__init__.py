"""The program overview: how often families take part, for the program as a whole.

Counts and rates per month of a chosen period and for the whole period; for the admin also
per therapist (never for the program director). No patient data: no names, ids, dates or
free text, only counts, each passed through `suppression` (small cells hidden, and enough
others that no hidden one can be worked out) before anyone sees it. Viewing and exporting
are audited ("overview.viewed", "overview.exported").
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from babel import numbers as babel_numbers
from flask_babel import format_decimal, format_percent
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import Role, User
from familylink.services import access, audit
from familylink.services.errors import ValidationError
from familylink.services.overview.figures import (
    FAMILY_WITHIN_DAYS,
    NESTS,
    NO_THERAPIST,
    Counts,
    Month,
    add_months,
    count_everything,
    months_of,
)
from familylink.services.overview.suppression import (
    SMALL_CELL_MAX,
    Cell,
    Hidden,
    is_small,
    nests_within,
    rate,
    suppress_row,
    total_cell,
)
from familylink.services.program import get_program, local_day

#: The longest period one page shows (its months are the rows).
MAX_MONTHS = 24
#: A month is shown once its figures no longer change: when each episode it started has had
#: its days to a consented family member.
FINAL_AFTER_DAYS = FAMILY_WITHIN_DAYS

COUNT, RATE, MEDIAN = "count", "rate", "median"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = COUNT
    # A rate's numerator and denominator (keys of count columns of the same table).
    of: tuple[str, str] | None = None


@dataclass
class Row:
    label: str
    cells: dict[str, Cell | float | None] = field(default_factory=dict)


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[Row]
    total: Row

    @property
    def count_columns(self) -> list[Column]:
        return [column for column in self.columns if column.kind == COUNT]


@dataclass
class Overview:
    first: date
    last: date
    months: list[Month]
    tables: list[Table]
    therapists: Table | None  # the admin's only


def _c(key, label):
    return Column(key, label)


TABLES = [
    (
        "enrolment",
        _l("Enrolment"),
        [
            _c("enrolled", _l("Patients enrolled")),
            _c("with_family_14d", _l("With a consented family member within 14 days")),
            Column(
                "share_family_14d",
                _l("Share with a consented family member within 14 days"),
                RATE,
                ("with_family_14d", "enrolled"),
            ),
            Column("median_days", _l("Median days to the first family session"), MEDIAN),
        ],
    ),
    (
        "sessions",
        _l("Family sessions"),
        [
            _c("booked", _l("Booked")),
            _c("attended", _l("Attended")),
            _c("no_show", _l("No-show")),
            _c("late_cancelled", _l("Late-cancelled")),
            _c("group_seats", _l("Group places taken")),
            _c("group_places", _l("Group places offered")),
            Column("fill_rate", _l("Group fill rate"), RATE, ("group_seats", "group_places")),
            _c("offers_made", _l("Waitlist offers made")),
            _c("offers_claimed", _l("Waitlist offers claimed")),
            _c("offers_expired", _l("Waitlist offers expired")),
        ],
    ),
    (
        "readings",
        _l("Readings"),
        [
            _c("readings_assigned", _l("Assigned")),
            _c("readings_opened", _l("Opened")),
            _c("readings_completed", _l("Completed")),
        ],
    ),
    (
        "reminders",
        _l("Reminder emails"),
        [
            _c("reminders_sent", _l("Sent")),
            _c("reminders_failed", _l("Failed")),
            _c("sessions_reminded", _l("Sessions with reminders")),
            _c("sessions_all_reminders", _l("Sessions whose families got every reminder")),
            Column(
                "share_all_reminders",
                _l("Share of sessions whose families got every reminder"),
                RATE,
                ("sessions_all_reminders", "sessions_reminded"),
            ),
        ],
    ),
    (
        "consents",
        _l("Consents"),
        [
            _c("consents_signed", _l("Signed")),
            _c("consents_revoked", _l("Revoked")),
            _c("consents_expired", _l("Expired")),
            _c("consents_ended_at_discharge", _l("Ended at discharge")),
        ],
    ),
]

THERAPIST_MEASURES = ["enrolled", "booked", "attended", "no_show", "late_cancelled"]
THERAPIST_NESTS = nests_within(NESTS, THERAPIST_MEASURES)


def last_final_month(today: date) -> date:
    """The latest month whose figures are final: it ended FINAL_AFTER_DAYS days ago or more
    (by then every episode it started has had its 14 days)."""
    return add_months(today - timedelta(days=FINAL_AFTER_DAYS), -1)


def check_period(first: date | None, last: date | None, *, today: date) -> None:
    """Raises ValidationError (on `first` or `last`) unless the months (given by their first
    days) run forward, end with a final month and span at most MAX_MONTHS."""
    if first is None:
        raise ValidationError(_("Enter the first month of the period."), field="first")
    if last is None:
        raise ValidationError(_("Enter the last month of the period."), field="last")
    if last < first:
        raise ValidationError(_("The last month must not be before the first month."), field="last")
    final = last_final_month(today)
    if last > final:
        raise ValidationError(
            _(
                "A month's figures are final %(days)d days after it ends: the last month can be"
                " %(month)s at the latest.",
                days=FINAL_AFTER_DAYS,
                month=final.strftime("%Y-%m"),
            ),
            field="last",
        )
    if last >= add_months(first, MAX_MONTHS):
        raise ValidationError(
            _("Choose a period of at most %(months)d months.", months=MAX_MONTHS), field="first"
        )


def default_period(now: datetime) -> tuple[date, date]:
    """The six months up to the latest final one."""
    last = last_final_month(local_day(now))
    return add_months(last, -5), last


def program_overview(
    actor: User, *, first: date | None, last: date | None, now: datetime, export: bool = False
) -> Overview:
    """The overview of the period for the admin or the program director (NotFound for
    anyone else; ValidationError for a period `check_period` refuses), audited as viewed
    or exported."""
    per_therapist = access.overview_per_therapist(actor)
    check_period(first, last, today=local_day(now))
    last = add_months(last, 1) - timedelta(days=1)  # its last day
    months = months_of(first, last, get_program().timezone)
    counts = count_everything(months)
    labels = [month.label for month in months]
    tables = [_table(key, str(title), columns, counts, labels) for key, title, columns in TABLES]
    therapists = _therapist_table(counts, tables) if per_therapist else None
    audit.record(
        "overview.exported" if export else "overview.viewed",
        actor=actor,
        detail={"first": first.isoformat(), "last": last.isoformat()},
        now=now,
    )
    return Overview(first, last, months, tables, therapists)


def _median(days: list[float]) -> Cell | float | None:
    """The median, only when it summarises more than SMALL_CELL_MAX episodes."""
    if not days:
        return None
    if is_small(len(days)):
        return Hidden.SMALL
    return round(statistics.median(days), 1)


def _month_values(counts: Counts, measures: list[str], month_count: int) -> list[dict[str, int]]:
    """Each month's value of each measure, all therapists together."""
    values = [dict.fromkeys(measures, 0) for _ in range(month_count)]
    for measure in measures:
        for (month, _therapist), value in counts.cells.get(measure, {}).items():
            values[month][measure] += value
    return values


def _table(key, title, columns, counts: Counts, labels: list[str]) -> Table:
    """Each month as the small-cell rule lets it be shown, then the period: a total only
    when each of its months is shown."""
    measures = [column.key for column in columns if column.kind == COUNT]
    month_values = _month_values(counts, measures, len(labels))
    nests = nests_within(NESTS, measures)
    rows = [
        Row(label, suppress_row(values, nests))
        for label, values in zip(labels, month_values, strict=True)
    ]
    total = Row(_("Whole period"))
    for measure in measures:
        total.cells[measure] = total_cell(
            [row.cells[measure] for row in rows], sum(values[measure] for values in month_values)
        )
    for column in columns:
        if column.kind == MEDIAN:
            days = counts.days_to_first_session
            for index, row in enumerate(rows):
                row.cells[column.key] = _median(days.get(index, []))
            total.cells[column.key] = _median([d for values in days.values() for d in values])
    for column in columns:
        if column.kind == RATE:
            numerator, denominator = column.of
            for row in [*rows, total]:
                row.cells[column.key] = rate(row.cells[numerator], row.cells[denominator])
    return Table(key, title, list(columns), rows, total)


def _therapist_table(counts: Counts, tables: list[Table]) -> Table:
    """The period per therapist (the admin's only): a patient with no therapist is a row.

    A therapist's count is the sum of their months, so each of those is put through the
    rule as a month is; a column is shown only when every therapist's count in it can be,
    and the period's total with it (it is their sum), or else none of it is."""
    names = dict(
        db.session.execute(select(User.id, User.name).where(User.role == Role.THERAPIST)).all()
    )
    keys = sorted(names, key=lambda therapist: (names[therapist], therapist))
    seen = {therapist for m in THERAPIST_MEASURES for _, therapist in counts.cells.get(m, {})}
    if NO_THERAPIST in seen:
        keys.append(NO_THERAPIST)
    names[NO_THERAPIST] = _("No therapist named")
    rows = [Row(names[therapist]) for therapist in keys]
    totals = {
        m: table.total.cells[m]
        for table in tables
        for m in THERAPIST_MEASURES
        if m in table.total.cells
    }
    months_of_therapists: dict[tuple[int, int], dict[str, int]] = {}
    for measure in THERAPIST_MEASURES:
        for key, value in counts.cells.get(measure, {}).items():
            months_of_therapists.setdefault(key, dict.fromkeys(THERAPIST_MEASURES, 0))[measure] = (
                value
            )
    shown = {measure: isinstance(totals[measure], int) for measure in THERAPIST_MEASURES}
    for values in months_of_therapists.values():
        for measure, cell in suppress_row(values, THERAPIST_NESTS).items():
            shown[measure] = shown[measure] and not isinstance(cell, Hidden)
    for measure in THERAPIST_MEASURES:
        sums = dict.fromkeys(keys, 0)
        for (_month, therapist), value in counts.cells.get(measure, {}).items():
            sums[therapist] += value
        for row, therapist in zip(rows, keys, strict=True):
            row.cells[measure] = sums[therapist] if shown[measure] else Hidden.WITHHELD
    columns = [c for _, _, table in TABLES for c in table if c.key in THERAPIST_MEASURES]
    total = Row(_("All therapists"), totals)
    return Table("therapists", _("Per therapist, whole period"), columns, rows, total)


# A median's one decimal, grouped as the reader's language groups thousands.
MEDIAN_FORMAT = "#,##0.0"


def display(cell, kind: str = COUNT) -> str:
    """What a cell reads on the page: rates and medians written in the reader's language
    ("12,5" and "50 %" in Spanish), a hidden cell in words."""
    if cell is None or isinstance(cell, Hidden) or kind == COUNT:
        return csv_value(cell, kind)
    if kind == RATE:
        return format_percent(cell)
    return format_decimal(cell, MEDIAN_FORMAT)


def csv_value(cell, kind: str = COUNT) -> str:
    """What a cell reads in the CSV: a hidden cell in the reader's words like the page, but
    figures in one format whatever the language ("12.5", "50%"), as spreadsheets and scripts
    read them (docs/overview.md, "The CSV")."""
    if cell is Hidden.SMALL:
        return _("fewer than %(n)d", n=SMALL_CELL_MAX + 1)
    if cell is Hidden.WITHHELD:
        return _("not shown")
    if cell is None:
        return "–"
    # Babel, as the page: both round the decimal value (half-even), not the binary float.
    if kind == RATE:
        return babel_numbers.format_percent(cell, locale="en")
    if kind == MEDIAN:
        return babel_numbers.format_decimal(cell, "0.0", locale="en")
    return str(cell)


def csv_rows(overview: Overview) -> list[list[str]]:
    """The overview as CSV rows: row (month, period or therapist), table, measure, value."""
    out = [[_("Row"), _("Table"), _("Measure"), _("Value")]]
    for table in [*overview.tables, *([overview.therapists] if overview.therapists else [])]:
        for row in [*table.rows, table.total]:
            for column in table.columns:
                value = csv_value(row.cells[column.key], column.kind)
                out.append([audit.csv_cell(row.label), table.title, str(column.label), value])
    return out
