"""Report kernels and the explorer run on allocators that give freed memory back."""

from __future__ import annotations

import pyarrow as pa

from ent_audit.reports import memory, notebook


def test_a_report_kernel_allocates_arrow_buffers_from_the_system_pool():
    before = pa.default_memory_pool()
    try:
        notebook.setup()
        assert pa.default_memory_pool().backend_name == "system"
        kept = pa.array(["a", "b"] * 1000)  # allocated now, freed by the pool that made it
        memory.lean_allocators()  # idempotent
        memory.lean_allocators(unmap_large=False)
        assert pa.default_memory_pool().backend_name == "system"
        assert kept.to_pylist()[:2] == ["a", "b"]
    finally:
        pa.set_memory_pool(before)
