"""The perimeter at a glance: counts per kind and per circonscription (pure functions)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ent_audit.aaf import population, schema
from ent_audit.aaf.snapshot import Snapshot
from ent_audit.checks import Check

schools = population.schools


def _at_schools(snapshot: Snapshot) -> pd.DataFrame:
    return population.at_schools(population.memberships(snapshot))


def by_circonscription(snapshot: Snapshot, members: pd.DataFrame | None = None) -> pd.DataFrame:
    """Schools, pupils and staff per circonscription, with a total row.

    A person counts once per circonscription where they belong to a school
    (:mod:`ent_audit.aaf.population`).
    """
    sch = schools(snapshot)
    m = population.at_schools(members) if members is not None else _at_schools(snapshot)
    people = (
        m.drop_duplicates(["kind", "jointure", "circonscription"])
        .groupby(["circonscription", "kind"])
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
    m = population.at_schools(members) if members is not None else _at_schools(snapshot)
    pupils = (
        m[(m["kind"] == schema.STUDENT.name).to_numpy()]
        .drop_duplicates(["jointure", "commune"])
        .groupby("commune")
        .size()
        .rename("pupils")
    )
    out = (
        sch.groupby("commune")
        .agg(schools=("jointure", "size"), circonscriptions=("circonscription", "nunique"))
        .reset_index()
        .merge(pupils, left_on="commune", right_index=True, how="left")
    )
    out["pupils"] = out["pupils"].fillna(0).astype("int64")
    return out.sort_values(["pupils", "commune"], ascending=[False, True]).reset_index(drop=True)


def by_level(snapshot: Snapshot) -> pd.DataFrame:
    """Pupils per level, in school order, with the level's cycle; unknown levels last."""
    st = snapshot.students
    st = st[st["op"] != "delete"]
    counts = st["level"].fillna("(absent)").value_counts()
    order = [lvl for lvl in schema.LEVELS if lvl in counts.index]
    order += sorted(set(counts.index) - set(order))
    return pd.DataFrame(
        {
            "level": order,
            "cycle": [schema.LEVEL_CYCLE.get(lvl) for lvl in order],
            "pupils": [int(counts[lvl]) for lvl in order],
        }
    )


def by_cycle(snapshot: Snapshot) -> pd.DataFrame:
    """Pupils per cycle as the files state it (``ENTEleveCycle``), missing ones counted."""
    st = snapshot.students
    cycles = st.loc[st["op"] != "delete", "cycle"].astype("Int64").astype(str)
    counts = cycles.replace("<NA>", "(absent)").value_counts().sort_index()
    return pd.DataFrame({"cycle": counts.index, "pupils": counts.to_numpy()})


def people(snapshot: Snapshot) -> dict[str, int]:
    """Headline counts: schools, other structures, pupils, guardians, teachers, other staff."""
    sch = schools(snapshot)
    staff = population.live(snapshot.staff)
    m = population.memberships(snapshot)
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
            detail=f"{n_schools} école(s)",
        ),
        Check.of(
            "reader_issues",
            "Signalements du lecteur XML",
            snapshot.issues.empty,
            detail=f"{len(snapshot.issues)} signalement(s)",
        ),
    ]


def figures(snapshot: Snapshot, history: pd.DataFrame) -> dict:
    """The key figures ``summary.json`` publishes (counts only, nothing personal)."""
    levels = by_level(snapshot)
    return {
        **people(snapshot),
        "state_date": str(snapshot.extraction.date),
        "extractions_ingested": len(history),
        "pupils_by_level": dict(zip(levels["level"], levels["pupils"], strict=True)),
        "reader_issues": len(snapshot.issues),
    }
