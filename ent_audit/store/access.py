"""The access journal: who looked at which school's people in clear, and when.

Each unmasked view of the roster explorer appends one JSON line to
``STORE/access-journal.jsonl`` (0600): date, time, system user, school UAI and what was shown
(tabs and kinds of data, never a value), so the DPO can answer "who looked at this school's
pupils". The journal holds no personal data of the people looked at, but it is a log about
the coordinators: :func:`purge` drops lines older than the retention (``ent-audit purge``
and the retention self-audit call :func:`overdue` / :func:`purge`).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ent_audit.io import open_private, write_atomic

JOURNAL = "access-journal.jsonl"
KEEP_DAYS = 365
"""Lines are kept this many days (a year: the CNIL's usual span for access logs)."""
COLUMNS = ("date", "time", "user", "uai", "shown")


def journal_path(store: Path | str) -> Path:
    return Path(store) / JOURNAL


def record(
    store: Path | str,
    uai: str,
    shown: Iterable[str],
    *,
    user: str | None = None,
    when: dt.datetime | None = None,
) -> dict:
    """Append one line for one unmasked view of school ``uai`` (``shown``: what kinds of data
    it displayed, in French) and return it. The line is written and fsynced before the view
    is shown."""
    now = (when or dt.datetime.now().astimezone()).replace(microsecond=0)
    line = {
        "date": now.date().isoformat(),
        "time": now.timetz().isoformat(),
        "user": user or getpass.getuser(),
        "uai": uai,
        "shown": list(shown),
    }
    with open_private(journal_path(store), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return line


def read(store: Path | str) -> pd.DataFrame:
    """The journal, oldest first (columns :data:`COLUMNS`; empty when nothing was logged)."""
    path = journal_path(store)
    if not path.exists():
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS})
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def overdue(store: Path | str, as_of: dt.date, keep_days: int = KEEP_DAYS) -> pd.DataFrame:
    """Lines older than ``keep_days`` on ``as_of``: what :func:`purge` would drop."""
    j = read(store)
    if j.empty:
        return j
    dates = pd.to_datetime(j["date"]).dt.date
    return j[(dates < as_of - dt.timedelta(days=keep_days)).to_numpy(dtype=bool)]


def purge(store: Path | str, as_of: dt.date, keep_days: int = KEEP_DAYS) -> int:
    """Drop the lines older than ``keep_days`` (the file rewritten atomically, 0600); the
    number of lines dropped."""
    path = journal_path(store)
    if not path.exists():
        return 0
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    limit = as_of - dt.timedelta(days=keep_days)
    kept = [x for x in lines if dt.date.fromisoformat(json.loads(x)["date"]) >= limit]
    if len(kept) != len(lines):
        write_atomic(path, "".join(x + "\n" for x in kept))
    return len(lines) - len(kept)
