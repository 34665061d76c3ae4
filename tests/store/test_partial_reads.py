"""How a Delta reads its state (``ent_audit.store.partial``): ids decoded plain, repeated
values as dictionaries, dictionary columns looked up by their dictionary; the same answers
as the plain reads."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ent_audit.aaf.frames import isin
from ent_audit.store import partial


@pytest.mark.parametrize("ids", [["s1", "s3", "zz"], ["s2", None], [], [None]])
def test_a_dictionary_column_is_looked_up_as_its_plain_strings(ids):
    plain = pa.chunked_array(
        [pa.array(["s1", "s2", None, "s3"]), pa.array(["s3", None, "s1"])], pa.string()
    )
    encoded = pa.chunked_array([c.dictionary_encode() for c in plain.chunks])
    want = isin(plain, pa.array(ids, pa.string()))
    got = partial._isin(encoded, pa.array(ids, pa.string()))
    assert got.dtype == bool
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(partial._isin(encoded.combine_chunks(), ids), want)


def test_ids_are_read_plain_and_repeated_values_as_dictionaries(tmp_path):
    n = 80_000  # random ids of 24 characters: their dictionary overflows the writer's 1 MB
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "person": pa.array([rng.bytes(12).hex() for _ in range(n)]),
            "structure": pa.array([f"UAI{i % 40:04d}" for i in range(n)]),
            "kind": pa.array(["student", None] * (n // 2)),
            "line": pa.array(np.arange(n)),
        }
    )
    path = tmp_path / "links.parquet"
    pq.write_table(table, path)
    assert partial.repeated(path) == ["structure", "kind"]
    assert partial.repeated(path, ["kind", "line"]) == ["kind"]
    got = partial.read_table(path, ["person", "structure"], dictionary=["structure"])
    assert pa.types.is_string(got.schema.field("person").type)
    assert pa.types.is_dictionary(got.schema.field("structure").type)
    assert got.column("structure").cast(pa.string()).equals(table.column("structure"))
    assert got.column("person").equals(table.column("person"))


def test_a_filtered_read_decodes_repeated_values_as_dictionaries_and_gives_strings(tmp_path):
    n = 200_000
    rng = np.random.default_rng(1)
    frame = pa.table(
        {
            "jointure": pa.array([rng.bytes(8).hex() for _ in range(n)]),
            "city": pa.array([f"ville {i % 30}" if i % 7 else None for i in range(n)]),
            "line": pa.array(np.arange(n)),
        }
    ).to_pandas()
    frame["jointure"] = frame["jointure"].astype("string[pyarrow]")
    frame["city"] = frame["city"].astype("string[pyarrow]")
    path = tmp_path / "people.parquet"
    frame.to_parquet(path, index=False)  # the store's own writing: pandas' dtypes kept
    assert partial.repeated(path) == ["city"]
    ids = [*frame["jointure"].iloc[::997].tolist(), "absent"]
    got = partial._filtered(path, [("jointure", ids)])
    want = partial._kept(path, lambda t: partial._any(t, [("jointure", ids)]))
    assert got.schema.equals(want.schema, check_metadata=True)
    assert got.equals(want) and got.num_rows == len(ids) - 1
    assert got.to_pandas().equals(frame.iloc[::997].reset_index(drop=True))
    assert list(got.to_pandas().dtypes) == list(frame.dtypes)
    none = partial._filtered(path, [("jointure", ["absent"])])
    assert none.num_rows == 0 and none.schema.equals(want.schema)


def test_a_slice_reads_the_biggest_files_first_and_a_missing_one_counts_nothing(tmp_path):
    """:meth:`State.base_bytes` orders a Delta's slice reads (longest first); a missing file
    is named by its read, not by the ordering."""
    frames = tmp_path / partial.FRAMES_DIR
    frames.mkdir()
    pq.write_table(pa.table({"jointure": ["1", "2", "3"] * 1000}), frames / "students.parquet")
    pq.write_table(pa.table({"jointure": ["1"]}), frames / "staff.parquet")
    state = partial.State(tmp_path, {"frames": ["staff", "students", "guardians"]}, {}, {})
    order = sorted(state.names, key=state.base_bytes, reverse=True)
    assert order == ["students", "staff", "guardians"]
    assert state.base_bytes("guardians") == 0
