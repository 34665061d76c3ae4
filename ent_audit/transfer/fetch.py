"""Fetch the academy's archives over SFTP (Annexe 2), and only what is new.

What a run does, in order:

1. connects with :mod:`ent_audit.transfer.sftp` (host key verified, key policy checked);
2. lists the remote folder, keeping regular files whose names follow the nomenclature
   (:func:`ent_audit.aaf.naming.parse_archive_name`);
3. for each archive, oldest first, decides: already in the destination with the same size
   (``present``), already ingested in the store (``ingested``: same name, size and mtime as a
   download whose SHA-256 the store has), or to download: into ``NAME.part``
   (0600), resumed from where a dropped connection left it, renamed to ``NAME`` once its size
   matches the server's; dropped connections are retried with exponential backoff;
4. flags archives on the last working day of their 5-working-day window and, given a cadence,
   the deposits whose window was missed (a gap in the series of dates);
5. with ``ingest``, hands the archives not yet ingested to :meth:`Store.ingest`, in date order.

The server is only ever listed, stat'ed and opened for reading: nothing is written or deleted.

**The ledger.** ``DEST/.ent-audit-fetch.json`` (0600) records, per archive name, the remote
size and mtime seen when it was downloaded and the SHA-256 of the file obtained. It answers the
two questions the store alone cannot: "is this remote file (name, size, mtime) the one already
ingested?" (the store's history knows names and SHA-256, not remote sizes or times), so a run
after the local copy was deleted downloads nothing; and "is this ``.part`` a prefix of the file
now on the server?" (an entry without SHA-256 is a download in progress: it is resumed only if
the server still shows the same size and mtime). It holds no personal data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import posixpath
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Self

import paramiko
from tqdm import tqdm

from ent_audit.aaf.naming import parse_archive_name
from ent_audit.exceptions import FetchError, NamingError
from ent_audit.io import sha256
from ent_audit.store.store import IngestResult, Store
from ent_audit.transfer.sftp import (
    DEFAULT_KNOWN_HOSTS,
    Server,
    SFTPError,
    UnreachableError,
    client_keys,
    connect,
    open_sftp,
)
from ent_audit.transfer.workdays import WINDOW_DAYS, window_last_day

log = logging.getLogger(__name__)

LEDGER = ".ent-audit-fetch.json"
LOCK = ".ent-audit-fetch.lock"
PART = ".part"
CHUNK = 1 << 20
"""Bytes read and written at a time."""
WINDOW = 4 << 20
"""Bytes requested at once (128 SFTP reads of 32 KB): fast on a long link, bounded in memory."""
MAX_BACKOFF = 60.0

ProgressHook = Callable[[str, int, int], None]
"""Called after each chunk written: archive name, bytes now in the ``.part``, total size."""


class Status(StrEnum):
    FETCHED = "fetched"
    """Downloaded whole in this run."""
    RESUMED = "resumed"
    """Completed from a ``.part`` left by a dropped connection (this run's or an earlier one)."""
    PRESENT = "present"
    """Already in the destination with the server's size: not downloaded."""
    INGESTED = "ingested"
    """Same name, size and mtime as a download the store has ingested: not downloaded."""
    FAILED = "failed"
    """Could not be downloaded after the retries; a ``.part`` is kept for the next run."""


class WarningCode(StrEnum):
    LAST_DAY = "last_day"
    """On the server, on the last working day of its window."""
    MISSED = "missed"
    """No archive where the cadence expected one, and its window is over."""
    HELD = "held"
    """Downloaded but not ingested: an older archive of the series failed to download."""


@dataclass(frozen=True)
class RemoteArchive:
    """One archive on the server, as listed."""

    name: str
    size: int
    mtime: int
    """Seconds since the epoch, as the server reports it."""
    perimeter: str
    extraction: str
    date: dt.date | None
    """The extraction date in the name, when there is one."""

    @property
    def deposit(self) -> tuple[dt.date, str]:
        """The day the window is counted from, and from what: the name's date, else the mtime."""
        if self.date is not None:
            return self.date, "name"
        return dt.datetime.fromtimestamp(self.mtime).date(), "mtime"

    @property
    def deadline(self) -> dt.date:
        """The last day the archive is on the server (5 working days, holidays counted)."""
        return window_last_day(self.deposit[0], WINDOW_DAYS)


@dataclass(frozen=True)
class ArchiveFetch:
    """What happened to one remote archive."""

    name: str
    status: Status
    size: int
    remote_mtime: dt.datetime
    deposit: dt.date
    """The day the 5-working-day window is counted from."""
    window_from: str
    """``name`` (the date in the archive's name) or ``mtime`` (the server's file time)."""
    deadline: dt.date
    """The window's last working day."""
    path: Path | None = None
    """The local copy, when there is one."""
    resumed_from: int = 0
    """Bytes already in the ``.part`` when the successful attempt started."""
    transferred: int = 0
    attempts: int = 0
    seconds: float = 0.0
    message: str = ""

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(
            status=str(self.status),
            remote_mtime=self.remote_mtime.isoformat(),
            deposit=self.deposit.isoformat(),
            deadline=self.deadline.isoformat(),
            path=str(self.path) if self.path else None,
        )
        return out


@dataclass(frozen=True)
class FetchWarning:
    code: WarningCode
    date: dt.date
    message: str
    archive: str | None = None
    missed: tuple[dt.date, ...] = ()
    """For ``missed``: every expected deposit date of the gap."""

    def to_dict(self) -> dict:
        return {
            "code": str(self.code),
            "date": self.date.isoformat(),
            "message": self.message,
            "archive": self.archive,
            "missed": [d.isoformat() for d in self.missed],
        }


@dataclass(frozen=True)
class FetchResult:
    """One run: every remote archive's fate, the deadline warnings, the ingestion."""

    server: str
    remote_dir: str
    dest: Path
    archives: tuple[ArchiveFetch, ...]
    warnings: tuple[FetchWarning, ...] = ()
    ingested: tuple[IngestResult, ...] = ()
    ignored: tuple[str, ...] = ()
    """Remote entries left alone: not regular files, or names outside the nomenclature."""
    seconds: float = 0.0

    @property
    def failed(self) -> tuple[ArchiveFetch, ...]:
        return tuple(a for a in self.archives if a.status == Status.FAILED)

    @property
    def downloaded(self) -> tuple[ArchiveFetch, ...]:
        return tuple(a for a in self.archives if a.status in (Status.FETCHED, Status.RESUMED))

    def to_dict(self) -> dict:
        return {
            "server": self.server,
            "remote_dir": self.remote_dir,
            "dest": str(self.dest),
            "archives": [a.to_dict() for a in self.archives],
            "warnings": [w.to_dict() for w in self.warnings],
            "ingested": [r.to_dict() for r in self.ingested],
            "ignored": list(self.ignored),
            "seconds": self.seconds,
        }


# -- listing -------------------------------------------------------------------------------


def _safe_name(name: str) -> bool:
    """A plain file name: a server cannot make us write outside the destination."""
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and PurePosixPath(name).name == name
    )


def select_archives(
    entries: Iterable[paramiko.SFTPAttributes],
) -> tuple[list[RemoteArchive], list[str]]:
    """Split a listing into archives (oldest first) and the names left alone.

    Kept: regular files (links already resolved by the caller) with a plain name following the
    nomenclature.
    """
    archives, ignored = [], []
    for e in entries:
        name = e.filename
        if not _safe_name(name) or e.st_mode is None or not stat.S_ISREG(e.st_mode):
            ignored.append(name)
            continue
        try:
            n = parse_archive_name(name)
        except NamingError:
            ignored.append(name)
            continue
        archives.append(
            RemoteArchive(
                name, int(e.st_size or 0), int(e.st_mtime or 0), n.perimeter, n.extraction, n.date
            )
        )
    archives.sort(key=lambda a: (a.deposit[0], a.extraction != "complete", a.name))
    return archives, sorted(ignored)


def _listing(sftp: paramiko.SFTPClient, remote_dir: str) -> list[paramiko.SFTPAttributes]:
    """``listdir_attr``, with symbolic links replaced by what they point to."""
    entries = []
    for e in sftp.listdir_attr(remote_dir):
        if e.st_mode is not None and stat.S_ISLNK(e.st_mode):
            with contextlib.suppress(OSError):
                target = sftp.stat(posixpath.join(remote_dir, e.filename))
                target.filename = e.filename
                e = target
        entries.append(e)
    return entries


# -- the ledger ----------------------------------------------------------------------------


@dataclass
class Ledger:
    """``DEST/.ent-audit-fetch.json``: remote size, mtime and local SHA-256 per archive name."""

    path: Path
    entries: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, dest: Path) -> Ledger:
        path = dest / LEDGER
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as err:
            raise FetchError(
                f"{path}: registre illisible ({err}); supprimez-le pour repartir "
                "de zéro (les archives déjà là seront reconnues par leur taille)"
            ) from None
        return cls(path, dict(data.get("archives", {})))

    def matches(self, archive: RemoteArchive) -> dict | None:
        """The entry for this very remote file (same name, size and mtime), if any."""
        e = self.entries.get(archive.name)
        if e and e["size"] == archive.size and e["mtime"] == archive.mtime:
            return e
        return None

    def record(self, archive: RemoteArchive, digest: str | None) -> None:
        """Note a download started (``digest`` None) or finished; written atomically, 0600."""
        self.entries[archive.name] = {
            "size": archive.size,
            "mtime": archive.mtime,
            "sha256": digest,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"version": 1, "archives": self.entries}, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


# -- one download --------------------------------------------------------------------------


_TRANSIENT = (OSError, EOFError, paramiko.SSHException, UnreachableError)
"""A dropped connection, a timeout, a server that went away: retried after a pause."""


class _Session:
    """One SSH connection and its SFTP channel, opened on demand and again after a drop."""

    def __init__(self, server: Server, keys: list[paramiko.PKey], timeout: float) -> None:
        self.server, self.keys, self.timeout = server, keys, timeout
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._client = connect(self.server, self.keys, timeout=self.timeout)
            try:
                self._sftp = open_sftp(self._client, self.timeout)
            except (OSError, EOFError, paramiko.SSHException) as err:
                self.drop()
                raise UnreachableError(
                    self.server.host,
                    self.server.port,
                    f"{self.server.label}: sous-système SFTP indisponible "
                    f"({err or type(err).__name__})",
                ) from None
        return self._sftp

    def reachable(self) -> bool:
        """Connected, or able to connect again now."""
        with contextlib.suppress(*_TRANSIENT):
            self.sftp()
        return self._sftp is not None

    def drop(self) -> None:
        for closable in (self._sftp, self._client):
            with contextlib.suppress(Exception):
                if closable is not None:
                    closable.close()
        self._sftp = self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()


class _RemoteChanged(Exception):
    """The remote file changed during the transfer: the copy cannot be trusted."""


@dataclass(frozen=True)
class _Options:
    remote_dir: str
    retries: int
    backoff: float
    progress: bool | None
    on_progress: ProgressHook | None


def _copy(
    remote: paramiko.SFTPFile,
    out,
    done: int,
    archive: RemoteArchive,
    bar: tqdm,
    on_progress: ProgressHook | None,
) -> int:
    """Append ``remote`` from ``done`` to its end, window by window; return the bytes now held.

    Each window's read requests are sent at once by paramiko's prefetch (one round trip per
    window, not per 32 KB request) and bounded, so memory stays at a few MB whatever the size.
    """
    while done < archive.size:
        end = min(done + WINDOW, archive.size)
        remote.seek(done)
        remote.prefetch(end)
        while done < end:
            data = remote.read(min(CHUNK, end - done))
            if not data:
                return done
            out.write(data)
            done += len(data)
            bar.update(len(data))
            if on_progress:
                out.flush()
                on_progress(archive.name, done, archive.size)
    return done


def _transfer(sftp: paramiko.SFTPClient, archive: RemoteArchive, part: Path, opts: _Options) -> int:
    """Append the rest of the remote file to ``part``; return the offset it started from."""
    remote_path = posixpath.join(opts.remote_dir, archive.name)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "ab") as out:
        offset = out.seek(0, os.SEEK_END)
        remote = sftp.open(remote_path, "r")  # read only: nothing is ever written there
        try:
            with tqdm(
                total=archive.size,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=archive.name,
                leave=False,
                disable=None if opts.progress is None else not opts.progress,
            ) as bar:
                done = _copy(remote, out, offset, archive, bar, opts.on_progress)
            out.flush()
            os.fsync(out.fileno())
            now = sftp.stat(remote_path)  # raises when the connection is gone: retried
        finally:
            with contextlib.suppress(Exception):
                remote.close()
    if (now.st_size, now.st_mtime) != (archive.size, archive.mtime) or done > archive.size:
        raise _RemoteChanged(
            "le fichier a changé sur le serveur pendant le transfert (il est "
            "peut-être en cours de dépôt): nouvel essai au prochain passage"
        )
    if done < archive.size:
        raise EOFError(f"lecture interrompue à l'octet {done} sur {archive.size}")
    return offset


@contextlib.contextmanager
def _quiet_prefetch_threads() -> Iterator[None]:
    """A dropped connection also ends paramiko's prefetch thread, with a traceback on stderr:
    log that one at debug level instead (the transfer itself reports the drop)."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        tb, in_prefetch = args.exc_traceback, False
        while tb is not None:
            in_prefetch |= tb.tb_frame.f_code.co_name == "_prefetch_thread"
            tb = tb.tb_next
        if in_prefetch and isinstance(args.exc_value, _TRANSIENT):
            log.debug("fin du préchargement paramiko: %s", args.exc_value)
        else:
            previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        if threading.excepthook is hook:
            threading.excepthook = previous


def _resume_offset(part: Path, ledger: Ledger, archive: RemoteArchive) -> tuple[int, str]:
    """Bytes of ``part`` worth keeping: a prefix of this very remote file, or nothing."""
    if not part.exists():
        return 0, ""
    size = part.stat().st_size
    entry = ledger.matches(archive)
    if entry is not None and entry["sha256"] is None and size <= archive.size:
        return size, ""
    part.unlink()
    return 0, "copie partielle écartée: le fichier a changé sur le serveur depuis"


def _download(
    session: _Session, archive: RemoteArchive, dest: Path, ledger: Ledger, opts: _Options
) -> ArchiveFetch:
    """Download one archive into ``NAME.part``, retrying, then rename it to ``NAME``."""
    t0 = time.perf_counter()
    part = dest / (archive.name + PART)
    kept, note = _resume_offset(part, ledger, archive)
    ledger.record(archive, None)
    start = kept
    attempts = 0
    while True:
        attempts += 1
        try:
            start = _transfer(session.sftp(), archive, part, opts)
            break
        except _RemoteChanged as err:
            return _outcome(
                archive,
                Status.FAILED,
                attempts=attempts,
                message=str(err),
                seconds=time.perf_counter() - t0,
            )
        except _TRANSIENT as err:
            session.drop()
            reason = str(err) or type(err).__name__
            if attempts > opts.retries:
                return _outcome(
                    archive,
                    Status.FAILED,
                    attempts=attempts,
                    seconds=time.perf_counter() - t0,
                    message=f"abandon après {attempts} essai(s): {reason}; "
                    f"{_size(part)} octets gardés dans {part.name} pour "
                    "reprendre au prochain passage",
                )
            pause = min(opts.backoff * 2 ** (attempts - 1), MAX_BACKOFF)
            log.warning(
                "%s: connexion perdue (%s), essai %d dans %.1f s",
                archive.name,
                reason,
                attempts + 1,
                pause,
            )
            time.sleep(pause)
    final = dest / archive.name
    os.replace(part, final)
    os.utime(final, (archive.mtime, archive.mtime))
    ledger.record(archive, sha256(final))
    status = Status.RESUMED if start else Status.FETCHED
    message = "; ".join(m for m in (note, f"reprise à l'octet {start}" if start else "") if m)
    return _outcome(
        archive,
        status,
        path=final,
        resumed_from=start,
        transferred=archive.size - kept,
        attempts=attempts,
        seconds=time.perf_counter() - t0,
        message=message,
    )


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _outcome(archive: RemoteArchive, status: Status, **kw) -> ArchiveFetch:
    return ArchiveFetch(
        archive.name,
        status,
        archive.size,
        dt.datetime.fromtimestamp(archive.mtime, dt.UTC),
        *archive.deposit,
        archive.deadline,
        **kw,
    )


def _skip(
    archive: RemoteArchive, dest: Path, ledger: Ledger, ingested: set[str]
) -> ArchiveFetch | None:
    """The archive's outcome when nothing needs downloading, else None."""
    final = dest / archive.name
    if final.is_file() and final.stat().st_size == archive.size:
        return _outcome(archive, Status.PRESENT, path=final, message="même nom et même taille")
    entry = ledger.matches(archive)
    if entry is not None and entry["sha256"] in ingested:
        return _outcome(
            archive, Status.INGESTED, message="même nom, taille et date que l'archive ingérée"
        )
    return None


def _fetch_all(
    session: _Session,
    archives: Sequence[RemoteArchive],
    dest: Path,
    ledger: Ledger,
    ingested: set[str],
    opts: _Options,
) -> list[ArchiveFetch]:
    """Each archive in order; once the server is unreachable, the rest are not attempted."""
    results: list[ArchiveFetch] = []
    unreachable = ""
    for archive in archives:
        outcome = _skip(archive, dest, ledger, ingested)
        if outcome is None and unreachable:
            outcome = _outcome(
                archive, Status.FAILED, message=f"non tentée: serveur injoignable ({unreachable})"
            )
        elif outcome is None:
            outcome = _download(session, archive, dest, ledger, opts)
            if outcome.status == Status.FAILED and not session.reachable():
                unreachable = outcome.message
        _log(outcome)
        results.append(outcome)
    return results


def _log(a: ArchiveFetch) -> None:
    """One line per archive: name, status, sizes and time; never keys or passphrases."""
    level = logging.WARNING if a.status == Status.FAILED else logging.INFO
    log.log(
        level,
        "%s: %s, %d octets (%d transférés, %d essai(s), %.1f s) %s",
        a.name,
        a.status,
        a.size,
        a.transferred,
        a.attempts,
        a.seconds,
        a.message,
    )


# -- deadlines -----------------------------------------------------------------------------


def last_day_warnings(archives: Sequence[ArchiveFetch], today: dt.date) -> list[FetchWarning]:
    """Archives on the server whose window ends today."""
    out = []
    for a in archives:
        if a.deadline != today:
            continue
        safe = a.status != Status.FAILED
        state = "récupérée" if safe else "NON récupérée: à récupérer aujourd'hui"
        out.append(
            FetchWarning(
                WarningCode.LAST_DAY,
                today,
                f"{a.name}: dernier jour ouvré sur le serveur ({state})",
                a.name,
            )
        )
    return out


def _expected_between(
    before: dt.date, after: dt.date | None, cadence_days: int, today: dt.date
) -> list[dt.date]:
    """Deposits expected after ``before`` and not near ``after``, whose window is over."""
    step, slack = dt.timedelta(days=cadence_days), dt.timedelta(days=max(1, cadence_days // 2))
    out, expected = [], before + step
    while (after is None or expected <= after - slack) and window_last_day(expected) < today:
        out.append(expected)
        expected += step
    return out


def missed_windows(
    dates: Iterable[dt.date], cadence_days: int, today: dt.date, perimeter: str = ""
) -> list[FetchWarning]:
    """Deposits the cadence expected but the series lacks, once their window is over.

    ``dates`` are the extraction dates known for one perimeter (on the server, in the ledger,
    in the store). Between two known dates, or after the last one, a deposit is expected every
    ``cadence_days``; one with no known date within half a cadence of it is missed when its
    window (5 working days) ended before ``today``. One warning per gap, listing its dates.
    """
    if cadence_days < 1:
        raise FetchError(f"cadence de {cadence_days} jour(s): au moins 1")
    known = sorted(set(dates))
    where = f"{perimeter}: " if perimeter else ""
    out = []
    for before, after in zip(known, [*known[1:], None], strict=True):
        missed = _expected_between(before, after, cadence_days, today)
        if missed:
            days = ", ".join(f"{d:%d/%m/%Y}" for d in missed)
            out.append(
                FetchWarning(
                    WarningCode.MISSED,
                    missed[0],
                    f"{where}{len(missed)} dépôt(s) manqué(s) après celui du {before:%d/%m/%Y} "
                    f"(cadence {cadence_days} jours): attendu(s) le {days}; dernière fenêtre "
                    f"fermée le {window_last_day(missed[-1]):%d/%m/%Y}",
                    missed=tuple(missed),
                )
            )
    return out


def _known_dates(
    archives: Sequence[RemoteArchive], ledger: Ledger, store_names: Iterable[str]
) -> dict[str, set[dt.date]]:
    """Extraction dates per perimeter, from the server, the ledger and the store."""
    by_perimeter: dict[str, set[dt.date]] = {}
    for name in [*(a.name for a in archives), *ledger.entries, *store_names]:
        with contextlib.suppress(NamingError):
            n = parse_archive_name(name)
            if n.date is not None:
                by_perimeter.setdefault(n.perimeter, set()).add(n.date)
    return by_perimeter


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


def _list_remote(
    session: _Session, server: Server, remote_dir: str
) -> list[paramiko.SFTPAttributes]:
    try:
        return _listing(session.sftp(), remote_dir)
    except FileNotFoundError:
        raise SFTPError(
            server.host, server.port, f"{server.label}: dossier distant {remote_dir!r} introuvable"
        ) from None
    except _TRANSIENT as err:
        raise UnreachableError(
            server.host,
            server.port,
            f"{server.label}: liste de {remote_dir!r} impossible ({err or type(err).__name__})",
        ) from None


__all__ = [
    "ArchiveFetch",
    "FetchError",
    "FetchResult",
    "FetchWarning",
    "Ledger",
    "RemoteArchive",
    "Status",
    "WarningCode",
    "fetch",
    "last_day_warnings",
    "missed_windows",
    "select_archives",
]
