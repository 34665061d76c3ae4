"""What a fetch deals in: constants, statuses and warning codes, remote archives and the
results of a run."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from ent_audit.store.store import IngestResult
from ent_audit.transfer.workdays import WINDOW_DAYS, window_last_day

log = logging.getLogger("ent_audit.transfer.fetch")
"""One logger for the whole fetch (its records name ``ent_audit.transfer.fetch``)."""


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
