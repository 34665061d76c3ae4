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
from ent_audit.store import events, partial, pseudonym

VISIT_GAP_MINUTES = 30


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _frame(state: Path, meta: dict, name: str) -> str:
    """A frame of the state as SQL: its base rows no overlay record owns, then its overlay
    rows (:mod:`ent_audit.store.partial`), the same rows :meth:`Store.latest` reads."""
    base = f"SELECT * FROM read_parquet({_quote(state / partial.FRAMES_DIR / f'{name}.parquet')})"
    if name not in partial.layered(meta):
        return base
    folder = state / partial.OVERLAY_DIR
    keys = _quote(folder / f"{name}.keys.parquet")
    owned = []
    for kind, id_col, origin_col, origin in partial.owners(name):
        test = (
            f"{_ident(id_col)} IN (SELECT jointure FROM read_parquet({keys}) "
            f"WHERE kind = {_quote(kind)})"
        )
        if origin_col is not None:
            test += f" AND {_ident(origin_col)} = {_quote(origin)}"
        owned.append(f"coalesce({test}, false)")
    top = _quote(folder / f"{name}.parquet")
    return (
        f"{base} WHERE NOT ({' OR '.join(owned)}) "
        f"UNION ALL BY NAME SELECT * FROM read_parquet({top})"
    )


def _presence(state: Path, meta: dict) -> str:
    """The presence history as SQL, as :meth:`Store.presence` reads it."""
    base = f"SELECT * FROM read_parquet({_quote(state / partial.PRESENCE)})"
    if not meta.get("presence_overlay"):
        return base
    keys = _quote(state / partial.PRESENCE_KEYS)
    top = _quote(state / partial.PRESENCE_OVERLAY)
    seen = _quote(meta["presence_seen"])
    kept = (
        f"SELECT b.* FROM read_parquet({_quote(state / partial.PRESENCE)}) b "
        f"ANTI JOIN read_parquet({keys}) k USING (kind, pseudonym)"
    )
    return (
        "SELECT * REPLACE (CASE WHEN departed IS NULL "
        f"THEN CAST({seen} AS TIMESTAMP_NS) ELSE last_seen END AS last_seen) FROM ("
        f"{kept} UNION ALL BY NAME SELECT * FROM read_parquet({top}))"
    )


def connect(store, *, population: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the store's views (see the module)."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    with store._reading() as state:
        if state is None:
            raise StoreError(f"{store.path}: aucune extraction ingérée")
        meta = json.loads((state / "meta.json").read_text(encoding="utf-8"))
        for name in meta["frames"]:
            con.execute(f"CREATE VIEW {_ident(name)} AS {_frame(state, meta, name)}")
        con.execute(f"CREATE VIEW presence AS {_presence(state, meta)}")
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
