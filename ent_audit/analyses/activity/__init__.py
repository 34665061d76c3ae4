"""ENT activity: the pilot console's indicators (issue 14), from the provider's files.

- :mod:`.inputs`: the three inputs (event log CSV or JSON lines, account export, daily CSV),
  column mappings, French or English labels, malformed rows with file and line;
- :mod:`.convert`: event logs converted once to Parquet by month, pseudonymised, incremental;
- :mod:`.indicators`: DuckDB aggregation, every indicator at school, circonscription and
  département level, the checks.

:func:`from_store` is what the report calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

from ent_audit.analyses.activity import convert, indicators, inputs
from ent_audit.analyses.activity.convert import ImportResult, ImportStatus, events_glob
from ent_audit.analyses.activity.indicators import (
    ActivityResult,
    Period,
    SourceComparison,
    checks,
    compute,
    masked,
)
from ent_audit.analyses.activity.inputs import EventLog, FileReport, Malformed, Reason
from ent_audit.exceptions import ActivityInputError

__all__ = [
    "ActivityInputError",
    "ActivityResult",
    "EventLog",
    "FileReport",
    "ImportResult",
    "ImportStatus",
    "Malformed",
    "Period",
    "Reason",
    "SourceComparison",
    "checks",
    "compute",
    "convert",
    "events_glob",
    "from_store",
    "import_logs",
    "indicators",
    "inputs",
    "masked",
]


def _date(value: str | dt.date | None, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ActivityInputError(name, f"date {value!r} illisible (AAAA-MM-JJ)", name) from None


def import_logs(
    logs: Sequence[Path | str], store: Path | str, *, columns: Mapping[str, str] | None = None
) -> list[ImportResult]:
    """``ent-audit activity-import``: convert logs into ``STORE/activity`` (incremental)."""
    from ent_audit.store.store import Store

    st = Store(store, create=False)
    return convert.convert(logs, convert.activity_dir(st.path), st.key, columns=columns)


def from_store(
    store: Path | str,
    *,
    events: str | Sequence[str] = "",
    accounts: str = "",
    daily: str = "",
    period_start: str | dt.date = "",
    period_end: str | dt.date = "",
    open_threshold: int = 1,
    target: float = 0.8,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    small_cell: int = 5,
    run_dir: str | Path = "",
) -> ActivityResult:
    """The report's computation: the store's state and converted events (or raw logs given in
    ``events``, converted into ``run_dir`` for this run only), the account export and the
    daily CSV when given."""
    from ent_audit.store.store import Store

    st = Store(store, create=False)
    columns = dict(columns or {})
    unknown = sorted(set(columns) - {"events", "accounts", "daily"})
    if unknown:
        raise ActivityInputError(
            "columns", f"entrée inconnue {unknown[0]!r} (events, accounts, daily)", "columns"
        )
    if open_threshold < 1:
        raise ActivityInputError("open_threshold", "au moins 1 compte", "open_threshold")
    logs = [events] if isinstance(events, str) and events else list(events or [])
    if logs:
        if not run_dir:
            raise ActivityInputError(
                "events", "un journal brut se convertit dans le dossier de l'exécution: "
                "passez run_dir (ent-audit report le fait)", "run_dir",
            )  # fmt: skip
        folder = Path(run_dir) / "activity"
        results = convert.convert(logs, folder, st.key, columns=columns.get("events"))
        reports = tuple(r.report for r in results if r.report is not None)
        reports += tuple(
            inputs.FileReport.from_dict(e["report"])
            for e in convert.ledger(folder)
            if e["file"] not in {r.file for r in reports}
        )
    else:
        folder = convert.activity_dir(st.path)
        reports = tuple(convert.reports(folder))
    return compute(
        lambda: st.latest(columns=indicators.COLUMNS),  # read, reduced, released: once
        st.key,
        events=events_glob(folder),
        # Each read when the computation reaches it, reduced and released (see compute).
        accounts=(lambda: inputs.read_accounts(accounts, columns.get("accounts")))
        if accounts
        else None,
        daily=(lambda: inputs.read_daily(daily, columns.get("daily"))) if daily else None,
        period_start=_date(period_start, "period_start"),
        period_end=_date(period_end, "period_end"),
        open_threshold=open_threshold,
        target=target,
        inputs=reports,
        small_cell=small_cell,
    )
