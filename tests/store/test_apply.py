"""DSML modifyRequest semantics: per attribute, replace replaces, add adds, delete removes."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import record
from test_store import extraction, make_base, tree_hash

from ent_audit.store.store import Store


@pytest.fixture
def base(tmp_path) -> Store:
    return make_base(tmp_path)


def modify(kind: str, rid: str, changes: list[tuple[str, str | None, list[str]]]) -> str:
    """A modifyRequest with ``(attribute, operation, values)`` modifications."""
    cat = "categorieStructure" if kind == "EtabEducNat" else "categoriePersonne"
    body = "".join(
        f'    <modification name="{n}"'
        + (f' operation="{op}"' if op else "")
        + ">"
        + "".join(f"<value>{v}</value>" for v in values)
        + "</modification>\n"
        for n, op, values in changes
    )
    return (
        f'<modifyRequest>\n  <operationalAttributes><attr name="{cat}"><value>{kind}</value>'
        f"</attr></operationalAttributes>\n  <identifier><id>{rid}</id></identifier>\n"
        f"  <modifications>\n{body}  </modifications>\n</modifyRequest>\n"
    )


def test_modify_changes_only_the_attributes_it_names_as_dsml_says(base, tmp_path):
    before = base.latest()
    ine_1 = before.students.set_index("jointure").loc["1", "ine"]
    delta = extraction(
        tmp_path,
        "Delta",
        "20240923",
        [
            modify(
                "Eleve",
                "1",
                [
                    ("ENTEleveNiveau", "replace", ["CM1"]),
                    ("ENTEleveAutoriteParentale", "add", ["301$20"]),
                    ("ENTPersonClasses", "delete", []),
                ],
            ),
            modify(
                "Eleve",
                "2",
                [
                    ("ENTEleveAutoriteParentale", "delete", ["300$10"]),
                    ("ENTEleveINE", "delete", ["9999999999Z"]),  # not its value: kept
                    ("ENTPersonPrenom", "delete", []),
                ],
            ),
        ],
        others=False,
    )
    [r] = base.ingest([delta])
    assert r.status == "ingested", r.message
    assert base.verify().ok
    s = base.latest()
    pupils = s.students.set_index("jointure")
    assert pupils.loc["1", "level"] == "CM1" and pupils.loc["1", "ine"] == ine_1
    assert pupils.loc["1", "first_name"] == "Zoé"  # not named: kept
    assert str(pupils.loc["1", "birth_date"].date()) == "2019-03-12"
    links = s.student_guardian[s.student_guardian["seen_from"] == "student"]
    assert sorted(links.loc[links["student"] == "1", "guardian"]) == ["300", "301"]
    assert links.loc[links["student"] == "2"].empty
    assert set(s.student_class["student"]) == {"2"}
    assert pupils.loc["2", "ine"] == "0000000002A" and pd.isna(pupils.loc["2", "first_name"])


def test_an_unknown_operation_refuses_the_delta_with_its_line(base, tmp_path):
    before = tree_hash(base.path)
    delta = extraction(
        tmp_path,
        "Delta",
        "20240923",
        [modify("Eleve", "1", [("ENTEleveNiveau", "increment", ["CM1"])])],
        others=False,
    )
    [r] = base.ingest([delta])
    assert r.status == "refused" and r.guard == "delta_records"
    assert "Eleve_0000.xml:5" in r.message and "'increment'" in r.message
    assert tree_hash(base.path) == before
    assert base.latest().students.set_index("jointure").loc["1", "level"] == "CE1"


def test_a_delta_record_without_jointure_is_refused_with_its_line(base, tmp_path):
    before = tree_hash(base.path)
    rec = record("Eleve", "", {"ENTEleveNiveau": "CM1"}).replace("<id></id>", "")
    [r] = base.ingest([extraction(tmp_path, "Delta", "20240923", [rec], others=False)])
    assert r.status == "refused" and r.guard == "delta_records", r.message
    assert "sans jointure" in r.message and "Eleve_0000.xml:5" in r.message
    assert tree_hash(base.path) == before
