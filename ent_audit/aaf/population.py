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

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING, arrow_strings, first_rows

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
LINKS = ("person_structure", "student_class", "staff_director", "staff_function",
         "student_guardian")  # fmt: skip
"""The link tables :func:`memberships` reads: a store reader may give them with their ids as
Arrow dictionaries (each distinct id decoded and looked up once; the same memberships)."""


def live(df: pd.DataFrame) -> pd.DataFrame:
    """Records of a state (a Delta's deletions left out)."""
    mask = live_mask(df)
    return df if mask is None else df[mask]


def live_mask(df: pd.DataFrame) -> np.ndarray | None:
    """Which rows :func:`live` keeps (None: all of them)."""
    return (df["op"] != "delete").to_numpy(dtype=bool) if "op" in df else None


def is_school(structures: pd.DataFrame) -> pd.Series:
    """Structures that are schools, not the circonscription or academy offices beside them."""
    return structures["struct_type"].str.strip().str.upper().eq(SCHOOL_TYPE).fillna(False)


def schools(snapshot: Snapshot) -> pd.DataFrame:
    """The snapshot's schools (live ``ECOLE`` structures)."""
    s = live(snapshot.structures)
    return s[is_school(s).to_numpy(dtype=bool)]


VIA_DTYPE = pd.CategoricalDtype(list(VIA))
"""How a membership is known, as codes while memberships are built (no string per row)."""

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
    groups.

    Computed on integer codes: each person's and structure's id is looked up once in its
    dictionary (the live people's ids, the structures' ids), joins and duplicates are found
    on the codes, and the ids are decoded at the end (an académie: a million links of
    strings would otherwise be copied by each step)."""
    links = snapshot.links
    ps = links["person_structure"]
    structures = live(snapshot.structures)
    where = structures[first_rows(structures, ["jointure"])]
    places = _Places(arrow_strings(where["jointure"]))
    people = {
        k: pc.unique(arrow_strings(live(getattr(snapshot, f))["jointure"]))
        for k, f in (("pupil", "students"), ("guardian", "guardians"))
    }
    staff = live(snapshot.staff)
    staff = staff[first_rows(staff, ["jointure"])]
    people["staff"] = arrow_strings(staff["jointure"])

    def pairs(df: pd.DataFrame, person: str, kind: str, via: str) -> _Rows:
        df = df[[person, "structure"]].dropna()
        who = _index_in(df[person], people[kind])
        live_ = who.is_valid().to_numpy(zero_copy_only=False)
        return _Rows(
            who.drop_null().to_numpy().astype(np.int64),
            places.codes(df["structure"])[live_],
            np.full(int(live_.sum()), VIA.index(via), dtype=np.int8),
        )

    is_student = (ps["kind"] == "student").to_numpy()
    pupil_rows = _Rows.concat(
        [
            pairs(ps[is_student], "person", "pupil", "attachment"),
            pairs(links["student_class"], "student", "pupil", "class"),
        ]
    ).first_of_each()
    is_staff = (ps["kind"] == "staff").to_numpy()
    staff_rows = _Rows.concat(
        [
            pairs(ps[is_staff], "person", "staff", "attachment"),
            pairs(links["staff_director"], "staff", "staff", "director"),
            pairs(links["staff_function"], "staff", "staff", "function"),
        ]
    ).first_of_each()

    # A guardian's rows: each structure of each of their placed pupils, first pupil first.
    sg = links["student_guardian"][["student", "guardian"]].dropna()
    pupil = _index_in(sg["student"], people["pupil"])
    guardian = _index_in(sg["guardian"], people["guardian"])
    known = pc.and_(pupil.is_valid(), guardian.is_valid()).to_numpy(zero_copy_only=False)
    del sg
    g = guardian.filter(known).to_numpy()  # int32 positions
    p = pupil.filter(known).to_numpy()
    del pupil, guardian, known
    # Each (guardian, pupil) once, first row first: on one int64 key (pandas' duplicated
    # hashes both columns, ~50 MB of table for an académie's million links).
    first = _first_of_each(g.astype(np.int64) * (len(people["pupil"]) + 1) + p)
    pairs_ = pd.DataFrame(
        {"guardian": g[first].astype(np.int64), "pupil": p[first].astype(np.int64)}
    )
    del g, p, first
    placed = pupil_rows.placed()
    linked = pairs_.merge(
        pd.DataFrame(
            {"pupil": placed.person, "structure": placed.structure, "primary": placed.primary}
        ),
        on="pupil",
    )
    del pairs_
    g = linked["guardian"].to_numpy()
    p = linked["pupil"].to_numpy()
    first = np.unique(g, return_index=True)[1]
    first_pupil = np.empty(len(people["guardian"]), dtype=np.int64)
    first_pupil[g[first]] = p[first]
    # The first pupil who is in a school: a guardian whose first pupil is in none still has one.
    primary = linked["primary"].to_numpy() & (p == first_pupil[g])
    order = np.argsort(~primary, kind="stable")
    guardian_rows = _Rows(
        g[order],
        linked["structure"].to_numpy()[order],
        np.full(len(order), VIA.index("pupil"), dtype=np.int8),
        primary[order],
    )
    del linked, g, p, primary, order
    guardian_rows = guardian_rows.unique()

    teaches = staff["is_teacher"].fillna(False).to_numpy(dtype=bool)
    parts = [
        pupil_rows.with_unplaced(len(people["pupil"])),
        guardian_rows.with_unplaced(len(people["guardian"])),
        staff_rows.with_unplaced(len(people["staff"])),
    ]
    pupil_rows, guardian_rows, staff_rows = parts
    director_rows = pairs(links["staff_director"], "staff", "staff", "director")
    director = np.isin(staff_rows.key(places.size), director_rows.key(places.size)) & (
        staff_rows.structure >= 0
    )
    teacher = teaches[staff_rows.person]
    staff_profile = np.where(
        director,
        PROFILES.index(Profile.DIRECTOR),
        np.where(teacher, PROFILES.index(Profile.TEACHER), PROFILES.index(Profile.OTHER_STAFF)),
    )
    n = [len(r.person) for r in parts]
    kinds = (schema.STUDENT.name, schema.GUARDIAN.name, schema.STAFF.name)
    rows = _Rows.concat(parts)
    jointure = pa.concat_arrays(
        [
            people[k].take(r.person).cast(pa.large_string())  # pandas' own type: no copy
            for k, r in zip(("pupil", "guardian", "staff"), parts, strict=True)
        ]
    )
    # What placed them goes before the frame is built (an académie's peak here: -16 MB).
    people.clear()
    del parts, pupil_rows, guardian_rows, staff_rows, director_rows, director
    frame = pd.DataFrame(
        {
            "kind": _coded(np.repeat(np.arange(3, dtype=np.int8), n), pa.array(kinds), categorical),
            "jointure": pd.array(jointure, dtype=STRING),
            "structure": rows.structure,
            "profile": _coded(
                np.concatenate(
                    [
                        np.full(n[0], PROFILES.index(Profile.PUPIL), dtype=np.int8),
                        np.full(n[1], PROFILES.index(Profile.GUARDIAN), dtype=np.int8),
                        staff_profile.astype(np.int8),
                    ]
                ),
                pa.array([str(p) for p in PROFILES]),
                categorical,
            ),
            "teacher": np.concatenate([np.zeros(n[0] + n[1], dtype=bool), teacher]),
            "via": pd.Categorical.from_codes(rows.via, dtype=VIA_DTYPE),
            "primary": rows.primary,
        }
    )
    del rows, jointure, teacher, staff_profile
    return _placed(frame, where, places, categorical)


PROFILES = tuple(Profile)
"""Profiles as codes while memberships are built."""


class _Places:
    """The structures' ids as codes: a structure of the state is its position among them,
    a structure named by a link but absent from the state gets the next free code (the same
    id, the same code, whichever link names it)."""

    def __init__(self, known: pa.Array) -> None:
        self.known = known
        self.unknown = pa.array([], type=pa.string())

    @property
    def size(self) -> int:
        return len(self.known) + len(self.unknown)

    def codes(self, values: pd.Series) -> np.ndarray:
        coded = _dictionary(values)
        if coded is not None and coded.null_count == 0:
            return self._dictionary_codes(coded)
        text = arrow_strings(values)
        at = pc.index_in(text, value_set=self.known)
        missing = at.is_null().to_numpy(zero_copy_only=False)
        out = at.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        if missing.any():
            other = text.filter(pa.array(missing))
            new = pc.unique(other.filter(pc.invert(pc.is_in(other, value_set=self.unknown))))
            self.unknown = pa.concat_arrays([self.unknown, new])
            more = pc.index_in(other, value_set=self.unknown).to_numpy(zero_copy_only=False)
            out[missing] = len(self.known) + more
        return out

    def _dictionary_codes(self, values: pa.DictionaryArray) -> np.ndarray:
        """:meth:`codes` of a dictionary array without nulls, each distinct value looked up
        once; the unknown ones get their codes in the order their rows come (as :meth:`codes`
        of the strings gives them)."""
        names = values.dictionary.cast(pa.string())
        rows = values.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        at = pc.index_in(names, value_set=self.known).fill_null(-1).to_numpy(zero_copy_only=False)
        out = at.astype(np.int64)[rows]
        missing = out < 0
        if missing.any():
            seen, first = np.unique(rows[missing], return_index=True)
            other = names.take(pa.array(seen[np.argsort(first)]))
            new = other.filter(pc.invert(pc.is_in(other, value_set=self.unknown)))
            self.unknown = pa.concat_arrays([self.unknown, new])
            more = pc.index_in(names, value_set=self.unknown).fill_null(-1)
            more = more.to_numpy(zero_copy_only=False).astype(np.int64)
            out[missing] = len(self.known) + more[rows[missing]]
        return out

    def names(self) -> pa.Array:
        return pa.concat_arrays([self.known, self.unknown])


def _dictionary_chunks(values: pd.Series) -> pa.ChunkedArray | None:
    """A column held as Arrow dictionaries (the store's link tables read for memberships:
    ``Store.read_snapshot(dictionary=…)``), chunk by chunk as read; None for any other."""
    dtype = values.dtype
    if not (isinstance(dtype, pd.ArrowDtype) and pa.types.is_dictionary(dtype.pyarrow_dtype)):
        return None
    arrow = values.array.__arrow_array__()
    return arrow if isinstance(arrow, pa.ChunkedArray) else pa.chunked_array([arrow])


def _dictionary(values: pd.Series) -> pa.DictionaryArray | None:
    """:func:`_dictionary_chunks` as one dictionary array (their dictionaries unified)."""
    chunks = _dictionary_chunks(values)
    return None if chunks is None else chunks.combine_chunks()


def _index_in(values: pd.Series, value_set: pa.Array) -> pa.Array:
    """``pc.index_in`` of a string column (null: not found). A dictionary column is looked up
    by its dictionaries, each distinct id of each chunk once, never as one string per row;
    and chunk by chunk, not unified first (a Complet's guardian links: eight row groups of
    up to 113,000 distinct ids each, whose unification alone took 0.24 s)."""
    chunks = _dictionary_chunks(values)
    if chunks is None:
        return pc.index_in(arrow_strings(values), value_set=value_set)
    if not chunks.num_chunks:
        return pa.array([], type=pa.int32())
    names = pa.concat_arrays([c.dictionary.cast(pa.string()) for c in chunks.chunks])
    at = pc.index_in(names, value_set=value_set)  # one lookup table for every chunk
    parts, start = [], 0
    for c in chunks.chunks:
        parts.append(pc.take(at.slice(start, len(c.dictionary)), c.indices))
        start += len(c.dictionary)
    return pa.concat_arrays(parts)


@dataclass(frozen=True)
class _Rows:
    """Memberships as codes: person (position among the live ids of their kind), structure
    (:class:`_Places`, -1 for none), via (:data:`VIA`, -1 for none), primary."""

    person: np.ndarray
    structure: np.ndarray
    via: np.ndarray
    primary: np.ndarray | None = None

    @staticmethod
    def concat(parts: list[_Rows]) -> _Rows:
        primary = None if any(p.primary is None for p in parts) else [p.primary for p in parts]
        return _Rows(
            np.concatenate([p.person for p in parts]),
            np.concatenate([p.structure for p in parts]),
            np.concatenate([p.via for p in parts]),
            None if primary is None else np.concatenate(primary),
        )

    def key(self, width: int) -> np.ndarray:
        return self.person * (width + 1) + (self.structure + 1)

    def take(self, at: np.ndarray) -> _Rows:
        return _Rows(
            self.person[at],
            self.structure[at],
            self.via[at],
            None if self.primary is None else self.primary[at],
        )

    def unique(self) -> _Rows:
        """The first row of each (person, structure), in row order."""
        key = self.key(int(self.structure.max(initial=-1)) + 1)
        return self.take(_first_of_each(key))

    def first_of_each(self) -> _Rows:
        """:meth:`unique` after sorting by :data:`VIA` (stable), each person's first row
        ``primary``."""
        rows = self
        if (np.diff(self.via) < 0).any():
            rows = self.take(np.argsort(self.via, kind="stable"))
        rows = rows.unique()
        primary = np.zeros(len(rows.person), dtype=bool)
        primary[np.unique(rows.person, return_index=True)[1]] = True
        return _Rows(rows.person, rows.structure, rows.via, primary)

    def placed(self) -> _Rows:
        return self.take(self.structure >= 0)

    def with_unplaced(self, people: int) -> _Rows:
        """People (codes ``0..people-1``) in no row added, in their order, one row each."""
        seen = np.zeros(people, dtype=bool)
        seen[self.person] = True
        alone = np.flatnonzero(~seen)
        n = len(alone)
        assert self.primary is not None
        return _Rows.concat(
            [
                self,
                _Rows(
                    alone.astype(np.int64),
                    np.full(n, -1, dtype=np.int64),
                    np.full(n, -1, dtype=np.int8),
                    np.ones(n, dtype=bool),
                ),
            ]
        )


def _first_of_each(key: np.ndarray) -> np.ndarray:
    """The positions of each key's first row, in row order (pairs of codes combined into one
    int64 key: no hash table of their columns)."""
    return np.sort(np.unique(key, return_index=True)[1])


def _coded(codes: np.ndarray, names: pa.Array, categorical: bool) -> Any:
    """Codes into ``names`` (-1: missing) as strings, or as a categorical whose categories
    are the values present, sorted (what ``pd.factorize(strings, sort=True)`` gives)."""
    if not categorical:
        taken = names.cast(pa.large_string()).take(pa.array(codes, mask=codes < 0))
        return pd.array(taken, dtype=STRING)
    used = np.unique(codes[codes >= 0])
    order, categories = pd.factorize(pd.array(names.take(used), dtype=STRING), sort=True)
    remap = np.full(len(names) + 1, -1, dtype=np.int64)
    remap[used] = order
    return pd.Categorical.from_codes(remap[codes], categories=categories)


def _placed(
    rows: pd.DataFrame, where: pd.DataFrame, places: _Places, categorical: bool
) -> pd.DataFrame:
    """The rows with their structure's UAI, circonscription, commune and whether it is a
    school, looked up by the structure's code (its position in ``where``)."""
    code = rows["structure"].to_numpy()
    at = np.where(code < len(where), code, -1)
    # A row with no structure takes the state's structure with no id, if any (as a lookup
    # of the missing id would).
    nulls = np.flatnonzero(where["jointure"].isna().to_numpy())
    at[code < 0] = nulls[0] if len(nulls) else -1

    def looked_up(column: str) -> pd.Categorical:
        codes, uniques = pd.factorize(where[column].astype(STRING), sort=True)
        return pd.Categorical.from_codes(np.append(codes, -1)[at], categories=uniques)

    school = np.append(is_school(where).to_numpy(dtype=bool), False)
    out = pd.DataFrame(
        {
            "kind": rows["kind"],
            "jointure": rows["jointure"],
            "structure": _coded(code, places.names(), categorical),
            "uai": looked_up("uai"),
            "is_school": school[at],
            "circonscription": looked_up("circonscription"),
            "commune": looked_up("commune"),
            "profile": rows["profile"],
            "teacher": rows["teacher"],
            "via": rows["via"],
            "primary": rows["primary"],
        }
    )
    for c in REPEATED:
        out[c] = _category(out[c]) if categorical else out[c].astype(STRING)
    return out


def _category(values: pd.Series) -> pd.Series:
    """Strings as a categorical with sorted categories (groupings then come out in the order
    the strings would)."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # already sorted (VIA: in its order)
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
