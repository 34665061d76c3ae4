"""Ad-hoc SQL over the store: one view per frame of the state and per activity table."""

from __future__ import annotations

import json

import pytest
from activity_helpers import build

from ent_audit.store.store import Store


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    g = build(tmp_path_factory.mktemp("sql"), schools=8, pupils=600, events=8000)
    g["truth"] = json.loads(g["files"].truth.read_text())
    return g


def test_one_view_per_frame_of_the_state(gen):
    store = Store(gen["store"], create=False)
    snap = store.latest()
    with store.duckdb(population=False) as con:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() "
                                           "WHERE NOT internal").fetchall()}  # fmt: skip
        assert set(snap.frames()) <= views
        for name, df in snap.frames().items():
            assert con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] == len(df), name
    history = store.sql("SELECT archive, extraction FROM extractions", population=False)
    assert history["archive"].tolist() == [gen["synth"].archives[-1].name]
    presence = store.sql("SELECT count(*) AS n FROM presence", population=False)
    assert presence["n"][0] == len(store.presence())


def test_activity_views_events_visits_imports_and_population(gen):
    store = Store(gen["store"], create=False)
    rows = sum(r.report.rows for r in gen["imported"])
    assert store.sql("SELECT count(*) AS n FROM events")["n"][0] == rows
    imports = store.sql("SELECT * FROM activity_imports ORDER BY file")
    assert imports["rows"].sum() == rows and imports["malformed"].sum() == 4
    # Visits of people known to the state, at its schools, over the whole generated span.
    visits = store.sql(
        """SELECT count(*) AS n FROM visits v
        WHERE v.user IN (SELECT user FROM population)
          AND v.uai IN (SELECT uai FROM population WHERE is_school)"""
    )["n"][0]
    assert visits == gen["truth"]["visits"]
    by_circ = store.sql(
        """SELECT circonscription, count(DISTINCT e.user) AS visitors
        FROM events e JOIN (SELECT DISTINCT uai, circonscription FROM population
                            WHERE is_school) s USING (uai)
        WHERE e.user IN (SELECT user FROM population) GROUP BY ALL"""
    )
    assert dict(zip(by_circ["circonscription"], by_circ["visitors"], strict=True)) == {
        c: t["unique_visitors"] for c, t in gen["truth"]["by_circonscription"].items()
    }
    cols = set(store.sql("SELECT * FROM population LIMIT 1").columns)
    assert "jointure" not in cols and {"user", "uai", "profile", "teacher"} <= cols


def test_a_store_without_activity_has_an_empty_events_view(tmp_path, gen):
    store = Store(tmp_path / "s")
    store.ingest([gen["synth"].archives[-1]])
    assert store.sql("SELECT count(*) AS n FROM visits", population=False)["n"][0] == 0
    assert store.sql("SELECT count(*) AS n FROM activity_imports", population=False)["n"][0] == 0
