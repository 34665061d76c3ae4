"""What changes between the Complet, the Delta and the later Complet.

Some weeks after the first Complet, families leave and arrive, pupils change class, guardians
join a family or change their contact details: each change on distinct records. The Delta
carries exactly those changes; the later Complet is the state after them, nothing else changed.
The delta's ground truth (``truth.json``'s ``delta``) lists them all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from ent_audit.synth.draws import Random
from ent_audit.synth.model import Family, Model
from ent_audit.synth.names import draw_address, draw_phone, draw_surname, phone_text
from ent_audit.synth.people import People
from ent_audit.synth.records import EL, KINDS, PR, Record

DELTA_AFTER = dt.timedelta(days=21)
"""The delta is extracted this long after the first complete extraction."""
SECOND_COMPLETE_AFTER = dt.timedelta(days=28)
"""The second complete extraction: the state after the delta, nothing else changed."""


@dataclass
class Delta:
    """The Delta, the complete state after it, and its truth."""

    records: dict[str, list[Record]]
    """Delta records by kind (ops mixed, ordered by id)."""
    after: dict[str, list[Record]]
    """The complete state after the delta, by kind."""
    touched: set[tuple[str, str]]
    """(kind, jointure) of every record the delta adds, modifies or deletes."""
    truth: dict


def modified(rec: Record, **changes: list[str | None]) -> Record:
    """A modify record: ``rec``'s attributes with ``changes`` replaced (``rec`` unchanged)."""
    attrs = dict(rec.attrs)
    attrs.update(changes)
    return Record("modify", rec.id, attrs)


def build_delta(model: Model, people: People, seed: int, date: dt.date) -> Delta:
    """Departures, class changes, guardian changes and arrivals, each on distinct records."""
    rng = Random(np.random.default_rng([seed, 1]))
    people.rng = rng  # the person records of the delta are drawn from the delta stream
    pupils = model.records["Eleve"]
    guardians = {r.id: r for r in model.records["PersRelEleve"]}
    n = len(pupils)
    adds: dict[str, list[Record]] = {"Eleve": [], "PersRelEleve": []}
    mods: dict[str, dict[str, Record]] = {"Eleve": {}, "PersRelEleve": {}}
    dels: dict[str, list[str]] = {"Eleve": [], "PersRelEleve": []}
    truth: dict[str, Any] = {
        "arrivals": [],
        "departures": [],
        "class_changes": [],
        "guardian_changes": [],
    }
    natural = [f for f in model.families if not f.legal]
    order = rng.np.permutation(len(natural)).tolist()
    cursor = 0

    # Departures: whole families leave; their guardians go with them.
    target = max(1, round(0.008 * n))
    left = 0
    while left < target and cursor < len(order):
        fam = natural[order[cursor]]
        cursor += 1
        for p in fam.children:
            dels["Eleve"].append(pupils[p].id)
            truth["departures"].append(
                {
                    "jointure": pupils[p].id,
                    "_school": model.schools[model.pupil_school[p]].jointure,
                    "guardians_deleted": [g for g, _ in fam.guardians],
                }
            )
        dels["PersRelEleve"] += [g for g, _ in fam.guardians]
        left += len(fam.children)

    # Guardian changes: a new guardian joins a one-guardian family; contact details change.
    target = max(1, round(0.003 * n))
    new_guardians = contacts = 0
    while (new_guardians < (target + 1) // 2 or contacts < target // 2 + 1) and cursor < len(order):
        fam = natural[order[cursor]]
        cursor += 1
        kids = [pupils[p].id for p in fam.children]
        school = model.schools[model.pupil_school[fam.children[0]]]
        if len(fam.guardians) == 1 and new_guardians < (target + 1) // 2:
            code = rng.pick(("20", "50", "90", "38"))
            gid = people.ids.one()
            adds["PersRelEleve"].append(
                people.guardian(
                    gid,
                    "M" if code == "20" else "X",
                    code,
                    draw_surname(rng),
                    False,
                    school.postal_code,
                    model.communes[school.commune].upper(),
                    kids,
                )
            )
            for p in fam.children:
                rec = pupils[p]
                mods["Eleve"][rec.id] = modified(
                    rec, **{EL.guardians: [*rec.attrs[EL.guardians], f"{gid}${code}"]}
                )
            truth["guardian_changes"].append(
                {
                    "change": "new_guardian",
                    "guardian": gid,
                    "link_code": code,
                    "students": kids,
                    "_school": school.jointure,
                }
            )
            new_guardians += 1
        elif contacts < target // 2 + 1:
            gid = fam.guardians[0][0]
            rec = guardians[gid]
            style = rng.below(4)
            changes = {
                PR.mobile_phone: [phone_text(draw_phone(rng, "06"), style)],
                PR.address: [draw_address(rng)],
            }
            mods["PersRelEleve"][gid] = modified(rec, **changes)
            truth["guardian_changes"].append(
                {
                    "change": "contact",
                    "guardian": gid,
                    "attributes": sorted(changes),
                    "students": kids,
                    "_school": school.jointure,
                }
            )
            contacts += 1
    touched_families = set(order[:cursor])  # no pupil is changed twice

    # Class changes: a pupil moves to another class of the same school holding its level.
    target = max(1, round(0.004 * n))
    family_of: dict[int, int] = {}
    for k, fam in enumerate(natural):
        for p in fam.children:
            family_of[p] = k
    moved = 0
    for p in rng.np.permutation(n).tolist():
        if moved >= target:
            break
        if p not in family_of or family_of[p] in touched_families:
            continue
        current = model.pupil_class[p]
        school = model.schools[model.pupil_school[p]]
        options = [
            c for c in school.classes if c is not current and model.pupil_level[p] in c.levels
        ]
        if not options:
            continue
        to = rng.pick(options)
        rec = pupils[p]
        mods["Eleve"][rec.id] = modified(rec, **{EL.classes: [to.value]})
        moved += 1
        truth["class_changes"].append(
            {
                "jointure": rec.id,
                "_school": school.jointure,
                "from": current.class_id,
                "to": to.class_id,
            }
        )

    # Arrivals: new families (1-2 children in one school) with new guardians.
    target = max(1, round(0.01 * n))
    sizes = np.bincount(model.pupil_school, minlength=len(model.schools)).astype(float)
    arrived = 0
    while arrived < target:
        school = model.schools[int(rng.np.choice(len(sizes), p=sizes / sizes.sum()))]
        k = min(target - arrived, 1 if rng.random() < 0.7 else 2)
        kids = people.ids.take(k)
        fam = Family([], [])
        surname = draw_surname(rng)
        adds["PersRelEleve"] += people.family_guardians(
            fam, surname, school.postal_code, model.communes[school.commune].upper(), kids
        )
        for j in kids:
            cls = rng.pick(school.classes)
            level = rng.pick(cls.levels)
            adds["Eleve"].append(
                people.pupil_record(
                    j, people.new_ines(1)[0], surname, school, cls, level, False, fam.guardians, []
                )
            )
            truth["arrivals"].append(
                {
                    "jointure": j,
                    "_school": school.jointure,
                    "class_id": cls.class_id,
                    "guardians": [g for g, _ in fam.guardians],
                }
            )
        arrived += k

    records: dict[str, list[Record]] = {k: [] for k in KINDS}
    after: dict[str, list[Record]] = {}
    touched: set[tuple[str, str]] = set()
    summary: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        a, m, d = adds.get(kind, []), mods.get(kind, {}), set(dels.get(kind, []))
        delta = a + list(m.values()) + [Record("delete", j, {}) for j in sorted(d)]
        records[kind] = sorted(delta, key=lambda r: r.id)
        after[kind] = [
            Record("add", m[r.id].id, m[r.id].attrs) if r.id in m else r
            for r in model.records[kind]
            if r.id not in d
        ] + a
        touched |= {(kind, r.id) for r in delta}
        summary[kind] = {"add": sorted(r.id for r in a), "modify": sorted(m), "delete": sorted(d)}
    truth["records"] = summary
    return Delta(records, after, touched, truth)
