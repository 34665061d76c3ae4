"""The change journal: one pseudonymous row per changed record and attribute, written with the
state, and the reconciliation of a Complet against the state its Deltas built."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from conftest import SCHOOL, document, pupil, record
from helpers import leaks, personal_values

import ent_audit
from ent_audit.store import Store, journal
from ent_audit.store.apply import apply_delta
from ent_audit.store.pseudonym import pseudonymise
from ent_audit.synth import series

KEY = b"k" * 32
GUARDIAN = {"ENTPersonJointure": "300", "ENTPersonNom": "Parent", "ENTPersonPrenom": "Alex"}


def extraction(folder: Path, kind_rows: dict, date: str, delta: bool = False):
    folder.mkdir(parents=True, exist_ok=True)
    word = "Delta" if delta else "Complet"
    for kind in ("EtabEducNat", "Eleve", "PersRelEleve", "PersEducNat"):
        rows = kind_rows.get(kind, [])
        (folder / f"ENT1D_TEST_{word}_{date}_{kind}_0000.xml").write_bytes(document(rows))
    return ent_audit.load(folder, workers=1)


def school_record():
    return record("EtabEducNat", "100", SCHOOL)


@pytest.fixture
def states(tmp_path):
    first = extraction(
        tmp_path / "c",
        {
            "EtabEducNat": [school_record()],
            "Eleve": [record("Eleve", j, pupil(j)) for j in ("1", "2", "3")],
            "PersRelEleve": [record("PersRelEleve", "300", GUARDIAN)],
        },
        "20260914",
    )
    changed = pupil("1", level="CE2", classes=("100$$$C2$CE2 A",), ENTPersonNom="Autrenom")
    delta = extraction(
        tmp_path / "d",
        {
            "Eleve": [
                record("Eleve", "1", changed, op="modify"),
                record("Eleve", "2", pupil("2"), op="modify"),  # re-sent unchanged
                record("Eleve", "3", op="delete"),
                record("Eleve", "4", pupil("4")),
            ]
        },
        "20261005",
        delta=True,
    )
    return first, delta, apply_delta(first, delta)


def test_a_delta_gives_one_row_per_changed_attribute_values_only_when_not_personal(states):
    first, delta, after = states
    rows = journal.changes(first, delta, after, KEY)
    got = {
        (r.pseudonym, str(r.operation), r.attribute if pd.notna(r.attribute) else None)
        for r in rows.itertuples()
    }
    p = dict(zip("1234", pseudonymise(KEY, "Eleve", list("1234")), strict=True))
    assert got == {
        (p["1"], "modify", "ENTEleveNiveau"),
        (p["1"], "modify", "ENTPersonClasses"),
        (p["1"], "modify", "ENTPersonNom"),
        (p["2"], "modify", None),
        (p["3"], "delete", None),
        (p["4"], "add", None),
    }
    by_attr = rows.set_index("attribute")
    assert tuple(by_attr.loc["ENTEleveNiveau", ["before", "after"]]) == ("CE1", "CE2")
    assert tuple(by_attr.loc["ENTPersonClasses", ["before", "after"]]) == ("C1", "C2")  # ids only
    name = by_attr.loc["ENTPersonNom"]
    assert name["masked"] and pd.isna(name["before"]) and pd.isna(name["after"])
    assert "Autrenom" not in rows.to_csv() and "Testeur" not in rows.to_csv()
    noop = rows[rows["noop"]]
    assert list(noop["pseudonym"]) == [p["2"]] and noop["attribute"].isna().all()
    assert set(rows["school_before"].dropna()) | set(rows["school_after"].dropna()) == {"0310036W"}
    assert rows.loc[rows["pseudonym"] == p["3"], "school_after"].isna().all()
    assert set(rows["date"]) == {pd.Timestamp("2026-10-05")} and not rows["divergence"].any()


def test_a_complet_over_a_delta_built_state_lists_its_differences_as_divergences(states, tmp_path):
    first, _, after = states
    later = extraction(
        tmp_path / "c2",
        {
            "EtabEducNat": [school_record()],
            "Eleve": [record("Eleve", j, pupil(j)) for j in ("1", "2", "5")],  # 4 missing, 5 new
            "PersRelEleve": [record("PersRelEleve", "300", GUARDIAN)],
        },
        "20261012",
    )
    rows = journal.changes(after, later, later, KEY, reconcile=True)
    ops = Counter((str(r.operation), r.attribute if pd.notna(r.attribute) else None)
                  for r in rows.itertuples())  # fmt: skip
    assert ops == Counter(
        {
            ("appeared", None): 1,  # 5
            ("disappeared", None): 1,  # 4
            ("changed", "ENTEleveNiveau"): 1,  # 1 back to CE1
            ("changed", "ENTPersonClasses"): 1,
            ("changed", "ENTPersonNom"): 1,
        }
    )
    assert rows["divergence"].all() and journal.divergences(rows) == 5
    plain = journal.changes(after, later, later, KEY, reconcile=False)
    assert len(plain) == 5 and not plain["divergence"].any()
    assert journal.changes(None, first, first, KEY).empty  # a first Complet changes nothing


# -- the store, on a generated series --------------------------------------------------------


@pytest.fixture(scope="module")
def series_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("journal")
    synth = series.write(tmp / "synth", seed=11, schools=6, pupils=300)
    store = Store(tmp / "store")
    results = store.ingest(synth.archives)
    return synth, store, results, json.loads(synth.truth.read_text())


def _counts(rows: pd.DataFrame) -> Counter:
    return Counter(
        (str(r.kind), str(r.operation), r.attribute if pd.notna(r.attribute) else None)
        for r in rows.itertuples()
    )


@pytest.mark.slow
def test_the_journal_counts_equal_the_generators_truth_per_kind_operation_attribute(series_store):
    _, store, results, truth = series_store
    assert [r.status for r in results] == ["ingested"] * 4
    j = store.journal()
    for ext in truth["extractions"][1:3]:
        rows = j[j["date"] == pd.Timestamp(ext["date"])]
        want: Counter = Counter()
        for kind, c in truth["changes"][ext["archive"]].items():
            frame = ent_audit.aaf.schema.KINDS[kind].frame
            want[(frame, "add", None)] += len(c["add"])
            want[(frame, "delete", None)] += len(c["delete"])
            want[(frame, "modify", None)] += len(c["modify_noop"])
            for attr, n in c["attributes"].items():
                want[(frame, "modify", attr)] += n
        assert _counts(rows) == +want, ext["archive"]
        noop = truth["changes"][ext["archive"]]
        assert int(rows["noop"].sum()) == sum(len(c["modify_noop"]) for c in noop.values())


@pytest.mark.slow
def test_each_planted_lie_is_found_with_its_kind_record_and_attribute_and_nothing_else(
    series_store,
):
    _, store, results, truth = series_store
    found = store.journal().query("divergence")
    want = {
        (x["frame"], pseudonymise(store.key, x["kind"], [x["jointure"]]).iloc[0],
         x["attribute"], x["operation"])
        for x in truth["lies"]
    }  # fmt: skip
    got = {
        (r.kind, r.pseudonym, r.attribute if pd.notna(r.attribute) else None, str(r.operation))
        for r in found.itertuples()
    }
    assert got == want and len(found) == 3
    assert found["school_before"].notna().any() and found["school_after"].notna().any()
    assert results[-1].divergences == 3 and "3 divergence(s)" in results[-1].message
    assert [r.divergences for r in results[:3]] == [0, 0, 0]


@pytest.mark.slow
def test_the_journal_holds_no_personal_value(series_store):
    synth, store, _, _ = series_store
    j = store.journal()
    assert leaks(j.to_csv(), personal_values(synth.perimeter)) == set()
    people = {r.id for e in synth.perimeter.extractions for kind, records in e.records.items()
              if kind != "EtabEducNat" for r in records}  # fmt: skip
    shown = set(j["before"].dropna()) | set(j["after"].dropna())
    assert not people & set(j["pseudonym"]) and not people & shown


@pytest.mark.slow
def test_the_journal_lives_in_the_state_and_a_refused_or_repeated_archive_leaves_it(
    series_store,
):
    synth, store, _, _ = series_store
    before = store.journal()
    live = store.path / "states" / (store.path / "CURRENT").read_text().strip()
    files = journal.parts(live)
    assert files and all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    assert len(files) == 3  # one part per ingestion after the first: two Deltas, a Complet
    [again] = store.ingest([synth.archives[1]])
    assert again.status == "already"
    broken = synth.out / "ENT1D_DEMO31_Delta_20991231.tar.gz"
    broken.write_bytes(b"not an archive")
    [bad] = store.ingest([broken])
    assert bad.status == "refused"
    pd.testing.assert_frame_equal(store.journal(), before)
