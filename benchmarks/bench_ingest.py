"""Ingestion of a whole département or académie against bare iterparse, and a Delta's cost.

    .venv/bin/python benchmarks/bench_ingest.py [--academie | --pupils 130000 --schools 1000]
        [--steps] [--series]

Generates (once, cached in ``outputs/bench/``, in another process) a synthetic perimeter, then,
in one process and on the same files:

- ``bare``: an ``lxml.etree.iterparse`` loop that only visits and clears every element, over
  the XML files of the Complet archive (its unpacked copy), in this process;
- the Complet archive ingested into a fresh store (extraction, parsing on every core, guards,
  presence history, Parquet, SHA-256 list): its rate in MB of XML per second against bare;
- the Delta ingested over it (its share of the state's records is printed), and again each
  of its steps on the same inputs;
- ``store.latest()`` against re-parsing the archive.

Peak memory is the resident memory of the process and its reader workers, summed, sampled
every 50 ms while each line runs; the two ingestions each run in a process of their own (their
peak is theirs alone), and their peak is compared with the size of the stage's Parquet inputs
(the state a Delta reads) or outputs (the state a Complet writes). ``--academie`` is issue 16's
size: 2,400 schools, 260,000 pupils. ``--series``: the Complet and the first Delta of
``synth.series`` over the same perimeter (the chain benchmark's: a Delta of 1.0 % of the
records, the generator's Delta split in two, with the changes the generator does not make),
generated once and cached beside it; without it, the generator's own Delta (2.1 %).
"""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from bench_reader import MemorySampler, bare
from common import BENCH, department, size_arguments
from lxml import etree

import ent_audit
from ent_audit.aaf import schema
from ent_audit.store.store import Store

SAMPLER = MemorySampler()


def timed(label: str, fn, mb: float | None = None, base: float | None = None):
    gc.collect()
    SAMPLER.reset()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    rate = f"{mb / dt:7.1f} MB/s" if mb else " " * 12
    ratio = f"{(mb / dt) / base:5.2f}x" if mb and base else " " * 6
    print(f"{label:<46} {dt:7.2f} s {rate} {ratio} {SAMPLER.peak:7.0f} MB", flush=True)
    return out, dt, SAMPLER.peak


CHILD = """
import json, sys, time
from ent_audit.store.store import Store

if __name__ == "__main__":
    t0 = time.perf_counter()
    [r] = Store(sys.argv[1]).ingest([sys.argv[2]])
    seconds = time.perf_counter() - t0
    print(json.dumps({"status": r.status, "message": r.message, "counts": r.counts,
                      "seconds": seconds}))
"""


def in_child(label: str, store: Store, archive: Path, mb: float | None = None, base=None):
    """One ingestion in its own process (so its peak is its own, not what earlier stages
    left in this one's heap): the time it measures itself, the peak resident memory of that
    process and its reader workers (this process's own resident memory subtracted)."""
    script = store.path.parent / "child.py"
    script.write_text(CHILD)
    gc.collect()
    SAMPLER.reset()
    own = SAMPLER.peak
    proc = subprocess.run(
        [sys.executable, str(script), str(store.path), str(archive)],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "ingested", out["message"]
    dt, peak = out["seconds"], SAMPLER.peak - own
    rate = f"{mb / dt:7.1f} MB/s" if mb else " " * 12
    ratio = f"{(mb / dt) / base:5.2f}x" if mb and base else " " * 6
    print(f"{label:<46} {dt:7.2f} s {rate} {ratio} {peak:7.0f} MB", flush=True)
    return out, dt, peak


SERIES = """
import sys
from pathlib import Path
from ent_audit.synth import generate, series, write_perimeter

if __name__ == "__main__":
    schools, pupils, seed, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    base = generate(schools=schools, pupils=pupils, seed=seed)
    write_perimeter(series.build(base, seed=seed), Path(out), unpack=True)
    (Path(out) / "DONE").write_text("")
"""


def series_of(schools: int, pupils: int, seed: int) -> Path:
    """The folder of a generated ``synth.series`` (Complet, Delta, Delta, Complet), cached."""
    out = BENCH / f"series-s{schools}-p{pupils}-seed{seed}"
    if not (out / "DONE").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        script = out / "generate.py"
        script.write_text(SERIES)
        subprocess.run(
            [sys.executable, str(script), str(schools), str(pupils), str(seed), str(out)],
            check=True,
        )
    return out


def parquet_mb(state: Path) -> float:
    return sum(p.stat().st_size for p in state.rglob("*.parquet")) / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = size_arguments(__doc__.splitlines()[0])
    ap.add_argument("--academie", action="store_true", help="2,400 schools, 260,000 pupils")
    ap.add_argument("--steps", action="store_true", help="also time the Delta's steps alone")
    ap.add_argument(
        "--series", action="store_true", help="the first Delta of synth.series (1.0 %%)"
    )
    args = ap.parse_args(argv)
    if args.academie:
        args.schools, args.pupils = 2400, 260_000
    if args.series:
        out = series_of(args.schools, args.pupils, args.seed)
    else:
        out = department(args.schools, args.pupils, args.seed)
    complet = sorted(out.glob("*_Complet_*.tar.gz"))[0]
    delta = sorted(out.glob("*_Delta_*.tar.gz"))[0]
    folder = out / complet.name.removesuffix(".tar.gz")
    files = sorted(folder.glob("*.xml"))
    mb = sum(p.stat().st_size for p in files) / 1e6
    print(
        f"{complet.name} {complet.stat().st_size / 1e6:.1f} MB ({len(files)} XML files, "
        f"{mb:.1f} MB), {delta.name} {delta.stat().st_size / 1e6:.1f} MB; python "
        f"{sys.version.split()[0]}, lxml {etree.__version__}, pandas {pd.__version__}\n"
    )
    SAMPLER.start()
    print(f"{'stage':<46} {'time':>9} {'rate':>12} {'vs bare':>6} {'peak mem':>10}")
    _, t_bare, _ = timed("bare iterparse, Complet files (1 process)", lambda: bare(files), mb)
    base = mb / t_bare
    work = Path(tempfile.mkdtemp(prefix="bench-store-", dir="outputs/bench"))
    try:
        store = Store(work / "store")
        r, t_c, peak_c = in_child(
            "ingest Complet archive (whole pipeline)", store, complet, mb, base
        )
        state_mb = parquet_mb(store.current())
        people = sum(r["counts"].values())
        # The machine is shared: bare again right after, and the ratio against both.
        _, t_bare2, _ = timed("bare iterparse again (1 process)", lambda: bare(files), mb)
        print(
            f"{'ingest Complet vs the mean of both bare runs':<46} "
            f"{(mb / t_c) / (mb / ((t_bare + t_bare2) / 2)):5.2f}x"
        )
        r, t_delta, peak_d = in_child("ingest Delta (read, apply, journal, commit)", store, delta)
        records = sum(r["counts"].values())
        print(
            f"\nDelta: {records:,} records ({r['counts']}), {records / people:.1%} of the "
            f"{people:,} records of the state; state Parquet {state_mb:.1f} MB\n"
            f"peak / state Parquet: Complet {peak_c / state_mb:.1f}x (its output), "
            f"Delta {peak_d / state_mb:.1f}x (its input)"
        )
        if args.steps:
            _steps(store, delta, complet)
        size = sum(p.stat().st_size for p in store.path.rglob("*") if p.is_file()) / 1e6
        print(f"\n{'store on disk':<46} {size:7.1f} MB")
        snap, t_latest, _ = timed("store.latest() (Parquet)", store.latest)
        _, t_parse, _ = timed(
            "ent_audit.load(Complet archive) (XML)", lambda: ent_audit.load(complet)
        )
        print(
            f"\nstore.latest() is {t_parse / t_latest:.1f}x faster than re-parsing the XML; "
            f"state: {snap.counts()}; Delta {t_delta:.2f} s"
        )
    finally:
        shutil.rmtree(work)
    return 0


def _steps(store: Store, delta: Path, complet: Path) -> None:
    """The Delta's steps timed alone on the same inputs (the state before it, re-read), as
    the ingestion runs them (:mod:`ent_audit.store.partial`)."""
    from ent_audit.store import journal, partial, presence
    from ent_audit.store.apply import apply_delta, check_delta

    print("\nthe Delta's steps alone, on the state it was applied to:")
    tmp = Path(tempfile.mkdtemp(prefix="bench-steps-", dir="outputs/bench"))
    try:
        before = Store(tmp / "store")
        before.ingest([complet])
        folder = before.current()
        files, _, _ = timed(
            "  open the state (placing columns)",
            lambda: partial.State.open(folder, before.read_meta(folder)),
        )
        incoming, _, _ = timed("  read the Delta (XML)", lambda: ent_audit.load(delta))
        state, _, _ = timed(
            "  read its slice of the state", lambda: partial.delta_slice(files, incoming)
        )
        timed("  check_delta", lambda: check_delta(state, incoming))
        new, _, _ = timed("  apply_delta", lambda: apply_delta(state, incoming))
        timed(
            "  journal.changes",
            lambda: journal.changes(state, incoming, new, before.key, sliced=True),
        )
        people, _, _ = timed(
            "  presence: people the Delta may move, HMAC",
            lambda: presence.identified(presence.affected(state, incoming, new), before.key),
        )
        now, _, _ = timed(
            "  presence: where they are now", lambda: presence.present(new, before.key, people)
        )
        theirs = files.presence_of(people["pseudonym"])
        theirs = presence.typed(theirs[presence.listed(theirs, people)])
        updated, _, _ = timed(
            "  presence: their history",
            lambda: presence.update(theirs, now, incoming.extraction.date),
        )
        timed(
            "  overlays to write",
            lambda: partial.write_plan(files, state, new, incoming, updated, people),
        )
        print(
            f"  (people placed again: {len(people):,}; kinds "
            f"{dict(people['kind'].value_counts())}; slice "
            f"{sum(len(getattr(state, k.frame)) for k in schema.KINDS.values()):,} records)"
        )
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
