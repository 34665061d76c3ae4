"""Ad-hoc SQL over the store for the coordinator: DuckDB views, nothing loaded into pandas.

One view per frame of the current state (``students``, ``structures``, ``person_structure``…),
``presence`` (the pseudonymous history), ``extractions`` (what was ingested), and the activity
tables: ``events`` (the converted events, user ids as pseudonyms, ``month`` partition),
``visits`` (the same events cut into visits by the 30-minute rule) and ``activity_imports``
(the converted logs). With ``population=True`` (default) ``population`` holds every membership
with its person's pseudonym (``user``), so events join the AAF state: ``events JOIN population
USING (user)``.

The views read the files of the state live when the connection was made: after an ingestion,
open a new connection.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from ent_audit.exceptions import StoreError
from ent_audit.store import events, pseudonym

VISIT_GAP_MINUTES = 30


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(store, *, population: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the store's views (see the module)."""
    from ent_audit.store.store import FRAMES_DIR

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    with store._reading() as state:
        if state is None:
            raise StoreError(f"{store.path}: aucune extraction ingérée")
        meta = json.loads((state / "meta.json").read_text(encoding="utf-8"))
        for name in meta["frames"]:
            path = state / FRAMES_DIR / f"{name}.parquet"
            con.execute(f"CREATE VIEW {_ident(name)} AS SELECT * FROM read_parquet({_quote(path)})")
        con.execute(
            "CREATE VIEW presence AS SELECT * FROM read_parquet("
            f"{_quote(state / 'presence.parquet')})"
        )
        extractions = pd.DataFrame(
            json.loads((state / "extractions.json").read_text(encoding="utf-8"))
        ).drop(columns=["counts", "state_counts"], errors="ignore")
    con.register("_extractions", extractions)
    con.execute("CREATE TABLE extractions AS SELECT * FROM _extractions")
    con.unregister("_extractions")
    folder = events.activity_dir(store.path)
    files = list((folder / events.EVENTS).glob("month=*/*.parquet"))
    if files:
        con.execute(
            "CREATE VIEW events AS SELECT * FROM read_parquet("
            f"{_quote(events.events_glob(folder))}, hive_partitioning = true)"
        )
    else:
        con.execute(
            "CREATE VIEW events AS SELECT NULL::TIMESTAMP ts, NULL::VARCHAR user, "
            "NULL::VARCHAR profile, NULL::VARCHAR uai, NULL::VARCHAR event, "
            "NULL::VARCHAR application, NULL::VARCHAR device, NULL::VARCHAR AS month WHERE false"
        )
    con.execute(
        f"""CREATE VIEW visits AS SELECT user, profile, uai, device, ts AS start FROM (
            SELECT *, ts - lag(ts) OVER (PARTITION BY user ORDER BY ts) AS gap FROM events)
        WHERE gap IS NULL OR gap > INTERVAL {VISIT_GAP_MINUTES} MINUTE"""
    )
    imports = pd.DataFrame(
        [
            {
                "file": e["file"],
                "sha256": e["sha256"],
                "imported_at": e["imported_at"],
                "rows": e["report"]["rows"],
                "malformed": e["report"]["malformed_count"],
                "months": ",".join(sorted(e["months"])),
            }
            for e in events.ledger(folder)
        ],
        columns=["file", "sha256", "imported_at", "rows", "malformed", "months"],
    )
    con.register("_imports", imports)
    con.execute("CREATE TABLE activity_imports AS SELECT * FROM _imports")
    con.unregister("_imports")
    if population:
        from ent_audit.aaf.population import NEEDS, memberships

        snap = store.latest(columns=NEEDS)
        m = memberships(snap)
        user = pd.Series(pd.NA, index=m.index, dtype="string")
        for kind, idx in m.groupby("kind", observed=True).groups.items():
            user[idx] = pseudonym.pseudonymise(store.key, str(kind), m.loc[idx, "jointure"])
        pop = m.drop(columns=["jointure"]).assign(user=user)
        con.register("_population", pop)
        con.execute("CREATE TABLE population AS SELECT * FROM _population")
        con.unregister("_population")
    return con
