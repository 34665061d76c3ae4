"""The one definition of who belongs to which school, with which profile."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import SCHOOL, document, pupil, record
from hypothesis import given, settings
from hypothesis import strategies as st

import ent_audit
from ent_audit.aaf import population
from ent_audit.aaf.frames import first_rows
from ent_audit.aaf.population import Profile

PREFIX = "ENT1D_TEST_Complet_20260914"

SCHOOL_B = {
    **SCHOOL,
    "ENTStructureJointure": "102",
    "ENTStructureUAI": "0310037X",
    "ENTStructureNomCourant": "ECOLE B",
    "ENTEcoleCommune": "Fronton",
    "ENTEcoleCirconscription": "Fronton",
}
OFFICE = {
    "ENTStructureJointure": "900",
    "ENTStructureUAI": "0311111A",
    "ENTStructureNomCourant": "IEN FRONTON",
    "ENTStructureTypeStruct": "CIRCONSCRIPTION",
    "ENTEcoleCirconscription": "Fronton",
}
PUPILS = (
    pupil("1", guardians=("300$10",)),  # attached to 100, class in 100
    pupil("2", guardians=("300$10",), classes=("102$$$C7$CM2 A",)),  # attached 100, class 102
    {**pupil("3", classes=("102$$$C7$CM2 A",)), "ENTPersonStructRattach": None},  # class only
    {**pupil("4", classes=()), "ENTPersonStructRattach": None},  # nowhere
)
GUARDIANS = (
    {"ENTPersonJointure": "300", "ENTPersonNom": "Parent", "ENTPersRelEleveEleve": ["1", "2"]},
    {"ENTPersonJointure": "301", "ENTPersonNom": "Seul"},  # no pupil
)
STAFF = (
    {  # directs 100 and teaches there; also teaches in 102
        "ENTPersonJointure": "400",
        "ENTPersonStructRattach": "100",
        "ENTPersonFonctions": ["100$DIR$DIRECTION$-$-", "102$ENS$ENSEIGNEMENT$-$-"],
        "ENTPersonCategorieEnseignant": "O",
        "ENTEnsFonctionDir": "100",
    },
    {
        "ENTPersonJointure": "401",
        "ENTPersonStructRattach": "102",
        "ENTPersonCategorieEnseignant": "O",
    },
    {
        "ENTPersonJointure": "402",
        "ENTPersonStructRattach": "102",
        "ENTPersonCategorieEnseignant": "N",
    },
    {
        "ENTPersonJointure": "403",
        "ENTPersonStructRattach": "900",
        "ENTPersonCategorieEnseignant": "N",
    },
)


def snapshot(folder: Path) -> ent_audit.Snapshot:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, rows, id_attr in (
        ("EtabEducNat", (SCHOOL, SCHOOL_B, OFFICE), "ENTStructureJointure"),
        ("Eleve", PUPILS, "ENTPersonJointure"),
        ("PersRelEleve", GUARDIANS, "ENTPersonJointure"),
        ("PersEducNat", STAFF, "ENTPersonJointure"),
    ):
        data = document([record(kind, r[id_attr], r) for r in rows])
        (folder / f"{PREFIX}_{kind}_0000.xml").write_bytes(data)
    return ent_audit.load(folder, workers=1)


def rows(m: pd.DataFrame, jointure: str) -> set[tuple]:
    r = m[m["jointure"] == jointure]
    return set(
        zip(
            r["structure"].fillna("-"),
            r["profile"],
            r["via"].fillna("-"),
            r["primary"],
            strict=True,
        )
    )


def test_memberships_follow_attachments_classes_links_and_functions(tmp_path):
    m = population.memberships(snapshot(tmp_path))
    assert list(m.columns) == list(population.COLUMNS)
    assert rows(m, "1") == {("100", "pupil", "attachment", True)}
    assert rows(m, "2") == {("100", "pupil", "attachment", True), ("102", "pupil", "class", False)}
    assert rows(m, "3") == {("102", "pupil", "class", True)}
    assert rows(m, "4") == {("-", "pupil", "-", True)}  # in no school, but still counted
    # A guardian belongs where their pupils are; their main school is their first pupil's.
    assert rows(m, "300") == {
        ("100", "guardian", "pupil", True),
        ("102", "guardian", "pupil", False),
    }
    assert rows(m, "301") == {("-", "guardian", "-", True)}
    assert rows(m, "400") == {
        ("100", "director", "attachment", True),
        ("102", "teacher", "function", False),
    }
    assert rows(m, "401") == {("102", "teacher", "attachment", True)}
    assert rows(m, "402") == {("102", "other_staff", "attachment", True)}
    assert rows(m, "403") == {("900", "other_staff", "attachment", True)}


def test_a_director_who_teaches_counts_as_a_teacher_and_offices_are_not_schools(tmp_path):
    m = population.memberships(snapshot(tmp_path))
    teachers = set(m.loc[m["teacher"], "jointure"])
    assert teachers == {"400", "401"}
    assert set(m.loc[m["is_school"], "structure"]) == {"100", "102"}
    assert set(population.schools(snapshot(tmp_path / "b"))["jointure"]) == {"100", "102"}
    assert m.loc[m["structure"] == "102", "uai"].unique().tolist() == ["0310037X"]
    assert m.loc[m["structure"] == "102", "circonscription"].unique().tolist() == ["Fronton"]


def test_each_person_has_exactly_one_main_school_row(tmp_path):
    m = population.memberships(snapshot(tmp_path))
    main = population.main_school(m)
    assert main.groupby(["kind", "jointure"]).size().eq(1).all()
    assert len(main) == len(PUPILS) + len(GUARDIANS) + len(STAFF)
    assert dict(zip(main["jointure"], main["structure"].fillna("-"), strict=True)) == {
        "1": "100", "2": "100", "3": "102", "4": "-", "300": "100", "301": "-",
        "400": "100", "401": "102", "402": "102", "403": "900",
    }  # fmt: skip


def test_categorical_memberships_hold_the_same_rows_in_a_fraction_of_the_memory(tmp_path):
    snap = snapshot(tmp_path)
    m = population.memberships(snap)
    c = population.memberships(snap, categorical=True)
    for col in population.REPEATED:
        assert isinstance(c[col].dtype, pd.CategoricalDtype), col
        categories = list(c[col].cat.categories)
        assert categories == sorted(categories) == sorted(set(m[col].dropna())), col
    back = c.astype({col: pd.StringDtype("pyarrow") for col in population.REPEATED})
    pd.testing.assert_frame_equal(back, m)
    assert rows(c, "400") == rows(m, "400")


def test_profiles_have_french_labels():
    assert set(population.PROFILE_LABELS) == set(Profile)


def test_the_roster_and_the_overview_use_the_same_membership(tmp_path):
    from ent_audit.analyses import overview

    snap = snapshot(tmp_path)
    assert set(snap.roster("0310037X")["jointure"]) == {"2", "3"}
    circ = overview.by_circonscription(snap)
    assert circ.loc["Fronton", "pupils"] == 3 and circ.loc["Fronton", "staff"] == 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.sampled_from(["x", "y", None])),
        max_size=30,
    )
)
def test_first_rows_are_pandas_non_duplicated_rows(rows):
    df = pd.DataFrame(rows, columns=["p", "s"], dtype=pd.StringDtype("pyarrow"))
    df["c"] = df["s"].astype(pd.CategoricalDtype(["z", "y", "x"]))  # codes, a category unused
    for cols in (["p"], ["p", "s"], ["c"], ["p", "c"]):
        want = ~df.duplicated(cols).to_numpy() if len(df) else np.zeros(0, dtype=bool)
        assert (first_rows(df, cols) == want).all()


def _as_dictionaries(df: pd.DataFrame, chunks: int = 1) -> pd.DataFrame:
    """String columns as Arrow dictionaries whose dictionary is sorted (not in row order),
    as ``Store.read_snapshot(dictionary=…)`` may give them; in ``chunks`` pieces, each with
    a dictionary of its own (a file of several row groups)."""
    out = {}
    for c in df.columns:
        values = pa.array(df[c].astype("string[pyarrow]").array, type=pa.string())
        pieces = []
        for part in np.array_split(np.arange(len(values)), chunks):
            piece = values.take(pa.array(part, type=pa.int64()))
            names = pc.unique(piece.drop_null()).sort()
            indices = pc.index_in(piece, value_set=names)
            pieces.append(pa.DictionaryArray.from_arrays(indices, names))
        out[c] = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array(pieces)), index=df.index)
    return pd.DataFrame(out, index=df.index)


@pytest.mark.parametrize("chunks", [1, 3])
def test_memberships_from_dictionary_links_are_the_same(tmp_path, chunks):
    """The store's audit reads the link tables as Arrow dictionaries: each distinct id looked
    up once, the same memberships (structures absent from the state coded in row order);
    with several chunks, each its own dictionary, looked up chunk by chunk."""
    snap = snapshot(tmp_path)
    extra = pd.DataFrame(
        {"student": ["1", "3", "2", None], "structure": ["zz9", "aa1", "zz9", "100"]}
    ).astype("string[pyarrow]")
    links = dict(snap.links)
    links["student_class"] = pd.concat(
        [links["student_class"][["student", "structure"]], extra], ignore_index=True
    )
    plain = dataclasses.replace(snap, links=links)
    coded = dataclasses.replace(
        snap, links={n: _as_dictionaries(df[list(population.NEEDS.get(n, df.columns))], chunks)
                     for n, df in links.items()},
    )  # fmt: skip
    assert isinstance(coded.links["student_class"]["structure"].dtype, pd.ArrowDtype)
    column = coded.links["student_guardian"]["guardian"].array.__arrow_array__()
    assert column.num_chunks == chunks
    for categorical in (False, True):
        expected = population.memberships(plain, categorical=categorical)
        got = population.memberships(coded, categorical=categorical)
        pd.testing.assert_frame_equal(got, expected)
    assert {"zz9", "aa1"} <= set(expected["structure"].dropna())
