"""A Complet's presence history updated by pseudonym ranges, batch by batch
(:func:`presence.update_batches`), against the whole update (:func:`presence.update`)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ent_audit.exceptions import UnsortedHistoryError
from ent_audit.store import ingest, partial, presence
from ent_audit.store.store import _write_frame

KINDS = ["Eleve", "PersRelEleve", "PersEducNat"]
DAYS = [dt.date(2026, 9, 1) + dt.timedelta(days=7 * i) for i in range(4)]


def _now(rng: np.random.Generator, people: int, missing: bool) -> pd.DataFrame:
    """Who is where at one extraction: unique (pseudonym, kind, uai), some without a UAI,
    an empty UAI, (``missing``) a few without a pseudonym."""
    n = people * 2
    df = pd.DataFrame(
        {
            "pseudonym": [f"p{i:03d}" for i in rng.integers(0, people, n)],
            "kind": rng.choice(KINDS, n),
            "uai": rng.choice(["U1", "U2", "U3", "", None], n, p=[0.3, 0.3, 0.2, 0.1, 0.1]),
            "level": rng.choice(["CP", "CE1", None], n),
        }
    )
    if missing:
        df.loc[rng.integers(0, n, 3), "pseudonym"] = None
    df = presence.typed(df.assign(first_seen=pd.NaT, last_seen=pd.NaT, departed=pd.NaT))
    df = df[["pseudonym", "kind", "uai", "level"]]
    return df[~df.duplicated(presence.KEYS).to_numpy()].reset_index(drop=True)


def _lean(now: pd.DataFrame) -> pa.Table:
    """``now`` as :func:`presence.placed` gives it: dictionary columns, by pseudonym."""
    lean = now.astype({c: "category" for c in ("kind", "uai", "level")})
    table = pa.Table.from_pandas(lean, preserve_index=False)
    return table.take(pa.compute.sort_indices(table, [("pseudonym", "ascending", "at_end")]))


def _batches(history: pd.DataFrame, size: int):
    table = pa.Table.from_pandas(history, preserve_index=False)
    return [table.slice(i, size) for i in range(0, table.num_rows, size)]


@pytest.mark.parametrize("seed", range(2))
def test_the_update_by_pseudonym_ranges_equals_the_whole_update(seed):
    rng = np.random.default_rng(seed)
    missing = seed % 2 == 1
    history = None
    for day in DAYS:
        now = _now(rng, 25, missing)
        want = presence.update(history, now, day)
        for size, rows in ((3, 2), (1000, 1 << 16)):
            batches = [] if history is None else _batches(history, size)
            got = list(presence.update_batches(batches, _lean(now), day, rows=rows))
            assert all(t.schema == presence.schema_of() for t in got)
            table = pa.concat_tables([presence.schema_of().empty_table(), *got])
            pd.testing.assert_frame_equal(table.to_pandas(), want)
        history = want
    assert history["departed"].notna().any() and history["departed"].isna().any()


def test_a_history_out_of_order_is_refused_then_updated_whole(tmp_path):
    rng = np.random.default_rng(1)
    history = presence.update(None, _now(rng, 40, False), DAYS[0])
    now = _now(rng, 40, False)
    want = presence.update(history, now, DAYS[1])
    shuffled = history.iloc[::-1].reset_index(drop=True)
    with pytest.raises(UnsortedHistoryError):
        list(presence.update_batches(_batches(shuffled, 8), _lean(now), DAYS[1]))
    # the ingestion's presence: streamed from a state's file, whole when it is out of order
    for name, frame in (("sorted", history), ("shuffled", shuffled)):
        state = tmp_path / name
        state.mkdir()
        frame.to_parquet(state / partial.PRESENCE, index=False)
        (state / "meta.json").write_text('{"frames": [], "links": [], "notes": []}')
        written = _write_frame(
            ingest._complete_presence(state, _lean(now), DAYS[1]), tmp_path / f"{name}.parquet"
        )
        assert written
        got = pq.read_table(tmp_path / f"{name}.parquet").to_pandas()
        pd.testing.assert_frame_equal(got, want)


def test_a_first_complet_opens_everyone_by_pieces(tmp_path):
    rng = np.random.default_rng(2)
    now = _now(rng, 80, True)
    want = presence.update(None, now, DAYS[0])
    got = list(presence.update_batches((), _lean(now), DAYS[0], rows=4))
    assert len(got) > 10
    pd.testing.assert_frame_equal(pa.concat_tables(got).to_pandas(), want)
    _write_frame(ingest._complete_presence(None, _lean(now), DAYS[0]), tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(pq.read_table(tmp_path / "p.parquet").to_pandas(), want)


@pytest.mark.slow
def test_a_complet_over_a_presence_overlay_streams_the_merged_history(tmp_path):
    """Deltas written as overlays (the presence's too), then a Complet: its history is read
    batch by batch as :func:`partial.read_presence` merges it whole, and updated the same."""
    from ent_audit.store.store import Store
    from ent_audit.synth import series

    first, *deltas, last = series.write(tmp_path / "synth", seed=7, schools=8, pupils=600).archives
    store = Store(tmp_path / "store")
    for archive in (first, *deltas):
        [r] = store.ingest([archive], overlay_days=30)
        assert r.status == "ingested", r.message
    state = store.current()
    meta = store.read_meta(state)
    assert meta.get("presence_overlay")
    whole = partial.read_presence(state, meta)
    parts = list(partial.presence_parts(state, meta))
    assert pa.concat_tables(parts).to_pandas().equals(whole.to_pandas())
    before = store.presence()
    [r] = store.ingest([last])
    assert r.status == "ingested", r.message
    day = dt.datetime.strptime(last.name.split("_")[-1][:8], "%Y%m%d").date()
    want = presence.update(before, presence.present(store.latest(), store.key), day)
    pd.testing.assert_frame_equal(store.presence(), want)
    assert store.verify().ok
