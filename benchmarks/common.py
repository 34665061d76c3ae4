"""What the benchmarks share: a generated département, built once and cached, and how peak
memory is measured.

Generation runs in another process (``ent-audit synth``): the generator's memory must not count
in the benchmark's own peaks, and a cached copy under ``outputs/bench/`` is reused. Peak memory
is the resident memory of a process and all its descendants, summed (:class:`MemorySampler`);
:func:`measure` runs one command that way.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
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


class MemorySampler(threading.Thread):
    """Samples the resident memory of a process and all its descendants (the forkserver's
    workers and papermill's kernels are grandchildren, out of reach of ``RUSAGE_CHILDREN``);
    keeps the peak of the sum. ``root``: this process when None.

    Two sums: the resident sets (``VmRSS``, what the 3 x bound is judged on), which count a
    page shared by several processes (a library's code, what a worker inherits from the
    forkserver) once per process; and, with ``pss=True``, the proportional sets (``Pss`` of
    ``smaps_rollup``), which count it once in all: what the tree really takes from the
    machine."""

    def __init__(self, every: float = 0.05, root: int | None = None, pss: bool = False) -> None:
        super().__init__(daemon=True)
        self.every, self.root, self.peak = every, root or os.getpid(), 0.0
        self.pss, self.pss_peak = pss, 0.0
        self.stop = threading.Event()

    def _tree(self) -> list[tuple[int, int]]:
        """(pid, VmRSS in KiB) of the root and its descendants."""
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/status") as fh:
                    fields = dict(line.split(":", 1) for line in fh if ":" in line)
            except OSError:
                continue
            parents[int(d)] = int(fields["PPid"])
            rss[int(d)] = int(fields.get("VmRSS", "0 kB").split()[0])
        tree = []
        for pid in rss:
            p = pid
            while p and p != self.root:
                p = parents.get(p, 0)
            if p == self.root:
                tree.append((pid, rss[pid]))
        return tree

    @staticmethod
    def _pss_kib(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _tree_rss_mb(self) -> float:
        return sum(kib for _, kib in self._tree()) / 1024

    def sample(self) -> None:
        tree = self._tree()
        self.peak = max(self.peak, sum(kib for _, kib in tree) / 1024)
        if self.pss:
            self.pss_peak = max(self.pss_peak, sum(self._pss_kib(p) for p, _ in tree) / 1024)

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            time.sleep(self.every)

    def reset(self) -> None:
        self.peak = self._tree_rss_mb()


@dataclass(frozen=True)
class Measured:
    """One command run as a child process: wall time, peak memory of its process tree (MiB),
    exit status."""

    seconds: float
    peak_mb: float
    returncode: int
    pss_mb: float = 0.0
    """Peak of the tree's proportional set sizes (MiB): shared pages counted once."""


def measure(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Measured:
    """Run ``argv`` with its output in ``log``; the peak is the larger of the sampled tree sum
    and the child's own maximum resident set (``wait4``), so a short spike is not missed."""
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler = MemorySampler(root=proc.pid, pss=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(seconds, max(sampler.peak, usage.ru_maxrss / 1024), proc.returncode,
                    pss_mb=sampler.pss_peak)  # fmt: skip
