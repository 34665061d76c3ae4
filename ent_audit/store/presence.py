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

from ent_audit.aaf import schema
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

    Pupils and staff are where they are attached (and, for pupils, where their classes are);
    guardians are where their pupils are. A person attached nowhere has one row with no UAI.
    """
    uai = snapshot.structures.drop_duplicates("jointure").set_index("jointure")["uai"]
    ps = snapshot.links["person_structure"]
    cls = snapshot.links["student_class"]
    students = pd.concat(
        [
            ps.loc[ps["kind"] == "student", ["person", "structure"]],
            cls[["student", "structure"]].rename(columns={"student": "person"}),
        ]
    ).drop_duplicates()
    staff = ps.loc[ps["kind"] == "staff", ["person", "structure"]].drop_duplicates()
    sg = snapshot.links["student_guardian"][["student", "guardian"]].drop_duplicates()
    guardians = (
        sg.merge(students, left_on="student", right_on="person")[["guardian", "structure"]]
        .rename(columns={"guardian": "person"})
        .drop_duplicates()
    )
    parts = []
    for kind, where in (
        (schema.STUDENT, students),
        (schema.GUARDIAN, guardians),
        (schema.STAFF, staff),
    ):
        people = getattr(snapshot, kind.frame)
        people = people.loc[
            people["op"] != "delete", ["jointure"] + (["level"] if kind is schema.STUDENT else [])
        ].drop_duplicates("jointure")
        rows = people.merge(where, left_on="jointure", right_on="person", how="left")
        rows["uai"] = rows["structure"].map(uai)
        rows["pseudonym"] = pseudonym.pseudonymise(key, kind.name, rows["jointure"])
        rows["kind"] = kind.name
        if "level" not in rows:
            rows["level"] = None
        parts.append(rows[["pseudonym", "kind", "uai", "level"]])
    out = pd.concat(parts, ignore_index=True).drop_duplicates(KEYS)
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
