"""One side of a Complet's comparison, in memory or on disk, read by batches or around records.

A Complet's journal compares the state before it with the state it gives
(:func:`ent_audit.store.journal.complete_changes`). Neither needs to be whole in memory: each
side gives, per kind, a **fingerprint** of each record (a 64-bit hash of the values the diff
compares: :func:`ent_audit.aaf.diff.attribute_values`), computed batch by batch, and then the
side **cut around** the few records whose fingerprints differ (:meth:`Side.cut`, the same
cut as the Delta journal's :func:`ent_audit.store.journal._around`), on which today's diff runs.

Equal values give equal fingerprints; different values give different ones but for a 64-bit
collision. A multi-valued attribute is a set: its values' hashes are summed per record, so a
value repeated makes a record differ that the diff then finds equal (it is compared again,
never missed).

Two kinds of side: :class:`MemorySide` over a :class:`Snapshot` (the parsed Complet) and
:class:`FileSide` over a state folder (the previous state, with its Deltas' overlays; or a
new state's staged files).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ent_audit.aaf import schema
from ent_audit.aaf.diff import joined, text
from ent_audit.aaf.frames import arrow_strings, isin
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot
from ent_audit.exceptions import StoreCorruptError
from ent_audit.store import partial

BATCH_ROWS = 1 << 16
"""Rows converted and hashed at a time."""

_MIX = np.uint64(0x9E3779B97F4A7C15)
_SEPARATOR = "\x1f"
_MISSING = "\x00"

_PEOPLE = (schema.STUDENT, schema.GUARDIAN, schema.STAFF)


@dataclass(frozen=True)
class Fingerprints:
    """A kind's live records on one side, in the frame's order, and their fingerprints."""

    jointures: pa.Array
    hashes: np.ndarray


HASH_ROWS = 1 << 14
"""Strings hashed at a time: pandas hashes Python strings, made here for these rows only."""


def _hash(values: pa.Array) -> np.ndarray:
    """A 64-bit hash (SipHash, pandas') per string, :data:`HASH_ROWS` at a time (each value's
    hash is its own: the same hashes as at once)."""
    out = np.empty(len(values), dtype=np.uint64)
    for start in range(0, len(values), HASH_ROWS):
        part = values.slice(start, HASH_ROWS)
        out[start : start + len(part)] = pd.util.hash_array(
            np.asarray(part.to_numpy(zero_copy_only=False), dtype=object), categorize=False
        )
    return out


def _mixed(h: np.ndarray, salt: int) -> np.ndarray:
    """``h`` scrambled with ``salt`` (a field's place), wrapping."""
    with np.errstate(over="ignore"):
        x = (h ^ np.uint64(salt)) * _MIX
        return x ^ (x >> np.uint64(29))


def _row_hashes(table: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """One hash per row of its ``columns``' text, joined by ``\\x1f``, a missing value
    ``\\x00``: neither can be in an XML 1.0 document, so different rows join differently;
    one string (one hash) per row, not one per value."""
    if not columns:
        return np.zeros(table.num_rows, dtype=np.uint64)
    texts = [text(table[c]) for c in columns]
    joined = pc.binary_join_element_wise(
        *texts, _SEPARATOR, null_handling="replace", null_replacement=_MISSING
    )
    return _hash(joined)


def _joined(table: pa.Table, parts: Sequence[str]) -> pa.Array:
    """A link row's value as the diff joins it (:func:`ent_audit.aaf.diff.joined`)."""
    return joined([text(table[c]) for c in parts])


def _live(table: pa.Table) -> pa.Table:
    if "op" not in table.column_names:
        return table
    keep = pc.fill_null(pc.not_equal(arrow_strings(table["op"]), "delete"), True)
    return table.filter(keep)


class Side:
    """What a Complet's journal reads of one state (see the module)."""

    info: ExtractionInfo

    def columns(self, name: str) -> list[str]:
        """The columns of frame ``name``."""
        raise NotImplementedError

    def batches(self, name: str, columns: Sequence[str]) -> Iterator[pa.Table]:
        """Frame ``name``'s rows, ``columns`` only, a batch at a time, in the frame's order."""
        raise NotImplementedError

    def rows(self, name: str, where: partial.Where | None) -> pd.DataFrame:
        """Frame ``name``'s rows ``where`` names (None: all), in the frame's order."""
        raise NotImplementedError

    def snapshot(self, frames: Mapping[str, pd.DataFrame]) -> Snapshot:
        """A snapshot of this side made of ``frames`` (every frame by name)."""
        raise NotImplementedError

    def names(self) -> list[str]:
        raise NotImplementedError

    def fingerprints(self, kind: schema.Kind, compared: Sequence[str]) -> Fingerprints:
        """Each live record of ``kind`` and the hash of its ``compared`` columns (single and
        multi-valued, as :func:`ent_audit.aaf.diff.attribute_values` names them)."""
        fields = {f.column: f for f in kind.fields}
        single = [c for c in compared if not fields[c].multi]
        ids, parts = [], []
        for batch in self.batches(kind.frame, ["jointure", *single, *self._op(kind.frame)]):
            batch = _live(batch)
            ids.append(arrow_strings(batch["jointure"]))
            parts.append(_row_hashes(batch, single))
        jointures = pa.concat_arrays(ids) if ids else pa.array([], pa.string())
        hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
        for n, column in enumerate(compared):
            f = fields[column]
            if not f.multi:
                continue
            origin = schema.LINK_TABLES[f.link].origin
            cols = [f.owner, *f.parts, *([origin] if origin else [])]
            owners, values = [], []
            for batch in self.batches(f.link, list(dict.fromkeys(cols))):
                if origin is not None:
                    batch = batch.filter(
                        pc.fill_null(pc.equal(arrow_strings(batch[origin]), kind.entity), False)
                    )
                owners.append(arrow_strings(batch[f.owner]))
                values.append(_mixed(_hash(_joined(batch, f.parts)), 1000 + n))
            if not owners:
                continue
            # one lookup per field (a lookup hashes the whole set of records again), over the
            # batches' owners as they are (no copy of a million ids into one array)
            at = pc.index_in(pa.chunked_array(owners, pa.string()), value_set=jointures)
            del owners
            at = at.combine_chunks() if isinstance(at, pa.ChunkedArray) else at
            mine = pc.is_valid(at).to_numpy(zero_copy_only=False)
            where = at.fill_null(0).to_numpy(zero_copy_only=False)  # int32: half the memory
            del at
            np.add.at(hashes, where[mine], np.concatenate(values)[mine])
        return Fingerprints(jointures, hashes)

    def _op(self, name: str) -> list[str]:
        return ["op"] if "op" in self.columns(name) else []

    def cut(self, ids: Mapping[str, pa.Array]) -> Snapshot:
        """This side cut down to the records ``ids`` lists by kind name, a guardian's pupils
        (they place the guardian) and every link row of these people; structures whole; no
        extras, issues, skipped records or files (the diff and the placing do not read them).
        The same values, levels and main schools for these records as the whole state's
        (:func:`ent_audit.store.journal._around`)."""
        from ent_audit.store.journal import _PEOPLE_COLUMNS

        wanted = {k.name: ids.get(k.name, pa.array([], pa.string())) for k in _PEOPLE}
        guardians = wanted[schema.GUARDIAN.name]
        pupils = pa.array([], pa.string())
        if len(guardians):
            sg = self.rows("student_guardian", [("guardian", guardians)])
            pupils = arrow_strings(sg["student"])
        wanted[schema.STUDENT.name] = partial._ids(wanted[schema.STUDENT.name], pupils)
        everyone = partial._ids(*wanted.values())
        frames: dict[str, pd.DataFrame] = {}
        for name in self.names():
            if name in _PEOPLE_COLUMNS:
                frames[name] = self.rows(name, [(c, everyone) for c in _PEOPLE_COLUMNS[name]])
            elif name in {k.frame for k in _PEOPLE}:
                kind = schema.KIND_BY_FRAME[name]
                frames[name] = self.rows(name, [("jointure", wanted[kind.name])])
            elif name == schema.STRUCTURE.frame:
                frames[name] = self.rows(name, None)
            else:
                frames[name] = self.none(name)
        return self.snapshot(frames)

    def none(self, name: str) -> pd.DataFrame:
        """No row of frame ``name``, with its columns and dtypes."""
        raise NotImplementedError


@dataclass
class MemorySide(Side):
    """A side held as a :class:`Snapshot` (a Complet as parsed)."""

    state: Snapshot

    @property
    def info(self) -> ExtractionInfo:  # type: ignore[override]
        return self.state.extraction

    def names(self) -> list[str]:
        return list(self.state.frames())

    def columns(self, name: str) -> list[str]:
        return list(self.state.frames()[name].columns)

    def batches(self, name: str, columns: Sequence[str]) -> Iterator[pa.Table]:
        frame = self.state.frames()[name]
        for start in range(0, len(frame), BATCH_ROWS):
            part = frame.iloc[start : start + BATCH_ROWS][list(columns)]
            yield pa.Table.from_pandas(part, preserve_index=False)

    def rows(self, name: str, where: partial.Where | None) -> pd.DataFrame:
        frame = self.state.frames()[name]
        if where is None:
            return frame
        keep = np.zeros(len(frame), dtype=bool)
        for column, ids in where:
            if len(ids) and len(frame):
                keep |= isin(frame[column], ids)
        return frame[keep]

    def none(self, name: str) -> pd.DataFrame:
        return self.state.frames()[name].iloc[:0]

    def snapshot(self, frames: Mapping[str, pd.DataFrame]) -> Snapshot:
        links = {n: frames[n] for n in self.state.links}
        rest = {n: f for n, f in frames.items() if n not in links}
        return dataclasses.replace(self.state, links=links, **rest)


@dataclass
class FileSide(Side):
    """A side on disk: a state folder (base and Deltas' overlays, :mod:`.partial`) or a new
    state's staged frames (``meta`` then says which frames and links it holds)."""

    folder: Path
    meta: dict

    @property
    def info(self) -> ExtractionInfo:  # type: ignore[override]
        m = self.meta
        return ExtractionInfo(m["perimeter"], m["extraction"], dt.date.fromisoformat(m["date"]))

    def names(self) -> list[str]:
        return list(self.meta.get("frames", []))

    def _path(self, name: str) -> Path:
        return self.folder / partial.FRAMES_DIR / f"{name}.parquet"

    def columns(self, name: str) -> list[str]:
        return pq.read_schema(self._path(name)).names

    def batches(self, name: str, columns: Sequence[str]) -> Iterator[pa.Table]:
        cols = list(columns)
        layered = name in partial.layered(self.meta)
        need = list(dict.fromkeys([*cols, *partial.key_columns(name)])) if layered else cols
        top, keys = None, {}
        if layered:
            top = partial.read_table(self.folder / partial.OVERLAY_DIR / f"{name}.parquet", need)
            keys = partial._keys(
                partial.read_table(self.folder / partial.OVERLAY_DIR / f"{name}.keys.parquet")
            )
        path = self._path(name)
        try:
            # pages read as they are decoded (a stream), not the row group's column chunks
            # whole: an académie's 385,000 guardians are one row group
            pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 16)
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=need, use_threads=False):
                table = pa.Table.from_batches([batch])
                if layered:
                    table = table.filter(pa.array(~partial.owned(table, name, keys)))
                yield table.select(cols)
        except FileNotFoundError:
            raise StoreCorruptError(path, "fichier absent") from None
        except (OSError, pa.ArrowException) as err:
            raise StoreCorruptError(path, f"{type(err).__name__}: {err}") from None
        if top is not None:
            for b in top.select(cols).to_batches(BATCH_ROWS):
                yield pa.Table.from_batches([b])

    def rows(self, name: str, where: partial.Where | None) -> pd.DataFrame:
        state = partial.State(
            self.folder, self.meta, narrow={}, counts={}, overlays=self._overlays(name)
        )
        return state.rows(name, where)

    def _overlays(self, name: str) -> dict:
        if name not in partial.layered(self.meta):
            return {}
        folder = self.folder / partial.OVERLAY_DIR
        rows = partial.read_table(folder / f"{name}.parquet")
        return {name: (rows, partial._keys(partial.read_table(folder / f"{name}.keys.parquet")))}

    def none(self, name: str) -> pd.DataFrame:
        return pq.read_schema(self._path(name)).empty_table().to_pandas()

    def snapshot(self, frames: Mapping[str, pd.DataFrame]) -> Snapshot:
        links = {n: frames[n] for n in self.meta["links"]}
        rest = {n: f for n, f in frames.items() if n not in links}
        return Snapshot(extraction=self.info, links=links, notes=self.meta["notes"], **rest)
