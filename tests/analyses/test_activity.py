"""The activity indicators against the generator's truth, the three inputs, the conversion."""

from __future__ import annotations

import datetime as dt
import json
import os

import pandas as pd
import pyarrow.parquet as pq
import pytest
from activity_helpers import END, START, build

from ent_audit import cli
from ent_audit.analyses import activity, csvtable
from ent_audit.analyses.activity import convert, indicators, inputs
from ent_audit.analyses.activity.indicators import masked
from ent_audit.store import pseudonym
from ent_audit.store.store import Store
from ent_audit.synth import activity as synth


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    g = build(tmp_path_factory.mktemp("activity"))
    files = g["files"]
    g["truth"] = json.loads(files.truth.read_text())
    g["result"] = activity.from_store(
        g["store"], accounts=str(files.accounts), daily=str(files.daily),
        period_start=str(START), period_end=str(END),
    )  # fmt: skip
    return g


FIGURES = ("visits", "unique_visitors", "connections")
FUNNEL = ("loaded", "activated", "active_7d", "active_30d")


def _profile_rows(r, level, key):
    p = r.profiles[(r.profiles["level"] == level) & (r.profiles["key"] == key)]
    return p.set_index("profile")


def _same_level(r, truth_level, level, key):
    rows = _profile_rows(r, level, key)
    for f in FIGURES:
        assert rows.loc["*", f] == truth_level[f], (level, key, f)
    for f in FUNNEL:
        assert rows.loc["*", f] == truth_level["accounts"][f], (level, key, f)
    for profile, t in truth_level["by_profile"].items():
        for f in FIGURES:
            assert rows.loc[profile, f] == t[f], (level, key, profile, f)
    for profile, t in truth_level["accounts"]["by_profile"].items():
        for f in FUNNEL:
            assert rows.loc[profile, f] == t[f], (level, key, profile, f)


def test_every_indicator_equals_the_truth_at_each_level(gen):
    r, truth = gen["result"], gen["truth"]
    d = r.to_dict()
    for k in ("schools_total", "schools_open", "visits", "unique_visitors", "connections"):
        assert d[k] == truth[k], k
    assert d["accounts"] == truth["accounts"]
    _same_level(r, truth["department"], "department", "*")
    for name, t in truth["by_circonscription"].items():
        _same_level(r, t, "circonscription", name)
        c = r.circonscriptions.set_index("circonscription").loc[name]
        assert (c["schools_total"], c["schools_open"]) == (t["schools_total"], t["schools_open"])
        assert d["by_circonscription"][name]["visits"] == t["visits"]
    schools = r.schools.set_index("uai")
    for uai, t in truth["schools"].items():
        _same_level(r, t, "school", uai) if t["visits"] or t["accounts"]["loaded"] else None
        s = schools.loc[uai]
        assert bool(s["open"]) == t["open"] and s["activated_teachers"] == t["activated_teachers"]
        assert bool(s["stopped"]) == t["stopped"], uai
        last = None if pd.isna(s["last_activity"]) else str(s["last_activity"].date())
        assert last == t["last_activity"], uai
    assert sorted(schools.index[schools["stopped"]]) == truth["stopped_schools"]
    assert sorted(schools.index[~schools["open"]]) == truth["not_open_schools"]


def test_trends_peaks_applications_devices_and_previous_period(gen):
    r, truth = gen["result"], gen["truth"]
    w = r.weekly[r.weekly["circonscription"] == "*"]
    assert {str(k): {"visits": v, "unique_visitors": u} for k, v, u in
            zip(w["week"], w["visits"], w["unique_visitors"], strict=True)} == truth["weekly"]  # fmt: skip
    assert {f"{a}-{b}": n for a, b, n in r.heatmap.itertuples(index=False)} == truth["heatmap"]
    apps = r.applications.set_index("application")
    assert {a: {"events": int(apps.loc[a, "events"]), "users": int(apps.loc[a, "users"])}
            for a in apps.index} == truth["applications"]  # fmt: skip
    names = {"desktop": "ordinateur", "mobile": "mobile", "tablet": "tablette"}
    assert {names[k]: v for k, v in r.devices.itertuples(index=False)} == truth["devices"]
    assert r.previous == truth["previous"]
    assert {k: r.unknown[k] for k in truth["unknown"]} == truth["unknown"]


def test_a_shorter_period_equals_the_truth_for_it(gen):
    """November, compared with October (the previous period), and the funnel on 30 November."""
    f = gen["files"].frames
    start, end = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
    truth = synth.reference_indicators(
        f["events"], f["members"], f["accounts"], f["schools"], start, end
    )
    r = activity.from_store(gen["store"], accounts=str(gen["files"].accounts),
                            period_start=start, period_end=end)  # fmt: skip
    d = r.to_dict()
    for k in ("schools_open", "visits", "unique_visitors", "connections", "accounts", "previous"):
        assert d[k] == truth[k], k
    for name, t in truth["by_circonscription"].items():
        _same_level(r, t, "circonscription", name)
    assert d["schools_stopped"] == len(truth["stopped_schools"])


def test_json_lines_with_a_column_mapping_give_the_same_indicators(gen, tmp_path):
    files = gen["files"]
    r = activity.from_store(
        gen["store"], events=[str(p) for p in files.events_jsonl], accounts=str(files.accounts),
        period_start=str(START), period_end=str(END), run_dir=str(tmp_path),
        columns={"events": synth.JSONL_MAPPING},
    )  # fmt: skip
    assert (tmp_path / "activity" / "events").is_dir()  # converted for this run only
    a, b = r.to_dict(), gen["result"].to_dict()
    for k in ("schools_open", "visits", "unique_visitors", "connections", "accounts"):
        assert a[k] == b[k], k
    pd.testing.assert_frame_equal(r.profiles, gen["result"].profiles)


def test_the_daily_csv_alone_gives_the_same_activated_accounts_and_open_schools(gen):
    files = gen["files"]
    r = activity.from_store(gen["store"], daily=str(files.daily), period_start=str(START),
                            period_end=str(END))  # fmt: skip
    assert r.accounts_source == "daily"
    assert r.department["activated"] == gen["result"].department["activated"]
    assert (r.schools["open"] == gen["result"].schools["open"]).all()
    assert all(s.agree for s in gen["result"].sources)


def test_malformed_lines_are_reported_with_file_and_line(gen, tmp_path):
    truth = gen["truth"]["malformed"]
    csv = {(m["file"], m["line"]) for m in truth if m["file"].endswith(".csv")}
    found = {(m.file, m.line) for r in gen["imported"] for m in r.report.malformed}
    assert found == csv
    assert {m.reason for r in gen["imported"] for m in r.report.malformed} == {inputs.Reason.FIELDS}
    jl = {(m["file"], m["line"]) for m in truth if m["file"].endswith(".jsonl")}
    reports = [
        inputs.read_events_frame(p, synth.JSONL_MAPPING)[1] for p in gen["files"].events_jsonl
    ]
    assert {(m.file, m.line) for rep in reports for m in rep.malformed} == jl
    assert gen["result"].malformed == 4  # the store's imports; the other files are clean
    check = {c.id: c for c in activity.checks(gen["result"])}["inputs_readable"]
    assert check.failed and check.detail == "4 ligne(s) illisible(s) écartée(s)"


def test_labels_in_french_or_english_and_every_reason(tmp_path):
    log = tmp_path / "journal.csv"
    log.write_text(
        "horodatage;identifiant;profil;uai;evenement;appli;terminal\n"
        "2026-09-07T08:00:00;1;Élève;0310001A;Connexion;;Tablette\n"  # 2
        "2026-09-07 08:01:00;2;RESPONSABLE;0310001a;login;;smartphone\n"  # 3
        "07/09/2026 08:02:00;3;headteacher;0310001A;connecteur;Éduthèque;PC\n"  # 4
        "2026-09-07T25:00:00;4;Enseignant;0310001A;connexion;;\n"  # 5 timestamp
        "2026-09-07T08:03:00;;Enseignant;0310001A;connexion;;\n"  # 6 user
        "2026-09-07T08:04:00;5;Inspecteur;0310001A;connexion;;\n"  # 7 profile
        "2026-09-07T08:05:00;6;staff;031000;connexion;;\n"  # 8 uai
        "2026-09-07T08:06:00;7;Personnel\n"  # 9 fields
        "\n"  # 10 empty
        "2026-09-07T08:07:00;8;Autre personnel;0310001A;ouverture;Blog;mobile\n",  # 11
        encoding="utf-8",
    )
    cols = {"timestamp": "horodatage", "user": "identifiant", "profile": "profil",
            "event": "evenement", "application": "appli", "device": "terminal"}  # fmt: skip
    df, rep = inputs.read_events_frame(log, cols)
    assert df["profile"].tolist() == ["pupil", "guardian", "director", "other_staff"]
    assert df["kind"].tolist() == ["Eleve", "PersRelEleve", "PersEducNat", "PersEducNat"]
    assert df["event"].tolist() == ["login", "login", "connector", "other"]
    assert df["device"].tolist() == ["tablet", "mobile", "desktop", "mobile"]
    assert df["uai"].tolist() == ["0310001A"] * 4
    assert [(m.line, str(m.reason)) for m in rep.malformed] == [
        (5, "timestamp"), (6, "user"), (7, "profile"), (8, "uai"), (9, "fields"), (10, "fields"),
    ]  # fmt: skip
    assert (rep.rows, rep.malformed_count) == (4, 6)


def test_a_missing_column_names_the_file_and_the_parameter(tmp_path):
    log = tmp_path / "journal.csv"
    log.write_text("ts,user,profile,uai,event\n", encoding="utf-8")
    with pytest.raises(activity.ActivityInputError, match=r"journal.csv: colonne 'timestamp' "
                       r"\(timestamp\) absente de l'en-tête .*columns.events.timestamp"):  # fmt: skip
        inputs.EventLog(log)
    with pytest.raises(activity.ActivityInputError, match="champ inconnu 'heure'"):
        inputs.EventLog(log, {"heure": "ts"})


def test_conversion_is_incremental_pseudonymised_and_private(gen, tmp_path):
    store = Store(gen["store"], create=False)
    folder = convert.activity_dir(store.path)
    files = sorted((folder / "events").glob("month=*/*.parquet"))
    assert [f.parent.name for f in files] == [f"month=2026-{m}" for m in ("09", "10", "11", "12")]
    assert all(os.stat(f).st_mode & 0o777 == 0o600 for f in files)
    assert os.stat(folder).st_mode & 0o777 == 0o700
    users = set(pq.read_table(files[0], columns=["user"])["user"].to_pylist())
    clear = set(gen["files"].frames["events"]["user"])
    assert not users & clear and all(len(u) == 20 for u in users)
    stamps = {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files}
    # Again: nothing done. A new month's log: only its own file is written.
    again = activity.import_logs(gen["files"].events_csv, store.path)
    assert {r.status for r in again} == {activity.ImportStatus.ALREADY}
    january = tmp_path / "evenements-2027-01.csv"
    january.write_text(
        "timestamp,user,profile,uai,event,application,device\n"
        f"2027-01-05T09:00:00,X1,Parent,{gen['truth']['not_open_schools'][0]},connexion,,mobile\n",
        encoding="utf-8",
    )
    (new,) = activity.import_logs([january], store.path)
    assert new.status == activity.ImportStatus.IMPORTED and new.months == {"2027-01": 1}
    assert {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files} == stamps
    assert len(convert.ledger(folder)) == 5


def test_an_interrupted_conversion_is_cleaned_up(tmp_path, gen):
    folder = tmp_path / "act"
    log = gen["files"].events_csv[0]
    digest = convert.sha256(log)
    stale = folder / "events" / "month=2026-08" / f"{digest[:16]}.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    convert.convert([log], folder, b"k" * 32)
    assert not stale.exists()


def test_the_cli_imports_and_exits_1_on_malformed_lines(gen, tmp_path, capsys):
    store = tmp_path / "store"
    Store(store).ingest([gen["synth"].archives[-1]])
    logs = [str(p) for p in gen["files"].events_csv]
    assert cli.main(["activity-import", *logs, "--store", str(store)]) == 1
    out = capsys.readouterr().out
    assert "ligne(s) illisible(s) écartée(s)" in out and "nombre de champs incorrect" in out
    assert cli.main(["activity-import", *logs, "--store", str(store)]) == 0
    assert "déjà importé" in capsys.readouterr().out
    assert cli.main(["activity-import", logs[0], "--store", str(tmp_path / "nope")]) == 2
    jl = str(
        gen["files"].out
        / next(m["file"] for m in gen["truth"]["malformed"] if m["file"].endswith(".jsonl"))
    )
    maps = [f"--map={k}={v}" for k, v in synth.JSONL_MAPPING.items()]
    assert cli.main(["activity-import", jl, "--store", str(store), *maps]) == 1
    assert cli.main(["activity-import", jl, "--store", str(store), "--map=heure=x"]) == 2
    assert "champ inconnu 'heure'" in capsys.readouterr().err


def test_small_cells_are_masked_and_not_recoverable():
    df = pd.DataFrame(
        {"circonscription": ["A", "A", "A", "B"], "loaded": [3, 40, 50, 2], "visits": [1, 2, 3, 4]}
    )
    out = masked(df, 5, group="circonscription")
    assert out["loaded"].tolist() == ["<5", "<5", 50, "<5"]  # 40 hidden with the lone 3
    assert out["visits"].tolist() == [1, 2, 3, 4]  # not people
    small = activity.ActivityResult(**{**gen_fields(), "department": {
        "schools_total": 1, "schools_open": 1, "schools_stopped": 0, "loaded": 3,
        "activated": 2, "active_7d": 0, "active_30d": 1, "visits": 9, "unique_visitors": 2,
        "connections": 9}})  # fmt: skip
    d = small.to_dict()
    assert d["unique_visitors"] == "<5" and d["accounts"]["active_7d"] == 0
    assert d["accounts"]["loaded"] == "<5"


def gen_fields() -> dict:
    empty = pd.DataFrame()
    return dict(
        period=activity.Period(START, END), open_threshold=1, target=0.8,
        schools=pd.DataFrame({"stopped": []}), circonscriptions=pd.DataFrame(
            columns=["circonscription", "schools_total", "schools_open", "visits",
                     "unique_visitors", "connections"]),
        department={}, profiles=empty, weekly=empty, heatmap=empty, applications=empty,
        devices=empty, previous={}, unknown={}, inputs=(), sources=(), accounts_source="none",
        events=False,
    )  # fmt: skip


def test_a_store_without_activity_gives_zeros_and_skipped_checks(gen, tmp_path):
    store = tmp_path / "empty"
    Store(store).ingest([gen["synth"].archives[-1]])
    r = activity.from_store(store, period_start="2026-09-01", period_end="2026-09-30")
    d = r.to_dict()
    assert (d["visits"], d["schools_open"], d["accounts"]["activated"]) == (0, 0, 0)
    assert d["accounts"]["loaded"] == gen["truth"]["accounts"]["loaded"]
    statuses = {c.id: str(c.status) for c in activity.checks(r)}
    assert statuses["open_target"] == statuses["events_known"] == "skipped"
    with pytest.raises(activity.ActivityInputError, match="date '30/09' illisible"):
        activity.from_store(store, period_end="30/09")


def test_the_headline_says_an_unknown_previous_period_and_writes_numbers_in_french(gen):
    """Before the first event there is no previous period: « inconnue », never 0 or -100 %;
    a later period compares with the earlier one; thousands take a narrow space."""
    from dataclasses import replace

    from ent_audit.analyses.activity import tables

    r = gen["result"]
    first = tables.headline(replace(r, previous={k: 0 for k in r.previous}))
    visits = first.set_index("indicateur").loc["visites"]
    assert visits["période précédente"] == "inconnue" and visits["évolution"] == ""
    circ = tables.circonscriptions(replace(r, previous={k: 0 for k in r.previous}))
    assert "visites (période précédente)" not in circ.columns  # unknown: not a column of 0
    seen = replace(r, previous={**r.previous, "visits": 10, "unique_visitors": 4})
    assert "visites (période précédente)" in tables.circonscriptions(seen).columns
    opened = first.set_index("indicateur").loc["écoles dont l'ENT est ouvert", "valeur"]
    big = replace(r, department={**r.department, "schools_total": 2400, "schools_open": 1234})
    assert "1\u202f234 / 2\u202f400" == tables.headline(big).iloc[0]["valeur"]
    assert "/" in opened
    assert "**1\u202f234 écoles sur 2\u202f400" in tables.verdict(big)
    assert not tables.verdict(big).splitlines()[0].startswith("## 1")


def test_an_export_read_in_blocks_gives_the_rows_and_lines_of_one_read(tmp_path, monkeypatch):
    # Rows become Arrow columns block by block: with blocks of two rows, a wrong field count
    # and a bad flag across block boundaries keep their line numbers, the rest their values.
    path = tmp_path / "comptes.csv"
    path.write_text(
        "\ufeffIdentifiant;Profil;UAI;Activé;Date d'activation;Dernière connexion\n"
        "u1;Élève;0310001A;Oui;01/09/2026;\n"
        "u2;Parent;0310001A;Non;;\n"
        "u3;Enseignant;0310002B\n"
        "u4;Enseignant;0310002B;peut-être;;\n"
        "u5; directeur ;0310002b;oui;2026-09-02;02/09/2026 08:00\n",
        encoding="utf-8",
    )
    whole, whole_report = inputs.read_accounts(path)
    monkeypatch.setattr(csvtable, "CHUNK_ROWS", 2)
    blocks, report = inputs.read_accounts(path)
    pd.testing.assert_frame_equal(blocks, whole)
    assert report == whole_report
    assert list(blocks["user"]) == ["u1", "u2", "u5"]
    assert list(blocks["uai"]) == ["0310001A", "0310001A", "0310002B"]
    assert [(m.line, m.reason) for m in report.malformed] == [
        (4, inputs.Reason.FIELDS),
        (5, inputs.Reason.VALUE),
    ]


def test_a_log_read_in_small_blocks_converts_to_the_same_rows_in_full_row_groups(
    gen, tmp_path, monkeypatch
):
    # Blocks of 4 kB: people seen in earlier blocks take their pseudonym from the cache,
    # new ones are hashed, and the month's rows are gathered into row groups of 1,000 rows
    # whatever the blocks: the same rows, in the log's order, as read whole.
    log = gen["files"].events_csv[0]
    key = b"k" * 32
    convert.convert([log], tmp_path / "whole", key)
    monkeypatch.setattr(inputs, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(convert, "ROW_GROUP_ROWS", 1000)
    (r,) = convert.convert([log], tmp_path / "blocks", key)
    (whole,) = (tmp_path / "whole" / "events").glob("month=*/*.parquet")
    (small,) = (tmp_path / "blocks" / "events").glob("month=*/*.parquet")
    assert pq.read_table(small).equals(pq.read_table(whole))
    meta = pq.ParquetFile(small).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes[:-1] == [1000] * (len(sizes) - 1) and 0 < sizes[-1] <= 1000
    assert sum(sizes) == r.report.rows == sum(r.months.values())
    clear, _ = inputs.read_events_frame(log)
    expected = [
        pseudonym.pseudonym(key, kind, user)
        for kind, user in zip(clear["kind"], clear["user"], strict=True)
    ]
    assert pq.read_table(small, columns=["user"])["user"].to_pylist() == expected
    assert len(set(expected)) < len(expected)  # people come back across blocks


def test_a_log_spanning_months_writes_one_file_per_month_with_its_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "BLOCK_BYTES", 64)
    monkeypatch.setattr(convert, "ROW_GROUP_ROWS", 2)
    log = tmp_path / "journal.csv"
    rows = [f"2026-{m:02d}-{d:02d}T08:00:00,U{d % 3},eleve,0310001A,connexion,,pc"
            for m, d in ((9, 29), (9, 30), (10, 1), (9, 30), (10, 2), (10, 3), (11, 1))]  # fmt: skip
    log.write_text("timestamp,user,profile,uai,event,application,device\n" + "\n".join(rows))
    (r,) = convert.convert([log], tmp_path / "act", b"k" * 32)
    assert r.months == {"2026-09": 3, "2026-10": 3, "2026-11": 1}
    for month, days in (("2026-09", [29, 30, 30]), ("2026-10", [1, 2, 3]), ("2026-11", [1])):
        (f,) = (tmp_path / "act" / "events" / f"month={month}").glob("*.parquet")
        assert [t.day for t in pq.read_table(f)["ts"].to_pylist()] == days
        assert os.stat(f).st_mode & 0o777 == 0o600


def test_inputs_given_as_frames_or_read_in_turn_give_the_same_indicators(gen):
    # from_store reads the export and the daily CSV only when compute reaches them (loaders);
    # frames read beforehand give the same result, and so does the period left to the events.
    files, store = gen["files"], Store(gen["store"], create=False)
    acc, acc_report = inputs.read_accounts(files.accounts)
    day, day_report = inputs.read_daily(files.daily)
    reports = tuple(convert.reports(convert.activity_dir(store.path)))
    r = activity.compute(
        store.latest(columns=indicators.COLUMNS), store.key,
        events=convert.events_glob(convert.activity_dir(store.path)), accounts=acc, daily=day,
        period_start=START, period_end=END, inputs=(*reports, acc_report, day_report),
    )  # fmt: skip
    ref = activity.from_store(
        gen["store"], accounts=str(files.accounts), daily=str(files.daily),
        period_start=str(START), period_end=str(END),
    )  # fmt: skip
    assert r.to_dict() == ref.to_dict() and r.inputs == ref.inputs
    assert r.to_dict()["accounts"] == gen["truth"]["accounts"]
    pd.testing.assert_frame_equal(r.schools, ref.schools)
    pd.testing.assert_frame_equal(r.profiles, ref.profiles)
    free = activity.from_store(gen["store"], accounts=str(files.accounts), daily=str(files.daily))
    first, last = (
        store.sql(f"SELECT {f}(ts) AS t FROM events")["t"].iloc[0].date() for f in ("min", "max")
    )
    assert (free.period.start, free.period.end) == (first, last)
    assert free.accounts_source == "accounts" and free.sources[1].checked
