"""The schema is the single source of truth: it must cover Annexe 1 of the convention."""

from pathlib import Path

from ent_audit.aaf import schema

ANNEXE_1 = Path(__file__).parents[1] / "data" / "annexe1_attributes.txt"
"""Attribute names listed per file in Annexe 1 of the convention, extracted once from its text."""


def annexe_1() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in ANNEXE_1.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            kind, attr = line.split()
            out.setdefault(kind, []).append(attr)
    return out


def test_every_attribute_of_annexe_1_is_declared_for_its_kind():
    listed = annexe_1()
    assert set(listed) == set(schema.KINDS)
    for kind, attrs in listed.items():
        k = schema.KINDS[kind]
        assert len(attrs) >= 13
        for a in attrs:
            assert a in k.by_attr, f"{kind}: {a} missing from the schema"
            assert k.by_attr[a].in_convention


def test_columns_are_unique_per_kind_and_the_id_attribute_is_the_jointure():
    for k in schema.KINDS.values():
        cols = [f.column for f in k.fields]
        assert len(cols) == len(set(cols)), k.name
        assert k.by_attr[k.id_attr].column == "jointure"


def test_ldap_aliases_map_to_person_fields():
    for kind in ("Eleve", "PersRelEleve", "PersEducNat"):
        k = schema.KINDS[kind]
        assert k.by_attr["sn"].column == "last_name"
        assert k.by_attr["givenName"].column == "first_name"
        assert k.by_attr["personalTitle"].column == "title"
    assert schema.KINDS["PersEducNat"].by_attr["mail"].column == "mail"


def test_personal_columns_cover_names_birth_dates_addresses_phones_mails():
    assert {"last_name", "first_name", "birth_date", "ine"} <= set(
        schema.personal_columns("students")
    )
    assert {"address", "home_phone", "mobile_phone", "work_phone", "mail", "postal_code"} <= set(
        schema.personal_columns("guardians")
    )
    assert "uai" not in schema.personal_columns("structures")


def test_levels_cycles_and_ages_agree():
    assert list(schema.LEVEL_CYCLE) == list(schema.LEVELS) == list(schema.LEVEL_AGE)
    ages = [schema.LEVEL_AGE[lvl] for lvl in schema.LEVELS]
    assert ages == sorted(ages) and len(set(ages)) == len(ages)
