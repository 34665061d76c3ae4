"""The 5-working-day window: archives on their last day, deposits whose window was missed."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Sequence

from ent_audit.aaf.naming import parse_archive_name
from ent_audit.exceptions import FetchError, NamingError
from ent_audit.transfer.fetch.ledger import Ledger
from ent_audit.transfer.fetch.model import (
    ArchiveFetch,
    FetchWarning,
    RemoteArchive,
    Status,
    WarningCode,
)
from ent_audit.transfer.workdays import window_last_day

log = logging.getLogger("ent_audit.transfer.fetch")
"""One logger for the whole fetch (its records name ``ent_audit.transfer.fetch``)."""


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
