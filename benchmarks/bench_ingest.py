"""Ingestion of a whole département, and reading the state back, against re-parsing the XML.

    .venv/bin/python benchmarks/bench_ingest.py [--pupils 130000 --schools 1000]

Generates (once, cached in ``outputs/bench/``, in another process) a synthetic département,
ingests its Complet then its Delta into a fresh store, then times ``store.latest()`` against
``ent_audit.load()`` of the Complet archive (the work a store saves every report), in the same
process, and prints the ratio.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import department, size_arguments

import ent_audit
from ent_audit.store.store import Store


def timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    print(f"{label:<44} {dt:7.2f} s", flush=True)
    return out, dt


def main(argv: list[str] | None = None) -> int:
    args = size_arguments(__doc__.splitlines()[0]).parse_args(argv)
    out = department(args.schools, args.pupils, args.seed)
    complet, delta = sorted(out.glob("*_Complet_*.tar.gz"))[0], next(out.glob("*_Delta_*.tar.gz"))
    print(
        f"{complet.name} {complet.stat().st_size / 1e6:.1f} MB, "
        f"{delta.name} {delta.stat().st_size / 1e6:.1f} MB\n"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-store-", dir="outputs/bench"))
    try:
        store = Store(work / "store")
        [r], _t_complet = timed(
            "ingest Complet (extract, parse, write)", lambda: store.ingest([complet])
        )
        assert r.status == "ingested", r.message
        [r], _t_delta = timed("ingest Delta (parse, apply, write)", lambda: store.ingest([delta]))
        assert r.status == "ingested", r.message
        size = sum(p.stat().st_size for p in store.path.rglob("*") if p.is_file()) / 1e6
        print(f"{'store on disk':<44} {size:7.1f} MB\n")
        snap, t_latest = timed("store.latest() (Parquet)", store.latest)
        _, t_parse = timed("ent_audit.load(Complet archive) (XML)", lambda: ent_audit.load(complet))
        print(
            f"\nstore.latest() is {t_parse / t_latest:.1f}x faster than re-parsing the XML; "
            f"state: {snap.counts()}"
        )
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
