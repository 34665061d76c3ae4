"""Pseudonymous presence history: who was where, from when to when, without names.

One row per spell: a person (keyed pseudonym), their kind, one school (UAI), the first and
the last extraction date they were seen there, their level (pupils) and the date of the first
extraction that no longer had them (``departed``). A person who comes back opens a new spell.
This is all the store keeps of earlier extractions: enough for delta, retention and trend
analyses, and no personal data in clear.

A Complet's presence is computed for everyone (:func:`present`). A Delta's cost grows with the
Delta, not with the state: only the people it may move (:func:`affected`: its records, the
members of the structures it touches, the guardians of the pupils it touches) are placed and
pseudonymised again (:func:`present` with ``people``), only their history is updated
(:func:`listed`, :func:`update`), and everyone else's is carried over, seen again where they
were (:mod:`ent_audit.store.partial`). This relies on the open spells of the history
being the state's presence, which every ingestion leaves true; a state rewritten by the purge
says otherwise (``presence_synced`` false in its ``meta.json``) and its next Delta recomputes
everyone once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit import memory
from ent_audit.aaf import population, schema
from ent_audit.aaf.frames import arrow_strings, first_rows, isin
from ent_audit.aaf.snapshot import Snapshot
from ent_audit.exceptions import UnsortedHistoryError
from ent_audit.store import pseudonym

COLUMNS = ("pseudonym", "kind", "uai", "level", "first_seen", "last_seen", "departed")
KEYS = ["pseudonym", "kind", "uai"]
STRING = pd.StringDtype("pyarrow")


def empty() -> pd.DataFrame:
    return typed(pd.DataFrame({c: [] for c in COLUMNS}))


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """The history's dtypes, a fresh index."""
    for c in ("pseudonym", "kind", "uai", "level"):
        df[c] = df[c].astype(STRING)
    for c in ("first_seen", "last_seen", "departed"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    return df.reset_index(drop=True)


def present(
    snapshot: Snapshot,
    key: bytes,
    people: pd.DataFrame | None = None,
    *,
    pseudonyms: Mapping[str, pd.DataFrame] | None = None,
    members: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Who is in ``snapshot``, where: (pseudonym, kind, uai, level), one row per school.

    Where a person is comes from :func:`ent_audit.aaf.population.memberships`, the one
    definition every report uses; a person in no structure has one row with no UAI.
    ``people`` (kind, jointure, pseudonym: :func:`identified`): only those, on the snapshot
    cut down to them (and a guardian's pupils, who place them): the same rows as the whole
    snapshot's for them, with the pseudonyms given (no HMAC here).
    ``pseudonyms``: per kind, (jointure, derived) frames of pseudonyms already computed under
    ``key`` (by the reader's workers during the parse: :func:`pseudonymiser`); a jointure
    they lack is pseudonymised here. The same rows as without.
    ``members``: ``population.memberships(snapshot, categorical=True)``, already computed by
    the caller (a Delta's slice, whose memberships the journal reads too); with ``people``,
    the snapshot is then not cut (only their rows are kept: the same rows).
    """
    if people is not None and members is None:
        snapshot = _cut(snapshot, people)
    out = _identified(_where(snapshot, members), key, people, pseudonyms)
    for c in out.columns:
        out[c] = out[c].astype(STRING)
    return out.reset_index(drop=True)


def placed(
    snapshot: Snapshot, key: bytes, *, pseudonyms: Mapping[str, pd.DataFrame] | None = None
) -> pa.Table:
    """:func:`present` of a whole snapshot as Arrow, lean: ``kind``, ``uai`` and ``level``
    dictionary-encoded (a few values over an académie's 700,000 rows), sorted by pseudonym
    (stable, missing last): what :func:`update_batches` merges with the history. The
    snapshot is let go once its memberships are known (pass it as a temporary: an
    académie's placing columns are ~40 MB)."""
    where = _where(snapshot)
    del snapshot
    memory.trim_heap()  # the memberships' temporaries (~85 MB of freed pages otherwise)
    frame = _identified(where, key, None, pseudonyms)
    del where
    out = pa.Table.from_pandas(frame, preserve_index=False)
    del frame
    order = pc.sort_indices(out, sort_keys=[("pseudonym", "ascending", "at_end")])
    return out.take(order)


def _where(snapshot: Snapshot, members: pd.DataFrame | None = None) -> pd.DataFrame:
    """(kind, jointure, uai, level), one row per (kind, jointure, uai) of the memberships
    (:func:`present`); ``kind``, ``uai`` and ``level`` as categoricals (a million rows of an
    académie). ``members``: the snapshot's ``memberships(categorical=True)`` when the caller
    has them already."""
    if members is None:
        members = population.memberships(snapshot, categorical=True)
    m = members[["kind", "jointure", "uai"]]
    m = m[first_rows(m, ["kind", "jointure", "uai"])]
    students = population.live(snapshot.students)
    students = students[first_rows(students, ["jointure"])]
    level = _looked_up(m["jointure"], students["jointure"], students["level"])
    del students
    level[(m["kind"] != schema.STUDENT.name).to_numpy()] = pd.NA
    return m.assign(level=level.astype("category"))


def _identified(
    where: pd.DataFrame,
    key: bytes,
    people: pd.DataFrame | None,
    pseudonyms: Mapping[str, pd.DataFrame] | None,
) -> pd.DataFrame:
    """:func:`present`'s rows from :func:`_where`'s, kind by kind: ``pseudonym`` as strings,
    ``kind``, ``uai`` and ``level`` as categoricals. One row per (pseudonym, kind, uai), as
    :func:`_where`'s are per jointure: a pseudonym is a function of kind and jointure, one
    to one. Each kind's pseudonyms are computed once, straight into Arrow."""
    ids, rows = [], []
    for kind in (schema.STUDENT.name, schema.GUARDIAN.name, schema.STAFF.name):
        at = np.flatnonzero((where["kind"] == kind).to_numpy())
        jointures = where["jointure"].iloc[at]
        if people is None:
            given = pseudonyms.get(kind) if pseudonyms is not None else None
            named = _pseudonyms(key, kind, jointures, given)
        else:
            known = people[(people["kind"] == kind).to_numpy()]
            known = known.drop_duplicates("jointure").set_index("jointure")["pseudonym"]
            hit = isin(jointures, known.index)
            at, named = at[hit], jointures[hit].map(known)
        ids.append(pa.array(named.array, type=pa.large_string()))
        rows.append(at)
        del jointures, named
    frame = where[["kind", "uai", "level"]].iloc[np.concatenate(rows)].reset_index(drop=True)
    del rows
    frame.insert(
        0, "pseudonym", pd.arrays.ArrowStringArray(pa.chunked_array(ids, pa.large_string()))
    )
    return frame


def pseudonymiser(key: bytes) -> Callable[[str, pd.Series], pd.Series]:
    """The store's pseudonyms as a picklable function (kind, jointures) -> pseudonyms, for
    the reader's workers (:func:`ent_audit.aaf.snapshot.load_stream_derived`). The key goes
    to the worker processes of this process tree through their task pipe, nowhere else."""
    return functools.partial(pseudonym.pseudonymise, key)


def _looked_up(keys: pd.Series, index: pd.Series, values: pd.Series) -> pd.Series:
    """``keys.map(values indexed by index)`` for unique string ``index``, by Arrow."""
    at = pc.index_in(
        pa.array(keys.astype(STRING).array, type=pa.string()),
        value_set=pa.array(index.astype(STRING).array, type=pa.string()),
    )
    found = pa.array(values.astype(STRING).array, type=pa.string()).take(at)
    return found.to_pandas(types_mapper={pa.string(): STRING}.get).set_axis(keys.index)


def _pseudonyms(key: bytes, kind: str, jointures: pd.Series, given: pd.DataFrame | None):
    """Pseudonyms of ``jointures``: taken from ``given`` (jointure, derived) where it has
    them, computed for the others (none, when ``given`` is the snapshot's own)."""
    if given is None or not len(given):
        return pseudonym.pseudonymise(key, kind, jointures)
    wanted = pa.array(jointures.array, type=pa.string())
    known = pa.array(given["jointure"].array, type=pa.string())
    at = pc.index_in(wanted, value_set=known)
    values = pa.array(given["derived"].array, type=pa.string()).take(at)
    out = values.to_pandas(types_mapper={pa.string(): STRING}.get).set_axis(jointures.index)
    lacking = (at.is_null().to_numpy(zero_copy_only=False)) & jointures.notna().to_numpy()
    if lacking.any():
        out[lacking] = pseudonym.pseudonymise(key, kind, jointures[lacking]).to_numpy()
    return out


_PEOPLE_LINKS = {
    "person_structure": "person",
    "student_class": "student",
    "staff_function": "staff",
    "staff_director": "staff",
}
"""The link tables placing a person in a structure (besides a guardian's pupils), and their
person column."""


def _ids(values) -> pd.Series:
    return pd.Series(pd.unique(pd.Series(values, dtype=STRING).dropna()), dtype=STRING)


def _of_kind(people: pd.DataFrame, kind: str) -> pd.Series:
    return _ids(people.loc[(people["kind"] == kind).to_numpy(), "jointure"])


def _cut(snapshot: Snapshot, people: pd.DataFrame) -> Snapshot:
    """``snapshot`` with only what places ``people``: their records and links, a guardian's
    pupils with theirs, every structure."""
    guardians = _of_kind(people, schema.GUARDIAN.name)
    staff = _of_kind(people, schema.STAFF.name)
    sg = snapshot.links["student_guardian"]
    sg = sg[isin(sg["guardian"], guardians)]
    pupils = _ids(pd.concat([_of_kind(people, schema.STUDENT.name), sg["student"]]))
    everyone = pd.concat([pupils, staff], ignore_index=True)
    links = dict(snapshot.links)
    links["student_guardian"] = sg
    for name, column in _PEOPLE_LINKS.items():
        links[name] = links[name][isin(links[name][column], everyone)]
    return dataclasses.replace(
        snapshot,
        links=links,
        students=snapshot.students[isin(snapshot.students["jointure"], pupils)],
        guardians=snapshot.guardians[isin(snapshot.guardians["jointure"], guardians)],
        staff=snapshot.staff[isin(snapshot.staff["jointure"], staff)],
    )


def affected(previous: Snapshot, delta: Snapshot, new: Snapshot) -> pd.DataFrame:
    """(kind, jointure) of the people whose presence a Delta may change, ``previous`` to ``new``.

    A Delta changes only its own records and the links they state (:mod:`ent_audit.store.
    apply`), so a person's place can change only if they are among its records, belong (before
    or after) to a structure among them, or are a guardian of such a pupil (before or after).
    """
    structures = _ids(delta.structures["jointure"])
    out = {
        k.name: [getattr(delta, k.frame)["jointure"]]
        for k in (schema.STUDENT, schema.GUARDIAN, schema.STAFF)
    }
    for snap in (previous, new):
        if not len(structures):
            break
        for name, column in _PEOPLE_LINKS.items():
            table = snap.links[name]
            hit = table[isin(table["structure"], structures)]
            if name == "person_structure":
                for kind, tag in ((schema.STUDENT.name, "student"), (schema.STAFF.name, "staff")):
                    out[kind].append(hit.loc[(hit["kind"] == tag).to_numpy(dtype=bool), column])
            else:
                kind = schema.STUDENT.name if name == "student_class" else schema.STAFF.name
                out[kind].append(hit[column])
    pupils = _ids(pd.concat(out[schema.STUDENT.name], ignore_index=True))
    for snap in (previous, new):
        sg = snap.links["student_guardian"]
        out[schema.GUARDIAN.name].append(sg.loc[isin(sg["student"], pupils), "guardian"])
    out[schema.STUDENT.name] = [pupils]
    parts = [
        pd.DataFrame({"kind": k, "jointure": _ids(pd.concat(v, ignore_index=True))})
        for k, v in out.items()
    ]
    result = pd.concat(parts, ignore_index=True)
    result["kind"] = result["kind"].astype(STRING)
    return result


def identified(people: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """``people`` (kind, jointure) with their ``pseudonym``: one HMAC per person listed."""
    parts = [
        people[(people["kind"] == kind).to_numpy()].assign(
            pseudonym=lambda d, kind=kind: pseudonym.pseudonymise(key, kind, d["jointure"])
        )
        for kind in pd.unique(people["kind"].astype(str))
    ]
    if not parts:
        return people.assign(pseudonym=pd.Series([], dtype=STRING))
    return pd.concat(parts, ignore_index=True)


def update(
    history: pd.DataFrame | None,
    now: pd.DataFrame,
    date: dt.date,
) -> pd.DataFrame:
    """The history after an extraction dated ``date`` whose presence is ``now``.

    Open spells seen again get ``last_seen = date`` (and the current level); open spells not
    seen are closed with ``departed = date``; new (person, school) pairs open a spell. A
    Delta updates the history of the people it touches only, and
    :mod:`ent_audit.store.partial` carries everyone else's over, seen again.
    """
    history = empty() if history is None else history
    day = pd.Timestamp(date)
    if not history["departed"].isna().any():  # a first Complet: everyone opens a spell
        new = now.assign(first_seen=day, last_seen=day, departed=pd.NaT)
        return typed(_sorted(pd.concat([history, new[list(COLUMNS)]], ignore_index=True)))
    n = len(history)
    opened = np.flatnonzero(history["departed"].isna().to_numpy())
    closed = np.flatnonzero(history["departed"].notna().to_numpy())
    ranks = {c: _Ranks.of(history[c], now[c]) for c in KEYS}
    # a spell's key (pseudonym, kind, uai; a missing UAI equal to an empty one) as one int64
    key = np.zeros(n + len(now), dtype=np.int64)
    for c in KEYS:
        r = ranks[c]
        key = key * (r.width + 1) + (r.matching() if c == "uai" else r.values)
    ko, kn = key[opened], key[n:]
    del key
    # each open spell's row in ``now`` (its keys are unique: :func:`present`)
    order = np.argsort(kn, kind="stable")
    at = np.searchsorted(kn[order], ko).clip(max=max(len(kn) - 1, 0))
    hit = order[at] if len(kn) else np.zeros(len(ko), dtype=np.int64)
    seen = (kn[hit] == ko) if len(kn) else np.zeros(len(ko), dtype=bool)
    fresh = np.ones(len(now), dtype=bool)
    fresh[hit[seen]] = False
    fresh = np.flatnonzero(fresh)
    # the rows: closed spells, open ones, then new ones (as they were concatenated), sorted
    # in :data:`ORDER` by their values' ranks: no string is copied but into the result
    rows = np.concatenate([closed, opened, n + fresh])
    stamp = np.datetime64(day.to_datetime64(), "ns")
    was = len(closed) + len(opened)

    def times(c: str) -> np.ndarray:
        mine = history[c].to_numpy(dtype="datetime64[ns]")[rows[:was]]
        if c == "last_seen":
            mine[len(closed) :][seen] = stamp
        if c == "departed":
            mine[len(closed) :][~seen] = stamp
        theirs = np.datetime64("NaT", "ns") if c == "departed" else stamp
        return np.concatenate([mine, np.full(len(fresh), theirs, dtype="datetime64[ns]")])

    first = times("first_seen").view(np.int64)
    first = np.where(first == np.iinfo(np.int64).min, np.iinfo(np.int64).max, first)
    perm = np.lexsort((first, *(ranks[c].values[rows] for c in reversed(KEYS))))
    del first, ranks
    level = rows.copy()
    level[len(closed) : was][seen] = n + hit[seen]  # the current level of a spell seen again
    out: dict[str, pd.Series] = {}
    for c in COLUMNS:
        if c in (*KEYS, "level"):
            source = pa.chunked_array([*_chunks(history[c]), *_chunks(now[c])], type=pa.string())
            taken = source.take((level if c == "level" else rows)[perm])
            out[c] = pd.Series(pd.arrays.ArrowStringArray(taken), dtype=STRING, copy=False)
        else:
            out[c] = pd.Series(times(c)[perm], dtype="datetime64[ns]")
    return typed(pd.DataFrame(out, copy=False))


UPDATE_ROWS = 1 << 16
"""Rows of ``now`` updated at a time by :func:`update_batches` (beside a history batch)."""


def schema_of() -> pa.Schema:
    """The Arrow schema (pandas metadata included) of a history written whole."""
    return pa.Schema.from_pandas(empty(), preserve_index=False)


def update_batches(
    history: Iterable[pa.Table],
    now: pa.Table,
    date: dt.date,
    *,
    source: Path | str = "presence",
    rows: int = UPDATE_ROWS,
) -> Iterator[pa.Table]:
    """:func:`update` of a whole extraction by pseudonym ranges, in :func:`schema_of`: the
    same rows in the same order, never the history nor the result whole in memory.

    ``history``: the history's batches in its order (:data:`ORDER`); ``now``:
    :func:`placed`, sorted by pseudonym. A spell's key starts with its pseudonym and the
    history is sorted by it first, so the rows of the pseudonyms below a batch's last one
    (with the rows of ``now`` below it) are updated together, apart from all others, and come
    out in place; the last pseudonym's rows wait for the next batch. A history whose
    pseudonyms are out of order raises :class:`UnsortedHistoryError` (``source`` names it)
    before anything of its range is given: the caller then updates it whole."""
    target = schema_of()
    ids = now["pseudonym"].combine_chunks() if now.num_rows else pa.array([], pa.string())
    start = 0  # the next row of ``now``
    carry: list[pa.Table] = []  # the history's rows of the last pseudonym seen
    last: pa.Scalar | None = None

    def updated(old: list[pa.Table], new: pa.Table) -> Iterator[pa.Table]:
        old = [t for t in old if t.num_rows]
        if not old and not new.num_rows:
            return
        if not old:  # no history here (a first Complet, new people): every row opens a spell
            yield _opened(new, date, target)
            return
        frame = pa.concat_tables(old).to_pandas()
        out = update(frame, plain(new), date)
        del frame
        yield pa.Table.from_pandas(out, schema=target, preserve_index=False)

    def below(top: pa.Scalar, upto: bool = False) -> int:
        """The rows of ``now`` from ``start`` whose pseudonym is below ``top`` (or equal)."""
        rest = ids.slice(start)
        if not top.is_valid:  # missing last: every present one is below
            return rest.null_count if upto else len(rest) - rest.null_count
        hit = (pc.less_equal if upto else pc.less)(rest, top)
        return int(pc.sum(hit.fill_null(False)).as_py() or 0)

    for batch in history:
        n = batch.num_rows
        if not n:
            continue
        p = batch["pseudonym"].combine_chunks().cast(pa.string())
        _in_order(p, last, source)
        before, last = last, p[n - 1]
        # the batch's rows below its last pseudonym: a range of their own
        if last.is_valid:
            cut = int(pc.sum(pc.less(p, last).fill_null(False)).as_py() or 0)
        else:
            cut = n - p.null_count
        if cut or (carry and before is not None and before.as_py() != last.as_py()):
            end = start + below(last)
            yield from updated([*carry, batch.slice(0, cut)], now.slice(start, end - start))
            start, carry = end, []
        carry.append(batch.slice(cut))
    # the last pseudonym's rows with the rows of ``now`` up to it; when it is missing, every
    # present pseudonym of ``now`` first, then the missing ones with the history's
    if carry and last is not None and last.is_valid:
        end = start + below(last, upto=True)
        yield from updated(carry, now.slice(start, end - start))
        start, carry = end, []
    stop = len(ids) - ids.null_count if carry else len(ids)
    while start < stop:  # by pieces of whole pseudonyms
        end = min(start + rows, stop)
        while end < stop and ids[end].as_py() == ids[end - 1].as_py():
            end += 1
        yield from updated([], now.slice(start, end - start))
        start = end
    yield from updated(carry, now.slice(start))


def _opened(now: pa.Table, date: dt.date, target: pa.Schema) -> pa.Table:
    """``update(None, plain(now), date)`` in ``target``, by Arrow: each row opens a spell seen
    on ``date``, in :data:`ORDER` (a first Complet's 665,000 rows through pandas took 0.6 s
    of its commit)."""
    n = now.num_rows
    day = np.full(n, np.datetime64(pd.Timestamp(date).to_datetime64(), "ns"))
    columns = {c: now[c].cast(pa.string()) for c in (*KEYS, "level")}
    columns.update(
        first_seen=pa.array(day), last_seen=pa.array(day), departed=pa.nulls(n, pa.timestamp("ns"))
    )
    table = pa.table(columns)
    table = table.take(pc.sort_indices(table, sort_keys=ORDER))
    return pa.Table.from_arrays([table[f.name].cast(f.type) for f in target], schema=target)


def plain(now: pa.Table) -> pd.DataFrame:
    """:func:`placed`'s rows as :func:`present` gives them (strings): decoded by Arrow (a
    pandas categorical turns into strings through a Python object per row)."""
    columns = {c: now[c].cast(pa.string()) for c in now.column_names}
    return pa.table(columns).to_pandas(types_mapper={pa.string(): STRING}.get)


def _in_order(p: pa.Array, last: pa.Scalar | None, source: Path | str) -> None:
    """Refuse a batch of the history's pseudonyms that is not in order after ``last``."""
    both = p if last is None else pa.concat_arrays([pa.array([last.as_py()], pa.string()), p])
    if len(both) < 2:
        return
    valid = both.is_valid().to_numpy(zero_copy_only=False)
    if (np.diff(valid.astype(np.int8)) > 0).any():  # a present one after a missing one
        raise UnsortedHistoryError(source)
    k = int(valid.sum())
    present_ = both.slice(0, k)
    if k > 1 and pc.any(pc.less(present_.slice(1), present_.slice(0, k - 1))).as_py():
        raise UnsortedHistoryError(source)


def _chunks(values: pd.Series) -> list[pa.Array]:
    arr = pa.array(values.astype(STRING).array, type=pa.string())
    return arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]


@dataclasses.dataclass(frozen=True)
class _Ranks:
    """A string column of the history then of ``now``, as each value's rank in Arrow's
    order of the distinct values, a missing value last (``width``)."""

    values: np.ndarray
    width: int
    empty: int | None
    """The rank of the empty string, if there is one."""

    @classmethod
    def of(cls, a: pd.Series, b: pd.Series) -> _Ranks:
        both = pa.chunked_array([*_chunks(a), *_chunks(b)], type=pa.string())
        encoded = pc.dictionary_encode(both).combine_chunks()
        words = encoded.dictionary
        rank = np.empty(len(words) + 1, dtype=np.int32)  # int32: half the memory
        rank[pc.array_sort_indices(words).to_numpy()] = np.arange(len(words))
        rank[-1] = len(words)
        values = rank[encoded.indices.fill_null(len(words)).to_numpy(zero_copy_only=False)]
        at = pc.index(words, "").as_py()
        return cls(values, len(words), int(rank[at]) if at >= 0 else None)

    def matching(self) -> np.ndarray:
        """The ranks with a missing value as an empty one (as the history's keys compare)."""
        if self.empty is None:
            return self.values
        return np.where(self.values == self.width, self.empty, self.values)


ORDER = [(c, "ascending", "at_end") for c in [*KEYS, "first_seen"]]
"""The history's order: (pseudonym, kind, uai, first_seen), missing last, as pandas' own
sort would put them (Arrow's ``sort_indices`` keys)."""


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in :data:`ORDER`, sorted by Arrow (four times faster on a whole académie's
    history than pandas)."""
    table = pa.table({c: pa.array(df[c]) for c, _, _ in ORDER})
    return df.take(pc.sort_indices(table, sort_keys=ORDER).to_numpy())


def listed(history: pd.DataFrame, people: pd.DataFrame) -> np.ndarray:
    """Rows of ``history`` whose (pseudonym, kind) is in ``people``."""
    hit = isin(history["pseudonym"], people["pseudonym"].dropna())
    if hit.any():  # pseudonyms are per kind: the kind is checked on the few hits only
        at = np.flatnonzero(hit)
        hit[at] = isin(_pairs(history, pa.array(at)), _pairs(people))
    return hit


def _pairs(df: pd.DataFrame, rows: pa.Array | None = None) -> pa.Array:
    """Each row's (pseudonym, kind) as one Arrow string, a missing part written ``<NA>``."""
    pseudonyms, kinds = arrow_strings(df["pseudonym"]), arrow_strings(df["kind"])
    if rows is not None:
        pseudonyms, kinds = pseudonyms.take(rows), kinds.take(rows)
    return pc.binary_join_element_wise(
        pseudonyms, kinds, "\x1f", null_handling="replace", null_replacement="<NA>"
    )
