"""The store: Complet then Delta then Complet, anomalies, hostile archives, crashes, concurrency."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import document, pupil, record

import ent_audit
from ent_audit.store.store import Store, StoreError
from ent_audit.synth import write

PERIM = "ENT1D_TEST"


# -- helpers ---------------------------------------------------------------------------------


def tree_hash(store: Path) -> str:
    """Hash of the store's data (snapshots, history, key, pointer), logs and locks aside."""
    h = hashlib.sha256()
    for p in sorted(store.rglob("*")):
        rel = p.relative_to(store)
        if rel.parts[0] in ("logs",) or rel.name in ("lock", "read.lock"):
            continue
        h.update(str(rel).encode() + oct(p.stat().st_mode).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def extraction(tmp: Path, kind_type: str, date: str, eleve: list[str], others: bool = True) -> Path:
    """A small archive: Eleve records as given, one school, one guardian, one staff member."""
    prefix = f"{PERIM}_{kind_type}_{date}"
    files = {f"x/{prefix}_Eleve_0000.xml": document(eleve)}
    if others:
        files[f"x/{prefix}_EtabEducNat_0000.xml"] = document(
            [
                record(
                    "EtabEducNat",
                    "100",
                    {
                        "ENTStructureJointure": "100",
                        "ENTStructureUAI": "0310036W",
                        "ENTStructureNomCourant": "ECOLE",
                        "ENTStructureTypeStruct": "ECOLE",
                    },
                )
            ]
        )
        files[f"x/{prefix}_PersRelEleve_0000.xml"] = document(
            [
                record(
                    "PersRelEleve",
                    "300",
                    {
                        "ENTPersonJointure": "300",
                        "ENTPersonNom": "P",
                        "ENTPersRelEleveEleve": ["1", "2"],
                    },
                )
            ]
        )
        files[f"x/{prefix}_PersEducNat_0000.xml"] = document(
            [record("PersEducNat", "500", {"ENTPersonJointure": "500", "ENTPersonNom": "E"})]
        )
    return tar(tmp / f"{prefix}.tar.gz", files)


def frame_rows(df: pd.DataFrame) -> list[tuple]:
    data = df.drop(columns=["source_file", "record", "line", "op"], errors="ignore")
    return sorted(
        map(tuple, data.astype(object).where(data.notna(), None).values.tolist()), key=repr
    )


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write(tmp_path_factory.mktemp("synth"), seed=3, schools=10, pupils=500, part_size=50_000)


@pytest.fixture
def base(tmp_path):
    """A store holding one small Complet (pupils 1 and 2)."""
    return make_base(tmp_path)


def make_base(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store")
    arch = extraction(
        tmp_path,
        "Complet",
        "20240916",
        [record("Eleve", "1", pupil("1")), record("Eleve", "2", pupil("2"))],
    )
    [r] = store.ingest([arch])
    assert r.status == "ingested", r.message
    return store


# -- Complet, Delta, Complet -----------------------------------------------------------------


@pytest.mark.slow
def test_complet_then_delta_gives_the_generators_next_state(tmp_path, synth):
    store = Store(tmp_path / "s")
    complet, delta, complet2 = synth.archives
    results = store.ingest([delta, complet])  # given out of order: applied in date order
    assert [(r.archive, r.status) for r in results] == [
        (complet.name, "ingested"),
        (delta.name, "ingested"),
    ]
    assert results[1].anomalies == ()
    after_delta = store.latest()
    truth = ent_audit.load(complet2)
    assert after_delta.extraction.date == synth.perimeter.extractions[1].name.date
    for name, frame in truth.frames().items():
        if name in ("files", "issues", "extras", "skipped"):
            continue
        assert frame_rows(after_delta.frames()[name]) == frame_rows(frame), name
    [r] = store.ingest([complet2])
    assert r.status == "ingested"
    assert store.latest().counts() == truth.counts()
    h = store.history()
    assert h["archive"].tolist() == [a.name for a in synth.archives]
    assert h["extraction"].tolist() == ["complete", "delta", "complete"]
    assert len(h["sha256"][0]) == 64 and h["students"].tolist()[0] == 500


def test_presence_history_keeps_departures_under_pseudonyms_only(tmp_path, synth):
    store = Store(tmp_path / "s")
    store.ingest(synth.archives[:2])
    pres = store.presence()
    delta_date = pd.Timestamp(synth.perimeter.extractions[1].name.date)
    departed = pres[(pres["kind"] == "Eleve") & (pres["departed"] == delta_date)]
    gone = {
        d["jointure"] if isinstance(d, dict) else d
        for d in synth.perimeter.truth["delta"]["departures"]
    }
    from ent_audit.store.pseudonym import pseudonymise

    assert set(departed["pseudonym"]) == set(pseudonymise(store.key, "Eleve", sorted(gone)))
    clear = set(store.latest().students["jointure"]) | gone
    assert not clear & set(pres["pseudonym"])
    assert set(pres.columns) == {
        "pseudonym",
        "kind",
        "uai",
        "level",
        "first_seen",
        "last_seen",
        "departed",
    }
    arrivals = pres[(pres["kind"] == "Eleve") & (pres["first_seen"] == delta_date)]
    assert len(arrivals) == len(synth.perimeter.truth["delta"]["arrivals"])


def test_re_ingesting_the_same_archive_is_a_no_op_that_says_so(base, tmp_path):
    before = tree_hash(base.path)
    arch = tmp_path / f"{PERIM}_Complet_20240916.tar.gz"
    [r] = base.ingest([arch])
    assert r.status == "already" and "même SHA-256" in r.message
    assert tree_hash(base.path) == before


# -- delta anomalies -------------------------------------------------------------------------


def test_every_delta_anomaly_is_detected_on_a_crafted_delta(base, tmp_path):
    delta = extraction(
        tmp_path,
        "Delta",
        "20240923",
        [
            record("Eleve", "2", pupil("2", level="CM2", cycle="cycle 3")),  # add of a known id
            record("Eleve", "9", pupil("9"), op="modify"),  # modify of an unknown id
            record("Eleve", "8", op="delete"),  # delete of an unknown id
            record("Eleve", "1", op="delete"),
        ],
        others=False,
    )
    [r] = base.ingest([delta])
    assert r.status == "ingested"
    assert sorted((a.code, a.jointure, a.line) for a in r.anomalies) == [
        ("add_existing", "2", 5),
        ("delete_unknown", "8", 37),
        ("modify_unknown", "9", 21),
    ]
    s = base.latest()
    assert sorted(s.students["jointure"]) == ["2", "9"]
    assert s.students.set_index("jointure").loc["2", "level"] == "CM2"
    assert set(s.student_class["student"]) == {"2", "9"}


@pytest.mark.parametrize(
    "records, date, code",
    [
        (
            [record("Eleve", "3", pupil("3")), record("Eleve", "3", op="delete")],
            "20240923",
            "duplicate_in_delta",
        ),
        ([record("Eleve", "3", pupil("3"))], "20240910", "not_newer"),
        ([record("Eleve", "3", pupil("3"))], "20240916", "not_newer"),
    ],
)
def test_a_delta_that_cannot_be_applied_is_refused_and_the_store_unchanged(
    base, tmp_path, records, date, code
):
    before = tree_hash(base.path)
    [r] = base.ingest([extraction(tmp_path, "Delta", date, records, others=False)])
    assert r.status == "refused" and r.message.startswith("Delta refusé")
    assert code in {a.code for a in r.anomalies if a.blocking}
    assert tree_hash(base.path) == before


def test_a_delta_leaving_a_gap_is_applied_and_reported(base, tmp_path):
    [r] = base.ingest(
        [
            extraction(
                tmp_path, "Delta", "20241201", [record("Eleve", "3", pupil("3"))], others=False
            )
        ]
    )
    assert r.status == "ingested" and [a.code for a in r.anomalies] == ["gap"]
    [r] = base.ingest(
        [
            extraction(
                tmp_path, "Delta", "20241203", [record("Eleve", "4", pupil("4"))], others=False
            )
        ],
        max_gap_days=1,
    )
    assert [a.code for a in r.anomalies] == ["gap"]


def test_strict_mode_refuses_any_anomaly(base, tmp_path):
    before = tree_hash(base.path)
    delta = extraction(
        tmp_path, "Delta", "20240923", [record("Eleve", "8", op="delete")], others=False
    )
    [r] = base.ingest([delta], strict=True)
    assert r.status == "refused" and [a.code for a in r.anomalies] == ["delete_unknown"]
    assert tree_hash(base.path) == before


def test_a_delta_needs_a_complete_state_of_the_same_perimeter(tmp_path):
    store = Store(tmp_path / "empty")
    delta = extraction(
        tmp_path, "Delta", "20240923", [record("Eleve", "3", pupil("3"))], others=False
    )
    [r] = store.ingest([delta])
    assert r.status == "refused" and [a.code for a in r.anomalies] == ["no_base_state"]
    with pytest.raises(StoreError, match="aucune extraction ingérée"):
        store.latest()


def test_a_delta_of_another_perimeter_is_refused(base, tmp_path):
    before = tree_hash(base.path)
    arch = extraction(
        tmp_path, "Delta", "20240923", [record("Eleve", "3", pupil("3"))], others=False
    )
    other = arch.with_name(arch.name.replace(PERIM, "ENT1D_AUTRE"))
    with tarfile.open(arch) as src, tarfile.open(other, "w:gz") as dst:
        for m in src:
            data = src.extractfile(m).read()
            m.name = m.name.replace(PERIM, "ENT1D_AUTRE")
            dst.addfile(m, io.BytesIO(data))
    [r] = base.ingest([other])
    assert r.status == "refused" and r.guard == "perimeter" and "ENT1D_AUTRE" in r.message
    assert tree_hash(base.path) == before


def test_a_truncated_archive_is_refused_clearly(base, tmp_path):
    arch = extraction(tmp_path, "Complet", "20240923", [record("Eleve", "1", pupil("1"))])
    arch.write_bytes(arch.read_bytes()[: arch.stat().st_size // 2])
    [r] = base.ingest([arch])
    assert r.status == "refused" and "archive tar.gz illisible" in r.message


def test_an_older_complet_is_refused_from_its_name_before_being_read(base, tmp_path):
    arch = extraction(tmp_path, "Complet", "20240901", [record("Eleve", "1", pupil("1"))])
    [r] = base.ingest([arch])
    assert r.status == "refused" and "pas postérieur" in r.message
    arch.write_bytes(b"not even a gzip")  # never opened: the name says it all
    [r] = base.ingest([arch])
    assert r.status == "refused" and "pas postérieur" in r.message


# -- hostile archives ------------------------------------------------------------------------


def _member(name: str, **kw) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(info, k, v)
    return info


GOOD = f"{PERIM}_Complet_20240923_Eleve_0000.xml"


@pytest.mark.parametrize(
    "member, data, reason",
    [
        (_member(f"../{GOOD}"), b"x", "chemin absolu ou remontant"),
        (_member(f"/etc/{GOOD}"), b"x", "chemin absolu ou remontant"),
        (_member(GOOD, type=tarfile.SYMTYPE, linkname="/etc/passwd"), None, "lien"),
        (_member(GOOD, type=tarfile.LNKTYPE, linkname="other.xml"), None, "lien"),
        (_member(GOOD, type=tarfile.CHRTYPE, devmajor=1, devminor=3), None, "périphérique"),
        (_member("x/evil.sh"), b"rm -rf /", "fichier inattendu"),
    ],
)
def test_hostile_archives_are_refused_logged_and_leave_the_store_unchanged(
    base, tmp_path, member, data, reason
):
    before = tree_hash(base.path)
    logs = set(base.path.joinpath("logs").iterdir())
    arch = tmp_path / f"{PERIM}_Complet_20240923.tar.gz"
    with tarfile.open(arch, "w:gz") as t:
        if data is not None:
            member.size = len(data)
        t.addfile(member, io.BytesIO(data) if data is not None else None)
    [r] = base.ingest([arch])
    assert r.status == "refused" and reason in r.message and member.name in r.message
    assert tree_hash(base.path) == before
    [log] = set(base.path.joinpath("logs").iterdir()) - logs
    assert '"status": "refused"' in log.read_text()
    assert not list(base.path.joinpath("tmp").iterdir())


def test_a_gzip_bomb_is_refused_before_anything_is_written(base, tmp_path, monkeypatch):
    from ent_audit.aaf import archive

    monkeypatch.setattr(archive, "MAX_BYTES", 20 << 20)
    before = tree_hash(base.path)
    arch = tmp_path / f"{PERIM}_Complet_20240923.tar.gz"
    with tarfile.open(arch, "w:gz") as t:
        info = _member(GOOD, size=64 << 20)
        t.addfile(info, io.BytesIO(bytes(64 << 20)))
    assert arch.stat().st_size < 1 << 20  # 64 MB of zeros, under 1 MB packed
    [r] = base.ingest([arch])
    assert r.status == "refused" and "octets décompressés" in r.message
    assert tree_hash(base.path) == before


def test_too_many_members_are_refused(base, tmp_path, monkeypatch):
    from ent_audit.aaf import archive

    monkeypatch.setattr(archive, "MAX_MEMBERS", 3)
    arch = tar(
        tmp_path / f"{PERIM}_Complet_20240923.tar.gz",
        {f"x/{PERIM}_Complet_20240923_Eleve_{i:04d}.xml": b"<a/>" for i in range(5)},
    )
    [r] = base.ingest([arch])
    assert r.status == "refused" and "plus de 3 membres" in r.message


def test_a_record_bomb_is_refused_while_streaming_naming_the_file(base, tmp_path, monkeypatch):
    from ent_audit.aaf import reader

    monkeypatch.setattr(reader, "MAX_RECORDS", 1000)
    before = tree_hash(base.path)
    tiny = [
        f"<addRequest><identifier><id>{i}</id></identifier></addRequest>\n" for i in range(5000)
    ]
    bomb = document(tiny)
    arch = tar(
        tmp_path / f"{PERIM}_Complet_20240923.tar.gz",
        {
            f"x/{PERIM}_Complet_20240923_Eleve_0000.xml": bomb,
            f"x/{PERIM}_Complet_20240923_EtabEducNat_0000.xml": document([]),
        },
    )
    [r] = base.ingest([arch])
    assert r.status == "refused" and r.guard == "archive"
    assert "plus de 1000 enregistrements" in r.message
    assert f"{PERIM}_Complet_20240923_Eleve_0000.xml" in r.message
    line = int(re.search(r"_Eleve_0000\.xml:(\d+)", r.message).group(1))
    assert line < bomb.count(b"\n") / 2  # stopped at the limit, not after the whole file
    assert tree_hash(base.path) == before


@pytest.mark.slow
def test_archives_parsed_while_extracted_give_the_same_store_and_a_bad_crc_is_refused(
    tmp_path, synth, monkeypatch
):
    import gzip

    from ent_audit.store import ingest

    complet, delta, _ = synth.archives
    serial = Store(tmp_path / "serial")
    assert [r.status for r in serial.ingest([complet, delta])] == ["ingested"] * 2
    monkeypatch.setattr(ingest, "STREAM_MIN_BYTES", 0)
    streamed = Store(tmp_path / "streamed")
    assert [r.status for r in streamed.ingest([complet, delta])] == ["ingested"] * 2
    a, b = serial.latest(), streamed.latest()
    for name, frame in a.frames().items():
        pd.testing.assert_frame_equal(frame, b.frames()[name], obj=name)
    before = tree_hash(streamed.path)
    raw = synth.archives[2].read_bytes()
    data = gzip.decompress(raw)
    pos = data.index(b"<value>") + 8  # inside a value: still well-formed XML
    changed = data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]
    flipped = tmp_path / synth.archives[2].name
    flipped.write_bytes(gzip.compress(changed, mtime=0)[:-8] + raw[-8:])  # original CRC
    [r] = streamed.ingest([flipped])
    assert r.status == "refused" and r.guard == "archive" and "CRC" in r.message
    assert tree_hash(streamed.path) == before
    assert not list(streamed.path.joinpath("tmp").iterdir())


# -- crashes and concurrency -----------------------------------------------------------------


SLOW_INGEST = """
import sys, time
import pandas as pd

_write = pd.DataFrame.to_parquet


def slow_write(self, *args, **kwargs):  # the test's own slowness: a window to kill in
    _write(self, *args, **kwargs)
    time.sleep(float(sys.argv[1]))


pd.DataFrame.to_parquet = slow_write
from ent_audit.cli import main

sys.exit(main(sys.argv[2:]))
"""


def _ingest_process(store: Path, archive: Path, *extra: str, slow: float = 0):
    """``ent-audit ingest`` in a process of its own, each Parquet write followed by a pause."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_INGEST,
            str(slow),
            "ingest",
            str(archive),
            "--store",
            str(store),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_an_ingest_killed_during_the_parquet_write_leaves_the_previous_state(tmp_path, synth):
    store = Store(tmp_path / "s")
    store.ingest([synth.archives[0]])
    before = store.latest()
    data_before = tree_hash(store.path)
    proc = _ingest_process(store.path, synth.archives[2], slow=0.3)
    _wait_for(lambda: any(store.path.glob("tmp/stage-*/snapshot/*.parquet")))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    reopened = Store(store.path)
    after = reopened.latest()
    assert after.extraction == before.extraction
    for name, frame in before.frames().items():
        pd.testing.assert_frame_equal(after.frames()[name], frame, obj=name)
    assert len(reopened.history()) == 1
    [r] = reopened.ingest([synth.archives[2]])
    assert r.status == "ingested"
    assert reopened.latest().extraction.date == synth.perimeter.extractions[2].name.date
    assert not list(store.path.glob("tmp/*")) and len(list(store.path.glob("states/*"))) == 1
    assert data_before != tree_hash(store.path)


@pytest.mark.slow
def test_two_ingests_at_once_one_fails_clearly_or_waits_and_nothing_is_corrupted(tmp_path, synth):
    store = Store(tmp_path / "s")
    first = _ingest_process(store.path, synth.archives[0], slow=0.2)
    _wait_for(lambda: any(store.path.glob("tmp/*")))
    second = _ingest_process(store.path, synth.archives[0])
    _out, err = second.communicate(timeout=60)
    assert second.returncode == 2
    assert "une ingestion est déjà en cours (pid" in err and "--wait" in err
    third = _ingest_process(store.path, synth.archives[0], "--wait", "120")
    first.communicate(timeout=120)
    out3, _ = third.communicate(timeout=120)
    assert first.returncode == 0 and third.returncode == 0
    assert "déjà ingérée" in out3
    assert len(Store(store.path).history()) == 1
    assert Store(store.path).latest().counts()["students"] == 500


# -- privacy of the store --------------------------------------------------------------------


def test_files_are_0600_folders_0700_and_the_key_never_reaches_logs(base, tmp_path):
    os.umask(0o022)
    extraction(tmp_path, "Delta", "20240923", [record("Eleve", "8", op="delete")], others=False)
    base.ingest([tmp_path / f"{PERIM}_Delta_20240923.tar.gz"])
    for p in [base.path, *base.path.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
    key_hex = (base.path / "key").read_text().strip()
    logs = "".join(p.read_text() for p in (base.path / "logs").iterdir())
    assert key_hex not in logs
    assert '"jointure": "8"' not in logs and '"delete_unknown"' in logs


def test_the_key_can_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ENT_AUDIT_KEY", "00" * 32)
    store = Store(tmp_path / "s")
    assert store.key == bytes(32) and not (store.path / "key").exists()


def test_readers_do_not_create_a_store_at_a_mistyped_path(tmp_path):
    with pytest.raises(StoreError, match="pas de store ici"):
        Store(tmp_path / "typo", create=False)
    assert not (tmp_path / "typo").exists()
