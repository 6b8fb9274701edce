"""The small-cell rule of the program overview (a pure function: no database)."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from familylink.services.overview.suppression import (
    Hidden,
    can_be_worked_out,
    rate,
    suppress_column,
)

counts = st.one_of(st.integers(0, 14), st.integers(0, 400))


def possible_values(cells, total) -> list[set[int]]:
    """By brute force: every value each hidden cell can take, given what a reader sees."""
    hidden = [index for index, cell in enumerate(cells) if isinstance(cell, Hidden)]
    remainder = total - sum(cell for cell in cells if not isinstance(cell, Hidden))
    ranges = [
        range(1, 11) if cells[index] is Hidden.SMALL else range(1, remainder + 1)
        for index in hidden
    ]
    found = [set() for _ in hidden]
    for values in itertools.product(*ranges):
        if sum(values) == remainder:
            for slot, value in enumerate(values):
                found[slot].add(value)
    return found


@pytest.mark.parametrize(
    ("rows", "total", "expected_rows", "expected_total"),
    [
        ([0, 0], 0, [0, 0], 0),
        ([12, 30], 42, [12, 30], 42),
        ([5, 30], 35, [Hidden.SMALL, Hidden.COMPLEMENT], 35),
        ([5, 40, 30], 75, [Hidden.SMALL, 40, Hidden.COMPLEMENT], 75),
        ([5], 5, [Hidden.SMALL], Hidden.SMALL),
        ([3, 0, 4], 7, [Hidden.SMALL, 0, Hidden.SMALL], Hidden.SMALL),
        # Two hidden ones counting 1 each: the total would tell them, so one more goes.
        ([1, 1, 30, 40], 72, [Hidden.SMALL, Hidden.SMALL, Hidden.COMPLEMENT, 40], 72),
    ],
)
def test_suppress_column(rows, total, expected_rows, expected_total):
    assert suppress_column(rows, total) == (expected_rows, expected_total)


def test_a_lone_hidden_cell_is_worked_out_from_the_total():
    assert can_be_worked_out([Hidden.SMALL, 30], 35)
    assert not can_be_worked_out([Hidden.SMALL, Hidden.COMPLEMENT], 35)


@settings(max_examples=400, deadline=None)
@given(st.lists(counts, min_size=1, max_size=6))
def test_no_small_count_is_shown_and_no_hidden_one_can_be_worked_out(rows):
    total = sum(rows)
    cells, shown_total = suppress_column(rows, total)
    for cell, value in zip(cells, rows, strict=True):
        if isinstance(cell, Hidden):
            assert value > 0  # 0 is never hidden: "at least 1" is what the reader knows
            if cell is Hidden.SMALL:
                assert 1 <= value <= 10
        else:
            assert cell == value and not 1 <= cell <= 10
    if isinstance(shown_total, Hidden):
        return
    assert shown_total == total and not 1 <= total <= 10
    if sum(value for value in rows if value) <= 60:  # the brute force stays small
        for found in possible_values(cells, total):
            assert len(found) > 1


def test_a_rate_needs_both_counts_shown():
    assert rate(12, 24) == 0.5
    assert rate(Hidden.SMALL, 24) is None
    assert rate(12, Hidden.COMPLEMENT) is None
    assert rate(0, 0) is None
