"""Deterministic random streams: fast scalar draws, opaque id pools, proportional splits.

Every stream is seeded from the generator's seed and a fixed stream number, so that the same
arguments always draw the same perimeter.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np


def split_total(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Integers proportional to ``weights``, each at least ``minimum``, summing to ``total``."""
    base = np.full(len(weights), minimum, dtype=np.int64)
    rest = total - int(base.sum())
    raw = rest * weights / weights.sum()
    out = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - out), kind="stable")
    out[order[: rest - int(out.sum())]] += 1
    return base + out


class IdPool:
    """Opaque, unique digit strings drawn in increasing blocks, shuffled within a block."""

    def __init__(self, rng: np.random.Generator, start: int, max_gap: int) -> None:
        self._rng = rng
        self._next = start
        self._max_gap = max_gap

    def take(self, n: int) -> list[str]:
        if n <= 0:
            return []
        values = self._next + np.cumsum(self._rng.integers(1, self._max_gap, n))
        self._next = int(values[-1])
        self._rng.shuffle(values)
        return [str(v) for v in values.tolist()]

    def one(self) -> str:
        return self.take(1)[0]


class Random:
    """A numpy Generator plus fast scalar draws.

    numpy's per-call overhead dominates single draws, and the generator makes millions of
    them; scalar draws come from a buffer of uniforms, bulk draws go to ``np`` directly.
    Both are deterministic for a given seed.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.np = rng
        self._buf: list[float] = []
        self._pos = 0

    def random(self) -> float:
        if self._pos == len(self._buf):
            self._buf = self.np.random(4096).tolist()
            self._pos = 0
        self._pos += 1
        return self._buf[self._pos - 1]

    def below(self, n: int) -> int:
        """Uniform integer in [0, n)."""
        return int(self.random() * n)

    def between(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi)."""
        return lo + int(self.random() * (hi - lo))

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.random() * len(seq))]

    def weighted(self, cumulative: Sequence[float]) -> int:
        """Index drawn with the weights whose running sums are ``cumulative``."""
        return bisect.bisect_right(cumulative, self.random() * cumulative[-1])
