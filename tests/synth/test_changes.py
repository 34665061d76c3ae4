"""``synth.series``: Complet → Delta → Delta → Complet, every change and every lie recorded."""

from __future__ import annotations

import hashlib
import json

import pytest

import ent_audit
from ent_audit.aaf import schema
from ent_audit.synth import generate, series, write


@pytest.fixture(scope="module")
def built():
    base = generate(seed=7, schools=6, pupils=300)
    return base, series.build(base, seed=7), series.build(base, seed=7, lies=())


def test_the_series_is_a_complet_two_deltas_and_a_complet_in_date_order(built):
    _, s, _ = built
    names = [e.name for e in s.extractions]
    assert [n.extraction for n in names] == ["complete", "delta", "delta", "complete"]
    assert [n.date for n in names] == sorted(n.date for n in names)
    assert [e["archive"] for e in s.truth["extractions"]] == [n.filename for n in names]


def test_every_kind_and_operation_is_exercised_with_no_op_modifies(built):
    _, s, _ = built
    changes = s.truth["changes"]
    ops = {(k, op) for c in changes.values() for k, d in c.items() for op in d if d[op]}
    for kind in ("Eleve", "PersRelEleve", "PersEducNat"):
        assert {(kind, "add"), (kind, "delete"), (kind, "modify")} <= ops, kind
    assert ("EtabEducNat", "modify") in ops
    assert ("Eleve", "modify_noop") in ops and ("PersRelEleve", "modify_noop") in ops
    attributes = {a for c in changes.values() for d in c.values() for a in d["attributes"]}
    assert {"ENTEleveNiveau", "ENTEleveCycle", "ENTPersonClasses", "ENTPersonStructRattach",
            "ENTEleveAutoriteParentale", "ENTPersonFonctions",
            "ENTEcoleCirconscription"} <= attributes  # fmt: skip


def test_without_lies_the_deltas_lead_exactly_to_the_final_complet(built):
    _, _, honest = built
    assert honest.truth["lies"] == [] and honest.truth["reconciliation"] == []


def test_each_planted_lie_is_what_a_reconciliation_must_find_and_nothing_else(built):
    _, s, _ = built
    lies = {(x["kind"], x["jointure"], x["attribute"], x["operation"]) for x in s.truth["lies"]}
    found = {(x["kind"], x["jointure"], x["attribute"], x["operation"])
             for x in s.truth["reconciliation"]}  # fmt: skip
    assert found == lies and len(lies) == 3
    assert {x["lie"] for x in s.truth["lies"]} == set(series.LIES)


def test_the_final_complet_is_the_same_with_or_without_lies(built):
    _, s, honest = built
    ids = {k: [r.id for r in s.extractions[3].records[k]] for k in series.KINDS}
    assert ids == {k: [r.id for r in honest.extractions[3].records[k]] for k in series.KINDS}


def test_an_unknown_lie_is_refused(built):
    base, _, _ = built
    with pytest.raises(ValueError, match="mensonges inconnus: \\['fib'\\]"):
        series.build(base, lies=("fib",))


@pytest.mark.slow
def test_the_written_deltas_say_what_the_truth_says_and_write_is_unchanged(tmp_path):
    r = series.write(tmp_path / "s", seed=3, schools=5, pupils=250)
    truth = json.loads(r.truth.read_text())
    assert [a.name for a in r.archives] == [e["archive"] for e in truth["extractions"]]
    for archive in r.archives[1:3]:
        snap = ent_audit.load(archive, workers=1)
        for kind in schema.KINDS.values():
            frame = getattr(snap, kind.frame)
            want = truth["changes"][archive.name][kind.name]
            for op in ("add", "modify", "delete"):
                got = sorted(frame.loc[frame["op"] == op, "jointure"].astype(str))
                assert got == want[op], (archive.name, kind.name, op)
    # The generator's own output is untouched: its first Complet is the series' first archive.
    plain = write(tmp_path / "g", seed=3, schools=5, pupils=250)
    digest = [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (plain.archives[0], r.archives[0])
    ]
    assert digest[0] == digest[1]
