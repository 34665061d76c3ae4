"""Pseudonymous presence history: who was where, from when to when, without names.

One row per spell: a person (keyed pseudonym), their kind, one school (UAI), the first and
the last extraction date they were seen there, their level (pupils) and the date of the first
extraction that no longer had them (``departed``). A person who comes back opens a new spell.
This is all the store keeps of earlier extractions: enough for delta, retention and trend
analyses, and no personal data in clear.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ent_audit.aaf import population, schema
from ent_audit.aaf.frames import isin
from ent_audit.aaf.snapshot import Snapshot
from ent_audit.store import pseudonym

COLUMNS = ("pseudonym", "kind", "uai", "level", "first_seen", "last_seen", "departed")
KEYS = ["pseudonym", "kind", "uai"]
STRING = pd.StringDtype("pyarrow")


def empty() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in COLUMNS}))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("pseudonym", "kind", "uai", "level"):
        df[c] = df[c].astype(STRING)
    for c in ("first_seen", "last_seen", "departed"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    return df.reset_index(drop=True)


def present(snapshot: Snapshot, key: bytes) -> pd.DataFrame:
    """Who is in ``snapshot``, where: (pseudonym, kind, uai, level), one row per school.

    Where a person is comes from :func:`ent_audit.aaf.population.memberships`, the one
    definition every report uses; a person in no structure has one row with no UAI.
    """
    m = population.memberships(snapshot)[["kind", "jointure", "uai"]]
    students = population.live(snapshot.students).drop_duplicates("jointure")
    level = students.set_index("jointure")["level"]
    out = m.assign(level=m["jointure"].map(level).where(m["kind"] == schema.STUDENT.name))
    parts = [
        out[(out["kind"] == kind).to_numpy()].assign(
            pseudonym=lambda d, kind=kind: pseudonym.pseudonymise(key, kind, d["jointure"])
        )
        for kind in (schema.STUDENT.name, schema.GUARDIAN.name, schema.STAFF.name)
    ]
    out = pd.concat(parts, ignore_index=True)[["pseudonym", "kind", "uai", "level"]]
    out = out.drop_duplicates(KEYS)
    for c in out.columns:
        out[c] = out[c].astype(STRING)
    return out.reset_index(drop=True)


def update(history: pd.DataFrame | None, now: pd.DataFrame, date: dt.date) -> pd.DataFrame:
    """The history after an extraction dated ``date`` whose presence is ``now``.

    Open spells seen again get ``last_seen = date`` (and the current level); open spells not
    seen are closed with ``departed = date``; new (person, school) pairs open a spell.
    """
    history = empty() if history is None else history
    day = pd.Timestamp(date)
    closed = history[history["departed"].notna()]
    open_ = history[history["departed"].isna()]
    left = open_.assign(_k=_key(open_)).merge(
        now.assign(_k=_key(now))[["_k", "level"]],
        on="_k",
        how="left",
        suffixes=("", "_now"),
        indicator=True,
    )
    seen = left["_merge"] == "both"
    left.loc[seen, "last_seen"] = day
    left.loc[seen, "level"] = left.loc[seen, "level_now"]
    left.loc[~seen, "departed"] = day
    still = left.loc[seen, "_k"]
    new = now[~isin(_key(now), still)].assign(first_seen=day, last_seen=day, departed=pd.NaT)
    out = pd.concat([closed, left[list(COLUMNS)], new[list(COLUMNS)]], ignore_index=True)
    return _typed(out.sort_values([*KEYS, "first_seen"], kind="stable"))


def _key(df: pd.DataFrame) -> pd.Series:
    return (
        df["pseudonym"].astype(str)
        + "|"
        + df["kind"].astype(str)
        + "|"
        + df["uai"].astype(object).fillna("").astype(str)
    )
