"""One download: resumable ``.part`` files, retries with backoff, a remote file that
changed under us; and the decision to skip (present, ingested)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import posixpath
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import paramiko
from tqdm import tqdm

from ent_audit.io import sha256
from ent_audit.transfer.fetch.ledger import Ledger
from ent_audit.transfer.fetch.model import (
    CHUNK,
    MAX_BACKOFF,
    PART,
    WINDOW,
    ArchiveFetch,
    ProgressHook,
    RemoteArchive,
    Status,
)
from ent_audit.transfer.sftp import (
    Server,
    UnreachableError,
    connect,
    open_sftp,
)

log = logging.getLogger("ent_audit.transfer.fetch")
"""One logger for the whole fetch (its records name ``ent_audit.transfer.fetch``)."""


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
