"""An extraction read part by part onto disk gives the frames of the in-memory load, written
as that load's frames are written: same schema, pandas metadata, dtypes and row order."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import document, pupil, record

import ent_audit
from ent_audit.aaf import snapshot, staged
from ent_audit.aaf.archive import iter_extract
from ent_audit.synth import write

PREFIX = "ENT1D_TEST_Complet_20240916"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A small perimeter cut in many parts (several source files per frame)."""
    return write(
        tmp_path_factory.mktemp("synth"), seed=5, schools=4, pupils=120, part_size=40_000,
        unpack=True,
    )  # fmt: skip


@pytest.fixture
def odd(tmp_path):
    """A Complet with what a part can carry besides records: an attribute no kind declares
    (extras), a deleteRequest (an issue), a kind absent (Etab... present, no staff)."""
    d = tmp_path / "odd"
    d.mkdir()
    (d / f"{PREFIX}_Eleve_0000.xml").write_bytes(
        document(
            [
                record("Eleve", "1", {**pupil("1"), "ENTBizarre": "x"}),
                record("Eleve", "2", pupil("2", level="CM1")),
            ]
        )
    )
    (d / f"{PREFIX}_Eleve_0001.xml").write_bytes(document([record("Eleve", "3", op="delete")]))
    return d


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)  # as the store writes a frame held in memory
    return buf.getvalue()


def _same_frames(memory: ent_audit.Snapshot, extraction: staged.StagedExtraction, tmp: Path):
    for name in extraction.streamed():
        target = tmp / f"{name}.parquet"
        assert extraction.write_frame(name, target) == len(memory.frames()[name])
        data = _parquet(memory.frames()[name])
        if len(memory.frames()[name]) < staged.ROW_GROUP_ROWS:  # one row group: the same bytes
            assert target.read_bytes() == data, name
        want = pq.read_table(io.BytesIO(data))
        got = pq.read_table(target)
        assert got.schema.equals(want.schema, check_metadata=True), name
        pd.testing.assert_frame_equal(got.to_pandas(), want.to_pandas(), obj=name)
    view = extraction.view
    for name in ("issues", "skipped", "files", "modifications"):
        pd.testing.assert_frame_equal(getattr(view, name), getattr(memory, name), obj=name)
    assert view.counts() == memory.counts()
    assert {n: len(f) for n, f in view.frames().items()} == {
        n: len(f) for n, f in memory.frames().items()
    }
    for name in memory.counts():
        cols = list(staged.GUARD_COLUMNS)
        pd.testing.assert_frame_equal(getattr(view, name), getattr(memory, name)[cols], obj=name)
    assert view.notes == memory.notes and view.extraction == memory.extraction


@pytest.mark.slow
def test_a_staged_extraction_writes_the_frames_of_the_in_memory_load(synth, tmp_path):
    folder = synth.folders[0]
    memory = ent_audit.load(folder, workers=1)
    assert memory.files["source_file"].nunique() > 4  # several parts per kind
    parts = tmp_path / "parts"
    parts.mkdir()
    extraction = staged.load_staged(sorted(folder.glob("*.xml")), parts, parallel=False)
    _same_frames(memory, extraction, tmp_path)


def _staged_like_the_load(synth, tmp_path):
    """The first archive staged by two processes while extracted, with pseudonyms derived,
    checked against the in-memory load: the same frames, and each kind's pseudonyms (read
    back from the parts) those of its jointures, in the frame's order. Gives the memory load
    and the parts' folder."""
    from ent_audit.store import presence

    memory = ent_audit.load(synth.folders[0], workers=1)
    parts = tmp_path / "parts"
    parts.mkdir()
    derive = presence.pseudonymiser(b"k" * 32)
    extraction = staged.load_staged(
        iter_extract(synth.archives[0], tmp_path / "x"), parts, derive, workers=2
    )
    _same_frames(memory, extraction, tmp_path)
    assert {"Eleve", "PersRelEleve", "PersEducNat"} <= set(extraction.derived)
    for kind, frame in extraction.derived.items():
        jointures = getattr(memory, ent_audit.aaf.schema.KINDS[kind].frame)["jointure"]
        assert frame["jointure"].tolist() == jointures.tolist()
        pd.testing.assert_series_equal(
            frame["derived"], derive(kind, jointures).reset_index(drop=True), check_names=False
        )
    return memory, parts


@pytest.mark.slow
def test_parts_written_by_workers_while_extracted_give_the_same_frames(synth, tmp_path):
    _staged_like_the_load(synth, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("backlog", [0, 1, snapshot.SHARE_BACKLOG])
def test_the_main_process_parses_its_share_beside_one_helper(synth, tmp_path, monkeypatch, backlog):
    """0: the helper starts but the main process parses every part; 1: they alternate."""
    monkeypatch.setattr(snapshot, "SHARE_BACKLOG", backlog)
    memory, parts = _staged_like_the_load(synth, tmp_path)
    assert {p.name for p in parts.iterdir()} == set(memory.files["source_file"])


FORKED_PARSE = (
    """
import os, sys, threading
from multiprocessing import resource_tracker
from ent_audit.aaf import staged
from ent_audit.aaf.archive import iter_extract

write_part = staged.write_part


def recorded(path, kind, **kw):  # which process wrote each part
    with open(os.environ["PIDS"], "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    return write_part(path, kind, **kw)


staged.write_part = recorded
""",
    """
archive, tmp = sys.argv[1], sys.argv[2]
if sys.argv[3] == "thread":  # a notebook's kernel runs other threads
    threading.Thread(target=threading.Event().wait, daemon=True).start()
os.mkdir(os.path.join(tmp, "parts"))
staged.load_staged(iter_extract(archive, os.path.join(tmp, "x")), os.path.join(tmp, "parts"),
                   workers=2)
print(resource_tracker._resource_tracker._pid is not None)
""",
)


@pytest.mark.slow
@pytest.mark.parametrize("threads", ["alone", "thread"])
def test_the_parse_helper_is_forked_from_a_command_and_spawned_beside_threads(
    synth, tmp_path, threads
):
    """A command (one thread) forks its helper: no import, no resource tracker process, and
    a script without ``if __name__ == "__main__"`` works; beside other threads, whose locks
    a fork would copy held, the helper is a fresh interpreter (a tracker runs then)."""
    import os
    import subprocess
    import sys

    defs, run = FORKED_PARSE
    if threads == "thread":  # spawn imports the script again: its work needs the guard
        run = "if __name__ == '__main__':\n" + "".join(f"    {x}\n" for x in run.splitlines())
    script = tmp_path / "script.py"
    script.write_text(defs + run)
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run(
        [sys.executable, str(script), str(synth.archives[0]), str(work), threads],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PIDS": str(work / "pids")},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert len(set((work / "pids").read_text().split())) == 2  # both processes parsed
    assert out.stdout.split() == [str(threads == "thread")]


def test_a_part_summary_holds_no_rows_and_reads_them_back_as_held(synth, tmp_path):
    from ent_audit.aaf.frames import read_frames
    from ent_audit.store import presence

    path = sorted(synth.folders[0].glob("*_Eleve_*.xml"))[1]
    derive = presence.pseudonymiser(b"k" * 32)
    summary = staged.write_part(path, "Eleve", tmp_path, derive=derive)
    assert summary.guard is None  # and no other column of rows: heads are one row each
    assert not any(isinstance(v, pd.Series) for v in vars(summary).values())
    held = read_frames(path, "Eleve", derive=derive)
    cols = list(staged.GUARD_COLUMNS)
    pd.testing.assert_frame_equal(summary.guard_frame(), held.entity[cols])
    pd.testing.assert_series_equal(summary.derived_series(), held.derived, check_names=False)
    assert oct((tmp_path / path.name / staged.DERIVED).stat().st_mode & 0o777) == "0o600"


@pytest.mark.slow
def test_a_part_the_main_process_parsed_raises_at_its_turn(odd, tmp_path, monkeypatch):
    """Main-process parses keep the errors' precedence: the set's (a missing part) first,
    then a malformed part, named by file and line as the in-memory load names it."""
    monkeypatch.setattr(snapshot, "SHARE_BACKLOG", 0)
    (odd / f"{PREFIX}_Eleve_0000.xml").write_bytes(b"<ficAlimMENESR><addRequest>")
    parts = tmp_path / "parts"
    parts.mkdir()
    (odd / f"{PREFIX}_Eleve_0003.xml").write_bytes(document([]))
    with pytest.raises(ent_audit.SnapshotError, match="0002"):
        staged.load_staged(sorted(odd.glob("*.xml")), parts, workers=2)
    (odd / f"{PREFIX}_Eleve_0003.xml").unlink()
    with pytest.raises(ent_audit.AAFSyntaxError) as memory_error:
        ent_audit.load(odd, workers=1)
    with pytest.raises(ent_audit.AAFSyntaxError) as staged_error:
        staged.load_staged(sorted(odd.glob("*.xml")), parts, workers=2)
    assert str(staged_error.value) == str(memory_error.value)
    assert "Eleve_0000" in str(staged_error.value)


@pytest.mark.slow
def test_a_frame_streamed_in_many_row_groups_keeps_its_rows_and_order(synth, tmp_path, monkeypatch):
    monkeypatch.setattr(staged, "ROW_GROUP_ROWS", 7)
    folder = synth.folders[0]
    memory = ent_audit.load(folder, workers=1)
    parts = tmp_path / "parts"
    parts.mkdir()
    extraction = staged.load_staged(sorted(folder.glob("*.xml")), parts, parallel=False)
    _same_frames(memory, extraction, tmp_path)
    assert pq.ParquetFile(tmp_path / "students.parquet").metadata.num_row_groups > 2


def test_extras_issues_and_an_absent_kind_are_staged_as_loaded(odd, tmp_path):
    memory = ent_audit.load(odd, workers=1)
    assert len(memory.extras) == 1 and len(memory.staff) == 0
    assert "unexpected_operation" in set(memory.issues["code"])
    parts = tmp_path / "parts"
    parts.mkdir()
    extraction = staged.load_staged(sorted(odd.glob("*.xml")), parts, parallel=False)
    _same_frames(memory, extraction, tmp_path)


def test_a_staged_load_raises_the_in_memory_loads_errors(odd, tmp_path):
    (odd / f"{PREFIX}_Eleve_0003.xml").write_bytes(document([]))
    with pytest.raises(ent_audit.SnapshotError, match="0002"):
        ent_audit.load(odd, workers=1)
    parts = tmp_path / "parts"
    parts.mkdir()
    with pytest.raises(ent_audit.SnapshotError, match="0002"):
        staged.load_staged(sorted(odd.glob("*.xml")), parts, parallel=False)


def test_a_kinds_guards_read_at_once_are_its_parts_guards_concatenated(odd, tmp_path):
    """Empty parts included (a part of no record gives no category, as concat drops it)."""
    from ent_audit.aaf.frames import concat

    (odd / f"{PREFIX}_Eleve_0002.xml").write_bytes(document([]))
    written = tmp_path / "w"
    written.mkdir()
    full, empty, deleted = (
        staged.write_part(odd / f"{PREFIX}_Eleve_{n:04d}.xml", "Eleve", written) for n in (0, 2, 1)
    )
    for some in ([empty, full, empty, deleted], [empty], [full]):
        want = concat([p.guard_frame() for p in some])
        pd.testing.assert_frame_equal(staged._guards(some), want)


def test_a_part_file_read_by_columns_gives_those_columns_in_the_order_asked(tmp_path):
    """The guards read some columns of a part's file: only theirs are read (Arrow's
    ``included_fields``), in the order asked, every row."""
    table = pa.table(
        {"a": ["x", None, "z"], "b": [1, 2, 3], "c": pa.array(["p", "q", "p"]).dictionary_encode()}
    )
    path = tmp_path / "part.arrow"
    staged._write(table, path)
    assert staged._read(path).equals(table)
    assert staged._read(path, ["c", "a"]).equals(table.select(["c", "a"]))
    none = staged._read(path, [])
    assert none.num_columns == 0 and none.num_rows == 3
