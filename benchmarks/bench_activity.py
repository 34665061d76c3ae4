"""The pilot console on an académie's school year of events: DuckDB over Parquet against plain
pandas on the same data.

    .venv/bin/python benchmarks/bench_activity.py [--events 10000000] [--pupils 130000]

Generates once (cached under ``outputs/bench/``, in other processes): the département, its
Complet in a store, and ``--events`` events of the 2026-2027 school year as monthly CSV logs
with the account export. Then, each phase in its own process (so each peak is its own):

1. conversion: ``activity-import`` of every monthly log into a fresh ``STORE/activity``;
2. DuckDB: :func:`ent_audit.analyses.activity.compute` over the Parquet, population joined;
3. pandas: the same Parquet read into pandas and every indicator computed by
   :func:`ent_audit.synth.activity.reference_indicators` (the plain-pandas implementation).

Peak memory is the phase process's maximum resident set (``ru_maxrss``). The two paths' key
figures are compared and must be equal.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import department, size_arguments

START, END = dt.date(2026, 9, 1), dt.date(2027, 7, 2)
KEYS = ("schools_total", "schools_open", "visits", "unique_visitors", "connections")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds of this process, every thread: fairer than wall time on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def prepare(out: Path, events: int, seed: int) -> tuple[Path, Path]:
    """The store (Complet ingested) and the activity folder (monthly CSV, account export)."""
    from ent_audit.store.store import Store

    store = out / "store-activity"
    complet = sorted(out.glob("*_Complet_*.tar.gz"))[-1]
    if not (store / "CURRENT").exists():
        Store(store).ingest([complet])
    folder = out / f"activity-{events}"
    if not (folder / "comptes.csv").exists():
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--phase", "generate", "--dir", str(folder),
             "--archive", str(complet), "--events", str(events), "--seed", str(seed)],
            check=True,
        )  # fmt: skip
        print(f"(activity generated once: {time.perf_counter() - t0:.0f} s)")
    return store, folder


def generate(folder: Path, archive: Path, events: int, seed: int) -> None:
    from ent_audit.aaf import population
    from ent_audit.aaf.snapshot import load
    from ent_audit.synth import activity as synth

    folder.mkdir(parents=True, exist_ok=True)
    snap = load(archive)
    members = population.memberships(snap)
    schools = population.schools(snap)[["uai", "name", "circonscription"]].astype(str)
    drawn = synth.generate(members, schools, seed=seed, start=START, end=END, events=events)
    synth.write_events(drawn["events"], folder, jsonl=False, malformed=0, seed=seed)
    synth.write_accounts(drawn["accounts"], folder / "comptes.csv")


def phase_convert(store: Path, folder: Path) -> dict:
    from ent_audit.analyses import activity

    shutil.rmtree(store / "activity", ignore_errors=True)
    logs = sorted(folder.glob("evenements-*.csv"))
    t0, c0 = time.perf_counter(), _cpu()
    results = activity.import_logs(logs, store)
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    rows = sum(r.report.rows for r in results)
    size = sum(p.stat().st_size for p in logs)
    parquet = sum(p.stat().st_size for p in (store / "activity").rglob("*.parquet"))
    return {"seconds": seconds, "cpu": cpu, "rows": rows, "csv_mb": size / 1e6,
            "parquet_mb": parquet / 1e6, "peak_mb": _peak_mb()}  # fmt: skip


def phase_duckdb(store: Path, folder: Path) -> dict:
    from ent_audit.analyses.activity import convert, indicators, inputs
    from ent_audit.store.store import Store

    st = Store(store, create=False)
    snap = st.latest()
    accounts, _ = inputs.read_accounts(folder / "comptes.csv")
    t0, c0 = time.perf_counter(), _cpu()
    r = indicators.compute(
        snap, st.key, events=convert.events_glob(convert.activity_dir(store)), accounts=accounts,
        period_start=START, period_end=END,
    )  # fmt: skip
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    d = r.to_dict()
    population = r.extra["seconds"]["population"]
    return {"seconds": seconds, "cpu": cpu, "population": population, "steps": r.extra["seconds"],
            "figures": {k: d[k] for k in KEYS} | {"accounts": d["accounts"]},
            "peak_mb": _peak_mb()}  # fmt: skip


def phase_pandas(store: Path, folder: Path) -> dict:
    import numpy as np
    import pandas as pd

    from ent_audit.aaf import population
    from ent_audit.analyses.activity import convert, inputs
    from ent_audit.analyses.activity.inputs import KIND_OF
    from ent_audit.store import pseudonym
    from ent_audit.store.store import Store
    from ent_audit.synth import activity as synth

    st = Store(store, create=False)
    snap = st.latest()
    accounts, _ = inputs.read_accounts(folder / "comptes.csv")
    t0, c0 = time.perf_counter(), _cpu()
    members = population.memberships(snap)
    ids = pd.Series(pd.NA, index=members.index, dtype="string")
    for kind, idx in members.groupby("kind", observed=True).groups.items():
        ids[idx] = pseudonym.pseudonymise(st.key, str(kind), members.loc[idx, "jointure"])
    members = members.assign(jointure=ids)
    acc = accounts.assign(
        jointure=pd.concat(
            [pseudonym.pseudonymise(st.key, str(k), g["user"]) for k, g in accounts.groupby("kind")]
        )
    )
    schools = population.schools(snap)[["uai", "name", "circonscription"]].astype(str)
    population_seconds = time.perf_counter() - t0
    ev = pd.read_parquet(convert.activity_dir(store) / "events")
    code = {str(p): i for i, p in enumerate(synth.PROFILES)}
    apps = {a: i for i, (a, _) in enumerate(synth.APPLICATIONS)}
    events = pd.DataFrame(
        {
            "ts": ev["ts"],
            "user": ev["user"],
            "kind": ev["profile"].map({str(p): k for p, k in KIND_OF.items()}),
            "profile": ev["profile"].map(code).astype(np.int8),
            "uai": ev["uai"],
            "event": ev["event"]
            .map({"login": 0, "application": 1, "connector": 2})
            .astype(np.int8),
            "application": ev["application"].map(apps).fillna(-1).astype(np.int16),
            "device": ev["device"].map({"desktop": 0, "mobile": 1, "tablet": 2}).astype(np.int8),
        }
    )
    del ev
    truth = synth.reference_indicators(events, members, acc, schools, START, END)
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    figures = {k: truth[k] for k in KEYS} | {"accounts": truth["accounts"]}
    return {"seconds": seconds, "cpu": cpu, "population": population_seconds,
            "figures": figures, "peak_mb": _peak_mb()}  # fmt: skip


PHASES = {"convert": phase_convert, "duckdb": phase_duckdb, "pandas": phase_pandas}


def run_phase(name: str, store: Path, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--store", str(store), "--dir", str(folder)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = size_arguments(__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--phase", choices=[*PHASES, "generate"])
    ap.add_argument("--store")
    ap.add_argument("--dir")
    ap.add_argument("--archive")
    args = ap.parse_args()
    if args.phase == "generate":
        generate(Path(args.dir), Path(args.archive), args.events, args.seed)
        return
    if args.phase:
        print(json.dumps(PHASES[args.phase](Path(args.store), Path(args.dir)), default=str))
        return
    out = department(args.schools, args.pupils, args.seed)
    store, folder = prepare(out, args.events, args.seed)
    conv = run_phase("convert", store, folder)
    duck = run_phase("duckdb", store, folder)
    pand = run_phase("pandas", store, folder)
    same = duck["figures"] == pand["figures"]
    print(f"\n{conv['rows']:,} events ({conv['csv_mb']:.0f} MB of CSV in "
          f"{len(list(folder.glob('*.csv'))) - 1} monthly logs -> {conv['parquet_mb']:.0f} MB "
          f"of Parquet), {args.schools} schools, {args.pupils:,} pupils\n")  # fmt: skip
    print("| step | wall time | of which population | CPU time | peak memory |")
    print("|---|---:|---:|---:|---:|")
    print(f"| conversion to Parquet (`activity-import`, pseudonyms) | {conv['seconds']:.1f} s "
          f"| | {conv['cpu']:.1f} s | {conv['peak_mb']:.0f} MB |")  # fmt: skip
    for label, p in (("indicators, DuckDB over Parquet", duck),
                     ("the same indicators, plain pandas", pand)):  # fmt: skip
        print(f"| {label} | {p['seconds']:.1f} s | {p['population']:.1f} s | {p['cpu']:.1f} s "
              f"| {p['peak_mb']:.0f} MB |")  # fmt: skip
    agg_d = duck["seconds"] - duck["population"]
    agg_p = pand["seconds"] - pand["population"]
    print(
        f"\nDuckDB vs pandas: {pand['seconds'] / duck['seconds']:.1f}x in all, "
        f"{agg_p / agg_d:.1f}x without the population step both share "
        f"({agg_d:.1f} s against {agg_p:.1f} s); CPU time {pand['cpu'] / duck['cpu']:.1f}x; "
        f"same figures: {'yes' if same else 'NO'}"
    )
    print("DuckDB steps (s):", json.dumps(duck["steps"]))
    print(json.dumps(duck["figures"], indent=None))
    if not same:
        print(json.dumps(pand["figures"], indent=None))


if __name__ == "__main__":
    main()
