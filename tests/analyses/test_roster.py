"""The roster explorer's functions against what the snapshot says, school by school.

The reference for a school's pupils is ``Snapshot.roster(uai)`` (written independently of the
population module); for staff and classes the link tables are read directly here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat

import pandas as pd
import pytest
from helpers import leaks, personal_values

from ent_audit import quality
from ent_audit.aaf.population import at_schools, memberships
from ent_audit.analyses import roster
from ent_audit.exceptions import ActivityInputError, ParameterError
from ent_audit.privacy import Pseudonymiser
from ent_audit.store import Store, access
from ent_audit.synth import DEFECTS, write


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small store (6 schools, 420 pupils, every defect at 2 %) and its audit."""
    tmp = tmp_path_factory.mktemp("roster")
    synth = write(
        tmp / "synth", seed=11, schools=6, pupils=420, defects=dict.fromkeys(DEFECTS, 0.02)
    )
    store = Store(tmp / "store")
    store.ingest(synth.archives[:1])
    snap = store.latest()
    result = quality.audit(snap)
    pseudo = Pseudonymiser.for_store(store.path)
    return dict(
        synth=synth,
        store=store,
        snap=snap,
        audit=result,
        pseudo=pseudo,
        masked=roster.prepare(snap, pseudo, audit=result),
        clear=roster.prepare(snap, pseudo, audit=result, show_personal_data=True),
    )


def test_readable_names_turn_dollar_separators_into_dashes():
    names = pd.Series(
        [
            "ECOLE ELEMENTAIRE LOUISE MICHEL$BESSIERES",
            "ECOLE PRIMAIRE $ Jean Jaurès $$",
            "$École maternelle",
            "École élémentaire La Juncasse",
            None,
        ]
    )
    assert roster.readable_name(names).tolist() == [
        "ECOLE ELEMENTAIRE LOUISE MICHEL – BESSIERES",
        "ECOLE PRIMAIRE – Jean Jaurès",
        "École maternelle",
        "École élémentaire La Juncasse",
        "",
    ]


def test_choices_are_the_schools_with_their_place_and_a_searchable_label(world):
    snap, options = world["snap"], world["masked"].options
    s = snap.structures
    schools = s[s["struct_type"] == "ECOLE"]
    assert sorted(options["uai"]) == sorted(schools["uai"])
    assert "$" not in "".join(options["name"])
    assert (options["label"] == options["uai"] + " – " + options["name"]).all()
    for circ in roster.circonscriptions(options):
        mine = schools[schools["circonscription"] == circ]
        assert roster.communes(options, circ) == sorted(mine["commune"].unique())
        found = roster.find(options, circ)
        assert sorted(found["uai"]) == sorted(mine["uai"])
    one = options.iloc[2]
    assert roster.find(options, search=one["uai"].lower())["uai"].tolist() == [one["uai"]]
    word = max(one["name"].split(), key=len)
    folded = word.upper().replace("É", "E").replace("È", "E")
    assert one["uai"] in set(roster.find(options, search=folded)["uai"])
    assert roster.find(options, search="zzz-aucune").empty


def test_pupils_unmasked_are_what_the_snapshot_roster_says(world):
    snap, r = world["snap"], world["clear"]
    for uai in r.options["uai"]:
        view = roster.school(r, uai)
        expected = snap.roster(uai).set_index("jointure").sort_index()
        got = view.pupils.set_index("pupil").sort_index()
        assert list(got.index) == list(expected.index), uai
        for col in ("level", "last_name", "first_name", "class_name", "guardians"):
            pd.testing.assert_series_equal(
                got[col].astype(object), expected[col].astype(object), check_names=False
            )
        assert (got["guardian_count"] == expected["guardian_count"]).all()


def test_pupils_are_masked_by_default(world):
    snap, r, pseudo = world["snap"], world["masked"], world["pseudo"]
    secrets = personal_values(world["synth"].perimeter)
    for uai in r.options["uai"]:
        view = roster.school(r, uai)
        expected = snap.roster(uai)
        assert sorted(view.pupils["pupil"]) == sorted(pseudo.ids("Eleve", expected["jointure"]))
        assert not {"last_name", "first_name", "birth_date", "ine", "mail"} & set(view.pupils)
        assert not {"last_name", "first_name", "mail"} & set(view.staff)
        text = "\n".join(df.to_csv(index=False) for df in (view.summary, *view.frames().values()))
        assert leaks(text, secrets) == set(), uai
        assert not set(snap.students["jointure"]) & set(view.pupils["pupil"])


def test_classes_count_the_school_pupils_per_class(world):
    snap, r = world["snap"], world["masked"]
    for uai in r.options["uai"]:
        view = roster.school(r, uai)
        school = snap.structures.loc[snap.structures["uai"] == uai, "jointure"]
        sc = snap.student_class[snap.student_class["structure"].isin(school)]
        members = set(snap.roster(uai)["jointure"])
        sc = sc[sc["student"].isin(members)]
        expected = sc.groupby("class_name")["student"].nunique().to_dict()
        real = view.classes[view.classes["class_name"] != roster.NO_CLASS]
        assert dict(zip(real["class_name"], real["pupils"], strict=True)) == expected
        without = view.classes.loc[view.classes["class_name"] == roster.NO_CLASS, "pupils"]
        assert without.sum() == len(members - set(sc["student"]))
        assert view.levels["pupils"].sum() == len(view.pupils)


def test_staff_are_the_school_staff_with_functions_and_director(world):
    snap, r = world["snap"], world["clear"]
    for uai in r.options["uai"]:
        view = roster.school(r, uai)
        school = set(snap.structures.loc[snap.structures["uai"] == uai, "jointure"])
        ps = snap.person_structure
        attached = set(ps.loc[(ps["kind"] == "staff") & ps["structure"].isin(school), "person"])
        functions = snap.staff_function[snap.staff_function["structure"].isin(school)]
        directors = snap.staff_director[snap.staff_director["structure"].isin(school)]
        expected = (attached | set(functions["staff"]) | set(directors["staff"])) & set(
            snap.staff["jointure"]
        )
        assert set(view.staff["staff"]) == expected, uai
        assert set(view.staff.loc[view.staff["director"], "staff"]) == set(directors["staff"])
        assert (view.staff.loc[view.staff["director"], "profile"] == "directeur").all()
        for _, row in view.staff.iterrows():
            labels = set(functions.loc[functions["staff"] == row["staff"], "label"].dropna())
            assert set(filter(None, (row["functions"] or "").split(", "))) == labels


def test_findings_are_the_audits_for_the_school_masked_unless_unmasked(world):
    r, result = world["masked"], world["audit"]
    secrets = personal_values(world["synth"].perimeter)
    published = quality.published_findings(result, world["pseudo"])
    total = 0
    for uai in r.options["uai"]:
        masked = roster.school(r, uai).findings
        clear = roster.school(world["clear"], uai).findings
        mine = result.findings[result.findings["uai"] == uai]
        assert len(masked) == len(clear) == len(mine)
        assert sorted(clear["person"].dropna()) == sorted(mine["jointure"].dropna())
        assert sorted(masked["person"].dropna()) == sorted(
            published.loc[published["uai"] == uai, "jointure"].dropna()
        )
        assert leaks(masked.to_csv(), secrets) == set()
        total += len(mine)
    assert total > 0  # the defects put findings on the schools


def test_summary_figures_match_the_tabs(world):
    r = world["masked"]
    uai = r.options["uai"].iloc[0]
    view = roster.school(r, uai)
    s = view.to_dict()["summary"]
    members = memberships(world["snap"])
    guardians = members[(members["uai"] == uai) & (members["profile"] == "guardian")]
    assert s["UAI"] == uai
    assert s["élèves"] == str(len(view.pupils))
    assert s["responsables"] == str(guardians["jointure"].nunique())
    assert s["enseignants"] == str(int(view.staff["teacher"].sum()))
    assert s["direction"] == ", ".join(view.staff.loc[view.staff["director"], "staff"])
    blocking = (view.findings["severity"] == "bloquant").sum()
    assert s["constats bloquants"] == str(blocking)
    assert s["ENT ouvert"].startswith("non renseigné")


def test_an_unknown_uai_is_a_clear_error(world):
    with pytest.raises(ParameterError, match="'0000000A' n'est pas une école"):
        roster.school(world["masked"], "0000000A")


def test_without_activity_the_tab_is_empty_with_a_note(world):
    view = roster.school(world["masked"], world["masked"].options["uai"].iloc[0])
    assert view.activity.empty and list(view.activity) == list(roster.ACTIVITY_COLUMNS)
    assert view.notes == (roster.NO_ACTIVITY_NOTE,)
    assert view.ent_open is None and view.sparkline == ""


def test_activity_is_the_schools_rows_with_a_weekly_sparkline_and_open_flag(world, tmp_path):
    uais = world["masked"].options["uai"].tolist()
    days = pd.date_range("2026-09-07", periods=21, freq="D")
    csv = tmp_path / "daily.csv"
    rows = [
        "Etablissement;UAI;Date;Profil;Connexions;Visiteurs uniques;Comptes chargés;Comptes activés"
    ]
    for i, d in enumerate(days):
        rows.append(f"X;{uais[0]};{d:%Y-%m-%d};Enseignant;{i};1;3;1")
        rows.append(f"X;{uais[0]};{d:%Y-%m-%d};Élève;{2 * i};2;50;10")
        rows.append(f"Y;{uais[1]};{d:%Y-%m-%d};Élève;0;0;50;0")
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    daily = roster.read_daily(csv)
    assert set(daily["profile"]) == {"teacher", "pupil"}
    r = roster.prepare(world["snap"], world["pseudo"], audit=world["audit"], activity=daily)
    used = roster.school(r, uais[0])
    assert len(used.activity) == 42 and used.notes == ()
    assert used.ent_open is True
    assert roster.weekly(used.activity)["connections"].tolist() == [63, 210, 357]
    assert used.sparkline == "▂▅█"
    idle = roster.school(r, uais[1])
    assert idle.ent_open is False  # no teacher account activated
    assert idle.sparkline == "▁▁▁"
    assert roster.school(r, uais[2]).activity.empty


def test_a_bad_activity_frame_names_the_missing_columns(tmp_path):
    with pytest.raises(ParameterError, match="colonnes absentes: date"):
        roster.activity_frame(
            pd.DataFrame({"uai": [], "profile": [], "connections": [], "unique_visitors": []})
        )
    csv = tmp_path / "bad.csv"
    csv.write_text("UAI;Profil\n0310036W;Élève\n", encoding="utf-8")
    with pytest.raises(ActivityInputError, match=r"bad\.csv: colonne 'Date' \(date\) absente"):
        roster.read_daily(csv)


def test_sparkline():
    assert roster.sparkline([]) == ""
    assert roster.sparkline([0, 0]) == "▁▁"
    assert roster.sparkline([1, 2, 4, 8]) == "▂▃▅█"


def test_labelled_frames_are_french_and_readable(world):
    view = roster.school(world["clear"], world["clear"].options["uai"].iloc[0])
    pupils = roster.labelled(view.pupils)
    assert list(pupils.columns[:5]) == ["élève", "nom", "prénom", "date de naissance", "INE"]
    assert pupils["date de naissance"].str.fullmatch(r"\d\d/\d\d/\d{4}").all()
    staff = roster.labelled(view.staff)
    assert set(staff["directeur"]) <= {"oui", "non"}


# -- the access journal -----------------------------------------------------------------------


def test_the_access_journal_appends_one_private_line_per_view(tmp_path):
    when = dt.datetime(2026, 10, 5, 9, 30, 12, tzinfo=dt.UTC)
    line = access.record(tmp_path, "0310036W", ["élèves : nom"], user="coord", when=when)
    assert line == {
        "date": "2026-10-05",
        "time": "09:30:12+00:00",
        "user": "coord",
        "uai": "0310036W",
        "shown": ["élèves : nom"],
    }
    access.record(tmp_path, "0311234L", ["personnels : nom"])
    path = tmp_path / access.JOURNAL
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["uai"] for x in lines] == ["0310036W", "0311234L"]
    assert json.loads(lines[1])["user"]  # the system user
    assert access.read(tmp_path)["uai"].tolist() == ["0310036W", "0311234L"]


def test_the_access_journal_is_purged_past_its_retention(tmp_path):
    for day in (1, 20):
        access.record(tmp_path, "0310036W", ["x"], when=dt.datetime(2025, 1, day, 8, 0))
    access.record(tmp_path, "0310036W", ["x"], when=dt.datetime(2026, 1, 10, 8, 0))
    as_of = dt.date(2026, 1, 10)
    assert len(access.overdue(tmp_path, as_of)) == 1
    assert access.purge(tmp_path, as_of) == 1
    assert access.read(tmp_path)["date"].tolist() == ["2025-01-20", "2026-01-10"]
    assert access.purge(tmp_path, as_of) == 0
    assert stat.S_IMODE(os.stat(tmp_path / access.JOURNAL).st_mode) == 0o600
    assert access.purge(tmp_path / "nowhere", as_of) == 0


def test_the_activity_tab_reads_the_stores_imported_events_as_the_pilot_console_does(tmp_path):
    """From the store's imported events, connections per school, day and profile are the
    provider's daily figures (both count login events, read by the same reader)."""
    from activity_helpers import build

    gen = build(tmp_path, schools=4, pupils=300, events=4000)
    from_events = roster.store_activity(gen["store"])
    daily = roster.read_daily(gen["files"].daily)
    keys = ["uai", "date", "profile"]
    both = daily[daily["connections"] > 0].merge(from_events, on=keys, suffixes=("", "_events"))
    assert len(both) == (daily["connections"] > 0).sum() > 0
    assert (both["connections"] == both["connections_events"]).all()


def test_a_store_without_imported_events_has_no_activity(tmp_path):
    from ent_audit.store import Store

    Store(tmp_path / "store")
    assert roster.store_activity(tmp_path / "store") is None


# -- held lean ---------------------------------------------------------------------------------


def _rows(df: pd.DataFrame) -> list[tuple]:
    return sorted(df.astype(object).where(df.notna(), None).itertuples(index=False, name=None),
                  key=repr)  # fmt: skip


def test_memberships_by_passes_are_the_whole_states_school_memberships(world):
    state = world["store"].latest_tables(roster.needs())
    expected = at_schools(memberships(world["snap"]))[list(roster.MEMBER_COLUMNS)]
    for per_pass in (1, 2, 1000):
        got = roster.school_members(state, per_pass=per_pass)
        assert list(got.columns) == list(roster.MEMBER_COLUMNS)
        assert isinstance(got["uai"].dtype, pd.CategoricalDtype)
        assert _rows(got) == _rows(expected), per_pass


@pytest.mark.parametrize("personal", [False, True])
def test_a_lean_roster_shows_every_school_as_the_whole_snapshot_does(world, personal):
    """Read lean from the store (audit given), made lean from the snapshot (audit given), and
    with the audit run here on memberships computed once: the same views."""
    store, snap, pseudo, result = world["store"], world["snap"], world["pseudo"], world["audit"]
    kw = dict(show_personal_data=personal)
    lean = roster.load(store, pseudo, audit=result, **kw)
    given = roster.prepare(snap, pseudo, audit=result, **kw)
    ran = roster.prepare(snap, pseudo, **kw)
    assert not {"last_name", "first_name", "mail"} & set(
        c for t in lean.state.tables.values() for c in t.column_names if not personal
    )
    for other in (given, ran):
        pd.testing.assert_frame_equal(lean.options, other.options)
        pd.testing.assert_frame_equal(lean.findings, other.findings)
        assert _rows(lean.members) == _rows(other.members)
    for uai in lean.options["uai"]:
        views = [roster.school(r, uai) for r in (lean, given, ran)]
        assert views[0].to_dict() == views[1].to_dict() == views[2].to_dict(), uai
        for tab, frame in views[0].frames().items():
            for other in views[1:]:
                pd.testing.assert_frame_equal(frame, other.frames()[tab], obj=f"{uai} {tab}")
        pd.testing.assert_frame_equal(views[0].summary, views[2].summary)


def test_the_audit_given_the_memberships_finds_the_same(world):
    snap = world["snap"]
    again = quality.audit(snap, members=memberships(snap))
    pd.testing.assert_frame_equal(again.findings, world["audit"].findings)
    pd.testing.assert_frame_equal(again.schools, world["audit"].schools)


def test_a_lean_state_without_an_audit_is_refused(world):
    state = world["store"].latest_tables(roster.needs())
    with pytest.raises(ParameterError, match="audit"):
        roster.prepare(state, world["pseudo"])


def test_the_explorer_says_open_as_the_pilot_console_does():
    """One definition (activity.is_open): the teachers' and director's activated accounts on
    each profile's last day; an account activated then withdrawn no longer opens the ENT."""
    from ent_audit.analyses.activity import indicators
    from ent_audit.analyses.activity.indicators import DailyFigures, Period

    days = pd.to_datetime(["2026-09-07", "2026-09-08"])

    def school(uai, teacher, director):
        return pd.DataFrame(
            {
                "uai": uai,
                "date": [*days, *days],
                "profile": ["teacher", "teacher", "director", "director"],
                "connections": 1,
                "unique_visitors": 1,
                "accounts_activated": [*teacher, *director],
            }
        )

    cases = {
        "0310001A": ((1, 1), (0, 0)),  # a teacher account: open
        "0310002B": ((0, 0), (0, 1)),  # the director's, on the last day: open
        "0310003C": ((2, 0), (0, 0)),  # activated, then withdrawn: not open
    }
    frames = {u: school(u, t, d) for u, (t, d) in cases.items()}
    daily = pd.concat(frames.values(), ignore_index=True).rename(
        columns={"accounts_activated": "activated"}
    )
    last = DailyFigures.of(daily, Period(days[0].date(), days[-1].date())).last
    teach = last[last["profile"].isin(indicators.OPEN_PROFILES)]
    console = indicators.is_open(teach.groupby("uai")["activated"].sum()).to_dict()
    explorer = {u: roster.is_open(f) for u, f in frames.items()}
    assert explorer == console == {"0310001A": True, "0310002B": True, "0310003C": False}
