"""The streaming reader on hand-written files, one quirk of aaf-format.md per test."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import SCHOOL, document, pupil, record

from ent_audit import AAFSyntaxError, UnsafeXMLError
from ent_audit.aaf.frames import read_frames
from ent_audit.aaf.reader import read_part

ELEVE = "ENT1D_TEST_Complet_20240916_Eleve_0000.xml"
DELTA = "ENT1D_TEST_Delta_20241007_Eleve_0000.xml"


@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-15", None])
@pytest.mark.parametrize("crlf", [False, True])
def test_encodings_and_line_ends_give_the_same_values(write, encoding, crlf):
    name = "Œuvre Hélène d'Été & Cie €"
    if encoding == "ISO-8859-15":
        assert name.encode("iso-8859-15")  # Œ and € exist in Latin-9, not in Latin-1
    doc = document(
        [record("Eleve", "1", pupil("1", ENTPersonNom=name))], encoding=encoding, crlf=crlf
    )
    if encoding is None:
        assert not doc.startswith(b"<?xml")
    part = read_frames(write(ELEVE, doc), "Eleve")
    assert part.entity.loc[0, "last_name"] == name
    assert part.info["encoding"] == (encoding or "UTF-8")
    assert part.info["declared"] is (encoding is not None)
    assert part.issues.empty


def test_latin9_bytes_without_declaration_are_a_located_error(write):
    doc = document([record("Eleve", "1", pupil("1", ENTPersonNom="Hélène"))], encoding=None)
    path = write(ELEVE, doc.replace("Hélène".encode(), "Hélène".encode("iso-8859-15")))
    with pytest.raises(AAFSyntaxError, match=r"Eleve_0000\.xml:\d+:\d+: .*") as err:
        read_part(path)
    assert err.value.line == 11


def test_entities_in_values_are_decoded(write):
    doc = document(
        [
            record(
                "EtabEducNat", "100", {**SCHOOL, "ENTStructureNomCourant": "ECOLE L'ÉTÉ & LES PINS"}
            )
        ]
    )
    assert b"&apos;" in doc and b"&amp;" in doc
    part = read_frames(write("ENT1D_T_Complet_20240916_EtabEducNat_0000.xml", doc), "EtabEducNat")
    assert part.entity.loc[0, "name"] == "ECOLE L'ÉTÉ & LES PINS"


def test_undeclared_entity_is_a_located_error_never_a_truncated_value(write):
    """With an unread external DTD, libxml2 keeps ``&eacute;`` as a node: the text would be cut."""
    doc = document([record("Eleve", "1", pupil("1")), record("Eleve", "2", pupil("2"))])
    path = write(ELEVE, doc.replace(b"Testeur", b"T&eacute;st", 1))
    with pytest.raises(AAFSyntaxError, match=r"Eleve_0000\.xml:12: entité &eacute; non déclarée"):
        read_part(path)
    part = read_frames(path, "Eleve", recover=True)
    assert part.entity["jointure"].tolist() == ["2"]
    assert part.skipped[["line", "record_id"]].values.tolist() == [[12, "1"]]


def test_empty_values_are_missing_not_empty_strings(write):
    doc = document(
        [
            record(
                "PersRelEleve",
                "300",
                {
                    "ENTPersonJointure": "300",
                    "ENTPersonNom": "Parent",
                    "ENTPersonMail": None,
                    "ENTPersonTelPerso": "  ",
                    "ENTPersRelEleveEleve": ["1", None],
                },
            )
        ]
    )
    doc = doc.replace(
        b'<attr name="ENTPersonTelPerso"><value>  </value>',
        b'<attr name="ENTPersonTelPerso"><value></value>',
    )
    part = read_frames(write("E_Complet_20240916_PersRelEleve_0000.xml", doc), "PersRelEleve")
    row = part.entity.iloc[0]
    assert row["mail"] is pd_na() and row["home_phone"] is pd_na()
    assert part.links["student_guardian"]["student"].tolist() == ["1"]


def pd_na():
    import pandas as pd

    return pd.NA


def test_missing_dtd_is_never_fetched_and_header_comments_are_metadata(write):
    doc = document(
        [record("Eleve", "1", pupil("1"))],
        comments=[
            'versionAF="AAF-VE1301"',
            'versionSDET="v6.5" codeAcademieExport="16" degre="1D" dateGenerationExport="16/09/2024"',
        ],
    )
    raw = read_part(write(ELEVE, doc))
    assert raw.metadata == {
        "versionAF": "AAF-VE1301",
        "versionSDET": "v6.5",
        "codeAcademieExport": "16",
        "degre": "1D",
        "dateGenerationExport": "16/09/2024",
    }
    assert raw.n_records == 1


def test_external_entity_is_refused_unread(write, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    doc = (
        f'<?xml version="1.0"?>\n<!DOCTYPE ficAlimMENESR [\n'
        f'<!ENTITY xxe SYSTEM "file://{secret}">\n]>\n<ficAlimMENESR>'
        + record("Eleve", "1", pupil("1", ENTPersonNom="&xxe;")).replace("&amp;xxe;", "&xxe;")
        + "</ficAlimMENESR>"
    )
    with pytest.raises(UnsafeXMLError, match=r"Eleve_0000\.xml:3: .*déclare des entités"):
        read_part(write(ELEVE, doc))


def test_entity_expansion_bomb_is_refused_unread(write):
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
    doc = (
        '<?xml version="1.0"?>\n<!DOCTYPE ficAlimMENESR [\n<!ENTITY lol0 "lol">\n'
        + lol
        + "]>\n<ficAlimMENESR><addRequest><identifier><id>&lol9;</id></identifier>"
        "</addRequest></ficAlimMENESR>"
    )
    with pytest.raises(UnsafeXMLError, match="bombe d'expansion"):
        read_part(write(ELEVE, doc))


def test_multi_valued_attributes_keep_every_value_in_order(write):
    doc = document(
        [
            record(
                "Eleve",
                "1",
                pupil(
                    "1",
                    ENTPersonAutresPrenoms=["Louise", "Marie", "Anne"],
                    guardians=["300$10", "301$20", "302$51"],
                ),
            )
        ]
    )
    part = read_frames(write(ELEVE, doc), "Eleve")
    assert part.links["person_other_name"]["other_first_name"].tolist() == [
        "Louise",
        "Marie",
        "Anne",
    ]
    sg = part.links["student_guardian"]
    assert sg[["student", "guardian", "link_code", "link_label", "seen_from"]].values.tolist() == [
        ["1", "300", "10", "mère", "student"],
        ["1", "301", "20", "père", "student"],
        ["1", "302", "51", "aide sociale à l'enfance", "student"],
    ]


def test_class_value_splits_in_five_fields_and_nom_courant_does_not_split(write):
    doc = document([record("Eleve", "1", pupil("1", classes=["100$X$Y$C1$CE1 A$B"]))])
    part = read_frames(write(ELEVE, doc), "Eleve")
    assert part.links["student_class"].iloc[0][
        ["student", "structure", "field1", "field2", "class_id", "class_name"]
    ].tolist() == ["1", "100", "X", "Y", "C1", "CE1 A$B"]
    assert part.issues["code"].tolist() == ["malformed_value"]  # six fields, not five
    etab = document([record("EtabEducNat", "100", SCHOOL)])
    s = read_frames(write("E_Complet_20240916_EtabEducNat_0000.xml", etab), "EtabEducNat")
    assert s.entity.loc[0, "name"] == "ECOLE ELEMENTAIRE LOUISE MICHEL$BESSIERES"


def test_record_id_different_from_jointure_is_reported(write):
    doc = document([record("Eleve", "999", pupil("1")), record("Eleve", "2", pupil("2"))])
    part = read_frames(write(ELEVE, doc), "Eleve")
    assert part.entity["jointure"].tolist() == ["1", "2"]
    issue = part.issues.iloc[0]
    assert (issue["code"], issue["jointure"], issue["value"], issue["line"]) == (
        "id_mismatch",
        "1",
        "999",
        5,
    )


def test_ldap_aliases_fill_the_same_columns(write):
    doc = document(
        [
            record(
                "PersEducNat",
                "500",
                {
                    "ENTPersonJointure": "500",
                    "sn": "Martin",
                    "givenName": "Léa",
                    "personalTitle": "Mme",
                    "mail": "lea.martin@example.org",
                },
            )
        ]
    )
    part = read_frames(write("E_Complet_20240916_PersEducNat_0000.xml", doc), "PersEducNat")
    assert part.entity.iloc[0][["last_name", "first_name", "title", "mail"]].tolist() == [
        "Martin",
        "Léa",
        "Mme",
        "lea.martin@example.org",
    ]
    assert part.issues.empty


def test_accented_civilite_spelling_of_annexe_1_is_an_alias(write):
    doc = document(
        [
            record(
                "PersRelEleve",
                "300",
                {"ENTPersonJointure": "300", "ENTPersonNom": "X", "ENTPersonCivilité": "M."},
            )
        ]
    )
    part = read_frames(write("E_Complet_20240916_PersRelEleve_0000.xml", doc), "PersRelEleve")
    assert part.entity.loc[0, "title"] == "M." and part.issues.empty


def test_typed_values_dates_flags_levels_cycles(write):
    recs = [
        record(
            "Eleve",
            str(i),
            pupil(str(i), level=lvl, cycle=cyc, birth=b, ENTEleveRestaurantScolaire=flag),
        )
        for i, (lvl, cyc, b, flag) in enumerate(
            [
                ("CP", "CYCLE 2", "01/09/2020", "O"),
                ("ms", "cycle des apprentissages premiers", "29/02/2020", "N"),
                ("CM2", "3", "31/02/2016", "peut-être"),
                ("6EME", "Cycle 4", "2016-01-01", None),
            ]
        )
    ]
    part = read_frames(write(ELEVE, document(recs)), "Eleve")
    e = part.entity
    assert e["level"].tolist()[:3] == ["CP", "MS", "CM2"]
    assert e["cycle"].tolist()[:3] == [2, 1, 3]
    assert str(e["birth_date"].dtype) == "datetime64[ns]"
    assert e["birth_date"].dt.strftime("%Y-%m-%d").tolist()[:2] == ["2020-09-01", "2020-02-29"]
    assert e["canteen"].tolist()[:2] == [True, False]
    bad = part.issues[part.issues["code"] == "invalid_value"]
    assert sorted(zip(bad["attribute"], bad["value"], strict=False)) == sorted(
        [
            ("ENTPersonDateNaissance", "31/02/2016"),
            ("ENTEleveRestaurantScolaire", "peut-être"),
            ("ENTEleveNiveau", "6EME"),
            ("ENTEleveCycle", "Cycle 4"),
            ("ENTPersonDateNaissance", "2016-01-01"),
        ]
    )


def test_unknown_and_unlisted_attributes_are_kept_aside_and_reported(write):
    doc = document(
        [
            record(
                "Eleve",
                "1",
                pupil("1", ENTPersonMail="x@example.org", ENTEleveCouleurPrefere=["bleu", "vert"]),
            )
        ]
    )
    part = read_frames(write(ELEVE, doc), "Eleve")
    assert part.extras[["jointure", "attribute", "value"]].values.tolist() == [
        ["1", "ENTPersonMail", "x@example.org"],
        ["1", "ENTEleveCouleurPrefere", "bleu"],
        ["1", "ENTEleveCouleurPrefere", "vert"],
    ]
    assert dict(zip(part.issues["attribute"], part.issues["code"], strict=False)) == {
        "ENTPersonMail": "unlisted_attribute",
        "ENTEleveCouleurPrefere": "unknown_attribute",
    }


def test_second_value_of_a_single_valued_attribute_is_reported_not_lost(write):
    doc = document([record("Eleve", "1", pupil("1", ENTPersonNom=["Un", "Deux"]))])
    part = read_frames(write(ELEVE, doc), "Eleve")
    assert part.entity.loc[0, "last_name"] == "Un"
    assert part.issues["code"].tolist() == ["multiple_values"]
    assert part.extras[["attribute", "value"]].values.tolist() == [["ENTPersonNom", "Deux"]]


def test_delta_add_modify_delete_in_any_order(write):
    doc = document(
        [
            record("Eleve", "7", op="delete"),
            record("Eleve", "8", pupil("8", level="CM1", cycle="cycle 3"), op="modify"),
            record("Eleve", "9", pupil("9")),
        ]
    )
    part = read_frames(write(DELTA, doc), "Eleve")
    e = part.entity
    assert e[["jointure", "op"]].astype(str).values.tolist() == [
        ["7", "delete"],
        ["8", "modify"],
        ["9", "add"],
    ]
    assert e.loc[1, "level"] == "CM1" and e.loc[1, "cycle"] == 3
    assert e.loc[0, "last_name"] is pd_na()
    assert part.issues.empty


def test_add_and_delete_modifications_are_kept_apart_and_an_unknown_one_is_reported(write):
    doc = document(
        [
            record(
                "Eleve",
                "8",
                {"ENTPersonJointure": "8", "ENTEleveNiveau": "CP", "ENTPersonNom": "X"},
                op="modify",
            )
        ]
    )
    doc = doc.replace(
        b'name="ENTEleveNiveau" operation="replace"', b'name="ENTEleveNiveau" operation="add"'
    ).replace(b'name="ENTPersonNom" operation="replace"', b'name="ENTPersonNom" operation="merge"')
    part = read_frames(write(DELTA, doc), "Eleve")
    assert part.entity.loc[0, "level"] is pd_na()  # not a replacement: the store adds it
    mods = part.modifications
    assert mods[["attribute", "op", "value"]].astype(object).fillna("").values.tolist() == [
        ["ENTPersonJointure", "replace", ""],
        ["ENTEleveNiveau", "add", ""],
        ["ENTEleveNiveau", "add", "CP"],
    ]
    assert part.issues[["code", "attribute", "value"]].values.tolist() == [
        ["unsupported_operation", "ENTPersonNom", "merge"]
    ]


BROKEN_DELTA = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">
<ficAlimMENESR>
<modifyRequest>
  <operationalAttributes><attr name="categoriePersonne"><value>Eleve</value></attr></operationalAttributes>
  <identifier><id>10</id></identifier>
  <modifications>
    <modification name="ENTPersonJointure" operation="replace"><value>10</value></modification>
    <modification name="ENTPersonMail"><value/></attr>
  </modifications>
</modifyRequest>
<addRequest>
  <operationalAttributes><attr name="categoriePersonne"><value>Eleve</value></attr></operationalAttributes>
  <identifier><id>11</id></identifier>
  <attributes><attr name="ENTPersonJointure"><value>11</value></attr></attributes>
</addRequest>
<deleteRequest>
  <operationalAttributes><attr name="categoriePersonne"><value>Eleve</value></attr></operationalAttributes>
  <identifier><id>12</id></identifier>
</deleteRequest>
</ficAlimMENESR>
"""


def test_official_broken_delta_is_an_error_naming_file_line_and_column(write):
    path = write(DELTA, BROKEN_DELTA)
    with pytest.raises(AAFSyntaxError) as err:
        read_part(path)
    e = err.value
    assert (e.path, e.line) == (str(path), 9)
    assert e.column and "mismatch" in e.reason.lower()
    assert str(e).startswith(f"{path}:9:{e.column}: ")


def test_recover_salvages_well_formed_records_and_lists_the_skipped_one(write):
    part = read_frames(write(DELTA, BROKEN_DELTA), "Eleve", recover=True)
    assert part.entity[["jointure", "op"]].astype(str).values.tolist() == [
        ["11", "add"],
        ["12", "delete"],
    ]
    assert part.entity["line"].tolist() == [12, 17]
    sk = part.skipped.iloc[0]
    assert (sk["line"], sk["record_id"]) == (9, "10")
    assert "mismatch" in sk["message"].lower()
    assert "malformed_file" in part.issues["code"].tolist()


def test_category_other_than_the_file_kind_is_reported(write):
    doc = document([record("PersEducNat", "1", {"ENTPersonJointure": "1"})])
    part = read_frames(write(ELEVE, doc), "Eleve")
    assert part.issues[["code", "value"]].values.tolist() == [["wrong_category", "PersEducNat"]]


def test_records_outside_the_root_element_are_refused(write):
    doc = (
        b'<?xml version="1.0"?>\n<autre>' + record("Eleve", "1", pupil("1")).encode() + b"</autre>"
    )
    with pytest.raises(AAFSyntaxError, match="hors de <ficAlimMENESR>"):
        read_part(write(ELEVE, doc))


@pytest.mark.slow
def test_memory_does_not_grow_with_file_size(tmp_path):
    """Stream a 10 MB and a 60 MB file through the parse loop; peak RSS stays flat."""
    rec = record("Eleve", "1", pupil("1", ENTPersonAutresPrenoms=["A" * 200] * 5)).encode()
    sizes = {}
    for mb in (10, 60):
        p = tmp_path / f"E_Complet_20240916_Eleve_{mb:04d}.xml"
        n = mb * 1_000_000 // len(rec)
        p.write_bytes(document([]).replace(b"</ficAlimMENESR>", rec * n + b"</ficAlimMENESR>"))
        code = textwrap.dedent(f"""
            from ent_audit.aaf import reader as aaf
            class Count:
                n = 0
                def record(self, rec, line=None):
                    self.n += 1
            c = Count()
            with open({str(p)!r}, "rb") as fh:
                aaf._stream(fh, c)
            assert c.n == {n}, c.n
            # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec.
            print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
        """)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        sizes[mb] = int(out.stdout) / 1024  # MB
    assert sizes[60] - sizes[10] < 15, sizes


def test_values_outside_any_named_attribute_are_reported_not_dropped(write):
    doc = document([record("Eleve", "1", pupil("1"))])
    doc = doc.replace(b"<attributes>", b"<attributes><value>perdue</value>", 1)
    doc = doc.replace(b'<attr name="ENTEleveNiveau">', b"<attr>", 1)
    part = read_frames(write(ELEVE, doc), "Eleve")
    assert sorted(part.issues[["code", "value"]].values.tolist()) == [
        ["stray_value", "perdue"],
        ["unnamed_attribute", "CE1"],
    ]


def test_a_part_s_empty_and_filled_link_frames_share_columns_and_dtypes(write):
    """Link frames are built in one step and empty frames once per columns: a part whose
    pupil has no guardian gives the same columns and dtypes as one whose pupil has, an
    unknown link code is still reported, and each part's empty frames are its own."""
    with_links = read_frames(
        write(ELEVE, document([record("Eleve", "1", pupil("1", guardians=["300$10", "301$99"]))])),
        "Eleve",
    )
    without = read_frames(
        write(
            "ENT1D_DEMO31_Complet_20260914_Eleve_0001.xml",
            document([record("Eleve", "2", pupil("2", guardians=[]))]),
        ),
        "Eleve",
    )
    for name, frame in with_links.links.items():
        empty = without.links[name]
        assert list(empty.columns) == list(frame.columns), name
        assert [str(t) for t in empty.dtypes] == [str(t) for t in frame.dtypes], name
    sg = with_links.links["student_guardian"]
    assert len(without.links["student_guardian"]) == 0
    assert sg["link_label"].isna().tolist() == [False, True]
    assert sg["record"].tolist() == [0, 0] and str(sg["source_file"].dtype) == "category"
    unknown = with_links.issues[with_links.issues["code"] == "invalid_value"]
    assert unknown["message"].str.contains("inconnu dans").tolist() == [True]
    without.modifications["kind"] = "changed"  # an empty frame of one part, not of the next
    again = read_frames(
        write(
            "ENT1D_DEMO31_Complet_20260914_Eleve_0002.xml",
            document([record("Eleve", "3", pupil("3"))]),
        ),
        "Eleve",
    )
    assert len(again.modifications) == 0 and str(again.modifications["kind"].dtype) == "string"
