"""The data-quality audit: every rule on a tiny hand-written extraction, the whole catalogue
scored against the generator's truth, thresholds, perimeter, trend, what is published, and
the report through the runner in a real kernel and a real browser."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import SCHOOL, document, pupil, record
from helpers import (
    CHROMIUM,
    check_french_first_screen,
    check_rendered,
    leaks,
    page_text,
    personal_values,
)

import ent_audit
from ent_audit import synth
from ent_audit.aaf import schema
from ent_audit.analyses import quality
from ent_audit.analyses.quality import RULE_BY_ID, RULES, QualityError, Severity, Threshold
from ent_audit.checks import Status
from ent_audit.privacy import Pseudonymiser
from ent_audit.reports import registry
from ent_audit.reports import runner as report
from ent_audit.store.store import Store, StoreError

ROOT = Path(__file__).parents[2]
PREFIX = "ENT1D_TEST_Complet_20260914"
GENERATED = {"seed": 3, "schools": 12, "pupils": 800}
ALL_DEFECTS = {name: 0.01 for name in synth.DEFECTS}


def uai(number: int) -> str:
    """A valid UAI (right check letter) for a 7-digit number."""
    digits = f"{number:07d}"
    return digits + schema.UAI_KEYS[number % 23]


# ---------------------------------------------------------------------------------------------
# A tiny clean extraction, and the builder of its variants
# ---------------------------------------------------------------------------------------------

CIRC = {
    "ENTStructureJointure": "101",
    "ENTStructureUAI": uai(310900),
    "ENTStructureNomCourant": "CIRCONSCRIPTION DE FRONTON",
    "ENTStructureTypeStruct": "CIRCONSCRIPTION",
    "ENTEcoleCirconscription": "Fronton",
}
PUPIL = pupil("200")
GUARDIAN = {
    "ENTPersonJointure": "300",
    "ENTPersonNom": "Parent",
    "ENTPersonPrenom": "Alex",
    "ENTPersRelEleveEleve": ["200"],
    "ENTPersonCodePostal": "31660",
    "ENTPersonPays": "FRANCE",
    "ENTPersRelEleveTelMobile": "06 12 34 56 78",
    "ENTPersonTelPerso": "+33 5 61 00 00 00",
    "ENTPersonMail": "alex.parent@example.org",
}
DIRECTOR = {
    "ENTPersonJointure": "400",
    "ENTPersonNom": "Maître",
    "ENTPersonPrenom": "Claude",
    "ENTPersonDateNaissance": "01/02/1980",
    "ENTPersonStructRattach": "100",
    "ENTPersonFonctions": ["100$ENS$ENSEIGNEMENT$-$-", "100$DIR$DIRECTION$-$-"],
    "ENTPersonCategorieEnseignant": "O",
    "ENTEnsFonctionDir": "100",
    "ENTPersonMail": "claude.maitre@ac-toulouse.example",
}
AESH = {
    "ENTPersonJointure": "401",
    "ENTPersonNom": "Aide",
    "ENTPersonPrenom": "Dominique",
    "ENTPersonDateNaissance": "03/04/1990",
    "ENTPersonStructRattach": "100",
    "ENTPersonCategorieEnseignant": "N",
}
SCHOOL_B = {
    **SCHOOL,
    "ENTStructureJointure": "102",
    "ENTStructureUAI": uai(310037),
    "ENTStructureNomCourant": "ECOLE B",
}


def extraction(
    folder: Path,
    *,
    structures=(SCHOOL, CIRC),
    pupils=(PUPIL,),
    guardians=(GUARDIAN,),
    staff=(DIRECTOR,),
    recover: bool = False,
    raw: dict[str, str] | None = None,
) -> ent_audit.Snapshot:
    """Write the four files (a record's id is its jointure unless it carries ``_id``; a
    ``_kind`` writes another category) and load them."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind, rows in (
        ("EtabEducNat", structures),
        ("Eleve", pupils),
        ("PersRelEleve", guardians),
        ("PersEducNat", staff),
    ):
        id_attr = schema.KINDS[kind].id_attr
        records = []
        for attrs in rows:
            attrs = dict(attrs)
            rid = attrs.pop("_id", None) or attrs.get(id_attr) or "?"
            records.append(record(attrs.pop("_kind", kind), rid, attrs))
        data = document(records)
        for old, new in (raw or {}).items() if kind == "Eleve" else ():
            data = data.replace(old.encode(), new.encode())
        (folder / f"{PREFIX}_{kind}_0000.xml").write_bytes(data)
    return ent_audit.load(folder, recover=recover, workers=1)


def found(result: quality.AuditResult) -> set[tuple[str, str]]:
    return set(zip(result.findings["rule"], result.findings["jointure"], strict=True))


def test_the_fixture_extraction_is_clean(tmp_path):
    result = quality.audit(
        extraction(tmp_path, staff=(DIRECTOR, AESH)), perimeter=[SCHOOL["ENTStructureUAI"]]
    )
    assert result.findings.empty, result.findings
    assert set(result.summary["status"]) == {"ok"}


# Each case: what changes from the clean extraction, the audit's parameters, and every
# (rule, jointure) found. A defect that has a consequence lists it too.
CASES = {
    # structures
    "uai_invalid: wrong check letter": (
        {"structures": ({**SCHOOL, "ENTStructureUAI": "0310036X"}, CIRC)},
        {},
        {("uai_invalid", "100")},
    ),
    "uai_invalid: malformed": (
        {"structures": ({**SCHOOL, "ENTStructureUAI": "031003W"}, CIRC)},
        {},
        {("uai_invalid", "100")},
    ),
    "uai_invalid: absent": (
        {"structures": ({**SCHOOL, "ENTStructureUAI": None}, CIRC)},
        {},
        {("uai_invalid", "100")},
    ),
    "uai_duplicate": (
        {"structures": (SCHOOL, {**CIRC, "ENTStructureUAI": SCHOOL["ENTStructureUAI"]})},
        {},
        {("uai_duplicate", "100"), ("uai_duplicate", "101")},
    ),
    "structure_incomplete": (
        {
            "structures": (
                {**SCHOOL, "ENTEcoleCommune": None},
                {**CIRC, "ENTStructureNomCourant": None},
            )
        },
        {},
        {("structure_incomplete", "100"), ("structure_incomplete", "101")},
    ),
    "structure_incomplete: a circonscription office needs no commune": (
        {"structures": (SCHOOL, {**CIRC, "ENTEcoleCirconscription": None})},
        {},
        set(),
    ),
    "school_without_pupils": (
        {
            "structures": (SCHOOL, SCHOOL_B, CIRC),
            "staff": (
                DIRECTOR,
                {
                    **DIRECTOR,
                    "ENTPersonJointure": "402",
                    "ENTPersonPrenom": "Lou",
                    "ENTPersonStructRattach": "102",
                    "ENTEnsFonctionDir": "102",
                    "ENTPersonFonctions": "102$ENS$ENSEIGNEMENT$-$-",
                },
            ),
        },
        {},
        {("school_without_pupils", "102")},
    ),
    "school_without_teacher": (
        {"staff": ({**DIRECTOR, "ENTPersonCategorieEnseignant": "N"},)},
        {},
        {("school_without_teacher", "100")},
    ),
    "school_without_director": (
        {"staff": ({**DIRECTOR, "ENTEnsFonctionDir": None},)},
        {},
        {("school_without_director", "100")},
    ),
    "school_several_directors": (
        {"staff": (DIRECTOR, {**DIRECTOR, "ENTPersonJointure": "402", "ENTPersonPrenom": "Lou"})},
        {},
        {("school_several_directors", "100")},
    ),
    "school_outside_perimeter, and its people": (
        {},
        {"perimeter": [uai(310037)]},
        {
            ("school_outside_perimeter", "100"),
            ("person_outside_perimeter", "200"),
            ("person_outside_perimeter", "300"),
            ("person_outside_perimeter", "400"),
        },
    ),
    # pupils
    "ine_missing": ({"pupils": ({**PUPIL, "ENTEleveINE": None},)}, {}, {("ine_missing", "200")}),
    "ine_malformed": (
        {"pupils": ({**PUPIL, "ENTEleveINE": "12345"},)},
        {},
        {("ine_malformed", "200")},
    ),
    "ine_duplicate": (
        {
            "pupils": (
                PUPIL,
                pupil(
                    "201",
                    ENTPersonPrenom="Léo",
                    birth="04/05/2019",
                    ENTEleveINE=PUPIL["ENTEleveINE"],
                ),
            ),
            "guardians": ({**GUARDIAN, "ENTPersRelEleveEleve": ["200", "201"]},),
        },
        {},
        {("ine_duplicate", "200"), ("ine_duplicate", "201")},
    ),
    "birth_date_missing": (
        {"pupils": ({**PUPIL, "ENTPersonDateNaissance": None},)},
        {},
        {("birth_date_missing", "200")},
    ),
    "birth_date_invalid: not a date": (
        {"pupils": ({**PUPIL, "ENTPersonDateNaissance": "31/02/2019"},)},
        {},
        {("birth_date_invalid", "200")},
    ),
    "birth_date_invalid: after the extraction": (
        {"pupils": ({**PUPIL, "ENTPersonDateNaissance": "01/01/2027"},)},
        {},
        {("birth_date_invalid", "200")},
    ),
    "age_level_mismatch": (
        {"pupils": ({**PUPIL, "ENTPersonDateNaissance": "12/03/2016"},)},
        {},
        {("age_level_mismatch", "200")},
    ),
    "age_level_mismatch: one year is tolerated": (
        {"pupils": ({**PUPIL, "ENTPersonDateNaissance": "12/03/2018"},)},
        {},
        set(),
    ),
    "age_level_mismatch: ULIS pupils are exempt": (
        {
            "pupils": (
                {**PUPIL, "ENTPersonDateNaissance": "12/03/2016", "ENTEleveTypeClasse": "ULIS"},
            )
        },
        {},
        set(),
    ),
    "age_level_mismatch: tolerance is a parameter": (
        {"pupils": ({**PUPIL, "ENTPersonDateNaissance": "12/03/2016"},)},
        {"age_tolerance": 3},
        set(),
    ),
    "level_cycle_mismatch": (
        {"pupils": ({**PUPIL, "ENTEleveCycle": "CYCLE 3"},)},
        {},
        {("level_cycle_mismatch", "200")},
    ),
    "pupil_without_structure": (
        {"pupils": ({**PUPIL, "ENTPersonStructRattach": None},)},
        {},
        {("pupil_without_structure", "200")},
    ),
    "unknown_structure": (
        {"staff": (DIRECTOR, {**AESH, "ENTPersonStructRattach": "999"})},
        {},
        {("unknown_structure", "401")},
    ),
    "unknown_structure: a pupil's class is then elsewhere too": (
        {"pupils": ({**PUPIL, "ENTPersonStructRattach": "999"},)},
        {},
        {("unknown_structure", "200"), ("class_other_structure", "200")},
    ),
    "class_other_structure": (
        {"pupils": ({**PUPIL, "ENTPersonClasses": ["101$$$C9$CE1"]},)},
        {},
        {("class_other_structure", "200")},
    ),
    "pupil_without_class": (
        {"pupils": ({**PUPIL, "ENTPersonClasses": None},)},
        {},
        {("pupil_without_class", "200")},
    ),
    "pupil_several_classes": (
        {"pupils": ({**PUPIL, "ENTPersonClasses": ["100$$$C1$CE1 A", "100$$$C2$CE1 B"]},)},
        {},
        {("pupil_several_classes", "200")},
    ),
    "pupil_several_schools": (
        {"pupils": ({**PUPIL, "ENTPersonStructRattach": ["100", "101"]},)},
        {},
        {("pupil_several_schools", "200")},
    ),
    "pupil_without_guardian": (
        {"pupils": ({**PUPIL, "ENTEleveAutoriteParentale": None},), "guardians": ()},
        {},
        {("pupil_without_guardian", "200")},
    ),
    "guardian_unknown": (
        {"pupils": ({**PUPIL, "ENTEleveAutoriteParentale": ["300$10", "399$20"]},)},
        {},
        {("guardian_unknown", "200")},
    ),
    "duplicate_person: accents and case aside": (
        {
            "pupils": (
                PUPIL,
                pupil(
                    "201", ENTPersonNom="TESTEUR", ENTPersonPrenom="Zoe", ENTEleveINE="0000000201B"
                ),
            ),
            "guardians": ({**GUARDIAN, "ENTPersRelEleveEleve": ["200", "201"]},),
        },
        {},
        {("duplicate_person", "200"), ("duplicate_person", "201")},
    ),
    "person_outside_perimeter: staff of offices are not": (
        {"staff": (DIRECTOR, {**AESH, "ENTPersonStructRattach": "101"})},
        {"perimeter": [SCHOOL["ENTStructureUAI"]]},
        set(),
    ),
    # guardians
    "guardian_without_pupil": (
        {
            "guardians": (
                GUARDIAN,
                {**GUARDIAN, "ENTPersonJointure": "301", "ENTPersRelEleveEleve": None},
            )
        },
        {},
        {("guardian_without_pupil", "301")},
    ),
    "guardian_pupil_unknown": (
        {"guardians": ({**GUARDIAN, "ENTPersRelEleveEleve": ["200", "299"]},)},
        {},
        {("guardian_pupil_unknown", "300")},
    ),
    "link_pupil_side_only": (
        {"guardians": ({**GUARDIAN, "ENTPersRelEleveEleve": None},)},
        {},
        {("link_pupil_side_only", "200")},
    ),
    "link_guardian_side_only": (
        {"guardians": (GUARDIAN, {**GUARDIAN, "ENTPersonJointure": "301"})},
        {},
        {("link_guardian_side_only", "301")},
    ),
    "mail_malformed": (
        {"guardians": ({**GUARDIAN, "ENTPersonMail": "alex@@example.org"},)},
        {},
        {("mail_malformed", "300")},
    ),
    "phone_malformed": (
        {"guardians": ({**GUARDIAN, "ENTPersonTelPerso": "05 61 00"},)},
        {},
        {("phone_malformed", "300")},
    ),
    "phone_malformed: a malformed mobile is not also called a landline": (
        {"guardians": ({**GUARDIAN, "ENTPersRelEleveTelMobile": "12"},)},
        {},
        {("phone_malformed", "300")},
    ),
    "postal_code_malformed": (
        {"guardians": ({**GUARDIAN, "ENTPersonCodePostal": "3166"},)},
        {},
        {("postal_code_malformed", "300")},
    ),
    "postal_code_malformed: foreign addresses are not checked": (
        {"guardians": ({**GUARDIAN, "ENTPersonCodePostal": "1000", "ENTPersonPays": "BELGIQUE"},)},
        {},
        set(),
    ),
    "mobile_not_mobile": (
        {"guardians": ({**GUARDIAN, "ENTPersRelEleveTelMobile": "05.61.00.00.00"},)},
        {},
        {("mobile_not_mobile", "300")},
    ),
    "mobile_not_mobile: +33 6 is a mobile": (
        {"guardians": ({**GUARDIAN, "ENTPersRelEleveTelMobile": "+33 6 12 34 56 78"},)},
        {},
        set(),
    ),
    # staff
    "staff_without_structure": (
        {"staff": (DIRECTOR, {**AESH, "ENTPersonStructRattach": None})},
        {},
        {("staff_without_structure", "401")},
    ),
    "director_not_attached": (
        {"staff": ({**DIRECTOR, "ENTPersonStructRattach": "101"},)},
        {},
        {("director_not_attached", "400")},
    ),
    "teacher_flag_missing, and the school has no teacher then": (
        {"staff": ({**DIRECTOR, "ENTPersonCategorieEnseignant": None},)},
        {},
        {("teacher_flag_missing", "400"), ("school_without_teacher", "100")},
    ),
    # every file
    "id_mismatch": ({"pupils": ({**PUPIL, "_id": "2000"},)}, {}, {("id_mismatch", "200")}),
    "required_empty": (
        {"pupils": ({**PUPIL, "ENTPersonNom": None},)},
        {},
        {("required_empty", "200")},
    ),
    "required_empty: jointure absent": (
        {"guardians": ({**GUARDIAN, "_id": "300", "ENTPersonJointure": None},)},
        {},
        {("required_empty", "300")},
    ),
    "unknown_attribute": (
        {"pupils": ({**PUPIL, "ENTPersonSexe": "F"},)},
        {},
        {("unknown_attribute", "200")},
    ),
    "attribute_not_in_convention: another kind's attribute": (
        {"pupils": ({**PUPIL, "ENTPersRelEleveTelMobile": "0612345678"},)},
        {},
        {("attribute_not_in_convention", "200")},
    ),
    "attribute_not_in_convention: an AAF extra Annexe 1 does not list": (
        {"pupils": ({**PUPIL, "ENTEleveDateEntreeClasses": "100$01/09/2026$C1"},)},
        {},
        {("attribute_not_in_convention", "200")},
    ),
    "mojibake": ({"pupils": ({**PUPIL, "ENTPersonPrenom": "ZoÃ©"},)}, {}, {("mojibake", "200")}),
    "invalid_value": (
        {"pupils": ({**PUPIL, "ENTEleveRestaurantScolaire": "X"},)},
        {},
        {("invalid_value", "200")},
    ),
    "invalid_value: unknown link code": (
        {"pupils": ({**PUPIL, "ENTEleveAutoriteParentale": "300$99"},)},
        {},
        {("invalid_value", "200")},
    ),
    "malformed_value": (
        {"pupils": ({**PUPIL, "ENTPersonClasses": "100$C1"},)},
        {},
        {("malformed_value", "200")},
    ),
    "multiple_values": (
        {"pupils": ({**PUPIL, "ENTPersonNom": ["Testeur", "Autre"]},)},
        {},
        {("multiple_values", "200")},
    ),
    "reader_other: wrong category": (
        {"pupils": ({**PUPIL, "_kind": "PersRelEleve"},)},
        {},
        {("reader_other", "200")},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_rule_on_a_hand_written_extraction(case, tmp_path):
    changes, params, expected = CASES[case]
    result = quality.audit(extraction(tmp_path, **changes), **params)
    assert found(result) == expected


def test_every_rule_has_a_hand_written_case():
    covered = {rule for _, _, expected in CASES.values() for rule, _ in expected}
    assert set(RULE_BY_ID) - covered == {"skipped_record"}  # below: it needs recover=True


def test_a_record_the_reader_skipped_is_a_blocking_finding(tmp_path):
    unreadable = pupil("201", ENTPersonPrenom="Léo", ENTEleveINE="0000000201B")
    snap = extraction(
        tmp_path,
        pupils=(PUPIL, unreadable),
        recover=True,
        raw={"<value>Léo</value>": "<value>L&eacute;o</value>"},
    )
    result = quality.audit(snap)
    assert found(result) == {("skipped_record", "201")}
    row = result.findings.iloc[0]
    assert (row["kind"], row["severity"]) == ("Eleve", "blocking")
    assert row["source"].startswith(f"{PREFIX}_Eleve_0000.xml:")
    assert "skipped_record" in result.failed
    # A malformed file that lost no record is reported once, as a file.
    trailing = extraction(
        tmp_path / "trailing",
        recover=True,
        raw={"</ficAlimMENESR>": "</ficAlimMENESR>\n<trailing>"},
    )
    result = quality.audit(trailing)
    assert result.findings[["rule", "kind"]].values.tolist() == [["skipped_record", "Eleve"]]
    assert pd.isna(result.findings["jointure"].iloc[0])


def test_findings_have_the_published_columns_and_point_at_their_record(tmp_path):
    result = quality.audit(extraction(tmp_path, pupils=({**PUPIL, "ENTEleveINE": "12"},)))
    assert tuple(result.findings.columns) == quality.FINDING_COLUMNS
    assert result.findings.iloc[0].to_dict() == {
        "rule": "ine_malformed",
        "severity": "warning",
        "kind": "Eleve",
        "jointure": "200",
        "uai": SCHOOL["ENTStructureUAI"],
        "attribute": "ENTEleveINE",
        "value": "12",
        "source": f"{PREFIX}_Eleve_0000.xml:5",
    }


def test_a_delta_alone_is_refused(tmp_path):
    snap = extraction(tmp_path)
    delta = snap.__class__(
        **{
            **snap.__dict__,
            "extraction": ent_audit.ExtractionInfo("ENT1D_TEST", "delta", snap.extraction.date),
        }
    )
    with pytest.raises(QualityError, match="pas sur un Delta seul"):
        quality.audit(delta)


def test_the_catalogue_is_documented_for_coordinators():
    assert len(RULES) >= 40 and {r.severity for r in RULES} == set(Severity)
    attributes = schema.KNOWN_ATTRIBUTES | {"*", "identifier/id"}
    for rule in RULES:
        assert rule.id.isidentifier() and rule.id == rule.id.lower()
        assert rule.title and len(rule.explanation) > 40 and rule.correction, rule.id
        assert set(rule.kinds) <= set(schema.KINDS) and set(rule.attributes) <= attributes
    table = quality.catalogue()
    assert list(table["rule"]) == [r.id for r in RULES]


# ---------------------------------------------------------------------------------------------
# Thresholds, perimeter, score
# ---------------------------------------------------------------------------------------------


def test_thresholds_are_counts_or_rates_by_severity_then_by_rule(tmp_path):
    snap = extraction(tmp_path, pupils=({**PUPIL, "ENTEleveINE": "12"},))

    def status(result: quality.AuditResult) -> str:
        return result.summary.set_index("rule").loc["ine_malformed", "status"]

    assert status(quality.audit(snap)) == "fail"  # 1 pupil of 1: 100 % >= 5 %
    assert status(quality.audit(snap, thresholds={"warning": {"fail": None}})) == "warn"
    assert (
        status(quality.audit(snap, thresholds={"ine_malformed": {"warn": 2, "fail": None}})) == "ok"
    )
    assert status(quality.audit(snap, thresholds={"warning": {"fail": "100%"}})) == "fail"
    assert Threshold.parse("2,5%", "x").rate == 0.025 and str(Threshold.parse(3, "x")) == "3"
    assert not Threshold.parse(1, "x").reached(0, 10)
    for bad in (
        {"nope": {"fail": 1}},
        {"ine_malformed": {"fail": 0}},
        {"ine_malformed": {"fail": "150%"}},
        {"ine_malformed": {"max": 1}},
    ):
        with pytest.raises(QualityError, match="thresholds"):
            quality.audit(snap, thresholds=bad)


def test_only_blocking_rules_over_their_fail_threshold_fail_the_run(tmp_path):
    snap = extraction(tmp_path, pupils=({**PUPIL, "ENTEleveINE": "12", "ENTPersonNom": None},))
    result = quality.audit(snap)
    assert result.failed == ["required_empty"]
    checks = {c.id: c for c in quality.checks(result)}
    assert set(checks) == {r.id for r in RULES if r.severity == Severity.BLOCKING}
    assert checks["required_empty"].status == Status.FAILED and checks["required_empty"].blocking
    assert checks["required_empty"].detail == "1 constat, seuil d'échec 1 atteint"
    assert checks["required_empty"].title == RULE_BY_ID["required_empty"].title
    # Without a list of the perimeter's schools the perimeter rules cannot run: skipped.
    assert checks["school_outside_perimeter"].status == Status.SKIPPED
    assert checks["person_outside_perimeter"].status == Status.SKIPPED
    assert "non contrôlé" in checks["school_outside_perimeter"].detail
    assert checks["uai_invalid"].status == Status.PASSED
    assert quality.audit(snap, thresholds={"required_empty": {"fail": 2}}).failed == []


def test_the_perimeter_is_a_list_or_a_file(tmp_path):
    listing = tmp_path / "ecoles.csv"
    listing.write_text(
        f"UAI;nom\n0310036w;ECOLE A  # Bessières\n\n# fermée: 0310037X\n{uai(310037)},ECOLE B\n",
        encoding="utf-8",
    )
    assert quality.read_perimeter(listing) == {"0310036W", uai(310037)}
    assert quality.read_perimeter([" 0310036w "]) == {"0310036W"}
    assert quality.read_perimeter(None) is None and quality.read_perimeter("") is None
    with pytest.raises(QualityError, match=r"ecoles\.csv:2: '12345' n'est pas une UAI"):
        listing.write_text("UAI\n12345\n")
        quality.read_perimeter(listing)
    with pytest.raises(QualityError, match="introuvable"):
        quality.read_perimeter(tmp_path / "absent.txt")


def test_a_guardian_is_outside_only_when_all_their_pupils_are(tmp_path):
    b_pupil = pupil(
        "201",
        ENTPersonPrenom="Léo",
        ENTEleveINE="0000000201B",
        ENTPersonStructRattach="102",
        classes=["102$$$B1$CE1"],
    )
    b_director = {
        **DIRECTOR,
        "ENTPersonJointure": "402",
        "ENTPersonPrenom": "Lou",
        "ENTPersonStructRattach": "102",
        "ENTEnsFonctionDir": "102",
        "ENTPersonFonctions": "102$ENS$ENSEIGNEMENT$-$-",
    }
    snap = extraction(
        tmp_path,
        structures=(SCHOOL, SCHOOL_B, CIRC),
        pupils=(PUPIL, b_pupil),
        guardians=({**GUARDIAN, "ENTPersRelEleveEleve": ["200", "201"]},),
        staff=(DIRECTOR, b_director),
    )
    snap.students.loc[snap.students["jointure"] == "201", "op"] = "add"
    result = quality.audit(snap, perimeter=[SCHOOL["ENTStructureUAI"]])
    assert found(result) == {
        ("school_outside_perimeter", "102"),
        ("person_outside_perimeter", "201"),
        ("person_outside_perimeter", "402"),
    }
    assert set(result.findings["uai"]) == {SCHOOL_B["ENTStructureUAI"]}


def test_the_school_score_follows_its_formula(tmp_path):
    pupils = [
        pupil(str(200 + i), ENTPersonPrenom=f"P{i}", ENTEleveINE=f"00000002{i:02d}A", guardians=[])
        for i in range(9)
    ]
    pupils[0]["ENTEleveINE"] = "12"  # a warning on one pupil: weight 0.5
    pupils[1]["ENTPersonNom"] = None  # a blocking one on another: weight 1
    snap = extraction(
        tmp_path, pupils=pupils, guardians=(), staff=({**DIRECTOR, "ENTEnsFonctionDir": None},)
    )  # school: 10 points
    result = quality.audit(
        snap, rules=["ine_malformed", "required_empty", "school_without_director"]
    )
    school = result.schools.iloc[0]
    assert (school["records"], school["blocking"], school["warning"]) == (10, 1, 2)
    assert school["score"] == pytest.approx(round(100 * (1 - 1.5 / 10) - 10, 1))
    circ = result.circonscriptions.iloc[0]
    assert (circ["circonscription"], circ["schools"], circ["score"]) == ("Fronton", 1, 75.0)
    json.dumps(result.to_dict())  # JSON-ready
    assert "findings" in result.to_dict() and "200" not in json.dumps(result.to_dict())


# ---------------------------------------------------------------------------------------------
# Generated extractions: exactly the injected defects, and nothing in a clean one
# ---------------------------------------------------------------------------------------------

SPLIT = {
    ("Eleve", "ENTEleveINE"): "ine_missing",
    ("Eleve", "ENTPersonDateNaissance"): "birth_date_missing",
}
"""``missing_required`` victims with a dedicated rule; the others are ``required_empty``."""


def _one(rule: str):
    return lambda e: [(rule, e["kind"], e["jointure"])]


DEFECT_RULES = {
    "dangling_guardian": lambda e: [("guardian_unknown", "Eleve", e["jointure"], e["related"][0])],
    "orphan_guardian": _one("guardian_without_pupil"),
    "one_sided_link": lambda e: [("link_pupil_side_only", "Eleve", e["jointure"], e["related"][0])],
    "duplicate_ine": lambda e: [
        ("ine_duplicate", "Eleve", j) for j in (e["jointure"], *e["related"])
    ],
    "malformed_ine": _one("ine_malformed"),
    "wrong_uai_key": _one("uai_invalid"),
    "school_without_director": _one("school_without_director"),
    "several_directors": _one("school_several_directors"),
    "director_not_attached": _one("director_not_attached"),
    "staff_without_structure": _one("staff_without_structure"),
    "impossible_birth_date": _one("birth_date_invalid"),
    "birth_date_level_mismatch": _one("age_level_mismatch"),
    "level_cycle_mismatch": _one("level_cycle_mismatch"),
    "pupil_in_two_schools": _one("pupil_several_schools"),
    "class_of_other_structure": _one("class_other_structure"),
    "pupil_without_class": _one("pupil_without_class"),
    "id_mismatch": _one("id_mismatch"),
    "missing_required": lambda e: [
        (
            SPLIT.get((e["kind"], e["attribute"]), "required_empty"),
            e["kind"],
            e["jointure"],
            e["attribute"],
        )
    ],
    "unknown_attribute": lambda e: [
        ("unknown_attribute", e["kind"], e["jointure"], e["attribute"])
    ],
    "mojibake": lambda e: [("mojibake", e["kind"], e["jointure"], e["attribute"])],
    "malformed_mail": _one("mail_malformed"),
    "non_mobile_phone": _one("mobile_not_mobile"),
    "malformed_postal_code": _one("postal_code_malformed"),
}
"""What each synth defect must be found as: (rule, kind, jointure[, attribute or value])."""

KEYED_BY_ATTRIBUTE = {
    "required_empty",
    "ine_missing",
    "birth_date_missing",
    "unknown_attribute",
    "mojibake",
}
KEYED_BY_VALUE = {"guardian_unknown", "link_pupil_side_only"}


def _finding_key(row) -> tuple:
    key = (row.rule, row.kind, row.jointure)
    if row.rule in KEYED_BY_ATTRIBUTE:
        key += (row.attribute,)
    if row.rule in KEYED_BY_VALUE:
        key += (row.value,)
    return key


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A defective and a clean perimeter, and stores holding each one's Complet and Delta."""
    tmp = tmp_path_factory.mktemp("generated")
    out = {
        "defective": synth.write(tmp / "defective", defects=ALL_DEFECTS, **GENERATED),
        "clean": synth.write(tmp / "clean", **GENERATED),
    }
    for name in ("defective", "clean"):
        store = Store(tmp / f"{name}-store")
        store.ingest(out[name].archives[:2])
        out[f"{name}-store"] = store
    first = ent_audit.load(out["defective"].archives[0], workers=1)
    clean = ent_audit.load(out["clean"].archives[0], workers=1)  # the UAIs, all valid
    out["perimeter"] = sorted(
        clean.structures.loc[clean.structures["struct_type"] == "ECOLE", "uai"]
    )
    out["truth"] = json.loads(out["defective"].truth.read_text(encoding="utf-8"))
    out["audits"] = {
        "first Complet": quality.audit(first, perimeter=out["perimeter"]),
        "later Complet": quality.audit(
            ent_audit.load(out["defective"].archives[2], workers=1), perimeter=out["perimeter"]
        ),
        "store after the Delta": quality.audit(
            out["defective-store"].latest(), perimeter=out["perimeter"]
        ),
    }
    return out


def test_every_defect_kind_is_mapped_to_the_rules_that_find_it():
    assert set(DEFECT_RULES) == set(synth.DEFECTS)
    assert all(
        rule in RULE_BY_ID
        for r in DEFECT_RULES.values()
        for rule in [
            r({"kind": "Eleve", "jointure": "1", "attribute": "a", "related": ["2"]})[0][0]
        ]
    )


@pytest.mark.parametrize("rule", [r.id for r in RULES])
def test_generated_defects_are_found_exactly_per_rule(rule, generated):
    """Precision and recall 100 % per rule, in both Complets and in the store's state."""
    expected = defaultdict(set)
    for name, entries in generated["truth"]["defects"].items():
        assert entries, f"{name} injected at least once"
        for e in entries:
            for key in DEFECT_RULES[name](e):
                expected[key[0]].add(key)
    for label, result in generated["audits"].items():
        rows = result.findings[result.findings["rule"] == rule]
        got = {_finding_key(row) for row in rows.itertuples()}
        assert got == expected[rule], (label, sorted(got ^ expected[rule])[:5])
        assert len(got) == len(rows), f"{label}: one finding per defect"


def test_generated_findings_name_the_school_the_truth_names(generated):
    result = generated["audits"]["first Complet"]
    located = {(r.kind, r.jointure): r.uai for r in result.findings.itertuples()}
    checked = 0
    for entries in generated["truth"]["defects"].values():
        for e in entries:
            if e["kind"] in ("Eleve", "EtabEducNat") and (e["kind"], e["jointure"]) in located:
                assert located[(e["kind"], e["jointure"])] == e["uai"], e
                checked += 1
    assert checked > 50


def test_a_clean_generated_extraction_has_no_finding(generated):
    clean = generated["clean"]
    for snap in (ent_audit.load(clean.archives[0], workers=1), generated["clean-store"].latest()):
        result = quality.audit(snap, perimeter=generated["perimeter"])
        assert result.findings.empty, result.findings["rule"].value_counts()
        assert result.failed == [] and (result.schools["score"] == 100).all()


@pytest.mark.parametrize("name", ["defective-store", "clean-store"])
@pytest.mark.parametrize("with_perimeter", [False, True])
def test_the_store_audit_reads_column_by_column_and_finds_the_same(generated, name, with_perimeter):
    """``audit_store`` (each check reads its own columns, a Delta's overlay included) gives
    ``audit(store.latest())`` exactly: findings, summaries, scores, parameters."""
    store = generated[name]
    perimeter = generated["perimeter"] if with_perimeter else None
    whole = quality.audit(store.latest(), perimeter=perimeter)
    lean = quality.audit_store(store.path, perimeter=perimeter)
    for part in ("findings", "summary", "schools", "circonscriptions"):
        pd.testing.assert_frame_equal(getattr(lean, part), getattr(whole, part))
    assert lean.to_dict() == whole.to_dict()
    if name == "defective-store":
        assert len(lean.findings) > 100


def test_the_store_audit_releases_what_checks_share_past_its_limit(generated):
    from ent_audit.analyses.quality.context import Context

    with generated["defective-store"].reading() as reader:
        ctx = Context.of_store(reader, None, 1)
        assert set(ctx.snapshot.students.columns) == set()  # the big frames: read as asked
        pupils = ctx.entity(schema.STUDENT, "ine")
        assert list(pupils.columns) == ["jointure", "op", "source_file", "line", "ine"]
        assert "last_name" not in ctx.students.columns
        links = ctx.guardian_links
        ctx.release()
        assert ctx.guardian_links is links  # small: kept for the next check
        ctx.release(limit=0)
        assert ctx.guardian_links is not links
        pd.testing.assert_frame_equal(ctx.guardian_links, links)


def test_an_empty_store_has_no_state_to_audit(tmp_path):
    with pytest.raises(StoreError, match="aucune extraction ingérée"):
        quality.audit_store(Store(tmp_path / "empty"))


def test_pairs_are_matched_on_codes_as_on_joined_strings():
    from ent_audit.analyses.quality.context import pair, pairs_in

    a = pd.Series(["1", "1", "2", "3", "4", "1\x1f"], dtype="string")
    b = pd.Series(["x", "y", "x", "z", "x", "y"], dtype="string")
    in_a = pd.Series(["1", "2", "2", "3", "9"], dtype="string")
    in_b = pd.Series(["x", "y", "x", "y", "x"], dtype="string")
    expected = pair(a, b).isin(pair(in_a, in_b)).to_numpy(dtype=bool)
    assert pairs_in(a, b, in_a, in_b).tolist() == expected.tolist() == [
        True, False, True, False, False, False,
    ]  # fmt: skip
    assert not pairs_in(a, b, in_a.iloc[:0], in_b.iloc[:0]).any()


# ---------------------------------------------------------------------------------------------
# Trend, publication
# ---------------------------------------------------------------------------------------------


def _earlier_run(tmp_path, name: str, result, pseudonymiser, **figures) -> dict:
    """A run folder as the runner leaves it: findings.csv, and its summary with ``run``."""
    run = tmp_path / "quality" / name
    run.mkdir(parents=True)
    quality.write_findings_csv(result, pseudonymiser, run)
    return {"figures": {**quality.figures(result), **figures}, "run": str(run)}


def test_trend_counts_new_persistent_and_corrected_findings_by_pseudonym(generated, tmp_path):
    first = generated["audits"]["first Complet"]
    later = generated["audits"]["store after the Delta"]
    p = Pseudonymiser(b"k" * 32)
    published = quality.published_findings(later, p)
    assert quality.trend(later, published, []).previous is None
    before = _earlier_run(tmp_path, "20260915T000000000000Z", first, p)
    # the earlier run had two ine_duplicate findings fewer and one mojibake finding more
    csv = quality.read_findings_csv(Path(before["run"]) / "findings.csv")
    dup = csv.index[csv["rule"] == "ine_duplicate"][:2]
    extra = csv[csv["rule"] == "mojibake"].head(1).assign(jointure="0123456789abcdef0123")
    edited = pd.concat([csv.drop(index=dup), extra])
    edited.rename(columns=quality.FINDING_HEADERS).to_csv(
        Path(before["run"]) / "findings.csv", sep=";", index=False, encoding="utf-8-sig"
    )
    rules = dict(before["figures"]["rules"])
    rules["ine_duplicate"] -= 2
    rules["mojibake"] += 1
    before["figures"]["rules"] = rules
    newer_state = {"figures": {**before["figures"], "state_date": str(later.date)}, "run": "x"}
    other = {"figures": {**before["figures"], "perimeter": "ENT1D_AUTRE"}, "run": "y"}
    t = quality.trend(later, published, [newer_state, other, before])
    assert t.previous["run"] == "20260915T000000000000Z" and t.pseudonyms_compared
    assert t.previous["state_date"] == str(first.date)
    r = t.rules.set_index("rule")
    assert set(r.index) == {"ine_duplicate", "mojibake"}  # only the rules that changed
    assert r.loc["ine_duplicate", ["change", "new", "corrected"]].tolist() == [2, 2, 0]
    assert r.loc["ine_duplicate", "persistent"] == later.counts()["ine_duplicate"] - 2
    assert r.loc["mojibake", ["change", "new", "corrected"]].tolist() == [-1, 0, 1]
    assert list(r["severity"]) == ["blocking", "warning"]  # blocking first
    summary = t.to_dict()
    assert summary["previous_run"] == "20260915T000000000000Z"
    assert summary["trend"]["ine_duplicate"] == {
        "previous": rules["ine_duplicate"],
        "current": later.counts()["ine_duplicate"],
        "new": 2,
        "corrected": 0,
    }
    json.dumps(summary)
    points = t.history[t.history["rule"] == "ine_duplicate"]
    assert list(points["run"]) == ["20260915T000000000000Z", "cette exécution"]
    assert list(points["state"]) == [f"{first.date:%d/%m/%Y}", f"{later.date:%d/%m/%Y}"]
    assert "(../20260915T000000000000Z/quality.html)" in quality.trend_note(t)


def test_without_the_earlier_findings_file_the_trend_compares_counts_only(generated, tmp_path):
    first = generated["audits"]["first Complet"]
    later = generated["audits"]["store after the Delta"]
    p = Pseudonymiser(b"k" * 32)
    before = _earlier_run(tmp_path, "20260915T000000000000Z", first, p)
    (Path(before["run"]) / "findings.csv").unlink()  # purged after findings_days
    before["figures"]["rules"] = {**before["figures"]["rules"], "ine_duplicate": 0}
    t = quality.trend(later, quality.published_findings(later, p), [before])
    assert not t.pseudonyms_compared and list(t.rules["rule"]) == ["ine_duplicate"]
    assert t.rules["new"].isna().all() and "purgé" in quality.trend_note(t)


def test_findings_csv_has_french_headers_and_reads_back(generated, tmp_path):
    result = generated["audits"]["first Complet"]
    path = quality.write_findings_csv(result, Pseudonymiser(b"k" * 32), tmp_path)
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode()) and b";" in raw.splitlines()[0]
    header = raw.decode("utf-8-sig").splitlines()[0].split(";")
    assert header == list(quality.FINDING_HEADERS.values())
    assert "règle" in header and "rule" not in header
    back = quality.read_findings_csv(path)
    assert set(quality.FINDING_COLUMNS) <= set(back.columns) and len(back) == len(result.findings)
    assert set(back["severity"]) <= {"bloquant", "avertissement", "information"}


def test_the_rule_table_puts_blocking_first_with_examples_and_links(generated):
    result = generated["audits"]["first Complet"]
    published = quality.published_findings(result, Pseudonymiser(b"k" * 32))
    table = quality.rule_table(result, published)
    with_findings = result.summary[result.summary["count"] > 0]
    assert len(table) == len(with_findings)
    ranks = table["severity"].map({"bloquant": 0, "avertissement": 1, "information": 2})
    assert ranks.is_monotonic_increasing
    for row in table.itertuples():
        rule = row.rule.split("<code>")[1].split("</code>")[0]
        assert f'href="#{quality.present.anchor(rule)}"' in row.rule
        assert 1 <= row.examples.count("<br>") + 1 <= 3
        mine = published[published["rule"] == rule]
        assert str(mine["jointure"].iloc[0]) in row.examples
    clear = set(result.findings.loc[result.findings["kind"] != "EtabEducNat", "jointure"])
    assert not any(j in " ".join(table["examples"]) for j in clear if len(j) > 6)
    explained = quality.explanations(result)
    ids = [line.split('"')[1] for line in explained.splitlines() if line.startswith("<h3 id=")]
    assert ids == [f"corriger-{r.split('<code>')[1].split('</code>')[0]}" for r in table["rule"]]


def test_threshold_prose_is_written_from_the_thresholds_used(generated):
    snap = generated["defective-store"].latest()
    result = quality.audit(
        snap, thresholds={"warning": {"fail": "2%"}, "mojibake": {"warn": 10, "fail": None}}
    )
    note = quality.thresholds_note(result)
    assert "échec dès 2\u202f% de sa population (paramètre `thresholds`)" in note
    assert "**bloquant** : alerte dès 1 constat, échec dès 1 constat (par défaut)" in note
    assert "règle `mojibake` (paramètre `thresholds`) : alerte dès 10 constats, jamais" in note
    default = quality.thresholds_note(quality.audit(snap))
    assert "5\u202f%" in default and "2\u202f%" not in default


def test_the_blocking_share_chart_has_no_zero_bar(generated):
    result = generated["audits"]["first Complet"]
    share = quality.blocking_share(result)
    assert (share["share"] > 0).all() and (share["share"] <= 100).all()
    c = result.circonscriptions
    assert len(share) + len(quality.clean_circonscriptions(result)) == len(c)


def test_published_findings_carry_pseudonyms_and_masked_values(generated, tmp_path):
    result = generated["audits"]["first Complet"]
    p = Pseudonymiser(b"k" * 32)
    published = quality.published_findings(result, p)
    assert list(published.columns) == list(quality.FINDING_COLUMNS)
    people = result.findings["kind"] != "EtabEducNat"
    clear_ids = set(result.findings.loc[people, "jointure"])
    assert not clear_ids & set(published["jointure"]) and not clear_ids & set(published["value"])
    assert (published.loc[~people, "jointure"] == result.findings.loc[~people, "jointure"]).all()
    row = published[published["rule"] == "guardian_unknown"].iloc[0]
    source = result.findings[result.findings["rule"] == "guardian_unknown"].iloc[0]
    assert row["value"] == p.ids("PersRelEleve", pd.Series([source["value"]])).iloc[0]
    moji = published[published["rule"] == "mojibake"]["value"]
    assert moji.str.fullmatch(r".\*+").all()
    path = quality.write_findings_csv(result, p, tmp_path)
    text = path.read_text(encoding="utf-8-sig")
    assert not leaks(text, personal_values(generated["defective"].perimeter))
    assert len(pd.read_csv(path, sep=";", dtype=str)) == len(result.findings)


def test_clear_csvs_are_per_school_private_and_say_so(generated, tmp_path):
    result = generated["audits"]["first Complet"]
    paths = quality.write_clear_csvs(result, tmp_path / "a-corriger")
    folder = tmp_path / "a-corriger"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in paths)
    assert "données personnelles" in (folder / "LISEZMOI.txt").read_text(encoding="utf-8")
    names = {p.name for p in paths}
    assert {f"{u}.csv" for u in result.findings["uai"].dropna()} | {
        "sans-ecole.csv",
        "LISEZMOI.txt",
    } == names
    rows = pd.concat(pd.read_csv(p, sep=";", dtype=str) for p in paths if p.suffix == ".csv")
    assert len(rows) == len(result.findings)
    assert set(rows["jointure"]) == set(result.findings["jointure"].dropna())  # clear ids


# ---------------------------------------------------------------------------------------------
# The report, through the runner
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quality_runs(generated, tmp_path_factory):
    """The quality report on the defective store: once on its Complet, once after its Delta
    (trend), with the perimeter file and the clear CSVs."""
    tmp = tmp_path_factory.mktemp("quality-report")
    defective = generated["defective"]
    store = tmp / "store"
    Store(store).ingest(defective.archives[:1])
    store_before = list(store.iterdir())
    perimeter = tmp / "perimetre.txt"
    perimeter.write_text("\n".join(generated["perimeter"]) + "\n")
    params = {
        "store": str(store),
        "perimeter": str(perimeter),
        "today": "2026-09-15",
        "clear_csv": True,
        "max_age_days": 10,
    }  # max_age_days: overview's, left out
    outputs = tmp / "outputs"
    first = report.run("quality", params, outputs=outputs)
    Store(store).ingest(defective.archives[1:2])
    later = report.run("quality", {**params, "today": "2026-10-06"}, outputs=outputs)
    return {
        "first": first,
        "later": later,
        "outputs": outputs,
        "store": store,
        "store_before": store_before,
    }


def test_the_report_fails_on_blocking_rules_and_writes_its_files(quality_runs, generated):
    r = quality_runs["later"]
    assert (r.status, r.exit_code) == ("blocking", 1), r.message
    expected = generated["audits"]["store after the Delta"]
    assert "ine_duplicate" in r.message and set(r.summary["figures"]["rules_failed_ids"]) == set(
        expected.failed
    )
    names = {p.name for p in r.run_dir.iterdir()}
    assert names == {
        "a-corriger",
        "findings.csv",
        "manifest.json",
        "quality.html",
        "quality.ipynb",
        "summary.json",
    }
    assert stat.S_IMODE((r.run_dir / "a-corriger").stat().st_mode) == 0o700
    figures = r.summary["figures"]
    assert figures["findings"] == len(expected.findings) and figures["perimeter_checked"]
    assert figures["previous_date"] == "2026-09-14" and figures["rules"] == expected.counts()
    assert figures["previous_run"] == quality_runs["first"].run_dir.name
    manifest = json.loads((r.run_dir / "manifest.json").read_text())
    assert manifest["parameters"]["run_dir"] == str(r.run_dir)
    assert "max_age_days" not in manifest["parameters"]
    assert any(i["path"].endswith("perimetre.txt") for i in manifest["inputs"])
    published = pd.read_csv(r.run_dir / "findings.csv", sep=";", dtype=str)
    assert len(published) == len(expected.findings)
    # the trend comes from the earlier run's folder: the report writes nothing in the store
    assert not list(quality_runs["store"].glob("quality-trend*"))
    assert sorted(p.name for p in quality_runs["store"].iterdir()) == sorted(
        p.name for p in quality_runs["store_before"]
    )


def test_run_dir_is_the_runners_and_other_reports_parameters_are_refused_elsewhere(
    quality_runs, tmp_path
):
    store = str(quality_runs["store"])
    r = report.run("quality", {"store": store, "run_dir": "/tmp/x"}, outputs=tmp_path)
    assert (r.exit_code, "fixé par le lanceur" in r.message) == (2, True)
    r = report.run("quality", {"store": store, "couleur": "bleu"}, outputs=tmp_path)
    assert (r.exit_code, "'couleur': inconnu" in r.message) == (2, True)
    r = report.run(
        "quality", {"store": store, "thresholds": {"nope": {"fail": 1}}}, outputs=tmp_path
    )
    assert r.exit_code == 2 and "nope" in r.message


def test_plain_papermill_runs_it_and_writes_no_file_without_run_dir(quality_runs, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(f"store: {quality_runs['store']}\ntoday: '2026-10-06'\n")
    out = tmp_path / "plain.ipynb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(ROOT / "notebooks/quality.ipynb"),
            str(out),
            "-f",
            str(params),
            "--no-progress-bar",
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    figures = report._summary(nbformat.read(out, as_version=4))["figures"]
    assert figures["findings"] == quality_runs["later"].summary["figures"]["findings"]
    assert not figures["perimeter_checked"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "plain.ipynb"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium absent: `make test` installs it")
def test_the_quality_page_draws_every_figure_offline(quality_runs, tmp_path):
    dom, _ = check_rendered(quality_runs["later"].html, tmp_path)
    p = check_french_first_screen(dom)
    titles = [f["title"] for f in p["figures"]]
    assert titles[0].startswith("Part des écoles ayant au moins un constat bloquant")
    for fig in p["figures"]:  # no zero bar, no chart of zeros
        assert all(y != 0 for t in fig["traces"] if t["type"] == "bar" for y in t["y"]), fig
    assert "ÉCHEC" in p["verdict"]["text"] and "ine_duplicate" in p["verdict"]["text"]


def test_no_quality_page_or_csv_shows_personal_data(quality_runs, generated):
    values = personal_values(generated["defective"].perimeter)
    outputs = quality_runs["outputs"]
    pages = sorted(outputs.rglob("*.html"))
    assert len(pages) == 3  # two runs and the index
    for page in pages:
        found_ = leaks(page_text(page), values)
        assert not found_, (page.name, sorted(found_)[:5])
    for csv in outputs.glob("quality/*/findings.csv"):
        assert not leaks(csv.read_text(encoding="utf-8-sig"), values), csv
    clear = next(outputs.glob("quality/*/a-corriger"))
    assert any(leaks(p.read_text(encoding="utf-8-sig"), values) for p in clear.glob("*.csv"))
    assert os.access(clear, os.R_OK)


# ---------------------------------------------------------------------------------------------
# Documentation
# ---------------------------------------------------------------------------------------------


def test_the_readme_lists_every_rule_with_its_severity():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert f"| `{rule.id}` | {rule.severity.value} |" in readme, rule.id


def test_example_params_document_every_parameter_of_every_report():
    params, _ = report.read_params([str(ROOT / "params" / "example.yaml")])
    for r in registry.REPORTS:
        path = registry.notebook_path(r)
        declared = set(report.declared_params(path)) - {report.RUN_DIR}
        assert declared <= set(params), (r.name, declared - set(params))
        assert report.check_params(r.name, path, params).keys() == declared


def test_string_tests_by_blocks_give_the_whole_column_s_answer():
    from ent_audit.analyses.quality import context

    values = pd.Series(
        [
            "05 61 84 55 55",
            "+33 6 12 34 56 78",
            None,
            "12",
            "06.12.34.56.78",
            "0561\u00a084\u00a05555",
        ]
        * 7,
        dtype="string[pyarrow]",
    )
    whole = context._phone_block(values)
    for size in (1, 4, 5, 100):
        got = context.by_blocks(values, context._phone_block, width=2, size=size)
        assert all((g == w).all() for g, w in zip(got, whole, strict=True)), size
        one = context.by_blocks(values, lambda v: v.str.contains("6", regex=True).fillna(False)
                                .to_numpy(dtype=bool), size=size)  # fmt: skip
        assert (one == values.str.contains("6").fillna(False).to_numpy(dtype=bool)).all()
    assert context.by_blocks(values.iloc[:0], context._phone_block, width=2)[0].shape == (0,)
    assert whole[0][5]  # a no-break space is a separator (Python's \s)
