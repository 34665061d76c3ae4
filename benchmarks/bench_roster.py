"""The roster explorer: how long switching to a 600-pupil school takes, in a département-sized
store (target: under 1 second), and what opening the explorer costs.

    .venv/bin/python benchmarks/bench_roster.py [--pupils 130000 --schools 200] [--target 600]

Generates (once, cached in ``outputs/bench/``, in another process) a département whose schools
average ``pupils / schools`` pupils (200 schools for 130,000 pupils: about 650 each), ingests
its Complet into a store beside it, then in this process times: opening the explorer
(``store.latest()``, memberships, the quality audit, the widgets), and switching to the school
whose pupil count is nearest ``--target``, masked and unmasked (five switches each, alternating
with another school so nothing is cached), both the frames alone
(``ent_audit.analyses.roster.school``) and the whole widget update (``RosterExplorer.select``:
frames, tables rendered, titles).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import department, size_arguments

from ent_audit.analyses import roster
from ent_audit.store.store import Store
from ent_audit.widgets import RosterExplorer

RUNS = 5


def store_for(schools: int, pupils: int, seed: int) -> Path:
    out = department(schools, pupils, seed)
    store = out / "store"
    if not (store / "CURRENT").exists():
        complet = next(a for a in sorted(out.glob("*.tar.gz")) if "_Complet_" in a.name)
        t0 = time.perf_counter()
        Store(store).ingest([complet], progress=False)
        print(f"(store built once: {time.perf_counter() - t0:.1f} s)")
    return store


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def switches(fn, uai: str, other: str) -> list[float]:
    out = []
    for _ in range(RUNS):
        fn(other)
        out.append(timed(fn, uai))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = size_arguments(__doc__.splitlines()[0])
    ap.set_defaults(schools=200)
    ap.add_argument("--target", type=int, default=600, help="pupils of the school switched to")
    args = ap.parse_args(argv)
    store = Store(store_for(args.schools, args.pupils, args.seed))

    with tempfile.TemporaryDirectory() as exports:
        t0 = time.perf_counter()
        masked = RosterExplorer(store, export_dir=exports)
        t_open = time.perf_counter() - t0
        t0 = time.perf_counter()
        clear = RosterExplorer(store, show_personal_data=True, export_dir=exports)
        t_open_clear = time.perf_counter() - t0
        counts = masked.roster.members.query("profile == 'pupil'").groupby("uai").size()
        uai = (counts - args.target).abs().idxmin()
        other = counts.drop(uai).idxmax()
        print(
            f"store: {masked.roster.state.counts()}; {len(counts)} schools, "
            f"{int(counts.min())}–{int(counts.max())} pupils each"
        )
        print(f"school switched to: {uai}, {int(counts[uai])} pupils "
              f"(alternating with {other}, {int(counts[other])} pupils)")  # fmt: skip
        print(f"opening the explorer (state, memberships, audit, widgets): masked {t_open:.2f} s, "
              f"unmasked {t_open_clear:.2f} s")  # fmt: skip
        rows = [
            ("frames, masked", switches(lambda u: roster.school(masked.roster, u), uai, other)),
            ("frames, unmasked", switches(lambda u: roster.school(clear.roster, u), uai, other)),
            ("widgets (select), masked", switches(masked.select, uai, other)),
            ("widgets (select), unmasked + journal", switches(clear.select, uai, other)),
        ]
    print(f"\n| switch to a {int(counts[uai])}-pupil school | median | max |")
    print("|---|---:|---:|")
    for name, times in rows:
        print(f"| {name} | {statistics.median(times):.3f} s | {max(times):.3f} s |")
    worst = max(max(t) for _, t in rows)
    print(f"\ntarget: under 1 s per switch: {'met' if worst < 1 else 'NOT met'} ({worst:.3f} s)")
    return 0 if worst < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
