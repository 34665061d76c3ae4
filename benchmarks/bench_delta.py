"""The change journal's cost in a Delta's ingestion, and a reconciliation of two whole states.

    .venv/bin/python benchmarks/bench_delta.py [--pupils 130000 --schools 1000]

Writes (once, cached in ``outputs/bench/``, in another process) a generated series
Complet → Delta → Delta → Complet with its three lying Deltas, ingests the Complet into a
fresh store, then:

- ingests the first Delta (the journal included) and times, on the same inputs, the journal
  alone (``journal.changes``): its share of the ingestion (target: under 20 %);
- ingests the second Delta, then times the reconciliation of the state the Deltas built with
  the final Complet (``journal.changes(..., reconcile=True)``: the whole comparison, schools
  and pseudonyms included) and the bare ``compare``, next to the time to load the two states
  (the state from Parquet, the Complet from its XML archive): target under 2x the load time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH, size_arguments

import ent_audit
from ent_audit.aaf import diff
from ent_audit.store import journal
from ent_audit.store.apply import apply_delta
from ent_audit.store.store import Store


def series_folder(schools: int, pupils: int, seed: int) -> Path:
    out = BENCH / f"series-s{schools}-p{pupils}-seed{seed}"
    if not (out / "truth.json").exists():
        code = (
            "import sys; from ent_audit.synth import series; "
            "series.write(sys.argv[1], schools=int(sys.argv[2]), pupils=int(sys.argv[3]), "
            "seed=int(sys.argv[4]))"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(out), str(schools), str(pupils), str(seed)],
            check=True,
        )
    return out


def timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    print(f"{label:<58} {dt:7.2f} s", flush=True)
    return out, dt


def main(argv: list[str] | None = None) -> int:
    args = size_arguments(__doc__.splitlines()[0]).parse_args(argv)
    out = series_folder(args.schools, args.pupils, args.seed)
    complet, delta1, delta2, final = sorted(
        out.glob("*.tar.gz"), key=lambda p: p.name.rsplit("_", 1)[1]
    )
    work = Path(tempfile.mkdtemp(prefix="bench-delta-", dir=BENCH))
    try:
        store = Store(work / "store")
        timed("ingest Complet", lambda: store.ingest([complet]))
        before = store.latest()
        [r], t_ingest = timed("ingest Delta 1 (journal included)", lambda: store.ingest([delta1]))
        assert r.status == "ingested", r.message
        incoming = ent_audit.load(delta1)
        after = apply_delta(before, incoming)
        rows, t_journal = timed(
            "  of which the journal (journal.changes, same inputs)",
            lambda: journal.changes(before, incoming, after, store.key),
        )
        print(
            f"  journal: {len(rows)} rows, {t_journal / (t_ingest - t_journal):.0%} added to the "
            f"Delta's ingestion without it ({t_ingest - t_journal:.2f} s)\n"
        )
        [r], _ = timed("ingest Delta 2", lambda: store.ingest([delta2]))
        state, t_state = timed("load the state the Deltas built (Parquet)", store.latest)
        complete, t_xml = timed(
            "load the final Complet (XML archive)", lambda: ent_audit.load(final)
        )
        cmp, t_cmp = timed("compare(state, Complet)", lambda: diff.compare(state, complete))
        rec, t_rec = timed(
            "reconciliation (journal.changes, reconcile=True)",
            lambda: journal.changes(state, complete, complete, store.key, reconcile=True),
        )
        load = t_state + t_xml
        print(
            f"\nstate: {state.counts()}\nreconciliation: {journal.divergences(rec)} divergences; "
            f"{t_rec:.2f} s = {t_rec / load:.2f}x the load time ({load:.2f} s: Parquet "
            f"{t_state:.2f} s + XML {t_xml:.2f} s); bare compare {t_cmp:.2f} s "
            f"({t_cmp / load:.2f}x); against the Parquet load alone {t_rec / t_state:.1f}x"
        )
        del cmp
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
