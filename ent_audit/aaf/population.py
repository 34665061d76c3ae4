"""Who belongs to which school, with which profile: the one definition every report uses.

A **membership** is one (person, structure) pair of the snapshot, deleted records left out:

- a **pupil** belongs to each structure they are attached to (``ENTPersonStructRattach``) or
  have a class in (``ENTPersonClasses``);
- a **guardian** belongs to each structure of each of their pupils (``student_guardian``,
  read from either side);
- a **staff** member belongs to each structure they are attached to, direct
  (``ENTPersonFonctions`` director role) or hold a function in (``ENTPersonFonctions``).

Each membership has a **profile**: ``pupil``, ``guardian``, or for staff ``director`` (directs
that structure), else ``teacher`` (``ENTPersonCategorieEnseignant`` = O), else
``other_staff``. ``teacher`` is also a column: a director who teaches counts as a teacher when
a report asks "is there a teacher". A person in no structure has one row with no structure,
so nobody disappears from a count.

Each person's **main school** (``primary``) is the first of their memberships by how it is
known (attachment, then class, then director role, then function) and by file order; a
guardian's is the main school of their first pupil who is in one. Findings and per-school
summaries use it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING, arrow_strings, first_rows, isin

if TYPE_CHECKING:  # snapshot.roster uses this module
    from ent_audit.aaf.snapshot import Snapshot

SCHOOL_TYPE = "ECOLE"


class Profile(StrEnum):
    PUPIL = "pupil"
    GUARDIAN = "guardian"
    TEACHER = "teacher"
    DIRECTOR = "director"
    OTHER_STAFF = "other_staff"


PROFILE_LABELS = {
    Profile.PUPIL: "élèves",
    Profile.GUARDIAN: "responsables",
    Profile.TEACHER: "enseignants",
    Profile.DIRECTOR: "directeurs",
    Profile.OTHER_STAFF: "autres personnels",
}

VIA = ("attachment", "class", "director", "function", "pupil")
"""How a membership is known, in the order that picks a person's main school."""

COLUMNS = (
    "kind", "jointure", "structure", "uai", "is_school", "circonscription", "commune",
    "profile", "teacher", "via", "primary",
)  # fmt: skip


NEEDS: dict[str, tuple[str, ...]] = {
    "structures": ("jointure", "op", "struct_type", "uai", "circonscription", "commune"),
    "students": ("jointure", "op"),
    "guardians": ("jointure", "op"),
    "staff": ("jointure", "op", "is_teacher"),
    "person_structure": ("person", "kind", "structure"),
    "student_class": ("student", "structure"),
    "staff_director": ("staff", "structure"),
    "staff_function": ("staff", "structure"),
    "student_guardian": ("student", "guardian"),
}
"""The columns :func:`memberships` reads, per frame: a reader that loads only these (and its
own) gets the same memberships from a fraction of the state (``Store.latest(columns=...)``)."""


def live(df: pd.DataFrame) -> pd.DataFrame:
    """Records of a state (a Delta's deletions left out)."""
    return df[(df["op"] != "delete").to_numpy()] if "op" in df else df


def is_school(structures: pd.DataFrame) -> pd.Series:
    """Structures that are schools, not the circonscription or academy offices beside them."""
    return structures["struct_type"].str.strip().str.upper().eq(SCHOOL_TYPE).fillna(False)


def schools(snapshot: Snapshot) -> pd.DataFrame:
    """The snapshot's schools (live ``ECOLE`` structures)."""
    s = live(snapshot.structures)
    return s[is_school(s).to_numpy(dtype=bool)]


VIA_DTYPE = pd.CategoricalDtype(list(VIA))
"""How a membership is known, as codes while memberships are built (no string per row)."""


def _pairs(df: pd.DataFrame, person: str, via: str) -> pd.DataFrame:
    out = df[[person, "structure"]].dropna().rename(columns={person: "jointure"})
    return out.assign(via=_constant(via, len(out), out.index))


def _constant(value: str, n: int, index: pd.Index | None = None) -> pd.Series:
    """``n`` times the same :data:`VIA` value, as codes."""
    codes = np.full(n, VIA.index(value), dtype=np.int8)
    return pd.Series(pd.Categorical.from_codes(codes, dtype=VIA_DTYPE), index=index)


REPEATED = ("kind", "structure", "uai", "circonscription", "commune", "profile", "via")
"""The columns of :data:`COLUMNS` that repeat a few values over the rows (a few thousand
structures for a million memberships): categoricals when asked (:func:`memberships`)."""


def memberships(snapshot: Snapshot, *, categorical: bool = False) -> pd.DataFrame:
    """Every (person, structure) membership of the snapshot with its school's place and the
    person's profile there: the columns of :data:`COLUMNS`, one row per person and structure
    (and one row with no structure for a person in none).

    ``categorical``: the :data:`REPEATED` columns as pandas categoricals (categories sorted)
    instead of strings: the same values, a quarter of the memory (an académie's memberships
    take 93 MB as strings, about 20 as categoricals), for a reader that only counts and
    groups."""
    links = snapshot.links
    ps = links["person_structure"]
    students = live(snapshot.students)
    staff = live(snapshot.staff)
    guardians = live(snapshot.guardians)

    pupil_rows = pd.concat(
        [
            _pairs(ps[(ps["kind"] == "student").to_numpy()], "person", "attachment"),
            _pairs(links["student_class"], "student", "class"),
        ],
        ignore_index=True,
    )
    pupil_rows = _of(pupil_rows, students, schema.STUDENT.name)
    pupil_rows["profile"] = str(Profile.PUPIL)

    staff_rows = pd.concat(
        [
            _pairs(ps[(ps["kind"] == "staff").to_numpy()], "person", "attachment"),
            _pairs(links["staff_director"], "staff", "director"),
            _pairs(links["staff_function"], "staff", "function"),
        ],
        ignore_index=True,
    )
    staff_rows = _of(staff_rows, staff, schema.STAFF.name)
    directs = links["staff_director"].dropna(subset=["staff", "structure"])
    key = staff_rows["jointure"].astype(str) + "|" + staff_rows["structure"].astype(str)
    director = isin(key, directs["staff"].astype(str) + "|" + directs["structure"].astype(str))
    flag = staff.drop_duplicates("jointure").set_index("jointure")["is_teacher"]
    teacher = staff_rows["jointure"].map(flag).fillna(False).astype(bool).to_numpy()
    staff_rows["profile"] = np.where(
        director,
        str(Profile.DIRECTOR),
        np.where(teacher, str(Profile.TEACHER), str(Profile.OTHER_STAFF)),
    )
    staff_rows["teacher"] = teacher

    sg = links["student_guardian"].dropna(subset=["student", "guardian"])
    sg = sg[["student", "guardian"]]
    sg = sg[first_rows(sg, ["student", "guardian"])]
    placed = pupil_rows.dropna(subset=["structure"])
    # Joined on the pupils' positions among the placed pupils' ids, not on the strings.
    ids = pc.unique(arrow_strings(placed["jointure"]))
    pupil = pc.index_in(arrow_strings(sg["student"]), value_set=ids)
    known = pupil.is_valid().to_numpy(zero_copy_only=False)
    guardian_rows = pd.DataFrame(
        {
            "guardian": sg["guardian"][known].reset_index(drop=True),
            "pupil": pupil.drop_null().to_numpy(),
        }
    ).merge(
        pd.DataFrame(
            {
                "pupil": pc.index_in(arrow_strings(placed["jointure"]), value_set=ids).to_numpy(),
                "structure": placed["structure"].array,
                "primary": placed["primary"].to_numpy(),
            }
        ),
        on="pupil",
    )
    # The first pupil who is in a school: a guardian whose first pupil is in none still has one.
    guardian_rows["primary"] = guardian_rows["primary"].to_numpy() & _is_first_of(
        guardian_rows["pupil"], guardian_rows["guardian"]
    )
    guardian_rows = guardian_rows[isin(guardian_rows["guardian"], guardians["jointure"])]
    guardian_rows = (
        guardian_rows[["guardian", "structure", "primary"]]
        .rename(columns={"guardian": "jointure"})
        .assign(via=_constant("pupil", len(guardian_rows), guardian_rows.index))
        .sort_values("primary", ascending=False, kind="stable")
    )
    guardian_rows = guardian_rows[first_rows(guardian_rows, ["jointure", "structure"])]
    guardian_rows = _with_unplaced(guardian_rows, guardians, schema.GUARDIAN.name)
    guardian_rows["profile"] = str(Profile.GUARDIAN)

    out = pd.concat([pupil_rows, guardian_rows, staff_rows], ignore_index=True)
    out["teacher"] = out["teacher"].fillna(False).astype(bool)
    return _placed(out, live(snapshot.structures), categorical)


def _of(rows: pd.DataFrame, people: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Rows of live people only, one per (person, structure), each person's first (by
    :data:`VIA` then file order) flagged ``primary``; people in no structure added."""
    rows = rows[isin(rows["jointure"], people["jointure"])]
    rank = rows["via"].cat.codes.to_numpy()
    if (np.diff(rank) < 0).any():  # concatenated in VIA order: no sort
        rows = rows.iloc[np.argsort(rank, kind="stable")]
    rows = rows[first_rows(rows, ["jointure", "structure"])]
    rows["primary"] = first_rows(rows, ["jointure"])
    return _with_unplaced(rows, people, kind)


def _is_first_of(values: pd.Series, groups: pd.Series) -> np.ndarray:
    """Rows whose value is the first value of their group (by row order)."""
    groups_codes, value_codes = _codes(groups), _codes(values)
    first = np.unique(groups_codes, return_index=True)[1]  # codes are 0..k-1
    return value_codes == value_codes[first[groups_codes]]


def _codes(values: pd.Series) -> np.ndarray:
    """Codes 0..k-1 of a column's values, equal values equal codes (strings by Arrow: pandas
    would make a Python string per value)."""
    if isinstance(values.dtype, pd.StringDtype):
        encoded = pc.dictionary_encode(arrow_strings(values))
        return encoded.indices.to_numpy(zero_copy_only=False)
    return pd.factorize(values)[0]


def _with_unplaced(rows: pd.DataFrame, people: pd.DataFrame, kind: str) -> pd.DataFrame:
    ids = people["jointure"]
    ids = ids[first_rows(people, ["jointure"])]
    alone = ids[~isin(ids, rows["jointure"])].astype(STRING)
    none = pd.array([pd.NA] * len(alone), dtype=STRING)
    rows = pd.concat(
        [
            rows.astype({"jointure": STRING, "structure": STRING}),
            pd.DataFrame(
                {
                    "jointure": alone.array,
                    "structure": none,
                    "via": pd.Categorical([None] * len(alone), dtype=VIA_DTYPE),
                    "primary": True,
                }
            ),
        ],
        ignore_index=True,
    )
    return rows.assign(kind=kind)


def _placed(rows: pd.DataFrame, structures: pd.DataFrame, categorical: bool) -> pd.DataFrame:
    where = structures.drop_duplicates("jointure")
    struct = rows["structure"]
    at = pc.index_in(
        pa.array(struct.astype(STRING).array, type=pa.string()),
        value_set=pa.array(where["jointure"].astype(STRING).array, type=pa.string()),
    )
    # -1 where the structure is unknown: it takes the appended missing value (code -1).
    at = at.fill_null(-1).to_numpy(zero_copy_only=False)

    def looked_up(column: str) -> pd.Categorical:
        codes, uniques = pd.factorize(where[column].astype(STRING), sort=True)
        return pd.Categorical.from_codes(np.append(codes, -1)[at], categories=uniques)

    school = is_school(where).to_numpy(dtype=bool)
    out = pd.DataFrame(
        {
            "kind": rows["kind"],
            "jointure": rows["jointure"],
            "structure": struct,
            "uai": looked_up("uai"),
            "is_school": isin(struct, where["jointure"][school]),
            "circonscription": looked_up("circonscription"),
            "commune": looked_up("commune"),
            "profile": rows["profile"],
            "teacher": rows["teacher"],
            "via": rows["via"],
            "primary": rows["primary"].fillna(False).astype(bool),
        }
    )
    for c in REPEATED:
        out[c] = _category(out[c]) if categorical else out[c].astype(STRING)
    out["jointure"] = out["jointure"].astype(STRING)
    return out.reset_index(drop=True)


def _category(values: pd.Series) -> pd.Series:
    """Strings as a categorical with sorted categories (groupings then come out in the order
    the strings would)."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # VIA: already in sorted order
        return values.cat.remove_unused_categories()
    codes, uniques = pd.factorize(values.astype(STRING), sort=True)
    return pd.Series(pd.Categorical.from_codes(codes, categories=uniques), index=values.index)


def main_school(members: pd.DataFrame) -> pd.DataFrame:
    """Each person's main school: (kind, jointure, structure, uai), one row per person."""
    m = members[members["primary"].to_numpy()]
    return m[["kind", "jointure", "structure", "uai"]].drop_duplicates(["kind", "jointure"])


def at_schools(members: pd.DataFrame) -> pd.DataFrame:
    """Memberships in schools only (not in circonscription or academy offices)."""
    return members[members["is_school"].to_numpy()]
