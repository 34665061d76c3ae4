"""A Delta written as what it names: its slice of the state, its overlay over the base files.

A Delta names a few thousand records of a state of hundreds of thousands. Its application,
journal and presence are computed on :func:`delta_slice`, the part of the state they read: the
Delta's records, the members of the structures it names, the guardians of those pupils and the
pupils of those guardians, every row these people own, every structure. On that slice
:func:`~ent_audit.store.apply.apply_delta`, :func:`~ent_audit.store.journal.changes` and
:mod:`~ent_audit.store.presence` give, for the records the Delta names, the same rows as on the
whole state.

On disk a state is a *base* (``snapshot/<frame>.parquet``, ``presence.parquet``: written whole
by a Complet, a purge or a compaction) and, after Deltas, an *overlay*: per frame they touched,
``overlay/<frame>.parquet`` holds the rows the records they named own, as they are now, and
``overlay/<frame>.keys.parquet`` those records (kind, jointure); the presence history likewise
by (kind, pseudonym). A Delta hard-links the base and writes its overlay (the previous one with
its own records' rows replaced): its cost grows with the Delta, not with the state. Every
reader sees the merged frame (:func:`read_frame`): the base rows no overlay record owns, then
the overlay rows. An open presence spell's ``last_seen`` is the state's date (a Delta sees
again everyone it leaves where they were): ``presence_seen``, applied on reading.

The base keeps the replaced rows of the records a Delta changed or removed: older copies of
personal data (Annexe 1 of the convention keeps the latest only). They are bounded: a Delta
more than :data:`MAX_DAYS` after the base's first overlay, or whose overlay would pass
:data:`MAX_SHARE` of a frame, writes the whole state instead (a compaction, :func:`merged`);
the retention report lists a base waiting for its compaction with that deadline, and
``ent-audit purge`` compacts it.

Which rows a record owns comes from the schema (:func:`owners`): its entity row, the link rows
its multi-valued attributes state (with their origin, where a table has one), its extras and
issues. ``structures``, ``skipped`` and ``files`` (small) are written whole.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING, arrow_strings, isin
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot
from ent_audit.exceptions import StoreCorruptError, UnsortedHistoryError

FRAMES_DIR = "snapshot"
OVERLAY_DIR = "overlay"
PRESENCE = "presence.parquet"
PRESENCE_OVERLAY = "presence.overlay.parquet"
PRESENCE_KEYS = "presence.overlay.keys.parquet"
WHOLE = ("structures", "skipped", "files")
"""Frames a Delta writes whole (a few thousand rows at most)."""
MAX_SHARE = 0.25
"""A Delta whose overlays would hold more than this share of the base's rows compacts."""
MAX_DAYS = 7
"""A Delta dated more than this many days after the base's first overlay compacts: the
replaced rows the base still holds are older copies, kept a week at most (the retention rule
``old_copies`` gives the same deadline to a base no Delta compacted)."""

Where = Sequence[tuple[str, Iterable]]
"""A row filter: (column, ids) pairs; a row is kept when any of them holds."""


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


def key_columns(frame: str) -> list[str]:
    """The columns :func:`owned` reads in ``frame``."""
    return list(dict.fromkeys(c for _, i, o, _ in owners(frame) for c in (i, o) if c))


def owned(
    rows: pa.Table | pd.DataFrame, frame: str, ids: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """Rows of ``rows`` (rows of ``frame``) owned by the records ``ids`` lists by kind name."""
    out = np.zeros(len(rows), dtype=bool)
    for kind, id_col, origin_col, origin in owners(frame):
        mine = ids.get(kind)
        if mine is None or not len(mine) or not len(rows):
            continue
        hit = isin(rows[id_col], mine)
        if origin_col is not None:
            hit &= (
                pc.equal(arrow_strings(rows[origin_col]), origin)
                .fill_null(False)
                .to_numpy(zero_copy_only=False)
            )
        out |= hit
    return out


def _any(table: pa.Table, where: Where) -> np.ndarray:
    """Rows of ``table`` where one of the (column, ids) pairs holds."""
    out = np.zeros(table.num_rows, dtype=bool)
    for column, ids in where:
        if len(ids) and table.num_rows:
            out |= _isin(table[column], ids)
    return out


def _isin(column: pa.ChunkedArray | pa.Array | pd.Series, ids) -> np.ndarray:
    """:func:`~ent_audit.aaf.frames.isin`; a dictionary array is looked up by its dictionary
    (a few thousand structures), never decoded into a string per row."""
    if not (isinstance(column, pa.Array | pa.ChunkedArray) and pa.types.is_dictionary(column.type)):
        return isin(column, ids)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    value_set = arrow_strings(ids)
    missing = value_set.null_count > 0  # as pc.is_in: a missing value matches a missing id
    parts = [
        pc.is_in(c.dictionary.cast(pa.string()), value_set=value_set)
        .take(c.indices)
        .fill_null(missing)
        .to_numpy(zero_copy_only=False)
        for c in chunks
    ]
    return np.concatenate(parts).astype(bool) if parts else np.zeros(0, dtype=bool)


def _ids(*parts) -> pa.Array:
    """The distinct non-missing ids of several columns (Arrow, pandas or lists), as Arrow
    strings: no Python object per id."""
    arrays = [
        arrow_strings(p) if not isinstance(p, list) else pa.array(p, pa.string()) for p in parts
    ]
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        return pa.array([], type=pa.string())
    return pc.unique(pc.drop_null(pa.concat_arrays(arrays)))


def _unique(values) -> list[str]:
    """Distinct non-missing ids, in their first order."""
    return _ids(values).to_pylist()


def named(delta: Snapshot) -> dict[str, list[str]]:
    """The records a Delta names, by kind name."""
    return {k.name: _unique(getattr(delta, k.frame)["jointure"]) for k in schema.KINDS.values()}


def _keys(table: pa.Table | pd.DataFrame, column: str = "jointure") -> dict[str, list[str]]:
    """An overlay's keys as ids by kind name."""
    df = table.to_pandas() if isinstance(table, pa.Table) else table
    return {str(k): list(g[column].astype(str)) for k, g in df.groupby("kind", observed=True)}


# -- Arrow tables of one schema ------------------------------------------------------------


def conform(tables: Sequence[pa.Table | pd.DataFrame]) -> list[pa.Table]:
    """Tables (or frames) with the first one's schema, dictionary columns as int32-indexed
    strings (their dictionaries are unified when concatenated): ready for ``concat_tables``."""
    arrow = [
        t if isinstance(t, pa.Table) else pa.Table.from_pandas(t, preserve_index=False)
        for t in tables
    ]
    first = arrow[0].schema
    fields = [
        f.with_type(pa.dictionary(pa.int32(), pa.string())) if pa.types.is_dictionary(f.type) else f
        for f in first
    ]
    target = pa.schema(fields, metadata=first.metadata)
    return [
        pa.Table.from_arrays([t[f.name].cast(f.type) for f in fields], schema=target) for t in arrow
    ]


def concat(tables: Sequence[pa.Table | pd.DataFrame]) -> pa.Table:
    """Tables (or frames) one after the other, in the first one's schema."""
    return pa.concat_tables(conform(tables)).unify_dictionaries()


# -- reading --------------------------------------------------------------------------------


def read_table(
    path: Path,
    columns: Sequence[str] | None = None,
    *,
    threads: bool = True,
    dictionary: bool | Sequence[str] = False,
) -> pa.Table:
    """One Parquet file as Arrow (pandas' own dtypes come back from its metadata on
    ``to_pandas``), a missing or damaged file named. ``threads``: decoded by Arrow's pool
    (both cores), else by the calling thread alone. ``dictionary``: string columns decoded
    straight into dictionary arrays (Parquet stores them so), never as one string per row;
    or the names of the string columns so decoded (:func:`repeated`)."""
    cols = None if columns is None else list(columns)
    try:
        if dictionary is not False:
            return _read_dictionary(path, cols, threads, None if dictionary is True else dictionary)
        return pq.read_table(path, columns=cols, use_threads=threads)
    except FileNotFoundError:
        raise StoreCorruptError(path, "fichier absent") from None
    except Exception as err:  # pyarrow raises several unrelated types for a damaged file
        raise StoreCorruptError(path, f"{type(err).__name__}: {err}") from None


def _read_dictionary(
    path: Path, columns: list[str] | None, threads: bool, which: Sequence[str] | None = None
) -> pa.Table:
    """:func:`read_table` with string columns (``which`` of them) as dictionary arrays, read
    column by column: one dictionary per column (``pq.read_table`` repeats it in every batch
    it cuts, three times the memory on an académie's guardian links) and one column's pages
    decoded at a time."""
    with pq.ParquetFile(path) as probe:
        whole = probe.schema_arrow
    names = whole.names if columns is None else columns
    strings = [
        n for n in names if (pa.types.is_string(whole.field(n).type)
        or pa.types.is_large_string(whole.field(n).type)) and (which is None or n in which)
    ]  # fmt: skip
    with pq.ParquetFile(path, read_dictionary=strings) as pf:
        if not names:
            return pf.read(columns=[], use_threads=threads)
        arrays = [pf.read(columns=[n], use_threads=threads).column(0) for n in names]
    return pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(whole.metadata)


SMALL_DICTIONARY = 1 << 18
"""A string column whose Parquet dictionary page is under this many bytes (compressed) holds
values that repeat (names, codes, structures): it is decoded faster, and held smaller, as a
dictionary array. Ids (a value per row) overflow the writer's 1 MB dictionary, which falls
back to plain pages: decoding those into a dictionary hashes every value, 4 to 6 times the
time of a plain decode (an académie's guardian links: 281 ms against 47)."""


def repeated(path: Path, columns: Sequence[str] | None = None) -> list[str]:
    """The string columns of a Parquet file (among ``columns``) whose values repeat: a small
    dictionary page in every row group (:data:`SMALL_DICTIONARY`). Only the speed and the
    memory of a read depend on it, never its values."""
    meta = pq.read_metadata(path)
    schema_ = meta.schema.to_arrow_schema()
    names = schema_.names if columns is None else list(columns)
    out = []
    for n in names:
        t = schema_.field(n).type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            continue
        i = schema_.get_field_index(n)
        chunks = [meta.row_group(g).column(i) for g in range(meta.num_row_groups)]
        if all(
            c.has_dictionary_page
            and c.data_page_offset - c.dictionary_page_offset < SMALL_DICTIONARY
            for c in chunks
        ):
            out.append(n)
    return out


def layered(meta: Mapping) -> dict[str, int]:
    """The frames of a state with an overlay, and its row count."""
    return dict(meta.get("overlay") or {})


def read_frame(
    folder: Path,
    meta: Mapping,
    name: str,
    columns: Sequence[str] | None = None,
    *,
    threads: bool = True,
    dictionary: bool | Sequence[str] = False,
) -> pa.Table:
    """Frame ``name`` of a state folder: the base rows no overlay record owns, then the
    overlay rows; ``columns``: only these (``()``: none, the row count only);
    ``dictionary``: string columns (or these ones) as dictionary arrays (see
    :func:`read_table`)."""
    base_path = folder / FRAMES_DIR / f"{name}.parquet"
    if name not in layered(meta):
        return read_table(base_path, columns, threads=threads, dictionary=dictionary)
    need = None if columns is None else list(dict.fromkeys([*columns, *key_columns(name)]))
    top = read_table(folder / OVERLAY_DIR / f"{name}.parquet", need, dictionary=dictionary)
    keys = _keys(read_table(folder / OVERLAY_DIR / f"{name}.keys.parquet"))
    if dictionary:  # compact as read: filtered whole
        base = read_table(base_path, need, threads=threads, dictionary=dictionary)
        base = base.filter(pa.array(~owned(base, name, keys)))
    else:  # filtered as decoded, never held whole beside what is kept
        base = _kept(base_path, lambda t: ~owned(t, name, keys), need, threads=threads)
    out = concat([base, top])
    return out if columns is None else out.select(list(columns))


def read_presence(
    folder: Path, meta: Mapping, columns: Sequence[str] | None = None, *, threads: bool = True
) -> pa.Table:
    """The presence history of a state folder (base, overlay, open spells last seen at the
    state's date: ``presence_seen``), in its order when an overlay was merged."""
    if not meta.get("presence_overlay"):
        return read_table(folder / PRESENCE, columns, threads=threads)
    base = read_table(folder / PRESENCE, threads=threads)
    top = read_table(folder / PRESENCE_OVERLAY)
    keys = _keys(read_table(folder / PRESENCE_KEYS), "pseudonym")
    table = _presence(base, keys, top, dt.date.fromisoformat(meta["presence_seen"]))
    return table if columns is None else table.select(list(columns))


def presence_parts(folder: Path, meta: Mapping) -> Iterator[pa.Table]:
    """:func:`read_presence` batch by batch: the same rows in the same order, never whole
    (a state with a presence overlay: merged as :func:`presence_batches` merges it, which
    raises :class:`UnsortedHistoryError` for a base out of order)."""
    if not meta.get("presence_overlay"):
        yield from _decoded(folder / PRESENCE, rows=BATCH_ROWS)
        return
    from ent_audit.store.presence import empty

    top = (
        read_table(folder / PRESENCE_OVERLAY),
        _keys(read_table(folder / PRESENCE_KEYS), "pseudonym"),
    )
    state = State(folder, dict(meta), narrow={}, counts={}, presence_overlay=top)
    seen = dt.date.fromisoformat(meta["presence_seen"])
    yield from presence_batches(state, {}, empty(), seen).parts()


def _presence_owned(table: pa.Table, keys: Mapping[str, Sequence[str]]) -> np.ndarray:
    out = np.zeros(table.num_rows, dtype=bool)
    for kind, ids in keys.items():
        hit = isin(table["pseudonym"], ids)
        out |= hit & pc.equal(arrow_strings(table["kind"]), kind).fill_null(False).to_numpy(
            zero_copy_only=False
        )
    return out


def _presence(
    base: pa.Table, keys: Mapping[str, Sequence[str]], top: pa.Table | pd.DataFrame, seen: dt.date
) -> pa.Table:
    """``base`` without the rows of ``keys`` (kind -> pseudonyms), everyone else's open
    spells seen again at ``seen``, then ``top``; in the history's order."""
    from ent_audit.store.presence import ORDER

    table = concat([base.filter(pa.array(~_presence_owned(base, keys))), top])
    i = table.schema.get_field_index("last_seen")
    day = pa.scalar(dt.datetime.combine(seen, dt.time()), type=table.schema.field(i).type)
    last = pc.if_else(pc.is_null(table["departed"]), day, table["last_seen"])
    table = table.set_column(i, table.schema.field(i), last)
    return table.take(pc.sort_indices(table, sort_keys=ORDER))


# -- a Delta's slice ------------------------------------------------------------------------

_MEMBERS = {
    "person_structure": ("person", "kind"),
    "student_class": ("student", None),
    "staff_function": ("staff", None),
    "staff_director": ("staff", None),
}
"""The link tables placing a person in a structure: their person column and, where one table
places several kinds, the column saying which."""
PLACING = (*_MEMBERS, "student_guardian")
"""The link tables that say who a Delta's slice holds (:attr:`State.narrow`)."""


BATCH_ROWS = 1 << 16
"""Rows decoded at a time when a Delta's slice is read: the state is filtered as it is
decoded, never held whole (a Delta's memory follows the Delta; so does the time the system
takes to hand a process fresh memory)."""


WRITE_ROWS = 1 << 14
"""Rows a compaction decodes, merges and writes at a time (a row group each)."""


@dataclass
class State:
    """What a Delta reads of a state folder: up front (while its archive is parsed), the link
    tables that say who belongs where (:meth:`open`); then its slice, frame by frame,
    filtered while decoded (:meth:`rows`) or, for those tables, in memory (:meth:`held`);
    the whole state only for a compaction."""

    folder: Path
    meta: dict
    narrow: dict[str, pa.Table]
    """The link tables placing people (:data:`PLACING`), merged and whole: read while the
    Delta is parsed (the core the parse leaves idle), they tell :func:`delta_slice` its
    people and give it their rows without a second reading (68 MiB of Arrow on an
    académie). Repeated values (structures, kinds, codes) as dictionary arrays, ids plain
    (:func:`repeated`); let go by :func:`delta_slice` as it takes their rows."""
    counts: dict[str, int]
    """Records per entity frame (merged)."""
    overlays: dict[str, tuple[pa.Table, dict[str, list[str]]]] = field(default_factory=dict)
    """Per layered frame, its overlay rows and keys (kind -> jointures)."""
    presence_overlay: tuple[pa.Table, dict[str, list[str]]] | None = None

    @classmethod
    def open(cls, folder: Path, meta: dict) -> State:
        """Read by the calling thread alone: an ingestion opens the state while it parses
        the Delta on the other core (:mod:`ent_audit.store.ingest`)."""
        narrow = {
            name: read_frame(
                folder,
                meta,
                name,
                threads=False,
                dictionary=repeated(folder / FRAMES_DIR / f"{name}.parquet"),
            )
            for name in PLACING
        }
        overlays = {
            name: (
                read_table(folder / OVERLAY_DIR / f"{name}.parquet"),
                _keys(read_table(folder / OVERLAY_DIR / f"{name}.keys.parquet")),
            )
            for name in layered(meta)
        }
        top = None
        if meta.get("presence_overlay"):
            top = (
                read_table(folder / PRESENCE_OVERLAY),
                _keys(read_table(folder / PRESENCE_KEYS), "pseudonym"),
            )
        counts = {k.frame: _records(folder, meta, k.frame, overlays) for k in schema.KINDS.values()}
        return cls(folder, meta, narrow, counts, overlays, top)

    @property
    def names(self) -> list[str]:
        return list(self.meta.get("frames", []))

    def rows(self, name: str, where: Where | None) -> pd.DataFrame:
        """Frame ``name``'s rows ``where`` names (None: all), merged, decoded in batches."""
        return self.table(name, where).to_pandas()

    def table(self, name: str, where: Where | None) -> pa.Table:
        """:meth:`rows` as Arrow."""
        base_path = self.folder / FRAMES_DIR / f"{name}.parquet"
        if where is None:
            return read_frame(self.folder, self.meta, name)
        base = _filtered(base_path, where)
        if name in self.overlays:
            top, keys = self.overlays[name]
            base = base.filter(pa.array(~owned(base, name, keys)))
            base = concat([base, top.filter(pa.array(_any(top, where)))])
        return base

    def held(self, name: str, where: Where | None) -> pa.Table:
        """:meth:`table` of a table :attr:`narrow` holds: the same rows, in the same order
        and types (the base file's), filtered in memory; the table is let go."""
        table = self.narrow.pop(name)
        if where is not None:
            table = table.filter(pa.array(_any(table, where)))
        table = table.cast(_file_schema(self.folder / FRAMES_DIR / f"{name}.parquet"))
        return concat([table]) if name in self.overlays else table  # as merged by :meth:`table`

    def whole(self, name: str) -> pa.Table:
        """Frame ``name``, merged, whole (a compaction's)."""
        return read_frame(self.folder, self.meta, name)

    def empty(self, name: str) -> pa.Table:
        """No row of frame ``name``, with its schema."""
        return pq.read_schema(self.folder / FRAMES_DIR / f"{name}.parquet").empty_table()

    def presence_of(self, pseudonyms) -> pd.DataFrame:
        """The presence history's rows of these pseudonyms (merged, in its order)."""
        where = [("pseudonym", pseudonyms)]
        base = _filtered(self.folder / PRESENCE, where)
        if self.presence_overlay is None:
            return base.to_pandas()
        top, keys = self.presence_overlay
        seen = dt.date.fromisoformat(self.meta["presence_seen"])
        return _presence(base, keys, top.filter(pa.array(_any(top, where))), seen).to_pandas()

    def whole_presence(self) -> pa.Table:
        return read_presence(self.folder, self.meta)

    def presence_schema(self) -> pa.Table:
        return pq.read_schema(self.folder / PRESENCE).empty_table()

    def records(self) -> dict[str, int]:
        """Records per entity frame."""
        return dict(self.counts)

    def base_bytes(self, name: str) -> int:
        """Size of frame ``name``'s base file (0 if absent: its read names it)."""
        try:
            return (self.folder / FRAMES_DIR / f"{name}.parquet").stat().st_size
        except OSError:
            return 0

    def base_rows(self, name: str) -> int:
        return pq.read_metadata(self.folder / FRAMES_DIR / f"{name}.parquet").num_rows


def _records(
    folder: Path, meta: Mapping, name: str, overlays: Mapping[str, tuple[pa.Table, Mapping]]
) -> int:
    """Records of entity frame ``name``, merged: the base's (its file's metadata) less those
    its overlay replaces, plus the overlay's (a state's jointures are present and unique:
    :meth:`ent_audit.store.Store.verify`)."""
    base_path = folder / FRAMES_DIR / f"{name}.parquet"
    if name not in overlays:
        try:
            return pq.read_metadata(base_path).num_rows
        except FileNotFoundError:
            raise StoreCorruptError(base_path, "fichier absent") from None
        except Exception as err:  # pyarrow raises several unrelated types for a damaged file
            raise StoreCorruptError(base_path, f"{type(err).__name__}: {err}") from None
    top, keys = overlays[name]
    base = read_table(base_path, ["jointure"], threads=False)
    return int((~owned(base, name, keys)).sum()) + top.num_rows


SMALL_FILE = 1 << 20
"""A file under this size is read whole, then filtered: one opening of the file instead of
three (its dictionary pages, its schema, its batches). The dozen small frames of an
académie Delta's slice took 5 to 16 ms each, read in batches."""


def _filtered(path: Path, where: Where) -> pa.Table:
    """The rows of a Parquet file ``where`` names, filtered batch by batch as decoded; its
    repeated string columns decoded as dictionaries (:func:`repeated`: a third less time on
    an académie's guardians), back to strings once filtered. A small file: read, then
    filtered (:data:`SMALL_FILE`)."""
    try:
        small = path.stat().st_size < SMALL_FILE
    except FileNotFoundError:
        raise StoreCorruptError(path, "fichier absent") from None
    if small:
        table = read_table(path, threads=False)
        return table.filter(pa.array(_any(table, where)))
    return _kept(path, lambda t: _any(t, where), dictionary=repeated(path))


def _kept(
    path: Path,
    keep: Callable[[pa.Table], np.ndarray],
    columns: Sequence[str] | None = None,
    *,
    threads: bool = False,
    dictionary: Sequence[str] = (),
) -> pa.Table:
    """The rows of a Parquet file ``keep`` selects, decided batch by batch as decoded: the
    file is never held whole beside what is kept (a layered frame's base, a compaction's).
    ``dictionary``: string columns decoded as dictionary arrays, cast back to strings once
    their batch is filtered (same values, same types)."""
    cols = None if columns is None else list(columns)
    target = _file_schema(path) if dictionary else None
    parts = []
    for t in _decoded(path, cols, threads=threads, dictionary=dictionary):
        t = t.filter(pa.array(keep(t)))
        if target is not None:
            fields = [target.field(n) for n in t.column_names]
            t = t.cast(pa.schema(fields, metadata=target.metadata))
        parts.append(t)
    if not parts:
        empty = (target if target is not None else _file_schema(path)).empty_table()
        return empty if cols is None else empty.select(cols)
    return pa.concat_tables(parts)


def _file_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except FileNotFoundError:
        raise StoreCorruptError(path, "fichier absent") from None
    except Exception as err:  # pyarrow raises several unrelated types for a damaged file
        raise StoreCorruptError(path, f"{type(err).__name__}: {err}") from None


def _decoded(
    path: Path,
    columns: list[str] | None = None,
    *,
    threads: bool = False,
    rows: int = 0,
    dictionary: Sequence[str] = (),
) -> Iterator[pa.Table]:
    """A Parquet file as tables of ``rows`` (else :data:`BATCH_ROWS`) rows at most, decoded
    one at a time (``dictionary``: these string columns as dictionary arrays); a missing or
    damaged file named (what the caller does with a batch is not caught here)."""
    try:
        pf = pq.ParquetFile(
            path, pre_buffer=False, buffer_size=1 << 16, read_dictionary=list(dictionary) or None
        )
        batches = pf.iter_batches(
            batch_size=rows or BATCH_ROWS, columns=columns, use_threads=threads
        )
    except FileNotFoundError:
        raise StoreCorruptError(path, "fichier absent") from None
    except Exception as err:  # pyarrow raises several unrelated types for a damaged file
        raise StoreCorruptError(path, f"{type(err).__name__}: {err}") from None
    with pf:
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as err:
                raise StoreCorruptError(path, f"{type(err).__name__}: {err}") from None
            yield pa.Table.from_batches([batch])


def delta_slice(state: State, delta: Snapshot) -> Snapshot:
    """The part of ``state`` a Delta's application, journal and presence read (see the
    module)."""
    from ent_audit.store.journal import _PEOPLE_COLUMNS

    t = state.narrow
    ids = named(delta)
    structures = _ids(ids[schema.STRUCTURE.name])
    # People the Delta's links and modified values point at (a pupil a new guardian is
    # linked to…): they place people it names. Any kind: ids of another kind select nothing.
    mentioned = _mentioned(delta, _PEOPLE_COLUMNS)
    students = [_ids(ids[schema.STUDENT.name]), mentioned]
    staff = [_ids(ids[schema.STAFF.name]), mentioned]
    for name, (column, kind_col) in _MEMBERS.items() if len(structures) else ():
        hit = t[name].filter(pa.array(_any(t[name], [("structure", structures)])))
        if kind_col is None:
            (students if column == "student" else staff).append(arrow_strings(hit[column]))
            continue
        for tag, into in (("student", students), ("staff", staff)):
            is_tag = pc.equal(arrow_strings(hit[kind_col]), tag).fill_null(False)
            into.append(arrow_strings(hit[column]).filter(is_tag))
    students = _ids(*students)
    sg = t["student_guardian"].select(["student", "guardian"])
    near = sg.filter(pa.array(_any(sg, [("student", students)])))
    guardians = _ids(_ids(ids[schema.GUARDIAN.name]), mentioned, near["guardian"])
    theirs = sg.filter(pa.array(_any(sg, [("guardian", guardians)])))
    students = _ids(students, theirs["student"])
    del sg, near, theirs
    staff = _ids(*staff)
    everyone = _ids(students, guardians, staff)
    people = {
        schema.STUDENT.frame: students,
        schema.GUARDIAN.frame: guardians,
        schema.STAFF.frame: staff,
    }
    wheres: dict[str, Where | None] = {}
    for name in state.names:
        if name in people:
            where: Where | None = [("jointure", people[name])]
        elif name in _PEOPLE_COLUMNS:
            where = [(c, everyone) for c in _PEOPLE_COLUMNS[name]]
        elif name in ("extras", "issues"):
            where = [("jointure", _ids(everyone, structures))]
        else:
            where = None  # structures, skipped, files: whole
        wheres[name] = where
    del t

    def rows(name: str) -> pd.DataFrame:
        if name in PLACING:  # in memory: filtered (and let go), not read again
            return state.held(name, wheres[name]).to_pandas()
        return state.rows(name, wheres[name])

    # The biggest files first: the two readers end together instead of one of them reading
    # the guardians alone at the end (the longest-first rule).
    order = sorted(wheres, key=state.base_bytes, reverse=True)
    with ThreadPoolExecutor(2, thread_name_prefix="ent-audit-slice") as pool:
        read = dict(zip(order, pool.map(rows, order), strict=True))
    state.narrow.clear()  # any placing table the state's frames do not list
    frames = {name: read[name] for name in wheres}
    m = state.meta
    try:
        links = {name: frames.pop(name) for name in m["links"]}
        info = ExtractionInfo(m["perimeter"], m["extraction"], dt.date.fromisoformat(m["date"]))
        return Snapshot(extraction=info, links=links, notes=m["notes"], **frames)
    except (KeyError, TypeError, ValueError) as err:
        raise StoreCorruptError(state.folder / "meta.json", repr(err)) from None


def _mentioned(delta: Snapshot, people_columns: Mapping[str, Sequence[str]]) -> pa.Array:
    """Every id in the Delta's link rows' person columns and in its modified values' parts."""
    found = [
        delta.links[name][c]
        for name, columns in people_columns.items()
        if name in delta.links
        for c in columns
    ]
    values = delta.modifications["value"].dropna().astype(str)
    found.append(values.str.split("$").explode().astype(STRING))
    return _ids(*found)


# -- what a Delta writes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Batches:
    """A frame written batch by batch (a compaction's merged frame, its presence history):
    ``parts`` gives its rows in order, a batch at a time, in ``schema``; what is in memory is
    one batch and the few rows the Delta wrote, never the frame. ``whole`` gives the same
    rows at once, for a base :func:`parts` finds out of order (:class:`UnsortedHistoryError`)."""

    schema: pa.Schema
    parts: Callable[[], Iterator[pa.Table]]
    whole: Callable[[], pa.Table] | None = None

    def table(self) -> pa.Table:
        """The rows whole (tests, small frames)."""
        try:
            parts = list(self.parts())
        except UnsortedHistoryError:
            if self.whole is None:
                raise
            return self.whole()
        return pa.concat_tables([self.schema.empty_table(), *parts]).unify_dictionaries()


Frame = tuple[pa.Table, pa.Table] | pa.Table | Batches | None
"""What a Delta writes of one frame: its overlay (rows, keys), the frame whole, its batches (a
compaction's merged frame, built batch by batch by the thread that writes it: each writer
holds a batch, not a frame), or nothing."""


@dataclass
class Written:
    """What a Delta writes: per frame an overlay (rows, keys) or a whole table, or nothing
    (``None``: the frame is as it was, its files are linked); the same for presence."""

    frames: dict[str, Frame]
    presence: tuple[pa.Table, pa.Table] | Batches
    compacted: bool
    overlay_since: str | None
    """When the base's first overlay was written (ISO date of that Delta)."""

    counts: dict[str, int]
    """Rows per entity frame of the new state."""


def write_plan(
    state: State,
    slice_: Snapshot,
    after: Snapshot,
    delta: Snapshot,
    updated: pd.DataFrame,
    people: pd.DataFrame,
    *,
    max_days: int = MAX_DAYS,
) -> Written:
    """What the Delta (``after`` is it applied to ``slice_``; ``updated`` the history of the
    ``people`` it touched, after it) writes: overlays, or the whole state when they would
    pass :data:`MAX_SHARE` or the base's first overlay is more than ``max_days`` old."""
    date = delta.extraction.date
    since = state.meta.get("overlay_since")
    stale = (
        since is not None
        and date is not None
        and (date - dt.date.fromisoformat(since)).days > max_days
    )
    ids = named(delta)
    before = slice_.frames()
    frames: dict[str, Frame] = {}
    counts = state.records()
    overlaid = 0
    for name, frame in after.frames().items():
        if frame is before.get(name):
            frames[name] = None
            overlaid += state.overlays[name][0].num_rows if name in state.overlays else 0
            continue
        if name in counts:  # the merged rows the Delta's records own give way to theirs
            # (the slice holds every row of the records the Delta names)
            gone = owned(before[name], name, ids).sum()
            counts[name] += int(owned(frame, name, ids).sum() - gone)
        if name in WHOLE:
            frames[name] = concat([frame])
            continue
        take = owned(frame, name, ids)
        if name in ("extras", "issues"):  # the Delta's own rows about no record
            take |= frame["jointure"].isna().to_numpy()
        mine = {k: v for k, v in ids.items() if v and k in {o[0] for o in owners(name)}}
        old_rows, old_keys = state.overlays.get(name, (None, {}))
        rows = [frame[take]]
        if old_rows is not None:
            rows.insert(0, old_rows.filter(pa.array(~owned(old_rows, name, mine))))
        keys = {
            k: list(dict.fromkeys([*old_keys.get(k, []), *mine.get(k, [])]))
            for k in {*old_keys, *mine}
        }
        table = concat(rows if old_rows is not None else [state.empty(name), *rows])
        frames[name] = (table, _key_table(keys))
        overlaid += table.num_rows
    base_rows = sum(state.base_rows(n) for n in state.names if n not in WHOLE)
    big = stale or overlaid > MAX_SHARE * max(base_rows, 1)
    history_keys = _keys(people[["kind", "pseudonym"]], "pseudonym")
    if big:  # a compaction: every frame whole, merged batch by batch by its writer
        whole: dict[str, Frame] = {}
        for name, w in frames.items():
            if w is None:  # as it was: linked, or written merged if it had an overlay
                whole[name] = merged_batches(state, name) if name in state.overlays else None
            elif isinstance(w, pa.Table):
                whole[name] = w
            else:
                whole[name] = merged_batches(state, name, after, ids)
        table = presence_batches(state, history_keys, updated, date)
        return Written(whole, table, True, None, counts)
    old_top, old_hkeys = state.presence_overlay or (None, {})
    top = [updated]
    if old_top is not None:
        top.insert(0, old_top.filter(pa.array(~_presence_owned(old_top, history_keys))))
    else:
        top.insert(0, state.presence_schema())
    hkeys = {
        k: list(dict.fromkeys([*old_hkeys.get(k, []), *history_keys.get(k, [])]))
        for k in {*old_hkeys, *history_keys}
    }
    return Written(
        frames,
        (concat(top), _key_table(hkeys, "pseudonym")),
        False,
        since or (date.isoformat() if date else None),
        counts,
    )


def _key_table(keys: Mapping[str, Sequence[str]], column: str = "jointure") -> pa.Table:
    kinds = [k for k, v in keys.items() for _ in v]
    ids = [i for v in keys.values() for i in v]
    return pa.table({"kind": pa.array(kinds, pa.string()), column: pa.array(ids, pa.string())})


def _arrays(ids: Mapping[str, Sequence[str]]) -> dict[str, pa.Array]:
    """Ids by kind as Arrow strings: converted once, not at each batch they filter."""
    return {k: _ids(list(v)) for k, v in ids.items()}


def _target(schema_: pa.Schema) -> pa.Schema:
    """The schema :func:`concat` gives tables whose first has ``schema_``."""
    return conform([schema_.empty_table()])[0].schema


def _cast(table: pa.Table | pd.DataFrame, target: pa.Schema) -> pa.Table:
    """``table`` (or a frame) in ``target``, as :func:`conform` casts it."""
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    return pa.Table.from_arrays([table[f.name].cast(f.type) for f in target], schema=target)


def merged_batches(
    state: State,
    name: str,
    after: Snapshot | None = None,
    ids: Mapping[str, Sequence[str]] | None = None,
) -> Batches:
    """Frame ``name`` of the state after the Delta (``after``, naming ``ids``; none: the state
    as it is), batch by batch: the merged rows the Delta's records do not own (the base's no
    overlay record owns, then the overlay's), then the rows they own in ``after``."""
    path = state.folder / FRAMES_DIR / f"{name}.parquet"
    target = _target(_file_schema(path))
    top, keys = state.overlays.get(name, (None, {}))
    keys, ids = _arrays(keys), _arrays(ids or {})

    def parts() -> Iterator[pa.Table]:
        for t in _decoded(path, rows=WRITE_ROWS):
            yield _cast(t.filter(pa.array(~(owned(t, name, ids) | owned(t, name, keys)))), target)
        if top is not None:
            yield _cast(top.filter(pa.array(~owned(top, name, ids))), target)
        if after is not None:
            frame = after.frames()[name]
            take = owned(frame, name, ids)
            if name in ("extras", "issues"):
                take |= frame["jointure"].isna().to_numpy()
            yield _cast(frame[take], target)

    return Batches(target, parts)


def merged(state: State, name: str, after: Snapshot, ids: Mapping[str, Sequence[str]]) -> pa.Table:
    """Frame ``name`` of the state after the Delta, whole (:func:`merged_batches`)."""
    return merged_batches(state, name, after, ids).table()


def presence_batches(
    state: State, keys: Mapping[str, Sequence[str]], updated: pd.DataFrame, date: dt.date
) -> Batches:
    """The presence history after a compacting Delta, batch by batch, as :func:`_presence`
    gives it whole (the same rows, in the same order): the base's rows no overlay and no
    ``keys`` own, merged in order with the few others (the overlay's rows ``keys`` do not
    own, then ``updated``: the history of the people the Delta touched), open spells seen
    at ``date``. The base is in the history's order (every whole write sorts it); one that is
    not is sorted whole (:attr:`Batches.whole`)."""
    from ent_audit.store.presence import ORDER

    path = state.folder / PRESENCE
    target = _target(_file_schema(path))
    top, old_keys = state.presence_overlay or (None, {})
    old_keys, keys = _arrays(old_keys), _arrays(keys)
    i = target.get_field_index("last_seen")
    day = pa.scalar(dt.datetime.combine(date, dt.time()), type=target.field(i).type)

    def seen(t: pa.Table) -> pa.Table:
        last = pc.if_else(pc.is_null(t["departed"]), day, t["last_seen"])
        return t.set_column(i, target.field(i), last)

    def parts() -> Iterator[pa.Table]:
        few = [] if top is None else [_cast(top, target)]
        few = [t.filter(pa.array(~_presence_owned(t, keys))) for t in few]
        rest = pa.concat_tables([target.empty_table(), *few, _cast(updated, target)])
        rest = rest.take(pc.sort_indices(rest, sort_keys=ORDER))
        last = None  # the previous batch's last row
        for t in _decoded(path, rows=WRITE_ROWS):
            t = _cast(t, target)
            t = t.filter(pa.array(~(_presence_owned(t, old_keys) | _presence_owned(t, keys))))
            n = t.num_rows
            if not n:
                continue
            if last is not None:  # in order across batches (ties keep the file's order)
                pair = pa.concat_tables([last, t.slice(0, 1)])
                if pc.sort_indices(pair, sort_keys=ORDER).to_pylist() != [0, 1]:
                    raise UnsortedHistoryError(path)
            last = t.slice(n - 1, 1)
            # the few rows that may come before this batch's last row: those of a pseudonym
            # up to its own (the history is in pseudonym order first)
            top_id = last["pseudonym"][0]
            if top_id.is_valid:
                k = pc.sum(pc.less_equal(rest["pseudonym"], top_id).fill_null(False)).as_py()
            else:
                k = rest.num_rows
            # one stable sort merges them (after the base's rows equal to theirs, as the
            # whole sort puts them) and checks the batch is in order
            chunk = pa.concat_tables([t, rest.slice(0, k or 0)])
            order = pc.sort_indices(chunk, sort_keys=ORDER).to_numpy()
            if not np.array_equal(order[order < n], np.arange(n)):
                raise UnsortedHistoryError(path)
            end = int(np.flatnonzero(order == n - 1)[0]) + 1
            rest = pa.concat_tables([chunk.take(order[end:]), rest.slice(k or 0)])
            yield seen(chunk.take(order[:end]))
        if rest.num_rows:
            yield seen(rest)

    def whole() -> pa.Table:
        return _presence(state.whole_presence(), keys, updated, date)

    return Batches(target, parts, whole)
