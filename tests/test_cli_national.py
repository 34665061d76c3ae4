"""``ent-audit national`` and ``ent-audit activity-summary``: one library call each, refusals
as one French line and exit status 2, and the real chain on a small generated département."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from activity_helpers import END, START, build
from national_helpers import publish

from ent_audit import cli
from ent_audit.analyses import activity, national


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_national_prints_a_french_table_and_writes_csv_and_summary(tmp_path, capsys):
    a, b = publish(tmp_path / "a", 0, schools=40), publish(tmp_path / "b", 1, schools=40)
    code, out, err = _run(capsys, "national", "--stores", str(a), str(b), "--out",
                          str(tmp_path / "out"))  # fmt: skip
    assert code == 0, err
    assert "2 académie(s), période du 2026-09-01 au 2027-07-03" in out
    assert "France" in out and "A000" in out and "A001" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["academies"] == 2
    csv = pd.read_csv(tmp_path / "out" / "national.csv", sep=";", encoding="utf-8-sig")
    assert csv["niveau"].iloc[0] == "France"


def _hostile(tmp_path):
    good = publish(tmp_path / "good", 0, schools=30)
    (tmp_path / "empty").mkdir()
    (tmp_path / "store" / "states").mkdir(parents=True)
    old = publish(tmp_path / "old", 1, schools=30)
    t = pq.read_table(old / national.FILE_NAME).replace_schema_metadata({national.META_KEY: b"1"})
    pq.write_table(t, old / national.FILE_NAME)
    twin = publish(tmp_path / "twin", 2, schools=30, academie="A000")
    later = publish(tmp_path / "later", 3, schools=30, period=(START, END))
    return {
        "empty": [good, tmp_path / "empty"],
        "absent": [good, tmp_path / "absent"],
        "store": [good, tmp_path / "store"],
        "old": [good, old],
        "twin": [good, twin],
        "later": [good, later],
    }


def test_each_hostile_folder_is_refused_with_one_line_naming_it(tmp_path, capsys):
    for name, folders in _hostile(tmp_path).items():
        code, _out, err = _run(capsys, "national", "--stores", *map(str, folders), "--out",
                              str(tmp_path / "out"))  # fmt: skip
        assert code == 2, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("erreur: "), (name, err)
        assert str(tmp_path / name) in lines[0], (name, lines[0])
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.slow
def test_the_real_chain_from_events_to_the_national_view(tmp_path, capsys):
    g = build(tmp_path)
    store = g["store"]
    code, out, err = _run(
        capsys, "activity-summary", "--store", str(store), "--academie", "TOULOUSE",
        "--accounts", str(g["files"].accounts), "--period-start", str(START),
        "--period-end", str(END),
    )  # fmt: skip
    assert code == 0, err
    published = store / national.PUBLISHED
    assert published.is_file() and str(published) in out
    assert oct(published.stat().st_mode & 0o777) == "0o600"
    code, out, err = _run(capsys, "national", "--stores", str(store), "--out",
                          str(tmp_path / "out"))  # fmt: skip
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    r = activity.from_store(
        store, accounts=str(g["files"].accounts), period_start=str(START), period_end=str(END)
    ).to_dict()
    nat = summary["national"]
    for k in ("schools_total", "schools_open", "schools_stopped", "visits", "connections"):
        assert nat[k] == r[k], k
    assert nat["unique_visitors"] == r["unique_visitors"]
    for k in ("loaded", "activated", "active_7d", "active_30d"):
        assert nat[k] == r["accounts"][k], k
    assert summary["by_academie"]["TOULOUSE"]["visits"] == r["visits"]
    # the publication holds no pseudonym of the store
    pub = pd.read_parquet(published)
    assert list(pub.columns) == national.COLUMNS.names
    events = sorted(store.joinpath("activity").rglob("*.parquet"))
    users = set(pd.concat(pd.read_parquet(f, columns=["user"]) for f in events)["user"])
    texts = set(pub.select_dtypes(exclude="number").astype(str).to_numpy().ravel())
    assert users and not users & texts
