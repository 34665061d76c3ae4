"""Loading one extraction from a folder, an archive or a list of files, and the roster."""

from __future__ import annotations

import io
import tarfile

import pandas as pd
import pytest
from conftest import SCHOOL, document, pupil, record

import ent_audit
from ent_audit import SnapshotError
from ent_audit.aaf import snapshot
from ent_audit.aaf.archive import UnsafeArchiveError, iter_extract
from ent_audit.analyses import overview

PREFIX = "ENT1D_TEST_Complet_20240916"


def school(jointure, uai, circ, name):
    return {
        **SCHOOL,
        "ENTStructureJointure": jointure,
        "ENTStructureUAI": uai,
        "ENTEcoleCirconscription": circ,
        "ENTStructureNomCourant": name,
    }


FILES = {
    "EtabEducNat_0000": (
        document(
            [
                record("EtabEducNat", "100", school("100", "0310036W", "Fronton", "ECOLE A")),
                record("EtabEducNat", "101", school("101", "0310037X", "Muret", "ECOLE B")),
                record(
                    "EtabEducNat",
                    "900",
                    {
                        "ENTStructureJointure": "900",
                        "ENTStructureUAI": "0311111A",
                        "ENTStructureNomCourant": "IEN FRONTON",
                        "ENTStructureTypeStruct": "INSPECTIONS ACADEMIQUES",
                        "ENTEcoleCirconscription": "Fronton",
                    },
                ),
            ],
            encoding="ISO-8859-15",
        )
    ),
    "Eleve_0000": (
        document(
            [
                record(
                    "Eleve",
                    "1",
                    pupil(
                        "1",
                        level="CM1",
                        cycle="cycle 3",
                        birth="03/04/2016",
                        ENTPersonNom="Durand",
                        ENTPersonPrenom="Élise",
                        guardians=["300$10", "301$20"],
                        classes=["100$$$C2$CM1 B"],
                    ),
                ),
                record(
                    "Eleve",
                    "2",
                    pupil(
                        "2",
                        level="CP",
                        ENTPersonNom="Abel",
                        ENTPersonPrenom="Noé",
                        guardians=["300$10"],
                        classes=["100$$$C1$CP A"],
                    ),
                ),
            ]
        )
    ),
    "Eleve_0001": (
        document(
            [
                record(
                    "Eleve",
                    "3",
                    pupil(
                        "3",
                        ENTPersonStructRattach="101",
                        guardians=["302$50"],
                        classes=["101$$$K1$CE1"],
                    ),
                ),
            ],
            crlf=True,
        )
    ),
    "PersRelEleve_0000": (
        document(
            [
                record(
                    "PersRelEleve",
                    "300",
                    {
                        "ENTPersonJointure": "300",
                        "ENTPersonNom": "Durand",
                        "ENTPersonPrenom": "Anne",
                        "ENTPersRelEleveEleve": ["1", "2"],
                    },
                ),
                record(
                    "PersRelEleve",
                    "301",
                    {
                        "ENTPersonJointure": "301",
                        "ENTPersonNom": "Durand",
                        "ENTPersonPrenom": "Marc",
                        "ENTPersRelEleveEleve": "1",
                    },
                ),
                record(
                    "PersRelEleve",
                    "302",
                    {
                        "ENTPersonJointure": "302",
                        "ENTPersonNom": "ASE 31",
                        "ENTPersRelEleveEleve": "3",
                    },
                ),
            ],
            encoding=None,
        )
    ),
    "PersEducNat_0000": (
        document(
            [
                record(
                    "PersEducNat",
                    "500",
                    {
                        "ENTPersonJointure": "500",
                        "ENTPersonNom": "Martin",
                        "ENTPersonPrenom": "Léa",
                        "ENTPersonStructRattach": "100",
                        "ENTPersonCategorieEnseignant": "O",
                        "ENTPersonFonctions": ["100$ENS$ENSEIGNEMENT$-$-", "100$DIR$DIRECTION$-$-"],
                        "ENTEnsFonctionDir": "100",
                        "ENTPersonDateNaissance": "01/01/1980",
                    },
                ),
                record(
                    "PersEducNat",
                    "501",
                    {
                        "ENTPersonJointure": "501",
                        "ENTPersonNom": "Petit",
                        "ENTPersonPrenom": "Jo",
                        "ENTPersonStructRattach": ["101", "900"],
                        "ENTPersonCategorieEnseignant": "N",
                    },
                ),
            ],
            encoding="ISO-8859-15",
            crlf=True,
        )
    ),
}


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "extraction"
    d.mkdir()
    for suffix, data in FILES.items():
        (d / f"{PREFIX}_{suffix}.xml").write_bytes(data)
    return d


@pytest.fixture
def archive(tmp_path, folder):
    path = tmp_path / f"{PREFIX}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="sous-dossier")
    return path


def test_folder_archive_and_file_list_give_the_same_snapshot(folder, archive):
    a = ent_audit.load(folder)
    b = ent_audit.load(archive)
    c = ent_audit.load(sorted(folder.glob("*.xml")))
    for name, frame in a.frames().items():
        pd.testing.assert_frame_equal(frame, b.frames()[name], obj=name)
        pd.testing.assert_frame_equal(frame, c.frames()[name], obj=name)
    assert a.extraction == ent_audit.ExtractionInfo(
        "ENT1D_TEST", "complete", pd.Timestamp("2024-09-16").date()
    )
    assert a.counts() == {"structures": 3, "students": 3, "guardians": 3, "staff": 2}
    assert a.issues.empty and a.skipped.empty and a.notes == []


def test_a_progress_bar_is_shown_when_asked_and_otherwise_not_made(folder, capsys):
    """``progress=True`` shows the bytes read on standard error; ``False`` (and, off a
    terminal, ``None``) shows nothing and makes no bar: tqdm's, even disabled, would import
    multiprocessing for its lock."""
    shown = ent_audit.load(folder, workers=1, progress=True)
    assert "lecture XML" in capsys.readouterr().err
    for progress in (False, None):
        quiet = ent_audit.load(folder, workers=1, progress=progress)
        assert capsys.readouterr().err == ""
        assert isinstance(snapshot._progress_bar(1, progress), snapshot._NoBar)
        for name, frame in shown.frames().items():
            pd.testing.assert_frame_equal(frame, quiet.frames()[name], obj=name)


def test_parallel_load_equals_serial_load(folder, monkeypatch):
    serial = ent_audit.load(folder, workers=1)
    monkeypatch.setattr(snapshot, "PARALLEL_MIN_BYTES", 0)
    parallel = ent_audit.load(folder, workers=2)
    for name, frame in serial.frames().items():
        pd.testing.assert_frame_equal(frame, parallel.frames()[name], obj=name)


def test_parts_read_while_the_archive_is_extracted_equal_the_serial_load(folder, archive, tmp_path):
    serial = ent_audit.load(folder, workers=1)
    streamed = snapshot.load_stream(iter_extract(archive, tmp_path / "x"), workers=2)
    for name, frame in serial.frames().items():
        pd.testing.assert_frame_equal(frame, streamed.frames()[name], obj=name)
    assert streamed.notes == serial.notes


def test_a_streamed_load_says_the_archive_error_before_a_parse_error(folder, tmp_path):
    (folder / f"{PREFIX}_Eleve_0000.xml").write_bytes(b"<ficAlimMENESR><addRequest>")
    path = tmp_path / "bad.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(folder.glob("*.xml")):
            tar.add(f, arcname=f.name)
        tar.addfile(tarfile.TarInfo("lien"), None)  # after the malformed part: still first
    with pytest.raises(UnsafeArchiveError, match="lien"):
        snapshot.load_stream(iter_extract(path, tmp_path / "x"), workers=2)
    assert not list((tmp_path / "x").iterdir())  # what was written is removed
    with pytest.raises(ent_audit.AAFSyntaxError, match="Eleve_0000"):
        snapshot.load_stream(sorted(folder.glob("*.xml")), workers=2)


def test_parts_are_concatenated_in_part_order_and_rows_know_their_source(folder):
    s = ent_audit.load(folder)
    assert s.students["jointure"].tolist() == ["1", "2", "3"]
    assert s.students[["source_file", "record", "line"]].astype(str).values.tolist() == [
        [f"{PREFIX}_Eleve_0000.xml", "0", "5"],
        [f"{PREFIX}_Eleve_0000.xml", "1", "21"],
        [f"{PREFIX}_Eleve_0001.xml", "0", "5"],
    ]
    for name, frame in s.frames().items():
        if name not in ("files", "skipped"):
            assert {"source_file", "record", "line"} <= set(frame.columns), name
    files = s.files.set_index("source_file")
    assert files.loc[f"{PREFIX}_EtabEducNat_0000.xml", "encoding"] == "ISO-8859-15"
    assert not files.loc[f"{PREFIX}_PersRelEleve_0000.xml", "declared"]


def test_dtypes_are_arrow_strings_real_dates_and_booleans(folder):
    s = ent_audit.load(folder)
    st = s.students
    assert st["jointure"].dtype == pd.StringDtype("pyarrow")
    assert st["birth_date"].dtype == "datetime64[ns]"
    assert st.loc[0, "birth_date"] == pd.Timestamp("2016-04-03")
    assert s.staff["is_teacher"].tolist() == [True, False]
    assert s.staff["is_teacher"].dtype == "boolean"
    assert st["cycle"].tolist() == [3, 2, 2]


def test_link_tables(folder):
    s = ent_audit.load(folder)
    sg = s.student_guardian
    both = set(map(tuple, sg[["student", "guardian", "seen_from"]].values.tolist()))
    assert ("1", "300", "student") in both and ("1", "300", "guardian") in both
    assert len(sg) == 4 + 4
    assert s.student_class[["student", "structure", "class_id", "class_name"]].values.tolist() == [
        ["1", "100", "C2", "CM1 B"],
        ["2", "100", "C1", "CP A"],
        ["3", "101", "K1", "CE1"],
    ]
    ps = s.person_structure
    assert ps[ps["kind"] == "staff"][["person", "structure"]].values.tolist() == [
        ["500", "100"],
        ["501", "101"],
        ["501", "900"],
    ]
    assert s.staff_director[["staff", "structure"]].values.tolist() == [["500", "100"]]
    assert s.staff_function["code"].tolist() == ["ENS", "DIR"]
    assert s.staff_function["discipline_code"].tolist() == ["-", "-"]


def test_roster_lists_one_schools_pupils_with_class_level_and_guardians(folder):
    r = ent_audit.load(folder).roster("0310036W")
    assert r[
        ["jointure", "level", "class_name", "guardian_count", "guardians"]
    ].values.tolist() == [
        ["2", "CP", "CP A", 1, "DURAND Anne (mère)"],
        ["1", "CM1", "CM1 B", 2, "DURAND Anne (mère); DURAND Marc (père)"],
    ]
    legal = ent_audit.load(folder).roster("0310037X")
    assert legal["guardians"].tolist() == ["ASE 31 (tuteur)"]
    with pytest.raises(SnapshotError, match="UAI '0319999Z' absente"):
        ent_audit.load(folder).roster("0319999Z")


def test_counts_per_circonscription_count_schools_not_offices(folder):
    table = overview.by_circonscription(ent_audit.load(folder))
    assert table.to_dict("index") == {
        "Fronton": {"schools": 1, "pupils": 2, "staff": 1},
        "Muret": {"schools": 1, "pupils": 1, "staff": 1},
        "Total": {"schools": 2, "pupils": 3, "staff": 2},
    }


def test_a_missing_part_is_an_error_unless_recovering(folder):
    (folder / f"{PREFIX}_Eleve_0001.xml").rename(folder / f"{PREFIX}_Eleve_0002.xml")
    with pytest.raises(SnapshotError, match="Eleve: partie\\(s\\) 0001 absente\\(s\\)"):
        ent_audit.load(folder)
    s = ent_audit.load(folder, recover=True)
    assert s.notes == ["Eleve: partie(s) 0001 absente(s) entre 0000 et 0002"]
    assert len(s.students) == 3


def test_files_of_two_extractions_are_not_mixed(folder):
    (folder / f"{PREFIX}_Eleve_0000.xml").rename(
        folder / "ENT1D_TEST_Delta_20241007_Eleve_0000.xml"
    )
    with pytest.raises(SnapshotError, match="plusieurs extractions mêlées"):
        ent_audit.load(folder)


def test_second_degree_files_are_ignored_with_a_note_and_absent_kinds_noted(folder):
    (folder / f"{PREFIX}_MatiereEducNat_0000.xml").write_bytes(document([]))
    (folder / f"{PREFIX}_PersEducNat_0000.xml").unlink()
    s = ent_audit.load(folder)
    assert s.notes == [
        f"MatiereEducNat: fichier du second degré ignoré ({PREFIX}_MatiereEducNat_0000.xml)",
        "PersEducNat: aucun fichier dans cette extraction complète",
    ]
    assert s.staff.empty and list(s.staff.columns)[:3] == ["jointure", "birth_name", "last_name"]


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: tarfile.TarInfo(f"../{PREFIX}_Eleve_0000.xml"), "chemin absolu ou remontant"),
        (lambda: tarfile.TarInfo(f"/tmp/{PREFIX}_Eleve_0000.xml"), "chemin absolu ou remontant"),
        (lambda: tarfile.TarInfo("notes.txt"), "fichier inattendu"),
    ],
)
def test_hostile_archive_members_are_refused_by_name(tmp_path, make, reason):
    info = make()
    info.size = 3
    path = _tar(tmp_path / f"{PREFIX}.tar.gz", [(info, b"abc")])
    with pytest.raises(UnsafeArchiveError, match=reason) as err:
        ent_audit.load(path)
    assert err.value.member == info.name


def test_links_in_archives_are_refused(tmp_path):
    link = tarfile.TarInfo(f"{PREFIX}_Eleve_0000.xml")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    path = _tar(tmp_path / f"{PREFIX}.tar.gz", [(link, None)])
    with pytest.raises(UnsafeArchiveError, match="lien"):
        ent_audit.load(path)


def test_delete_or_modify_in_a_complete_extraction_is_reported(folder):
    (folder / f"{PREFIX}_Eleve_0001.xml").write_bytes(
        document([record("Eleve", "3", op="delete"), record("Eleve", "4", pupil("4"), op="modify")])
    )
    s = ent_audit.load(folder)
    assert s.issues[["code", "jointure", "value", "line"]].values.tolist() == [
        ["unexpected_operation", "3", "delete", 5],
        ["unexpected_operation", "4", "modify", 9],
    ]
