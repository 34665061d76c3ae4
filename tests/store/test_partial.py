"""A Delta written as an overlay over the state's base (``ent_audit.store.partial``) reads as
the Delta applied to the whole state, by every reader (pandas and SQL); the base's replaced
rows are gone at the next whole write: a Delta after ``--overlay-days``, a Complet, a purge."""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_presence import _date, _load
from test_store import tree_hash

from ent_audit import cli
from ent_audit.aaf import schema
from ent_audit.analyses import retention
from ent_audit.analyses.retention.evaluation import DETAIL_SEPARATOR
from ent_audit.exceptions import IngestAborted, StoreCorruptError, UnsortedHistoryError
from ent_audit.io import sha256
from ent_audit.store import journal, partial, presence, purge
from ent_audit.store import store as store_module
from ent_audit.store.apply import apply_delta
from ent_audit.store.store import Store, _write_frame
from ent_audit.synth import series

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("partial")
    return series.write(tmp / "synth", seed=7, schools=8, pupils=600).archives


def _canon(df: pd.DataFrame) -> pd.DataFrame:
    """Rows as comparable text, in one order: an overlay's rows come after the base's."""
    text = df.astype(object).where(df.notna(), "∅").astype(str)
    return text.sort_values(list(text.columns)).reset_index(drop=True)


def _same_frames(got, expected) -> None:
    for name, frame in expected.frames().items():
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)  # the store's own Parquet round trip
        want = pd.read_parquet(io.BytesIO(buf.getvalue()))
        have = got.frames()[name]
        assert list(have.columns) == list(want.columns), name
        assert [str(t) for t in have.dtypes] == [str(t) for t in want.dtypes], name
        pd.testing.assert_frame_equal(_canon(have), _canon(want), obj=name)


def _meta(store: Store) -> dict:
    return store.read_meta(store.current())


def test_deltas_as_overlays_read_as_applied_to_the_whole_state(archives, tmp_path):
    store = Store(tmp_path / "store")
    first, *deltas, last = archives
    [r] = store.ingest([first])
    history = store.presence()
    base_inodes = {p.name: p.stat().st_ino for p in (store.current() / "snapshot").iterdir()}
    for archive in deltas:
        before, book = store.latest(), store.journal()
        parts = {p.name: p.stat().st_ino for p in journal.parts(store.current())}
        incoming = _load(archive)
        [r] = store.ingest([archive], overlay_days=30)
        assert r.status == "ingested", r.message
        meta = _meta(store)
        assert meta["overlay"] and meta["overlay_since"] == _date(deltas[0]).isoformat()
        # the base is the Complet's, linked: the Delta wrote its overlay only
        now = store.current() / "snapshot"
        assert {p.name: p.stat().st_ino for p in now.iterdir()}.items() >= {
            n: i for n, i in base_inodes.items() if n[: -len(".parquet")] not in partial.WHOLE
        }.items()
        expected = apply_delta(before, incoming)
        got = store.latest()
        _same_frames(got, expected)
        rows = journal.changes(before, incoming, expected, store.key)
        pd.testing.assert_frame_equal(
            store.journal(), journal.append(book, rows), check_categorical=False
        )
        # the journal's earlier parts are linked, not rewritten: its cost is the Delta's rows
        now_parts = {p.name: p.stat().st_ino for p in journal.parts(store.current())}
        assert now_parts.items() >= parts.items() and len(now_parts) == len(parts) + 1
        history = presence.update(history, presence.present(got, store.key), _date(archive))
        pd.testing.assert_frame_equal(store.presence(), history)
        assert r.counts and _meta(store)["presence_seen"] == _date(archive).isoformat()
        last_entry = store.read_history(store.current())[-1]
        assert last_entry["state_counts"] == got.counts()
        assert store.verify().ok
        # SQL reads the same rows as pandas
        with store.duckdb(population=False) as con:
            for name, frame in got.frames().items():
                sql = con.execute(f'SELECT * FROM "{name}"').df()
                assert len(sql) == len(frame), name
                if name in ("students", "student_guardian", "person_structure"):
                    pd.testing.assert_frame_equal(
                        _canon(sql[list(frame.columns)]), _canon(frame), obj=name
                    )
            sql = con.execute("SELECT * FROM presence").df()
        pd.testing.assert_frame_equal(_canon(sql), _canon(store.presence()), check_dtype=False)
    # the next Complet writes the whole state: no overlay, no replaced row left
    [r] = store.ingest([last])
    assert r.status == "ingested", r.message
    meta = _meta(store)
    assert not meta.get("overlay") and not meta.get("overlay_since")
    assert not (store.current() / partial.OVERLAY_DIR).exists()
    assert not (store.current() / partial.PRESENCE_OVERLAY).exists()
    assert store.verify().ok


def test_a_delta_after_the_overlay_days_writes_the_whole_state(archives, tmp_path):
    store = Store(tmp_path / "store")
    first, d1, d2, _ = archives
    assert (_date(d2) - _date(d1)).days > 3
    store.ingest([first])
    store.ingest([d1], overlay_days=3)
    assert _meta(store)["overlay"]
    before = store.latest()
    inodes = {p.name: p.stat().st_ino for p in (store.current() / "snapshot").iterdir()}
    [r] = store.ingest([d2], overlay_days=3)
    assert r.status == "ingested", r.message
    meta = _meta(store)
    assert not meta.get("overlay") and not meta.get("overlay_since")
    assert not (store.current() / partial.OVERLAY_DIR).exists()
    now = {p.name: p.stat().st_ino for p in (store.current() / "snapshot").iterdir()}
    # every frame an overlay had is written anew: the base holds no replaced row any more
    assert all(now[f"{n}.parquet"] != inodes[f"{n}.parquet"] for n in before.frames() if n in (
        "students", "guardians", "student_guardian"))  # fmt: skip
    _same_frames(store.latest(), apply_delta(before, _load(d2)))
    assert store.verify().ok


def test_a_compaction_written_in_small_batches_is_the_whole_merge(archives, tmp_path, monkeypatch):
    # batches of a few rows: every frame and the history cross many batch boundaries, and
    # the Delta's people's history is merged in order into most of them
    first, d1, d2, _ = archives
    store = Store(tmp_path / "store")
    store.ingest([first])
    store.ingest([d1], overlay_days=3)
    before, history = store.latest(), store.presence()
    monkeypatch.setattr(partial, "WRITE_ROWS", 37)
    monkeypatch.setattr(store_module, "ROW_GROUP_BYTES", 1)  # a row group per batch
    [r] = store.ingest([d2], overlay_days=3)
    assert r.status == "ingested", r.message
    assert not _meta(store).get("overlay")
    expected = apply_delta(before, _load(d2))
    _same_frames(store.latest(), expected)
    history = presence.update(history, presence.present(expected, store.key), _date(d2))
    pd.testing.assert_frame_equal(store.presence(), history)  # the same rows, in order
    assert store.verify().ok
    row_groups = pq.read_metadata(store.current() / partial.PRESENCE).num_row_groups
    assert row_groups > 10  # written as it was merged, not whole


def test_a_history_out_of_its_order_is_sorted_whole_by_a_compaction(archives, tmp_path):
    first, d1, d2, _ = archives
    store = Store(tmp_path / "store")
    store.ingest([first])
    store.ingest([d1], overlay_days=3)
    folder = store.current()
    meta = store.read_meta(folder)
    state = partial.State.open(folder, meta)
    people = presence.identified(
        pd.DataFrame({"kind": ["student"], "jointure": [store.latest().students["jointure"][0]]})
        .astype(presence.STRING), store.key,
    )  # fmt: skip
    updated = presence.typed(state.presence_of(people["pseudonym"]))
    keys = {"student": list(people["pseudonym"])}
    expected = partial._presence(state.whole_presence(), keys, updated, _date(d2))
    in_order = partial.presence_batches(state, keys, updated, _date(d2))
    assert in_order.table().equals(expected)
    # the base reversed (a foreign or older writer): the streamed merge notices, the
    # whole sort gives the same history
    path = folder / partial.PRESENCE
    table = pq.read_table(path)
    pq.write_table(table.take(list(range(table.num_rows - 1, -1, -1))), path)
    shuffled = partial.presence_batches(state, keys, updated, _date(d2))
    with pytest.raises(UnsortedHistoryError):
        list(shuffled.parts())
    assert shuffled.table().equals(expected)
    target = tmp_path / "presence.parquet"
    assert _write_frame(shuffled, target) == sha256(target)
    assert pq.read_table(target).equals(expected)


def test_retention_lists_a_base_awaiting_compaction_and_the_purge_compacts_it(
    archives, tmp_path, capsys
):
    store = Store(tmp_path / "store")
    first, d1, *_ = archives
    store.ingest([first])
    store.ingest([d1])
    # the copies date from the ingestion (a late Delta is not overdue at once)
    since = store.overlay_written()
    assert since == dt.datetime.now(dt.UTC).date() != _date(d1)
    assert cli.main(["status", "--store", str(store.path)]) == 0
    deadline = since + dt.timedelta(days=partial.MAX_DAYS)
    assert f"due le {deadline:%d/%m/%Y}" in capsys.readouterr().out
    items = purge.inventory(store)
    row = items[items["category"] == str(purge.Category.SUPERSEDED)]
    assert len(row) == 1 and row["date"].iloc[0] == pd.Timestamp(since)
    on_time = retention.workbench(store, since + dt.timedelta(days=partial.MAX_DAYS))[1]
    assert str(purge.Category.SUPERSEDED) not in on_time.categories
    late = since + dt.timedelta(days=partial.MAX_DAYS + 1)
    result, plan = retention.workbench(store, late)
    assert str(purge.Category.SUPERSEDED) in plan.categories
    overdue = result.overdue[result.overdue["rule"] == "old_copies"]
    # said in French on the page, the path after the one separator no label holds
    assert overdue["detail"].str.startswith("copies remplacées par des Delta").any()
    assert not any(DETAIL_SEPARATOR in label for label in purge.CATEGORY_LABELS.values())
    before = store.latest()
    with store.locked():
        done = purge.apply(store, retention.workbench(store, late)[1])
    assert done.changed and store.overlay_written() is None
    assert not (store.current() / partial.OVERLAY_DIR).exists()
    _same_frames(store.latest(), before)
    assert store.presence_synced(store.current())
    with store.locked():  # nothing left to compact: the same plan changes nothing
        again = purge.apply(store, retention.workbench(store, late)[1])
    assert store.overlay_written() is None and again.files_removed == 0


def test_a_damaged_overlay_is_named_and_the_next_delta_changes_nothing(archives, tmp_path):
    store = Store(tmp_path / "store")
    first, d1, d2, _ = archives
    store.ingest([first])
    store.ingest([d1], overlay_days=30)
    overlay = store.current() / partial.OVERLAY_DIR / f"{schema.STUDENT.frame}.parquet"
    overlay.write_bytes(overlay.read_bytes()[:40])
    with pytest.raises(StoreCorruptError, match=r"overlay/students\.parquet"):
        store.latest()
    assert any("overlay/students.parquet" in p for p in store.verify().problems)
    frozen = tree_hash(store.path)
    with pytest.raises(IngestAborted, match=r"overlay/students\.parquet"):
        store.ingest([d2], overlay_days=30)
    assert tree_hash(store.path) == frozen


def test_a_layered_state_opens_with_its_merged_counts_and_placing_columns(archives, tmp_path):
    store = Store(tmp_path / "store")
    first, d1, d2, _ = archives
    store.ingest([first])
    store.ingest([d1, d2], overlay_days=30)
    assert _meta(store)["overlay"]["students"]
    state = partial.State.open(store.current(), _meta(store))
    latest = store.latest()
    assert state.records() == latest.counts()
    for name, table in state.narrow.items():
        want = latest.frames()[name][list(table.column_names)]
        got = table.to_pandas()
        got = got.astype({c: want[c].dtype for c in got.columns})
        pd.testing.assert_frame_equal(_canon(got), _canon(want), obj=name)


def test_a_placing_table_s_slice_filtered_in_memory_is_the_one_read_from_its_files(
    archives, tmp_path
):
    """``State.held`` (a link table read whole while the Delta is parsed, then filtered)
    gives the rows ``State.table`` reads from the base and overlay files: the same rows, in
    the same order, with the same types; and lets the table go."""
    store = Store(tmp_path / "store")
    first, d1, *_ = archives
    store.ingest([first])
    store.ingest([d1], overlay_days=30)
    assert set(partial.PLACING) & set(_meta(store)["overlay"])  # a merged table among them
    state = partial.State.open(store.current(), _meta(store))
    latest = store.latest()
    some = partial._ids(
        latest.students["jointure"][::3],
        latest.guardians["jointure"][::5],
        latest.staff["jointure"][::2],
    )
    for name in partial.PLACING:
        columns = journal._PEOPLE_COLUMNS[name]
        for where in ([(c, some) for c in columns], None):
            expected = state.table(name, where)
            state.narrow[name] = partial.State.open(store.current(), _meta(store)).narrow[name]
            got = state.held(name, where)
            assert got.schema == expected.schema and got.equals(expected), name
            assert 0 < got.num_rows and name not in state.narrow
            pd.testing.assert_frame_equal(got.to_pandas(), expected.to_pandas(), obj=name)


def test_a_delta_slice_s_memberships_shared_give_the_journal_and_presence_of_the_cuts(
    archives, tmp_path
):
    """The ingestion computes a Delta's new slice's memberships once, for the journal and the
    presence, and the journal reads each slice's memberships whole: the same rows as the cuts
    around the people (the earlier path) and as the whole states."""
    from ent_audit.aaf import population

    store = Store(tmp_path / "store")
    first, *deltas, _ = archives
    [r] = store.ingest([first])
    assert r.status == "ingested", r.message
    whole = _load(first)
    seen = 0
    for archive in deltas:
        incoming = _load(archive)
        files = partial.State.open(store.current(), _meta(store))
        state = partial.delta_slice(files, incoming)
        new = apply_delta(state, incoming)
        members = population.memberships(new, categorical=True)
        # the journal: shared memberships = its own = the whole states'
        shared = journal.changes(
            state, incoming, new, store.key, sliced=True, members_after=members
        )
        own = journal.changes(state, incoming, new, store.key, sliced=True)
        whole_new = apply_delta(whole, incoming)
        full = journal.changes(whole, incoming, whole_new, store.key)
        pd.testing.assert_frame_equal(shared, own)
        pd.testing.assert_frame_equal(shared, full)
        # the main schools: from the slice's memberships (strings or categoricals) = the cut's
        ids = {
            k.name: getattr(incoming, k.frame)["jointure"].dropna().unique()
            for k in schema.KINDS.values()
        }
        for snap in (state, new):
            cut = journal._main_schools(snap, ids)
            assert journal._main_schools(snap, ids, members=population.memberships(snap)) == cut
            assert (
                journal._main_schools(
                    snap, ids, members=population.memberships(snap, categorical=True)
                )
                == cut
            )
            seen += len(cut)
        # the presence: with the shared memberships, the same rows as on the cut
        people = presence.identified(presence.affected(state, incoming, new), store.key)
        pd.testing.assert_frame_equal(
            presence.present(new, store.key, people, members=members),
            presence.present(new, store.key, people),
        )
        [r] = store.ingest([archive])
        assert r.status == "ingested", r.message
        whole = whole_new
    assert seen
