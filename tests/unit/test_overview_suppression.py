"""The small-cell rules of the program overview (pure functions: no database).

The strongest tests here play a reader who knows the rules: they compute what the page
would show for every possible set of counts, group the sets that show the same, and look
for a small count (a cell, or a difference of nested counts) that every set of a group
agrees on: that count could be read off the page."""

import itertools
from collections import defaultdict

import pytest

from familylink.services.overview.figures import NESTS
from familylink.services.overview.suppression import (
    Hidden,
    count_cell,
    is_small,
    nests_within,
    rate,
    suppress_row,
    total_cell,
)


def possible_values(cells, total) -> list[set[int]]:
    """By brute force: every value each hidden cell can take, given the parts' `total`
    (a hidden cell is at least 1; "fewer than 11" is at most 10)."""
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


def published(months: list[dict[str, int]], nests, rule=suppress_row) -> tuple:
    """What the page shows of these months and their total, as one comparable value."""
    rows = [rule(values, nests) for values in months]
    totals = {
        measure: total_cell([row[measure] for row in rows], sum(m[measure] for m in months))
        for measure in months[0]
    }
    return tuple(tuple(sorted(row.items(), key=str)) for row in [*rows, totals])


def secrets(months: list[dict[str, int]], nests) -> list[int]:
    """Every count of people the months hold: each cell, each total, and each count that
    nested measures tell together, per month and for the period."""
    total = {measure: sum(m[measure] for m in months) for measure in months[0]}
    found = []
    for values in [*months, total]:
        found += [values[measure] for measure in sorted(values)]
        for nest in nests:
            for signs in nest.told:
                found.append(sum(s * values[m] for s, m in zip(signs, nest.measures, strict=True)))
    return found


def assert_a_reader_learns_no_small_count(worlds, nests, rule=suppress_row):
    by_page = defaultdict(list)
    for months in worlds:
        by_page[published(months, nests, rule)].append(secrets(months, nests))
    assert len(by_page) > 1  # the worlds do differ on the page
    for page, alike in by_page.items():
        for index, value in enumerate(alike[0]):
            if is_small(value):
                assert any(other[index] != value for other in alike), (page, index, value)


def test_a_reader_of_one_measure_over_three_months_learns_no_small_count():
    worlds = [
        [{"attended": value} for value in values]
        for values in itertools.product(range(0, 15), repeat=3)
    ]
    assert_a_reader_learns_no_small_count(worlds, [])


ENROLMENT = NESTS[0]
READINGS = next(nest for nest in NESTS if "readings_opened" in nest.measures)


def enrolment_worlds():
    months = [
        {"enrolled": enrolled, "with_family_14d": with_family}
        for enrolled in range(0, 16)
        for with_family in range(0, enrolled + 1)
    ]
    return itertools.product(months, repeat=2)


def test_a_reader_of_enrolment_over_two_months_learns_no_small_count():
    assert_a_reader_learns_no_small_count(enrolment_worlds(), [ENROLMENT])


def test_a_reader_of_readings_learns_no_small_count():
    months = [
        {"readings_assigned": a, "readings_opened": o, "readings_completed": c}
        for a in range(0, 26)
        for o in range(0, a + 1)
        for c in range(0, o + 1)
    ]
    assert_a_reader_learns_no_small_count([[month] for month in months], [READINGS])


def test_a_reader_of_family_places_learns_no_small_count():
    # Every set of counts some places could give: attended, no-show and late-cancelled are
    # apart; group places are booked ones (never late-cancelled), attended or not.
    sessions = next(nest for nest in NESTS if "attended" in nest.measures)
    months = [
        {
            "booked": booked,
            "attended": attended,
            "no_show": no_show,
            "late_cancelled": late,
            "group_seats": group,
        }
        for booked in range(0, 15)
        for attended in range(0, booked + 1)
        for no_show in range(0, booked - attended + 1)
        for late in range(0, booked - attended - no_show + 1)
        for group in range(0, booked - late + 1)
    ]
    assert_a_reader_learns_no_small_count([[month] for month in months], [sessions])


def test_the_reader_finds_a_small_count_on_a_page_that_shows_each_count_alone():
    """The reader above can fail: shown each on its own, enrolled 20 and 19 with a family
    member tell that 1 had none."""

    def each_alone(values, nests):
        return {measure: count_cell(value) for measure, value in values.items()}

    with pytest.raises(AssertionError):
        assert_a_reader_learns_no_small_count(enrolment_worlds(), [ENROLMENT], each_alone)


def test_what_nested_measures_tell_together():
    told = {
        tuple(sorted(m for s, m in zip(signs, READINGS.measures, strict=True) if s))
        for signs in READINGS.told
    }
    # Not opened (assigned - opened) and "not opened or completed" (assigned - opened +
    # completed) are counts of readings too.
    assert ("readings_assigned", "readings_opened") in told
    assert ("readings_assigned", "readings_completed", "readings_opened") in told
    assert len(READINGS.told) == 7  # every union of the three kinds of reading


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"enrolled": 20, "with_family_14d": 19},
            {"enrolled": 20, "with_family_14d": Hidden.WITHHELD},
        ),
        ({"enrolled": 20, "with_family_14d": 20}, {"enrolled": 20, "with_family_14d": 20}),
        ({"enrolled": 20, "with_family_14d": 0}, {"enrolled": 20, "with_family_14d": 0}),
        (
            {"enrolled": 30, "with_family_14d": 4},
            {"enrolled": 30, "with_family_14d": Hidden.WITHHELD},
        ),
        (
            {"enrolled": 4, "with_family_14d": 4},
            {"enrolled": Hidden.SMALL, "with_family_14d": Hidden.WITHHELD},
        ),
        ({"enrolled": 40, "with_family_14d": 12}, {"enrolled": 40, "with_family_14d": 12}),
    ],
)
def test_suppress_row(values, expected):
    assert suppress_row(values, [ENROLMENT]) == expected


@pytest.mark.parametrize(
    ("parts", "total", "expected"),
    [
        ([0, 0], 0, 0),
        ([12, 30], 42, 42),
        ([Hidden.SMALL, 30], 35, Hidden.WITHHELD),
        ([Hidden.SMALL, 0], 5, Hidden.WITHHELD),
        ([30, Hidden.WITHHELD], 42, Hidden.WITHHELD),
    ],
)
def test_total_cell(parts, total, expected):
    assert total_cell(parts, total) == expected


def test_a_nest_reaches_only_the_measures_of_a_table():
    places = next(nest for nest in NESTS if "group_seats" in nest.measures)
    (within,) = nests_within([places], ["booked", "attended", "no_show", "enrolled"])
    assert list(within.measures) == ["booked", "attended", "no_show"]
    assert within.whole == "booked"
    # 12 booked, 12 attended: with group seats off the table, no-show tells nothing more.
    assert suppress_row({"booked": 12, "attended": 12, "no_show": 0}, [within]) == {
        "booked": 12,
        "attended": 12,
        "no_show": 0,
    }
    assert nests_within([places], ["booked", "enrolled"]) == []


def test_a_rate_needs_both_counts_shown():
    assert rate(12, 24) == 0.5
    assert rate(Hidden.SMALL, 24) is None
    assert rate(12, Hidden.WITHHELD) is None
    assert rate(0, 0) is None
