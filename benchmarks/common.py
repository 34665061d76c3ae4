"""What the benchmarks share: a generated département, built once and cached.

Generation runs in another process (``ent-audit synth``): the generator's memory must not count
in the benchmark's own peaks, and a cached copy under ``outputs/bench/`` is reused.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCH = Path("outputs/bench")


def size_arguments(description: str) -> argparse.ArgumentParser:
    """``--pupils``, ``--schools`` and ``--seed``, as every benchmark takes them."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--pupils", type=int, default=130_000)
    ap.add_argument("--schools", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def department(schools: int, pupils: int, seed: int, defect_rate: float | None = None) -> Path:
    """The folder of a generated département (archives, unpacked folders, truth.json)."""
    name = f"s{schools}-p{pupils}-seed{seed}" + (f"-defects{defect_rate:g}" if defect_rate else "")
    out = BENCH / name
    if not (out / "truth.json").exists():
        extra = [f"--all-defects={defect_rate}"] if defect_rate else []
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ent_audit.cli",
                "synth",
                str(out),
                "--unpack",
                f"--schools={schools}",
                f"--pupils={pupils}",
                f"--seed={seed}",
                *extra,
            ],
            check=True,
        )
    return out
