"""The on-disk store: the latest state of the perimeter, its pseudonymous history, nothing else.

Layout of ``STORE/`` (folders 0700, files 0600)::

    CURRENT            name of the live state folder, replaced atomically
    states/<id>/       the live state: snapshot/<frame>.parquet + meta.json,
                       presence.parquet (pseudonymous history), extractions.json,
                       journal/NNNNNN.parquet (pseudonymous change journal, one part
                       per ingestion that changed something: linked from state to state),
                       files.json (SHA-256 of every other file of the state, written last)
    key                HMAC key of the pseudonyms (unless ENT_AUDIT_KEY is set)
    lock, read.lock    ingestion mutex; readers' shared lock
    tmp/               private extraction and staging, emptied by every command that opens
                       the store for writing
    logs/              one JSON log per ingestion run (pseudonyms only)

An ingestion builds a whole new state folder in ``tmp/``, fsyncs it, moves it under
``states/`` and then replaces ``CURRENT``: a process killed at any point leaves the previous
state live and intact. The previous state folder (personal data in clear) is then deleted: only
the latest snapshot keeps personal data. The ingest pipeline and its guards are
:mod:`ent_audit.store.ingest`; :meth:`Store.verify` checks a state against its own records.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ent_audit import memory
from ent_audit.aaf import schema
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot
from ent_audit.exceptions import (
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    UnsortedHistoryError,
)
from ent_audit.io import fsync_dir, open_private, private_dir, sha256, write_json
from ent_audit.store import ingest, journal, partial, presence, pseudonym
from ent_audit.store.ingest import Guards, IngestResult
from ent_audit.store.partial import FRAMES_DIR, OVERLAY_DIR
from ent_audit.store.tables import StateTables

FILES_LIST = "files.json"
"""The state's own list of its files and their SHA-256, written last (see :meth:`verify`)."""

__all__ = [
    "Columns",
    "IngestResult",
    "StateReader",
    "Store",
    "StoreError",
    "StoreLockedError",
    "Verification",
    "columns",
]

Columns = Mapping[str, Sequence[str] | None]
"""Which Parquet columns a reader needs, per frame name (``None``: every column)."""


def columns(*needs: Columns) -> dict[str, tuple[str, ...] | None]:
    """The union of several readers' needs (``None`` for a frame wins: every column), e.g.
    ``columns(population.NEEDS, {"students": ("level", "cycle")})``."""
    out: dict[str, tuple[str, ...] | None] = {}
    for need in needs:
        for frame, cols in need.items():
            if cols is None or (frame in out and out[frame] is None):
                out[frame] = None
            else:
                out[frame] = tuple(dict.fromkeys([*(out.get(frame) or ()), *cols]))
    return out


@dataclass(frozen=True)
class Verification:
    """What :meth:`Store.verify` found: nothing (``ok``) or one line per problem."""

    state: str | None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"state": self.state, "ok": self.ok, "problems": list(self.problems)}


@dataclass(frozen=True)
class StateReader:
    """One state folder, read piece by piece (:meth:`Store.reading`): a reader holds the
    columns it works on, not the whole state."""

    state: Path
    meta: dict

    def frame(self, name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Frame ``name`` as :meth:`Store.latest` reads it, ``columns`` only."""
        return partial.read_frame(self.state, self.meta, name, columns).to_pandas()

    def table(
        self, name: str, columns: Sequence[str] | None = None, *, dictionary: bool = True
    ) -> pa.Table:
        """Frame ``name``'s ``columns`` as Arrow; with ``dictionary`` its string columns as
        dictionary arrays (one string per distinct value: repeated values held once)."""
        return partial.read_frame(self.state, self.meta, name, columns, dictionary=dictionary)

    def snapshot(
        self, columns: Columns | None = None, *, dictionary: Iterable[str] = ()
    ) -> Snapshot:
        """The state as :meth:`Store.latest` reads it, ``columns`` only (see :func:`columns`);
        the frames named in ``dictionary`` with their string columns as Arrow dictionaries."""
        return Store.read_snapshot(self.state, columns, dictionary=dictionary)


class Store:
    """One perimeter's store. ``Store(path)`` creates it (0700) when absent, unless
    ``create=False`` (readers: a mistyped path is an error, not a new empty store)."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path}: n'est pas un dossier (chemin du store)")
        if not create and not (self.path / "states").is_dir():
            raise StoreError(f"{self.path}: pas de store ici (créé par ent-audit ingest … --store)")
        if create:
            if self.path.is_dir() and (
                not self.path.stat().st_mode & stat.S_IWUSR
                or not os.access(self.path, os.W_OK | os.X_OK)
            ):
                # Never loosen the modes someone set: a read-only store stays read-only.
                raise StoreError(f"{self.path}: store en lecture seule (droits): rien n'est écrit")
            for sub in ("", "states", "tmp", "logs"):
                if not (self.path / sub).is_dir():
                    private_dir(self.path / sub)
            with open_private(self.path / "read.lock", "ab"):
                pass
        if (self.path / "tmp").is_dir():
            self._sweep()

    @functools.cached_property
    def key(self) -> bytes:
        """The pseudonyms' key, read (or created) on first use: a reader that needs no
        pseudonym never touches it."""
        key_file = self.path / "key"
        try:
            return pseudonym.load_key(key_file)
        except (ValueError, UnicodeError, IsADirectoryError) as err:
            raise StoreCorruptError(key_file, str(err)) from None

    # -- reading --------------------------------------------------------------------------

    def current(self) -> Path | None:
        """The live state folder, or None before the first ingestion."""
        pointer = self.path / "CURRENT"
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (UnicodeDecodeError, IsADirectoryError) as err:
            raise StoreCorruptError(pointer, str(err)) from None
        state = self.path / "states" / name
        if not name or "/" in name or not (state / "meta.json").is_file():
            raise StoreCorruptError(pointer, f"désigne un état absent ({name!r})")
        return state

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Path | None]:
        lock = self.path / "read.lock"
        if not lock.exists():  # a read-only store opened by a reader: nothing writes it
            yield self.current()
            return
        with open(lock, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            try:
                yield self.current()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def latest(self, columns: Columns | None = None) -> Snapshot:
        """The current state of the perimeter (the last Complet with the Deltas since).

        ``columns``: only these Parquet columns per frame (see :func:`columns`); a frame not
        named is read with no column at all (its row count only), so a stage holds what it
        uses, not the whole state, and a column it forgot to ask for fails loudly
        (``KeyError``) instead of reading as empty. ``None``: the whole state."""
        with self._reading() as state:
            if state is None:
                raise StoreError(f"{self.path}: aucune extraction ingérée")
            return self.read_snapshot(state, columns)

    @contextlib.contextmanager
    def reading(self) -> Iterator[StateReader]:
        """The live state held for a reader that reads it frame by frame, column by column
        (:class:`StateReader`): an ingestion's switch to a new state waits until the block
        ends, so every read sees the same state and its files stay in place."""
        with self._reading() as state:
            if state is None:
                raise StoreError(f"{self.path}: aucune extraction ingérée")
            yield StateReader(state, _read_meta(state))

    def latest_tables(self, columns: Columns) -> StateTables:
        """The current state's frames ``columns`` names (no other frame is read), held lean
        (:mod:`ent_audit.store.tables`): string columns decoded straight from Parquet into
        dictionary arrays, for a process that keeps the state open (the roster explorer)."""
        with self.reading() as r:
            tables, schemas = {}, {}
            for name, cols in columns.items():
                if name not in r.meta.get("frames", []):
                    continue
                tables[name] = partial.read_frame(r.state, r.meta, name, cols, dictionary=True)
                whole = pq.read_schema(r.state / partial.FRAMES_DIR / f"{name}.parquet")
                names = whole.names if cols is None else list(cols)
                schemas[name] = pa.schema([whole.field(c) for c in names], metadata=whole.metadata)
            info = self.read_info(r.state, r.meta)
            lean = StateTables.read(info, tables, r.meta["links"], schemas)
        del tables
        memory.release_unused()
        return lean

    def history(self) -> pd.DataFrame:
        """The ingested extractions, oldest first: name, SHA-256, type, date, counts, when."""
        with self._reading() as state:
            rows = self.read_history(state)
        cols = [
            "archive",
            "sha256",
            "extraction",
            "date",
            "ingested_at",
            "anomalies",
            *[k.frame for k in schema.KINDS.values()],
        ]
        try:
            df = pd.DataFrame(
                [{**{k: r[k] for k in cols[:6]}, **r["counts"]} for r in rows], columns=cols
            )
            df["date"] = pd.to_datetime(df["date"])
            df["ingested_at"] = pd.to_datetime(df["ingested_at"], utc=True)
        except (KeyError, TypeError, ValueError) as err:
            raise StoreCorruptError(state / "extractions.json", repr(err)) from None
        return df

    def journal(self) -> pd.DataFrame:
        """The pseudonymous change journal (see :mod:`ent_audit.store.journal`)."""
        with self._reading() as state:
            return journal.read(state)

    def jointures(self, frames: Sequence[str] | None = None) -> dict[str, pd.Series]:
        """The live state's jointures per entity frame (``frames``: only these), that column
        alone (what a reader that only matches ids needs, without loading the whole
        snapshot)."""
        with self._reading() as state:
            if state is None:
                raise StoreError(f"{self.path}: aucune extraction ingérée")
            return self.read_jointures(state, frames)

    def presence(
        self, columns: Sequence[str] | None = None, *, categorical: Sequence[str] = ()
    ) -> pd.DataFrame:
        """The pseudonymous presence history (see :mod:`ent_audit.store.presence`);
        ``columns``: only these (a reader's own needs), else every column; ``categorical``:
        these string columns as pandas categoricals (``kind``, ``uai``: a few values repeated
        over an académie's 670,000 rows, a fifth of the memory)."""
        with self._reading() as state:
            return self.read_presence(state, columns, categorical)

    # -- reading one state folder (the ingest pipeline's view) ----------------------------

    @staticmethod
    def read_history(state: Path | None) -> list[dict]:
        if state is None:
            return []
        path = state / "extractions.json"
        data = _read_json(path)
        if not isinstance(data, list) or not all(
            isinstance(h, dict) and {"sha256", "extraction", "date", "archive"} <= h.keys()
            for h in data
        ):
            raise StoreCorruptError(path, "liste d'extractions attendue")
        return data

    @staticmethod
    def read_info(state: Path, meta: dict | None = None) -> ExtractionInfo:
        """Which extraction a state holds, from its ``meta.json`` alone (no Parquet read)."""
        meta = _read_meta(state) if meta is None else meta
        try:
            return ExtractionInfo(
                meta["perimeter"],
                meta["extraction"],
                dt.date.fromisoformat(meta["date"]) if meta["date"] else None,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise StoreCorruptError(state / "meta.json", repr(err)) from None

    @staticmethod
    def read_snapshot(
        state: Path, columns: Columns | None = None, *, dictionary: Iterable[str] = ()
    ) -> Snapshot:
        """The snapshot of a state folder; ``columns`` as in :meth:`latest`; the frames named
        in ``dictionary`` with their string columns as Arrow dictionaries (``pd.ArrowDtype``:
        the same values, one string per distinct value; not pandas categoricals, whose
        categories index hashes a Python object per id: +40 MB for 260k pupils' ids)."""
        meta = _read_meta(state)
        coded = set(dictionary)
        frames = {}
        for name in meta.get("frames", []):
            cols = None if columns is None else columns.get(name, ())
            if name in coded:
                table = partial.read_frame(state, meta, name, cols, dictionary=True)
                frames[name] = table.to_pandas(types_mapper=_dictionary_dtype)
            else:
                table = partial.read_frame(state, meta, name, cols)
                frames[name] = table.to_pandas()
            del table
        memory.release_unused()
        try:
            links = {name: frames.pop(name) for name in meta["links"]}
            return Snapshot(
                extraction=Store.read_info(state, meta), links=links, notes=meta["notes"], **frames
            )
        except (KeyError, TypeError) as err:
            raise StoreCorruptError(state / "meta.json", repr(err)) from None

    @staticmethod
    def read_jointures(state: Path, frames: Sequence[str] | None = None) -> dict[str, pd.Series]:
        """The jointures of each entity frame (``frames``: only these), reading that one column
        only."""
        meta = _read_meta(state)
        names = [k.frame for k in schema.KINDS.values() if frames is None or k.frame in frames]
        out = {
            name: partial.read_frame(state, meta, name, ["jointure"]).to_pandas()["jointure"]
            for name in names
        }
        memory.release_unused()
        return out

    @staticmethod
    def presence_synced(state: Path | None) -> bool:
        """Whether the state's presence history has the state's people as its open spells
        (every ingestion leaves it so; a purge's rewrite does not say): a Delta may then
        update the presence of the people it touches only."""
        return state is not None and _read_meta(state).get("presence_synced") is True

    @staticmethod
    def read_meta(state: Path) -> dict:
        """A state folder's ``meta.json``."""
        return _read_meta(state)

    @staticmethod
    def read_presence(
        state: Path | None, columns: Sequence[str] | None = None, categorical: Sequence[str] = ()
    ) -> pd.DataFrame:
        if state is None:
            out = presence.empty()
            out = out if columns is None else out[list(columns)]
            return out.astype(dict.fromkeys(categorical, "category"))
        table = partial.read_presence(state, _read_meta(state), columns)
        for name in categorical:
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, pc.dictionary_encode(table[name]))
        out = table.to_pandas()
        del table
        memory.release_unused()
        return out

    # -- verification ---------------------------------------------------------------------

    def verify(self) -> Verification:
        """Check the live state against itself: ``CURRENT`` names a state, every file's
        SHA-256 equals the state's own list (none missing, none added), every frame has its
        schema's dtypes and every entity's jointures are unique and present."""
        problems: list[str] = []
        try:
            with self._reading() as state:
                if state is None:
                    return Verification(None)
                problems += _verify_files(state)
                if not problems:
                    problems += _verify_frames(self.read_snapshot(state))
        except StoreError as err:
            return Verification(None, (str(err),))
        return Verification(state.name, tuple(problems))

    # -- writing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, wait: float = 0) -> Iterator[None]:
        """The ingestion mutex (``wait`` seconds at most); leftovers are cleaned once held."""
        fh = os.fdopen(os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600), "r+")
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        fh.seek(0)
                        raise StoreLockedError(
                            self.path / "lock", fh.read().strip() or "verrou pris"
                        ) from None
                    time.sleep(0.2)
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} depuis {dt.datetime.now().isoformat(timespec='seconds')}")
            fh.flush()
            self._clean()
            yield
        finally:
            fh.close()  # releases the lock

    def rewrite(
        self,
        presence_rows: pd.DataFrame,
        state: Snapshot | None = None,
        journal_rows: pd.DataFrame | None = None,
    ) -> None:
        """Commit the live state again with new presence rows (and a new ``state``, a new
        journal): the purge's entry point, through the same atomic switch. Call it under
        :meth:`locked`."""
        current = self.current()
        if current is None:
            raise StoreError(f"{self.path}: aucune extraction ingérée")
        state = self.read_snapshot(current) if state is None else state
        changes = journal.read(current) if journal_rows is None else journal_rows
        self.commit(
            state, presence_rows, self.read_history(current), changes, presence_synced=False
        )

    def overlay_written(self) -> dt.date | None:
        """The day the live state's base began to hold rows Deltas replaced (the ingestion of
        its first overlay, :mod:`.partial`): older copies from then until a compaction; None
        when it holds none."""
        with self._reading() as state:
            meta = {} if state is None else _read_meta(state)
        written = meta.get("overlay_written") if meta.get("overlay") else None
        return dt.date.fromisoformat(written) if written else None

    def compact(self) -> bool:
        """Write the live state whole, its overlays merged into a new base: the rows Deltas
        replaced are gone from the disk. Call it under :meth:`locked`; False when there was
        no overlay."""
        current = self.current()
        if current is None or not _read_meta(current).get("overlay"):
            return False
        self.commit(
            self.read_snapshot(current),
            self.read_presence(current),
            self.read_history(current),
            journal.empty(),
            presence_synced=self.presence_synced(current),
            added=True,  # the journal's parts, linked as they are
        )
        return True

    def _sweep(self) -> None:
        """Remove what an interrupted run left (extracted XML, staged Parquet: personal
        data) as soon as any command opens the store, if no ingestion is running."""
        try:
            fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return
        try:
            with contextlib.suppress(StoreError, OSError):
                self._clean()
        finally:
            os.close(fd)

    def _clean(self) -> None:
        """Remove leftovers of an interrupted run: staging, extractions, dead states."""
        for p in (self.path / "tmp").iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
        live = self.current()
        for p in (self.path / "states").iterdir():
            if live is None or p.name != live.name:
                shutil.rmtree(p, ignore_errors=True)

    def ingest(
        self,
        archives: Iterable[Path | str],
        *,
        strict: bool = False,
        wait: float = 0,
        max_gap_days: int | None = None,
        max_delete_share: float | None = None,
        max_delete_count: int | None = None,
        accept_mass_change: bool = False,
        overlay_days: int | None = None,
        progress: bool | None = None,
    ) -> list[IngestResult]:
        """Ingest archives in date order (a Complet before a Delta of the same day).

        Each archive is one transaction, through the guards of :mod:`ent_audit.store.ingest`
        (these keyword arguments are the command's options). The run is logged in ``logs/``
        with pseudonyms only.
        """
        given = dict(
            strict=strict,
            max_gap_days=max_gap_days,
            max_delete_share=max_delete_share,
            max_delete_count=max_delete_count,
            accept_mass_change=accept_mass_change,
            overlay_days=overlay_days,
        )
        guards = Guards(**{k: v for k, v in given.items() if v is not None})
        return ingest.ingest(self, archives, guards=guards, wait=wait, progress=progress)

    def stage(
        self,
        state: Snapshot,
        *,
        presence_synced: bool = True,
        reuse: Iterable[str] = (),
        tables: Mapping[str, pa.Table | partial.Batches | Callable[[], pa.Table] | Streamed]
        | None = None,
    ) -> Staging:
        """Start writing ``state``'s frames into a private staging folder, in threads (Parquet
        encoding, SHA-256 and writes release the GIL), while the caller computes the rest
        (presence, journal); :meth:`commit` with ``staged`` finishes the state. A caller that
        does not commit calls :meth:`Staging.discard` (staged personal data never waits).
        ``tables``: frames given as Arrow tables instead of ``state``'s own (a Delta's merge,
        :mod:`ent_audit.store.partial`), or written by a writer of their own (a Complet's
        frames assembled from the parts its reader wrote: :class:`Streamed`)."""
        stage = Path(tempfile.mkdtemp(prefix="stage-", dir=self.path / "tmp"))  # 0700
        try:
            current = self.current() if reuse else None
            known: dict[str, str] = {}
            if current is not None:
                listed = _read_json(current / FILES_LIST)
                overlaid = partial.layered(_read_meta(current))  # the base alone is not the frame
                names = [f"{FRAMES_DIR}/{name}.parquet" for name in reuse if name not in overlaid]
                known = {n: listed[n] for n in names if isinstance(listed, dict) and n in listed}
            linked = {n: current / n for n in known} if current is not None else {}
            return Staging.start(
                state,
                stage,
                presence_synced=presence_synced,
                linked=linked,
                known=known,
                tables=tables,
            )
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise

    def commit(
        self,
        state: Snapshot,
        history_presence: pd.DataFrame | pa.Table | partial.Batches,
        history: list[dict],
        changes: pd.DataFrame,
        *,
        presence_synced: bool = True,
        reuse: Iterable[str] = (),
        staged: Staging | None = None,
        added: bool = False,
    ) -> None:
        """Write the new state (and its change journal) beside the live one, then switch
        ``CURRENT`` atomically. ``presence_synced``: the presence's open spells are the
        state's people (see :meth:`presence_synced`). ``reuse``: frames that are the live
        state's unchanged, hard-linked from its folder instead of written and hashed again
        (their SHA-256 is the live state's own record of them). ``staged``: ``state``'s
        frames already being written by :meth:`stage` (then ``reuse`` and ``presence_synced``
        are the ones given to it). ``added``: ``changes`` are the new rows of the journal,
        added as a part after the live state's (:func:`journal.extend`), not the whole."""
        if staged is None:
            staged = self.stage(state, presence_synced=presence_synced, reuse=reuse)
        stage = staged.path
        try:
            known = staged.finish()
            known.update(self._journal(stage, changes, added))
            known["presence.parquet"] = _write_frame(history_presence, stage / "presence.parquet")
            write_json(stage / "extractions.json", history)
            write_json(stage / FILES_LIST, _file_hashes(stage, known))
        except BaseException:
            staged.discard()  # staged personal data never waits
            raise
        self._publish(stage)

    def commit_delta(
        self,
        state: Snapshot,
        written: partial.Written,
        history: list[dict],
        changes: pd.DataFrame,
    ) -> None:
        """Commit a Delta as an overlay over the live state's base (:mod:`.partial`): the base
        hard-linked, the overlays it changed written, the others linked. ``state``: the Delta's
        slice after it (its extraction, notes and frame names); ``changes``: its journal rows
        (a new part after the live state's)."""
        current = self.current()
        if current is None:
            raise StoreError(f"{self.path}: aucune extraction ingérée")
        old_meta = _read_meta(current)
        old = partial.layered(old_meta)
        listed = _read_json(current / FILES_LIST)
        if not isinstance(listed, dict):
            raise StoreCorruptError(current / FILES_LIST, "objet JSON attendu")
        stage = Path(tempfile.mkdtemp(prefix="stage-", dir=self.path / "tmp"))  # 0700
        known: dict[str, str] = {}
        try:
            private_dir(stage / FRAMES_DIR)
            private_dir(stage / OVERLAY_DIR)

            def link(rel: str) -> None:
                os.link(current / rel, stage / rel)
                known[rel] = listed[rel]

            todo: list[tuple[str, pa.Table]] = []
            rows: dict[str, int] = {}
            for name, w in written.frames.items():
                base = f"{FRAMES_DIR}/{name}.parquet"
                top = f"{OVERLAY_DIR}/{name}.parquet"
                keys = f"{OVERLAY_DIR}/{name}.keys.parquet"
                if isinstance(w, pa.Table):
                    todo.append((base, w))
                    continue
                link(base)
                if w is not None:
                    todo += [(top, w[0]), (keys, w[1])]
                    rows[name] = w[0].num_rows
                elif name in old:
                    link(top)
                    link(keys)
                    rows[name] = old[name]
            link(partial.PRESENCE)
            todo += [(partial.PRESENCE_OVERLAY, written.presence[0])]
            todo += [(partial.PRESENCE_KEYS, written.presence[1])]
            with ThreadPoolExecutor(WRITERS, thread_name_prefix="ent-audit-parquet") as pool:
                futures = {rel: pool.submit(_write_frame, t, stage / rel) for rel, t in todo}
                known.update({rel: f.result() for rel, f in futures.items()})
            fsync_dir(stage / FRAMES_DIR)
            fsync_dir(stage / OVERLAY_DIR)
            write_json(
                stage / "meta.json",
                {
                    **_meta(state, presence_synced=True),
                    "overlay": dict(sorted(rows.items())),
                    "overlay_since": written.overlay_since,
                    "overlay_written": old_meta.get("overlay_written")
                    if old
                    else dt.datetime.now(dt.UTC).date().isoformat(),
                    "presence_overlay": True,
                    "presence_seen": state.extraction.date.isoformat(),
                },
            )
            known.update(self._journal(stage, changes, True))
            write_json(stage / "extractions.json", history)
            write_json(stage / FILES_LIST, _file_hashes(stage, known))
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)  # staged personal data never waits
            raise
        self._publish(stage)

    def _journal(self, stage: Path, changes: pd.DataFrame, added: bool) -> dict[str, str]:
        """Write the journal into ``stage``: ``changes`` whole, or (``added``) as a new part
        after the live state's parts, linked; the SHA-256 of the parts linked."""
        if not added:
            journal.write(stage, changes)
            return {}
        current = self.current()
        listed = _read_json(current / FILES_LIST) if current is not None else {}
        pairs = journal.extend(stage, current, changes)
        if not isinstance(listed, dict):
            raise StoreCorruptError(current / FILES_LIST, "objet JSON attendu")
        return {new: listed[old] for new, old in pairs if old in listed}

    def _publish(self, stage: Path) -> None:
        """Move a whole staged state under ``states/``, then switch ``CURRENT`` to it."""
        try:
            fsync_dir(stage)
            name = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{stage.name[6:]}"
            target = self.path / "states" / name
            os.rename(stage, target)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)  # staged personal data never waits
            raise
        fsync_dir(target.parent)
        pointer = self.path / "tmp" / "CURRENT.new"
        try:
            with open_private(pointer, "w", encoding="utf-8") as fh:
                fh.write(name + "\n")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            pointer.unlink(missing_ok=True)
            raise
        with open(self.path / "read.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # no reader between switch and cleanup
            os.replace(pointer, self.path / "CURRENT")
            fsync_dir(self.path)
            for p in (self.path / "states").iterdir():
                if p.name != name:
                    shutil.rmtree(p)
            fcntl.flock(lock, fcntl.LOCK_UN)

    def log(
        self, started: dt.datetime, results: Sequence[IngestResult], error: dict | None = None
    ) -> Path | None:
        """One JSON log of the run (pseudonyms only); ``error`` when it was cut short."""
        path = self.path / "logs" / f"ingest-{started:%Y%m%dT%H%M%S%f}-{os.getpid()}.json"
        body = {
            "started": started.isoformat(timespec="seconds"),
            "ended": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "results": [r.to_dict(self.key) for r in results],
        }
        if error is not None:
            body["error"] = error
            body["committed"] = [r.archive for r in results if r.status == "ingested"]
        try:
            return write_json(path, body)
        except OSError:
            if error is None:
                raise
            return None  # already failing (disk full…): the error itself is what matters

    # -- ad-hoc SQL (ent_audit.store.sql) -------------------------------------------------

    def duckdb(self, *, population: bool = True):
        """A DuckDB connection with one view per frame of the state and per activity table."""
        from ent_audit.store import sql

        return sql.connect(self, population=population)

    def sql(self, query: str, *, population: bool = True) -> pd.DataFrame:
        """Run one query over the store's views (:meth:`duckdb`) and return its result."""
        with self.duckdb(population=population) as con:
            return con.execute(query).df()


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreCorruptError(path, "fichier absent") from None
    except (UnicodeDecodeError, json.JSONDecodeError, IsADirectoryError) as err:
        raise StoreCorruptError(path, str(err)) from None


def _read_meta(folder: Path) -> dict:
    meta = _read_json(folder / "meta.json")
    if not isinstance(meta, dict):
        raise StoreCorruptError(folder / "meta.json", "objet JSON attendu")
    return meta


def _file_hashes(folder: Path, known: dict[str, str] | None = None) -> dict[str, str]:
    """SHA-256 of every file of a state folder; ``known``: relative path -> hash already
    recorded for a file linked unchanged from the previous state."""
    known = known or {}
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != FILES_LIST:
            name = str(p.relative_to(folder))
            out[name] = known[name] if name in known else sha256(p)
    return out


def _verify_files(state: Path) -> list[str]:
    listed = _read_json(state / FILES_LIST)
    if not isinstance(listed, dict):
        return [f"{state / FILES_LIST}: objet JSON attendu"]
    actual = _file_hashes(state)
    out = [f"{state / n}: absent" for n in sorted(listed.keys() - actual.keys())]
    out += [f"{state / n}: fichier en trop" for n in sorted(actual.keys() - listed.keys())]
    out += [
        f"{state / n}: SHA-256 différent de la liste de l'état"
        for n in sorted(listed.keys() & actual.keys())
        if listed[n] != actual[n]
    ]
    return out


def _reference_dtypes() -> dict[str, pd.Series]:
    """The dtypes of every frame as an empty extraction builds them, after a Parquet trip."""
    import io

    from ent_audit.aaf.snapshot import _assemble

    empty = _assemble(ExtractionInfo("", "complete", None), [], [], [])
    out = {}
    for name, df in empty.frames().items():
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        out[name] = pd.read_parquet(io.BytesIO(buf.getvalue())).dtypes
    return out


def _dictionary_dtype(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    """``to_pandas``' types for a frame read as dictionaries: its dictionary columns kept
    as they are."""
    return pd.ArrowDtype(arrow_type) if pa.types.is_dictionary(arrow_type) else None


def _verify_frames(snap: Snapshot) -> list[str]:
    out = []
    reference = _reference_dtypes()
    for name, df in snap.frames().items():
        want = reference.get(name)
        if want is None or name == "files":  # one row per XML part read: metadata
            continue
        got = df.dtypes
        if list(got.index) != list(want.index) or any(
            str(got[c]) != str(want[c]) for c in want.index
        ):
            out.append(f"{name}: colonnes ou types différents du schéma")
    for kind in schema.KINDS.values():
        j = getattr(snap, kind.frame)["jointure"]
        if j.isna().any() or j.duplicated().any():
            out.append(f"{kind.frame}: jointures manquantes ou en double")
    return out


def _meta(snap: Snapshot, presence_synced: bool) -> dict:
    """A state's ``meta.json``: which extraction, its notes and frames."""
    e = snap.extraction
    return {
        "perimeter": e.perimeter,
        "extraction": e.extraction,
        "date": e.date.isoformat() if e.date else None,
        "notes": snap.notes,
        "frames": sorted(snap.frames()),
        "links": sorted(snap.links),
        "presence_synced": presence_synced,
    }


WRITERS = 2
"""Threads writing a state's frames (the machine's two cores; pyarrow releases the GIL)."""

_MERGING = threading.Lock()
"""A compaction's merged frames are written one at a time (the other writer writes the small
frames meanwhile): each holds its base's read buffers and a row group being built, and two
at once were the peak of an académie's compaction."""


class _Hashing(io.RawIOBase):
    """A file being written, hashed as it is written (a frame streamed in row groups)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.digest, self.size = fh, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        self.fh.write(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size


@dataclass(frozen=True)
class Streamed:
    """A frame written by ``write(sink)`` (a Parquet writer of its own: row group by row
    group, never whole in memory), ``rows`` long."""

    write: Callable[[IO[bytes]], object]
    rows: int


def _write_frame(
    df: pd.DataFrame | pa.Table | partial.Batches | Callable[[], pa.Table] | Streamed,
    target: Path,
) -> str:
    """Write one frame (pandas or Arrow, or a function building it, called here: it lives
    only while written; or its batches, written as they come; or :class:`Streamed`) as
    Parquet (the default settings: snappy, which encodes as fast as no compression here and
    half the size; zstd is 25 % smaller but slower on the largest frames) and return its
    SHA-256, hashed from the bytes written, not re-read."""
    if isinstance(df, Streamed):
        with open_private(target) as fh:  # fsynced on close
            sink = _Hashing(fh)
            df.write(sink)
        return sink.digest.hexdigest()
    if isinstance(df, partial.Batches):
        try:
            with _MERGING:
                return _write_batches(df, target)
        except UnsortedHistoryError:
            if df.whole is None:
                raise
            df = df.whole  # a base out of order: merged whole (written afresh below)
    if callable(df):
        df = df()
    buf = io.BytesIO()
    if isinstance(df, pa.Table):
        pq.write_table(df, buf)
    else:
        df.to_parquet(buf, index=False)
    data = buf.getbuffer()
    with open_private(target) as fh:  # fsynced on close
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


class _Hashed(io.RawIOBase):
    """A file being written, hashed as written (its bytes are not read again)."""

    def __init__(self, fh) -> None:
        self.fh = fh
        self.hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.hash.update(data)
        return self.fh.write(data)


ROW_GROUP_BYTES = 8 << 20
"""Decoded bytes gathered into one row group when a frame is written batch by batch: a
compaction's batches are small (:data:`partial.WRITE_ROWS`), and a row group each would make
the state a quarter bigger on disk (a dictionary and pages per column and row group)."""


def _write_batches(batches: partial.Batches, target: Path) -> str:
    """:func:`_write_frame` of a frame's batches, gathered into row groups of about
    :data:`ROW_GROUP_BYTES` (what is in memory is one row group's rows and its encoded pages,
    not the frame nor its file)."""
    with open_private(target) as fh:  # fsynced on close
        sink = _Hashed(fh)
        with pq.ParquetWriter(sink, batches.schema) as writer:
            group: list[pa.Table] = []
            size = 0
            for table in batches.parts():
                if not table.num_rows:
                    continue
                group.append(table)
                size += table.nbytes
                if size >= ROW_GROUP_BYTES:
                    writer.write_table(pa.concat_tables(group))
                    group, size = [], 0
            if group:
                writer.write_table(pa.concat_tables(group))
            del group
    return sink.hash.hexdigest()


@dataclass
class Staging:
    """A new state's frames being written into ``path`` by a thread pool (:meth:`Store.stage`)."""

    path: Path
    snapshot: Snapshot
    presence_synced: bool
    pool: ThreadPoolExecutor
    futures: dict[str, Future]
    known: dict[str, str]
    hashes: dict[str, str] | None = None

    @classmethod
    def start(
        cls,
        snap: Snapshot,
        folder: Path,
        *,
        presence_synced: bool = False,
        linked: dict[str, Path] | None = None,
        known: dict[str, str] | None = None,
        tables: Mapping[str, pa.Table | partial.Batches | Callable[[], pa.Table] | Streamed]
        | None = None,
    ) -> Staging:
        """``linked``: relative path -> a file of the live state holding that frame
        unchanged, hard-linked (same inode, 0600, already on disk) instead of written;
        ``known``: their SHA-256, from the live state's own list (:meth:`Store.stage`);
        ``tables``: frames to write from these Arrow tables (or functions building them)
        instead (:class:`Streamed`: written by their own writer, row group by row group)."""
        frames = folder / FRAMES_DIR
        private_dir(frames)
        linked = linked or {}
        known = dict(known or {})
        todo = []
        for name, df in snap.frames().items():
            rel = f"{FRAMES_DIR}/{name}.parquet"
            source = linked.get(rel)
            if source is not None:
                os.link(source, frames / f"{name}.parquet")
                continue
            if tables is not None and tables.get(name) is not None:
                df = tables[name]
            # biggest first, so the two threads end together; a frame its writer builds (a
            # compaction's merge) is a whole frame of the state: among the first
            if isinstance(df, Streamed):
                size = float(df.rows)
            else:
                big = callable(df) or isinstance(df, partial.Batches)
                size = float("inf") if big else len(df)
            todo.append((rel, df, size))
        pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="ent-audit-parquet")
        todo.sort(key=lambda t: -t[2])
        futures = {rel: pool.submit(_write_frame, df, folder / rel) for rel, df, _ in todo}
        return cls(folder, snap, presence_synced, pool, futures, known)

    def finish(self) -> dict[str, str]:
        """Wait for the frames, write ``meta.json`` (last: it marks a whole state); the
        SHA-256 of every frame written (relative path -> hex). Called again, the same
        answer (the staged state can be read, :meth:`Store.read_snapshot`, before its commit)."""
        if self.hashes is None:
            try:
                hashes = {rel: f.result() for rel, f in self.futures.items()}
            finally:
                self.pool.shutdown(wait=True, cancel_futures=True)
            memory.trim_heap()  # the writers' freed buffers, before the presence and journal
            fsync_dir(self.path / FRAMES_DIR)
            write_json(self.path / "meta.json", _meta(self.snapshot, self.presence_synced))
            self.hashes = {**self.known, **hashes}
        return dict(self.hashes)

    def discard(self) -> None:
        """Stop and remove what was staged (the ingestion did not reach its commit)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.path, ignore_errors=True)


def _write_snapshot(
    snap: Snapshot,
    folder: Path,
    *,
    presence_synced: bool = False,
    linked: dict[str, Path] | None = None,
) -> dict[str, str]:
    """One Parquet file per frame, and ``meta.json`` written last (it marks a whole state);
    the SHA-256 of the frames written. ``linked``: see :meth:`Staging.start`."""
    return Staging.start(snap, folder, presence_synced=presence_synced, linked=linked).finish()
