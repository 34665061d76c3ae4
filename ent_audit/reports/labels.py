"""French labels, category orders and colours, number and date formats: one place for every report.

A coordinator reads French: « 50 179 élèves », « 12,5 % », « 14/09/2026 », times in Paris.
Code and ``summary.json`` keep stable English keys; this module is where they become French.
A category (a level, a cycle, a profile, a severity) has one order and one colour on every chart
of every report, so a reader who learnt them once reads the next page at a glance.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from zoneinfo import ZoneInfo

import pandas as pd

from ent_audit.aaf import schema

THOUSANDS = "\u202f"
"""Narrow no-break space, the French thousands separator (never cut at a line end)."""
DECIMAL = ","
PLOTLY_SEPARATORS = DECIMAL + THOUSANDS
"""plotly's ``layout.separators``: decimal mark, then thousands separator."""
PARIS = ZoneInfo("Europe/Paris")
MISSING = "non renseigné"
"""How an absent value reads, in tables and as a chart category."""
EMPTY = "—"

# -- labels ---------------------------------------------------------------------------------

COLUMNS: dict[str, str] = {
    # people and places
    "schools": "écoles",
    "other_structures": "autres structures",
    "circonscription": "circonscription",
    "circonscriptions": "circonscriptions",
    "commune": "commune",
    "communes": "communes",
    "pupils": "élèves",
    "guardians": "responsables",
    "teachers": "enseignants",
    "other_staff": "autres personnels",
    "staff": "personnels",
    "people": "personnes",
    "uai": "UAI",
    "school": "école",
    "name": "nom",
    "level": "niveau",
    "cycle": "cycle",
    "class": "classe",
    "profile": "profil",
    "count": "effectif",
    "share": "part",
    # runs and extractions
    "state_date": "date de l'état",
    "extractions_ingested": "extractions ingérées",
    "reader_issues": "signalements du lecteur",
    "archive": "archive",
    "extraction": "type",
    "date": "date",
    "sha256": "SHA-256",
    "ingested_at": "ingérée le",
    "anomalies": "anomalies",
    "students": "élèves",
    # checks and findings
    "findings": "constats",
    "blocking_findings": "constats bloquants",
    "rules_failed": "règles en échec",
    "rule": "règle",
    "severity": "sévérité",
    "status": "statut",
    "population": "population",
    "rate": "taux",
    "threshold": "seuil",
    "score": "score qualité",
    "examples": "exemples",
    # delta
    "divergences": "divergences",
    "modify_noop": "modifications sans effet",
    "pupils_moved": "élèves ayant changé d'école",
    "extractions": "extractions",
    # retention
    "as_of": "situation au",
    "overdue_total": "éléments en retard",
    "upcoming_total": "à échéance proche",
    # activity
    "schools_open": "écoles à l'ENT ouvert",
    "schools_total": "écoles",
    "visits": "visites",
    "unique_visitors": "visiteurs uniques",
}
"""French label of a column or figure key. Reports add their own with ``labels=``."""


def label(key: str, extra: dict[str, str] | None = None) -> str:
    """The French label of ``key``; an unknown key reads as words, never as ``snake_case``."""
    if extra and key in extra:
        return extra[key]
    return COLUMNS.get(key, str(key).replace("_", " "))


EXTRACTION_TYPES = {"complete": "Complet", "delta": "Delta"}

FILES = {
    "manifest.json": "manifeste (JSON)",
    "summary.json": "chiffres clés (JSON)",
    "findings.csv": "constats (CSV)",
}
"""How a run's files are named in links; the file name itself stays in the link's title."""


def file_label(name: str) -> str:
    return FILES.get(name, name)


PLOTLY_DEFAULTS = {
    "count": "effectif",
    "sum": "somme",
    "percent": "pourcentage",
    "probability": "probabilité",
    "density": "densité",
    "index": "rang",
    "value": "valeur",
    "variable": "variable",
}
"""Titles plotly express makes up (a histogram's « count »), in French."""

# -- categories: one order and one colour everywhere ----------------------------------------

CYCLE_COLOURS = {
    "cycle 1": "#e69f00",
    "cycle 2": "#0072b2",
    "cycle 3": "#009e73",
    MISSING: "#999999",
}
"""Okabe-Ito colours (readable by colour-blind readers); grey for what is missing."""

LEVELS: tuple[str, ...] = (*schema.LEVELS, MISSING)
CYCLES: tuple[str, ...] = tuple(CYCLE_COLOURS)
LEVEL_COLOURS = {
    **{lvl: CYCLE_COLOURS[f"cycle {cyc}"] for lvl, cyc in schema.LEVEL_CYCLE.items()},
    MISSING: CYCLE_COLOURS[MISSING],
}
"""A level takes its cycle's colour: the level and the cycle charts read together."""

PROFILES = {
    "pupil": "élèves",
    "guardian": "responsables",
    "teacher": "enseignants",
    "director": "directeurs",
    "other_staff": "autres personnels",
}
PROFILE_COLOURS = {
    "élèves": "#0072b2",
    "responsables": "#56b4e9",
    "enseignants": "#009e73",
    "directeurs": "#cc79a7",
    "autres personnels": "#999999",
}
SEVERITIES = {"blocking": "bloquant", "warning": "avertissement", "info": "information"}
SEVERITY_COLOURS = {"bloquant": "#d55e00", "avertissement": "#e69f00", "information": "#56b4e9"}

CATEGORY_ORDERS: dict[str, list[str]] = {
    "level": list(LEVELS),
    "cycle": list(CYCLES),
    "profile": list(PROFILE_COLOURS),
    "severity": list(SEVERITY_COLOURS),
}
"""plotly's ``category_orders`` by column name."""
COLOURS: dict[str, str] = {
    **LEVEL_COLOURS,
    **CYCLE_COLOURS,
    **PROFILE_COLOURS,
    **SEVERITY_COLOURS,
}
"""plotly's ``color_discrete_map``: a category value has one colour on every chart."""


def level_label(levels: pd.Series) -> pd.Series:
    """AAF level codes as they are (« CP »); a missing one as « non renseigné »."""
    return levels.astype(object).where(levels.notna(), MISSING)


def cycle_label(cycles: pd.Series) -> pd.Series:
    """Integer cycles as « cycle 1 »; a missing one as « non renseigné »."""
    as_int = pd.to_numeric(cycles, errors="coerce").astype("Int64")
    return ("cycle " + as_int.astype("string")).fillna(MISSING).astype(object)


# -- numbers --------------------------------------------------------------------------------


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def number(value, decimals: int = 0) -> str:
    """``50179`` -> « 50 179 », ``97.5`` with one decimal -> « 97,5 »; text is kept (« <5 »)."""
    if _missing(value):
        return EMPTY
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "oui" if value else "non"
    text = f"{value:,.{decimals}f}"
    return text.replace(",", THOUSANDS).replace(".", DECIMAL)


def percent(ratio, decimals: int = 1) -> str:
    """``0.125`` -> « 12,5 % » (a share between 0 and 1)."""
    if _missing(ratio):
        return EMPTY
    return f"{number(100 * ratio, decimals)}{THOUSANDS}%"


# -- dates ----------------------------------------------------------------------------------


def date(value) -> str:
    """« 14/09/2026 » from a date, a datetime, a Timestamp or an ISO string."""
    if _missing(value) or value == "":
        return EMPTY
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return f"{value:%d/%m/%Y}"


def datetime(value) -> str:
    """« 14/09/2026 08:30 », in Paris time; a naive value is taken as UTC (how we store)."""
    if _missing(value) or value == "":
        return EMPTY
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return f"{value.astimezone(PARIS):%d/%m/%Y %H:%M}"


def datetimes(values: pd.Series) -> pd.Series:
    """:func:`datetime` for a column (vectorised: naive values are UTC)."""
    ts = pd.to_datetime(values)
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    return ts.dt.tz_convert(PARIS).dt.strftime("%d/%m/%Y %H:%M")


def duration(seconds: float) -> str:
    """« 6,2 s » or « 2 min 05 s »."""
    if seconds < 60:
        return f"{number(seconds, 1)}{THOUSANDS}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}{THOUSANDS}min {rest:02d}{THOUSANDS}s"


# -- names ----------------------------------------------------------------------------------

_DOLLARS = re.compile(r"\s*\$+\s*")


def school_name(raw: str | None) -> str:
    """``ECOLE ELEMENTAIRE PUBLIQUE$JEAN JAURES`` -> ``ECOLE ELEMENTAIRE PUBLIQUE JEAN JAURES``:
    AAF joins the parts of a school name with ``$``, a reader wants words."""
    if _missing(raw):
        return MISSING
    return _DOLLARS.sub(" ", str(raw)).strip() or MISSING


def school_names(raw: pd.Series) -> pd.Series:
    """:func:`school_name` for a column (vectorised)."""
    out = raw.astype("string").str.replace(_DOLLARS, " ", regex=True).str.strip()
    return out.mask(out.isna() | (out == ""), MISSING).astype(object)
