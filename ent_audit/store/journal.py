"""The change journal: what each ingested extraction changed, pseudonymous, kept by the store.

The store keeps only the latest state in clear, so changes are recorded as they happen, in
the same transaction as the new state (``journal/`` in the state folder: one Parquet part per
ingestion, the earlier parts hard-linked from state to state, so that recording a Delta costs
its rows, not the whole journal). One row per changed record and attribute:

- a **Delta**: ``add`` and ``delete`` (one row per record), ``modify`` (one row per attribute
  whose value the modification changed; one row with ``noop`` when it changed nothing);
- a **Complet** over an earlier state: ``appeared``, ``disappeared`` (one row per record),
  ``changed`` (one row per attribute). When that earlier state was built by Deltas, these rows
  are the **reconciliation**: each is a ``divergence``, something the Deltas did not say (or
  said wrong). The Complet wins; the divergences stay in the journal.

Nothing personal is written: people are keyed pseudonyms (the presence history's), schools
their UAI (each record's main school, :func:`ent_audit.aaf.population.main_school`, before and
after), and values only for the attributes of :data:`SHOWN` (level, cycle, class id, school,
link code, function code, teacher category, a school's own UAI, type, circonscription,
commune). For every other attribute (names, birth dates, contacts, INE, ids of other people)
the row says only that it changed (``masked``).

The diff is :mod:`ent_audit.aaf.diff`, the one comparison the analyses use too; for a Delta
it reads only the records the Delta touched.
"""

from __future__ import annotations

import dataclasses
import os
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit.aaf import population, schema
from ent_audit.aaf.diff import attribute_values, compare_kind
from ent_audit.aaf.frames import STRING, arrow_strings, isin
from ent_audit.aaf.snapshot import Snapshot
from ent_audit.io import open_private, private_dir
from ent_audit.store import pseudonym
from ent_audit.store.apply import kept
from ent_audit.store.sides import Side

FILE = "journal.parquet"
"""An older store's journal, one file (read first, then the parts)."""
DIR = "journal"


class Operation(StrEnum):
    """What happened to a record."""

    ADD = "add"
    """``addRequest`` of a Delta."""
    MODIFY = "modify"
    """``modifyRequest`` of a Delta."""
    DELETE = "delete"
    """``deleteRequest`` of a Delta."""
    APPEARED = "appeared"
    """In a Complet, not in the state before it."""
    DISAPPEARED = "disappeared"
    """In the state, not in the Complet that replaced it."""
    CHANGED = "changed"
    """In both, with another value."""


OPERATION_DTYPE = pd.CategoricalDtype([str(o) for o in Operation])

COLUMNS = (
    "date", "extraction", "kind", "pseudonym", "operation", "attribute", "school_before",
    "school_after", "level", "before", "after", "masked", "noop", "divergence",
)  # fmt: skip
"""``date`` of the extraction, its type (``complete``/``delta``), ``kind`` (frame name:
``structures``, ``students``, ``guardians``, ``staff``), the record's ``pseudonym``, the
``operation``, the AAF ``attribute`` (null for a whole record), the main school's UAI before
and after, the pupil's ``level``, the values ``before`` and ``after`` (only for :data:`SHOWN`
attributes), ``masked`` (a value changed but is not shown), ``noop`` (a modification that
changed nothing), ``divergence`` (a reconciliation finding)."""

SHOWN: dict[tuple[str, str], tuple[str, ...] | None] = {
    ("structures", "uai"): None,
    ("structures", "struct_type"): None,
    ("structures", "circonscription"): None,
    ("structures", "commune"): None,
    ("students", "level"): None,
    ("students", "cycle"): None,
    ("students", "classes"): ("class_id",),
    ("students", "structures"): ("structure",),
    ("students", "guardians"): ("link_code",),
    ("staff", "is_teacher"): None,
    ("staff", "structures"): ("structure",),
    ("staff", "functions"): ("structure", "code"),
    ("staff", "director_of"): ("structure",),
}
"""(frame, column) whose values the journal keeps, and for a multi-valued one the parts of
each value kept (a class's id, not its name; a guardian link's code, not the guardian)."""

for (_frame, _column), _parts in SHOWN.items():
    _f = schema.KIND_BY_FRAME[_frame].field(_column)
    assert not _f.personal and (_parts is None) == (not _f.multi), (_frame, _column)
    assert _parts is None or set(_parts) <= set(_f.parts), (_frame, _column)

_LINK_PEOPLE = {
    "person_structure": ("person",),
    "student_class": ("student",),
    "student_guardian": ("student", "guardian"),
    "staff_function": ("staff",),
    "staff_director": ("staff",),
}
"""The link tables :func:`population.memberships` reads, and their person columns."""


def empty() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in COLUMNS}))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    df["date"] = pd.to_datetime(df["date"]).astype("datetime64[ns]")
    for c in ("extraction", "kind", "pseudonym", "attribute", "school_before", "school_after",
              "level", "before", "after"):  # fmt: skip
        df[c] = df[c].astype(STRING)
    df["operation"] = df["operation"].astype(str).astype(OPERATION_DTYPE)
    for c in ("masked", "noop", "divergence"):
        df[c] = df[c].fillna(False).astype(bool)
    return df[list(COLUMNS)]


def changes(
    previous: Snapshot | None,
    incoming: Snapshot,
    new: Snapshot,
    key: bytes,
    *,
    reconcile: bool = False,
    sliced: bool = False,
    members_after: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The journal rows of ingesting ``incoming`` over ``previous`` (None: empty store), which
    gave ``new``. ``reconcile``: ``previous`` was built by Deltas, so a Complet's differences
    are divergences. ``sliced``: ``previous`` and ``new`` are already a Delta's slice of the
    state (:func:`ent_audit.store.partial.delta_slice`), cut around its records.
    ``members_after``: :func:`population.memberships` of ``new`` (a Delta's, already cut
    around its records), when the caller computed them (the presence reads them too). The
    first Complet of a store changes nothing: no rows."""
    info = incoming.extraction
    if info.extraction == "delta" and not sliced:
        # Every row is about a record the Delta names: both states are cut down to those
        # records (and what places them) once, so no step below reads the whole state.
        named = {k.name: getattr(incoming, k.frame)["jointure"] for k in schema.KINDS.values()}
        previous = _around(previous, named) if previous is not None else None
        new = _around(new, named)
    found: dict[str, pd.DataFrame] = {}
    for kind in schema.KINDS.values():
        if info.extraction == "delta":
            rows = _delta_rows(previous, incoming, new, kind)
        elif previous is not None:
            rows = _complete_rows(previous, new, kind)
        else:
            continue
        if len(rows):
            found[kind.name] = rows
    if not found:
        return empty()
    ids = {k: rows["jointure"].dropna().unique() for k, rows in found.items()}
    members_before = None
    if info.extraction == "delta":
        # Both states are already cut around the Delta's records (by the slice or above),
        # which hold every row the journal names: their memberships place them, once per
        # side, without another cut.
        if previous is not None:
            members_before = population.memberships(previous, categorical=True)
        if members_after is None:
            members_after = population.memberships(new, categorical=True)
    else:
        members_after = None  # a Complet: _main_schools cuts each state around its people
    before = _main_schools(previous, ids, members=members_before) if previous is not None else {}
    after = _main_schools(new, ids, members=members_after)
    out = pd.concat(
        [
            _decorated(rows, schema.KINDS[k], previous, new, key, before, after)
            for k, rows in found.items()
        ],
        ignore_index=True,
    )
    out["date"] = pd.Timestamp(info.date)
    out["extraction"] = info.extraction
    out["divergence"] = reconcile and info.extraction == "complete"
    return _typed(out)


CHUNK_RECORDS = 50_000
"""Records whose rows :func:`complete_changes` computes at a time (a new school year changes
most pupils: the chunks keep its memory bounded)."""

_RANK = {str(Operation.APPEARED): 0, str(Operation.DISAPPEARED): 1, str(Operation.CHANGED): 2}


def complete_changes(
    previous: Side,
    new: Side,
    key: bytes,
    *,
    reconcile: bool = False,
    chunk: int = CHUNK_RECORDS,
) -> pd.DataFrame:
    """:func:`changes` of a Complet (``new``) over a state (``previous``), neither whole in
    memory: the same rows in the same order.

    Per kind, each side's records are fingerprinted batch by batch (:mod:`.sides`); the
    records that appeared, disappeared or whose fingerprints differ are then taken ``chunk``
    at a time, both sides cut around them (:meth:`Side.cut`, as :func:`_around`), and today's
    diff and decoration run on the cuts. Their rows are put back in :func:`changes`' order:
    per kind, the appeared in the new state's order, the disappeared in the previous one's,
    the changed by jointure (each record's attributes in the diff's order)."""
    info = new.info
    todo: dict[str, pa.Array] = {}
    places: dict[str, tuple[pa.Array, pa.Array]] = {}
    for kind in schema.KINDS.values():
        compared = _compared(previous, new, kind)
        a = previous.fingerprints(kind, compared)
        b = new.fingerprints(kind, compared)
        in_a = pc.index_in(b.jointures, value_set=a.jointures)
        found = pc.is_valid(in_a).to_numpy(zero_copy_only=False)
        at = in_a.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        same = np.zeros(len(b.hashes), dtype=bool)
        same[found] = a.hashes[at[found]] == b.hashes[found]
        differ = b.jointures.filter(pa.array(~same))  # appeared or changed
        gone = pc.invert(pc.is_in(a.jointures, value_set=b.jointures))
        ids = pa.concat_arrays([differ, a.jointures.filter(gone)])
        if len(ids):
            todo[kind.name] = ids
            places[kind.name] = (a.jointures, b.jointures)
        del a, b
    pieces: dict[str, list[pd.DataFrame]] = {name: [] for name in todo}
    for part in _chunks(todo, chunk):
        before_cut, after_cut = previous.cut(part), new.cut(part)
        rows = {}
        for name, ids in part.items():
            kind = schema.KINDS[name]
            cmp = compare_kind(before_cut, after_cut, kind, jointures=ids.to_pandas())
            found_rows = pd.concat(
                [
                    _records(cmp.added["jointure"], Operation.APPEARED),
                    _records(cmp.removed["jointure"], Operation.DISAPPEARED),
                    cmp.changed.assign(operation=str(Operation.CHANGED)),
                ],
                ignore_index=True,
            )
            if len(found_rows):
                rows[name] = found_rows
        if not rows:
            continue
        wanted = {k: r["jointure"].dropna().unique() for k, r in rows.items()}
        schools_before = _main_schools(before_cut, wanted)
        schools_after = _main_schools(after_cut, wanted)
        for name, found_rows in rows.items():
            out = _decorated(
                found_rows, schema.KINDS[name], before_cut, after_cut, key,
                schools_before, schools_after,
            )  # fmt: skip
            out["_jointure"] = found_rows["jointure"].astype(STRING).to_numpy()
            pieces[name].append(out)
        del before_cut, after_cut
    found = {name: _in_order(p, *places[name]) for name, p in pieces.items() if p}
    if not found:
        return empty()
    out = pd.concat(list(found.values()), ignore_index=True)
    out["date"] = pd.Timestamp(info.date)
    out["extraction"] = info.extraction
    out["divergence"] = reconcile and info.extraction == "complete"
    return _typed(out)


def _compared(previous: Side, new: Side, kind: schema.Kind) -> list[str]:
    """The columns :func:`compare_kind` compares for ``kind``: single ones both sides have,
    every multi-valued one."""
    both = set(previous.columns(kind.frame)) & set(new.columns(kind.frame))
    single = [f.column for f in kind.single if f.column != "jointure" and f.column in both]
    return single + [f.column for f in kind.multi]


def _chunks(todo: dict[str, pa.Array], size: int):
    """``todo`` (ids by kind name) in parts of at most ``size`` ids."""
    part: dict[str, pa.Array] = {}
    room = size
    for name, ids in todo.items():
        start = 0
        while start < len(ids):
            take = ids.slice(start, room)
            part[name] = take
            start += len(take)
            room -= len(take)
            if room == 0:
                yield part
                part, room = {}, size
    if part:
        yield part


def _in_order(pieces: list[pd.DataFrame], before: pa.Array, after: pa.Array) -> pd.DataFrame:
    """A kind's decorated rows, computed by chunks, in :func:`changes`' order."""
    rows = pd.concat(pieces, ignore_index=True)
    ids = pa.array(rows.pop("_jointure").array, type=pa.string())
    rank = rows["operation"].astype(str).map(_RANK).to_numpy()
    place = np.zeros(len(rows), dtype=np.int64)
    for r, side in ((0, after), (1, before)):
        hit = rank == r
        if hit.any():
            at = pc.index_in(ids.filter(pa.array(hit)), value_set=side)
            place[hit] = at.to_numpy(zero_copy_only=False)
    hit = rank == 2
    if hit.any():  # by jointure, as the diff sorts them (pandas' order)
        names = pd.Series(pd.unique(pd.Series(ids.filter(pa.array(hit)), dtype=STRING)))
        names = names.astype(STRING).sort_values().reset_index(drop=True)
        at = pc.index_in(ids.filter(pa.array(hit)), value_set=pa.array(names.array))
        place[hit] = at.to_numpy(zero_copy_only=False)
    return rows.take(np.lexsort((place, rank))).reset_index(drop=True)


def _records(jointures, operation: Operation, **extra) -> pd.DataFrame:
    ids = pd.Series(jointures, dtype=STRING).reset_index(drop=True)
    return pd.DataFrame({"jointure": ids, "operation": str(operation), **extra})


def _delta_rows(
    previous: Snapshot | None, incoming: Snapshot, new: Snapshot, kind: schema.Kind
) -> pd.DataFrame:
    rows = getattr(incoming, kind.frame)
    op = rows["op"].astype(str).to_numpy()
    ids = rows["jointure"].astype(STRING).reset_index(drop=True)
    modified = ids[op == "modify"].dropna()
    parts = [
        _records(ids[op == "add"], Operation.ADD),
        _records(ids[op == "delete"], Operation.DELETE),
    ]
    if len(modified) and previous is not None:
        cmp = compare_kind(previous, new, kind, jointures=modified)
        changed = cmp.changed.assign(operation=str(Operation.MODIFY))
        unknown = cmp.added["jointure"]  # a modify of an unknown record: applied as an add
        known = modified[isin(modified, _live_ids(previous, kind))]
        noop = known[~isin(known, changed["jointure"])]
        parts += [
            changed,
            _records(noop, Operation.MODIFY, noop=True),
            _records(unknown, Operation.MODIFY),
        ]
    elif len(modified):
        parts.append(_records(modified, Operation.MODIFY))
    return pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)


def _live_ids(snapshot: Snapshot, kind: schema.Kind) -> pd.Series:
    """Jointures of the live records of ``kind``."""
    return population.live(getattr(snapshot, kind.frame))["jointure"].dropna()


def _complete_rows(previous: Snapshot, new: Snapshot, kind: schema.Kind) -> pd.DataFrame:
    cmp = compare_kind(previous, new, kind)
    return pd.concat(
        [
            _records(cmp.added["jointure"], Operation.APPEARED),
            _records(cmp.removed["jointure"], Operation.DISAPPEARED),
            cmp.changed.assign(operation=str(Operation.CHANGED)),
        ],
        ignore_index=True,
    )


def _decorated(
    rows: pd.DataFrame,
    kind: schema.Kind,
    previous: Snapshot | None,
    new: Snapshot,
    key: bytes,
    before: dict,
    after: dict,
) -> pd.DataFrame:
    """Rows (jointure, operation[, attribute, column, before, after, noop]) made publishable:
    pseudonym, schools before and after, level, values of :data:`SHOWN` attributes only."""
    for c in ("attribute", "column", "before", "after"):
        if c not in rows:
            rows[c] = None
    rows = rows.reset_index(drop=True)
    ids = rows["jointure"].dropna().unique()
    where = pd.Series(rows["jointure"].astype(str).radd(kind.name + ":").to_numpy())
    out = pd.DataFrame(
        {
            "kind": kind.frame,
            "pseudonym": pseudonym.pseudonymise(key, kind.name, rows["jointure"]),
            "operation": rows["operation"],
            "attribute": rows["attribute"],
            "school_before": where.map(before),
            "school_after": where.map(after),
            "level": None,
            "before": None,
            "after": None,
            "masked": rows["column"].notna(),
            "noop": rows["noop"] if "noop" in rows else False,
        }
    )
    if kind is schema.STUDENT:
        levels = _levels(new, ids)
        if previous is not None:
            levels = {**_levels(previous, ids), **levels}
        out["level"] = rows["jointure"].map(levels)
    shown_here = {c: p for (f, c), p in SHOWN.items() if f == kind.frame}
    hits = {c: (rows["column"] == c).to_numpy(dtype=bool, na_value=False) for c in shown_here}
    # The multi-valued shown attributes' values, one reading per side for all of them
    multi = {c: p for c, p in shown_here.items() if p is not None and hits[c].any()}
    shown: dict[str, pd.DataFrame] = {}
    if multi:
        who = rows.loc[np.logical_or.reduce([hits[c] for c in multi]), "jointure"]
        for side, snap in (("before", previous), ("after", new)):
            if snap is not None:
                shown[side] = attribute_values(
                    snap, kind, jointures=who, parts=multi, columns=list(multi)
                ).set_index("jointure")
    for column, parts in shown_here.items():
        hit = hits[column]
        if not hit.any():
            continue
        out.loc[hit, "masked"] = False
        if parts is None:
            out.loc[hit, "before"] = rows.loc[hit, "before"].to_numpy()
            out.loc[hit, "after"] = rows.loc[hit, "after"].to_numpy()
            continue
        who = rows.loc[hit, "jointure"]
        for side, values in shown.items():
            out.loc[hit, side] = who.map(values[column]).to_numpy()
    return out


def _levels(snapshot: Snapshot, ids) -> dict:
    s = population.live(snapshot.students)
    s = s[isin(s["jointure"], ids)].drop_duplicates("jointure")
    return dict(zip(s["jointure"], s["level"].astype(STRING), strict=True))


def _main_schools(
    snapshot: Snapshot, ids: dict[str, np.ndarray], *, members: pd.DataFrame | None = None
) -> dict[str, str]:
    """``kind:jointure`` -> UAI of each record's main school (a structure: its own UAI), for
    the records ``ids`` lists by kind name.

    :func:`population.memberships` is run once, on the snapshot cut down to these people (and
    a guardian's pupils, who place them: :func:`_around`): the same answer as on the whole
    snapshot, for a Delta's few thousand records instead of the whole perimeter. ``members``:
    memberships already computed on a snapshot holding what places these people (a Delta's
    slice, strings or categoricals), used as they are; they may list other people too.
    """
    out: dict[str, str] = {}
    structures = population.live(snapshot.structures)
    mine = structures[isin(structures["jointure"], ids.get(schema.STRUCTURE.name, []))]
    for j, uai in zip(mine["jointure"], mine["uai"], strict=True):
        out[f"{schema.STRUCTURE.name}:{j}"] = uai
    people = {k: pd.Series(ids.get(k, []), dtype=STRING)
              for k in (schema.STUDENT.name, schema.GUARDIAN.name, schema.STAFF.name)}  # fmt: skip
    if not any(len(v) for v in people.values()):
        return out
    if members is None:
        members = population.memberships(_around(snapshot, people))
    main = population.main_school(members)
    # keys compared as Arrow strings (no Python set of every person's key)
    keys = pc.binary_join_element_wise(
        arrow_strings(main["kind"]), arrow_strings(main["jointure"]), ":"
    )
    wanted = pa.concat_arrays(
        [
            pc.binary_join_element_wise(pa.scalar(k), arrow_strings(v), ":")
            for k, v in people.items()
            if len(v)
        ]
    )
    hit = pc.is_in(keys, value_set=wanted).fill_null(False)
    uais = main["uai"].astype(STRING).to_numpy()[hit.to_numpy(zero_copy_only=False)]
    out.update(zip(keys.filter(hit).to_pylist(), uais, strict=True))
    return out


def _link_people() -> dict[str, tuple[str, ...]]:
    """Every link table and its person columns: those :func:`population.memberships` reads
    and the owner column of each multi-valued field."""
    out = {name: set(columns) for name, columns in _LINK_PEOPLE.items()}
    for kind in schema.KINDS.values():
        for f in kind.multi:
            out.setdefault(f.link, set()).add(f.owner)
    return {name: tuple(sorted(columns)) for name, columns in out.items()}


_PEOPLE_COLUMNS = _link_people()


def _around(snapshot: Snapshot, ids: dict[str, pd.Series]) -> Snapshot:
    """``snapshot`` cut down to the records ``ids`` lists by kind name, the pupils of those
    that are guardians (they place them, :func:`_main_schools`) and the link rows of all of
    them; structures are kept whole (they place people). Every value, level and main school
    of these records is the same as in the whole snapshot, for a Delta's few thousand records
    instead of the whole perimeter."""
    wanted = {k: pd.Series(v, dtype=STRING).dropna().unique() for k, v in ids.items()}
    sg = snapshot.links["student_guardian"]
    pupils = sg.loc[isin(sg["guardian"], wanted.get(schema.GUARDIAN.name, [])), "student"]
    wanted[schema.STUDENT.name] = (
        pd.concat(
            [pd.Series(wanted.get(schema.STUDENT.name, []), dtype=STRING), pupils.astype(STRING)]
        )
        .dropna()
        .unique()
    )
    everyone = pa.array(
        np.concatenate([np.asarray(v, dtype=object) for v in wanted.values()]), type=pa.string()
    )  # converted once, not per table
    links = dict(snapshot.links)
    for name, columns in _PEOPLE_COLUMNS.items():
        table = links[name]
        keep = np.zeros(len(table), dtype=bool)
        for c in columns:
            keep |= isin(table[c], everyone)
        links[name] = kept(table, keep)
    entities = {}
    for kind in (schema.STUDENT, schema.GUARDIAN, schema.STAFF):
        frame = getattr(snapshot, kind.frame)
        entities[kind.frame] = kept(frame, isin(frame["jointure"], wanted.get(kind.name, [])))
    return dataclasses.replace(snapshot, links=links, **entities)


def divergences(rows: pd.DataFrame) -> int:
    """How many reconciliation divergences ``rows`` hold."""
    return int(rows["divergence"].sum())


def parts(state: Path | None) -> list[Path]:
    """The journal's files in a state folder, oldest first: one part per ingestion that
    changed something (``journal/NNNNNN.parquet``; an older store's single ``journal.parquet``
    first), so that an ingestion adds its rows instead of rewriting the whole journal."""
    if state is None:
        return []
    out = [state / FILE] if (state / FILE).is_file() else []
    return out + sorted((state / DIR).glob("*.parquet"))


def read(state: Path | None) -> pd.DataFrame:
    """The journal of a state folder (empty for a store without one yet)."""
    files = parts(state)
    if not files:
        return empty()
    return _typed(pd.concat([pd.read_parquet(p) for p in files], ignore_index=True))


def write(folder: Path, journal: pd.DataFrame) -> None:
    """Write the whole journal into a (staging) state folder as its one part."""
    private_dir(folder / DIR)
    with open_private(folder / DIR / f"{1:06d}.parquet") as fh:
        journal.to_parquet(fh, index=False)


def extend(folder: Path, previous: Path | None, rows: pd.DataFrame) -> list[tuple[str, str]]:
    """The journal of ``previous`` (its parts hard-linked into the staging ``folder``) with
    ``rows`` as a new part; the parts linked, (path in ``folder``, path in ``previous``), both
    relative: their SHA-256 is ``previous``'s record of them."""
    private_dir(folder / DIR)
    linked = []
    old = parts(previous)
    for i, p in enumerate(old, start=1):
        rel = f"{DIR}/{i:06d}.parquet"
        os.link(p, folder / rel)
        linked.append((rel, str(p.relative_to(previous))))
    if len(rows):
        with open_private(folder / DIR / f"{len(old) + 1:06d}.parquet") as fh:
            rows.to_parquet(fh, index=False)
    return linked


def append(journal: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The journal with ``rows`` after it (``rows`` of a newer extraction)."""
    if rows.empty:
        return journal
    if journal.empty:
        return rows
    return _typed(pd.concat([journal, rows], ignore_index=True))
