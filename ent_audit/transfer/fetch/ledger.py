"""The destination's ledger: what was downloaded, from which remote size and mtime, with
which SHA-256 (see the package's docstring)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ent_audit.exceptions import FetchError
from ent_audit.transfer.fetch.model import LEDGER, RemoteArchive

log = logging.getLogger("ent_audit.transfer.fetch")
"""One logger for the whole fetch (its records name ``ent_audit.transfer.fetch``)."""


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
