"""Pure date arithmetic of billing periods, weeks and lifetimes (SPEC sections 2 and 3).

No database: every test calls ``licensing.licences.periods`` directly and asserts exact dates.
2027 is not a leap year (February has 28 days); 2028 is (February has 29).
2027-02-01 is a Monday; 2027-03-01 is a Monday too (February 2027 is exactly four weeks).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from fractions import Fraction

import pytest

from licensing.dates import Lifetime, anchor_date, parse_lifetime
from licensing.errors import ValidationFailed
from licensing.licences.periods import (
    Period,
    billing_periods,
    day_fraction,
    nominal_month,
    overlap,
    period_containing,
    period_for_month,
    week_starts,
)

D = date


# ---------------------------------------------------------------------------------------------
# Anchor days across February (SPEC 2: computed from the anchor, never drifting)
# ---------------------------------------------------------------------------------------------

# (anchor day, year) -> the Jan, Feb, Mar, Apr periods as (start, end), end = day before next anchor.
ANCHOR_PERIODS = {
    (1, 2027): [
        (D(2027, 1, 1), D(2027, 1, 31)),
        (D(2027, 2, 1), D(2027, 2, 28)),
        (D(2027, 3, 1), D(2027, 3, 31)),
        (D(2027, 4, 1), D(2027, 4, 30)),
    ],
    (1, 2028): [
        (D(2028, 1, 1), D(2028, 1, 31)),
        (D(2028, 2, 1), D(2028, 2, 29)),
        (D(2028, 3, 1), D(2028, 3, 31)),
        (D(2028, 4, 1), D(2028, 4, 30)),
    ],
    (15, 2027): [
        (D(2027, 1, 15), D(2027, 2, 14)),
        (D(2027, 2, 15), D(2027, 3, 14)),
        (D(2027, 3, 15), D(2027, 4, 14)),
        (D(2027, 4, 15), D(2027, 5, 14)),
    ],
    (15, 2028): [
        (D(2028, 1, 15), D(2028, 2, 14)),
        (D(2028, 2, 15), D(2028, 3, 14)),
        (D(2028, 3, 15), D(2028, 4, 14)),
        (D(2028, 4, 15), D(2028, 5, 14)),
    ],
    (29, 2027): [
        (D(2027, 1, 29), D(2027, 2, 27)),
        (D(2027, 2, 28), D(2027, 3, 28)),
        (D(2027, 3, 29), D(2027, 4, 28)),
        (D(2027, 4, 29), D(2027, 5, 28)),
    ],
    (29, 2028): [
        (D(2028, 1, 29), D(2028, 2, 28)),
        (D(2028, 2, 29), D(2028, 3, 28)),
        (D(2028, 3, 29), D(2028, 4, 28)),
        (D(2028, 4, 29), D(2028, 5, 28)),
    ],
    (30, 2027): [
        (D(2027, 1, 30), D(2027, 2, 27)),
        (D(2027, 2, 28), D(2027, 3, 29)),
        (D(2027, 3, 30), D(2027, 4, 29)),
        (D(2027, 4, 30), D(2027, 5, 29)),
    ],
    (30, 2028): [
        (D(2028, 1, 30), D(2028, 2, 28)),
        (D(2028, 2, 29), D(2028, 3, 29)),
        (D(2028, 3, 30), D(2028, 4, 29)),
        (D(2028, 4, 30), D(2028, 5, 29)),
    ],
    (31, 2027): [
        (D(2027, 1, 31), D(2027, 2, 27)),
        (D(2027, 2, 28), D(2027, 3, 30)),
        (D(2027, 3, 31), D(2027, 4, 29)),
        (D(2027, 4, 30), D(2027, 5, 30)),
    ],
    (31, 2028): [
        (D(2028, 1, 31), D(2028, 2, 28)),
        (D(2028, 2, 29), D(2028, 3, 30)),
        (D(2028, 3, 31), D(2028, 4, 29)),
        (D(2028, 4, 30), D(2028, 5, 30)),
    ],
}

ANCHOR_CASES = [pytest.param(anchor, year, periods, id=f"anchor{anchor}-{year}") for (anchor, year), periods in ANCHOR_PERIODS.items()]


@pytest.mark.parametrize(("anchor", "year", "expected"), ANCHOR_CASES)
def test_period_for_month_starts_on_the_clamped_anchor_and_ends_the_day_before_the_next_anchor(anchor, year, expected):
    periods = [period_for_month(year, month, anchor) for month in (1, 2, 3, 4)]
    assert [(p.start, p.end) for p in periods] == expected
    assert [(p.nominal_start, p.nominal_end) for p in periods] == expected
    assert not any(p.is_partial for p in periods)


@pytest.mark.parametrize(("anchor", "year", "expected"), ANCHOR_CASES)
def test_billing_periods_from_an_anchor_date_never_drift_across_february(anchor, year, expected):
    periods = list(billing_periods(D(year, 1, anchor), anchor, last_day=None, until=D(year, 4, 30)))
    assert [(p.start, p.end) for p in periods] == expected
    assert [(p.nominal_start, p.nominal_end) for p in periods] == expected
    assert not any(p.is_partial for p in periods)


@pytest.mark.parametrize(("anchor", "year", "expected"), ANCHOR_CASES)
def test_consecutive_periods_leave_no_gap_and_no_overlap(anchor, year, expected):
    periods = [period_for_month(year, month, anchor) for month in (1, 2, 3, 4)]
    for earlier, later in itertools.pairwise(periods):
        assert later.start == earlier.end + timedelta(days=1)


@pytest.mark.parametrize(("anchor", "year", "expected"), ANCHOR_CASES)
def test_every_day_of_a_period_belongs_to_that_period(anchor, year, expected):
    for start, end in expected:
        for day in (start, start + (end - start) / 2, end):
            found = period_containing(day, anchor, licence_start=D(2000, 1, 1))
            assert (found.nominal_start, found.nominal_end) == (start, end)


def test_anchor_31_clamps_to_february_28_and_returns_to_31_in_march():
    assert anchor_date(2027, 1, 31) == D(2027, 1, 31)
    assert anchor_date(2027, 2, 31) == D(2027, 2, 28)
    assert anchor_date(2027, 3, 31) == D(2027, 3, 31)
    assert anchor_date(2027, 4, 31) == D(2027, 4, 30)
    assert anchor_date(2027, 5, 31) == D(2027, 5, 31)


def test_anchor_29_clamps_to_february_28_in_2027_and_stays_on_february_29_in_2028():
    assert anchor_date(2027, 2, 29) == D(2027, 2, 28)
    assert anchor_date(2028, 2, 29) == D(2028, 2, 29)


def test_anchor_30_clamps_to_the_last_day_of_february_in_both_years():
    assert anchor_date(2027, 2, 30) == D(2027, 2, 28)
    assert anchor_date(2028, 2, 30) == D(2028, 2, 29)


def test_the_period_of_anchor_31_over_new_year_runs_from_december_31_to_january_30():
    period = period_for_month(2026, 12, 31)
    assert (period.start, period.end) == (D(2026, 12, 31), D(2027, 1, 30))


def test_nominal_month_of_a_day_before_the_anchor_is_the_previous_month():
    assert nominal_month(D(2027, 1, 14), 15) == (2026, 12)
    assert nominal_month(D(2027, 1, 15), 15) == (2027, 1)
    assert nominal_month(D(2027, 3, 1), 31) == (2027, 2)
    assert nominal_month(D(2027, 2, 28), 31) == (2027, 2)
    assert nominal_month(D(2028, 2, 28), 31) == (2028, 1)


def test_nominal_days_of_the_february_period_with_anchor_1_is_28_in_2027_and_29_in_2028():
    assert period_for_month(2027, 2, 1).nominal_days == 28
    assert period_for_month(2028, 2, 1).nominal_days == 29


def test_nominal_days_of_the_period_starting_on_a_clamped_february_28_with_anchor_31_is_31():
    # Feb 28 to Mar 30 inclusive.
    assert period_for_month(2027, 2, 31).nominal_days == 31


# ---------------------------------------------------------------------------------------------
# Partial first and last periods
# ---------------------------------------------------------------------------------------------


def test_licence_starting_january_16_with_anchor_1_has_a_partial_first_period_of_16_31():
    periods = list(billing_periods(D(2027, 1, 16), 1, last_day=None, until=D(2027, 2, 1)))
    first, _second = periods
    assert first == Period(D(2027, 1, 16), D(2027, 1, 31), D(2027, 1, 1), D(2027, 1, 31))
    assert first.is_partial
    assert first.nominal_days == 31
    fraction = day_fraction(first.start, first.end, first)
    assert isinstance(fraction, Fraction)
    assert fraction == Fraction(16, 31)


def test_the_period_after_a_partial_first_period_is_whole():
    periods = list(billing_periods(D(2027, 1, 16), 1, last_day=None, until=D(2027, 2, 1)))
    second = periods[1]
    assert second == Period(D(2027, 2, 1), D(2027, 2, 28), D(2027, 2, 1), D(2027, 2, 28))
    assert not second.is_partial
    assert day_fraction(second.start, second.end, second) == Fraction(1)


def test_licence_starting_on_an_anchor_date_has_a_whole_first_period():
    first = next(billing_periods(D(2027, 1, 1), 1, last_day=None, until=D(2027, 1, 1)))
    assert first == Period(D(2027, 1, 1), D(2027, 1, 31), D(2027, 1, 1), D(2027, 1, 31))
    assert not first.is_partial


def test_licence_starting_on_the_clamped_february_28_with_anchor_31_has_a_whole_first_period():
    periods = list(billing_periods(D(2027, 2, 28), 31, last_day=None, until=D(2027, 3, 31)))
    assert periods == [
        Period(D(2027, 2, 28), D(2027, 3, 30), D(2027, 2, 28), D(2027, 3, 30)),
        Period(D(2027, 3, 31), D(2027, 4, 29), D(2027, 3, 31), D(2027, 4, 29)),
    ]
    assert not periods[0].is_partial


def test_licence_starting_mid_period_with_anchor_31_has_nominal_start_on_the_previous_anchor():
    first = next(billing_periods(D(2027, 1, 15), 31, last_day=None, until=D(2027, 1, 15)))
    assert first == Period(D(2027, 1, 15), D(2027, 1, 30), D(2026, 12, 31), D(2027, 1, 30))
    assert day_fraction(first.start, first.end, first) == Fraction(16, 31)


def test_licence_starting_march_1_with_anchor_31_belongs_to_the_period_that_started_february_28():
    first = next(billing_periods(D(2027, 3, 1), 31, last_day=None, until=D(2027, 3, 1)))
    assert first == Period(D(2027, 3, 1), D(2027, 3, 30), D(2027, 2, 28), D(2027, 3, 30))
    assert day_fraction(first.start, first.end, first) == Fraction(30, 31)


def test_licence_ending_mid_period_makes_the_last_period_partial():
    periods = list(billing_periods(D(2027, 1, 1), 1, last_day=D(2027, 3, 15), until=D(2027, 12, 31)))
    assert periods == [
        Period(D(2027, 1, 1), D(2027, 1, 31), D(2027, 1, 1), D(2027, 1, 31)),
        Period(D(2027, 2, 1), D(2027, 2, 28), D(2027, 2, 1), D(2027, 2, 28)),
        Period(D(2027, 3, 1), D(2027, 3, 15), D(2027, 3, 1), D(2027, 3, 31)),
    ]
    last = periods[-1]
    assert last.is_partial
    assert day_fraction(last.start, last.end, last) == Fraction(15, 31)


def test_licence_ending_the_day_before_an_anchor_has_a_whole_last_period_and_nothing_after():
    periods = list(billing_periods(D(2027, 1, 1), 1, last_day=D(2027, 2, 28), until=D(2027, 12, 31)))
    assert [(p.start, p.end) for p in periods] == [(D(2027, 1, 1), D(2027, 1, 31)), (D(2027, 2, 1), D(2027, 2, 28))]
    assert not any(p.is_partial for p in periods)


def test_licence_ending_on_an_anchor_date_has_a_one_day_last_period():
    periods = list(billing_periods(D(2027, 1, 1), 1, last_day=D(2027, 2, 1), until=D(2027, 12, 31)))
    assert periods[-1] == Period(D(2027, 2, 1), D(2027, 2, 1), D(2027, 2, 1), D(2027, 2, 28))
    assert len(periods) == 2


def test_licence_starting_and_ending_inside_one_period_is_one_partial_period_cut_at_both_ends():
    periods = list(billing_periods(D(2027, 3, 10), 1, last_day=D(2027, 3, 20), until=D(2027, 12, 31)))
    assert periods == [Period(D(2027, 3, 10), D(2027, 3, 20), D(2027, 3, 1), D(2027, 3, 31))]
    assert day_fraction(periods[0].start, periods[0].end, periods[0]) == Fraction(11, 31)


def test_until_stops_the_iteration_after_the_last_period_starting_on_or_before_it():
    periods = list(billing_periods(D(2027, 1, 1), 1, last_day=None, until=D(2027, 3, 1)))
    assert [p.start for p in periods] == [D(2027, 1, 1), D(2027, 2, 1), D(2027, 3, 1)]


def test_until_the_day_before_an_anchor_does_not_yield_the_period_starting_on_that_anchor():
    periods = list(billing_periods(D(2027, 1, 1), 1, last_day=None, until=D(2027, 2, 28)))
    assert [p.start for p in periods] == [D(2027, 1, 1), D(2027, 2, 1)]


def test_until_before_the_licence_start_yields_no_period():
    assert list(billing_periods(D(2027, 1, 16), 1, last_day=None, until=D(2027, 1, 15))) == []


def test_until_on_the_start_date_yields_only_the_first_partial_period():
    periods = list(billing_periods(D(2027, 1, 16), 1, last_day=None, until=D(2027, 1, 16)))
    assert periods == [Period(D(2027, 1, 16), D(2027, 1, 31), D(2027, 1, 1), D(2027, 1, 31))]


def test_open_ended_licence_yields_twelve_periods_for_a_year():
    periods = list(billing_periods(D(2027, 1, 1), 1, last_day=None, until=D(2027, 12, 31)))
    assert len(periods) == 12
    assert periods[-1] == Period(D(2027, 12, 1), D(2027, 12, 31), D(2027, 12, 1), D(2027, 12, 31))


def test_period_containing_a_day_is_cut_at_the_licence_start():
    period = period_containing(D(2027, 1, 20), 1, licence_start=D(2027, 1, 16))
    assert period == Period(D(2027, 1, 16), D(2027, 1, 31), D(2027, 1, 1), D(2027, 1, 31))


def test_period_containing_a_day_before_the_anchor_is_the_one_from_the_previous_month():
    period = period_containing(D(2027, 2, 10), 15, licence_start=D(2026, 1, 1))
    assert period == Period(D(2027, 1, 15), D(2027, 2, 14), D(2027, 1, 15), D(2027, 2, 14))


# ---------------------------------------------------------------------------------------------
# Weekly lines (SPEC 2: weeks run 7 days from the service's from-date, 4 or 5 per month)
# ---------------------------------------------------------------------------------------------

FEB_2027 = (D(2027, 2, 1), D(2027, 2, 28))
MAR_2027 = (D(2027, 3, 1), D(2027, 3, 31))

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


@pytest.mark.parametrize(("offset", "weekday"), list(enumerate(WEEKDAYS)), ids=WEEKDAYS)
def test_weekly_service_starting_on_any_weekday_of_the_first_week_of_february_2027_has_4_weeks_in_february(offset, weekday):
    from_date = D(2027, 2, 1) + timedelta(days=offset)
    assert from_date.strftime("%A").lower() == weekday
    starts = week_starts(from_date, *FEB_2027)
    assert starts == [from_date + timedelta(days=7 * k) for k in range(4)]
    assert all(FEB_2027[0] <= s <= FEB_2027[1] for s in starts)
    assert all((b - a).days == 7 for a, b in itertools.pairwise(starts))


# from-date in the first week of February 2027 -> expected week starts in March 2027 (31 days).
MARCH_FROM_FEBRUARY = [
    ("monday", D(2027, 2, 1), [D(2027, 3, 1), D(2027, 3, 8), D(2027, 3, 15), D(2027, 3, 22), D(2027, 3, 29)]),
    ("tuesday", D(2027, 2, 2), [D(2027, 3, 2), D(2027, 3, 9), D(2027, 3, 16), D(2027, 3, 23), D(2027, 3, 30)]),
    ("wednesday", D(2027, 2, 3), [D(2027, 3, 3), D(2027, 3, 10), D(2027, 3, 17), D(2027, 3, 24), D(2027, 3, 31)]),
    ("thursday", D(2027, 2, 4), [D(2027, 3, 4), D(2027, 3, 11), D(2027, 3, 18), D(2027, 3, 25)]),
    ("friday", D(2027, 2, 5), [D(2027, 3, 5), D(2027, 3, 12), D(2027, 3, 19), D(2027, 3, 26)]),
    ("saturday", D(2027, 2, 6), [D(2027, 3, 6), D(2027, 3, 13), D(2027, 3, 20), D(2027, 3, 27)]),
    ("sunday", D(2027, 2, 7), [D(2027, 3, 7), D(2027, 3, 14), D(2027, 3, 21), D(2027, 3, 28)]),
]


@pytest.mark.parametrize(("weekday", "from_date", "expected"), MARCH_FROM_FEBRUARY, ids=[c[0] for c in MARCH_FROM_FEBRUARY])
def test_weekly_service_from_february_has_5_weeks_in_march_when_its_weekday_falls_on_march_29_30_or_31(weekday, from_date, expected):
    assert from_date.strftime("%A").lower() == weekday
    starts = week_starts(from_date, *MAR_2027)
    assert starts == expected
    assert len(starts) == (5 if weekday in ("monday", "tuesday", "wednesday") else 4)
    assert all(MAR_2027[0] <= s <= MAR_2027[1] for s in starts)


def test_weekly_service_from_monday_february_1_2027_has_weeks_starting_february_1_8_15_22():
    assert week_starts(D(2027, 2, 1), *FEB_2027) == [D(2027, 2, 1), D(2027, 2, 8), D(2027, 2, 15), D(2027, 2, 22)]


def test_weekly_service_from_before_the_period_counts_weeks_from_its_from_date():
    # 2027-01-27 is a Wednesday: its weeks start on Wednesdays.
    assert D(2027, 1, 27).weekday() == 2
    assert week_starts(D(2027, 1, 27), *FEB_2027) == [D(2027, 2, 3), D(2027, 2, 10), D(2027, 2, 17), D(2027, 2, 24)]


def test_weekly_service_from_one_week_before_the_period_starts_a_week_on_the_period_start():
    assert week_starts(D(2027, 1, 25), *FEB_2027) == [D(2027, 2, 1), D(2027, 2, 8), D(2027, 2, 15), D(2027, 2, 22)]


def test_weekly_service_from_long_before_the_period_keeps_its_weekday():
    # 2026-06-03 is a Wednesday.
    assert week_starts(D(2026, 6, 3), *FEB_2027) == [D(2027, 2, 3), D(2027, 2, 10), D(2027, 2, 17), D(2027, 2, 24)]


def test_weekly_service_from_mid_february_has_only_the_weeks_starting_from_its_from_date():
    assert week_starts(D(2027, 2, 10), *FEB_2027) == [D(2027, 2, 10), D(2027, 2, 17), D(2027, 2, 24)]


def test_weekly_service_ending_mid_period_has_no_week_starting_after_its_to_date():
    # Active range cut at Feb 17 (inclusive): the week starting Feb 15 is in, Feb 22 is not.
    assert week_starts(D(2027, 2, 1), D(2027, 2, 1), D(2027, 2, 17)) == [D(2027, 2, 1), D(2027, 2, 8), D(2027, 2, 15)]


def test_weekly_service_ending_on_a_week_start_keeps_that_week():
    assert week_starts(D(2027, 2, 1), D(2027, 2, 1), D(2027, 2, 15)) == [D(2027, 2, 1), D(2027, 2, 8), D(2027, 2, 15)]


def test_weekly_service_starting_after_the_period_has_no_week_in_it():
    assert week_starts(D(2027, 3, 1), *FEB_2027) == []


def test_weekly_range_that_ends_before_it_starts_has_no_week():
    assert week_starts(D(2027, 2, 1), D(2027, 2, 10), D(2027, 2, 9)) == []


def test_weekly_service_in_february_2028_from_tuesday_february_1_has_5_weeks_in_the_leap_month():
    # 2028-02-01 is a Tuesday; February 2028 has 29 days, so a fifth week starts on Feb 29.
    assert D(2028, 2, 1).weekday() == 1
    assert week_starts(D(2028, 2, 1), D(2028, 2, 1), D(2028, 2, 29)) == [
        D(2028, 2, 1), D(2028, 2, 8), D(2028, 2, 15), D(2028, 2, 22), D(2028, 2, 29)
    ]


# ---------------------------------------------------------------------------------------------
# Overlap of a service's active range with a period
# ---------------------------------------------------------------------------------------------


def test_service_from_march_16_overlaps_march_on_march_16_to_31():
    covered = overlap(D(2027, 3, 16), None, *MAR_2027)
    assert covered == (D(2027, 3, 16), D(2027, 3, 31))
    assert day_fraction(*covered, period_for_month(2027, 3, 1)) == Fraction(16, 31)


def test_service_ending_march_15_overlaps_march_on_march_1_to_15():
    covered = overlap(D(2027, 1, 1), D(2027, 3, 15), *MAR_2027)
    assert covered == (D(2027, 3, 1), D(2027, 3, 15))
    assert day_fraction(*covered, period_for_month(2027, 3, 1)) == Fraction(15, 31)


def test_service_inside_a_period_overlaps_on_its_own_dates():
    assert overlap(D(2027, 3, 10), D(2027, 3, 20), *MAR_2027) == (D(2027, 3, 10), D(2027, 3, 20))


def test_service_covering_the_whole_period_overlaps_on_the_whole_period():
    assert overlap(D(2026, 1, 1), D(2028, 1, 1), *MAR_2027) == MAR_2027


def test_overlap_is_the_same_whichever_range_comes_first():
    assert overlap(*MAR_2027, D(2027, 3, 16), None) == (D(2027, 3, 16), D(2027, 3, 31))


def test_two_open_ended_ranges_overlap_from_the_later_start_with_an_open_end():
    assert overlap(D(2027, 1, 1), None, D(2027, 3, 16), None) == (D(2027, 3, 16), None)


def test_service_ending_before_the_period_does_not_overlap():
    assert overlap(D(2027, 1, 1), D(2027, 2, 28), *MAR_2027) is None


def test_service_starting_after_the_period_does_not_overlap():
    assert overlap(D(2027, 4, 1), None, *MAR_2027) is None


def test_ranges_sharing_one_day_overlap_on_that_day():
    assert overlap(D(2027, 1, 1), D(2027, 3, 1), *MAR_2027) == (D(2027, 3, 1), D(2027, 3, 1))
    assert overlap(D(2027, 3, 31), None, *MAR_2027) == (D(2027, 3, 31), D(2027, 3, 31))


def test_day_fraction_of_one_day_of_february_2028_is_one_twenty_ninth():
    assert day_fraction(D(2028, 2, 10), D(2028, 2, 10), period_for_month(2028, 2, 1)) == Fraction(1, 29)


# ---------------------------------------------------------------------------------------------
# Lifetimes (SPEC 3)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "months", "days"),
    [
        ("P7D", 0, 7),
        ("P1W", 0, 7),
        ("P1M", 1, 0),
        ("P2M", 2, 0),
        ("P3M", 3, 0),
        ("P12M", 12, 0),
        ("P1Y", 12, 0),
    ],
)
def test_parse_lifetime_accepts_whole_days_weeks_months_and_years(text, months, days):
    lifetime = parse_lifetime(text)
    assert lifetime == Lifetime(months=months, days=days, text=text)


@pytest.mark.parametrize("text", ["PT1H", "P1DT1H", "P0D", "P", "1M", "abc", "", "P0M", "P1.5M", "-P1M"])
def test_parse_lifetime_refuses_time_parts_zero_and_malformed_durations(text):
    with pytest.raises(ValidationFailed) as caught:
        parse_lifetime(text)
    assert caught.value.code == "validation_error"
    assert caught.value.extra["errors"][0]["field"] == "lifetime"


def test_one_month_from_january_31_is_february_28_in_2027_without_an_anchor():
    assert parse_lifetime("P1M").end(D(2027, 1, 31)) == D(2027, 2, 28)


def test_one_month_from_january_31_is_february_29_in_2028_without_an_anchor():
    assert parse_lifetime("P1M").end(D(2028, 1, 31)) == D(2028, 2, 29)


def test_one_month_from_the_clamped_february_28_with_anchor_31_lands_on_march_31():
    # SPEC 3: counted from the anchor, never chained from a clamped date (not Mar 28).
    assert parse_lifetime("P1M").end(D(2027, 2, 28), anchor_day=31) == D(2027, 3, 31)


def test_one_month_from_january_31_with_anchor_31_lands_on_the_clamped_february_28():
    assert parse_lifetime("P1M").end(D(2027, 1, 31), anchor_day=31) == D(2027, 2, 28)
    assert parse_lifetime("P1M").end(D(2028, 1, 31), anchor_day=31) == D(2028, 2, 29)


def test_two_months_from_the_clamped_february_28_with_anchor_30_lands_on_april_30():
    assert parse_lifetime("P2M").end(D(2027, 2, 28), anchor_day=30) == D(2027, 4, 30)


def test_one_month_lifetime_with_anchor_ends_on_the_next_period_start_for_every_anchor_31_period():
    lifetime = parse_lifetime("P1M")
    periods = list(billing_periods(D(2027, 1, 31), 31, last_day=None, until=D(2027, 12, 31)))
    for period, following in itertools.pairwise(periods):
        assert lifetime.end(period.nominal_start, anchor_day=31) == following.nominal_start


def test_one_month_from_the_nominal_start_of_a_partial_first_period_expires_on_february_1():
    # SPEC 3: licence starting 2027-01-16, anchor 1, P1M: credits expire on 2027-02-01.
    first = next(billing_periods(D(2027, 1, 16), 1, last_day=None, until=D(2027, 1, 16)))
    assert parse_lifetime("P1M").end(first.nominal_start, anchor_day=1) == D(2027, 2, 1)


def test_one_month_from_january_1_is_february_1():
    assert parse_lifetime("P1M").end(D(2027, 1, 1)) == D(2027, 2, 1)
    assert parse_lifetime("P1M").end(D(2027, 1, 1), anchor_day=1) == D(2027, 2, 1)


def test_twelve_months_from_march_15_2027_is_march_15_2028():
    assert parse_lifetime("P12M").end(D(2027, 3, 15)) == D(2028, 3, 15)


def test_one_year_from_march_15_2027_is_march_15_2028():
    assert parse_lifetime("P1Y").end(D(2027, 3, 15)) == D(2028, 3, 15)


def test_one_year_from_february_29_2028_is_february_28_2029():
    assert parse_lifetime("P1Y").end(D(2028, 2, 29)) == D(2029, 2, 28)


def test_one_week_from_a_monday_is_the_next_monday():
    assert D(2027, 2, 1).weekday() == 0
    assert parse_lifetime("P1W").end(D(2027, 2, 1)) == D(2027, 2, 8)


def test_one_week_lifetime_ignores_the_anchor_day():
    assert parse_lifetime("P1W").end(D(2027, 2, 22), anchor_day=1) == D(2027, 3, 1)


def test_seven_days_from_february_25_2028_crosses_the_leap_day_to_march_3():
    assert parse_lifetime("P7D").end(D(2028, 2, 25)) == D(2028, 3, 3)


def test_two_months_from_january_1_is_march_1():
    assert parse_lifetime("P2M").end(D(2027, 1, 1)) == D(2027, 3, 1)
    assert parse_lifetime("P2M").end(D(2027, 1, 1), anchor_day=1) == D(2027, 3, 1)


def test_two_months_from_december_31_crosses_the_year_and_clamps_to_february_28():
    assert parse_lifetime("P2M").end(D(2026, 12, 31)) == D(2027, 2, 28)
    assert parse_lifetime("P2M").end(D(2026, 12, 31), anchor_day=31) == D(2027, 2, 28)
