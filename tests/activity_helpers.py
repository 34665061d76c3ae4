"""A small generated perimeter with a term of activity, in a store, for the activity tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ent_audit.analyses import activity
from ent_audit.store.store import Store
from ent_audit.synth import write
from ent_audit.synth.activity import write_activity

START, END = dt.date(2026, 9, 1), dt.date(2026, 12, 18)


def build(tmp: Path, *, schools: int = 30, pupils: int = 3000, events: int = 60_000) -> dict:
    """Perimeter (its later Complet is the state), activity with truth, a store holding the
    state and the converted CSV logs."""
    synth = write(tmp / "synth", seed=3, schools=schools, pupils=pupils)
    files = write_activity(
        synth.archives[-1], tmp / "activity", seed=3, start=START, end=END, events=events,
        malformed=4,
    )  # fmt: skip
    store = tmp / "store"
    Store(store).ingest([synth.archives[-1]])
    imported = activity.import_logs(files.events_csv, store)
    return {"synth": synth, "files": files, "store": store, "imported": imported}
