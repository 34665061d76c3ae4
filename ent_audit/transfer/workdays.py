"""French public holidays and working days: the academy's 5-working-day window (Annexe 2).

"Ces extractions sont disponibles pour un délai maximum de 5 jours ouvrés": an archive left on
the SFTP server is removed after five working days, so a client must know which day is the last.
Working days here are Monday to Friday minus the eleven public holidays of metropolitan France
(the two extra days of Alsace-Moselle are not counted: the convention is with a Toulouse town).
Easter is computed with the anonymous Gregorian algorithm (Meeus/Jones/Butcher); Easter Monday,
Ascension (Easter + 39 days) and Whit Monday (Easter + 50) follow from it.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

WINDOW_DAYS = 5
"""Working days an archive stays on the academy's server (Annexe 2)."""

_FIXED = {
    (1, 1): "Jour de l'an",
    (5, 1): "Fête du travail",
    (5, 8): "Victoire 1945",
    (7, 14): "Fête nationale",
    (8, 15): "Assomption",
    (11, 1): "Toussaint",
    (11, 11): "Armistice 1918",
    (12, 25): "Noël",
}
_EASTER_BASED = {1: "Lundi de Pâques", 39: "Ascension", 50: "Lundi de Pentecôte"}


def easter(year: int) -> dt.date:
    """Easter Sunday of ``year`` (Gregorian calendar), by the anonymous Gregorian algorithm."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


@lru_cache(maxsize=64)
def _holidays(year: int) -> tuple[tuple[dt.date, str], ...]:
    sunday = easter(year)
    days = [(dt.date(year, m, d), name) for (m, d), name in _FIXED.items()]
    days += [(sunday + dt.timedelta(days=n), name) for n, name in _EASTER_BASED.items()]
    return tuple(sorted(days))


def public_holidays(year: int) -> dict[dt.date, str]:
    """The eleven public holidays of metropolitan France in ``year``, by date, named in French."""
    return dict(_holidays(year))


def is_working_day(day: dt.date) -> bool:
    """Monday to Friday, and not a public holiday."""
    return day.weekday() < 5 and day not in public_holidays(day.year)


def next_working_day(day: dt.date) -> dt.date:
    """``day`` itself when it is a working day, else the first working day after it."""
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def add_working_days(day: dt.date, n: int) -> dt.date:
    """The ``n``-th working day strictly after ``day`` (``n`` >= 1)."""
    if n < 1:
        raise ValueError(f"n={n}: au moins un jour ouvré")
    while n:
        day += dt.timedelta(days=1)
        n -= is_working_day(day)
    return day


def window_last_day(deposit: dt.date, days: int = WINDOW_DAYS) -> dt.date:
    """The last day an archive deposited on ``deposit`` is still on the server.

    Read conservatively: the deposit day is the first of the ``days`` working days when it is a
    working day (an archive dropped on a Saturday starts its window on Monday). A Friday
    2026-05-22 deposit lasts Friday 22, then Tuesday 26 to Friday 29 (Whit Monday the 25th).
    """
    first = next_working_day(deposit)
    return first if days == 1 else add_working_days(first, days - 1)


def working_days_left(today: dt.date, last_day: dt.date) -> int:
    """Working days from ``today`` to ``last_day``, both counted; 0 once the window is over."""
    count, day = 0, today
    while day <= last_day:
        count += is_working_day(day)
        day += dt.timedelta(days=1)
    return count
