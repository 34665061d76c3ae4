"""Event logs converted once into Parquet partitioned by month, user ids pseudonymised.

Layout under a folder (``STORE/activity/`` for the store, or a report's run folder)::

    events/month=YYYY-MM/<sha256 of the log, 16 hex>.parquet   0600, in 0700 folders
    imports.json                                               the ledger (no personal data)

The ledger lists each converted log by SHA-256 with its rows, malformed lines and months: a log
already converted is skipped, so a new month's log converts only its own rows (nothing of the
year is rewritten). A conversion killed half-way leaves files named after a log that the ledger
does not list; they are removed when that log is converted again. User ids are replaced by the
store's keyed pseudonyms (kind from the profile) before anything is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ent_audit.analyses.activity.inputs import EVENT_COLUMNS, EventLog, FileReport, mapping
from ent_audit.io import fsync_dir, private_dir, sha256, write_json
from ent_audit.store import pseudonym
from ent_audit.store.events import (  # noqa: F401  (where converted events live)
    ACTIVITY,
    EVENTS,
    LEDGER,
    activity_dir,
    events_glob,
    ledger,
)

"""The store's sub-folder for converted activity."""

PARQUET_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("s")),
        ("user", pa.string()),
        ("profile", pa.string()),
        ("uai", pa.string()),
        ("event", pa.string()),
        ("application", pa.string()),
        ("device", pa.string()),
    ]
)
"""Stored events: ``user`` is a keyed pseudonym; the month is the partition."""


class ImportStatus(StrEnum):
    IMPORTED = "imported"
    ALREADY = "already"
    """Same SHA-256 converted before: nothing done."""


@dataclass(frozen=True)
class ImportResult:
    file: str
    sha256: str
    status: ImportStatus
    report: FileReport | None
    months: dict[str, int]
    seconds: float

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "status": str(self.status),
            "report": self.report.to_dict() if self.report else None,
            "months": self.months,
            "seconds": round(self.seconds, 3),
        }


def reports(folder: Path | str) -> list[FileReport]:
    """The read reports of every converted log (rows kept, malformed lines)."""
    return [FileReport.from_dict(e["report"]) for e in ledger(folder)]


class _Pseudonyms:
    """Keyed pseudonyms of ``kind|jointure`` keys, each computed once per conversion.

    The keys seen and their pseudonyms are two Arrow arrays, not a Python dict: a month of an
    académie's log names about 180,000 people, 10 MB as Arrow strings against 36 MB as
    Python strings in a dict. Each block looks its keys up once (``index_in``)."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.keys = pa.array([], pa.string())
        self.ids = pa.array([], pa.string())

    def __call__(self, kind: pa.Array, user: pa.Array) -> pa.Array:
        """Each distinct ``kind|user`` of the block looked up in the keys seen (Arrow's hash
        join), the new ones hashed once (HMAC in Python), then spread back to the rows by
        Arrow (no per-row Python)."""
        enc = pc.dictionary_encode(pc.binary_join_element_wise(kind, user, "|"))
        if isinstance(enc, pa.ChunkedArray):
            enc = enc.combine_chunks()
        uniques = enc.dictionary
        at = pc.index_in(uniques, value_set=self.keys)
        unseen = pc.is_null(at)
        new = uniques.filter(unseen)
        if len(new):
            found = new.to_pylist()
            ids: list[str | None] = [None] * len(found)
            by_kind: dict[str, list[int]] = {}
            for i, u in enumerate(found):
                by_kind.setdefault(u.partition("|")[0], []).append(i)
            for kind_, rows in by_kind.items():
                jointures = pd.Series([found[i][len(kind_) + 1 :] for i in rows], dtype=object)
                values = pseudonym.pseudonymise(self.key, kind_, jointures).tolist()
                for i, v in zip(rows, values, strict=True):
                    ids[i] = v
            # The new keys go at the end of the cache, in the order ``filter`` gave them.
            at = np.asarray(pc.fill_null(at, -1), dtype=np.int64)
            at[unseen.to_numpy(zero_copy_only=False)] = len(self.keys) + np.arange(len(new))
            self.keys = pa.concat_arrays([self.keys, new])
            self.ids = pa.concat_arrays([self.ids, pa.array(ids, pa.string())])
        return self.ids.take(at).take(enc.indices)


ROW_GROUP_ROWS = 1 << 18
"""Rows per Parquet row group of the converted events: blocks of the log are gathered up to it,
so the files do not depend on the size of the blocks read (and hold no tiny row groups)."""


class _MonthFile:
    """One month's Parquet file being written (0600, a temporary name): events gathered into
    row groups of :data:`ROW_GROUP_ROWS`, each written as soon as it is full, so memory holds
    at most one row group per month whatever the log's size."""

    def __init__(self, folder: Path, name: str) -> None:
        d = private_dir(folder)
        fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.fh = os.fdopen(fd, "wb")
        self.writer = pq.ParquetWriter(self.fh, PARQUET_SCHEMA, compression="zstd")
        self.pending: list[pa.Table] = []
        self.waiting = 0
        self.rows = 0

    def add(self, part: pa.Table) -> None:
        self.pending.append(part)
        self.waiting += part.num_rows
        self.rows += part.num_rows
        if self.waiting >= ROW_GROUP_ROWS:
            full = self.waiting - self.waiting % ROW_GROUP_ROWS
            table = pa.concat_tables(self.pending)
            self.writer.write_table(table.slice(0, full), row_group_size=ROW_GROUP_ROWS)
            rest = table.slice(full)
            self.pending, self.waiting = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> None:
        """Write what is left, then flush and fsync (also after an error: the file keeps its
        temporary name and is removed when the log is converted again)."""
        try:
            if self.pending:
                self.writer.write_table(pa.concat_tables(self.pending), ROW_GROUP_ROWS)
            self.pending = []
        finally:
            self.writer.close()
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()


@contextlib.contextmanager
def _locked(folder: Path):
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def convert(
    logs: Iterable[Path | str],
    folder: Path | str,
    key: bytes,
    *,
    columns: Mapping[str, str] | None = None,
) -> list[ImportResult]:
    """Convert event logs into ``folder`` (see the module), skipping those already there."""
    mapping(EVENT_COLUMNS, columns, "events")  # a wrong mapping fails before anything is done
    folder = private_dir(folder)
    private_dir(folder / EVENTS)
    results = []
    with _locked(folder):
        for log in logs:
            results.append(_convert_one(Path(log), folder, key, columns))
    return results


def _convert_one(
    path: Path, folder: Path, key: bytes, columns: Mapping[str, str] | None
) -> ImportResult:
    t0 = time.perf_counter()
    digest = sha256(path)
    done = ledger(folder)
    if any(e["sha256"] == digest for e in done):
        return ImportResult(path.name, digest, ImportStatus.ALREADY, None, {}, 0.0)
    name = f"{digest[:16]}.parquet"
    for stale in (folder / EVENTS).glob(f"month=*/{name}"):  # an interrupted conversion
        stale.unlink()
    log = EventLog(path, columns)
    pseudo = _Pseudonyms(key)
    writers: dict[str, _MonthFile] = {}
    try:
        for table in log:
            if not table.num_rows:
                continue
            month = pc.add(pc.multiply(pc.year(table["ts"]), 100), pc.month(table["ts"]))
            out = pa.table(
                {
                    "ts": table["ts"],
                    "user": pseudo(table["kind"], table["user"]),
                    "profile": table["profile"],
                    "uai": table["uai"],
                    "event": table["event"],
                    "application": table["application"],
                    "device": table["device"],
                },
                schema=PARQUET_SCHEMA,
            )
            del table
            yms = pc.unique(month).to_pylist()
            for ym in yms:
                m = f"{ym // 100:04d}-{ym % 100:02d}"
                if m not in writers:
                    writers[m] = _MonthFile(folder / EVENTS / f"month={m}", f".{name}.tmp")
                writers[m].add(out if len(yms) == 1 else out.filter(pc.equal(month, ym)))
    finally:
        for w in writers.values():
            w.close()
    months = {m: w.rows for m, w in writers.items()}
    for m in writers:
        d = folder / EVENTS / f"month={m}"
        os.replace(d / f".{name}.tmp", d / name)
        fsync_dir(d)
    assert log.report is not None
    entry = {
        "file": path.name,
        "sha256": digest,
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "months": months,
        "report": log.report.to_dict(),
    }
    write_json(folder / LEDGER, [*done, entry])
    return ImportResult(
        path.name, digest, ImportStatus.IMPORTED, log.report, months, time.perf_counter() - t0
    )
