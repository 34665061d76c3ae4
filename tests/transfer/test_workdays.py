"""French public holidays and the academy's 5-working-day window, on known dates."""

from __future__ import annotations

import datetime as dt

import pytest

from ent_audit.transfer.workdays import (
    add_working_days,
    easter,
    is_working_day,
    public_holidays,
    window_last_day,
    working_days_left,
)

D = dt.date


@pytest.mark.parametrize(
    ("year", "sunday"),
    [
        (2024, D(2024, 3, 31)),
        (2025, D(2025, 4, 20)),
        (2026, D(2026, 4, 5)),
        (2027, D(2027, 3, 28)),
        (2038, D(2038, 4, 25)),
        (2285, D(2285, 3, 22)),
        (1818, D(1818, 3, 22)),
    ],
)
def test_easter_by_the_anonymous_gregorian_algorithm(year, sunday):
    assert easter(year) == sunday


def test_the_eleven_public_holidays_of_2026():
    assert public_holidays(2026) == {
        D(2026, 1, 1): "Jour de l'an",
        D(2026, 4, 6): "Lundi de Pâques",
        D(2026, 5, 1): "Fête du travail",
        D(2026, 5, 8): "Victoire 1945",
        D(2026, 5, 14): "Ascension",
        D(2026, 5, 25): "Lundi de Pentecôte",
        D(2026, 7, 14): "Fête nationale",
        D(2026, 8, 15): "Assomption",
        D(2026, 11, 1): "Toussaint",
        D(2026, 11, 11): "Armistice 1918",
        D(2026, 12, 25): "Noël",
    }


def test_weekends_and_holidays_are_not_working_days():
    assert is_working_day(D(2026, 10, 16))  # a Friday
    assert not is_working_day(D(2026, 10, 17)) and not is_working_day(D(2026, 10, 18))
    assert not is_working_day(D(2026, 7, 14)) and not is_working_day(D(2026, 11, 11))
    assert not is_working_day(D(2026, 4, 6)) and not is_working_day(D(2026, 5, 14))


def test_a_friday_archive_spans_the_weekend_and_whit_monday():
    # Friday 22 May 2026; Monday 25 is Whit Monday.
    assert add_working_days(D(2026, 5, 22), 1) == D(2026, 5, 26)
    assert add_working_days(D(2026, 5, 22), 5) == D(2026, 6, 1)
    # The deposit day is the first of the five: Fri 22, Tue 26, Wed 27, Thu 28, Fri 29.
    assert window_last_day(D(2026, 5, 22)) == D(2026, 5, 29)


def test_windows_around_other_holidays():
    # Tuesday 10 November 2026: Wednesday 11 is Armistice; Tue 10, Thu, Fri, Mon, Tue 17.
    assert window_last_day(D(2026, 11, 10)) == D(2026, 11, 17)
    # Thursday 9 July: Tuesday 14 is the Fête nationale.
    assert window_last_day(D(2026, 7, 9)) == D(2026, 7, 16)
    # Deposited on Saturday 4 April: the window opens on Tuesday 7 (Easter Monday the 6th).
    assert window_last_day(D(2026, 4, 4)) == D(2026, 4, 13)
    # Wednesday 13 May: Ascension on Thursday 14; Wed 13, Fri 15, Mon 18, Tue 19, Wed 20.
    assert window_last_day(D(2026, 5, 13)) == D(2026, 5, 20)
    # Across the year: Wednesday 30 December 2026, 1 January 2027 off.
    assert window_last_day(D(2026, 12, 30)) == D(2027, 1, 6)


def test_working_days_left_counts_today_and_the_last_day():
    assert working_days_left(D(2026, 5, 22), D(2026, 5, 29)) == 5
    assert working_days_left(D(2026, 5, 29), D(2026, 5, 29)) == 1
    assert working_days_left(D(2026, 6, 1), D(2026, 5, 29)) == 0
    with pytest.raises(ValueError):
        add_working_days(D(2026, 5, 22), 0)
