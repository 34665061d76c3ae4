"""Retention in bounded memory: the lean evaluation gives what the whole-history definition
gives (every person of the history, every account matched against them), on generated stores
and on random histories."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ent_audit.aaf import frames
from ent_audit.analyses import retention as r
from ent_audit.analyses.activity.indicators import pseudonymise_accounts
from ent_audit.analyses.retention import evaluation
from ent_audit.store import presence as presence_module
from ent_audit.store import pseudonym

KEY = b"k" * 32
STRING = pd.StringDtype("pyarrow")
PUPIL, GUARDIAN, STAFF = "Eleve", "PersRelEleve", "PersEducNat"
KINDS = (PUPIL, GUARDIAN, STAFF)
D = dt.date


def whole_history_items(presence, accounts, as_of, first_date):
    """The definition the lean evaluation must keep: one row per person of the whole history
    (:func:`persons`), every account merged with them (the evaluation before issue 16)."""
    people = r.persons(presence)
    left = people[~people["present"]]
    rows = []
    for kind, rule in r.PERSON_RULE.items():
        sel = left[left["kind"] == kind]
        rows += [(str(rule), "workbench", p, k, u, d) for p, k, u, d in
                 zip(sel["pseudonym"], sel["kind"], sel["uai"], sel["departed"], strict=True)]  # fmt: skip
    acc = pseudonymise_accounts(accounts, KEY).assign(kind=accounts["kind"])
    acc = acc.rename(columns={"user": "pseudonym"}).astype({"pseudonym": STRING})
    acc = acc[["pseudonym", "kind", "uai"]].drop_duplicates(["pseudonym", "kind"])
    seen = acc.merge(people, on=["pseudonym", "kind"], how="left", suffixes=("_account", ""))
    gone = seen[seen["present"].astype("boolean").fillna(False).eq(False)]
    event = gone["departed"].where(gone["departed"].notna(), pd.Timestamp(first_date))
    uai = gone["uai"].fillna(gone["uai_account"])
    for p, k, u, d in zip(gone["pseudonym"], gone["kind"], uai, event, strict=True):
        rows.append((str(r.PERSON_RULE[k]), "provider", p, k, u, d))
    return sorted(rows, key=repr)


def lean_items(result):
    it = result.items[result.items["rule"] != "convention_end"]
    return sorted(
        zip(it["rule"], it["place"], it["pseudonym"], it["kind"], it["uai"], it["event_date"],
            strict=True),
        key=repr,
    )  # fmt: skip


def accounts_frame(rows):
    df = pd.DataFrame(rows, columns=["user", "kind", "uai"]).astype(STRING)
    return df.assign(profile=pd.array(["x"] * len(df), dtype=STRING))


people_ids = st.sampled_from([str(i) for i in range(12)])


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    extractions=st.lists(
        st.lists(st.tuples(people_ids, st.sampled_from(KINDS), st.sampled_from("AB")),
                 max_size=10),
        min_size=1, max_size=4,
    ),
    accounts=st.lists(
        st.tuples(people_ids, st.sampled_from(KINDS), st.sampled_from(("A", None))),
        max_size=12,
    ),
)  # fmt: skip
def test_the_lean_evaluation_finds_what_the_whole_history_finds(extractions, accounts):
    """People who leave, come back, move; accounts of people present, gone, never seen,
    twice, without a school."""
    h = None
    for i, people in enumerate(extractions):
        now = pd.DataFrame(
            {
                "pseudonym": [pseudonym.pseudonym(KEY, k, j) for j, k, _ in people],
                "kind": [k for _, k, _ in people],
                "uai": [u for _, _, u in people],
                "level": [None] * len(people),
            }
        ).astype(STRING)
        now = now.drop_duplicates(["pseudonym", "kind"])
        h = presence_module.update(h, now, D(2026, 9, 14) + dt.timedelta(days=30 * i))
    acc = accounts_frame(accounts)
    as_of, first = D(2028, 1, 1), D(2026, 9, 14)
    result = r.evaluate(as_of, presence=h, key=KEY, accounts=acc, first_date=first)
    assert lean_items(result) == whole_history_items(h, acc, as_of, first)
    # The same through loaders, and with the history's kind and uai as categoricals.
    cats = h.astype({"kind": "category", "uai": "category"})
    lazy = r.evaluate(as_of, presence=lambda: cats, key=KEY, accounts=lambda: acc, first_date=first)
    pd.testing.assert_frame_equal(lazy.items, result.items)


@pytest.mark.parametrize("chunk", [2, 1 << 16])
def test_the_export_is_pseudonymised_as_the_pilot_console_does(monkeypatch, chunk):
    monkeypatch.setattr(evaluation, "CHUNK", chunk)
    acc = accounts_frame(
        [("1", PUPIL, "A"), ("2", STAFF, None), ("1", PUPIL, "B"), ("3", None, "A"),
         ("4", None, "B"), (None, GUARDIAN, "A"), ("5", GUARDIAN, "A"), (None, GUARDIAN, "C"),
         ("1", GUARDIAN, "A"), ("6", PUPIL, "A")]
    )  # fmt: skip
    want = pseudonymise_accounts(acc, KEY).assign(kind=acc["kind"])
    want = want.rename(columns={"user": "pseudonym"}).astype({"pseudonym": STRING})
    want = want[["pseudonym", "kind", "uai"]].drop_duplicates(["pseudonym", "kind"])
    got = evaluation._pseudonymised(acc, KEY)
    assert isinstance(got["kind"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(got.astype({"kind": STRING, "uai": STRING}), want)


values = st.lists(st.sampled_from(["0a1", "0a2", "1b", "f", "", None, "0a1"]), max_size=20)


@settings(max_examples=80, deadline=None)
@given(values, values)
def test_matching_by_slices_is_matching(left, right):
    a, b = pd.Series(left, dtype=STRING), pd.Series(right, dtype=STRING)
    assert (evaluation._member(a, b) == frames.isin(a, b)).all()
    firsts = evaluation._first_of_each(frames.arrow_strings(a))
    assert firsts.tolist() == np.flatnonzero(~a.duplicated().to_numpy()).tolist()


def test_the_export_given_by_its_path_gives_the_same_result(tmp_path):
    from ent_audit.store import Store
    from ent_audit.synth import write
    from ent_audit.synth.retention import write_inputs

    synth = write(tmp_path / "synth", seed=11, schools=4, pupils=200)
    store = Store(tmp_path / "store")
    store.ingest(synth.archives[:2])
    inputs = write_inputs(synth.perimeter, tmp_path / "synth", seed=11)
    req = r.read_requests(inputs.requests)
    day = D(2027, 1, 1)
    framed, plan = r.workbench(store, day, accounts=r.read_accounts(inputs.accounts), requests=req)
    by_path, same_plan = r.workbench(store, day, accounts=inputs.accounts, requests=req)
    pd.testing.assert_frame_equal(by_path.items, framed.items)
    pd.testing.assert_frame_equal(by_path.requested, framed.requested)
    assert by_path.figures() == framed.figures() and same_plan == plan
    assert (framed.items["place"] == "provider").any()
