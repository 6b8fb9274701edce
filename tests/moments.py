"""Named frozen instants for time-dependent tests (all UTC)."""

from datetime import UTC, datetime

# A weekday afternoon in New York well away from DST changes.
NOON = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)
# US daylight saving 2026: starts 2026-03-08 02:00 local, ends 2026-11-01 02:00 local.
BEFORE_SPRING_FORWARD = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
BEFORE_FALL_BACK = datetime(2026, 10, 29, 16, 0, tzinfo=UTC)
# The Thursday a week before, so a series can start the week of 2026-10-26 and cross it.
WEEK_BEFORE_FALL_BACK = datetime(2026, 10, 22, 16, 0, tzinfo=UTC)
