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

One module per job: :mod:`.model` (statuses, archives, results), :mod:`.listing` (the remote
folder), :mod:`.ledger`, :mod:`.download` (one resumable download, retries, skips),
:mod:`.deadlines` (the 5-working-day window) and :mod:`.run` (:func:`fetch`).
"""

from __future__ import annotations

from ent_audit.exceptions import FetchError
from ent_audit.transfer.fetch.deadlines import last_day_warnings, missed_windows
from ent_audit.transfer.fetch.ledger import Ledger
from ent_audit.transfer.fetch.listing import select_archives
from ent_audit.transfer.fetch.model import (
    CHUNK,
    LEDGER,
    LOCK,
    MAX_BACKOFF,
    PART,
    WINDOW,
    ArchiveFetch,
    FetchResult,
    FetchWarning,
    ProgressHook,
    RemoteArchive,
    Status,
    WarningCode,
)
from ent_audit.transfer.fetch.run import fetch

__all__ = [
    "CHUNK",
    "LEDGER",
    "LOCK",
    "MAX_BACKOFF",
    "PART",
    "WINDOW",
    "ArchiveFetch",
    "FetchError",
    "FetchResult",
    "FetchWarning",
    "Ledger",
    "ProgressHook",
    "RemoteArchive",
    "Status",
    "WarningCode",
    "fetch",
    "last_day_warnings",
    "missed_windows",
    "select_archives",
]
