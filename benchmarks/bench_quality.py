"""The data-quality audit on a whole département: time per rule and in all, against the time
to load the snapshot from the store.

    .venv/bin/python benchmarks/bench_quality.py [--pupils 130000 --schools 1000] [--rate 0.001]

Generates (once, cached in ``outputs/bench/``, in another process) a synthetic département with
every defect injected at ``--rate``, ingests its Complet and its Delta into a store (cached
beside it), then in this process times ``store.latest()``, ``quality.audit`` over the whole
catalogue (perimeter given: every rule runs), ``quality.audit_store`` (what the report and the
explorer run: the same result, each check reading its columns from the Parquet; compared with
the first) and the pseudonymised ``findings.csv``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from common import department, size_arguments

from ent_audit.analyses import quality
from ent_audit.privacy import Pseudonymiser
from ent_audit.store.store import Store


def prepare(schools: int, pupils: int, seed: int, rate: float) -> Path:
    """The generated département and its store (Complet + Delta), built once."""
    out = department(schools, pupils, seed, rate)
    store = out / "store"
    if not (store / "CURRENT").exists():
        archives = sorted(out.glob("*.tar.gz"))
        complet = next(a for a in archives if "_Complet_" in a.name)
        delta = next(a for a in archives if "_Delta_" in a.name)
        t0 = time.perf_counter()
        results = Store(store).ingest([complet, delta], progress=False)
        assert all(r.status == "ingested" for r in results), [r.message for r in results]
        print(f"(store built once: {time.perf_counter() - t0:.1f} s)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = size_arguments(__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=0.001, help="rate of every injected defect")
    args = ap.parse_args(argv)
    out = prepare(args.schools, args.pupils, args.seed, args.rate)
    store = Store(out / "store")

    t0 = time.perf_counter()
    snap = store.latest()
    t_load = time.perf_counter() - t0
    counts = snap.counts()
    print(f"state of {snap.extraction.date}: {counts}")
    structures = snap.structures
    perimeter = structures.loc[structures["struct_type"] == "ECOLE", "uai"].dropna().tolist()

    t0 = time.perf_counter()
    result = quality.audit(snap, perimeter=perimeter)
    t_audit = time.perf_counter() - t0
    # What the quality report and the explorer run: the same audit read check by check from
    # the store's Parquet (bounded memory), timed against the whole-state audit above.
    t0 = time.perf_counter()
    lean = quality.audit_store(store, perimeter=perimeter)
    t_store = time.perf_counter() - t0
    if not lean.summary.equals(result.summary) or len(lean.findings) != len(result.findings):
        raise SystemExit("audit_store and audit disagree: the benchmark's figures are void")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        quality.write_findings_csv(result, Pseudonymiser.for_store(store.path), tmp)
    t_csv = time.perf_counter() - t0

    s = result.summary.set_index("rule")
    per_rule = pd.DataFrame(
        {
            "seconds": pd.Series(result.timings),
            "findings": s["count"].reindex(list(result.timings)),
        }
    ).sort_values("seconds", ascending=False)
    print("\nper rule (slowest first):")
    print(
        per_rule.to_string(
            formatters={
                "seconds": "{:.3f}".format,
                "findings": lambda v: "" if pd.isna(v) else f"{int(v)}",
            }
        )
    )
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    injected = sum(len(v) for v in truth["defects"].values())
    print(f"\n{'store.latest() (Parquet)':<44} {t_load:7.2f} s")
    print(
        f"{'quality.audit, ' + str(len(result.summary)) + ' rules':<44} {t_audit:7.2f} s "
        f"({len(result.findings)} findings, {injected} defects injected)"
    )
    print(
        f"{'  of which the rules themselves':<44} "
        f"{sum(v for k, v in result.timings.items() if k in s.index):7.2f} s"
    )
    print(f"{'quality.audit_store (read check by check)':<44} {t_store:7.2f} s (same result)")
    print(f"{'findings.csv (pseudonyms, masks)':<44} {t_csv:7.2f} s")
    print(f"\naudit / load = {t_audit / t_load:.1f}")
    print(f"audit_store / (load + audit) = {t_store / (t_load + t_audit):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
