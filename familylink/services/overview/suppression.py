"""Small-cell suppression for the program overview: pure rules, no database.

A count from 1 to 10 could point at a person in a small program, so it is never shown, and
neither is one a reader could work out from what is shown, on this page or on others. A
reader may open every period (any run of whole months), and knows these rules. So:

- **A month's cell** depends on that month alone, the same on every page: a small count
  reads "fewer than 11" (`Hidden.SMALL`).
- **A total** (a period, a therapist's period) is shown only when every part of it is, so a
  shown total is the sum of shown counts and tells nothing more; otherwise it is "not
  shown" (`Hidden.WITHHELD`). Nothing is hidden to protect something else, so which cells
  are hidden says nothing about their values beyond what the rule itself says.
- **Nested measures** (`Nest`): some measures count some of another's records (enrolled
  and those with a family member within 14 days). A difference of such counts is itself a
  count of people; when any count the nest's shown cells could tell is small, each count
  of the nest but its whole reads "not shown" (a zero stays: it points at nobody).

A rate is shown only when its numerator and its denominator are both shown.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

#: The largest count that is hidden (0 is shown: it points at nobody).
SMALL_CELL_MAX = 10


class Hidden(enum.Enum):
    SMALL = "small"  # a count from 1 to SMALL_CELL_MAX
    WITHHELD = "withheld"  # any count: shown, it would let a small one be worked out


Cell = int | Hidden


def is_small(value: int) -> bool:
    """A count that must not be shown on its own."""
    return 1 <= value <= SMALL_CELL_MAX


def count_cell(value: int) -> Cell:
    return Hidden.SMALL if is_small(value) else value


@dataclass(frozen=True)
class Nest:
    """Measures counting records of one kind, each as the set of `parts` it counts: the
    whole counts them all. `told` lists every count of records the measures' values tell
    together (sums and differences with coefficients -1, 0 or 1), as those coefficients."""

    measures: Mapping[str, frozenset[str]]
    told: tuple[tuple[int, ...], ...] = field(init=False)

    def __post_init__(self):
        parts = sorted(frozenset().union(*self.measures.values()))
        vectors = [[int(part in counted) for part in parts] for counted in self.measures.values()]
        told = []
        for signs in itertools.product((-1, 0, 1), repeat=len(vectors)):
            sums = [
                sum(sign * vector[i] for sign, vector in zip(signs, vectors, strict=True))
                for i in range(len(parts))
            ]
            if any(sums) and all(value in (0, 1) for value in sums):
                told.append(signs)
        object.__setattr__(self, "told", tuple(told))

    @property
    def whole(self) -> str:
        return max(self.measures, key=lambda measure: len(self.measures[measure]))

    def only(self, measures: Sequence[str]) -> Nest:
        """The nest of those of its measures that are in `measures`."""
        return Nest({m: parts for m, parts in self.measures.items() if m in measures})


def nests_within(nests: Sequence[Nest], measures: Collection[str]) -> list[Nest]:
    """The nests as far as a table's `measures` reach (a measure not on it tells nothing);
    a nest left with one measure hides nothing, so it is dropped."""
    within = []
    for nest in nests:
        kept = [measure for measure in nest.measures if measure in measures]
        if len(kept) == len(nest.measures):
            within.append(nest)
        elif len(kept) >= 2:
            within.append(nest.only(kept))
    return within


def suppress_row(values: Mapping[str, int], nests: Sequence[Nest]) -> dict[str, Cell]:
    """One month's counts (measure -> value) as they may be shown. Each of `nests` has all
    its measures in `values` (see `nests_within`)."""
    cells = {measure: count_cell(value) for measure, value in values.items()}
    for nest in nests:
        told = [
            sum(sign * values[measure] for sign, measure in zip(signs, nest.measures, strict=True))
            for signs in nest.told
        ]
        if any(is_small(count) for count in told):
            for measure in nest.measures:
                if measure != nest.whole and values[measure]:
                    cells[measure] = Hidden.WITHHELD
    return cells


def total_cell(parts: Sequence[Cell], total: int) -> Cell:
    """A total of `parts` (their sum is `total`): shown only when every part is (shown
    parts are 0 or more than SMALL_CELL_MAX, so a shown total is never small either)."""
    if any(isinstance(part, Hidden) for part in parts):
        return Hidden.WITHHELD
    return total


def rate(numerator: Cell | None, denominator: Cell | None) -> float | None:
    """numerator / denominator, or None when either is hidden or there is nothing to divide."""
    if not isinstance(numerator, int) or not isinstance(denominator, int) or denominator == 0:
        return None
    return numerator / denominator
