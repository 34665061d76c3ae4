"""The national view: publications of académies, their aggregation, masking, refusals."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from national_helpers import END_2, PERIOD, START_2, STATE, publications, publish, two_departements

from ent_audit.analyses import activity, national
from ent_audit.exceptions import NationalInputError
from ent_audit.synth import national as synth

COUNTS = ("schools_total", "schools_open", "schools_stopped", "loaded", "activated",
          "active_7d", "active_30d", "unique_visitors", "visits", "connections")  # fmt: skip


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    folders = publications(tmp_path_factory.mktemp("national"), 3)
    return folders, national.aggregate(folders)


def _published(folder):
    return pd.read_parquet(folder / national.FILE_NAME)


def test_national_totals_are_the_sums_of_the_academies(three):
    folders, r = three
    pubs = pd.concat([_published(f) for f in folders])
    acad = pubs[pubs["level"] == "academie"]
    for profile, rows in acad.groupby("profile"):
        nat = r.row("national", profile=profile)
        for c in COUNTS:
            expected = rows[c].sum() if rows[c].notna().all() else None
            if expected is None:
                assert pd.isna(nat[c]), (profile, c)
            else:
                assert nat[c] == expected, (profile, c)
    for f in folders:
        p = _published(f)
        mine = p[(p["level"] == "academie") & (p["profile"] == "*")].iloc[0]
        got = r.row("academie", academie=mine["academie"])
        assert all(got[c] == mine[c] for c in COUNTS)


def test_departement_rows_are_the_academies_departements(three):
    folders, r = three
    f = r.frame
    dept = f[(f["level"] == "departement") & (f["profile"] == "*")]
    for folder in folders:
        p = _published(folder)
        mine = p[(p["level"] == "departement") & (p["profile"] == "*")]
        got = dept[dept["academie"] == mine["academie"].iloc[0]].set_index("departement")
        assert sorted(got.index) == sorted(mine["departement"])
        for row in mine.to_dict("records"):
            assert got.loc[row["departement"], "visits"] == row["visits"]
        # départements of a drawn académie add up to it (its people are in one school each)
        assert (
            got["schools_total"].sum()
            == r.row("academie", mine["academie"].iloc[0])["schools_total"]
        )


def test_rates_are_recomputed_from_counts_never_averaged(three):
    _, r = three
    nat = r.row("national")
    acads = r.frame[(r.frame["level"] == "academie") & (r.frame["profile"] == "*")]
    assert nat["activation_rate"] == round(acads["activated"].sum() / acads["loaded"].sum(), 4)
    assert nat["open_share"] == round(acads["schools_open"].sum() / acads["schools_total"].sum(), 4)
    assert nat["visits_per_visitor"] == round(
        acads["visits"].sum() / acads["unique_visitors"].sum(), 2
    )
    assert nat["active_rate"] == round(acads["active_30d"].sum() / acads["activated"].sum(), 4)


def test_an_average_of_rates_would_differ(tmp_path):
    small = publish(tmp_path / "small", 0, schools=30)
    big = publish(tmp_path / "big", 1, schools=600)
    r = national.aggregate([small, big])
    acads = r.frame[(r.frame["level"] == "academie") & (r.frame["profile"] == "*")]
    mean = acads["activation_rate"].mean()
    exact = acads["activated"].sum() / acads["loaded"].sum()
    assert r.row("national")["activation_rate"] == round(exact, 4)
    assert abs(mean - exact) > 1e-4  # weighted by size, not averaged


def test_summary_has_english_keys_and_the_csv_is_for_spreadsheets(three, tmp_path):
    _, r = three
    written = national.write(r, tmp_path / "out")
    summary = json.loads(written["summary"].read_text())
    assert summary["academies"] == 3
    assert summary["period_start"] == str(PERIOD[0])
    assert summary["national"]["loaded"] == int(r.row("national")["loaded"])
    assert set(summary["by_academie"]) == {"A000", "A001", "A002"}
    raw = written["csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw.decode("utf-8-sig").splitlines()[0].split(";")
    assert header[:4] == ["niveau", "académie", "département", "profil"]
    assert "visiteurs uniques" in header and "taux d'activation" in header


def _tiny_academie():
    """A drawn académie where some schools and one circonscription are tiny."""
    f = synth.academie(5, schools=100, seed=1, departements=2)
    p, s = f.profiles.copy(), f.schools
    tiny_circ = s["circonscription"].iloc[-1]
    tiny = set(s.loc[s["circonscription"] == tiny_circ, "uai"])
    tiny |= set(s["uai"].iloc[[0, 30, 60]])
    school_rows = (p["level"] == "school") & p["key"].isin(tiny)
    for c in synth.FIGURES:
        # 0 to 2 people per profile: a school of fewer than 5 people for most counts
        p.loc[school_rows, c] = np.arange(school_rows.sum()) % 3
    # the upper levels as sums of the schools (as the generator has them)
    sch = p[p["level"] == "school"].merge(
        s[["uai", "circonscription"]], left_on="key", right_on="uai"
    )
    every = sch[sch["profile"] != "*"].groupby("key")[list(synth.FIGURES)].sum()
    star = (p["level"] == "school") & (p["profile"] == "*")
    for c in synth.FIGURES:
        p.loc[star, c] = p.loc[star, "key"].map(every[c]).to_numpy()
    sch = p[p["level"] == "school"].merge(
        s[["uai", "circonscription"]], left_on="key", right_on="uai"
    )
    circ = sch.groupby(["circonscription", "profile"])[list(synth.FIGURES)].sum()
    for (key, profile), row in circ.iterrows():
        sel = (p["level"] == "circonscription") & (p["key"] == key) & (p["profile"] == profile)
        p.loc[sel, list(synth.FIGURES)] = row.to_numpy()
    deps = sch.assign(dep=sch["key"].str[:3]).groupby(["dep", "profile"])[list(synth.FIGURES)]
    for (key, profile), row in deps.sum().iterrows():
        sel = (p["level"] == "departement") & (p["key"] == key) & (p["profile"] == profile)
        p.loc[sel, list(synth.FIGURES)] = row.to_numpy()
    dept = sch.groupby("profile")[list(synth.FIGURES)].sum()
    for profile, row in dept.iterrows():
        sel = (p["level"] == "department") & (p["profile"] == profile)
        p.loc[sel, list(synth.FIGURES)] = row.to_numpy()
    return p, s, tiny_circ


def test_masked_cells_stay_masked_and_cannot_be_worked_back():
    p, s, tiny_circ = _tiny_academie()
    table = national.publication(p, s, academie="T", store="t" * 16, period=PERIOD,
                                 state_date=STATE, small_cell=5)  # fmt: skip
    pub = table.to_pandas()
    truth = p[p["profile"] == "*"].set_index(["level", "key"])
    school = pub[pub["level"] == "school"].set_index("uai")
    circ = pub[pub["level"] == "circonscription"].set_index("circonscription")
    assert school["masked"].notna().any() and circ.loc[tiny_circ, "masked"]
    for c in national.PEOPLE:
        shown = school[c].dropna()
        assert not ((shown > 0) & (shown < 5)).any(), c
        shown = circ[c].dropna()
        assert not ((shown > 0) & (shown < 5)).any(), c
        # every null is a masked cell named in `masked`, and only those
        names = school["masked"].fillna("").str.split(",")
        assert (school[c].isna() == names.map(lambda n, c=c: c in n)).all()
        for name, rows in school.groupby("circonscription"):
            hidden = rows[rows[c].isna()]
            if hidden.empty:
                continue
            true_hidden = truth.loc[[("school", u) for u in hidden.index], c]
            # never a lone masked cell, never a masked sum under the threshold
            assert len(hidden) >= 2 and true_hidden.sum() >= 5, (name, c)
            if pd.notna(circ.loc[name, c]):  # the circonscription's total minus the visible
                left = circ.loc[name, c] - rows[c].sum()
                assert left == true_hidden.sum() and left >= 5
            else:  # a masked circonscription keeps at least one masked school
                assert len(hidden) >= 1
        for name in circ.index[circ[c].isna()]:
            assert school.loc[school["circonscription"] == name, c].isna().any(), (name, c)
        for dept, rows in circ.groupby("departement"):
            hidden = rows[rows[c].isna()]
            if len(hidden):
                assert len(hidden) >= 2, (dept, c)
                assert truth.loc[[("circonscription", k) for k in hidden.index], c].sum() >= 5


def test_the_national_view_never_reads_school_rows(tmp_path):
    p, s, _ = _tiny_academie()
    table = national.publication(p, s, academie="T", store="t" * 16, period=PERIOD,
                                 state_date=STATE)  # fmt: skip
    national.write_publication(table, tmp_path / "t")
    r = national.aggregate([tmp_path / "t"])
    assert set(r.frame["level"]) == {"national", "academie", "departement"}
    assert r.frame[list(national.PEOPLE)].notna().all().all()  # exact, never masked
    assert "exact" not in r.frame  # every département row is the store's own distinct count


def test_a_publication_holds_no_pseudonym_and_a_stable_schema(three):
    folders, _ = three
    schema = pq.read_schema(folders[0] / national.FILE_NAME)
    assert schema.names == national.COLUMNS.names
    assert schema.metadata[national.META_KEY] == str(national.SCHEMA_VERSION).encode() == b"2"
    assert not {"user", "jointure", "name"} & set(schema.names)


# -- refusals ----------------------------------------------------------------------------------


def test_a_folder_that_is_neither_a_store_nor_a_summary_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NationalInputError, match=r"empty: ni un store ni un dossier"):
        national.aggregate([tmp_path / "empty"])
    with pytest.raises(NationalInputError, match=r"absent: dossier introuvable"):
        national.aggregate([tmp_path / "absent"])


def test_a_store_without_a_summary_is_refused(tmp_path):
    (tmp_path / "store" / "states").mkdir(parents=True)
    with pytest.raises(NationalInputError, match=r"store: store sans résumé d'activité publié"):
        national.aggregate([tmp_path / "store"])


def test_a_summary_of_another_schema_version_is_refused(tmp_path):
    folder = publish(tmp_path / "old", 0, schools=30)
    t = pq.read_table(folder / national.FILE_NAME)
    t = t.replace_schema_metadata({national.META_KEY: b"1"})
    pq.write_table(t, folder / national.FILE_NAME)
    with pytest.raises(NationalInputError, match=r"old: résumé de version de schéma 1, attendu 2"):
        national.aggregate([folder])


def test_an_unreadable_summary_is_refused(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / national.FILE_NAME).write_bytes(b"not parquet")
    with pytest.raises(NationalInputError, match=r"bad: résumé illisible"):
        national.aggregate([tmp_path / "bad"])


def test_two_stores_of_one_academie_are_refused(tmp_path):
    a = publish(tmp_path / "a", 0, schools=30, academie="TOULOUSE")
    b = publish(tmp_path / "b", 1, schools=30, academie="TOULOUSE")
    with pytest.raises(NationalInputError, match=r"b: académie TOULOUSE déjà fournie par .*a"):
        national.aggregate([a, b])


def test_one_store_given_twice_is_refused(tmp_path):
    a = publish(tmp_path / "a", 0, schools=30)
    with pytest.raises(NationalInputError, match="dossier donné deux fois"):
        national.aggregate([a, tmp_path / "a"])
    copy = tmp_path / "copy"
    copy.mkdir()
    t = pq.read_table(a / national.FILE_NAME)
    t = t.set_column(t.schema.get_field_index("academie"), "academie", pa.array(["X"] * t.num_rows))
    pq.write_table(t, copy / national.FILE_NAME)
    with pytest.raises(NationalInputError, match=r"copy: même store"):
        national.aggregate([a, copy])


def test_mismatched_periods_are_refused(tmp_path):
    a = publish(tmp_path / "a", 0, schools=30)
    b = publish(tmp_path / "b", 1, schools=30, period=(PERIOD[0], dt.date(2026, 12, 18)))
    with pytest.raises(NationalInputError, match=r"b: période du 2026-09-01 au 2026-12-18"):
        national.aggregate([a, b])


# -- a store over two départements: distinct people per département ----------------------------


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    g = two_departements(tmp_path_factory.mktemp("two"))
    g["result"] = activity.from_store(g["store"], accounts=str(g["accounts"]),
                                      period_start=START_2, period_end=END_2)  # fmt: skip
    table = national.from_result(g["result"], academie="LYON", store="l" * 16,
                                 state_date=STATE)  # fmt: skip
    national.write_publication(table, g["store"] / national.PUBLISHED.parent)
    g["published"] = table.to_pandas()
    g["national"] = national.aggregate([g["store"]])
    return g


FUNNEL = ("loaded", "activated", "active_7d", "active_30d")
ACTIVITY = ("visits", "unique_visitors", "connections")


@pytest.mark.slow
def test_departement_indicators_are_distinct_people_per_departement(two):
    r, truth = two["result"], two["truth"]
    deps = r.departements.set_index("departement")
    assert sorted(deps.index) == sorted(truth["by_circonscription"]) == ["031", "032"]
    p = r.profiles[r.profiles["level"] == "departement"].set_index(["key", "profile"])
    for dep, t in truth["by_circonscription"].items():
        for c in ACTIVITY:
            assert deps.loc[dep, c] == p.loc[(dep, "*"), c] == t[c], (dep, c)
        for c in FUNNEL:
            assert deps.loc[dep, c] == p.loc[(dep, "*"), c] == t["accounts"][c], (dep, c)
        for profile, tp in t["by_profile"].items():
            assert all(p.loc[(dep, profile), c] == tp[c] for c in ACTIVITY), (dep, profile)
        for profile, tp in t["accounts"]["by_profile"].items():
            assert all(p.loc[(dep, profile), c] == tp[c] for c in FUNNEL), (dep, profile)
        assert deps.loc[dep, "schools_total"] == t["schools_total"]
        assert deps.loc[dep, "schools_open"] == t["schools_open"]
    # the store's row counts each person once: the départements' sum counts the bridging
    # people twice (guardians with children in both; one of them visits in both)
    d = r.department
    assert deps["loaded"].sum() > d["loaded"] == truth["accounts"]["loaded"]
    # and a département counts each of its people once, not once per circonscription (the
    # sum of schema version 1)
    circ = r.circonscriptions.merge(
        r.schools[["circonscription", "departement"]].drop_duplicates(), on="circonscription"
    )
    assert circ.groupby("departement").size()["031"] == 2
    assert circ.groupby("departement")["loaded"].sum()["031"] > deps.loc["031", "loaded"]
    assert deps["unique_visitors"].sum() > d["unique_visitors"] == truth["unique_visitors"]
    assert deps["visits"].sum() == d["visits"] and deps["schools_total"].sum() == len(r.schools)
    summary = r.to_dict()["by_departement"]
    assert summary["032"]["visits"] == truth["by_circonscription"]["032"]["visits"]


@pytest.mark.slow
def test_the_bridging_person_counts_once_in_each_departement_and_once_in_the_academie(two):
    """Its one extra visit in the other département adds one visitor there, none in total."""
    r = two["result"]
    home, other = two["departements"]
    deps = r.departements.set_index("departement")
    visitors = r.profiles[(r.profiles["level"] == "departement") & (r.profiles["profile"] == "*")]
    assert home != other and deps.loc[other, "unique_visitors"] >= 1
    overlap = deps["unique_visitors"].sum() - r.department["unique_visitors"]
    assert overlap >= 1  # the bridging visitor, counted in both départements, once in the store
    assert (
        visitors.set_index("key")["unique_visitors"].sum() - overlap
        == (r.department["unique_visitors"])
    )


@pytest.mark.slow
def test_published_departement_rows_are_exact_and_the_totals_the_reports_own(two):
    r, pub, nat = two["result"], two["published"], two["national"]
    deps = r.departements.set_index("departement")
    rows = pub[(pub["level"] == "departement") & (pub["profile"] == "*")].set_index("departement")
    assert sorted(rows.index) == ["031", "032"]
    for c in (*FUNNEL, *ACTIVITY, "schools_total", "schools_open", "schools_stopped"):
        assert (rows[c] == deps[c]).all(), c
    # per profile too
    p = r.profiles[r.profiles["level"] == "departement"].set_index(["key", "profile"])
    by = pub[pub["level"] == "departement"].set_index(["departement", "profile"])
    for c in (*FUNNEL, *ACTIVITY):
        assert (by[c] == p.loc[by.index, c]).all(), c
    # the national view: académie row = the report's own totals, départements as published
    d = r.to_dict()
    acad = nat.row("academie", "LYON")
    for k in ("schools_total", "schools_open", "schools_stopped", "visits", "connections",
              "unique_visitors"):  # fmt: skip
        assert acad[k] == d[k] == nat.row("national")[k], k
    for k in FUNNEL:
        assert acad[k] == d["accounts"][k], k
    f = nat.frame
    got = f[(f["level"] == "departement") & (f["profile"] == "*")].set_index("departement")
    for c in (*FUNNEL, *ACTIVITY):
        assert (got[c] == deps[c]).all(), c
    summary = nat.to_dict()["by_departement"]
    assert summary["LYON/032"]["unique_visitors"] == deps.loc["032", "unique_visitors"]
    assert "exact" not in summary["LYON/032"]


@pytest.mark.slow
def test_the_report_shows_one_row_per_departement(two):
    from ent_audit.analyses.activity import tables

    t = tables.departements(two["result"])
    assert list(t["département"]) == ["031", "032"]
    assert {"visiteurs uniques", "comptes chargés", "part ouverte"} <= set(t.columns)
