"""Allocators that give freed memory back to the system, for every process of ent-audit that
holds data: each ``ent-audit`` command (:func:`ent_audit.cli.main`), a report's papermill
kernel, the explorer's.

Measured on an académie (``benchmarks/run_all.py``): after a frame is built from a Parquet or
CSV read, its intermediate buffers are freed but stay resident. Arrow's default pool
(mimalloc) keeps its pages; glibc's ``malloc`` raises its mmap threshold each time a large
block is freed (up to 32 MB), so later large buffers come from a heap it rarely trims. Each
step then starts from the previous one's high-water mark, and the peaks add up: 250 to 350 MB
of an activity report's kernel held nothing live. With Arrow on the system allocator and a
fixed mmap threshold, a freed buffer of 256 KiB or more is unmapped at once.

A 1 % Delta of the académie, ingested: 470 MB peak with Arrow's mimalloc, 307 MB with these
(the slice decodes the state batch by batch; each freed batch stayed resident); a Complet's
ingestion, whose reader workers keep their own allocators: 932 → 785 MB.
"""

from __future__ import annotations

import ctypes
import functools
import os

ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
"""Arrow's C++ default allocator, read once, when Arrow first allocates."""


def arrow_on_system() -> None:
    """Arrow's C++ default allocator on the system's, for this process and its children
    (reader workers, report kernels), unless the environment chose another; called by
    ``import ent_audit`` before pyarrow is loaded (later it changes nothing here).

    :func:`lean_allocators` sets pyarrow's default pool, but Arrow's C++ code that takes no
    pool from Python (the Parquet reader's and writer's own buffers) allocates from its
    default, mimalloc, which keeps the pages it freed: after an académie Complet's staged
    frames were written, 90 MB of mimalloc pages held nothing and every later phase started
    that much higher (its next Complet: 589 → 432 MB with the system's)."""
    os.environ.setdefault(ARROW_POOL_ENV, "system")


MMAP_THRESHOLD = 256 << 10
"""Blocks from this size are mapped apart and returned to the system when freed."""
_M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter (``<malloc.h>``); setting it also stops its dynamic raising."""
_M_TRIM_THRESHOLD = -1
REUSE_THRESHOLD = 32 << 20
"""glibc's own ceiling for its dynamic mmap threshold (64-bit): where it ends up in a process
that has freed large blocks, the state :func:`keep_for_reuse` restores."""


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, or None elsewhere (musl, macOS: their allocators are left as they are): the C
    library this process already runs on, by its own symbols (``CDLL(None)``), not looked up
    by ``ctypes.util.find_library``, which runs ``ldconfig`` in a forked child (for an
    instant as much resident memory as its parent) and whose import alone takes 70 ms."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version"):
        return None
    return libc


def lean_allocators(*, unmap_large: bool = True) -> None:
    """Arrow on the system allocator and, with ``unmap_large``, glibc's mmap threshold fixed
    (elsewhere than glibc, Arrow's pool only). Idempotent; buffers already allocated stay
    valid. The fixed threshold costs page faults on every large temporary: the explorer's
    school switch went from 0.31 to 0.44 s with it (peak 958 → 860 MB), so the interactive
    explorer leaves it out; a scheduled report does not mind a second."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())
    if not unmap_large:
        return
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_unused() -> None:
    """Give back to the system what Arrow's memory pool keeps after a read: the Parquet
    buffers are freed once converted to pandas, but the pool may hold their pages (hundreds
    of MB on an académie) where DuckDB or pandas cannot reuse them."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def trim_heap() -> None:
    """:func:`release_unused`, and glibc's heaps trimmed (``malloc_trim``): threads that
    decoded and encoded many small buffers (a Complet's parts, a few tens of KB each, below
    the mmap threshold) leave their freed pages in their own arenas otherwise (~120 MB on an
    académie). Elsewhere than glibc, Arrow's pool only."""
    release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def keep_for_reuse() -> None:
    """After a bounded phase (:func:`lean_allocators`), for a process that then works in
    small repeated steps (the explorer's school switch): what was freed goes back to the
    system now (:func:`trim_heap`), and later large temporaries are served from and kept in
    the heap as glibc's dynamic threshold would at its ceiling (mmap from
    :data:`REUSE_THRESHOLD`, trimmed beyond twice that), without a page fault per temporary.

    The explorer opens with the audit and the lean tables under the fixed threshold (on an
    académie the audit's freed blocks otherwise stayed resident: +290 MB after it, 120 live),
    then switches schools this way."""
    trim_heap()
    libc = _libc()
    if libc is None:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, REUSE_THRESHOLD)
    libc.mallopt(_M_TRIM_THRESHOLD, 2 * REUSE_THRESHOLD)
