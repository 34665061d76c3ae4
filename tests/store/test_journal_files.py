"""A Complet's journal from the states' files (``journal.complete_changes``, ``store.sides``)
gives the rows the in-memory journal gives, in the same order: over a state with Deltas'
overlays, with and without reconciliation, the new side in memory or staged on disk, in one
chunk or many, for every kind's changed, appeared and disappeared records."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import ent_audit
from ent_audit.aaf import schema
from ent_audit.store import Store, journal
from ent_audit.store.sides import FileSide, MemorySide
from ent_audit.synth import series

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A store after a Complet and two Deltas (overlays), and the next Complet, parsed."""
    tmp = tmp_path_factory.mktemp("journal-files")
    synth = series.write(tmp / "synth", seed=5, schools=6, pupils=400)
    first, *deltas, last = synth.archives
    store = Store(tmp / "store")
    results = store.ingest([first, *deltas], overlay_days=30)
    assert [r.status for r in results] == ["ingested"] * 3
    assert store.read_meta(store.current()).get("overlay")  # a base with overlays
    return store, ent_audit.load(last, workers=1)


def _sides(store: Store, new, tmp_path, staged: bool):
    state = store.current()
    before = FileSide(state, store.read_meta(state))
    if not staged:
        return before, MemorySide(new)
    staging = store.stage(new)
    staging.finish()
    return before, FileSide(staging.path, store.read_meta(staging.path))  # as ingest does


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_categorical=False)


@pytest.mark.parametrize("staged", [False, True], ids=["memory", "staged"])
@pytest.mark.parametrize("reconcile", [False, True])
def test_the_next_complet_gives_the_in_memory_rows(built, tmp_path, staged, reconcile):
    store, new = built
    before, after = _sides(store, new, tmp_path, staged)
    want = journal.changes(store.latest(), new, new, store.key, reconcile=reconcile)
    assert len(want) and want["divergence"].all() == reconcile
    got = journal.complete_changes(before, after, store.key, reconcile=reconcile)
    _same(got, want)


def _school_year(state):
    """``state`` a school year later, by hand: every kind changed, some records gone, some
    new; shown and masked values; single and multi-valued attributes."""
    s = state.students.copy()
    s["level"] = s["level"].map({"CP": "CE1", "CE1": "CE2", "CE2": "CM1"}).fillna(s["level"])
    s.loc[s.index[::7], "last_name"] = "Autrenom"  # masked
    s = s.iloc[5:]  # five pupils left
    fresh = state.students.iloc[:3].copy()
    fresh["jointure"] = ["new-1", "new-2", "new-3"]  # three arrived
    s = pd.concat([s, fresh], ignore_index=True)
    links = dict(state.links)
    sc = links["student_class"].copy()
    sc.loc[sc.index[::3], "class_id"] = "NOUVELLE"
    links["student_class"] = sc
    sg = links["student_guardian"].copy()
    sg.loc[sg.index[::11], "link_code"] = "90"
    links["student_guardian"] = sg.iloc[2:]  # two links gone: a guardian's pupils too
    sf = links["staff_function"].copy()
    sf.loc[sf.index[::2], "code"] = "DIR"
    links["staff_function"] = sf
    g = state.guardians.copy()
    g.loc[g.index[::5], "mail"] = "x@y.fr"
    g = g.iloc[:-4]
    st = state.structures.copy()
    st.loc[st.index[0], "commune"] = "Ailleurs"
    st.loc[st.index[1], "name"] = "Autre nom"
    staff = state.staff.copy()
    staff.loc[staff.index[::3], "is_teacher"] = ~staff["is_teacher"].iloc[::3].astype(bool)
    return dataclasses.replace(
        state, students=s, guardians=g, structures=st, staff=staff, links=links
    )


@pytest.mark.parametrize("chunk", [150, 100_000], ids=["many-chunks", "one-chunk"])
def test_a_school_year_of_changes_gives_the_in_memory_rows_in_chunks(built, chunk):
    store, new = built
    year = _school_year(new)
    state = store.current()
    before = FileSide(state, store.read_meta(state))
    want = journal.changes(store.latest(), year, year, store.key)
    got = journal.complete_changes(before, MemorySide(year), store.key, chunk=chunk)
    _same(got, want)
    kinds = {(k, str(o)) for k, o in zip(want["kind"], want["operation"], strict=True)}
    assert {
        ("students", "appeared"), ("students", "disappeared"), ("students", "changed"),
        ("guardians", "disappeared"), ("guardians", "changed"),
        ("structures", "changed"), ("staff", "changed"),
    } <= kinds  # fmt: skip
    assert want["masked"].any() and want["after"].notna().any()
    assert len(want) > 3 * chunk or chunk == 100_000


def test_equal_states_give_no_row(built):
    store, _ = built
    state = store.current()
    side = FileSide(state, store.read_meta(state))
    assert journal.complete_changes(side, MemorySide(store.latest()), store.key).empty


def test_the_fingerprints_are_equal_on_disk_and_in_memory(built):
    store, _ = built
    state = store.current()
    files, memory = FileSide(state, store.read_meta(state)), MemorySide(store.latest())
    for kind in schema.KINDS.values():
        compared = journal._compared(files, memory, kind)
        a, b = files.fingerprints(kind, compared), memory.fingerprints(kind, compared)
        assert a.jointures.equals(b.jointures), kind.name
        assert np.array_equal(a.hashes, b.hashes), kind.name
