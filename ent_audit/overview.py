"""The perimeter at a glance: counts per kind and per circonscription (pure functions)."""

from __future__ import annotations

import pandas as pd

from .snapshot import Snapshot

SCHOOL_TYPE = "ECOLE"


def schools(snapshot: Snapshot) -> pd.DataFrame:
    """Structures that are schools, not the circonscription or academy offices beside them."""
    s = snapshot.structures
    return s[s["struct_type"].str.upper().str.strip() == SCHOOL_TYPE]


def by_circonscription(snapshot: Snapshot) -> pd.DataFrame:
    """Schools, pupils and staff per circonscription, with a total row.

    A person counts once per circonscription where one of their attachments lies.
    """
    sch = schools(snapshot)[["jointure", "circonscription"]]
    where = sch.rename(columns={"jointure": "structure"})
    links = snapshot.links["person_structure"].merge(where, on="structure")
    people = (links.drop_duplicates(["person", "kind", "circonscription"])
                   .groupby(["circonscription", "kind"]).size().unstack(fill_value=0))
    out = pd.DataFrame({"schools": sch.groupby("circonscription").size()})
    for kind, col in (("student", "pupils"), ("staff", "staff")):
        out[col] = people.get(kind, 0)
    out = out.fillna(0).astype("int64").sort_index()
    out.loc["Total"] = out.sum()
    out.index.name = "circonscription"
    return out
