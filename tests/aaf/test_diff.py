"""The diff's comparable text (flags O/N, dates ISO, missing kept) and its per-record
attribute values."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from ent_audit.aaf.diff import text
from ent_audit.aaf.frames import STRING


def _as_arrow(values: pd.Series) -> pa.Array:
    return pa.array(values.array, from_pandas=True)


@pytest.mark.parametrize(
    "flags",
    [
        pd.Series([True, False, None], dtype="boolean"),
        pd.Series([True, False]),
        pd.Series([], dtype="boolean"),
        pd.Series([True, None, False], dtype="bool[pyarrow]", index=[5, 6, 7], name="x"),
    ],
)
def test_flags_read_o_and_n_and_a_missing_flag_stays_missing(flags):
    expected = flags.map({True: "O", False: "N"}).astype(STRING)
    assert text(_as_arrow(flags)).to_pylist() == [None if pd.isna(v) else v for v in expected]


@pytest.mark.parametrize(
    "values, expected",
    [
        (
            pd.Series(pd.to_datetime(["2015-03-04", None, "0999-01-01"], format="ISO8601")),
            ["2015-03-04", None, "0999-01-01"],
        ),
        (pd.Series([1, None, -3], dtype="Int8"), ["1", None, "-3"]),
        (pd.Series(["CP", None, "CM2"], dtype="category"), ["CP", None, "CM2"]),
        (pd.Series(["é", None, ""], dtype=STRING), ["é", None, ""]),
    ],
)
def test_dates_read_iso_and_every_schema_type_reads_as_pandas_writes_it(values, expected):
    """The frames' dtypes (dates, small integers, categoricals, strings) as text, computed
    by Arrow: what pandas' ``strftime``/``astype(str)`` gives, a missing value missing."""
    got = text(_as_arrow(values))
    assert got.type == pa.string() and got.to_pylist() == expected
    if values.dtype.kind == "M":
        shown = values.dt.strftime("%Y-%m-%d")
    else:
        shown = values.astype(STRING)
    assert [None if pd.isna(v) else v for v in shown] == expected


def test_changed_values_come_one_row_per_record_and_attribute_in_row_then_schema_order(tmp_path):
    """``compare_kind`` gathers every column's differing rows into one frame: ordered by
    jointure then the schema's column order, a value made missing kept as such, strings."""
    import dataclasses

    import ent_audit
    from ent_audit.aaf import schema
    from ent_audit.aaf.diff import compare_kind
    from ent_audit.synth import write

    perimeter = write(tmp_path / "synth", seed=3, schools=2, pupils=30, unpack=True)
    a = ent_audit.load(perimeter.folders[0], workers=1)
    students = a.students.copy()
    ids = sorted(students["jointure"].astype(str))[:3]
    first, second = (
        (students["jointure"] == ids[0]).to_numpy(),
        (students["jointure"] == ids[1]).to_numpy(),
    )
    students["level"] = students["level"].astype(object)
    students.loc[first | second, "level"] = "CM2-changed"
    students["level"] = students["level"].astype(a.students["level"].dtype)
    students.loc[second, "cycle"] = None
    classes = a.links["student_class"]
    links = {**a.links, "student_class": classes[(classes["student"] != ids[1]).to_numpy()]}
    b = dataclasses.replace(a, students=students, links=links)
    got = compare_kind(a, b, schema.STUDENT, jointures=ids)
    c = got.changed
    assert [str(t) for t in c.dtypes] == ["string"] * 5
    columns = [f.column for f in schema.STUDENT.fields]
    pairs = list(zip(c["jointure"], c["column"], strict=True))
    assert pairs == sorted(pairs, key=lambda p: (p[0], columns.index(p[1])))
    assert set(c["jointure"]) == set(ids[:2])
    assert {"level", "cycle", "classes"} <= set(c.loc[c["jointure"] == ids[1], "column"])
    cycle = c[(c["jointure"] == ids[1]) & (c["column"] == "cycle")]
    assert cycle["after"].isna().all() and cycle["before"].notna().all()
    assert (c.loc[c["column"] == "level", "after"] == "CM2-changed").all()
    assert got.common == 3 and got.added.empty and got.removed.empty
