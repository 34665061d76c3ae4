"""The on-disk store: the latest state of the perimeter, its pseudonymous history, nothing else.

Layout of ``STORE/`` (folders 0700, files 0600)::

    CURRENT            name of the live state folder, replaced atomically
    states/<id>/       the live state: snapshot/<frame>.parquet + meta.json,
                       presence.parquet (pseudonymous history), extractions.json
    key                HMAC key of the pseudonyms (unless ENT_AUDIT_KEY is set)
    lock, read.lock    ingestion mutex; readers' shared lock
    tmp/               private extraction and staging, emptied after each run
    logs/              one JSON log per ingestion run (pseudonyms only)

An ingestion builds a whole new state folder in ``tmp/``, fsyncs it, moves it under
``states/`` and then replaces ``CURRENT``: a process killed at any point leaves the previous
state live and intact. The previous state folder (personal data in clear) is then deleted: only
the latest snapshot keeps personal data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.archive import extract
from ent_audit.aaf.naming import parse_archive_name
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot, load_files
from ent_audit.exceptions import EntAuditError, NamingError, StoreError, StoreLockedError
from ent_audit.io import fsync_dir, open_private, private_dir, sha256, write_json
from ent_audit.store import presence, pseudonym
from ent_audit.store.apply import Anomaly, apply_delta, check_delta

FRAMES_DIR = "snapshot"


@dataclass(frozen=True)
class IngestResult:
    """What happened to one archive."""

    archive: str
    sha256: str
    status: str
    """``ingested``, ``already`` (same SHA-256 ingested before: nothing done) or ``refused``."""
    extraction: str | None = None
    date: dt.date | None = None
    message: str = ""
    anomalies: tuple[Anomaly, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self, key: bytes | None = None) -> dict:
        """JSON-ready; with ``key`` the anomalies' jointures become pseudonyms (for logs)."""
        out = asdict(self)
        out["date"] = self.date.isoformat() if self.date else None
        anomalies = []
        for a in self.anomalies:
            d = a.to_dict()
            if key is not None and a.jointure is not None:
                d["jointure"] = pseudonym.pseudonym(key, a.kind or "", a.jointure)
            anomalies.append(d)
        out["anomalies"] = anomalies
        return out


class Store:
    """One perimeter's store. ``Store(path)`` creates it (0700) when absent, unless
    ``create=False`` (readers: a mistyped path is an error, not a new empty store)."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not (self.path / "states").is_dir():
            raise StoreError(f"{self.path}: pas de store ici (créé par ent-audit ingest … --store)")
        for sub in ("", "states", "tmp", "logs"):
            private_dir(self.path / sub)
        with open_private(self.path / "read.lock", "ab"):
            pass
        self.key = pseudonym.load_key(self.path / "key")

    # -- reading --------------------------------------------------------------------------

    def _current(self) -> Path | None:
        try:
            name = (self.path / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        state = self.path / "states" / name
        if not (state / "meta.json").exists():
            raise StoreError(f"{self.path}: CURRENT désigne un état absent ({name})")
        return state

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Path | None]:
        with open(self.path / "read.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            try:
                yield self._current()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def latest(self) -> Snapshot:
        """The current state of the perimeter (the last Complet with the Deltas since)."""
        with self._reading() as state:
            if state is None:
                raise StoreError(f"{self.path}: aucune extraction ingérée")
            return _read_snapshot(state)

    def history(self) -> pd.DataFrame:
        """The ingested extractions, oldest first: name, SHA-256, type, date, counts, when."""
        with self._reading() as state:
            rows = _read_history(state)
        cols = [
            "archive",
            "sha256",
            "extraction",
            "date",
            "ingested_at",
            "anomalies",
            *[k.frame for k in schema.KINDS.values()],
        ]
        df = pd.DataFrame(
            [{**{k: r[k] for k in cols[:6]}, **r["counts"]} for r in rows], columns=cols
        )
        df["date"] = pd.to_datetime(df["date"])
        df["ingested_at"] = pd.to_datetime(df["ingested_at"], utc=True)
        return df

    def presence(self) -> pd.DataFrame:
        """The pseudonymous presence history (see :mod:`ent_audit.store.presence`)."""
        with self._reading() as state:
            if state is None:
                return presence.empty()
            return pd.read_parquet(state / "presence.parquet")

    # -- writing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, wait: float) -> Iterator[None]:
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

    def _clean(self) -> None:
        """Remove leftovers of an interrupted run: staging, extractions, dead states."""
        for p in (self.path / "tmp").iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
        live = self._current()
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
        progress: bool | None = None,
    ) -> list[IngestResult]:
        """Ingest archives in date order (a Complet before a Delta of the same day).

        Each archive is one transaction: it is ingested whole or not at all. A Delta with a
        blocking anomaly (or any anomaly when ``strict``) is refused and the store left as it
        was. The run is logged in ``logs/`` with pseudonyms only.
        """
        paths = [Path(a) for a in archives]
        started = dt.datetime.now(dt.UTC)
        results: list[IngestResult] = []
        with self._locked(wait):
            for path in _in_date_order(paths):
                results.append(
                    self._ingest_one(
                        path, strict=strict, progress=progress, max_gap_days=max_gap_days
                    )
                )
            self._log(started, results)
        return results

    def _ingest_one(
        self, path: Path, *, strict: bool, progress: bool | None, max_gap_days: int | None
    ) -> IngestResult:
        t0 = time.perf_counter()
        digest = sha256(path)
        state_dir = self._current()
        history = _read_history(state_dir)
        done = next((h for h in history if h["sha256"] == digest), None)
        if done:
            return IngestResult(
                path.name,
                digest,
                "already",
                done["extraction"],
                dt.date.fromisoformat(done["date"]),
                f"déjà ingérée le {done['ingested_at']} (même SHA-256): rien à faire",
            )
        try:
            name = parse_archive_name(path)
        except EntAuditError as err:
            return IngestResult(
                path.name, digest, "refused", message=str(err), seconds=time.perf_counter() - t0
            )
        state_info = _read_info(state_dir) if state_dir else None
        if (
            name.extraction == "complete"
            and state_info is not None
            and not (name.date and state_info.date and name.date > state_info.date)
        ):
            # Known from the name: refused before extracting and parsing anything.
            return IngestResult(
                path.name,
                digest,
                "refused",
                name.extraction,
                name.date,
                f"Complet du {name.date} pas postérieur à l'état du {state_info.date}",
            )
        tmp: Path | None = None
        try:
            tmp = Path(tempfile.mkdtemp(prefix="extract-", dir=self.path / "tmp"))  # 0700
            try:
                incoming = load_files(extract(path, tmp), progress=progress)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        except EntAuditError as err:
            # Name the archive, not the private temporary folder it was extracted to.
            message = (
                str(err) if tmp is None else str(err).replace(f"{tmp}{os.sep}", f"{path.name}:")
            )
            return IngestResult(
                path.name, digest, "refused", message=message, seconds=time.perf_counter() - t0
            )
        info = incoming.extraction
        if (info.extraction, info.date) != (name.extraction, name.date):
            return IngestResult(
                path.name,
                digest,
                "refused",
                info.extraction,
                info.date,
                f"les fichiers ({info.extraction} {info.date}) ne correspondent "
                f"pas au nom de l'archive ({name.extraction} {name.date})",
            )
        if info.extraction == "delta":
            state = _read_snapshot(state_dir) if state_dir else None
            kw = {} if max_gap_days is None else {"max_gap_days": max_gap_days}
            anomalies = tuple(check_delta(state, incoming, **kw))
            blocking = [a for a in anomalies if a.blocking or strict]
            if blocking:
                return IngestResult(
                    path.name,
                    digest,
                    "refused",
                    info.extraction,
                    info.date,
                    f"Delta refusé: {blocking[0].message}"
                    + (
                        f" (et {len(blocking) - 1} autre(s) anomalie(s))"
                        if len(blocking) > 1
                        else ""
                    ),
                    anomalies,
                    incoming.counts(),
                    time.perf_counter() - t0,
                )
            new_state = apply_delta(state, incoming)
        else:
            anomalies = ()
            new_state = incoming
        old_presence = pd.read_parquet(state_dir / "presence.parquet") if state_dir else None
        new_presence = presence.update(
            old_presence, presence.present(new_state, self.key), info.date
        )
        entry = dict(
            archive=path.name,
            sha256=digest,
            extraction=info.extraction,
            date=info.date.isoformat(),
            perimeter=info.perimeter,
            ingested_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            anomalies=len(anomalies),
            counts=incoming.counts(),
            state_counts=new_state.counts(),
        )
        self._commit(new_state, new_presence, [*history, entry])
        return IngestResult(
            path.name,
            digest,
            "ingested",
            info.extraction,
            info.date,
            "ingérée",
            anomalies,
            incoming.counts(),
            time.perf_counter() - t0,
        )

    def _commit(self, state: Snapshot, history_presence: pd.DataFrame, history: list[dict]) -> None:
        """Write the new state beside the live one, then switch ``CURRENT`` atomically."""
        stage = Path(tempfile.mkdtemp(prefix="stage-", dir=self.path / "tmp"))  # 0700
        _write_snapshot(state, stage)
        with open_private(stage / "presence.parquet") as fh:
            history_presence.to_parquet(fh, index=False)
        write_json(stage / "extractions.json", history)
        fsync_dir(stage)
        name = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{stage.name[6:]}"
        target = self.path / "states" / name
        os.rename(stage, target)
        fsync_dir(target.parent)
        pointer = self.path / "tmp" / "CURRENT.new"
        with open_private(pointer, "w", encoding="utf-8") as fh:
            fh.write(name + "\n")
        with open(self.path / "read.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # no reader between switch and cleanup
            os.replace(pointer, self.path / "CURRENT")
            fsync_dir(self.path)
            for p in (self.path / "states").iterdir():
                if p.name != name:
                    shutil.rmtree(p)
            fcntl.flock(lock, fcntl.LOCK_UN)

    def _log(self, started: dt.datetime, results: Sequence[IngestResult]) -> Path:
        path = self.path / "logs" / f"ingest-{started:%Y%m%dT%H%M%S%f}-{os.getpid()}.json"
        write_json(
            path,
            {
                "started": started.isoformat(timespec="seconds"),
                "ended": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "results": [r.to_dict(self.key) for r in results],
            },
        )
        return path

    # -- ad-hoc SQL (ent_audit.store.sql) -------------------------------------------------

    def duckdb(self, *, population: bool = True):
        """A DuckDB connection with one view per frame of the state and per activity table."""
        from ent_audit.store import sql

        return sql.connect(self, population=population)

    def sql(self, query: str, *, population: bool = True) -> pd.DataFrame:
        """Run one query over the store's views (:meth:`duckdb`) and return its result."""
        with self.duckdb(population=population) as con:
            return con.execute(query).df()


def _in_date_order(paths: list[Path]) -> list[Path]:
    def key(p: Path):
        try:
            n = parse_archive_name(p)
        except NamingError:
            return (dt.date.max, 2, p.name)  # refused later, with its error, in the log
        return (n.date or dt.date.min, 0 if n.extraction == "complete" else 1, p.name)

    return sorted(paths, key=key)


def _read_history(state: Path | None) -> list[dict]:
    if state is None:
        return []
    return json.loads((state / "extractions.json").read_text(encoding="utf-8"))


def _write_snapshot(snap: Snapshot, folder: Path) -> None:
    """One Parquet file per frame, and ``meta.json`` written last (it marks a whole state)."""
    frames = folder / FRAMES_DIR
    private_dir(frames)
    for name, df in snap.frames().items():
        with open_private(frames / f"{name}.parquet") as fh:  # fsynced on close
            df.to_parquet(fh, index=False)
    fsync_dir(frames)
    e = snap.extraction
    write_json(
        folder / "meta.json",
        {
            "perimeter": e.perimeter,
            "extraction": e.extraction,
            "date": e.date.isoformat() if e.date else None,
            "notes": snap.notes,
            "frames": sorted(snap.frames()),
            "links": sorted(snap.links),
        },
    )


def _read_meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text(encoding="utf-8"))


def _read_info(folder: Path, meta: dict | None = None) -> ExtractionInfo:
    """Which extraction a state holds, from its ``meta.json`` alone (no Parquet read)."""
    meta = _read_meta(folder) if meta is None else meta
    return ExtractionInfo(
        meta["perimeter"],
        meta["extraction"],
        dt.date.fromisoformat(meta["date"]) if meta["date"] else None,
    )


def _read_snapshot(folder: Path) -> Snapshot:
    meta = _read_meta(folder)
    frames = {
        name: pd.read_parquet(folder / FRAMES_DIR / f"{name}.parquet") for name in meta["frames"]
    }
    links = {name: frames.pop(name) for name in meta["links"]}
    return Snapshot(extraction=_read_info(folder, meta), links=links, notes=meta["notes"], **frames)
