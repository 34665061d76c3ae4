"""A series of extractions for the delta inspection: Complet → Delta → Delta → Complet.

:func:`build` takes a generated perimeter (its Complet, Delta and later Complet) and makes
the series a town receives between two Complets: the generator's Delta split in two, plus
changes the generator does not make (a level and a cycle, a guardian link code, a pupil moving
to another school, a school's circonscription and phone, a teacher's function, a staff
departure and arrival, a pupil added then deleted, ``modifyRequest`` that change nothing), and
a final Complet equal to the true state. It can plant **lying Deltas** (:data:`LIES`): the
written Delta drops a delete, sends a wrong value, or misses an add, while the final Complet
tells the truth.

Everything is recorded by replaying the written extractions (the truth is what the files say,
not what the code meant): per archive, kind and operation the jointures, per attribute the
number of values a modification changed, the no-op modifications; then the lies, and what a
reconciliation of the final Complet against the state the Deltas built must find (exactly the
lies). :func:`write` writes the four archives and that truth as ``truth.json`` (with the
generator's own truth under ``base``). The generator itself is untouched: its ``write`` gives
the same bytes as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ent_audit.aaf import naming, schema
from ent_audit.synth import (
    Extraction,
    Perimeter,
    Record,
    SynthResult,
    generate,
    write_perimeter,
)

LIES: dict[str, str] = {
    "dropped_delete": "le Delta omet la suppression d'un élève parti",
    "wrong_value": "le Delta transmet un niveau faux pour un élève modifié",
    "missing_add": "le Delta omet l'ajout d'un élève arrivé",
}
"""The lies a Delta can tell, and what they mean (French, for the truth file)."""

FIRST_DELTA_AFTER = dt.timedelta(days=7)
"""The first Delta of the series, after the first Complet (the second is the generator's)."""

KINDS = naming.FIRST_DEGREE_KINDS
_MULTI = {k: {f.attr for f in schema.KINDS[k].multi} for k in KINDS}
_EL = {f.column: f.attr for f in schema.STUDENT.fields}
_ST = {f.column: f.attr for f in schema.STRUCTURE.fields}
_PE = {f.column: f.attr for f in schema.STAFF.fields}

State = dict[str, dict[str, dict[str, list[str | None]]]]
"""kind -> jointure -> attributes: one complete state."""


def _state(extraction: Extraction) -> State:
    return {k: {r.id: r.attrs for r in extraction.records[k]} for k in KINDS}


def _values(kind: str, attr: str, values: list[str | None] | None) -> Any:
    """An attribute as the reader compares it: a set for a multi-valued one, else the value."""
    present = [v for v in (values or [None]) if v is not None and v.strip() != ""]
    if attr in _MULTI[kind]:
        return frozenset(v.rstrip("$") for v in present)
    return present[0].strip() if present else None


def _changed(kind: str, before: dict, after: dict) -> list[str]:
    """The attributes whose value differs between two versions of a record."""
    attrs = sorted(set(before) | set(after))
    return [a for a in attrs if _values(kind, a, before.get(a)) != _values(kind, a, after.get(a))]


def replay(start: State, deltas: Sequence[Extraction]) -> tuple[State, dict[str, dict]]:
    """Apply written Deltas to a state as the store does (a modify replaces the record) and
    record, per archive and kind, what each operation changed."""
    state = {k: dict(v) for k, v in start.items()}
    changes: dict[str, dict] = {}
    for ext in deltas:
        out = changes[ext.name.filename] = {}
        for kind in KINDS:
            c: dict[str, Any] = {
                "add": [], "modify": [], "delete": [], "modify_noop": [], "attributes": {},
            }  # fmt: skip
            records = state[kind]
            for r in ext.records[kind]:
                c[r.op].append(r.id)
                if r.op == "delete":
                    records.pop(r.id, None)
                    continue
                if r.op == "modify" and r.id in records:
                    diff = _changed(kind, records[r.id], r.attrs)
                    if not diff:
                        c["modify_noop"].append(r.id)
                    for a in diff:
                        c["attributes"][a] = c["attributes"].get(a, 0) + 1
                records[r.id] = r.attrs
            out[kind] = {k: sorted(v) if isinstance(v, list) else dict(sorted(v.items()))
                         for k, v in c.items()}  # fmt: skip
    return state, changes


def reconcile(state: State, complete: State) -> list[dict]:
    """What a reconciliation of ``complete`` against ``state`` finds: one entry per record
    only on one side, and per attribute of a record whose values differ."""
    out = []
    for kind in KINDS:
        a, b = state[kind], complete[kind]
        for j in sorted(set(a) - set(b)):
            out.append({"kind": kind, "jointure": j, "attribute": None, "operation": "disappeared"})
        for j in sorted(set(b) - set(a)):
            out.append({"kind": kind, "jointure": j, "attribute": None, "operation": "appeared"})
        for j in sorted(set(a) & set(b)):
            out += [
                {"kind": kind, "jointure": j, "attribute": attr, "operation": "changed"}
                for attr in _changed(kind, a[j], b[j])
            ]
    return out


class _Changes:
    """The series' own changes, drawn from a seeded stream, each on a record nobody else
    touches (a jointure appears at most once per Delta)."""

    def __init__(self, first: State, used: set[tuple[str, str]], seed: int) -> None:
        self.first = first
        self.used = set(used)
        self.rng = np.random.default_rng([seed, 12])
        numeric = [int(j) for k in KINDS for j in first[k] if j.isdigit()]
        self.next_id = max(numeric, default=9_000_000) + 100_000

    def pick(self, kind: str, ok=lambda attrs: True) -> str | None:
        ids = [
            j for j in self.first[kind] if (kind, j) not in self.used and ok(self.first[kind][j])
        ]
        if not ids:
            return None
        j = ids[int(self.rng.integers(len(ids)))]
        self.used.add((kind, j))
        return j

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)


def _modify(attrs: dict, **changes: list[str | None]) -> dict:
    out = dict(attrs)
    out.update(changes)
    return out


def _first(attrs: dict, attr: str) -> str | None:
    return (attrs.get(attr) or [None])[0]


def _own_changes(first: State, used: set[tuple[str, str]], seed: int) -> tuple[list, list]:
    """(first Delta's, second Delta's) own records, as (kind, Record)."""
    ch = _Changes(first, used, seed)
    d1: list[tuple[str, Record]] = []
    d2: list[tuple[str, Record]] = []
    pupils, staff, structures = first["Eleve"], first["PersEducNat"], first["EtabEducNat"]
    schools = {j: a for j, a in structures.items() if _first(a, _ST["struct_type"]) == "ECOLE"}
    levels = schema.LEVELS

    # A pupil goes up one level, into the next cycle where one can (the cycle follows, in
    # the school's written form), then a
    # flag of the same pupil changes in the second Delta.
    j = ch.pick("Eleve", lambda a: _first(a, _EL["level"]) in ("GS", "CE2")) or ch.pick(
        "Eleve", lambda a: _first(a, _EL["level"]) in levels[:-1]
    )
    if j:
        a = pupils[j]
        level = levels[levels.index(_first(a, _EL["level"])) + 1]
        cycle = _first(a, _EL["cycle"]) or "cycle {}"
        cycle = (
            "".join(c for c in cycle if not c.isdigit()).strip() + f" {schema.LEVEL_CYCLE[level]}"
        )
        up = _modify(a, **{_EL["level"]: [level], _EL["cycle"]: [cycle]})
        d1.append(("Eleve", Record("modify", j, up)))
        flag = "N" if _first(a, _EL["transport"]) == "O" else "O"
        d2.append(("Eleve", Record("modify", j, _modify(up, **{_EL["transport"]: [flag]}))))

    # A guardian link's code changes (mother recorded as an ascendant).
    j = ch.pick("Eleve", lambda a: bool(_first(a, _EL["guardians"])))
    if j:
        a = pupils[j]
        links = list(a[_EL["guardians"]])
        gid, _, code = (links[0] or "").partition("$")
        links[0] = f"{gid}${'38' if code != '38' else '10'}"
        d1.append(("Eleve", Record("modify", j, _modify(a, **{_EL["guardians"]: links}))))

    # A pupil moves to a class of the same level in another school.
    by_level: dict[str, list[tuple[str, str]]] = {}
    for a in pupils.values():
        school, cls = _first(a, _EL["structures"]), _first(a, _EL["classes"])
        if school and cls:
            by_level.setdefault(_first(a, _EL["level"]) or "", []).append((school, cls))
    j = ch.pick(
        "Eleve",
        lambda a: any(
            s != _first(a, _EL["structures"]) for s, _ in by_level.get(_first(a, _EL["level"]), [])
        ),
    )
    if j:
        a = pupils[j]
        options = sorted(
            {o for o in by_level[_first(a, _EL["level"])] if o[0] != _first(a, _EL["structures"])}
        )
        school, cls = options[int(ch.rng.integers(len(options)))]
        moved = _modify(
            a, **{_EL["structures"]: [school], _EL["classes"]: [cls], _EL["groups"]: [None]}
        )
        d2.append(("Eleve", Record("modify", j, moved)))

    # modifyRequest that change nothing: a pupil in the first Delta, a guardian in the second.
    for delta, kind in ((d1, "Eleve"), (d2, "PersRelEleve")):
        j = ch.pick(kind)
        if j:
            delta.append((kind, Record("modify", j, dict(first[kind][j]))))

    # A pupil added in the first Delta and deleted in the second (a short stay).
    j = ch.pick("Eleve")
    if j:
        new = ch.new_id()
        copy = _modify(pupils[j], **{_EL["jointure"]: [new], _EL["ine"]: [None]})
        d1.append(("Eleve", Record("add", new, copy)))
        d2.append(("Eleve", Record("delete", new, {})))

    # A school changes circonscription (first Delta) and another its phone (second).
    circs = sorted({c for a in schools.values() if (c := _first(a, _ST["circonscription"]))})
    j = ch.pick("EtabEducNat", lambda a: a in schools.values() and len(circs) > 1)
    if j:
        now = _first(structures[j], _ST["circonscription"])
        other = next(c for c in circs if c != now)
        d1.append(
            (
                "EtabEducNat",
                Record("modify", j, _modify(structures[j], **{_ST["circonscription"]: [other]})),
            )
        )
    j = ch.pick("EtabEducNat", lambda a: a in schools.values())
    if j:
        phone = "05" + "".join(str(int(d)) for d in ch.rng.integers(0, 10, 8))
        d2.append(
            ("EtabEducNat", Record("modify", j, _modify(structures[j], **{_ST["phone"]: [phone]})))
        )

    # A teacher's teaching function becomes a documentation one (first Delta); a staff member
    # leaves and another arrives (second Delta).
    def teaches(a: dict) -> bool:
        return any("$ENS$" in (v or "") for v in a.get(_PE["functions"], []))

    j = ch.pick("PersEducNat", teaches)
    if j:
        a = staff[j]
        functions = [_documentation(v) for v in a[_PE["functions"]]]
        d1.append(("PersEducNat", Record("modify", j, _modify(a, **{_PE["functions"]: functions}))))
    j = ch.pick("PersEducNat")
    if j:
        d2.append(("PersEducNat", Record("delete", j, {})))
    j, other = ch.pick("PersEducNat"), ch.pick("PersEducNat")
    if j and other:
        new = ch.new_id()
        arrival = _modify(
            staff[j],
            **{_PE["jointure"]: [new], _PE["first_name"]: list(staff[other][_PE["first_name"]]),
               _PE["mail"]: [None]},
        )  # fmt: skip
        d2.append(("PersEducNat", Record("add", new, arrival)))
    return d1, d2


def _documentation(value: str | None) -> str | None:
    """A function value ``structure$ENS$label$…`` turned into documentation (``DOC``)."""
    parts = (value or "").split("$")
    if len(parts) < 3 or parts[1] != "ENS":
        return value
    parts[1:3] = ["DOC", schema.FUNCTION_CODES["DOC"].upper()]
    return "$".join(parts)


def build(base: Perimeter, *, seed: int = 0, lies: Sequence[str] = tuple(LIES)) -> Perimeter:
    """The series from a generated perimeter: Complet, two Deltas, the true later Complet,
    and its truth (see the module docstring). ``lies`` names of :data:`LIES` to plant."""
    unknown = sorted(set(lies) - set(LIES))
    if unknown:
        raise ValueError(f"mensonges inconnus: {unknown}; connus: {sorted(LIES)}")
    first, delta, later = base.extractions
    assert first.name.date is not None and delta.name.date is not None
    perimeter = first.name.perimeter
    names = (
        first.name,
        naming.ArchiveName(perimeter, "delta", first.name.date + FIRST_DELTA_AFTER),
        naming.ArchiveName(perimeter, "delta", delta.name.date),
        naming.ArchiveName(perimeter, "complete", later.name.date),
    )
    start = _state(first)
    true1: dict[str, list[Record]] = {k: [] for k in KINDS}
    true2: dict[str, list[Record]] = {k: [] for k in KINDS}
    for kind in KINDS:  # the generator's Delta, split in two by record order
        for i, r in enumerate(delta.records[kind]):
            (true1 if i % 2 == 0 else true2)[kind].append(r)
    used = {(k, r.id) for k in KINDS for r in delta.records[k]}
    own1, own2 = _own_changes(start, used, seed)
    for target, own in ((true1, own1), (true2, own2)):
        for kind, r in own:
            target[kind].append(r)
    for target in (true1, true2):
        for kind in KINDS:
            target[kind].sort(key=lambda r: r.id)
    truth_state, _ = replay(start, [Extraction(names[1], true1), Extraction(names[2], true2)])

    written1 = {k: list(v) for k, v in true1.items()}
    written2 = {k: list(v) for k, v in true2.items()}
    planted = []
    if "dropped_delete" in lies:
        n, r = _base_record(used, "delete", (names[1], written1), (names[2], written2))
        planted.append(_lie("dropped_delete", n, "Eleve", r.id, None, "disappeared"))
    if "wrong_value" in lies:
        i, r = next(
            (i, r) for i, r in enumerate(written2["Eleve"])
            if r.op == "modify" and r.id in start["Eleve"] and _first(r.attrs, _EL["level"])
        )  # fmt: skip
        level = _first(r.attrs, _EL["level"])
        wrong = next(lv for lv in schema.LEVELS[::-1] if lv != level)
        written2["Eleve"][i] = Record("modify", r.id, _modify(r.attrs, **{_EL["level"]: [wrong]}))
        planted.append(_lie("wrong_value", names[2], "Eleve", r.id, _EL["level"], "changed"))
    if "missing_add" in lies:
        n, r = _base_record(used, "add", (names[2], written2), (names[1], written1))
        planted.append(_lie("missing_add", n, "Eleve", r.id, None, "appeared"))

    deltas = [Extraction(names[1], written1), Extraction(names[2], written2)]
    built, changes = replay(start, deltas)
    final = Extraction(
        names[3],
        {k: [Record("add", j, attrs) for j, attrs in truth_state[k].items()] for k in KINDS},
    )
    extractions = [first, *deltas, final]
    truth = {
        "config": {"seed": seed, "lies": list(lies), "base": base.truth["config"]},
        "extractions": [
            {"archive": n.filename, "type": n.extraction, "date": n.date.isoformat()}
            for n in names
            if n.date
        ],
        "changes": changes,
        "lies": planted,
        "reconciliation": reconcile(built, truth_state),
        "base": base.truth,
    }
    return Perimeter(extractions, truth)


def _base_record(used: set, op: str, *deltas: tuple[naming.ArchiveName, dict]):
    """Take out of the first Delta that has one a pupil record of the generator's Delta with
    operation ``op`` (never one of the series' own changes); (its archive, the record)."""
    for name, records in deltas:
        for r in records["Eleve"]:
            if r.op == op and ("Eleve", r.id) in used:
                records["Eleve"].remove(r)
                return name, r
    raise ValueError(f"aucun élève '{op}' dans le Delta du générateur: périmètre trop petit")


def _lie(
    lie: str, archive: naming.ArchiveName, kind: str, jointure: str, attribute: str | None, op: str
) -> dict:
    return {
        "lie": lie,
        "description": LIES[lie],
        "archive": archive.filename,
        "kind": kind,
        "frame": schema.KINDS[kind].frame,
        "jointure": jointure,
        "attribute": attribute,
        "operation": op,
    }


def write(
    out: Path,
    *,
    lies: Sequence[str] = tuple(LIES),
    part_size: int = 8_000_000,
    unpack: bool = False,
    **generate_kwargs: Any,
) -> SynthResult:
    """Generate a perimeter (``generate_kwargs`` go to the generator), build its series and
    write it: four archives in date order and ``truth.json``."""
    seed = int(generate_kwargs.get("seed", 0))
    series = build(generate(**generate_kwargs), seed=seed, lies=lies)
    return write_perimeter(series, Path(out), part_size=part_size, unpack=unpack)
