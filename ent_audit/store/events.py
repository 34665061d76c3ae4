"""Where the store keeps the ENT activity it imported: converted event logs and their ledger.

``STORE/activity/events/month=YYYY-MM/*.parquet`` (user ids as the store's pseudonyms) and
``STORE/activity/imports.json`` (one entry per imported log, by SHA-256). The conversion
itself is :mod:`ent_audit.analyses.activity.convert`; readers (the SQL views, the reports)
only need these paths.
"""

from __future__ import annotations

import json
from pathlib import Path

ACTIVITY = "activity"
EVENTS = "events"
LEDGER = "imports.json"


def activity_dir(store: Path | str) -> Path:
    return Path(store) / ACTIVITY


def events_glob(folder: Path | str) -> str:
    """The converted events of an activity folder, for DuckDB's ``read_parquet``."""
    return str(Path(folder) / EVENTS / "month=*" / "*.parquet")


def ledger(folder: Path | str) -> list[dict]:
    """The imported logs, oldest first (empty before any import)."""
    path = Path(folder) / LEDGER
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
