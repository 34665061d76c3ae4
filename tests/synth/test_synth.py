"""The synthetic perimeter generator, checked on what it writes.

The XML is parsed here with plain lxml (safe options), not with the project's reader, and
every defect has an independent detector below: each must find exactly the victims that
``truth.json`` lists, in both complete extractions, and nothing in a clean perimeter.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tarfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from ent_audit import synth
from ent_audit.aaf import naming, schema
from ent_audit.exceptions import SynthParameterError

SMALL = {"seed": 3, "schools": 12, "pupils": 600}
ALL_DEFECTS = {name: 0.01 for name in synth.DEFECTS}
PART_SIZE = 60_000

STRUCT, PUPIL, GUARD, STAFF = (schema.KINDS[k] for k in naming.FIRST_DEGREE_KINDS)
A_ST = {f.column: f.attr for f in STRUCT.fields}
A_EL = {f.column: f.attr for f in PUPIL.fields}
A_PR = {f.column: f.attr for f in GUARD.fields}
A_PE = {f.column: f.attr for f in STAFF.fields}
OPS = {"addRequest": "add", "modifyRequest": "modify", "deleteRequest": "delete"}


# ----------------------------------------------------------------------------------------
# Reading what was written (plain lxml, hardened)
# ----------------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False)


class Rec:
    """One parsed record."""

    def __init__(
        self,
        kind: str,
        op: str,
        id_: str,
        attrs: dict[str, list[str | None]],
        operations: set[str | None],
    ) -> None:
        self.op, self.id, self.attrs, self.operations = op, id_, attrs, operations
        self.j = self.first(schema.KINDS[kind].id_attr) or id_
        """The jointure links point at (``identifier/id`` may differ: id_mismatch)."""

    def first(self, attr: str) -> str | None:
        values = self.attrs.get(attr) or [None]
        return values[0]

    def values(self, attr: str) -> list[str]:
        return [v for v in self.attrs.get(attr, []) if v]


def parse_part(data: bytes, kind: str) -> list[Rec]:
    root = etree.fromstring(data, _parser())
    assert root.tag == "ficAlimMENESR"
    out = []
    for el in root:
        if not isinstance(el.tag, str):  # comments
            continue
        op = OPS[el.tag]
        (category,) = el.findall("operationalAttributes/attr")
        assert category.get("name") in {"categoriePersonne", "categorieStructure"}
        ident = el.findtext("identifier/id")
        attrs: dict[str, list[str | None]] = {}
        operations: set[str | None] = set()
        for a in el.findall("attributes/attr") + el.findall("modifications/modification"):
            attrs[a.get("name")] = [v.text for v in a.findall("value")]
            if a.tag == "modification":
                operations.add(a.get("operation"))
        out.append(Rec(kind, op, ident, attrs, operations))
    return out


class Archive:
    """One written archive: raw members, and records by kind (in file order)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = naming.parse_archive_name(path.name)
        self.members: dict[str, bytes] = {}
        with tarfile.open(path, "r:gz") as tar:
            for m in tar.getmembers():
                if m.isfile():
                    f = tar.extractfile(m)
                    assert f is not None
                    self.members[m.name] = f.read()
        self.files: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
        for member, data in self.members.items():
            n = naming.parse_name(member)
            self.files[n.kind].append((n.part, data))
        self.records: dict[str, list[Rec]] = {}
        for kind, parts in self.files.items():
            parts.sort()
            self.records[kind] = [r for _, data in parts for r in parse_part(data, kind)]

    def by_id(self, kind: str) -> dict[str, Rec]:
        return {r.id: r for r in self.records[kind]}

    def by_jointure(self, kind: str) -> dict[str, Rec]:
        return {r.j: r for r in self.records[kind]}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> synth.SynthResult:
    return synth.write(tmp_path_factory.mktemp("clean"), part_size=PART_SIZE, unpack=True, **SMALL)


@pytest.fixture(scope="module")
def defective(tmp_path_factory: pytest.TempPathFactory) -> synth.SynthResult:
    return synth.write(
        tmp_path_factory.mktemp("defective"), part_size=PART_SIZE, defects=ALL_DEFECTS, **SMALL
    )


@pytest.fixture(scope="module")
def clean_archives(clean: synth.SynthResult) -> list[Archive]:
    return [Archive(p) for p in clean.archives]


@pytest.fixture(scope="module")
def defective_archives(defective: synth.SynthResult) -> list[Archive]:
    return [Archive(p) for p in defective.archives]


def _truth(result: synth.SynthResult) -> dict:
    return json.loads(result.truth.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------
# Files, names, bytes
# ----------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_archives_and_truth(
    tmp_path: Path, clean: synth.SynthResult
) -> None:
    again = synth.write(tmp_path / "again", part_size=PART_SIZE, **SMALL)
    for a, b in zip(clean.archives, again.archives, strict=True):
        assert a.name == b.name
        assert a.read_bytes() == b.read_bytes()
    assert clean.truth.read_bytes() == again.truth.read_bytes()


def test_another_seed_gives_other_data(tmp_path: Path, clean: synth.SynthResult) -> None:
    other = synth.write(tmp_path / "other", part_size=PART_SIZE, **{**SMALL, "seed": 4})
    assert other.archives[0].read_bytes() != clean.archives[0].read_bytes()


def test_archives_are_named_by_naming_and_hold_one_sub_folder(
    clean: synth.SynthResult, clean_archives: list[Archive]
) -> None:
    names = [a.name for a in clean_archives]
    assert [n.extraction for n in names] == ["complete", "delta", "complete"]
    dates = [n.date for n in names]
    assert dates == sorted(dates) and dates[0] == dt.date(2026, 9, 14)
    assert {n.perimeter for n in names} == {"ENT1D_DEMO31"}
    for archive in clean_archives:
        stem = archive.path.name.removesuffix(".tar.gz")
        assert archive.path.name == archive.name.filename
        assert set(archive.files) == set(naming.FIRST_DEGREE_KINDS)
        for member in archive.members:
            folder, filename = member.split("/")
            assert folder == stem
            parsed = naming.parse_name(filename)
            assert (parsed.perimeter, parsed.extraction, parsed.date) == (
                archive.name.perimeter,
                archive.name.extraction,
                archive.name.date,
            )
            assert filename == archive.name.file(parsed.kind, parsed.part).filename
        with tarfile.open(archive.path, "r:gz") as tar:
            stamps = {m.mtime for m in tar.getmembers()}
        assert len(stamps) == 1
        assert dt.datetime.fromtimestamp(stamps.pop(), dt.UTC).date() == archive.name.date


def test_unpacked_folders_hold_the_archived_files(
    clean: synth.SynthResult, clean_archives: list[Archive]
) -> None:
    assert clean.folders is not None
    for folder, archive in zip(clean.folders, clean_archives, strict=True):
        on_disk = {p.name: p.read_bytes() for p in folder.iterdir()}
        assert on_disk == {k.split("/")[1]: v for k, v in archive.members.items()}


def test_folders_are_none_without_unpack(defective: synth.SynthResult) -> None:
    assert defective.folders is None


@pytest.mark.parametrize(
    ("kind", "declaration", "crlf", "empty"),
    [
        ("EtabEducNat", b'<?xml version="1.0" encoding="ISO-8859-15"?>', True, b"<value/>"),
        ("Eleve", b'<?xml version="1.0" encoding="UTF-8"?>', False, b"<value/>"),
        ("PersRelEleve", None, True, b"<value/>"),
        ("PersEducNat", b'<?xml version="1.0" encoding="ISO-8859-15"?>', False, b"<value></value>"),
    ],
)
def test_each_kind_has_its_encoding_declaration_line_ends_and_header(
    clean_archives: list[Archive], kind: str, declaration: bytes | None, crlf: bool, empty: bytes
) -> None:
    archive = clean_archives[0]
    data = archive.files[kind][0][1]
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    if declaration is None:
        assert first == b'<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">'
    else:
        assert first == declaration
        assert b'<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">' in data[:200]
    lines = data.count(b"\n")
    assert data.count(b"\r\n") == (lines if crlf else 0)
    assert b'<!-- versionAF="AAF-VE1301" -->' in data
    assert (
        b'codeAcademieExport="16" degre="1D" dateGenerationExport="'
        + archive.name.date.strftime("%d/%m/%Y").encode()
        + b'"'
    ) in data
    assert empty in data
    text = data.decode("iso-8859-15" if declaration and b"ISO" in declaration else "utf-8")
    assert not text.isascii()  # accents, encoded as declared


def test_values_are_escaped(clean_archives: list[Archive]) -> None:
    structures = clean_archives[0].files["EtabEducNat"][0][1]
    assert b"&apos;" in structures and b"&amp;" in structures
    names = [r.first(A_ST["name"]) or "" for r in clean_archives[0].records["EtabEducNat"]]
    assert any("&" in n for n in names) and any("$" in n for n in names)
    assert any("'" in n for n in names)


def test_parts_split_above_part_size_and_every_record_is_whole(
    clean: synth.SynthResult, clean_archives: list[Archive]
) -> None:
    truth = _truth(clean)
    for archive in clean_archives:
        for kind, parts in archive.files.items():
            numbers = [n for n, _ in parts]
            assert numbers == list(range(len(parts)))
            for _, data in parts:
                assert len(data) <= PART_SIZE or len(parse_part(data, kind)) == 1
            ids = [r.id for r in archive.records[kind]]
            assert len(ids) == len(set(ids)) == truth["counts"][kind][archive.path.name]
    assert len(clean_archives[0].files["Eleve"]) > 1
    big = synth.write_perimeter(clean.perimeter, clean.out / "big")
    assert all(len(Archive(p).files["Eleve"]) == 1 for p in big.archives)


def test_written_xml_round_trips_the_generated_records(
    clean: synth.SynthResult, clean_archives: list[Archive]
) -> None:
    for extraction, archive in zip(clean.perimeter.extractions, clean_archives, strict=True):
        for kind in naming.FIRST_DEGREE_KINDS:
            expected = [(r.op, r.id, r.attrs) for r in extraction.records[kind]]
            assert [(r.op, r.id, r.attrs) for r in archive.records[kind]] == expected


def test_truth_file_is_the_perimeter_truth(clean: synth.SynthResult) -> None:
    assert _truth(clean) == clean.perimeter.truth


def test_records_carry_every_schema_attribute_in_order(clean: synth.SynthResult) -> None:
    for kind, records in clean.perimeter.extractions[0].records.items():
        attrs = [f.attr for f in schema.KINDS[kind].fields]
        assert all(list(r.attrs) == attrs for r in records)


# ----------------------------------------------------------------------------------------
# A clean perimeter is coherent
# ----------------------------------------------------------------------------------------


def _age(birth: str, year: int) -> int:
    return year - dt.datetime.strptime(birth, schema.DATE_FORMAT).year


def test_clean_perimeter_has_the_requested_size_and_structures(
    clean_archives: list[Archive],
) -> None:
    first = clean_archives[0]
    types = Counter(r.first(A_ST["struct_type"]) for r in first.records["EtabEducNat"])
    assert types["ECOLE"] == SMALL["schools"]
    assert types["INSPECTIONS ACADEMIQUES"] == 1 and types["CIRCONSCRIPTION"] >= 2
    assert len(first.records["Eleve"]) == SMALL["pupils"]
    for kind, records in first.records.items():
        jointure = schema.KINDS[kind].id_attr
        assert all(r.op == "add" and r.id == r.first(jointure) for r in records)
        assert len({r.id for r in records}) == len(records)


def test_clean_uai_keys_are_valid(clean_archives: list[Archive]) -> None:
    for r in clean_archives[0].records["EtabEducNat"]:
        uai = r.first(A_ST["uai"]) or ""
        assert re.fullmatch(r"031\d{4}[A-Z]", uai)
        assert uai[7] == "ABCDEFGHJKLMNPRSTUVWXYZ"[int(uai[:7]) % 23]
        assert uai != r.id


def test_clean_ages_fit_levels_and_cycles(clean_archives: list[Archive]) -> None:
    ulis = 0
    forms = set()
    for r in clean_archives[0].records["Eleve"]:
        level = r.first(A_EL["level"]) or ""
        age = _age(r.first(A_EL["birth_date"]) or "", 2026)
        if r.first(A_EL["class_type"]) == "ULIS":
            ulis += 1
            assert age - schema.LEVEL_AGE[level] in (1, 2)
        else:
            assert age == schema.LEVEL_AGE[level]
        cycle = r.first(A_EL["cycle"]) or ""
        assert int(cycle[-1]) == schema.LEVEL_CYCLE[level]
        forms.add(cycle[:-1])
        assert re.fullmatch(r"[0-9A-Z]{10}[A-Z]", r.first(A_EL["ine"]) or "")
    assert ulis > 0
    assert len(forms) > 1


def test_clean_guardians_exist_and_list_their_pupils_back(clean_archives: list[Archive]) -> None:
    for archive in (clean_archives[0], clean_archives[2]):
        pupils, guardians = archive.by_id("Eleve"), archive.by_id("PersRelEleve")
        listed = set()
        codes = Counter()
        for p in pupils.values():
            links = p.values(A_EL["guardians"])
            assert 1 <= len(links) <= 2
            for link in links:
                gid, code = link.split("$")
                codes[code] += 1
                assert code in schema.LINK_CODES
                assert p.id in guardians[gid].values(A_PR["students"])
                listed.add((p.id, gid))
        for g in guardians.values():
            kids = g.values(A_PR["students"])
            assert kids
            assert all((k, g.id) in listed for k in kids)
        assert codes["10"] > codes["20"] > codes["51"] > 0
    legal = [
        g for g in clean_archives[0].records["PersRelEleve"] if g.first(A_PR["first_name"]) is None
    ]
    assert legal and all(g.first(A_PR["title"]) is None for g in legal)


def test_clean_siblings_share_guardians(clean_archives: list[Archive]) -> None:
    guardians = clean_archives[0].records["PersRelEleve"]
    assert any(len(g.values(A_PR["students"])) >= 2 for g in guardians)


def test_clean_schools_have_one_director_among_their_teachers(
    clean_archives: list[Archive],
) -> None:
    first = clean_archives[0]
    schools = {
        r.id for r in first.records["EtabEducNat"] if r.first(A_ST["struct_type"]) == "ECOLE"
    }
    directors: dict[str, list[str]] = defaultdict(list)
    teachers = Counter()
    for s in first.records["PersEducNat"]:
        structures = s.values(A_PE["structures"])
        assert structures
        for school in s.values(A_PE["director_of"]):
            directors[school].append(s.id)
            assert school in structures
            assert f"{school}$DIR$DIRECTION$-$-" in s.values(A_PE["functions"])
        if s.first(A_PE["is_teacher"]) == "O" and structures[0] in schools:
            teachers[structures[0]] += 1
    assert set(directors) == schools
    assert all(len(d) == 1 for d in directors.values())
    classes = defaultdict(set)
    for p in first.records["Eleve"]:
        (value,) = p.values(A_EL["classes"])
        fields = value.split("$")
        assert fields[0] == p.first(A_EL["structures"]) and len(fields) == 5
        classes[fields[0]].add((fields[3], fields[4]))
    for school, seen in classes.items():
        assert len({cid for cid, _ in seen}) == len(seen)  # one name per class id
        assert teachers[school] == len(seen)


def test_realistic_spread_at_a_larger_size() -> None:
    perimeter = synth.generate(seed=5, schools=100, pupils=13_000)
    first = perimeter.extractions[0].records
    circs = {
        r.attrs[A_ST["circonscription"]][0]
        for r in first["EtabEducNat"]
        if r.attrs[A_ST["struct_type"]] == ["ECOLE"]
    }
    communes = {r.attrs[A_ST["commune"]][0] for r in first["EtabEducNat"]}
    assert len(circs) >= 3 and len(communes) >= 20
    sizes = Counter(r.attrs[A_EL["structures"]][0] for r in first["Eleve"])
    assert min(sizes.values()) < 60 and max(sizes.values()) > 200
    levels = Counter(r.attrs[A_EL["level"]][0] for r in first["Eleve"])
    assert 0 < levels["TPS"] < levels["PS"] / 3
    names = [r.attrs[A_EL["classes"]][0].split("$")[4] for r in first["Eleve"]]
    assert any("-" in n for n in names)  # mixed-level classes
    phones = {r.attrs[A_PR["home_phone"]][0] for r in first["PersRelEleve"]} - {None}
    assert any(p.startswith("+33 5") for p in phones) and any(" " not in p for p in phones)
    mobiles = {
        r.attrs[A_PR["mobile_phone"]][0][:2]
        for r in first["PersRelEleve"]
        if r.attrs[A_PR["mobile_phone"]][0]
    }
    assert {"06", "07"} <= mobiles
    staff = first["PersEducNat"]
    assert any(r.attrs[A_PE["is_teacher"]] == ["N"] for r in staff)


# ----------------------------------------------------------------------------------------
# The delta is the difference between the two complete extractions
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["clean", "defective"])
def test_delta_is_the_difference_between_the_two_complets(
    which: str, request: pytest.FixtureRequest
) -> None:
    result: synth.SynthResult = request.getfixturevalue(which)
    before, delta, after = request.getfixturevalue(f"{which}_archives")
    truth = _truth(result)["delta"]
    assert truth["archive"] == delta.path.name
    for kind in naming.FIRST_DEGREE_KINDS:
        old, new = before.by_id(kind), after.by_id(kind)
        changes = delta.by_id(kind)
        expected = {
            "add": sorted(set(new) - set(old)),
            "delete": sorted(set(old) - set(new)),
            "modify": sorted(i for i in set(old) & set(new) if old[i].attrs != new[i].attrs),
        }
        got = {op: sorted(i for i, r in changes.items() if r.op == op) for op in expected}
        assert got == expected == truth["records"][kind]
        for i, r in changes.items():
            if r.op == "delete":
                assert r.attrs == {}
            else:
                assert r.attrs == new[i].attrs  # adds and modifies re-send every attribute
            if r.op == "modify":
                assert r.operations == {"replace"}
    pupils = truth["records"]["Eleve"]
    assert pupils["add"] and pupils["delete"] and pupils["modify"]
    assert sorted(a["jointure"] for a in truth["arrivals"]) == pupils["add"]
    assert sorted(d["jointure"] for d in truth["departures"]) == pupils["delete"]
    old, new = before.by_id("Eleve"), after.by_id("Eleve")
    for change in truth["class_changes"]:
        j = change["jointure"]
        assert old[j].first(A_EL["classes"]).split("$")[3] == change["from"]
        assert new[j].first(A_EL["classes"]).split("$")[3] == change["to"]
    guardians = after.by_id("PersRelEleve")
    kinds = Counter(c["change"] for c in truth["guardian_changes"])
    assert kinds["contact"] and kinds["new_guardian"]
    for change in truth["guardian_changes"]:
        assert sorted(guardians[change["guardian"]].values(A_PR["students"])) == sorted(
            change["students"]
        )
        if change["change"] == "new_guardian":
            for kid in change["students"]:
                assert f"{change['guardian']}${change['link_code']}" in new[kid].values(
                    A_EL["guardians"]
                )


# ----------------------------------------------------------------------------------------
# Defects: each detector finds exactly the victims of truth.json
# ----------------------------------------------------------------------------------------

Found = set[Any]
MAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _pupils(a: Archive) -> list[Rec]:
    return a.records["Eleve"]


def _detect_dangling(a: Archive) -> Found:
    guardians = a.by_jointure("PersRelEleve")
    return {
        (p.j, link.split("$")[0])
        for p in _pupils(a)
        for link in p.values(A_EL["guardians"])
        if link.split("$")[0] not in guardians
    }


def _detect_orphan(a: Archive) -> Found:
    named = {link.split("$")[0] for p in _pupils(a) for link in p.values(A_EL["guardians"])}
    return {g.j for g in a.records["PersRelEleve"] if g.j not in named}


def _detect_one_sided(a: Archive) -> Found:
    guardians = a.by_jointure("PersRelEleve")
    return {
        (p.j, g)
        for p in _pupils(a)
        for g in (link.split("$")[0] for link in p.values(A_EL["guardians"]))
        if g in guardians and p.j not in guardians[g].values(A_PR["students"])
    }


def _detect_duplicate_ine(a: Archive) -> Found:
    by_ine: dict[str, set[str]] = defaultdict(set)
    for p in _pupils(a):
        if p.first(A_EL["ine"]):
            by_ine[p.first(A_EL["ine"])].add(p.j)
    return {frozenset(js) for js in by_ine.values() if len(js) > 1}


def _detect_malformed_ine(a: Archive) -> Found:
    return {
        p.j
        for p in _pupils(a)
        if p.first(A_EL["ine"])
        and not re.fullmatch(r"[0-9A-Z]{10}[A-Z]|[0-9]{9}[A-Z]{2}", p.first(A_EL["ine"]))
    }


def _detect_wrong_uai_key(a: Archive) -> Found:
    out = set()
    for s in a.records["EtabEducNat"]:
        uai = s.first(A_ST["uai"]) or ""
        if uai[7] != "ABCDEFGHJKLMNPRSTUVWXYZ"[int(uai[:7]) % 23]:
            out.add(s.j)
    return out


def _directors(a: Archive) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for s in a.records["PersEducNat"]:
        for school in s.values(A_PE["director_of"]):
            out[school].append(s.j)
    return out


def _schools(a: Archive) -> list[str]:
    return [s.j for s in a.records["EtabEducNat"] if s.first(A_ST["struct_type"]) == "ECOLE"]


def _detect_school_without_director(a: Archive) -> Found:
    return {s for s in _schools(a) if s not in _directors(a)}


def _detect_several_directors(a: Archive) -> Found:
    return {s for s, ds in _directors(a).items() if len(ds) > 1}


def _detect_director_not_attached(a: Archive) -> Found:
    return {
        s.j
        for s in a.records["PersEducNat"]
        if set(s.values(A_PE["director_of"])) - set(s.values(A_PE["structures"]))
    }


def _detect_staff_without_structure(a: Archive) -> Found:
    return {s.j for s in a.records["PersEducNat"] if not s.values(A_PE["structures"])}


def _birth(p: Rec, day: dt.date) -> dt.date | None:
    try:
        born = dt.datetime.strptime(p.first(A_EL["birth_date"]) or "", "%d/%m/%Y").date()
    except ValueError:
        return None
    return born if born <= day else None


def _detect_impossible_birth_date(a: Archive) -> Found:
    assert a.name.date
    return {
        p.j for p in _pupils(a) if p.first(A_EL["birth_date"]) and _birth(p, a.name.date) is None
    }


def _detect_birth_date_level_mismatch(a: Archive) -> Found:
    assert a.name.date
    out = set()
    for p in _pupils(a):
        born, level = _birth(p, a.name.date), p.first(A_EL["level"])
        if (
            born
            and level
            and p.first(A_EL["class_type"]) != "ULIS"
            and 2026 - born.year != schema.LEVEL_AGE[level]
        ):
            out.add(p.j)
    return out


def _detect_level_cycle_mismatch(a: Archive) -> Found:
    return {
        p.j
        for p in _pupils(a)
        if p.first(A_EL["level"])
        and p.first(A_EL["cycle"])
        and int(p.first(A_EL["cycle"])[-1]) != schema.LEVEL_CYCLE[p.first(A_EL["level"])]
    }


def _detect_pupil_in_two_schools(a: Archive) -> Found:
    return {p.j for p in _pupils(a) if len(p.values(A_EL["structures"])) > 1}


def _detect_class_of_other_structure(a: Archive) -> Found:
    return {
        p.j
        for p in _pupils(a)
        if {c.split("$")[0] for c in p.values(A_EL["classes"])} - set(p.values(A_EL["structures"]))
    }


def _detect_pupil_without_class(a: Archive) -> Found:
    return {p.j for p in _pupils(a) if not p.values(A_EL["classes"])}


def _detect_id_mismatch(a: Archive) -> Found:
    return {(kind, r.j) for kind, recs in a.records.items() for r in recs if r.id != r.j}


def _detect_missing_required(a: Archive) -> Found:
    return {
        (kind, r.j, f.attr)
        for kind, recs in a.records.items()
        for r in recs
        for f in schema.KINDS[kind].fields
        if f.required and not r.values(f.attr)
    }


def _detect_unknown_attribute(a: Archive) -> Found:
    return {
        (kind, r.j, name)
        for kind, recs in a.records.items()
        for r in recs
        for name in r.attrs
        if name not in schema.KNOWN_ATTRIBUTES
    }


def _detect_mojibake(a: Archive) -> Found:
    return {
        (kind, r.j, name)
        for kind, recs in a.records.items()
        for r in recs
        for name, values in r.attrs.items()
        if any("Ã" in v for v in values if v)
    }


def _detect_malformed_mail(a: Archive) -> Found:
    attrs = {A_PR["mail"], A_ST["mail"]}
    return {
        r.j
        for recs in a.records.values()
        for r in recs
        for name in attrs
        for v in r.values(name)
        if not MAIL.fullmatch(v)
    }


def _detect_non_mobile_phone(a: Archive) -> Found:
    out = set()
    for g in a.records["PersRelEleve"]:
        for v in g.values(A_PR["mobile_phone"]):
            digits = re.sub(r"\D", "", v)
            digits = "0" + digits[2:] if v.startswith("+33") else digits
            if digits[:2] not in ("06", "07"):
                out.add(g.j)
    return out


def _detect_malformed_postal_code(a: Archive) -> Found:
    return {
        r.j
        for recs in a.records.values()
        for r in recs
        for name in (A_PR["postal_code"], A_ST["postal_code"])
        for v in r.values(name)
        if not re.fullmatch(r"\d{5}", v)
    }


def _pair(e: dict) -> Any:
    return (e["jointure"], e["related"][0])


def _jointure(e: dict) -> Any:
    return e["jointure"]


DETECTORS: dict[str, tuple[Callable[[Archive], Found], Callable[[dict], Any]]] = {
    "dangling_guardian": (_detect_dangling, _pair),
    "orphan_guardian": (_detect_orphan, _jointure),
    "one_sided_link": (_detect_one_sided, _pair),
    "duplicate_ine": (_detect_duplicate_ine, lambda e: frozenset([e["jointure"], *e["related"]])),
    "malformed_ine": (_detect_malformed_ine, _jointure),
    "wrong_uai_key": (_detect_wrong_uai_key, _jointure),
    "school_without_director": (_detect_school_without_director, _jointure),
    "several_directors": (_detect_several_directors, _jointure),
    "director_not_attached": (_detect_director_not_attached, _jointure),
    "staff_without_structure": (_detect_staff_without_structure, _jointure),
    "impossible_birth_date": (_detect_impossible_birth_date, _jointure),
    "birth_date_level_mismatch": (_detect_birth_date_level_mismatch, _jointure),
    "level_cycle_mismatch": (_detect_level_cycle_mismatch, _jointure),
    "pupil_in_two_schools": (_detect_pupil_in_two_schools, _jointure),
    "class_of_other_structure": (_detect_class_of_other_structure, _jointure),
    "pupil_without_class": (_detect_pupil_without_class, _jointure),
    "id_mismatch": (_detect_id_mismatch, lambda e: (e["kind"], e["jointure"])),
    "missing_required": (
        _detect_missing_required,
        lambda e: (e["kind"], e["jointure"], e["attribute"]),
    ),
    "unknown_attribute": (
        _detect_unknown_attribute,
        lambda e: (e["kind"], e["jointure"], e["attribute"]),
    ),
    "mojibake": (_detect_mojibake, lambda e: (e["kind"], e["jointure"], e["attribute"])),
    "malformed_mail": (_detect_malformed_mail, _jointure),
    "non_mobile_phone": (_detect_non_mobile_phone, _jointure),
    "malformed_postal_code": (_detect_malformed_postal_code, _jointure),
}


def test_every_registered_defect_has_a_detector_here() -> None:
    assert set(DETECTORS) == set(synth.DEFECTS)
    for name, defect in synth.DEFECTS.items():
        assert defect.name == name and defect.kind in naming.FIRST_DEGREE_KINDS
        assert defect.description and callable(defect.inject)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_defect_is_in_the_xml_exactly_for_its_victims(
    name: str,
    defective: synth.SynthResult,
    defective_archives: list[Archive],
    clean_archives: list[Archive],
) -> None:
    detect, key = DETECTORS[name]
    entries = _truth(defective)["defects"][name]
    assert entries, "every defect is injected at least once"
    expected = {key(e) for e in entries}
    assert len(expected) == len(entries)
    first, _, later = defective_archives
    assert detect(first) == expected
    assert detect(later) == expected  # carried unchanged into the later Complet
    assert detect(clean_archives[0]) == set() == detect(clean_archives[2])


def test_defect_entries_name_the_school_and_one_victim_each(
    defective: synth.SynthResult, defective_archives: list[Archive]
) -> None:
    truth = _truth(defective)
    first = defective_archives[0]
    uai = {s.j: s.first(A_ST["uai"]) for s in first.records["EtabEducNat"]}
    pupils = first.by_jointure("Eleve")
    victims = Counter()
    for entries in truth["defects"].values():
        for e in entries:
            assert set(e) >= {"kind", "jointure", "uai", "attribute", "detail"}
            victims[(e["kind"], e["jointure"])] += 1
            if e["kind"] == "Eleve":
                school = pupils[e["jointure"]].values(A_EL["structures"])[0]
                assert e["uai"] == uai[school]
            if e["kind"] == "EtabEducNat":
                assert e["uai"] == uai[e["jointure"]]
    assert max(victims.values()) == 1
    touched = {
        (k, j) for k, ops in truth["delta"]["records"].items() for ids in ops.values() for j in ids
    }
    assert not touched & set(victims)
    assert truth["config"]["defects"] == ALL_DEFECTS


def test_defect_rate_sets_the_count() -> None:
    one = synth.generate(**SMALL, defects={"pupil_without_class": 1e-9})
    assert len(one.truth["defects"]["pupil_without_class"]) == 1
    many = synth.generate(**SMALL, defects={"pupil_without_class": 0.05})
    assert len(many.truth["defects"]["pupil_without_class"]) == round(0.05 * SMALL["pupils"])
    none = synth.generate(**SMALL, defects={"pupil_without_class": 0.0})
    assert none.truth["defects"]["pupil_without_class"] == []


def test_defects_leave_the_rest_of_the_perimeter_unchanged() -> None:
    clean = synth.generate(**SMALL)
    broken = synth.generate(**SMALL, defects={"duplicate_ine": 1e-9})
    (entry,) = [e for e in broken.truth["defects"]["duplicate_ine"]]
    for kind in naming.FIRST_DEGREE_KINDS:
        for a, b in zip(
            clean.extractions[0].records[kind], broken.extractions[0].records[kind], strict=True
        ):
            assert (a.attrs == b.attrs) == (a.id != entry["jointure"])


def test_unknown_defect_or_rate_is_refused() -> None:
    with pytest.raises(SynthParameterError, match="'defects': défauts inconnus : nope ;"):
        synth.generate(**SMALL, defects={"nope": 0.1})
    with pytest.raises(SynthParameterError, match=r"'defects': taux 2 hors de \[0, 1\]$"):
        synth.generate(**SMALL, defects={"duplicate_ine": 2, "mojibake": 0.1})
    with pytest.raises(SynthParameterError, match="'pupils': 5 élèves pour 10 écoles"):
        synth.generate(schools=10, pupils=5)
    with pytest.raises(SynthParameterError, match="'schools': 0 : il faut au moins une école"):
        synth.generate(schools=0, pupils=5)
    with pytest.raises(SynthParameterError, match="'seed': -1 : la graine"):
        synth.generate(**{**SMALL, "seed": -1})
    for hostile in ("../x", "a/b", "", "-x", "ENT1D DEMO"):  # every file name starts with it
        with pytest.raises(SynthParameterError, match="'perimeter'"):
            synth.generate(**{**SMALL, "perimeter": hostile})


def test_writing_one_perimeter_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    """The threaded writer: archives do not depend on scheduling; tar members anonymous."""
    perimeter = synth.generate(**SMALL)
    a = synth.write_perimeter(perimeter, tmp_path / "a", part_size=PART_SIZE)
    b = synth.write_perimeter(perimeter, tmp_path / "b", part_size=PART_SIZE)
    assert [p.read_bytes() for p in a.archives] == [p.read_bytes() for p in b.archives]
    data = io.BytesIO(a.archives[1].read_bytes())
    with tarfile.open(fileobj=data, mode="r:gz") as tar:
        assert all(m.uname == "" and m.uid == 0 for m in tar.getmembers())
