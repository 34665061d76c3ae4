"""Generate, write, load: every frame equals the generator's own records.

The expected values are computed here from the generator's ``Record`` objects with plain Python
(``datetime.strptime``, ``str.split``), not with the reader's conversion code, so a conversion
bug in the reader cannot hide behind the same bug in the test.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pandas as pd
import pytest

import ent_audit
from ent_audit.aaf import schema
from ent_audit.synth import DEFECTS, write


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return write(tmp_path_factory.mktemp("clean"), seed=7, schools=14, pupils=900, part_size=60_000)


@pytest.fixture(scope="module")
def defective(tmp_path_factory):
    return write(
        tmp_path_factory.mktemp("defects"),
        seed=11,
        schools=14,
        pupils=900,
        part_size=60_000,
        defects={name: 0.01 for name in DEFECTS},
    )


def _text(values):
    for v in values or []:
        if v is not None and v.strip():
            return v.strip()
    return None


def _expected_cell(f: schema.Field, text: str | None):
    if text is None:
        return None
    if f.dtype == "date":
        try:
            return pd.Timestamp(dt.datetime.strptime(text, "%d/%m/%Y"))
        except ValueError:
            return None
    if f.dtype == "bool":
        return {"O": True, "N": False}.get(text.upper())
    if f.dtype == "level":
        return text.upper()
    if f.dtype == "cycle":
        m = re.search(r"([123])\s*$", text)
        words = {"premiers": 1, "fondamentaux": 2, "consolidation": 3}
        return (
            int(m.group(1))
            if m
            else next((v for k, v in words.items() if text.lower().endswith(k)), None)
        )
    return text


def _cell(v):
    return None if v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v) else v


def _check_extraction(snap: ent_audit.Snapshot, ext) -> None:
    for kind_name, kind in schema.KINDS.items():
        records = ext.records.get(kind_name, [])
        frame = getattr(snap, kind.frame)
        assert len(frame) == len(records), kind_name
        jf = kind.by_attr[kind.id_attr]
        joints = [_text(r.attrs.get(kind.id_attr)) or r.id for r in records]
        assert frame["jointure"].tolist() == joints, kind_name
        assert frame["op"].astype(str).tolist() == [r.op for r in records]
        for f in kind.single:
            if f is jf:
                continue
            expected = [
                _expected_cell(
                    f, _text(next((r.attrs[a] for a in (f.attr, *f.aliases) if a in r.attrs), None))
                )
                for r in records
            ]
            got = [_cell(v) for v in frame[f.column].tolist()]
            assert got == expected, (kind_name, f.column)
        for f in kind.multi:
            table = snap.links[f.link]
            lt = schema.LINK_TABLES[f.link]
            if lt.origin:
                table = table[table[lt.origin] == kind.entity]
            expected = Counter(
                (j, v.strip())
                for j, r in zip(joints, records, strict=False)
                for v in r.attrs.get(f.attr, [])
                if v is not None and v.strip()
            )
            parts = table[list(f.parts)].astype(object).where(table[list(f.parts)].notna(), "")
            rebuilt = ["$".join(map(str, row)) for row in parts.values.tolist()]
            got = Counter(zip(table[f.owner].tolist(), rebuilt, strict=False))
            assert got == expected, (kind_name, f.attr)


def test_every_frame_of_every_extraction_equals_the_generated_records(clean):
    assert [a.name for a in clean.archives] == [
        e.name.filename for e in clean.perimeter.extractions
    ]
    for archive, ext in zip(clean.archives, clean.perimeter.extractions, strict=False):
        snap = ent_audit.load(archive, workers=2)
        assert snap.extraction.extraction == ext.name.extraction
        assert snap.extraction.date == ext.name.date
        _check_extraction(snap, ext)
        assert snap.issues.empty, snap.issues.head().to_dict("records")
        assert snap.extras.empty and snap.skipped.empty and snap.notes == []


def test_parts_are_split_and_read_back_in_order(clean):
    snap = ent_audit.load(clean.archives[0])
    parts = snap.files.groupby("kind")["part"].agg(list).to_dict()
    assert len(parts["Eleve"]) > 2 and parts["Eleve"] == list(range(len(parts["Eleve"])))
    assert set(snap.files["encoding"]) >= {"UTF-8", "ISO-8859-15"}
    assert not snap.files["declared"].all()


def test_with_every_defect_injected_the_reader_still_reads_every_record(defective):
    for archive, ext in zip(defective.archives, defective.perimeter.extractions, strict=False):
        _check_extraction(ent_audit.load(archive), ext)


def test_reader_level_defects_are_reported_for_exactly_their_victims(defective):
    snap = ent_audit.load(defective.archives[0])
    truth = defective.perimeter.truth["defects"]
    for defect, code in (
        ("id_mismatch", "id_mismatch"),
        ("unknown_attribute", "unknown_attribute"),
    ):
        victims = {(e["kind"], e["jointure"]) for e in truth[defect]}
        found = snap.issues[snap.issues["code"] == code]
        if code == "unknown_attribute":
            found = snap.extras[~snap.extras["attribute"].isin(schema.KNOWN_ATTRIBUTES)]
        assert set(zip(found["kind"], found["jointure"], strict=False)) == victims, defect
    # Impossible dates are either not calendar dates (the reader reports them) or in the future
    # (a valid date: the quality audit's business).
    invalid = snap.issues[
        (snap.issues["code"] == "invalid_value")
        & (snap.issues["attribute"] == "ENTPersonDateNaissance")
    ]
    victims = {e["jointure"] for e in truth["impossible_birth_date"]}
    assert set(invalid["jointure"]) and set(invalid["jointure"]) <= victims
