"""The entry point: lock the destination, list, download, warn, and hand new archives to the
store."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ent_audit.exceptions import FetchError
from ent_audit.io import sha256
from ent_audit.store.store import IngestResult, Store
from ent_audit.transfer.fetch.deadlines import _known_dates, last_day_warnings, missed_windows
from ent_audit.transfer.fetch.download import (
    _fetch_all,
    _Options,
    _quiet_prefetch_threads,
    _Session,
)
from ent_audit.transfer.fetch.ledger import Ledger
from ent_audit.transfer.fetch.listing import _list_remote, select_archives
from ent_audit.transfer.fetch.model import (
    LOCK,
    ArchiveFetch,
    FetchResult,
    FetchWarning,
    ProgressHook,
    Status,
    WarningCode,
)
from ent_audit.transfer.sftp import (
    DEFAULT_KNOWN_HOSTS,
    Server,
    client_keys,
)

log = logging.getLogger("ent_audit.transfer.fetch")
"""One logger for the whole fetch (its records name ``ent_audit.transfer.fetch``)."""


# -- ingestion -----------------------------------------------------------------------------


def _to_ingest(
    archives: Sequence[ArchiveFetch], ledger: Ledger, ingested: set[str]
) -> tuple[list[Path], list[FetchWarning]]:
    """Local copies not yet ingested, in date order, stopping before a failed archive."""
    paths, held = [], []
    failed_at = next((i for i, a in enumerate(archives) if a.status == Status.FAILED), None)
    for i, a in enumerate(archives):
        if a.status not in (Status.FETCHED, Status.RESUMED, Status.PRESENT) or a.path is None:
            continue
        entry = ledger.entries.get(a.name) or {}
        digest = entry.get("sha256") if entry.get("size") == a.size else None
        if (digest or sha256(a.path)) in ingested:
            continue
        if failed_at is not None and i > failed_at:
            held.append(
                FetchWarning(
                    WarningCode.HELD,
                    a.deposit,
                    f"{a.name}: récupérée mais pas ingérée: "
                    f"{archives[failed_at].name}, plus ancienne, n'a pas pu être récupérée",
                    a.name,
                )
            )
            continue
        paths.append(a.path)
    return paths, held


# -- the entry point -----------------------------------------------------------------------


@contextlib.contextmanager
def _dest_locked(dest: Path) -> Iterator[None]:
    """One fetch at a time per destination (two cron runs would fight over ``.part`` files)."""
    fd = os.open(dest / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FetchError(f"{dest}: un autre ent-audit fetch y télécharge déjà") from None
        yield
    finally:
        os.close(fd)


def fetch(
    host: str,
    *,
    user: str,
    dest: Path | str,
    port: int = 22,
    key: Path | str | None = None,
    known_hosts: Path | str | None = None,
    remote_dir: str = ".",
    store: Path | str | None = None,
    ingest: bool = False,
    use_agent: bool | None = None,
    allow_other_key_types: bool = False,
    cadence_days: int | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 30.0,
    today: dt.date | None = None,
    progress: bool | None = None,
    on_progress: ProgressHook | None = None,
) -> FetchResult:
    """Download the new archives of ``remote_dir`` into ``dest``; see the module docstring.

    ``key`` is a private key file; without it (or with ``use_agent=True``) the ssh-agent's
    keys are offered. ``store`` makes already-ingested archives skipped; ``ingest`` also
    ingests the new ones there. ``cadence_days`` (e.g. 7 for weekly deposits) enables the
    missed-window check. Connection errors that make the run pointless (unknown host key,
    key refused, server unreachable) raise :class:`ent_audit.transfer.sftp.SFTPError` or
    :class:`ent_audit.transfer.sftp.ClientKeyError`; an archive that fails is reported, not raised.
    """
    t0 = time.perf_counter()
    if ingest and store is None:
        raise FetchError("--ingest demande --store (le store où ingérer les archives)")
    if retries < 0 or backoff < 0:
        raise FetchError(f"retries={retries}, backoff={backoff}: valeurs positives attendues")
    server = Server(host, user, port, Path(known_hosts or DEFAULT_KNOWN_HOSTS))
    opts = _Options(remote_dir, retries, backoff, progress, on_progress)
    today = today or dt.date.today()
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise FetchError(f"{dest}: --dest n'est pas un dossier")
    with client_keys(key, use_agent=use_agent, allow_other_key_types=allow_other_key_types) as keys:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _dest_locked(dest):
            ledger = Ledger.load(dest)
            history = Store(store).history() if store is not None else None
            ingested = set(history["sha256"]) if history is not None else set()
            with _Session(server, keys, timeout) as session, _quiet_prefetch_threads():
                remote, ignored = select_archives(_list_remote(session, server, remote_dir))
                results = _fetch_all(session, remote, dest, ledger, ingested, opts)
            warnings = last_day_warnings(results, today)
            if cadence_days:
                names = [] if history is None else list(history["archive"])
                for perimeter, dates in sorted(_known_dates(remote, ledger, names).items()):
                    warnings += missed_windows(dates, cadence_days, today, perimeter)
            ingest_results: list[IngestResult] = []
            if ingest:
                paths, held = _to_ingest(results, ledger, ingested)
                warnings += held
                if paths:
                    ingest_results = Store(store).ingest(paths, progress=progress)
    return FetchResult(
        server.label,
        remote_dir,
        dest,
        tuple(results),
        tuple(warnings),
        tuple(ingest_results),
        tuple(ignored),
        time.perf_counter() - t0,
    )
