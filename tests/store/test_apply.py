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


def test_modifications_split_by_attribute_select_what_a_mask_selects():
    """A kind's modifications are split by attribute once (:class:`apply._ByAttribute`):
    the same rows, order and labels as ``mods[mods["attribute"].isin(names)]``, aliases
    merged in order; a field is "replaced only" when every one of its rows is a replace."""
    from ent_audit.aaf import schema
    from ent_audit.store import apply

    student = schema.STUDENT
    field = next((f for f in student.single if f.aliases), student.single[1])
    names = [field.attr, *field.aliases]
    other = next(f for f in student.single if f.attr not in names and f.column != "jointure")
    mods = pd.DataFrame(
        {
            "kind": "Eleve",
            "jointure": ["1", "2", "3", "4", "5", None],
            "attribute": [names[-1], other.attr, names[0], None, other.attr, names[0]],
            "op": ["replace", "delete", "replace", "replace", "replace", "replace"],
            "value": ["a", None, "b", "c", "d", "e"],
            "source_file": "f.xml",
            "record": [0, 1, 2, 3, 4, 5],
            "line": [10, 20, 30, 40, 50, 60],
        },
        index=[7, 3, 9, 1, 4, 8],
    ).astype({c: "string[pyarrow]" for c in ("kind", "jointure", "attribute", "op", "value")})
    split = apply._ByAttribute(mods)
    for f in (field, other):
        expected = mods[mods["attribute"].isin([f.attr, *f.aliases])][list(split.COLUMNS)]
        pd.testing.assert_frame_equal(split.of(f), expected)
    assert split.replaced_only(field)
    assert not split.replaced_only(other)  # one delete among its rows
    absent = next(f for f in student.single if f.attr not in {*names, other.attr})
    assert split.of(absent).empty and not split.replaced_only(absent)
