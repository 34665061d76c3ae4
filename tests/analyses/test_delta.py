"""``compare(a, b)``: added, removed and changed records, paired on the jointure, per kind."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SCHOOL, document, pupil, record

import ent_audit
from ent_audit.analyses import delta
from ent_audit.exceptions import CompareError
from ent_audit.synth import write

GUARDIAN = {"ENTPersonJointure": "300", "ENTPersonNom": "Parent", "ENTPersonPrenom": "Alex"}
STAFF = {"ENTPersonJointure": "400", "ENTPersonStructRattach": "100",
         "ENTPersonCategorieEnseignant": "O"}  # fmt: skip


def snapshot(folder: Path, pupils, guardians=(GUARDIAN,), date="20260914") -> ent_audit.Snapshot:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, rows in (
        ("EtabEducNat", (SCHOOL,)),
        ("Eleve", pupils),
        ("PersRelEleve", guardians),
        ("PersEducNat", (STAFF,)),
    ):
        ids = "ENTStructureJointure" if kind == "EtabEducNat" else "ENTPersonJointure"
        data = document([record(kind, r[ids], r) for r in rows])
        (folder / f"ENT1D_TEST_Complet_{date}_{kind}_0000.xml").write_bytes(data)
    return ent_audit.load(folder, workers=1)


def test_added_removed_and_changed_records_are_told_apart(tmp_path):
    a = snapshot(tmp_path / "a", (pupil("1"), pupil("2"), pupil("3")))
    b = snapshot(
        tmp_path / "b",
        (
            pupil("1"),  # unchanged
            pupil("2", level="CE2", classes=("100$$$C2$CE2 A",)),  # level and class changed
            pupil("4"),  # arrived
        ),
        date="20261012",
    )
    c = delta.compare(a, b)
    students = c["students"]
    assert list(students.added["jointure"]) == ["4"]
    assert list(students.removed["jointure"]) == ["3"]
    changed = {(r.jointure, r.attribute): (r.before, r.after)
               for r in students.changed.itertuples()}  # fmt: skip
    assert changed == {
        ("2", "ENTEleveNiveau"): ("CE1", "CE2"),
        ("2", "ENTPersonClasses"): ("100$$$C1$CE1 A", "100$$$C2$CE2 A"),
    }
    assert students.counts() == {
        "added": 1, "removed": 1, "changed": 1, "changed_values": 2, "unchanged": 1,
    }  # fmt: skip
    assert c["guardians"].matches() and c["structures"].matches() and not c.matches()
    assert c.attribute_ranking().iloc[0]["changes"] == 1


def test_the_order_of_multi_valued_values_is_not_a_change(tmp_path):
    two = ("300$10", "301$20")
    a = snapshot(tmp_path / "a", (pupil("1", guardians=two),))
    b = snapshot(tmp_path / "b", (pupil("1", guardians=tuple(reversed(two))),))
    assert delta.compare(a, b).matches()


def test_a_missing_value_on_both_sides_is_no_change_but_one_side_is(tmp_path):
    a = snapshot(tmp_path / "a", (pupil("1", ENTEleveINE=None),))
    b = snapshot(tmp_path / "b", (pupil("1", ENTEleveINE="0123456789A"),))
    assert delta.compare(a, a).matches()
    changed = delta.compare(a, b)["students"].changed
    assert len(changed) == 1 and changed["attribute"].iloc[0] == "ENTEleveINE"
    assert pd.isna(changed["before"].iloc[0]) and changed["after"].iloc[0] == "0123456789A"


def test_duplicate_jointures_are_refused_with_their_ids_never_paired(tmp_path):
    a = snapshot(tmp_path / "a", (pupil("1"), pupil("2"), pupil("2", level="CM2")))
    b = snapshot(tmp_path / "b", (pupil("1"),))
    with pytest.raises(CompareError, match=r"Eleve \(a\): jointure en double: 2") as err:
        delta.compare(a, b)
    assert err.value.ids == ["2"] and err.value.side == "a"


@pytest.mark.slow
def test_two_generated_complets_differ_by_exactly_the_generators_changes(tmp_path):
    synth = write(tmp_path, seed=7, schools=8, pupils=600)
    truth = json.loads(synth.truth.read_text())["delta"]["records"]
    first, later = (ent_audit.load(synth.archives[i], workers=1) for i in (0, 2))
    c = delta.compare(first, later)
    for kind, frame in (("Eleve", "students"), ("PersRelEleve", "guardians"),
                        ("PersEducNat", "staff"), ("EtabEducNat", "structures")):  # fmt: skip
        k = c[frame]
        assert set(k.added["jointure"]) == set(truth[kind]["add"]), kind
        assert set(k.removed["jointure"]) == set(truth[kind]["delete"]), kind
        assert set(k.changed["jointure"]) == set(truth[kind]["modify"]), kind
