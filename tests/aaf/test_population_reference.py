"""``population.memberships`` (computed on integer codes) against a straightforward
reference written with pandas on the ids' strings, on a generated département with defects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_population import snapshot as hand_made

import ent_audit
from ent_audit.aaf import population, schema
from ent_audit.aaf.frames import STRING
from ent_audit.aaf.population import VIA, Profile, live
from ent_audit.store import Store
from ent_audit.synth import DEFECTS, write


def _pairs(df: pd.DataFrame, person: str, via: str) -> pd.DataFrame:
    out = df[[person, "structure"]].dropna().rename(columns={person: "jointure"})
    return out.astype(object).assign(via=via)


def _ranked(rows: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """Live people's rows, first by VIA then file order, one per (person, structure), each
    person's first primary; the people in none appended with no structure."""
    rows = rows[rows["jointure"].isin(set(ids))]
    rows = rows.assign(_rank=rows["via"].map(VIA.index)).sort_values("_rank", kind="stable")
    rows = rows.drop(columns="_rank").drop_duplicates(["jointure", "structure"])
    rows = rows.assign(primary=~rows["jointure"].duplicated())
    return _with_unplaced(rows, ids)


def _with_unplaced(rows: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    ids = ids.drop_duplicates()
    alone = ids[~ids.isin(set(rows["jointure"]))]
    none = pd.DataFrame({"jointure": alone, "structure": None, "via": None, "primary": True})
    return pd.concat([rows, none.astype(object)], ignore_index=True)


def reference(snap, categorical: bool) -> pd.DataFrame:
    """The definition in the module's docstring, on strings, one pandas step at a time."""
    links = snap.links
    ps = links["person_structure"]
    pupils = live(snap.students)["jointure"].astype(object)
    guardians = live(snap.guardians)["jointure"].astype(object)
    staff = live(snap.staff)
    pupil_rows = _ranked(
        pd.concat(
            [
                _pairs(ps[ps["kind"] == "student"], "person", "attachment"),
                _pairs(links["student_class"], "student", "class"),
            ]
        ),
        pupils,
    ).assign(kind=schema.STUDENT.name, profile=str(Profile.PUPIL), teacher=False)

    staff_rows = _ranked(
        pd.concat(
            [
                _pairs(ps[ps["kind"] == "staff"], "person", "attachment"),
                _pairs(links["staff_director"], "staff", "director"),
                _pairs(links["staff_function"], "staff", "function"),
            ]
        ),
        staff["jointure"].astype(object),
    )
    directs = set(
        map(tuple, links["staff_director"][["staff", "structure"]].dropna().astype(object).values)
    )
    director = [
        (j, s) in directs
        for j, s in zip(staff_rows["jointure"], staff_rows["structure"], strict=True)
    ]
    flags = staff.drop_duplicates("jointure").set_index("jointure")["is_teacher"].fillna(False)
    teacher = staff_rows["jointure"].map(flags.astype(bool)).fillna(False).astype(bool)
    staff_rows = staff_rows.assign(
        kind=schema.STAFF.name,
        teacher=teacher.to_numpy(),
        profile=np.where(
            director,
            str(Profile.DIRECTOR),
            np.where(teacher, str(Profile.TEACHER), str(Profile.OTHER_STAFF)),
        ),
    )

    sg = links["student_guardian"][["student", "guardian"]].dropna().astype(object)
    sg = sg.drop_duplicates()
    sg = sg[sg["guardian"].isin(set(guardians))]
    placed = pupil_rows.dropna(subset=["structure"])[["jointure", "structure", "primary"]]
    g = sg.merge(placed.rename(columns={"jointure": "student"}), on="student")
    first_pupil = g.groupby("guardian", sort=False)["student"].transform("first")
    g = g.assign(primary=g["primary"] & (g["student"] == first_pupil))
    g = g.sort_values("primary", ascending=False, kind="stable")
    g = g.rename(columns={"guardian": "jointure"}).drop_duplicates(["jointure", "structure"])
    g = g[["jointure", "structure", "primary"]].assign(via="pupil")
    guardian_rows = _with_unplaced(g, guardians).assign(
        kind=schema.GUARDIAN.name, profile=str(Profile.GUARDIAN), teacher=False
    )

    out = pd.concat([pupil_rows, guardian_rows, staff_rows], ignore_index=True)
    structures = live(snap.structures).drop_duplicates("jointure").set_index("jointure")
    schools = set(structures.index[population.is_school(structures.reset_index()).to_numpy()])
    for c in ("uai", "circonscription", "commune"):
        out[c] = out["structure"].map(structures[c].astype(object))
    out["is_school"] = out["structure"].isin(schools)
    out = out[list(population.COLUMNS)].reset_index(drop=True)
    out = out.astype({"teacher": bool, "primary": bool, "is_school": bool})
    for c in ("jointure", *population.REPEATED):
        out[c] = out[c].astype(STRING)
        if categorical and c != "jointure":
            if c == "via":
                out[c] = out[c].astype(population.VIA_DTYPE).cat.remove_unused_categories()
            else:
                names = pd.Index(sorted(out[c].dropna().unique()), dtype=STRING)
                out[c] = out[c].astype(pd.CategoricalDtype(names))
    return out


def _compare(snap) -> None:
    for categorical in (False, True):
        got = population.memberships(snap, categorical=categorical)
        want = reference(snap, categorical)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        if categorical:  # same categories, same order (values compared above)
            for c in population.REPEATED:
                assert list(got[c].cat.categories) == list(want[c].cat.categories), c


def test_memberships_match_the_reference_on_a_hand_made_state(tmp_path):
    _compare(hand_made(tmp_path))


@pytest.mark.slow
def test_memberships_match_the_reference_on_a_generated_departement(tmp_path):
    synth = write(
        tmp_path / "synth", seed=3, schools=10, pupils=700, defects=dict.fromkeys(DEFECTS, 0.03)
    )
    store = Store(tmp_path / "store")
    store.ingest(synth.archives[:2])
    _compare(store.latest())
    delta = ent_audit.load(synth.archives[1], workers=1)  # its deletions are left out
    assert (delta.students["op"] == "delete").any()
    _compare(delta)
    # The same over the columns a store reader loads (dictionary-typed, as the audit reads).
    with store.reading() as reader:
        _compare(reader.snapshot(population.NEEDS))
