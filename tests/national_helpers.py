"""Published activity summaries of drawn académies, for the national tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ent_audit.analyses import national
from ent_audit.synth import national as synth

PERIOD = (dt.date(2026, 9, 1), dt.date(2027, 7, 3))
STATE = dt.date(2026, 9, 14)


def publish(
    folder: Path, index: int, *, schools: int = 120, period=PERIOD, academie: str = "", **kw
) -> Path:
    """``folder`` holding the publication of drawn académie ``index``."""
    f = synth.academie(index, schools=schools, seed=7, **kw)
    table = national.publication(
        f.profiles, f.schools, academie=academie or f.academie, store=f"store{index:011d}",
        period=period, state_date=STATE,
    )  # fmt: skip
    national.write_publication(table, folder)
    return folder


def publications(tmp: Path, n: int = 3, **kw) -> list[Path]:
    return [publish(tmp / f"acad{i}", i, **kw) for i in range(n)]
