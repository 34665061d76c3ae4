"""Lean reads: a stage that reads only the Parquet columns it needs gets the same answers."""

from __future__ import annotations

import pandas as pd
import pytest

from ent_audit.aaf import population
from ent_audit.analyses import overview
from ent_audit.analyses.activity import indicators
from ent_audit.store.store import Store, StoreError, columns
from ent_audit.synth import write


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """A Complet then a Delta of a small generated perimeter (deletions, moves, new pupils)."""
    tmp = tmp_path_factory.mktemp("lean")
    synth = write(tmp / "synth", seed=5, schools=4, pupils=120, part_size=50_000)
    st = Store(tmp / "store")
    st.ingest(synth.archives[:2])
    return st


def test_a_lean_snapshot_gives_the_same_memberships_as_the_whole_state(store):
    full = store.latest()
    lean = store.latest(columns=population.NEEDS)
    assert set(lean.students.columns) == {"jointure", "op"}
    assert lean.counts() == full.counts()
    pd.testing.assert_frame_equal(population.memberships(lean), population.memberships(full))


def test_the_overview_counts_the_same_from_categorical_memberships(store):
    snap = store.latest(columns=overview.COLUMNS)
    strings = population.memberships(snap)
    codes = population.memberships(snap, categorical=True)
    assert codes.memory_usage(deep=True).sum() < strings.memory_usage(deep=True).sum() / 2
    assert overview.people(snap, codes) == overview.people(snap, strings)
    for table in (overview.by_circonscription, overview.by_commune):
        pd.testing.assert_frame_equal(table(snap, codes), table(snap, strings))
    assert overview.figures(snap, store.history(), codes) == overview.figures(
        snap, store.history(), strings
    )


def test_the_presence_read_with_categoricals_holds_the_same_values(store):
    plain = store.presence(columns=("pseudonym", "kind", "uai", "departed"))
    cats = store.presence(
        columns=("pseudonym", "kind", "uai", "departed"), categorical=("kind", "uai")
    )
    assert all(isinstance(cats[c].dtype, pd.CategoricalDtype) for c in ("kind", "uai"))
    pd.testing.assert_frame_equal(
        cats.astype({"kind": plain["kind"].dtype, "uai": plain["uai"].dtype}), plain
    )
    empty = Store(store.path.parent / "empty").presence(
        columns=("kind", "uai"), categorical=("kind",)
    )
    assert isinstance(empty["kind"].dtype, pd.CategoricalDtype) and empty.empty


def test_the_jointures_of_some_frames_only(store):
    every = store.jointures()
    some = store.jointures(["students"])
    assert list(some) == ["students"]
    pd.testing.assert_series_equal(some["students"], every["students"])


def test_each_stage_s_columns_give_its_answers(store):
    full = store.latest()
    lean = store.latest(columns=overview.COLUMNS)
    assert overview.people(lean) == overview.people(full)
    pd.testing.assert_frame_equal(
        overview.by_circonscription(lean), overview.by_circonscription(full)
    )
    pd.testing.assert_frame_equal(overview.by_commune(lean), overview.by_commune(full))
    pd.testing.assert_frame_equal(overview.by_level(lean), overview.by_level(full))
    pd.testing.assert_frame_equal(overview.by_cycle(lean), overview.by_cycle(full))
    assert overview.figures(lean, store.history()) == overview.figures(full, store.history())
    checks = dict(today=full.extraction.date, max_age_days=30)
    assert overview.checks(lean, **checks) == overview.checks(full, **checks)
    key = store.key
    lean = store.latest(columns=indicators.COLUMNS)
    a, b = indicators.population_frames(lean, key), indicators.population_frames(full, key)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])


def test_frames_not_named_keep_their_rows_and_a_forgotten_column_fails_loudly(store):
    counts = store.latest(columns={})
    assert counts.counts() == store.latest().counts()
    assert counts.students.columns.empty
    with pytest.raises(KeyError):
        counts.students["level"]
    with pytest.raises(StoreError, match=r"students\.parquet"):
        store.latest(columns={"students": ("no_such_column",)})


def test_columns_unions_needs_and_every_column_wins():
    assert columns({"students": ("a",)}, {"students": ("b", "a"), "staff": None}) == {
        "students": ("a", "b"),
        "staff": None,
    }
    assert columns({"staff": None}, {"staff": ("a",)}) == {"staff": None}


def test_a_reader_holds_the_state_until_it_is_done(store):
    """``Store.reading``: the readers' shared lock is held, so an ingestion cannot switch the
    state (and delete its files) between two reads of the same reader."""
    import fcntl

    with store.reading() as reader, open(store.path / "read.lock", "rb") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        full = store.latest()
        pd.testing.assert_frame_equal(
            reader.frame("students", ["jointure", "ine"]), full.students[["jointure", "ine"]]
        )
        assert reader.snapshot(population.NEEDS).counts() == full.counts()
    with open(store.path / "read.lock", "rb") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
