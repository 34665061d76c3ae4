"""A state held lean: the columns a reader names, as Arrow tables whose strings are dictionary
arrays, and the rows of some ids cut out as pandas frames when they are needed.

A process that keeps the state open (the roster explorer) does not need the whole state
decoded as pandas: repeated ids, labels and codes cost a few bytes a row as dictionary codes,
where pandas strings cost their length and offsets, twice while frames are derived. A cut
(:meth:`StateTables.frame`, :meth:`StateTables.snapshot`) reads back exactly what
:meth:`ent_audit.store.Store.latest` gives for those rows: same columns, same dtypes, same
order, so the functions written for a snapshot run unchanged on a school's part of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit.aaf.frames import arrow_strings
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot

Cut = tuple[str, Iterable] | None
"""Which rows of a frame: (column, ids) keeps the rows whose ``column`` is one of ``ids`` (a
missing value only when ``ids`` holds one, as :func:`ent_audit.aaf.frames.isin`); ``None``
keeps every row."""


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _lean(table: pa.Table) -> pa.Table:
    """String columns as dictionary arrays of (32-bit offset) strings, one dictionary and
    one chunk per column."""
    columns = []
    for c in table.columns:
        if _is_text(c.type):
            c = pc.dictionary_encode(c)
        if pa.types.is_dictionary(c.type) and pa.types.is_large_string(c.type.value_type):
            c = c.cast(pa.dictionary(c.type.index_type, pa.string()))
        columns.append(c)
    lean = pa.Table.from_arrays(columns, names=table.column_names)
    lean = lean.unify_dictionaries().combine_chunks()
    return pa.Table.from_arrays(
        [_narrow(c) for c in lean.columns], names=lean.column_names
    ).combine_chunks()


def _narrow(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary column's codes in the narrowest integers that hold its dictionary and
    one more (:meth:`StateTables.rows` codes a missing value so): labels, levels and codes
    take a byte a row, structures two, instead of four (an académie's guardian links'
    three labels: 11 -> 3 MB)."""
    if not pa.types.is_dictionary(column.type):
        return column
    size = max((len(c.dictionary) for c in column.chunks), default=0)
    for width in (pa.int8(), pa.int16()):
        if size < np.iinfo(width.to_pandas_dtype()).max:
            if width.bit_width < column.type.index_type.bit_width:
                return column.cast(pa.dictionary(width, column.type.value_type))
            break
    return column


@dataclass(frozen=True)
class StateTables:
    """Frames of one state, lean (see the module): ``tables`` as held, ``schemas`` as
    :meth:`ent_audit.store.Store.latest` reads them (string columns plain, pandas metadata)."""

    info: ExtractionInfo
    tables: Mapping[str, pa.Table]
    schemas: Mapping[str, pa.Schema]
    links: tuple[str, ...]
    """Which of the frames are link tables (:attr:`Snapshot.links`)."""
    _empty: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def read(
        cls,
        info: ExtractionInfo,
        tables: Mapping[str, pa.Table],
        links: Iterable[str],
        schemas: Mapping[str, pa.Schema],
    ) -> StateTables:
        """From tables as read (string columns plain or already dictionary arrays) and the
        schemas they have when read plain."""
        lean = {name: _lean(t) for name, t in tables.items()}
        plain = {name: schemas[name] for name in tables}
        return cls(info, lean, plain, tuple(n for n in links if n in tables))

    @classmethod
    def of(cls, snapshot: Snapshot, columns: Mapping[str, Iterable[str] | None]) -> StateTables:
        """The ``columns`` named per frame of a snapshot already in memory, made lean."""
        frames = snapshot.frames()
        tables = {}
        for name, cols in columns.items():
            df = frames[name] if cols is None else frames[name][list(cols)]
            tables[name] = pa.Table.from_pandas(df, preserve_index=False)
        schemas = {name: t.schema for name, t in tables.items()}
        return cls.read(snapshot.extraction, tables, snapshot.links, schemas)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tables.values())

    def counts(self) -> dict[str, int]:
        """Rows per frame held."""
        return {name: t.num_rows for name, t in self.tables.items()}

    def rows(self, name: str, cut: Cut = None) -> np.ndarray:
        """Positions of frame ``name``'s rows ``cut`` keeps, in the frame's order."""
        table = self.tables[name]
        if cut is None:
            return np.arange(table.num_rows)
        column, ids = cut
        values = arrow_strings(ids if not isinstance(ids, np.ndarray) else list(ids))
        data = table[column].combine_chunks() if table.num_rows else None
        if data is None:
            return np.zeros(0, dtype=np.int64)
        if not pa.types.is_dictionary(data.type):
            hit = pc.is_in(arrow_strings(data), value_set=values).fill_null(False)
            return np.flatnonzero(hit.to_numpy(zero_copy_only=False))
        known = pc.is_in(data.dictionary, value_set=values.cast(data.dictionary.type))
        known = known.fill_null(False).to_numpy(zero_copy_only=False)
        known = np.append(known, values.null_count > 0)  # the last slot: a missing value
        codes = data.indices.fill_null(len(known) - 1).to_numpy(zero_copy_only=False)
        return np.flatnonzero(known[codes])

    def frame(self, name: str, cut: Cut = None) -> pd.DataFrame:
        """Frame ``name``'s rows ``cut`` keeps, as :meth:`Store.latest` reads them."""
        return self.take(name, self.rows(name, cut))

    def take(self, name: str, positions: np.ndarray) -> pd.DataFrame:
        """Frame ``name``'s rows at ``positions``, as :meth:`Store.latest` reads them."""
        table = self.tables[name].take(pa.array(positions, type=pa.int64()))
        schema = self.schemas[name]
        columns = [
            c if c.type == f.type else c.cast(f.type)
            for c, f in zip(table.columns, schema, strict=True)
        ]
        return pa.Table.from_arrays(columns, schema=schema).to_pandas()

    def snapshot(self, cuts: Mapping[str, Cut]) -> Snapshot:
        """A snapshot of the frames ``cuts`` names, each cut; every other frame held is
        empty (its columns, no row); extras, issues, skipped and files are empty."""
        frames = {name: self.frame(name, cut) for name, cut in cuts.items()}
        for name in self.tables:
            if name not in frames:
                frames[name] = self._none(name)
        links = {name: frames.pop(name) for name in self.links}
        entities = {k: frames.pop(k, pd.DataFrame()) for k in _ENTITIES}
        none = pd.DataFrame()
        return Snapshot(
            extraction=self.info,
            links=links,
            extras=none,
            issues=none,
            skipped=none,
            files=none,
            **entities,
        )

    def _none(self, name: str) -> pd.DataFrame:
        if name not in self._empty:
            self._empty[name] = self.schemas[name].empty_table().to_pandas()
        return self._empty[name]


_ENTITIES = ("structures", "students", "guardians", "staff")
