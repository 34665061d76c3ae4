"""The presence history of a Delta is updated from the people it touches only, and equals the
history a full recomputation over the whole state gives."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ent_audit.aaf import schema
from ent_audit.store import presence, pseudonym
from ent_audit.store.store import Store
from ent_audit.synth import series


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("presence")
    return series.write(tmp / "synth", seed=5, schools=8, pupils=400).archives


def _date(archive) -> dt.date:
    return dt.datetime.strptime(archive.name.split("_")[-1][:8], "%Y%m%d").date()


@pytest.mark.slow
def test_each_ingestion_gives_the_history_a_full_recomputation_gives(archives, tmp_path):
    store = Store(tmp_path / "store")
    expected = None
    for archive in archives:
        [r] = store.ingest([archive])
        assert r.status == "ingested", r.message
        now = presence.present(store.latest(), store.key)
        expected = presence.update(expected, now, _date(archive))
        pd.testing.assert_frame_equal(store.presence(), expected)
        assert store.verify().ok
    # the open spells are the state's presence, as the Delta path assumes
    opened = store.presence()
    opened = opened[opened["departed"].isna()][["pseudonym", "kind", "uai", "level"]]
    pd.testing.assert_frame_equal(
        opened.sort_values(presence.KEYS).reset_index(drop=True),
        presence.present(store.latest(), store.key)
        .sort_values(presence.KEYS)
        .reset_index(drop=True),
    )


def test_a_delta_pseudonymises_only_the_people_it_touches(archives, tmp_path, monkeypatch):
    store = Store(tmp_path / "store")
    [first, delta, *_] = archives
    assert "Delta" in delta.name
    [r] = store.ingest([first])
    state = store.latest()
    people = sum(len(getattr(state, k.frame)) for k in schema.KINDS.values())
    seen: list[tuple[str, str]] = []
    real = pseudonym.pseudonymise

    def counting(key, kind, jointures):
        out = real(key, kind, jointures)
        seen.extend((kind, str(j)) for j in pd.Series(jointures).dropna().unique())
        return out

    monkeypatch.setattr(pseudonym, "pseudonymise", counting)
    [r] = store.ingest([delta])
    assert r.status == "ingested", r.message
    new = store.latest()
    incoming = sum(r.counts.values())
    touched = presence.affected(state, _load(delta), new)
    allowed = set(zip(touched["kind"], touched["jointure"], strict=True))
    delta_snap = _load(delta)
    for k in schema.KINDS.values():
        allowed |= {(k.name, j) for j in getattr(delta_snap, k.frame)["jointure"].dropna()}
    # only the Delta's records, the members of the structures it touches and the guardians
    # of its pupils: a small part of the state
    assert set(seen) <= allowed
    assert incoming <= len(set(seen)) < people / 4


def test_a_purged_presence_is_recomputed_whole_at_the_next_delta(archives, tmp_path):
    store = Store(tmp_path / "store")
    [first, delta, *_] = archives
    store.ingest([first])
    rows = store.presence()
    with store.locked():
        store.rewrite(rows.iloc[5:].reset_index(drop=True))
    assert not store.presence_synced(store.current())
    store.ingest([delta])
    now = presence.present(store.latest(), store.key)
    expected = presence.update(rows.iloc[5:].reset_index(drop=True), now, _date(delta))
    pd.testing.assert_frame_equal(store.presence(), expected)
    assert store.presence_synced(store.current())


def _load(archive):
    import ent_audit

    return ent_audit.load(archive, workers=1)


@pytest.mark.slow
def test_a_delta_state_and_journal_equal_the_pure_functions_and_unchanged_files_are_linked(
    archives, tmp_path
):
    import io

    from ent_audit.store import journal
    from ent_audit.store.apply import apply_delta

    store = Store(tmp_path / "store")
    store.ingest([archives[0]])
    for archive in archives[1:]:
        if "_Delta_" not in archive.name:
            continue
        before_dir = store.current()
        before = store.latest()
        inodes = {p.name: p.stat().st_ino for p in (before_dir / "snapshot").glob("*.parquet")}
        incoming = _load(archive)
        [r] = store.ingest([archive])
        assert r.status == "ingested", r.message
        expected = apply_delta(before, incoming)
        got = store.latest()
        for name, frame in expected.frames().items():
            buf = io.BytesIO()
            frame.to_parquet(buf, index=False)  # the same Parquet round trip as the store's
            want = pd.read_parquet(io.BytesIO(buf.getvalue()))
            pd.testing.assert_frame_equal(got.frames()[name], want, obj=name)
        rows = journal.changes(before, incoming, expected, store.key)
        book = store.journal()
        pd.testing.assert_frame_equal(book.tail(len(rows)).reset_index(drop=True), rows)
        kept = [n for n, f in expected.frames().items() if f is before.frames()[n]]
        assert kept  # e.g. the link tables this Delta does not feed
        now = store.current() / "snapshot"
        for name in kept:  # the same file, linked into the new state, not rewritten
            assert (now / f"{name}.parquet").stat().st_ino == inodes[f"{name}.parquet"]
        changed = set(expected.frames()) - set(kept)
        for n in changed:  # written: whole, or its records' rows in the state's overlay
            rewritten = (now / f"{n}.parquet").stat().st_ino != inodes[f"{n}.parquet"]
            assert rewritten or (now.parent / "overlay" / f"{n}.parquet").is_file(), n
        assert store.verify().ok


def test_pseudonyms_computed_by_the_reader_workers_give_the_serial_presence(archives, tmp_path):
    from ent_audit.aaf.archive import iter_extract
    from ent_audit.aaf.snapshot import load_stream_derived

    key = bytes(range(32))
    complet = archives[0]
    snap, derived = load_stream_derived(
        iter_extract(complet, tmp_path / "x"), presence.pseudonymiser(key), workers=2
    )
    assert set(derived) == set(schema.KINDS)
    for kind in schema.KINDS.values():
        got = derived[kind.name]
        pd.testing.assert_series_equal(
            got["derived"],
            pseudonym.pseudonymise(key, kind.name, getattr(snap, kind.frame)["jointure"]),
            check_names=False,
        )
    serial = presence.present(snap, key)
    pd.testing.assert_frame_equal(presence.present(snap, key, pseudonyms=derived), serial)
    # a jointure the given pseudonyms lack is pseudonymised in place
    partial = {k: v.iloc[::2] for k, v in derived.items()}
    pd.testing.assert_frame_equal(presence.present(snap, key, pseudonyms=partial), serial)


def _update_by_string_keys(history, now, date):
    """The history's update as it was first written (string keys, a pandas merge): the
    reference :func:`presence.update` (integer codes) must equal."""
    day = pd.Timestamp(date)
    closed = history[history["departed"].notna()]
    open_ = history[history["departed"].isna()]

    def key(df):
        return (
            df["pseudonym"].astype(str) + "|" + df["kind"].astype(str) + "|"
            + df["uai"].astype(object).fillna("").astype(str)
        )  # fmt: skip

    left = open_.assign(_k=key(open_)).merge(
        now.assign(_k=key(now))[["_k", "level"]], on="_k", how="left",
        suffixes=("", "_now"), indicator=True,
    )  # fmt: skip
    seen = left["_merge"] == "both"
    left.loc[seen, "last_seen"] = day
    left.loc[seen, "level"] = left.loc[seen, "level_now"]
    left.loc[~seen, "departed"] = day
    new = now[~key(now).isin(set(left.loc[seen, "_k"]))]
    new = new.assign(first_seen=day, last_seen=day, departed=pd.NaT)
    cols = list(presence.COLUMNS)
    out = pd.concat([closed, left[cols], new[cols]], ignore_index=True)
    return presence.typed(presence._sorted(out))


def test_the_update_by_integer_codes_equals_the_update_by_string_keys():
    d1, d2, d3 = dt.date(2026, 9, 1), dt.date(2026, 9, 8), dt.date(2026, 9, 15)
    now1 = presence.typed(
        pd.DataFrame(
            {
                "pseudonym": ["a", "a", "b", "c", "d", "e"],
                "kind": ["Eleve", "Eleve", "Eleve", "PersEducNat", "PersRelEleve", "Eleve"],
                "uai": ["U1", "U2", "U1", None, "U1", "U3"],
                "level": ["CP", "CP", "CE1", None, None, "CM2"],
                "first_seen": pd.NaT, "last_seen": pd.NaT, "departed": pd.NaT,
            }
        )
    )[["pseudonym", "kind", "uai", "level"]]  # fmt: skip
    # a leaves U2, b changes level, c (no school) stays, d leaves, f arrives, e comes back later
    now2 = now1.iloc[[0, 2, 3]].assign(level=["CP", "CE2", None])
    f = pd.DataFrame({"pseudonym": ["f"], "kind": ["PersRelEleve"], "uai": ["U2"], "level": [None]})
    now2 = pd.concat([now2, f], ignore_index=True).astype(presence.STRING)
    now3 = pd.concat([now2, now1.iloc[[5, 1]]], ignore_index=True)
    history = presence.update(None, now1, d1)
    for now, day in ((now2, d2), (now3, d3), (now3.iloc[::-1], d3 + dt.timedelta(days=7))):
        want = _update_by_string_keys(history, now, day)
        history = presence.update(history, now, day)
        pd.testing.assert_frame_equal(history, want)
    assert history["departed"].notna().sum() >= 3 and (history["pseudonym"] == "a").sum() == 3
    assert (
        presence.update(history, now3.iloc[:0], d3 + dt.timedelta(days=14))["departed"]
        .notna()
        .all()
    )


def test_the_history_s_rows_of_some_people_are_those_of_their_pseudonym_and_kind():
    """``listed``: a pseudonym is per kind, so a history row of the same pseudonym under
    another kind is not listed; the pairs are compared as ``(pseudonym, kind)`` tuples
    are, a missing part included."""
    s = presence.STRING
    history = pd.DataFrame(
        {
            "pseudonym": pd.Series(["a", "a", "b", "c", None, "d", "d"], dtype=s),
            "kind": pd.Series(
                ["student", "guardian", "student", "staff", "student", None, "staff"], dtype=s
            ),
        }
    )
    people = pd.DataFrame(
        {
            "pseudonym": pd.Series(["a", "c", "d", None], dtype=s),
            "kind": pd.Series(["student", "student", None, "student"], dtype=s),
        }
    )

    def as_tuples(df):
        return [tuple(None if v is pd.NA else v for v in row) for row in df.itertuples(False)]

    pairs = set(as_tuples(people))
    expected = [p is not None and (p, k) in pairs for p, k in as_tuples(history)]
    assert presence.listed(history, people).tolist() == expected == [
        True, False, False, False, False, True, False,
    ]  # fmt: skip
