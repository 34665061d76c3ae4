"""The national view: ``national.aggregate`` (DuckDB, plain SQL over the published Parquet)
against the same aggregation in plain pandas (read every file, concat, group-by), for 1, 10, 30
and 300 académie-sized publications drawn by ``ent_audit.synth.national`` (2,400 schools
each); and, with ``--chain``, the real path on a small generated département: synth, ingest,
activity import, ``activity-summary``, ``national``.

Each measurement runs in its own process (``--measure``): wall time of the aggregation alone
(imports excluded) and the process's peak resident memory (imports included, printed apart).

    python benchmarks/bench_national.py [--counts 1,10,30,300] [--schools 2400] [--chain]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path("outputs/bench/national")
PERIOD = (dt.date(2026, 9, 1), dt.date(2027, 7, 3))
FIGURES = ("schools_total", "schools_open", "loaded", "activated", "active_30d", "visits",
           "unique_visitors")  # fmt: skip


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(n: int, schools: int, seed: int) -> tuple[list[Path], float]:
    """``n`` publication folders (cached); seconds per académie to draw and publish."""
    from ent_audit.analyses import national
    from ent_audit.synth import national as synth

    root = BENCH / f"s{schools}-seed{seed}-v{national.SCHEMA_VERSION}"  # a new schema: redrawn
    folders, seconds = [], []
    for i in range(n):
        folder = root / f"acad{i:03d}"
        if not (folder / national.FILE_NAME).exists():
            t = time.perf_counter()
            f = synth.academie(i, schools=schools, seed=seed)
            table = national.publication(
                f.profiles, f.schools, academie=f.academie, store=f"bench{seed:03d}{i:08d}",
                period=PERIOD, state_date=dt.date(2026, 9, 14),
            )  # fmt: skip
            national.write_publication(table, folder)
            seconds.append(time.perf_counter() - t)
        folders.append(folder)
    return folders, (sum(seconds) / len(seconds) if seconds else float("nan"))


def measure(method: str, folders: list[Path]) -> dict:
    """One aggregation in this process."""
    import pandas as pd

    from ent_audit.analyses import national

    base = _peak_mb()
    t = time.perf_counter()
    if method == "duckdb":
        frame = national.aggregate(folders).frame
    else:
        frame = pandas_aggregate(folders)
    wall = time.perf_counter() - t
    nat = frame[(frame["level"] == "national") & (frame["profile"] == "*")].iloc[0]
    return {
        "method": method,
        "n": len(folders),
        "wall": round(wall, 3),
        "peak_mb": round(_peak_mb(), 1),
        "imports_mb": round(base, 1),
        "rows": len(frame),
        "national": {k: int(nat[k]) for k in FIGURES},
        "pandas": pd.__version__,
    }


def pandas_aggregate(folders: list[Path]):
    """The baseline: every file read whole, concatenated, grouped by in pandas."""
    import pandas as pd

    from ent_audit.analyses import national

    pubs = pd.concat(
        [pd.read_parquet(Path(f) / national.FILE_NAME) for f in folders], ignore_index=True
    )
    sums = list(national.SCHOOLS + national.PEOPLE + national.EVENTS)
    acad = pubs[pubs["level"] == "academie"]
    dept = pubs[pubs["level"] == "departement"]
    parts = [
        acad.groupby("profile", as_index=False)[sums].sum(min_count=1).assign(level="national"),
        acad.groupby(["academie", "profile"], as_index=False)[sums]
        .sum(min_count=1)
        .assign(level="academie"),
        dept.groupby(["academie", "departement", "profile"], as_index=False)[sums]
        .sum(min_count=1)
        .assign(level="departement"),
    ]
    out = pd.concat(parts, ignore_index=True)
    out["activation_rate"] = (out["activated"] / out["loaded"].where(out["loaded"] > 0)).round(4)
    out["open_share"] = (out["schools_open"] / out["schools_total"]).round(4)
    out["visits_per_visitor"] = (out["visits"] / out["unique_visitors"]).round(2)
    return out


def _sub(method: str, n: int, root: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", method, "--n", str(n), "--root", str(root)],
        check=True, capture_output=True, text=True, env={**os.environ},
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def chain(schools: int, pupils: int, events: int) -> list[tuple[str, float]]:
    """The real path on a small département, each command as a user runs it."""
    from ent_audit.synth import write
    from ent_audit.synth.activity import write_activity

    steps = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-national-"))
    try:
        t = time.perf_counter()
        synth = write(tmp / "synth", seed=3, schools=schools, pupils=pupils)
        end = dt.date(2026, 12, 18)
        files = write_activity(
            synth.archives[-1], tmp / "activity", seed=3, start=PERIOD[0], end=end, events=events
        )
        steps.append(("génération (AAF + journal d'événements)", time.perf_counter() - t))
        store = tmp / "store"
        cmd = [sys.executable, "-m", "ent_audit.cli"]
        for label, args in (
            ("ingest", ["ingest", str(synth.archives[-1]), "--store", str(store)]),
            ("activity-import", ["activity-import", *map(str, files.events_csv), "--store",
                                 str(store)]),
            ("activity-summary", ["activity-summary", "--store", str(store), "--accounts",
                                  str(files.accounts), "--period-start", "2026-09-01",
                                  "--period-end", "2026-12-18"]),
            ("national", ["national", "--stores", str(store), "--out", str(tmp / "out")]),
        ):  # fmt: skip
            t = time.perf_counter()
            r = subprocess.run([*cmd, *args], capture_output=True, text=True)
            steps.append((label, time.perf_counter() - t))
            if r.returncode not in (0, 1):
                raise SystemExit(f"{label}: {r.stderr}")
            if label == "national":
                print(r.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="1,10,30,300")
    ap.add_argument("--schools", type=int, default=2400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chain", action="store_true", help="also the real chain, small")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        folders = sorted(Path(args.root).glob("acad*"))[: args.n]
        print(json.dumps(measure(args.measure, folders)))
        return
    counts = [int(c) for c in args.counts.split(",")]
    t = time.perf_counter()
    folders, per = generate(max(counts), args.schools, args.seed)
    print(f"{len(folders)} publications de {args.schools} écoles prêtes en "
          f"{time.perf_counter() - t:.1f} s (tirage + publication: {per:.2f} s par académie "
          "quand générée)")  # fmt: skip
    root = folders[0].parent
    size = sum((f / "activity-summary.parquet").stat().st_size for f in folders[:30])
    print(f"taille d'une publication: {size / min(30, len(folders)) / 1024:.0f} kB")
    print("| académies | DuckDB (national.aggregate) | peak | pandas concat + groupby | peak "
          "| same figures |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|:---:|")
    for n in counts:
        d, p = _sub("duckdb", n, root), _sub("pandas", n, root)
        same = d["national"] == p["national"]
        print(f"| {n} | {d['wall']:.3f} s | {d['peak_mb']:.0f} MB | {p['wall']:.3f} s | "
              f"{p['peak_mb']:.0f} MB | {'yes' if same else 'NO'} |")  # fmt: skip
        sys.stdout.flush()
    print(f"(memory after imports alone: DuckDB path {d['imports_mb']:.0f} MB, pandas path "
          f"{p['imports_mb']:.0f} MB)")  # fmt: skip
    if args.chain:
        for label, s in chain(30, 3000, 60_000):
            print(f"  {label}: {s:.1f} s")


if __name__ == "__main__":
    main()
