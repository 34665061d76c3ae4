"""The activity generator: deterministic, realistic calendar, scenarios and truth by construction."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from activity_helpers import build

from ent_audit.synth import activity as synth
from ent_audit.synth import write


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return build(tmp_path_factory.mktemp("synth-activity"))


def _digest(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_same_seed_same_files(tmp_path):
    synth_dir = write(tmp_path / "s", seed=1, schools=6, pupils=400)
    a = synth.write_activity(synth_dir.archives[0], tmp_path / "a", seed=9, events=5000,
                             end=dt.date(2026, 10, 16))  # fmt: skip
    b = synth.write_activity(synth_dir.archives[0], tmp_path / "b", seed=9, events=5000,
                             end=dt.date(2026, 10, 16))  # fmt: skip
    assert _digest(a.out) == _digest(b.out)
    c = synth.write_activity(synth_dir.archives[0], tmp_path / "c", seed=10, events=5000,
                             end=dt.date(2026, 10, 16))  # fmt: skip
    assert _digest(a.out) != _digest(c.out)


def test_visits_are_known_by_construction(gen):
    """A person's visits are more than 30 minutes apart, their events less: the 30-minute rule
    finds exactly the visits drawn."""
    files = gen["files"]
    truth = json.loads(files.truth.read_text())
    assert truth["visits"] == truth["generated"]["visits_drawn"]
    ev = files.frames["events"]
    ev = ev[~ev["user"].str.startswith("X") & (ev["uai"] != synth.UNKNOWN_SCHOOL)]
    ev = ev.sort_values(["kind", "user", "ts"])
    same = (ev["user"].to_numpy()[1:] == ev["user"].to_numpy()[:-1]) & (
        ev["kind"].to_numpy()[1:] == ev["kind"].to_numpy()[:-1]
    )
    gaps = np.diff(ev["ts"].to_numpy())[same] / np.timedelta64(1, "m")
    assert not ((gaps > 13) & (gaps <= 30)).any()  # never close to the rule's edge
    assert (gaps > 30).sum() + (~same).sum() + 1 == truth["visits"]


def test_the_calendar_shapes_activity(gen):
    ev = gen["files"].frames["visits"]
    cal = synth.calendar(gen["files"].start, gen["files"].end).set_index("date")
    per_day = ev.groupby(ev["begin"].dt.normalize()).size().reindex(cal.index, fill_value=0)
    school = per_day[cal["school_day"]].mean()
    assert per_day[cal["dow"] == 2][~cal["holiday"]].mean() < 0.7 * school  # Wednesdays
    assert per_day[cal["dow"] >= 5].mean() < 0.4 * school  # weekends
    toussaint = (cal.index >= "2026-10-19") & (cal.index <= "2026-10-30")
    assert per_day[toussaint].mean() < 0.25 * school  # zone C holidays
    assert per_day.loc["2026-11-11"] < 0.25 * school  # Armistice
    hours = ev["begin"].dt.hour
    assert ((hours >= 0) & (hours < 6)).sum() == 0


def test_scenarios_never_late_stopped(gen):
    truth = json.loads(gen["files"].truth.read_text())
    g = truth["generated"]
    assert g["never_by_design"] and g["stopped_by_design"] and g["late_by_design"]
    assert truth["not_open_schools"] == g["never_by_design"]
    assert truth["stopped_schools"] == g["stopped_by_design"]
    ev = gen["files"].frames["events"]
    known = ev[~ev["user"].str.startswith("X")]  # strangers may log in anywhere, any time
    first = known.groupby("uai")["ts"].min()
    late = first.reindex(g["late_by_design"]).dropna()
    normal = first.drop(
        [*g["late_by_design"], *g["never_by_design"], synth.UNKNOWN_SCHOOL], errors="ignore"
    )
    assert late.min() > normal.max() - pd.Timedelta(days=1)
    assert not set(g["never_by_design"]) & set(known["uai"])


def test_unknown_people_and_schools_and_malformed_lines_are_listed(gen):
    files = gen["files"]
    truth = json.loads(files.truth.read_text())
    assert truth["unknown"] == {"events_unknown_school": 10, "events_unknown_user": 20}
    assert len(truth["malformed"]) == 8  # 4 in the CSV files, 4 in the JSON lines
    for m in truth["malformed"]:
        line = (files.out / m["file"]).read_text(encoding="utf-8").splitlines()[m["line"] - 1]
        assert line.startswith("2026-09-03T10:00:00,Z") or line.startswith('{"time": "hier"')


def test_the_three_formats_agree(gen):
    files = gen["files"]
    truth = json.loads(files.truth.read_text())
    acc = pd.read_csv(files.accounts, sep=";", encoding="utf-8-sig", dtype=str)
    assert list(acc.columns) == list(synth.ACCOUNT_COLUMNS)
    assert (acc["Activé"] == "Oui").sum() == truth["accounts"]["activated"]
    daily = pd.read_csv(files.daily, sep=";", encoding="utf-8-sig")
    assert list(daily.columns) == list(synth.DAILY_COLUMNS)
    assert daily["Connexions"].sum() == truth["connections"] + 20  # unknown people too
    last = daily[daily["Date"] == files.end.strftime("%d/%m/%Y")]
    assert last["Comptes activés"].sum() == truth["accounts"]["activated"]
    csv_rows = sum(len(p.read_text().splitlines()) - 1 for p in files.events_csv)
    json_rows = sum(len(p.read_text().splitlines()) for p in files.events_jsonl)
    assert csv_rows == json_rows == files.events + 4


def test_an_unknown_school_year_is_refused():
    with pytest.raises(ValueError, match="calendrier scolaire inconnu pour l'année 2030-2031"):
        synth.calendar(dt.date(2030, 9, 1), dt.date(2030, 12, 1))
