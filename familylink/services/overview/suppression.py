"""Small-cell suppression for the program overview: one pure rule, no database.

A count from 1 to 10 could point at a person in a small program, so it is never shown: it
reads "fewer than 11" (`Hidden.SMALL`). Hiding it alone is not enough where the reader
also sees a total and the other parts of it: the total minus the shown parts would give the
hidden count back. So in each column (rows that partition a total: the months of a period,
the therapists of the program) more cells are hidden (`Hidden.COMPLEMENT`, "not shown")
until no hidden cell can be worked out from the total and the shown cells
(complementary suppression), or else the total is hidden.

What a reader knows of a hidden cell: 0 is always shown, so it is at least 1; "fewer than
11" is at most 10; "not shown" has no upper bound. A cell "can be worked out" when those
bounds and the column's sum leave it one possible value.

A rate is shown only when its numerator and its denominator are both shown.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence

#: The largest count that is hidden (0 is shown: it points at nobody).
SMALL_CELL_MAX = 10


class Hidden(enum.Enum):
    SMALL = "small"  # a count from 1 to SMALL_CELL_MAX
    COMPLEMENT = "complement"  # hidden so that a small count beside it stays hidden


Cell = int | Hidden


def is_small(value: int) -> bool:
    """A count that must not be shown on its own."""
    return 1 <= value <= SMALL_CELL_MAX


def bounds(cell: Hidden) -> tuple[float, float]:
    """What a reader can tell of a hidden cell: its lowest and highest possible count."""
    return (1, SMALL_CELL_MAX) if cell is Hidden.SMALL else (1, math.inf)


def can_be_worked_out(cells: Sequence[Cell], total: int) -> bool:
    """Whether a hidden cell of `cells` has one possible value, given their shown `total`."""
    hidden = [bounds(cell) for cell in cells if isinstance(cell, Hidden)]
    if not hidden:
        return False
    remainder = total - sum(cell for cell in cells if not isinstance(cell, Hidden))
    low_sum = sum(low for low, _ in hidden)
    high_sum = sum(high for _, high in hidden)
    for low, high in hidden:
        lowest = max(low, remainder - (high_sum - high))
        highest = min(high, remainder - (low_sum - low))
        if lowest == highest:
            return True
    return False


def suppress_column(rows: Sequence[int], total: int) -> tuple[list[Cell], Cell]:
    """The column as it may be shown: a count, or `Hidden` where it may not be shown.

    `rows` are the parts of `total` (their sum). Each small count is hidden, the total
    too when it is small. While the total is shown and a hidden cell could be worked out
    from it, the smallest shown count above 0 is hidden as well; when none is left, the
    total is hidden.
    """
    cells: list[Cell] = [Hidden.SMALL if is_small(value) else value for value in rows]
    if is_small(total):
        return cells, Hidden.SMALL
    while can_be_worked_out(cells, total):
        candidates = [
            (value, index) for index, value in enumerate(cells) if not isinstance(value, Hidden)
        ]
        candidates = [(value, index) for value, index in candidates if value > 0]
        if not candidates:
            return cells, Hidden.COMPLEMENT
        cells[min(candidates)[1]] = Hidden.COMPLEMENT
    return cells, total


def rate(numerator: Cell | None, denominator: Cell | None) -> float | None:
    """numerator / denominator, or None when either is hidden or there is nothing to divide."""
    if not isinstance(numerator, int) or not isinstance(denominator, int) or denominator == 0:
        return None
    return numerator / denominator
