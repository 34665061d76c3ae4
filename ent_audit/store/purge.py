"""The purge: delete from the workbench what the retention rules say is overdue.

Two halves. :func:`inventory` lists the workbench's files that hold or may hold personal data
(old state folders and temporary leftovers in the store, raw archives in a fetch destination,
report runs, findings CSVs pseudonymised or in clear) with the date their retention counts
from; :mod:`ent_audit.analyses.retention` decides what is overdue and returns a
:class:`PurgePlan`. :func:`apply` carries the plan out under the store's ingestion lock:

- presence rows (and the live state's records of pupils whose destruction request is overdue)
  are rewritten through the store's atomic commit;
- files and folders are removed; archives that predate a purged person's departure hold them
  and go too; report outputs that name a purged pseudonym lose those CSV rows (other files
  naming one: their whole run); the store's logs get the pseudonym replaced;
- a purge record (``STORE/purges/``: date, counts per rule, nothing personal) is written.

Applying the same plan again changes nothing and writes no record.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.frames import isin
from ent_audit.aaf.naming import parse_archive_name
from ent_audit.aaf.snapshot import Snapshot
from ent_audit.exceptions import EntAuditError
from ent_audit.io import private_dir, write_atomic, write_json
from ent_audit.store import access, pseudonym
from ent_audit.store.partial import FRAMES_DIR
from ent_audit.store.store import Store

RECORDS_DIR = "purges"
RUN_NAME = re.compile(r"^\d{8}T\d{6}\d*Z$")
CLEAR_FOLDER = "a-corriger"
PURGED = "purgé"
"""What replaces a purged pseudonym in the store's logs."""


class Category(StrEnum):
    """What an inventoried file or folder is, which sets its retention."""

    OLD_STATE = "old_state"
    """A state folder that is not the live one (personal data in clear)."""
    TEMPORARY = "temporary"
    """A leftover in ``STORE/tmp`` (extraction or staging of an interrupted run)."""
    ARCHIVE = "archive"
    """A raw AAF archive in the fetch destination."""
    OUTPUT_RUN = "output_run"
    """A report run folder."""
    FINDINGS = "findings"
    """A pseudonymised ``findings.csv`` of a run."""
    CLEAR_CSV = "clear_csv"
    """A folder of findings CSVs in clear (``a-corriger``)."""
    SUPERSEDED = "superseded"
    """The live state's base still holding rows Deltas replaced (older copies until its
    compaction, :mod:`ent_audit.store.partial`): purged by compacting the state."""


CATEGORY_LABELS = {
    Category.OLD_STATE: "ancien état du store",
    Category.TEMPORARY: "dossier temporaire resté",
    Category.ARCHIVE: "archive brute",
    Category.OUTPUT_RUN: "exécution de rapport",
    Category.FINDINGS: "constats pseudonymisés",
    Category.CLEAR_CSV: "constats en clair",
    Category.SUPERSEDED: "copies remplacées par des Delta (base de l'état à réécrire)",
}


def _mtime(path: Path) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.fromtimestamp(path.stat().st_mtime))


def inventory(
    store: Store | Path | str | None,
    archives: Path | str | None = None,
    outputs: Path | str | None = None,
) -> pd.DataFrame:
    """``path, category, date, extraction_date``: what the workbench holds besides its live
    state, and the date its retention counts from (ingestion for an archive, run start for an
    output, modification otherwise)."""
    rows: list[tuple[str, str, pd.Timestamp, pd.Timestamp | None]] = []
    ingested: dict[str, pd.Timestamp] = {}
    if store is not None:
        st = store if isinstance(store, Store) else Store(store, create=False)
        live = st.current()
        for p in sorted((st.path / "states").iterdir()):
            if live is None or p.name != live.name:
                rows.append((str(p), Category.OLD_STATE, _mtime(p), None))
        for p in sorted((st.path / "tmp").iterdir()):
            rows.append((str(p), Category.TEMPORARY, _mtime(p), None))
        written = st.overlay_written()
        if live is not None and written is not None:
            rows.append((str(live / FRAMES_DIR), Category.SUPERSEDED, pd.Timestamp(written), None))
        history = st.history()
        for name, when in zip(history["archive"], history["ingested_at"], strict=True):
            ingested[name] = pd.Timestamp(when).tz_convert(None)
    if archives is not None and Path(archives).is_dir():
        for p in sorted(Path(archives).iterdir()):
            if not p.is_file():
                continue
            try:
                name = parse_archive_name(p)
            except EntAuditError:
                continue
            when = ingested.get(p.name, _mtime(p))
            rows.append((str(p), Category.ARCHIVE, when, pd.Timestamp(name.date)))
    if outputs is not None and Path(outputs).is_dir():
        for run in sorted(Path(outputs).glob("*/*")):
            if not (run.is_dir() and RUN_NAME.match(run.name)):
                continue
            when = pd.Timestamp(dt.datetime.strptime(run.name[:15], "%Y%m%dT%H%M%S"))
            rows.append((str(run), Category.OUTPUT_RUN, when, None))
            if (run / "findings.csv").is_file():
                rows.append((str(run / "findings.csv"), Category.FINDINGS, when, None))
            if (run / CLEAR_FOLDER).is_dir():
                rows.append((str(run / CLEAR_FOLDER), Category.CLEAR_CSV, when, None))
    df = pd.DataFrame(rows, columns=["path", "category", "date", "extraction_date"])
    df["category"] = df["category"].astype(str)
    df["date"] = pd.to_datetime(df["date"]).astype("datetime64[ns]")
    df["extraction_date"] = pd.to_datetime(df["extraction_date"]).astype("datetime64[ns]")
    return df


@dataclass(frozen=True)
class PurgePlan:
    """What a purge deletes (built by :func:`ent_audit.analyses.retention.purge_plan`).

    The pseudonyms and jointures never leave memory: ``to_dict`` has counts only.
    """

    as_of: dt.date
    pseudonyms: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """(pseudonym, kind) of the people whose presence rows go."""
    jointures: tuple[str, ...] = field(default=(), repr=False)
    """Pupils' jointures whose records leave the live state (overdue destruction requests)."""
    paths: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    """Items per rule."""
    holds_before: dt.date | None = None
    """Archives dated before this day hold a purged person."""
    everything: bool = False
    """The convention's end is overdue: every piece of personal data goes."""

    @property
    def empty(self) -> bool:
        return not (self.pseudonyms or self.jointures or self.paths or self.everything)

    def to_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "counts": dict(self.counts),
            "files": {
                str(k): int(v)
                for k, v in pd.Series(self.categories, dtype=object).value_counts().items()
            },
            "everything": self.everything,
        }


@dataclass(frozen=True)
class PurgeReport:
    """What :func:`apply` did (counts only)."""

    counts: dict[str, int]
    """Items purged per rule."""
    presence_rows: int = 0
    state_records: int = 0
    files_removed: int = 0
    archives_removed: int = 0
    output_rows_removed: int = 0
    output_runs_removed: int = 0
    log_files_scrubbed: int = 0
    journal_rows_removed: int = 0
    """Rows of the change journal naming a purged person."""
    access_lines_removed: int = 0
    """Lines of the roster explorer's access journal past their term."""
    record: Path | None = None

    @property
    def changed(self) -> bool:
        return any(
            (
                self.presence_rows,
                self.state_records,
                self.files_removed,
                self.archives_removed,
                self.output_rows_removed,
                self.output_runs_removed,
                self.log_files_scrubbed,
                self.journal_rows_removed,
                self.access_lines_removed,
            )
        )

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "record"}
        d["record"] = str(self.record) if self.record else None
        return d


def _remove(path: Path) -> bool:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
        return True
    if path.exists() or path.is_symlink():
        path.unlink()
        return True
    return False


def _without_people(state: Snapshot, jointures: set[str]) -> tuple[Snapshot, int]:
    """The state without these pupils: their record, every link row naming them, their
    extras and reader findings."""
    owners = {"student"} | {f.owner for f in schema.STUDENT.fields if f.owner}
    removed = 0
    frames = {}
    for name, df in state.frames().items():
        drop = pd.Series(False, index=df.index)
        if name == schema.STUDENT.frame:
            drop |= df["jointure"].isin(jointures)
        elif name in ("extras", "issues"):
            drop |= (df["kind"].astype(str) == schema.STUDENT.name) & df["jointure"].isin(jointures)
        else:
            for col in owners & set(df.columns):
                drop |= df[col].isin(jointures)
        if name == schema.STUDENT.frame:
            removed += int(drop.sum())
        frames[name] = df[~drop.to_numpy()].reset_index(drop=True)
    links = {name: frames.pop(name) for name in state.links}
    return (
        Snapshot(extraction=state.extraction, links=links, notes=state.notes, **frames),
        removed,
    )


def _scrub_outputs(outputs: Path, needles: list[str], key: bytes, doomed: set) -> tuple[int, int]:
    """Remove every trace of ``needles`` (pseudonyms) under ``outputs``: CSV rows go (clear
    CSVs are matched through their ``kind`` and ``jointure`` columns); any other file naming
    one takes its run folder with it."""
    rows = runs = 0
    if not needles or not outputs.is_dir():
        return rows, runs
    pattern = re.compile("|".join(map(re.escape, needles)).encode())
    for path in sorted(p for p in outputs.rglob("*") if p.is_file()):
        if not path.exists():
            continue  # its run already went
        data = path.read_bytes()
        if path.suffix == ".csv" and CLEAR_FOLDER in path.parts:
            n = _scrub_clear_csv(path, key, doomed)
            rows += n
            continue
        if not pattern.search(data):
            continue
        if path.suffix == ".csv":
            lines = data.splitlines(keepends=True)
            kept = [line for line in lines if not pattern.search(line)]
            rows += len(lines) - len(kept)
            write_atomic(path, b"".join(kept))
            continue
        run = next((p for p in path.parents if RUN_NAME.match(p.name)), None)
        if run is not None and outputs in run.parents:
            shutil.rmtree(run)
            runs += 1
        else:
            path.unlink()
            runs += 1
    return rows, runs


CLEAR_KIND_COLUMNS = ("fichier AAF", "kind")
"""The column of a clear findings CSV naming the record's AAF kind: its French header (the
quality report's ``CLEAR_HEADERS``), or the English one of older runs; the ids are in
« jointure »."""


def _scrub_clear_csv(path: Path, key: bytes, doomed: set) -> int:
    """Drop the rows of purged people from a findings CSV in clear."""
    text = path.read_text(encoding="utf-8-sig")
    df = pd.read_csv(io.StringIO(text), sep=";", dtype=str, keep_default_na=False)
    kind_col = next((c for c in CLEAR_KIND_COLUMNS if c in df.columns), None)
    if kind_col is None or "jointure" not in df.columns or df.empty:
        return 0
    kinds = df[kind_col]
    ids = pd.Series(pd.NA, index=df.index, dtype=object)
    for kind in kinds.unique():
        sel = kinds == kind
        ids[sel] = pseudonym.pseudonymise(key, kind, df.loc[sel, "jointure"]).astype(object)
    drop = pd.Series(list(zip(ids, kinds, strict=True)), index=df.index).isin(doomed)
    if not drop.any():
        return 0
    out = io.StringIO()
    df[~drop].to_csv(out, sep=";", index=False)
    write_atomic(path, ("\ufeff" + out.getvalue()).encode("utf-8"))
    return int(drop.sum())


def _scrub_logs(folder: Path, needles: list[str]) -> int:
    if not needles or not folder.is_dir():
        return 0
    pattern = re.compile("|".join(map(re.escape, needles)))
    n = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        new = pattern.sub(PURGED, text)
        if new != text:
            write_atomic(path, new)
            n += 1
    return n


def apply(
    store: Store,
    plan: PurgePlan,
    *,
    archives: Path | str | None = None,
    outputs: Path | str | None = None,
) -> PurgeReport:
    """Carry ``plan`` out. Call it under ``store.locked()`` (the CLI does): no ingestion may
    run meanwhile."""
    doomed = set(plan.pseudonyms)
    presence_rows = state_records = files = archives_removed = journal_rows = 0
    jointures = set(plan.jointures)
    if plan.everything:
        for p in (store.path / "states").iterdir():
            files += _remove(p)
        files += _remove(store.path / "CURRENT")
        for p in (store.path / "logs").iterdir():
            files += _remove(p)
        for folder, pattern in ((archives, "*"), (outputs, "*/*")):
            if folder is not None and Path(folder).is_dir():
                for p in Path(folder).glob(pattern):
                    files += _remove(p)
    elif store.current() is not None and (doomed or jointures):
        rows = store.presence()
        pairs = pd.Series(
            list(zip(rows["pseudonym"].astype(str), rows["kind"].astype(str), strict=True))
        )
        gone = pairs.isin(doomed).to_numpy()
        state = None
        if jointures:
            state, state_records = _without_people(store.latest(), jointures)
        presence_rows = int(gone.sum())
        # The change journal names the same people: their rows go with them.
        book = store.journal()
        requested = pseudonym.pseudonymise(store.key, schema.STUDENT.name, sorted(jointures))
        named = {p for p, _ in doomed} | set(requested.dropna().astype(str))
        dropped = isin(book["pseudonym"], named) if len(book) else np.zeros(0, dtype=bool)
        journal_rows = int(dropped.sum())
        if presence_rows or state_records or journal_rows:
            store.rewrite(
                rows[~gone].reset_index(drop=True), state, book[~dropped].reset_index(drop=True)
            )
    for path, category in zip(plan.paths, plan.categories, strict=True):
        if category == Category.SUPERSEDED:
            files += store.compact()  # nothing to do if the rewrite above already did it
        elif category == Category.ARCHIVE:
            archives_removed += _remove(Path(path))
        elif category in (Category.TEMPORARY, Category.OLD_STATE) and not Path(path).exists():
            files += 1  # removed by the clean-up that taking the lock does
        else:
            files += _remove(Path(path))
    if archives is not None and plan.holds_before is not None and Path(archives).is_dir():
        for p in sorted(Path(archives).iterdir()):
            try:
                name = parse_archive_name(p)
            except EntAuditError:
                continue
            if p.is_file() and name.date is not None and name.date < plan.holds_before:
                archives_removed += _remove(p)
    needles = sorted({p for p, _ in doomed})
    out_rows = out_runs = 0
    if outputs is not None:
        out_rows, out_runs = _scrub_outputs(Path(outputs), needles, store.key, doomed)
    logs = _scrub_logs(store.path / "logs", needles)
    access_lines = access.purge(store.path, plan.as_of)
    report = PurgeReport(
        counts=dict(plan.counts),
        presence_rows=presence_rows,
        state_records=state_records,
        files_removed=files,
        archives_removed=archives_removed,
        output_rows_removed=out_rows,
        output_runs_removed=out_runs,
        log_files_scrubbed=logs,
        journal_rows_removed=journal_rows,
        access_lines_removed=access_lines,
    )
    if not report.changed:
        return PurgeReport(counts={k: 0 for k in plan.counts})
    folder = private_dir(store.path / RECORDS_DIR)
    now = dt.datetime.now(dt.UTC)
    path = folder / f"purge-{now:%Y%m%dT%H%M%S%f}-{os.getpid()}.json"
    write_json(
        path,
        {
            "date": now.isoformat(timespec="seconds"),
            **plan.to_dict(),
            **{k: v for k, v in report.to_dict().items() if k not in ("counts", "record")},
        },
    )
    return PurgeReport(**{**report.__dict__, "record": path})
