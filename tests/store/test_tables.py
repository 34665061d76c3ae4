"""A state held lean (``Store.latest_tables``): whatever rows are cut out of it read back as
``Store.latest`` gives them, on a Complet's state and on a Delta's overlay."""

from __future__ import annotations

import pandas as pd
import pytest

from ent_audit.aaf import population
from ent_audit.aaf.frames import isin
from ent_audit.store.store import Store, columns
from ent_audit.store.tables import StateTables
from ent_audit.synth import series

COLUMNS = columns(
    population.NEEDS,
    {
        "students": ("level", "cycle", "last_name", "birth_date"),
        "student_guardian": ("seen_from", "link_code", "link_label"),
    },
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Store]:
    """The same perimeter's Complet, and that Complet with a Delta written as an overlay."""
    tmp = tmp_path_factory.mktemp("tables")
    first, delta, *_ = series.write(tmp / "synth", seed=3, schools=4, pupils=160).archives
    complete = Store(tmp / "complete")
    complete.ingest([first])
    layered = Store(tmp / "layered")
    layered.ingest([first])
    [r] = layered.ingest([delta], overlay_days=30)
    assert r.status == "ingested", r.message
    assert layered.read_meta(layered.current()).get("overlay")
    return {"complete": complete, "layered": layered}


@pytest.mark.parametrize("which", ["complete", "layered"])
def test_every_frame_reads_back_as_the_latest_snapshot_has_it(stores, which):
    store = stores[which]
    lean, full = store.latest_tables(COLUMNS), store.latest(columns=COLUMNS)
    assert set(lean.tables) == set(COLUMNS)
    for name in COLUMNS:
        pd.testing.assert_frame_equal(lean.frame(name), full.frames()[name], obj=name)
    made = StateTables.of(full, COLUMNS)
    for name in COLUMNS:
        pd.testing.assert_frame_equal(made.frame(name), full.frames()[name], obj=name)
    assert lean.counts() == {name: len(full.frames()[name]) for name in COLUMNS}


@pytest.mark.parametrize("which", ["complete", "layered"])
def test_a_cut_keeps_the_rows_of_its_ids_in_order_with_their_dtypes(stores, which):
    store = stores[which]
    lean, full = store.latest_tables(COLUMNS), store.latest(columns=COLUMNS)
    sg = full.links["student_guardian"]
    ids = [*sg["student"].drop_duplicates().iloc[::3], "nobody"]
    want = sg[isin(sg["student"], ids)].reset_index(drop=True)
    got = lean.frame("student_guardian", ("student", ids))
    assert len(got) and len(got) < len(sg)
    pd.testing.assert_frame_equal(got, want)
    # a missing value matches missing values only when asked for, as frames.isin does
    with_na = sg["guardian"].isna().any()
    asked = lean.frame("student_guardian", ("guardian", [None]))
    assert len(asked) == int(sg["guardian"].isna().sum()) if with_na else asked.empty
    assert lean.frame("students", ("jointure", [])).empty


def test_a_snapshot_of_cuts_holds_empty_frames_for_what_it_does_not_name(stores):
    store = stores["complete"]
    lean, full = store.latest_tables(COLUMNS), store.latest(columns=COLUMNS)
    one = full.students["jointure"].iloc[:2]
    part = lean.snapshot({"students": ("jointure", one), "structures": None})
    assert list(part.students["jointure"]) == list(one)
    pd.testing.assert_frame_equal(part.structures, full.structures)
    assert part.guardians.empty and list(part.guardians.columns) == list(full.guardians.columns)
    assert part.links["student_guardian"].empty
    assert part.extraction == full.extraction
