"""The whole chain on an académie, in one run: fetch, ingest, activity, reports, purge, explorer.

    .venv/bin/python benchmarks/run_all.py [--schools 2400 --pupils 260000 --events 10000000]
        [--results benchmarks/results.md] [--work DIR] [--cache outputs/bench]

Generates once (cached under ``--cache``, in another process, not counted): a seeded
``synth.series`` (Complet → Delta → Delta → Complet, unpacked too), the provider's account
export and destruction requests, and a school year of activity events for the final Complet's
population. Then times each stage as users run it, each in its own process (so each peak is its
own): ``ent-audit fetch`` from a real OpenSSH sshd on 127.0.0.1 (``tests/sshd.py``, the one the
SFTP tests start), ``ent-audit ingest`` of the Complet, of each Delta and of the next Complet
(reconciliation), ``ent-audit activity-import``, ``ent-audit report NAME`` for every scheduled
report, ``ent-audit purge`` (dry run) and the roster explorer's school switch. A bare
``lxml.etree.iterparse`` loop over the Complet's XML runs in the same run, as the reference
rate of the ingestion.

Per stage: wall time, peak memory (resident set of the process and its descendants, summed,
sampled every 50 ms, and at least the child's own ``ru_maxrss``), the size of the Parquet it
reads and the ratio. The table, the machine, versions, commit, date and load average go to
``--results`` (Markdown) and to the terminal; ``--json`` writes the same as data. Exit status:
0 when every stage ran (a stage that exits 1 ran and found something, as the demo's injected
defects make the quality report do), 2 when a stage failed; with ``--enforce-targets`` a missed
target of issue 16 gives 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "tests"))  # the shared sshd starter lives with the SFTP tests

START, END = dt.date(2026, 9, 1), dt.date(2027, 7, 2)
"""The school year of generated activity."""

TARGETS = {
    "chain_seconds": 600,
    "peak_mb": 6e9 / 2**20,
    "delta_seconds": 3,
    "ingest_vs_bare": 1.0,
    "parquet_ratio": 3,
}
"""Issue 16: chain under 10 min and 6 GB, a 1 % Delta under 3 s, ingestion at least the bare
iterparse rate, no stage above 3 times its Parquet inputs."""


# -- generation (cached, in its own process) ------------------------------------------------


def generate(folder: Path, schools: int, pupils: int, events: int, seed: int) -> None:
    """The series, the retention inputs, the activity; ``DONE`` written last."""
    from ent_audit.synth import generate as draw
    from ent_audit.synth import series, write_perimeter
    from ent_audit.synth.activity import write_activity
    from ent_audit.synth.retention import write_inputs

    t0 = time.perf_counter()
    base = draw(schools=schools, pupils=pupils, seed=seed)
    res = write_perimeter(series.build(base, seed=seed), folder / "series", unpack=True)
    # The generator's own truth says who left in its Delta: the account export is drawn from it.
    write_inputs(base, folder / "retention", seed=seed)
    del base
    write_activity(
        res.archives[-1], folder / "activite", seed=seed, start=START, end=END,
        events=events, malformed=0, jsonl=False,
    )  # fmt: skip
    (folder / "DONE").write_text(f"{time.perf_counter() - t0:.1f}\n")


def generated(cache: Path, schools: int, pupils: int, events: int, seed: int) -> Path:
    folder = cache / f"chain-s{schools}-p{pupils}-e{events}-seed{seed}"
    if not (folder / "DONE").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        print(f"génération (une fois, en cache) : {folder}", flush=True)
        subprocess.run(
            [sys.executable, __file__, "--phase", "generate", "--dir", str(folder),
             f"--schools={schools}", f"--pupils={pupils}", f"--events={events}",
             f"--seed={seed}"],
            check=True,
        )  # fmt: skip
    return folder


def _main_generate(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase")
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--schools", type=int)
    ap.add_argument("--pupils", type=int)
    ap.add_argument("--events", type=int)
    ap.add_argument("--seed", type=int)
    a = ap.parse_args(argv)
    generate(a.dir, a.schools, a.pupils, a.events, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(_main_generate(sys.argv[1:]))
