"""The quality catalogue is data (keyword arguments and enums), and the audit takes who
belongs to which school, and what a teacher is, from ``aaf.population`` only."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import pupil
from test_quality import CIRC, DIRECTOR, GUARDIAN, PUPIL, SCHOOL, SCHOOL_B, extraction

from ent_audit.aaf import population
from ent_audit.analyses.quality import (
    RULES,
    Corrector,
    Rule,
    Severity,
    audit,
    catalogue,
    rules,
)
from ent_audit.analyses.quality.catalogue import ANY_ATTRIBUTE, AAFKind, Population, ValuePolicy
from ent_audit.analyses.quality.context import Context


def test_every_rule_is_keyword_data_with_enums():
    for rule in RULES:
        assert isinstance(rule.severity, Severity) and isinstance(rule.corrector, Corrector)
        assert isinstance(rule.population, Population) and isinstance(rule.value, ValuePolicy)
        assert all(isinstance(k, AAFKind) for k in rule.kinds), rule.id
        assert rule.check is getattr(rules, rule.id), rule.id
    # Every policy and population is used: no dead member.
    assert {r.value for r in RULES} == set(ValuePolicy)
    assert {r.population for r in RULES} == set(Population)
    assert any(r.attributes == (ANY_ATTRIBUTE,) for r in RULES)
    with pytest.raises(TypeError):
        Rule("x", Severity.INFO)  # keywords only
    fields = {f.name for f in dataclasses.fields(Rule)}
    assert {"id", "severity", "kinds", "population", "value", "check"} <= fields
    assert catalogue()["kinds"].iloc[0] == "EtabEducNat"  # enums print as the AAF token


def test_a_teacher_is_whoever_population_says_belongs_to_the_school_as_a_teacher(tmp_path):
    # A teacher (ENTPersonCategorieEnseignant = O) who is neither attached to the school nor
    # declared its director, but holds a function there (here DIR, not ENS), belongs to it.
    function_only = {
        **DIRECTOR,
        "ENTPersonStructRattach": None,
        "ENTEnsFonctionDir": None,
        "ENTPersonFonctions": ["100$DIR$DIRECTION$-$-"],
    }
    snap = extraction(tmp_path / "a", staff=(function_only,))
    result = audit(snap, rules=["school_without_teacher"])
    assert result.findings.empty
    # Not a teacher (N): the school has none.
    snap = extraction(
        tmp_path / "b", staff=({**function_only, "ENTPersonCategorieEnseignant": "N"},)
    )
    result = audit(snap, rules=["school_without_teacher"])
    assert set(result.findings["jointure"]) == {"100"}
    members = population.memberships(snap)
    assert not members.loc[members["structure"] == "100", "teacher"].any()


def test_a_findings_school_is_its_records_main_school(tmp_path):
    class_only = pupil("201", ENTPersonPrenom="Léo", ENTEleveINE="0000000201B")
    class_only |= {"ENTPersonStructRattach": None, "ENTPersonClasses": ["102$$$B1$CE1"]}
    teaches_in_b = {
        **DIRECTOR,
        "ENTPersonJointure": "402",
        "ENTPersonPrenom": "Lou",
        "ENTPersonStructRattach": None,
        "ENTEnsFonctionDir": None,
        "ENTPersonFonctions": ["102$ENS$ENSEIGNEMENT$-$-"],
    }
    snap = extraction(
        tmp_path,
        structures=(SCHOOL, SCHOOL_B, CIRC),
        pupils=(PUPIL, class_only),
        staff=(DIRECTOR, teaches_in_b),
    )
    result = audit(snap, rules=["pupil_without_structure", "staff_without_structure"])
    uai = dict(zip(result.findings["jointure"], result.findings["uai"], strict=True))
    assert uai == {"201": SCHOOL_B["ENTStructureUAI"], "402": SCHOOL_B["ENTStructureUAI"]}
    ctx = Context(snap, None, 1)
    main = population.main_school(population.memberships(snap)).dropna(subset=["structure"])
    people = ctx.structure_of[ctx.structure_of["kind"] != "EtabEducNat"]
    assert sorted(map(tuple, people.to_numpy().tolist())) == sorted(
        map(tuple, main[["kind", "jointure", "structure"]].to_numpy().tolist())
    )


def test_a_guardian_whose_first_pupil_is_in_no_school_belongs_to_the_next_ones(tmp_path):
    nowhere = pupil("201", ENTPersonPrenom="Léo", ENTEleveINE="0000000201B", classes=[])
    nowhere["ENTPersonStructRattach"] = None
    snap = extraction(
        tmp_path,
        pupils=(nowhere, PUPIL),
        guardians=({**GUARDIAN, "ENTPersRelEleveEleve": ["201", "200"], "ENTPersonMail": "x"},),
    )
    result = audit(snap, rules=["mail_malformed"])
    assert result.findings[["jointure", "uai"]].values.tolist() == [
        ["300", SCHOOL["ENTStructureUAI"]]
    ]
    assert result.schools["records"].tolist() == [3]  # pupil 200, guardian 300, director
