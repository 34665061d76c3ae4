"""What the activity generator assumes: profiles and their labels, activation and visit
rates, hours and devices by profile, school scenarios, the school calendar of zone C, the
files' columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ent_audit.aaf.population import Profile
from ent_audit.synth.accounts import PROFILE_FR
from ent_audit.transfer.workdays import public_holidays

VISIT_GAP = dt.timedelta(minutes=30)
"""A visit ends after 30 minutes without an event (the web-analytics convention)."""

SCHOOL_HOLIDAYS_ZONE_C: dict[int, tuple[tuple[dt.date, dt.date], ...]] = {
    # First and last day off (inclusive), zone C (Toulouse), as this generator assumes them:
    # check the official calendar before relying on them for anything but synthetic data.
    2025: (
        (dt.date(2025, 10, 18), dt.date(2025, 11, 2)),
        (dt.date(2025, 12, 20), dt.date(2026, 1, 4)),
        (dt.date(2026, 2, 21), dt.date(2026, 3, 8)),
        (dt.date(2026, 4, 18), dt.date(2026, 5, 3)),
        (dt.date(2026, 7, 4), dt.date(2026, 8, 31)),
    ),
    2026: (
        (dt.date(2026, 10, 17), dt.date(2026, 11, 1)),
        (dt.date(2026, 12, 19), dt.date(2027, 1, 3)),
        (dt.date(2027, 2, 13), dt.date(2027, 2, 28)),
        (dt.date(2027, 4, 10), dt.date(2027, 4, 25)),
        (dt.date(2027, 7, 3), dt.date(2027, 8, 31)),
    ),
}

PROFILES = tuple(Profile)
"""Profile codes: index in this tuple."""

LABELS_FR = tuple(PROFILE_FR[p] for p in Profile)
LABELS_EN = ("student", "relative", "teacher", "headteacher", "staff")

EVENTS_FR = ("connexion", "application", "connecteur")
EVENTS_EN = ("login", "app", "connector")
LOGIN, APP, CONNECTOR = 0, 1, 2

APPLICATIONS = (
    ("Messagerie", APP),
    ("Cahier multimédia", APP),
    ("Actualités", APP),
    ("Blog", APP),
    ("Espace documentaire", APP),
    ("Agenda", APP),
    ("Mur collaboratif", APP),
    ("Cahier de textes", APP),
    ("Casier", APP),
    ("Exercices et évaluations", APP),
    ("Éduthèque", CONNECTOR),
    ("BRNE Lalilo", CONNECTOR),
    ("Banque de ressources", CONNECTOR),
    ("Pronote", CONNECTOR),
)
DEVICES = ("ordinateur", "mobile", "tablette")
DEVICES_EN = ("desktop", "mobile", "tablet")

ACTIVATION = np.array([0.55, 0.45, 0.88, 1.0, 0.35])
"""Probability that a person of an open school activates their account, by profile."""
ACTIVATION_DELAY = np.array([25.0, 30.0, 10.0, 3.0, 20.0])
"""Mean days between the school's opening and a person's activation, by profile."""
VISIT_RATE = np.array([0.16, 0.12, 0.55, 0.8, 0.2])
"""Relative visits per weighted day, by profile (scaled to the requested number of events)."""
DEVICE_MIX = np.array(
    [
        [0.55, 0.15, 0.30],
        [0.25, 0.65, 0.10],
        [0.80, 0.12, 0.08],
        [0.85, 0.10, 0.05],
        [0.7, 0.2, 0.1],
    ],
)  # desktop, mobile, tablet by profile

_H = np.zeros((5, 24))
_H[0, [8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19]] = [2, 6, 8, 6, 2, 6, 6, 3, 4, 4, 2]
_H[1, [7, 8, 12, 13, 17, 18, 19, 20, 21, 22]] = [3, 2, 3, 2, 3, 5, 7, 8, 6, 2]
_H[2, [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]] = [
    3, 6, 4, 3, 3, 5, 5, 3, 3, 4, 6, 6, 5, 5, 4, 2
]  # fmt: skip
_H[3] = _H[2]
_H[3, [7, 8, 12, 13]] += [3, 3, 2, 2]
_H[4, [8, 9, 10, 11, 13, 14, 15, 16, 17]] = [5, 6, 6, 5, 4, 5, 5, 4, 2]
HOURS = _H / _H.sum(axis=1, keepdims=True)
"""Hour of a visit's start, by profile."""

SCENARIO = {"never": 0.08, "late": 0.10, "stopped": 0.06}
"""Share of schools that never open, open late, and whose activity stops."""

UNKNOWN_SCHOOL = "0319999C"
"""A well-formed UAI that no generated perimeter holds (generated UAI never start 03199)."""

CSV_COLUMNS = ("timestamp", "user", "profile", "uai", "event", "application", "device")
JSONL_KEYS = ("time", "login", "role", "school", "type", "app", "device")
JSONL_MAPPING = dict(zip(CSV_COLUMNS, JSONL_KEYS, strict=True))
"""The column mapping that reads the JSON lines (``columns.events`` of the report)."""
DAILY_COLUMNS = (
    "Etablissement",
    "UAI",
    "Date",
    "Profil",
    "Connexions",
    "Visiteurs uniques",
    "Comptes chargés",
    "Comptes activés",
)


def school_year(day: dt.date) -> int:
    return day.year if day.month >= 8 else day.year - 1


def calendar(start: dt.date, end: dt.date) -> pd.DataFrame:
    """One row per day: weekday, school day, holiday, and the weight of activity that day."""
    days = pd.date_range(start, end, freq="D")
    years = {school_year(d.date()) for d in days}
    unknown = sorted(years - set(SCHOOL_HOLIDAYS_ZONE_C))
    if unknown:
        raise ValueError(
            f"calendrier scolaire inconnu pour l'année {unknown[0]}-{unknown[0] + 1}; connues: "
            + ", ".join(f"{y}-{y + 1}" for y in SCHOOL_HOLIDAYS_ZONE_C)
        )
    holiday = np.zeros(len(days), dtype=bool)
    for y in years:
        for a, b in SCHOOL_HOLIDAYS_ZONE_C[y]:
            holiday |= (days >= pd.Timestamp(a)) & (days <= pd.Timestamp(b))
    public = {d for y in range(start.year, end.year + 1) for d in public_holidays(y)}
    is_public = np.array([d.date() in public for d in days])
    dow = days.day_of_week.to_numpy()
    weight = np.select(
        [is_public, holiday & (dow >= 5), holiday, dow == 2, dow == 5, dow == 6],
        [0.1, 0.06, 0.12, 0.45, 0.25, 0.2],
        1.0,
    )
    school_day = ~holiday & ~is_public & np.isin(dow, [0, 1, 3, 4])
    return pd.DataFrame(
        {"date": days, "dow": dow, "holiday": holiday | is_public, "school_day": school_day,
         "weight": weight}
    )  # fmt: skip
