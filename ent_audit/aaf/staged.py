"""An extraction read part by part onto disk: never whole in one process's memory.

A Complet of an académie is ~270 MB of decoded frames for ~60 MB of Parquet: holding it whole
(as :class:`~ent_audit.aaf.snapshot.Snapshot` does) can never stay within a few times its
Parquet. Here each reader worker writes the frames of the part it parsed as Arrow files into a
private folder (:func:`write_part`), with the derived pseudonyms, and sends back only row
counts, the file's description and its issues (:class:`PartSummary`); the entity's guard
columns (jointure, source file, record, line, operation) are read back once the parse is
done, the pseudonyms when they are used. A
:class:`StagedExtraction` then writes each whole frame by streaming its parts one batch of rows
at a time (:meth:`StagedExtraction.write_frame`), with the schema, dtypes, row order and
pandas metadata that concatenating the parts in memory and writing them would give.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ent_audit import memory
from ent_audit.aaf import schema
from ent_audit.aaf.frames import (
    EXTRA_COLUMNS,
    MODIFICATION_COLUMNS,
    OP_DTYPE,
    SKIPPED_COLUMNS,
    STRING,
    arrow_strings,
    build,
    concat,
    finish,
    read_frames,
)
from ent_audit.aaf.reader import RawPart
from ent_audit.aaf.snapshot import (
    ExtractionInfo,
    Snapshot,
    all_issues,
    files_frame,
    gather_parts,
    gathered,
    worker_pool,
)

GUARD_COLUMNS = ("jointure", "source_file", "record", "line", "op")
"""The entity columns read back for the staged view: what the ingestion's guards read (a repeated
jointure names its file and line; a Complet's non-add operations are issues)."""

DERIVED = "derived.arrow"
"""A part's derived column (the pseudonyms of its jointures), beside its frames' files."""

PART_SUFFIX = ".arrow"
"""A part's frame file: Arrow IPC (:func:`_write`)."""

STREAMED = "streamed"
"""The frames written part by part (entities, link tables, extras); the others (issues,
skipped, files) are small and held in memory."""

ROW_GROUP_ROWS = 1 << 17
"""Rows gathered from the parts before a row group is written: bounded memory (a few tens of
MB for the widest frame), row groups large enough that readers do not notice them."""


@dataclass(frozen=True)
class PartSummary:
    """What a worker sends back of a part it wrote to disk (:func:`write_part`)."""

    kind: str
    folder: str
    """The part's own folder of Arrow IPC files, one per streamed frame."""
    info: dict
    rows: dict[str, int]
    """Rows per streamed frame (entity frame, link tables, extras)."""
    heads: dict[str, pd.DataFrame]
    """The first row of each streamed frame (none when empty): the whole frame's dtypes are
    those of the concatenated heads."""
    guard: pd.DataFrame | None
    """The entity frame's :data:`GUARD_COLUMNS`; None: read from the part's entity file
    (:meth:`guard_frame`)."""
    issues: pd.DataFrame
    skipped: pd.DataFrame
    modifications: pd.DataFrame
    derived_dtype: object = None
    """The dtype of the derived column written in the part's folder (:meth:`derived_series`);
    None: no derived column."""

    def guard_frame(self) -> pd.DataFrame:
        """:attr:`guard`, or the same frame read back from the part's entity file: the main
        process holds no part's rows while the parse runs (the helper's memory beside it),
        only once its helpers are gone (:func:`_assemble`)."""
        return self.guard if self.guard is not None else _guards([self])

    def derived_series(self) -> pd.Series | None:
        """The part's derived column, read back from its folder (None: none was derived)."""
        if self.derived_dtype is None:
            return None
        column = _read(Path(self.folder) / DERIVED).column("derived")
        return pd.Series(pd.array(arrow_strings(column), dtype=self.derived_dtype))


def write_part(
    path: Path,
    kind: str,
    folder: Path,
    *,
    recover: bool = False,
    derive: Callable[[str, pd.Series], pd.Series] | None = None,
) -> PartSummary:
    """Read one part (:func:`~ent_audit.aaf.frames.read_frames`) and write its frames into
    ``folder/<file name>/`` (0700; files 0600, not fsynced: a staging that dies is swept):
    the unit of work of :func:`load_staged`."""
    memory.lean_allocators()  # a helper worker's own allocators (idempotent)
    part = read_frames(path, kind, recover=recover, derive=derive)
    here = Path(folder) / Path(path).name
    shutil.rmtree(here, ignore_errors=True)  # a worker that died on this part
    os.mkdir(here, 0o700)
    frames = {schema.KINDS[kind].frame: part.entity, **part.links, "extras": part.extras}
    for name, df in frames.items():
        table = pa.Table.from_pandas(df, preserve_index=False)
        _write(table, here / f"{name}{PART_SUFFIX}")
    summary = PartSummary(
        kind=kind,
        folder=str(here),
        info=part.info,
        rows={name: len(df) for name, df in frames.items()},
        heads={name: _head(df) for name, df in frames.items()},
        guard=None,
        issues=part.issues,
        skipped=part.skipped,
        modifications=part.modifications,
        derived_dtype=None if part.derived is None else part.derived.dtype,
    )
    if part.derived is not None:
        _write(pa.table({"derived": arrow_strings(part.derived)}), here / DERIVED)
    del part, frames, table
    memory.trim_heap()
    return summary


def _write(table: pa.Table, path: Path) -> None:
    """``table`` as an uncompressed Arrow IPC file, created 0600 (never over another): a
    part's frames are read back once, whole, by this machine (:func:`_read`), where Parquet's
    encoding cost more than the bytes it saved (an académie's frames written back from their
    parts: 4.4 s of CPU from Parquet, 2.6 s from Arrow files)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh, pa.ipc.new_file(fh, table.schema) as writer:
        writer.write_table(table)


def _read(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A part's file written by :func:`_write` (or some of its columns: only theirs are
    read; an académie's guards, four columns of 121 entity parts: 0.49 → 0.32 s), in memory
    of its own (not a map of the file, which its pages would then be counted in)."""
    with pa.OSFile(str(path)) as fh:
        if columns is None:
            return pa.ipc.open_file(fh).read_all()
        names = pa.ipc.open_file(fh).schema.names
        fh.seek(0)
        wanted = pa.ipc.IpcReadOptions(included_fields=[names.index(c) for c in columns])
        table = pa.ipc.open_file(fh, options=wanted).read_all()
    return table.select(columns)


def _head(df: pd.DataFrame) -> pd.DataFrame:
    """The first row (if any) of ``df``, on buffers of its own: ``df.head(1)`` is a view
    that keeps the whole part's buffers alive (Arrow slices, numpy views), for as long as
    the summary lives in the process that parsed it (the main process's share)."""
    return df.take(np.arange(min(len(df), 1)))


class Derived(Mapping[str, pd.DataFrame]):
    """Per kind, (jointure, derived) in the order of the kind's frame, read from its parts'
    folders each time it is asked for: an académie's 665,000 pseudonyms (27 MB) are not held
    through the guards and the staging, only by the step that uses them, one kind at a time.
    :meth:`clear` says they are used no more."""

    def __init__(self, parts: dict[str, list[PartSummary]], jointures: dict[str, pd.Series]):
        self._parts, self._jointures = parts, jointures

    def __getitem__(self, kind: str) -> pd.DataFrame:
        parts = self._parts[kind]
        return pd.DataFrame(
            {
                "jointure": self._jointures[kind].array,  # Arrow strings, no Python str each
                "derived": pd.concat(
                    [d for d in (p.derived_series() for p in parts) if d is not None],
                    ignore_index=True,
                ),
            }
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def clear(self) -> None:
        self._parts, self._jointures = {}, {}


@dataclass
class StagedExtraction:
    """An extraction whose frames are on disk, part by part, in a private folder.

    ``view`` is a :class:`Snapshot` as :meth:`Store.latest(columns=…)
    <ent_audit.store.store.Store.latest>` would give it: the entity frames with
    :data:`GUARD_COLUMNS` only, the link tables and extras with no column (their row count),
    issues, skipped, files and modifications whole. ``derived``: per kind, (jointure, derived)
    in the order of the kind's frame (see :func:`load_staged`)."""

    folder: Path
    view: Snapshot
    parts: dict[str, list[PartSummary]]
    """Per streamed frame, the parts holding its rows, in the order of the whole frame."""
    templates: dict[str, pd.DataFrame]
    """Per streamed frame, a frame of a few rows with the whole frame's dtypes."""
    derived: Derived

    def streamed(self) -> list[str]:
        """The frames written from the parts, biggest first."""
        rows = {n: sum(p.rows[n] for p in parts) for n, parts in self.parts.items()}
        return sorted(rows, key=lambda n: -rows[n])

    def schema(self, name: str) -> pa.Schema:
        """The Arrow schema (pandas metadata included) of the whole frame ``name``."""
        return pa.Schema.from_pandas(self.templates[name], preserve_index=False)

    def write_frame(self, name: str, sink: str | Path | IO[bytes]) -> int:
        """Write frame ``name`` as Parquet into ``sink`` from its parts, one row group of
        about :data:`ROW_GROUP_ROWS` rows at a time; the rows written."""
        target = self.schema(name)
        dictionaries = {
            f.name: pa.Table.from_pandas(self.templates[name][[f.name]], preserve_index=False)
            .column(0)
            .combine_chunks()
            .dictionary
            for f in target
            if pa.types.is_dictionary(f.type)
        }
        written = 0
        with pq.ParquetWriter(sink, target) as writer:
            pending: list[pa.Table] = []

            def flush() -> None:
                if pending:
                    batch = pa.concat_tables(pending)
                    writer.write_table(batch, row_group_size=max(batch.num_rows, 1))
                    pending.clear()

            for part in self.parts[name]:
                if not part.rows[name]:
                    continue
                table = _read(Path(part.folder) / f"{name}{PART_SUFFIX}")
                pending.append(_conform(table, target, dictionaries))
                written += table.num_rows
                if sum(t.num_rows for t in pending) >= ROW_GROUP_ROWS:
                    flush()
            flush()
            if not written:  # one empty row group, as a whole empty frame is written
                writer.write_table(target.empty_table())
        return written


def _conform(table: pa.Table, target: pa.Schema, dictionaries: dict[str, pa.Array]) -> pa.Table:
    """A part's table in the whole frame's schema: categorical columns re-indexed into the
    whole frame's categories (one dictionary for the file, as a whole frame writes it)."""
    arrays = []
    for f in target:
        col = table.column(f.name).combine_chunks()
        if f.name in dictionaries:
            whole = dictionaries[f.name]
            if pa.types.is_dictionary(col.type):  # each of the part's values looked up once
                at = pc.index_in(col.dictionary.cast(pa.string()), value_set=whole)
                at = pc.take(at, col.indices)
            else:
                at = pc.index_in(col.cast(pa.string()), value_set=whole)
            col = pa.DictionaryArray.from_arrays(at.cast(f.type.index_type), whole)
        elif col.type != f.type:
            col = col.cast(f.type)
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=target)


def load_staged(
    paths: Iterable[Path],
    folder: Path,
    derive: Callable[[str, pd.Series], pd.Series] | None = None,
    *,
    parallel: bool = True,
    recover: bool = False,
    workers: int | None = None,
) -> StagedExtraction:
    """Read the XML parts of one extraction as they arrive, each part's frames written into
    ``folder`` (private, the caller's: it removes it) by the worker that parsed it.

    The same errors, in the same order of precedence, as
    :func:`~ent_audit.aaf.snapshot.load_stream_derived`; ``parallel=False`` reads every part
    in this process (a small extraction: starting workers would cost more than it saves).

    ``workers``: the processes that parse, this one included (default: one per core). This
    process parses its share between two extracted parts (``gather_parts(share=True)``)
    beside ``workers - 1`` helpers forked from it (:func:`~ent_audit.aaf.snapshot.worker_pool`
    with ``preload=None``): on two cores, two processes, instead of two workers and a
    forkserver each holding pandas beside the main process (~120 MB resident apiece)."""
    workers = workers or os.cpu_count() or 1
    helpers = workers - 1 if parallel else 0
    write = functools.partial(write_part, folder=folder, recover=recover, derive=derive)
    with contextlib.ExitStack() as stack:
        pool = None
        if helpers:
            pool = stack.enter_context(worker_pool(helpers, preload=None))
        info, notes, tasks, results = gather_parts(
            paths, pool, write, recover, share=True, helpers=helpers
        )
    return _assemble(folder, info, tasks, results, notes)


def _empty_part(kind: str) -> PartSummary:
    """An absent kind: no rows, the dtypes of an empty part (as the in-memory load gives)."""
    part = build(RawPart("", "UTF-8", False, {}), schema.KINDS[kind], "")
    frames = {schema.KINDS[kind].frame: part.entity, **part.links, "extras": part.extras}
    return PartSummary(
        kind=kind,
        folder="",
        info=part.info,
        rows=dict.fromkeys(frames, 0),
        heads={n: df.head(0) for n, df in frames.items()},
        guard=part.entity[list(GUARD_COLUMNS)],
        issues=part.issues,
        skipped=part.skipped,
        modifications=part.modifications,
    )


def _assemble(
    folder: Path,
    info: ExtractionInfo,
    tasks: list[tuple[str, Path, int]],
    results: list[PartSummary],
    notes: list[str],
) -> StagedExtraction:
    """:func:`ent_audit.aaf.snapshot._assemble`'s frames, in the same orders: entities and
    link tables kind by kind (schema order), then part by part; extras part by part."""
    by_kind: dict[str, list[PartSummary]] = {k: [] for k in schema.KINDS}
    for (kind, _, _), res in zip(tasks, results, strict=True):
        by_kind[kind].append(res)
    for kind, parts in by_kind.items():
        if not parts:
            parts.append(_empty_part(kind))
    order: dict[str, list[PartSummary]] = {}
    for parts in by_kind.values():
        for p in parts:
            for name in p.rows:
                if name != "extras":
                    order.setdefault(name, []).append(p)
    order["extras"] = list(results) or [_empty_part(next(iter(schema.KINDS)))]

    templates = {}
    for name, parts in order.items():
        heads = [p.heads[name] for p in parts]
        if name == "extras":
            kept = [h for h in heads if len(h)]
            templates[name] = finish(pd.concat(kept, ignore_index=True) if kept else None,
                                     EXTRA_COLUMNS)  # fmt: skip
        else:
            templates[name] = _template(heads)

    entities = {schema.KINDS[k].frame: _guards(parts) for k, parts in by_kind.items()}

    rows = {name: sum(p.rows[name] for p in parts) for name, parts in order.items()}
    links = {name: _counted(rows[name]) for name in schema.LINK_TABLES}
    view = Snapshot(
        extraction=info,
        links=links,
        extras=_counted(rows["extras"]),
        issues=all_issues(info, results, entities),
        skipped=gathered(results, "skipped", SKIPPED_COLUMNS),
        modifications=gathered(results, "modifications", MODIFICATION_COLUMNS),
        files=files_frame(tasks, [r.info for r in results]),
        notes=notes,
        **entities,
    )
    derived = {
        kind: parts
        for kind, parts in by_kind.items()
        if (given := sum(p.derived_dtype is not None for p in parts))
        and given == sum(bool(p.folder) for p in parts)
    }
    jointures = {kind: entities[schema.KINDS[kind].frame]["jointure"] for kind in derived}
    return StagedExtraction(Path(folder), view, order, templates, Derived(derived, jointures))


def _template(heads: list[pd.DataFrame]) -> pd.DataFrame:
    """A frame with ``concat(heads)``'s dtypes, for heads that differ only by their
    categories (the parts of one frame, built from its schema: ``source_file`` names each
    part's file): the first kept head, each categorical column given the union of the heads'
    categories in order of appearance, as ``concat`` gives it without a pandas frame per
    head and column (an académie's 121 parts). Other heads: ``concat``."""
    kept = [h for h in heads if len(h)] or heads[:1]
    first = kept[0]
    columns = list(first.columns)
    if any(list(h.columns) != columns for h in kept):
        return concat(heads)
    dtypes = [h.dtypes.tolist() for h in kept]
    united = {}
    for i, col in enumerate(columns):
        these = [d[i] for d in dtypes]
        if not isinstance(these[0], pd.CategoricalDtype):
            if any(d != these[0] for d in these):
                return concat(heads)
            continue
        if not all(isinstance(d, pd.CategoricalDtype) for d in these):
            return concat(heads)
        if all(d == these[0] for d in these):
            if not len(these[0].categories):
                return concat(heads)  # concat unites the empty heads' categories then
            continue
        seen = dict.fromkeys(c for d in these for c in d.categories)
        united[col] = OP_DTYPE if col == "op" else pd.CategoricalDtype(list(seen), these[0].ordered)
    out = first.head(1)
    return out.assign(**{c: out[c].cat.set_categories(d.categories) for c, d in united.items()})


def _guards(parts: list[PartSummary]) -> pd.DataFrame:
    """``concat([p.guard_frame() for p in parts])``, read from the parts' entity files as one
    Arrow table and converted once, not a pandas frame per part whose categories are then
    united (with :func:`_template`: an académie's view assembled in 0.5 s instead of 1.7)."""
    if any(p.guard is not None for p in parts):  # a kind absent: its empty guard in memory
        return concat([p.guard_frame() for p in parts])
    columns = ["jointure", "record", "line", "op"]
    table = pa.concat_tables(
        _read(Path(p.folder) / f"{schema.KINDS[p.kind].frame}{PART_SUFFIX}", columns) for p in parts
    )
    rows = [p.rows[schema.KINDS[p.kind].frame] for p in parts]
    kept = [p for p, n in zip(parts, rows, strict=True) if n] or parts[:1]  # as concat keeps
    code = {f: i for i, f in enumerate(dict.fromkeys(p.info["source_file"] for p in kept))}
    of_part = [code[p.info["source_file"]] if n else 0 for p, n in zip(parts, rows, strict=True)]
    op = pc.index_in(arrow_strings(table.column("op")), value_set=_OPS)
    return pd.DataFrame(
        {
            "jointure": pd.array(arrow_strings(table.column("jointure")), dtype=STRING),
            "source_file": pd.Categorical.from_codes(
                np.repeat(of_part, rows), categories=list(code)
            ),
            "record": table.column("record").to_numpy().astype(np.int32),
            "line": table.column("line").to_numpy().astype(np.int32),
            "op": pd.Categorical.from_codes(
                op.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int8), dtype=OP_DTYPE
            ),
        }
    )


_OPS = pa.array(list(OP_DTYPE.categories), pa.string())


def _counted(rows: int) -> pd.DataFrame:
    """A frame of ``rows`` rows and no column: a frame kept on disk, its size only."""
    return pd.DataFrame(index=pd.RangeIndex(rows))
