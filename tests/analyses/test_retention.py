"""Retention rules: each fires exactly on the day after its deadline, never the day before.

Histories are generated with the store's own presence update (one extraction after another),
the provider's files with the generator's retention module, and scored against its truth.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from ent_audit.analyses import retention as r
from ent_audit.exceptions import InputFileError, RetentionError
from ent_audit.store import presence as presence_module
from ent_audit.store import pseudonym

KEY = b"k" * 32
D = dt.date


def now(*people: tuple[str, str, str]) -> pd.DataFrame:
    """Who an extraction holds: (jointure, kind, uai) -> presence rows with pseudonyms."""
    df = pd.DataFrame(people, columns=["jointure", "kind", "uai"])
    df["pseudonym"] = [pseudonym.pseudonym(KEY, k, j) for j, k, _ in people]
    df["level"] = None
    out = df[["pseudonym", "kind", "uai", "level"]]
    return out.astype(pd.StringDtype("pyarrow"))


def history(*extractions: tuple[dt.date, list[tuple[str, str, str]]]) -> pd.DataFrame:
    h = None
    for day, people in extractions:
        h = presence_module.update(h, now(*people), day)
    return h


def ps(kind: str, jointure: str) -> str:
    return pseudonym.pseudonym(KEY, kind, jointure)


def status_of(result: r.RetentionResult, rule: str, place: str = "workbench") -> list[str]:
    items = result.items[(result.items["rule"] == rule) & (result.items["place"] == place)]
    return list(items["status"])


# -- the calendar --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (D(2026, 11, 30), 3, D(2027, 2, 28)),
        (D(2027, 11, 30), 3, D(2028, 2, 29)),  # leap year
        (D(2027, 1, 31), 3, D(2027, 4, 30)),
        (D(2028, 1, 31), 1, D(2028, 2, 29)),
        (D(2026, 10, 15), 3, D(2027, 1, 15)),
        (D(2027, 7, 4), -2, D(2027, 5, 4)),
    ],
)
def test_months_are_calendar_months_clamped_to_the_months_end(day, months, expected):
    assert r.add_months(day, months) == expected


# -- pupils, guardians, staff who left ---------------------------------------------------------

PUPIL, GUARDIAN, STAFF = "Eleve", "PersRelEleve", "PersEducNat"


@pytest.fixture
def left_in_october():
    """A pupil and their guardian leave on 5 October 2026; a teacher leaves on 12 October;
    another pupil moves to a second school of the commune (still enrolled)."""
    return history(
        (
            D(2026, 9, 14),
            [
                ("1", PUPIL, "A"),
                ("2", GUARDIAN, "A"),
                ("3", STAFF, "A"),
                ("4", PUPIL, "A"),
            ],
        ),
        (D(2026, 10, 5), [("3", STAFF, "A"), ("4", PUPIL, "B")]),
        (D(2026, 10, 12), [("4", PUPIL, "B")]),
    )


def test_a_pupil_who_left_is_overdue_on_1_january_not_on_31_december(left_in_october):
    before = r.evaluate(D(2026, 12, 31), presence=left_in_october)
    after = r.evaluate(D(2027, 1, 1), presence=left_in_october)
    assert status_of(before, "pupil_left") == ["upcoming"]
    assert status_of(after, "pupil_left") == ["overdue"]
    item = after.items[after.items["rule"] == "pupil_left"].iloc[0]
    assert item["pseudonym"] == ps(PUPIL, "1") and item["uai"] == "A"
    assert (item["event_date"], item["deadline"]) == (
        pd.Timestamp(2026, 10, 5),
        pd.Timestamp(2026, 12, 31),
    )
    assert item["days_overdue"] == 1
    assert before.items.loc[before.items["rule"] == "pupil_left", "days_overdue"].item() == 0


def test_a_pupil_who_moved_to_another_school_of_the_commune_has_not_left(left_in_october):
    result = r.evaluate(D(2027, 6, 1), presence=left_in_october)
    assert ps(PUPIL, "4") not in set(result.items["pseudonym"].dropna())


def test_a_guardian_follows_their_pupils(left_in_october):
    assert status_of(r.evaluate(D(2026, 12, 31), presence=left_in_october), "guardian_orphaned")
    assert status_of(
        r.evaluate(D(2026, 12, 31), presence=left_in_october), "guardian_orphaned"
    ) == ["upcoming"]
    assert status_of(r.evaluate(D(2027, 1, 1), presence=left_in_october), "guardian_orphaned") == [
        "overdue"
    ]


def test_staff_are_overdue_the_day_after_their_departure_plus_grace(left_in_october):
    # The teacher is last seen on 5 October and gone from the 12 October extraction.
    assert status_of(r.evaluate(D(2026, 10, 12), presence=left_in_october), "staff_left") == [
        "upcoming"
    ]
    assert status_of(r.evaluate(D(2026, 10, 13), presence=left_in_october), "staff_left") == [
        "overdue"
    ]
    grace = r.Settings(staff_grace_days=10)
    assert status_of(
        r.evaluate(D(2026, 10, 22), presence=left_in_october, settings=grace), "staff_left"
    ) == ["upcoming"]
    assert status_of(
        r.evaluate(D(2026, 10, 23), presence=left_in_october, settings=grace), "staff_left"
    ) == ["overdue"]


def test_a_pupil_who_left_in_december_is_due_that_31_december_and_one_who_left_in_january_a_year_later():
    h = history(
        (D(2026, 12, 1), [("1", PUPIL, "A"), ("2", PUPIL, "A")]),
        (D(2026, 12, 31), [("2", PUPIL, "A")]),
        (D(2027, 1, 1), []),
    )
    result = r.evaluate(D(2027, 1, 1), presence=h)
    items = result.items.set_index("pseudonym")
    assert items.loc[ps(PUPIL, "1"), "status"] == "overdue"
    assert items.loc[ps(PUPIL, "2"), "deadline"] == pd.Timestamp(2027, 12, 31)
    assert items.loc[ps(PUPIL, "2"), "status"] == "later"
    leap = history((D(2028, 2, 1), [("1", PUPIL, "A")]), (D(2028, 2, 29), []))
    assert r.evaluate(D(2028, 12, 31), presence=leap).items["status"].tolist() == ["upcoming"]
    assert r.evaluate(D(2029, 1, 1), presence=leap).items["status"].tolist() == ["overdue"]


# -- destruction requests ----------------------------------------------------------------------


def requests_csv(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    p = tmp_path / "demandes.csv"
    p.write_text(
        "jointure;date_demande;date_realisation\n" + "".join(f"{a};{b};{c}\n" for a, b, c in rows),
        encoding="utf-8",
    )
    return p


@pytest.mark.parametrize(
    ("asked", "last_day"),
    [
        ("2026-11-30", D(2027, 2, 28)),
        ("30/11/2027", D(2028, 2, 29)),  # French date, leap year
        ("2027-01-31", D(2027, 4, 30)),
    ],
)
def test_a_pending_request_is_overdue_the_day_after_three_calendar_months(
    tmp_path, asked, last_day
):
    req = r.read_requests(requests_csv(tmp_path, [("9", asked, "")]))
    on = r.evaluate(last_day, requests=req, key=KEY)
    after = r.evaluate(last_day + dt.timedelta(days=1), requests=req, key=KEY)
    assert status_of(on, "destruction_request", "provider") == ["upcoming"]
    assert status_of(after, "destruction_request", "provider") == ["overdue"]
    assert after.items.loc[0, "pseudonym"] == ps(PUPIL, "9")


def test_a_request_done_in_time_is_not_overdue_unless_the_account_is_still_exported(tmp_path):
    req = r.read_requests(requests_csv(tmp_path, [("9", "2026-11-30", "2027-01-10")]))
    late = D(2027, 3, 15)
    assert status_of(
        r.evaluate(late, requests=req, key=KEY), "destruction_request", "provider"
    ) == ["done"]
    # Done after as_of: still pending on that day.
    assert status_of(
        r.evaluate(D(2027, 1, 9), requests=req, key=KEY), "destruction_request", "provider"
    ) == ["later"]
    accounts = tmp_path / "comptes.csv"
    accounts.write_text("jointure;profil\n9;Élève\n", encoding="utf-8")
    acc = r.read_accounts(accounts)
    result = r.evaluate(late, requests=req, accounts=acc, key=KEY)
    assert status_of(result, "destruction_request", "provider") == ["overdue"]


def test_a_requested_pupil_still_in_the_store_is_a_workbench_item(tmp_path):
    h = history((D(2026, 9, 14), [("9", PUPIL, "A")]))
    req = r.read_requests(requests_csv(tmp_path, [("9", "2026-11-30", "")]))
    result = r.evaluate(D(2027, 3, 1), presence=h, requests=req, key=KEY)
    assert status_of(result, "destruction_request") == ["overdue"]
    assert list(result.requested["jointure"]) == ["9"]
    assert r.evaluate(D(2027, 2, 28), presence=h, requests=req, key=KEY).requested.empty


# -- convention -------------------------------------------------------------------------------


def test_everything_is_overdue_16_days_after_termination():
    c = r.Convention.of("2026-09-01", terminated="2027-03-10")
    assert status_of(r.evaluate(D(2027, 3, 25), convention=c), "convention_end") == ["upcoming"]
    assert status_of(r.evaluate(D(2027, 3, 26), convention=c), "convention_end") == ["overdue"]


def test_the_convention_runs_12_months_renewed_three_times():
    c = r.Convention.of("2026-09-01")
    assert c.terms()[0] == (D(2026, 9, 1), D(2027, 8, 31))
    assert c.planned_end == D(2030, 8, 31)
    cal = c.calendar()
    assert cal["date"].iloc[-1] == D(2030, 9, 15)
    notices = cal[cal["event"].str.startswith("préavis")]["date"].tolist()
    assert notices == [D(2027, 5, 4), D(2028, 5, 4), D(2029, 5, 4)]
    ended = r.Convention.of("2026-09-01", end="2027-08-31")
    assert status_of(r.evaluate(D(2027, 9, 15), convention=ended), "convention_end") == ["upcoming"]
    assert status_of(r.evaluate(D(2027, 9, 16), convention=ended), "convention_end") == ["overdue"]


def test_a_bad_date_parameter_names_it():
    with pytest.raises(RetentionError, match=r"'convention_signed'.*AAAA-MM-JJ"):
        r.Convention.of("01/09/2026")


# -- the provider's files ------------------------------------------------------------------------


def test_the_account_export_columns_are_mappable_and_errors_name_the_line(tmp_path):
    p = tmp_path / "export.csv"
    p.write_text(
        "Identifiant,Type,Etab,Activé,Activation,Dernière connexion\n"
        "1,ELEVE,0310001A,oui,01/09/2026,2026-10-01 08:00\n"
        "2,Enseignant,0310001A,non,,\n",
        encoding="utf-8-sig",
    )
    columns = {
        "jointure": "Identifiant",
        "profile": "Type",
        "uai": "Etab",
        "activated": "Activé",
        "activation_date": "Activation",
        "last_login": "Dernière connexion",
    }
    acc = r.read_accounts(p, columns)
    assert list(acc["kind"]) == [PUPIL, STAFF]
    assert list(acc["activated"]) == [True, False]
    assert acc.loc[0, "last_login"] == pd.Timestamp(2026, 10, 1, 8, 0)
    p.write_text("Identifiant,Type\n1,ELEVE\n2,Martien\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"export.csv:3 \(colonne Type\): profil inconnu"):
        r.read_accounts(p, columns)
    with pytest.raises(InputFileError, match=r"export.csv:1: colonne 'Profil' \(profile\) absente"):
        r.read_accounts(p)


def test_generated_forgotten_accounts_and_requests_are_found_exactly(tmp_path):
    """The generator's account export holds accounts of people who left; every one of them
    (and nothing else) is overdue at the provider on 1 January, none on 31 December except
    the staff no extraction ever had."""
    from ent_audit.store import Store
    from ent_audit.synth import write
    from ent_audit.synth.retention import write_inputs

    synth = write(tmp_path / "synth", seed=11, schools=4, pupils=200)
    store = Store(tmp_path / "store")
    store.ingest(synth.archives[:2])
    inputs = write_inputs(synth.perimeter, tmp_path / "synth", seed=11)
    truth = json.loads(inputs.truth.read_text())
    acc = r.read_accounts(inputs.accounts)
    req = r.read_requests(inputs.requests)
    key = store.key
    forgotten = {
        (pseudonym.pseudonym(key, f["kind"], f["jointure"]), f["rule"])
        for f in truth["forgotten_accounts"]
    }
    assert any(f["rule"] == "pupil_left" for f in truth["forgotten_accounts"])
    for as_of, expect in ((D(2026, 12, 31), "staff_left"), (D(2027, 1, 1), None)):
        result, _ = r.workbench(store, as_of, accounts=acc, requests=req)
        got = result.overdue[
            (result.overdue["place"] == "provider")
            & (result.overdue["rule"] != "destruction_request")
        ]
        found = set(zip(got["pseudonym"], got["rule"], strict=True))
        wanted = {f for f in forgotten if expect is None or f[1] == expect}
        assert found == wanted
    result, _ = r.workbench(store, D(2027, 5, 1), requests=req)
    pending = {
        pseudonym.pseudonym(key, PUPIL, q["jointure"])
        for q in truth["requests"]
        if q["deadline"] < "2027-05-01" and not (q["done_date"] and q["done_date"] <= "2027-05-01")
    }
    got = result.overdue[
        (result.overdue["rule"] == "destruction_request") & (result.overdue["place"] == "provider")
    ]
    assert set(got["pseudonym"]) == pending and pending
    assert result.figures()["overdue"]["destruction_request"] >= len(pending)


def test_checks_are_skipped_without_their_input_and_fail_on_any_overdue_item(left_in_october):
    result = r.evaluate(D(2027, 1, 1), presence=left_in_october)
    checks = {c.id: c for c in result.checks()}
    assert set(checks) == {str(x.id) for x in r.RULES}
    assert checks["pupil_left"].failed and checks["pupil_left"].blocking
    assert checks["destruction_request"].status == "skipped"
    assert checks["convention_end"].status == "skipped"
    figures = result.figures()
    assert figures["as_of"] == "2027-01-01"
    assert (
        set(figures["overdue"])
        == set(figures["upcoming"])
        == {
            "pupil_left",
            "destruction_request",
            "staff_left",
            "guardian_orphaned",
            "old_copies",
            "convention_end",
        }
    )
    assert figures["overdue"]["pupil_left"] == 1 and figures["overdue"]["staff_left"] == 1
    json.dumps(result.to_dict())


def test_one_reader_one_format_for_the_account_export(tmp_path):
    """The generators' one writer writes what the one reader reads by default; the retention
    checks read it strictly, the pilot console lists the rows it leaves out."""
    from ent_audit.analyses.activity import inputs
    from ent_audit.synth import accounts as written

    assert written.ACCOUNT_COLUMNS == tuple(inputs.ACCOUNT_COLUMNS.values())
    assert r.ACCOUNT_COLUMNS is inputs.ACCOUNT_COLUMNS
    frame = pd.DataFrame(
        {
            "jointure": ["1", "2"],
            "profile": ["pupil", "director"],
            "uai": ["0310001A", ""],
            "activated": [True, False],
            "activation": pd.to_datetime(["2026-09-03", None]),
            "last_login": pd.to_datetime(["2026-10-01 08:15", None]),
        }
    )
    p = written.write_accounts(frame, tmp_path / "comptes.csv")
    strict = r.read_accounts(p)
    lenient, report = inputs.read_accounts(p)
    pd.testing.assert_frame_equal(strict, lenient)
    assert list(strict["user"]) == ["1", "2"] and list(strict["kind"]) == [PUPIL, STAFF]
    assert list(strict["profile"]) == ["pupil", "director"]
    assert strict["uai"].isna().tolist() == [False, True]
    assert strict.loc[0, "last_login"] == pd.Timestamp(2026, 10, 1, 8, 15)
    assert (report.rows, report.malformed_count) == (2, 0)

    bad = tmp_path / "mauvais.csv"
    bad.write_text(
        "Identifiant;Profil;UAI;Activé\n1;Élève;0310001A;Oui\n2;Élève;0310001A;peut-être\n"
        "3;Martien;0310001A;Non\n",
        encoding="utf-8",
    )
    kept, report = inputs.read_accounts(bad)
    assert list(kept["user"]) == ["1"]
    assert [(m.line, str(m.reason)) for m in report.malformed] == [(3, "value"), (4, "profile")]
    with pytest.raises(InputFileError, match=r"mauvais.csv:3 \(colonne Activé\): valeur illisible"):
        r.read_accounts(bad)
