"""A Delta applied to the part of the state it touches, then merged into the state's files.

A Delta names a few thousand records of a state of hundreds of thousands. Its application,
its journal and its presence are computed on :func:`delta_slice`, the part of the state they
read: the Delta's records, the members of the structures it names, the guardians of those
pupils and the pupils of those guardians, every row these people own, every structure. On
that slice :func:`ent_audit.store.apply.apply_delta`, :func:`ent_audit.store.journal.changes`
and :mod:`ent_audit.store.presence` give, for the records the Delta names, the same rows as on
the whole state.

The new state's files are then the old ones with the rows the Delta's records own replaced
(:func:`merged`, :func:`merged_presence`): a filter and a concatenation in Arrow, never the
whole state in pandas. Every frame is still written whole, so a state holds the latest values
only: no older copy of a record is kept anywhere (Annexe 1 of the convention).

Which rows a record owns comes from the schema (:func:`owners`): its entity row, the link rows
its multi-valued attributes state (with their origin, where a table has one), its extras and
issues. ``skipped`` and ``files`` (a few rows per XML part) are the slice's own, whole.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot
from ent_audit.exceptions import StoreCorruptError

FRAMES_DIR = "snapshot"
PRESENCE = "presence.parquet"
WHOLE = ("structures", "skipped", "files")
"""Frames the slice holds whole: the Delta's result is the frame."""

Where = Sequence[tuple[str, Iterable]]
"""A read's row filter: (column, ids) pairs; a row is kept when any of them holds."""


@functools.cache
def owners(frame: str) -> tuple[tuple[str, str, str | None, str | None], ...]:
    """Which rows of ``frame`` a record owns, per kind: (kind name, id column, origin column,
    origin value). A Delta's record replaces exactly these (:mod:`ent_audit.store.apply`)."""
    out = []
    for kind in schema.KINDS.values():
        if frame == kind.frame:
            out.append((kind.name, "jointure", None, None))
        if frame in ("extras", "issues"):
            out.append((kind.name, "jointure", "kind", kind.name))
        for f in kind.multi:
            if f.link == frame:
                origin = schema.LINK_TABLES[frame].origin
                out.append((kind.name, f.owner, origin, kind.entity if origin else None))
    return tuple(dict.fromkeys(out))


def _column(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        return values.cast(pa.string())
    return pa.array(values, type=pa.string())


def owned(rows: pa.Table | pd.DataFrame, frame: str, ids: dict[str, Sequence[str]]) -> np.ndarray:
    """Rows of ``rows`` (rows of ``frame``) owned by the records ``ids`` lists by kind name."""
    out = np.zeros(len(rows), dtype=bool)
    for kind, id_col, origin_col, origin in owners(frame):
        mine = ids.get(kind)
        if mine is None or not len(mine) or not len(rows):
            continue
        values = rows[id_col] if isinstance(rows, pa.Table) else rows[id_col].array
        hit = pc.is_in(_column(values), value_set=pa.array(mine, type=pa.string()))
        if origin_col is not None:
            o = rows[origin_col] if isinstance(rows, pa.Table) else rows[origin_col].array
            hit = pc.and_(hit, pc.equal(_column(o), origin))
        out |= hit.fill_null(False).to_numpy(zero_copy_only=False)
    return out


def _unique(values) -> list[str]:
    """Distinct non-missing ids, in their first order."""
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    return [str(v) for v in pd.unique(series.astype(STRING).dropna())]


def named(delta: Snapshot) -> dict[str, list[str]]:
    """The records a Delta names, by kind name."""
    return {k.name: _unique(getattr(delta, k.frame)["jointure"]) for k in schema.KINDS.values()}


# -- reading the slice --------------------------------------------------------------------


def read(path: Path, columns: list[str] | None = None, where: Where | None = None):
    """One Parquet frame of a state as pandas (only the rows ``where`` names: any pair),
    a missing or damaged file named."""
    table = read_table(path, columns)
    if where is not None:
        table = table.filter(pa.array(_any(table, where)))
    return table.to_pandas()


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One Parquet file as Arrow (pandas' own dtypes come back from its metadata)."""
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise StoreCorruptError(path, "fichier absent") from None
    except Exception as err:  # pyarrow raises several unrelated types for a damaged file
        raise StoreCorruptError(path, f"{type(err).__name__}: {err}") from None


def _any(table: pa.Table, where: Where) -> np.ndarray:
    """Rows of ``table`` where one of the (column, ids) pairs holds (a filter over the whole
    table in Arrow: faster than Parquet's own row filter, which decodes as much)."""
    out = np.zeros(table.num_rows, dtype=bool)
    for column, ids in where:
        ids = list(ids)
        if ids and table.num_rows:
            hit = pc.is_in(_column(table[column]), value_set=pa.array(ids, type=pa.string()))
            out |= hit.fill_null(False).to_numpy(zero_copy_only=False)
    return out


_MEMBERS = {
    "person_structure": ("person", "kind"),
    "student_class": ("student", None),
    "staff_function": ("staff", None),
    "staff_director": ("staff", None),
}
"""The link tables placing a person in a structure: their person column and, where one table
places several kinds, the column saying which."""


@dataclass
class State:
    """A state folder's frames and presence history as Arrow tables, read once: a Delta's
    slice is cut from them and its result merged into them."""

    folder: Path
    meta: dict
    tables: dict[str, pa.Table]
    presence: pa.Table

    @classmethod
    def read(cls, folder: Path, meta: dict) -> State:
        names = list(meta.get("frames", []))
        paths = [folder / FRAMES_DIR / f"{n}.parquet" for n in names] + [folder / PRESENCE]
        with ThreadPoolExecutor(2, thread_name_prefix="ent-audit-read") as pool:
            tables = list(pool.map(read_table, paths))
        return cls(folder, meta, dict(zip(names, tables[:-1], strict=True)), tables[-1])

    def rows(self, name: str, where: Where | None) -> pd.DataFrame:
        table = self.tables[name]
        if where is not None:
            table = table.filter(pa.array(_any(table, where)))
        return table.to_pandas()

    def presence_of(self, pseudonyms) -> pd.DataFrame:
        """The presence history's rows of these pseudonyms."""
        table = self.presence
        return table.filter(pa.array(_any(table, [("pseudonym", pseudonyms)]))).to_pandas()


def delta_slice(state: State, delta: Snapshot) -> Snapshot:
    """The part of ``state`` a Delta's application, journal and presence read (see the
    module)."""
    from ent_audit.store.journal import _PEOPLE_COLUMNS

    t = state.tables
    ids = named(delta)
    structures = ids[schema.STRUCTURE.name]
    students = list(ids[schema.STUDENT.name])
    staff = list(ids[schema.STAFF.name])
    for name, (column, kind_col) in _MEMBERS.items() if structures else ():
        hit = t[name].filter(pa.array(_any(t[name], [("structure", structures)])))
        hit = hit.select([column, *([kind_col] if kind_col else [])]).to_pandas()
        if kind_col is None:
            (students if column == "student" else staff).extend(hit[column].dropna())
            continue
        for tag, into in (("student", students), ("staff", staff)):
            is_tag = (hit[kind_col] == tag).to_numpy(dtype=bool, na_value=False)
            into.extend(hit.loc[is_tag, column].dropna())
    students = _unique(students)
    guardians = list(ids[schema.GUARDIAN.name])
    sg = t["student_guardian"].select(["student", "guardian"])
    near = sg.filter(pa.array(_any(sg, [("student", students)]))).to_pandas()
    guardians = _unique([*guardians, *near["guardian"].dropna()])
    theirs = sg.filter(pa.array(_any(sg, [("guardian", guardians)]))).to_pandas()
    students = _unique([*students, *theirs["student"].dropna()])
    staff = _unique(staff)
    everyone = _unique([*students, *guardians, *staff])
    people = {
        schema.STUDENT.frame: students,
        schema.GUARDIAN.frame: guardians,
        schema.STAFF.frame: staff,
    }
    frames: dict[str, pd.DataFrame] = {}
    for name in t:
        if name in people:
            where: Where | None = [("jointure", people[name])]
        elif name in _PEOPLE_COLUMNS:
            where = [(c, everyone) for c in _PEOPLE_COLUMNS[name]]
        elif name in ("extras", "issues"):
            where = [("jointure", [*everyone, *structures])]
        else:
            where = None  # structures, skipped, files: whole
        frames[name] = state.rows(name, where)
    m = state.meta
    try:
        links = {name: frames.pop(name) for name in m["links"]}
        info = ExtractionInfo(m["perimeter"], m["extraction"], dt.date.fromisoformat(m["date"]))
        return Snapshot(extraction=info, links=links, notes=m["notes"], **frames)
    except (KeyError, TypeError, ValueError) as err:
        raise StoreCorruptError(state.folder / "meta.json", repr(err)) from None


# -- merging the result into the state's files ----------------------------------------------


def _like(rows: pd.DataFrame, base: pa.Table) -> tuple[pa.Table, pa.Table]:
    """``base`` and ``rows`` (as Arrow) with one schema, ``base``'s: dictionary columns as
    int32-indexed strings (the union of both dictionaries is made when concatenated)."""
    table = pa.Table.from_pandas(rows, preserve_index=False)
    fields, left, right = [], [], []
    for field in base.schema:
        b, r = base[field.name], table[field.name]
        if pa.types.is_dictionary(field.type):
            field = field.with_type(pa.dictionary(pa.int32(), pa.string()))
        b, r = b.cast(field.type), r.cast(field.type)
        fields.append(field)
        left.append(b)
        right.append(r)
    schema_ = pa.schema(fields, metadata=base.schema.metadata)
    return pa.Table.from_arrays(left, schema=schema_), pa.Table.from_arrays(right, schema=schema_)


def merged(
    state: State, slice_: Snapshot, after: Snapshot, delta: Snapshot
) -> dict[str, pa.Table | None]:
    """Per frame, the new state's frame as Arrow: the state's rows the Delta's records do not
    own, then the rows they own in ``after`` (the Delta applied to ``slice_``); ``None`` for a
    frame the Delta left as it was (its file is linked)."""
    before = slice_.frames()
    ids = named(delta)
    out: dict[str, pa.Table | None] = {}
    for name, frame in after.frames().items():
        if frame is before.get(name):
            out[name] = None
            continue
        if name in WHOLE:
            out[name] = pa.Table.from_pandas(frame, preserve_index=False)
            continue
        take = owned(frame, name, ids)
        if name in ("extras", "issues"):  # the Delta's own rows about no record
            take |= frame["jointure"].isna().to_numpy()
        base = state.tables[name]
        base = base.filter(pa.array(~owned(base, name, ids)))
        left, right = _like(frame[take], base)
        out[name] = pa.concat_tables([left, right]).unify_dictionaries()
    return out


def merged_presence(
    state: State, updated: pd.DataFrame, people: pd.DataFrame, date: dt.date
) -> pa.Table:
    """The new presence history: the old one without the rows of ``people`` (kind,
    pseudonym), everyone else's open spells seen again at ``date``, then ``updated`` (their
    history after the Delta), in the history's order."""
    from ent_audit.store.presence import KEYS

    base = state.presence
    drop = np.zeros(base.num_rows, dtype=bool)
    for kind in pd.unique(people["kind"].astype(str)):
        mine = people.loc[(people["kind"] == kind).to_numpy(), "pseudonym"]
        hit = pc.is_in(_column(base["pseudonym"]), value_set=pa.array(mine, type=pa.string()))
        hit = pc.and_(hit, pc.equal(_column(base["kind"]), kind))
        drop |= hit.fill_null(False).to_numpy(zero_copy_only=False)
    base = base.filter(pa.array(~drop))
    i = base.schema.get_field_index("last_seen")
    day = pa.scalar(dt.datetime.combine(date, dt.time()), type=base.schema.field(i).type)
    seen = pc.if_else(pc.is_null(base["departed"]), day, base["last_seen"])
    base = base.set_column(i, base.schema.field(i), seen)
    left, right = _like(updated, base)
    table = pa.concat_tables([left, right])
    keys = [*KEYS, "first_seen"]
    order = pc.sort_indices(table, sort_keys=[(c, "ascending", "at_end") for c in keys])
    return table.take(order)
