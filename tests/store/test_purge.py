"""The purge: after ``--apply`` no trace of a purged person is left anywhere under the store,
the archives or the outputs (every file scanned, Parquet decoded, archives unpacked), the
store still reads and verifies, and a second ``--apply`` changes nothing."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from ent_audit import cli
from ent_audit.analyses import retention
from ent_audit.exceptions import StoreLockedError
from ent_audit.reports import runner as report
from ent_audit.store import Store, pseudonym, purge
from ent_audit.store.purge import inventory
from ent_audit.synth import write
from ent_audit.synth.retention import write_inputs

AS_OF = "2027-01-01"


def texts(root: Path):
    """Every file under ``root`` as text: Parquet decoded, gzip and tar members unpacked."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".parquet":
            yield path, pd.read_parquet(path).to_csv()
            continue
        if path.name.endswith(".tar.gz"):
            with tarfile.open(path) as tar:
                for m in tar.getmembers():
                    if m.isfile():
                        raw = tar.extractfile(m).read()
                        yield path, raw.decode("utf-8", "replace") + raw.decode("latin-1")
            continue
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        yield path, data.decode("utf-8", "replace")


def traces(roots: list[Path], needles: set[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for root in roots:
        for path, text in texts(root):
            hit = {n for n in needles if n in text}
            if hit:
                found[str(path)] = hit
    return found


def clear_values(perimeter, kind: str, jointures: set[str]) -> set[str]:
    """Names, mails, INE and birth dates of these people in the generated extractions."""
    out: set[str] = set()
    for ext in perimeter.extractions:
        for rec in ext.records.get(kind, []):
            if rec.id not in jointures or not rec.attrs:
                continue
            a = rec.attrs
            first = (a.get("ENTPersonPrenom") or [None])[0]
            last = (a.get("ENTPersonNom") or [None])[0]
            if first and last:
                out.add(f"{first} {last}")
            for attr in ("ENTPersonMail", "ENTEleveINE"):
                v = (a.get(attr) or [None])[0]
                if v:
                    out.add(v)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store with a Complet and its Delta, the archives in a fetch destination, a
    destruction request on a pupil still enrolled, a retention report in the outputs,
    a leftover temporary folder and an old findings CSV in clear."""
    tmp = tmp_path_factory.mktemp("purge")
    synth = write(tmp / "synth", seed=21, schools=4, pupils=200)
    archives = tmp / "archives"
    archives.mkdir()
    for a in synth.archives:
        shutil.copy(a, archives / a.name)
    store = Store(tmp / "store")
    store.ingest(synth.archives[:2])
    inputs = write_inputs(synth.perimeter, tmp / "provider", seed=21)
    enrolled = sorted(r.id for r in synth.perimeter.extractions[-1].records["Eleve"])[0]
    requests = tmp / "demandes.csv"
    requests.write_text(f"jointure;date_demande;date_realisation\n{enrolled};2026-09-20;\n")
    outputs = tmp / "outputs"
    run = report.run(
        "retention",
        {
            "store": str(store.path),
            "as_of": AS_OF,
            "accounts": str(inputs.accounts),
            "requests": str(requests),
            "outputs": str(outputs),
        },
        outputs=outputs,
    )
    assert run.exit_code == 1, run.message
    (store.path / "tmp" / "extract-leftover").mkdir(mode=0o700)
    (store.path / "tmp" / "extract-leftover" / "x.xml").write_text("<x/>")
    clear = outputs / "quality" / "20261001T000000000000Z" / "a-corriger"
    clear.mkdir(parents=True)
    (clear / "0310001A.csv").write_text(
        f"fichier AAF;jointure\nEleve;{enrolled}\n", encoding="utf-8"
    )  # the quality report's French headers (quality.present.CLEAR_HEADERS)
    departures = synth.perimeter.truth["delta"]["departures"]
    left = {d["jointure"] for d in departures}
    guardians = {g for d in departures for g in d["guardians_deleted"]}
    key = store.key
    pseudonyms = {pseudonym.pseudonym(key, "Eleve", j) for j in left | {enrolled}} | {
        pseudonym.pseudonym(key, "PersRelEleve", g) for g in guardians
    }
    values = clear_values(synth.perimeter, "Eleve", left | {enrolled}) | clear_values(
        synth.perimeter, "PersRelEleve", guardians
    )
    return dict(
        store=store,
        archives=archives,
        outputs=outputs,
        requests=requests,
        enrolled=enrolled,
        pseudonyms=pseudonyms,
        values=values,
        run=run,
    )


def purge_args(w, *extra: str) -> list[str]:
    return [
        "purge",
        "--store",
        str(w["store"].path),
        "--as-of",
        AS_OF,
        "--archives",
        str(w["archives"]),
        "--outputs",
        str(w["outputs"]),
        "--requests",
        str(w["requests"]),
        *extra,
    ]


def snapshot_of(roots: list[Path]) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ("lock", "read.lock")  # the lock names its holder
    }


@pytest.mark.slow
def test_purge_leaves_no_trace_and_is_idempotent(world, capsys):
    w = world
    roots = [w["store"].path, w["archives"], w["outputs"]]
    assert traces(roots, w["pseudonyms"])  # the report and the store hold them before
    assert traces(roots, w["values"])  # and the archives hold them in clear
    before = snapshot_of(roots)

    # A dry run lists, changes nothing and exits 1 (but opening the store sweeps what an
    # interrupted run left in its tmp/: extracted personal data never waits for a purge).
    assert cli.main(purge_args(w)) == 1
    out = capsys.readouterr().out
    assert "simulation" in out and "pupil_left : " in out and "archive brute" in out
    tmp = str(w["store"].path / "tmp")
    assert snapshot_of(roots) == {k: v for k, v in before.items() if not k.startswith(tmp)}

    assert cli.main(purge_args(w, "--apply")) == 0
    out = capsys.readouterr().out
    assert "procès-verbal" in out
    assert traces(roots, w["pseudonyms"]) == {}
    assert traces(roots, w["values"]) == {}

    # The store still reads and verifies; the requested pupil left the live state.
    store = Store(w["store"].path, create=False)
    if hasattr(store, "verify"):
        store.verify()
    latest = store.latest()
    assert w["enrolled"] not in set(latest.students["jointure"])
    assert len(latest.students) > 100
    assert not (latest.student_guardian["student"] == w["enrolled"]).any()
    assert list((store.path / "states").iterdir()) == [
        store.path / "states" / (store.path / "CURRENT").read_text().strip()
    ]
    assert list((store.path / "tmp").iterdir()) == []
    for p in store.path.rglob("*"):
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))

    # The purge record: counts only.
    records = list((store.path / "purges").iterdir())
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["counts"]["pupil_left"] >= 1 and record["counts"]["destruction_request"] == 1
    assert record["presence_rows"] > 0 and record["archives_removed"] == 3
    text = records[0].read_text()
    assert not any(n in text for n in w["pseudonyms"] | {w["enrolled"]})

    # The retention report on the purged store: nothing overdue in the workbench.
    result, plan = retention.workbench(
        store,
        retention.as_of_date(AS_OF),
        archives=w["archives"],
        outputs=w["outputs"],
        requests=retention.read_requests(w["requests"]),
    )
    wb = result.overdue[result.overdue["place"] == "workbench"]
    assert wb.empty, wb
    assert plan.empty

    # A second --apply changes nothing, not even a new record.
    after = snapshot_of(roots)
    assert cli.main(purge_args(w, "--apply")) == 0
    assert "Rien à purger" in capsys.readouterr().out
    assert snapshot_of(roots) == after


def test_purge_refuses_while_an_ingestion_holds_the_lock(tmp_path, capsys):
    synth = write(tmp_path / "synth", seed=2, schools=2, pupils=40)
    store = Store(tmp_path / "store")
    store.ingest(synth.archives[:1])
    with store.locked():
        with pytest.raises(StoreLockedError):
            with Store(tmp_path / "store").locked():
                pass
        assert cli.main(["purge", "--store", str(store.path), "--apply"]) == 2
        assert "une ingestion est déjà en cours" in capsys.readouterr().err


def test_inventory_dates_archives_from_their_ingestion_and_runs_from_their_name(tmp_path):
    synth = write(tmp_path / "synth", seed=2, schools=2, pupils=40)
    store = Store(tmp_path / "store")
    store.ingest(synth.archives[:1])
    run = tmp_path / "outputs" / "overview" / "20260105T101010000000Z"
    run.mkdir(parents=True)
    (run / "findings.csv").write_text("x\n")
    os.utime(synth.archives[0], (0, 0))
    inv = inventory(store, synth.out, tmp_path / "outputs").set_index("category")
    ingested = store.history()["ingested_at"].iloc[0].tz_convert(None)
    assert inv.loc["archive"].iloc[0]["date"] == ingested
    assert inv.loc["output_run", "date"] == pd.Timestamp(2026, 1, 5, 10, 10, 10)
    assert inv.loc["findings", "path"].endswith("findings.csv")


def test_archives_go_five_working_days_after_ingestion(tmp_path):
    files = pd.DataFrame(
        {
            "path": ["a.tar.gz"],
            "category": ["archive"],
            # Friday 18 December 2026: 5 working days later is Monday 28 (25 Dec a holiday).
            "date": [pd.Timestamp(2026, 12, 18, 9)],
            "extraction_date": [pd.Timestamp(2026, 12, 18)],
        }
    )
    on = retention.evaluate(retention.as_of_date("2026-12-28"), files=files)
    after = retention.evaluate(retention.as_of_date("2026-12-29"), files=files)
    assert on.items["deadline"].tolist() == [pd.Timestamp(2026, 12, 28)]
    assert on.items["status"].tolist() == ["upcoming"]
    assert after.items["status"].tolist() == ["overdue"]


def test_purge_text_of_an_empty_plan_says_so():
    result = retention.evaluate(retention.as_of_date("2027-01-01"))
    assert "rien à supprimer" in retention.plan_text(retention.purge_plan(result))


def test_the_access_journal_keeps_its_lines_for_their_term_only(tmp_path):
    from ent_audit.store import access

    store = Store(tmp_path / "s")
    journal = access.journal_path(store.path)
    old = {"date": "2025-01-02", "time": "10:00:00", "user": "coord", "uai": "0310036W",
           "shown": ["pupils"]}  # fmt: skip
    new = {**old, "date": "2026-11-01"}
    journal.write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n")
    as_of = dt.date(2026, 11, 29)
    _, plan = retention.workbench(store, as_of)
    assert plan.counts[retention.ACCESS_JOURNAL] == 1
    report = purge.apply(store, plan)
    assert report.access_lines_removed == 1 and report.changed
    assert [json.loads(x)["date"] for x in journal.read_text().splitlines()] == ["2026-11-01"]
    _, again = retention.workbench(store, as_of)
    assert again.counts[retention.ACCESS_JOURNAL] == 0
