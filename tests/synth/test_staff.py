"""The generator's ``staff=`` option: exactly that many staff, spread as an académie's are.

Without the option nothing changes (the demo's archives keep their bytes: checked by hand with
``ent-audit synth`` before and after, and here through the plan that reproduces the default).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import ent_audit
from ent_audit import synth
from ent_audit.aaf import schema
from ent_audit.cli import main
from ent_audit.synth.model import StaffPlan, fixed_staff

SIZE = {"seed": 4, "schools": 30, "pupils": 3000}
A_PE = {f.column: f.attr for f in schema.STAFF.fields}
A_ST = {f.column: f.attr for f in schema.STRUCTURE.fields}


def _staff(perimeter: synth.Perimeter, index: int = 0) -> list[synth.Record]:
    return perimeter.extractions[index].records["PersEducNat"]


def _label(record: synth.Record) -> str:
    return record.attrs[A_PE["functions"]][0].split("$")[2]


def _default_total() -> int:
    return len(_staff(synth.generate(**SIZE)))


@pytest.mark.parametrize("staff", [60, 300, 2000])
def test_staff_gives_that_many_records_and_one_director_per_school(staff: int) -> None:
    perimeter = synth.generate(**SIZE, staff=staff)
    assert [len(e.records["PersEducNat"]) for e in perimeter.extractions] == [staff, 0, staff]
    assert perimeter.truth["config"]["staff"] == staff
    structures = perimeter.extractions[0].records["EtabEducNat"]
    schools = {r.id for r in structures if r.attrs[A_ST["struct_type"]] == ["ECOLE"]}
    records = _staff(perimeter)
    directors = Counter(d for r in records for d in r.attrs[A_PE["director_of"]] if d)
    assert set(directors) == schools and set(directors.values()) == {1}
    for r in records:
        for d in r.attrs[A_PE["director_of"]]:
            if d:
                assert r.attrs[A_PE["structures"]] == [d] and r.attrs[A_PE["is_teacher"]] == ["O"]
    known = {r.id for r in structures}
    assert all(set(r.attrs[A_PE["structures"]]) <= known for r in records)
    assert len({r.id for r in records}) == staff


def test_staff_equal_to_the_default_draws_the_default_perimeter() -> None:
    """The option's code path is the default one with other counts: asked for the default
    total, it draws the very same records (only the truth says it was asked)."""
    plain = synth.generate(**SIZE)
    asked = synth.generate(**SIZE, staff=len(_staff(plain)))
    for a, b in zip(plain.extractions, asked.extractions, strict=True):
        for kind in a.records:
            assert [(r.id, r.attrs) for r in a.records[kind]] == [
                (r.id, r.attrs) for r in b.records[kind]
            ]
    assert "staff" not in plain.truth["config"]
    assert {k: v for k, v in asked.truth["config"].items() if k != "staff"} == plain.truth["config"]


def test_extra_staff_are_aesh_teachers_in_proportion_to_pupils_and_circonscription_staff() -> None:
    default = _default_total()
    perimeter = synth.generate(**SIZE, staff=default + 1000)
    records = _staff(perimeter)
    labels = Counter(_label(r) for r in records)
    base = Counter(_label(r) for r in _staff(synth.generate(**SIZE)))
    extra = {k: labels[k] - base[k] for k in labels}
    assert extra["ACCOMPAGNANT ELEVE EN SITUATION DE HANDICAP"] == 450
    assert extra["ENSEIGNEMENT"] == 350
    assert extra["TITULAIRE REMPLACANT"] + extra["PSYCHOLOGUE EDUCATION NATIONALE"] == 200
    assert extra["TITULAIRE REMPLACANT"] == 3 * extra["PSYCHOLOGUE EDUCATION NATIONALE"]
    # Teachers follow the pupils school by school.
    pupils = Counter(
        r.attrs["ENTPersonStructRattach"][0] for r in perimeter.extractions[0].records["Eleve"]
    )
    teachers = Counter(
        r.attrs[A_PE["structures"]][0] for r in records if _label(r) == "ENSEIGNEMENT"
    )
    schools = sorted(pupils)
    assert np.corrcoef([pupils[s] for s in schools], [teachers[s] for s in schools])[0, 1] > 0.95
    # Circonscription staff evenly: two circonscriptions here.
    circ = Counter(
        r.attrs[A_PE["structures"]][0]
        for r in records
        if _label(r) in {"TITULAIRE REMPLACANT", "PSYCHOLOGUE EDUCATION NATIONALE"}
    )
    assert sorted(circ.values()) == [100, 100]


def test_fewer_staff_than_the_default_shrinks_teachers_and_aesh_keeping_a_director() -> None:
    default = _default_total()
    perimeter = synth.generate(**SIZE, staff=default // 2)
    records = _staff(perimeter)
    assert len(records) == default // 2
    labels = Counter(_label(r) for r in records)
    assert (
        labels["TITULAIRE REMPLACANT"] == 0
        and labels["ACCOMPAGNANT ELEVE EN SITUATION DE HANDICAP"] >= 1
    )
    fewest = SIZE["schools"] + fixed_staff(SIZE["schools"])
    lean = _staff(synth.generate(**SIZE, staff=fewest))
    assert Counter(_label(r) for r in lean)["ENSEIGNEMENT"] == SIZE["schools"]


def test_plan_for_the_default_total_is_the_default_plan() -> None:
    classes, pupils = [3, 5, 1, 8], np.array([70.0, 120.0, 20.0, 190.0])
    default = StaffPlan.default(classes, 400, 2)
    assert StaffPlan.for_total(default.total, classes, pupils, 2) == default
    for total in range(4 + 9, default.total + 50):
        plan = StaffPlan.for_total(total, classes, pupils, 2)
        assert plan.total == total and min(plan.teachers) >= 1


def test_same_seed_same_staff_and_another_seed_other_staff() -> None:
    a, b = (_staff(synth.generate(**SIZE, staff=500)) for _ in range(2))
    assert [(r.id, r.attrs) for r in a] == [(r.id, r.attrs) for r in b]
    c = _staff(synth.generate(**{**SIZE, "seed": 5}, staff=500))
    assert len(c) == 500 and [r.attrs for r in a] != [r.attrs for r in c]


def test_written_staff_reads_with_no_anomaly(tmp_path: Path) -> None:
    res = synth.write(tmp_path / "s", **SIZE, staff=700)
    for archive in (res.archives[0], res.archives[2]):
        snap = ent_audit.load(archive, workers=1)
        assert len(snap.staff) == 700
        assert snap.issues.empty and snap.skipped.empty and snap.notes == []


def test_too_few_staff_is_refused_in_french_also_by_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fewest = SIZE["schools"] + fixed_staff(SIZE["schools"])
    with pytest.raises(
        ValueError, match=f"'staff': {fewest - 1} personnels, il en faut au moins {fewest} "
    ):
        synth.generate(**SIZE, staff=fewest - 1)
    code = main(["synth", str(tmp_path / "s"), "--schools", "30", "--staff", "10"])
    err = capsys.readouterr().err
    assert code == 2 and err == (
        "erreur: générateur synthétique: paramètre 'staff': 10 personnels, il en faut au moins "
        "39 pour 30 écoles (un directeur par école, 9 en circonscription et à la DSDEN)\n"
    )
    assert not (tmp_path / "s").exists()


def test_cli_synth_writes_the_staff_asked(tmp_path: Path) -> None:
    assert main(["synth", str(tmp_path / "s"), "--schools", "8", "--pupils", "500",
                 "--staff", "90"]) == 0  # fmt: skip
    snap = ent_audit.load(next((tmp_path / "s").glob("*_Complet_20260914.tar.gz")), workers=1)
    assert len(snap.staff) == 90
