"""The perimeter at a glance: counts per kind and per circonscription (pure functions)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ent_audit.aaf import population, schema
from ent_audit.aaf.snapshot import Snapshot
from ent_audit.checks import Check
from ent_audit.store.store import columns

schools = population.schools

COLUMNS = columns(
    population.NEEDS,
    {
        "structures": ("jointure", "op", "struct_type", "circonscription", "commune"),
        "students": ("op", "level", "cycle"),
        "guardians": ("op",),
        "staff": ("op",),
        "issues": ("code",),
    },
)
"""The Parquet columns this page reads (``Store.latest(columns=overview.COLUMNS)``): the
memberships' and the counts', a fraction of the state (no names, no addresses)."""


def _at_schools(snapshot: Snapshot, members: pd.DataFrame | None, keys: list[str]) -> pd.DataFrame:
    """The ``keys`` columns of the memberships at schools (only those: an académie's
    memberships are a million rows of strings, a full copy costs hundreds of MB)."""
    m = population.memberships(snapshot, categorical=True) if members is None else members
    return m.loc[m["is_school"].to_numpy(), keys]


def by_circonscription(snapshot: Snapshot, members: pd.DataFrame | None = None) -> pd.DataFrame:
    """Schools, pupils and staff per circonscription, with a total row.

    A person counts once per circonscription where they belong to a school
    (:mod:`ent_audit.aaf.population`).
    """
    sch = schools(snapshot)
    people = (
        _at_schools(snapshot, members, ["kind", "jointure", "circonscription"])
        .drop_duplicates()
        .groupby(["circonscription", "kind"], observed=True)
        .size()
        .unstack(fill_value=0)
    )
    out = pd.DataFrame({"schools": sch.groupby("circonscription").size()})
    for kind, col in ((schema.STUDENT.name, "pupils"), (schema.STAFF.name, "staff")):
        out[col] = people.get(kind, 0)
    out = out.fillna(0).astype("int64").sort_index()
    out.loc["Total"] = out.sum()
    out.index.name = "circonscription"
    return out


def by_commune(snapshot: Snapshot, members: pd.DataFrame | None = None) -> pd.DataFrame:
    """Schools, pupils and circonscriptions per commune (a city spans several), biggest first."""
    sch = schools(snapshot)[["jointure", "commune", "circonscription"]]
    m = _at_schools(snapshot, members, ["kind", "jointure", "commune"])
    pupils = (
        m.loc[(m["kind"] == schema.STUDENT.name).to_numpy(), ["jointure", "commune"]]
        .drop_duplicates()
        .groupby("commune", observed=True)
        .size()
        .rename("pupils")
    )
    pupils.index = pupils.index.astype(sch["commune"].dtype)  # categorical memberships too
    out = (
        sch.groupby("commune")
        .agg(schools=("jointure", "size"), circonscriptions=("circonscription", "nunique"))
        .reset_index()
        .merge(pupils, left_on="commune", right_index=True, how="left")
    )
    out["pupils"] = out["pupils"].fillna(0).astype("int64")
    return out.sort_values(["pupils", "commune"], ascending=[False, True]).reset_index(drop=True)


MISSING = "missing"
"""Key of the pupils without a level or cycle in ``summary.json`` (stable, English)."""


def by_level(snapshot: Snapshot) -> pd.DataFrame:
    """Pupils per level, in school order, with the level's cycle (``Int64``); every pupil is
    counted: a level the files do not give is a last row with ``level`` missing, so the rows
    add up to the pupils."""
    st = snapshot.students
    levels = st.loc[st["op"] != "delete", "level"].astype(object)
    counts = levels.value_counts(dropna=False)
    known = [lvl for lvl in schema.LEVELS if lvl in counts.index]
    other = sorted(v for v in counts.index if not pd.isna(v) and v not in schema.LEVELS)
    order = known + other + [v for v in counts.index if pd.isna(v)][:1]
    return pd.DataFrame(
        {
            "level": pd.array([None if pd.isna(v) else v for v in order], dtype="string"),
            "cycle": pd.array(
                [None if pd.isna(v) else schema.LEVEL_CYCLE.get(v) for v in order], dtype="Int64"
            ),
            "pupils": [int(counts[v]) for v in order],
        }
    )


def by_cycle(snapshot: Snapshot) -> pd.DataFrame:
    """Pupils per cycle as the files state it (``ENTEleveCycle``), integers 1–3 in order; a
    missing cycle is a last row with ``cycle`` missing, so the rows add up to the pupils."""
    st = snapshot.students
    cycles = pd.to_numeric(st.loc[st["op"] != "delete", "cycle"], errors="coerce").astype("Int64")
    counts = cycles.value_counts(dropna=False)
    known = sorted(int(v) for v in counts.index if not pd.isna(v))
    order = known + [v for v in counts.index if pd.isna(v)][:1]
    return pd.DataFrame(
        {
            "cycle": pd.array([None if pd.isna(v) else v for v in order], dtype="Int64"),
            "pupils": [int(counts[v]) for v in order],
        }
    )


def extractions(history: pd.DataFrame) -> pd.DataFrame:
    """The ingested extractions as the report lists them (short SHA-256: full in the store)."""
    cols = ["archive", "extraction", "date", "sha256", "ingested_at", "anomalies"]
    cols += [c for c in ("students", "guardians", "staff") if c in history.columns]
    return history.assign(sha256=history["sha256"].str[:12])[cols]


def people(snapshot: Snapshot, members: pd.DataFrame | None = None) -> dict[str, int]:
    """Headline counts: schools, other structures, pupils, guardians, teachers, other staff.

    ``members``: :func:`population.memberships` of the snapshot when the caller has it
    already (it is the costly part: a whole académie's takes seconds)."""
    sch = schools(snapshot)
    staff = population.live(snapshot.staff)
    m = population.memberships(snapshot, categorical=True) if members is None else members
    teachers = m.loc[((m["kind"] == schema.STAFF.name) & m["teacher"]).to_numpy(), "jointure"]
    teachers = int(teachers.nunique())
    return {
        "schools": len(sch),
        "other_structures": len(snapshot.structures) - len(sch),
        "circonscriptions": int(sch["circonscription"].nunique()),
        "communes": int(sch["commune"].nunique()),
        "pupils": int((snapshot.students["op"] != "delete").sum()),
        "guardians": int((snapshot.guardians["op"] != "delete").sum()),
        "teachers": teachers,
        "other_staff": len(staff) - teachers,
    }


def checks(snapshot: Snapshot, *, today: dt.date, max_age_days: int) -> list[Check]:
    """The overview's checks: a stale state blocks (reports would describe the past)."""
    date = snapshot.extraction.date
    age = (today - date).days if date else None
    fresh = age is not None and 0 <= age <= max_age_days
    if age is None:
        freshness = "état sans date d'extraction"
    else:
        verdict = "dans la limite" if fresh else "limite dépassée"
        freshness = (
            f"état du {date:%d/%m/%Y}, {age} jour(s) avant le {today:%d/%m/%Y} : "
            f"{verdict} de {max_age_days} jours"
        )
    n_schools = len(schools(snapshot))
    return [
        Check.of(
            "freshness",
            f"Fraîcheur de l'état du store (au plus {max_age_days} jours)",
            fresh,
            blocking=True,
            detail=freshness,
        ),
        Check.of(
            "schools_present",
            "Présence d'écoles dans le périmètre",
            n_schools > 0,
            blocking=True,
            detail=f"{n_schools:,} école(s)".replace(",", "\u202f"),
        ),
        Check.of(
            "reader_issues",
            "Signalements du lecteur XML",
            len(snapshot.issues) == 0,  # not .empty: a frame read with no column is "empty"
            detail=f"{len(snapshot.issues)} signalement(s)",
        ),
    ]


def figures(snapshot: Snapshot, history: pd.DataFrame, members: pd.DataFrame | None = None) -> dict:
    """The key figures ``summary.json`` publishes (counts only, nothing personal)."""
    levels, cycles = by_level(snapshot), by_cycle(snapshot)
    return {
        **people(snapshot, members),
        "state_date": str(snapshot.extraction.date),
        "extractions_ingested": len(history),
        "pupils_by_level": dict(
            zip(levels["level"].fillna(MISSING), levels["pupils"], strict=True)
        ),
        "pupils_by_cycle": dict(
            zip(cycles["cycle"].astype("string").fillna(MISSING), cycles["pupils"], strict=True)
        ),
        "reader_issues": len(snapshot.issues),
    }
