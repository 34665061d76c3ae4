import datetime as dt

import pytest

from ent_audit import NamingError, group_parts, parse_archive_name, parse_name


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "ENT1D_BESSIERES_Complet_20240916_EtabEducNat_0000.xml",
            ("ENT1D_BESSIERES", "complete", dt.date(2024, 9, 16), "EtabEducNat", 0),
        ),
        (
            "ENT1D_ENT2DVA-ENT16_Delta_20241007_PersRelEleve_0039.xml",
            ("ENT1D_ENT2DVA-ENT16", "delta", dt.date(2024, 10, 7), "PersRelEleve", 39),
        ),
        (
            "FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml",
            ("FULL_ENTTSSERVICES", "complete", dt.date(2013, 1, 17), "Eleve", 1),
        ),
        ("ENT_Complet_Eleve_0000.xml", ("ENT", "complete", None, "Eleve", 0)),
        (
            "some/dir/ENT1D_X_Complet_20240916_PersEducNat_0002.xml",
            ("ENT1D_X", "complete", dt.date(2024, 9, 16), "PersEducNat", 2),
        ),
        (
            "ENT2D_X_Complet_20240916_MefEducNat_0000.xml",
            ("ENT2D_X", "complete", dt.date(2024, 9, 16), "MefEducNat", 0),
        ),
    ],
)
def test_every_name_form_parses_from_the_right(name, expected):
    n = parse_name(name)
    assert (n.perimeter, n.extraction, n.date, n.kind, n.part) == expected
    assert n.first_degree is (n.kind != "MefEducNat")


def test_a_parsed_name_writes_back_identically():
    for name in (
        "ENT1D_ENT2DVA-ENT16_Delta_20241007_PersRelEleve_0039.xml",
        "ENT_Complet_Eleve_0000.xml",
    ):
        assert parse_name(name).filename == name


@pytest.mark.parametrize(
    "name, why",
    [
        ("ENT1D_X_Complet_20240916_Eleve.xml", r"<NNNN>\.xml"),
        ("ENT1D_X_Partiel_20240916_Eleve_0000.xml", "Complet|Delta"),
        ("ENT1D_X_Complet_20241332_Eleve_0000.xml", "'20241332' n'est pas une date"),
        ("ENT1D_X_Complet_20240916_Parent_0000.xml", "type de fichier 'Parent' inconnu"),
    ],
)
def test_a_name_that_does_not_parse_is_quoted_with_the_expected_form(name, why):
    with pytest.raises(NamingError, match=rf"nom de fichier non reconnu '{name}'.*{why}"):
        parse_name(name)


def test_archive_names():
    a = parse_archive_name("/sftp/ENT1D_BESSIERES_Delta_20241007.tar.gz")
    assert (a.perimeter, a.extraction, a.date) == ("ENT1D_BESSIERES", "delta", dt.date(2024, 10, 7))
    assert a.filename == "ENT1D_BESSIERES_Delta_20241007.tar.gz"
    assert a.file("Eleve", 3).filename == "ENT1D_BESSIERES_Delta_20241007_Eleve_0003.xml"
    with pytest.raises(NamingError, match=r"\.tar\.gz"):
        parse_archive_name("ENT1D_BESSIERES_Delta_20241007.zip")


def test_parts_of_one_kind_are_grouped_in_part_order_and_gaps_are_listed():
    names = [f"ENT1D_X_Complet_20240916_Eleve_{i:04d}.xml" for i in (10, 2, 0, 1, 3, 9)]
    names += ["ENT1D_X_Complet_20240916_EtabEducNat_0000.xml"]
    groups = group_parts(names)
    assert [g.kind for g in groups] == ["EtabEducNat", "Eleve"]
    eleve = groups[1]
    assert eleve.numbers == (0, 1, 2, 3, 9, 10)
    assert [p.name[-9:-4] for p in eleve.parts] == [
        "_0000",
        "_0001",
        "_0002",
        "_0003",
        "_0009",
        "_0010",
    ]
    assert eleve.missing == (4, 5, 6, 7, 8)


def test_the_same_part_twice_is_an_error():
    with pytest.raises(NamingError, match=r"doublon: \[1\]"):
        group_parts(
            [
                "a/ENT1D_X_Complet_20240916_Eleve_0001.xml",
                "b/ENT1D_X_Complet_20240916_Eleve_0001.xml",
            ]
        )
