"""Reader speed against bare lxml, on the same generated files, in the same process.

    .venv/bin/python benchmarks/bench_reader.py [--pupils 130000 --schools 1000] [--dir DIR]

Generates (once, cached in ``outputs/bench/``) a synthetic département, then times on its pupils
files (Eleve parts):

- ``bare``: an ``lxml.etree.iterparse`` loop that only visits and clears every element;
- ``ours x1``: ``ent_audit.load`` of the same parts in this process (``workers=1``);
- ``ours x2``: the same with the parts read in parallel on two cores;
- ``dicts``: the naive reader: records collected into dicts, then one DataFrame (untyped,
  no link tables, no checks);
- ``read_xml``: ``pandas.read_xml`` on one part only (it is that slow);

and then the whole extraction (four kinds) with ``ent_audit.load``, from its folder and from its
archive. Rates are MB/s of XML read;
ratios are against ``bare``. Peak memory is the resident memory of this process and its
worker processes, summed and sampled while each line runs.
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

import pandas as pd
from common import MemorySampler, department, size_arguments
from lxml import etree

import ent_audit
from ent_audit.aaf.reader import PARSER_OPTIONS


def bare(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        for _, el in etree.iterparse(str(p), events=("end",), **PARSER_OPTIONS):
            el.clear()
            n += 1
    return n


def dicts(paths: list[Path]) -> pd.DataFrame:
    rows = []
    for p in paths:
        for _, rec in etree.iterparse(str(p), events=("end",), tag="addRequest", **PARSER_OPTIONS):
            row = {}
            for attr in rec.iter("attr"):
                vals = [v.text for v in attr]
                row[attr.get("name")] = vals[0] if len(vals) == 1 else vals
            rows.append(row)
            rec.clear()
            while rec.getprevious() is not None:
                del rec.getparent()[0]
    return pd.DataFrame(rows)


SAMPLER = MemorySampler()


def timed(label: str, fn, mb: float, base: float | None, results: list) -> float:
    gc.collect()
    SAMPLER.reset()
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    rate = mb / dt
    ratio = f"{rate / base:5.2f}x" if base else "  1.00x"
    print(
        f"{label:<28} {mb:8.1f} MB {dt:7.2f} s {rate:7.1f} MB/s {ratio} {SAMPLER.peak:8.0f} MB",
        flush=True,
    )
    results.append((label, mb, dt, rate))
    return rate


def main(argv: list[str] | None = None) -> int:
    ap = size_arguments(__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, help="an unpacked extraction to use instead")
    ap.add_argument("--skip-read-xml", action="store_true")
    args = ap.parse_args(argv)

    folder = args.dir
    if folder is None:
        out = department(args.schools, args.pupils, args.seed)
        folder = sorted(p for p in out.glob("*_Complet_*") if p.is_dir())[0]
    files = sorted(folder.rglob("*.xml"))
    pupils = [p for p in files if ent_audit.parse_name(p).kind == "Eleve"]
    mb = sum(p.stat().st_size for p in pupils) / 1e6
    total = sum(p.stat().st_size for p in files) / 1e6
    print(
        f"{folder}: pupils {len(pupils)} part(s) {mb:.1f} MB; all kinds {len(files)} files "
        f"{total:.1f} MB; python {sys.version.split()[0]}, lxml {etree.__version__}, "
        f"pandas {pd.__version__}\n"
    )
    SAMPLER.start()
    print(f"{'reader':<28} {'size':>11} {'time':>9} {'rate':>12} {'vs bare':>7} {'peak mem':>11}")
    results: list = []
    base = timed("bare iterparse (Eleve)", lambda: bare(pupils), mb, None, results)
    timed("ent_audit.load x1 (Eleve)", lambda: ent_audit.load(pupils, workers=1), mb, base, results)
    timed("ent_audit.load x2 (Eleve)", lambda: ent_audit.load(pupils, workers=2), mb, base, results)
    timed("dicts -> DataFrame (Eleve)", lambda: dicts(pupils), mb, base, results)
    if not args.skip_read_xml:
        one = pupils[0]
        one_mb = one.stat().st_size / 1e6
        timed(
            "pandas.read_xml (1 part)",
            lambda: pd.read_xml(one, xpath="//attr", parser="lxml"),
            one_mb,
            base,
            results,
        )
    print()
    all_bare = timed("bare iterparse (all kinds)", lambda: bare(files), total, None, results)
    snap = []
    timed(
        "ent_audit.load x2 (all)",
        lambda: snap.append(ent_audit.load(folder)),
        total,
        all_bare,
        results,
    )
    print("\nThe whole extraction from its tar.gz (extraction to a temporary folder included):")
    archive = folder.parent / f"{folder.name}.tar.gz"
    if archive.exists():
        timed(
            "ent_audit.load x2 (tar.gz)", lambda: ent_audit.load(archive), total, all_bare, results
        )
    print(
        "\npeak mem: resident memory of this process and its workers, summed, sampled "
        "every 50 ms while the line ran (frames of earlier lines freed)."
    )
    print("rows:", snap[0].counts())
    return 0


if __name__ == "__main__":
    sys.exit(main())
