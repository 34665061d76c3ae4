"""Every process that holds data (a command, a report's kernel, the explorer) runs on
allocators that give freed memory back: its peak follows its live data."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa

from ent_audit import memory
from ent_audit.reports import notebook


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


def test_a_command_runs_on_the_system_pool(tmp_path):
    """``ent-audit`` sets the allocators before its command runs (a Delta's peak on an
    académie: 470 MB on Arrow's default pool, 307 MB so)."""
    code = (
        "import sys, pyarrow as pa\n"
        "from ent_audit import cli\n"
        "assert pa.default_memory_pool().backend_name != 'system'\n"
        "cli.main(['status', '--store', sys.argv[1]])\n"
        "print(pa.default_memory_pool().backend_name)\n"
    )
    # Arrow's C++ default as a process started without ent-audit's choice has it (this
    # process imported ent_audit, which put its choice into the environment)
    env = {k: v for k, v in os.environ.items() if k != memory.ARROW_POOL_ENV}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "system"


def test_the_explorer_keeps_freed_memory_for_reuse_after_its_bounded_opening():
    """The explorer opens under :func:`memory.lean_allocators`, then switches schools with
    large temporaries kept in the heap (:func:`memory.keep_for_reuse`): buffers made before
    stay valid and both calls can be repeated."""
    before = pa.default_memory_pool()
    try:
        memory.lean_allocators()
        kept = pa.array(["a", "b"] * 100_000)
        memory.keep_for_reuse()
        memory.keep_for_reuse()
        assert pa.default_memory_pool().backend_name == "system"
        big = pa.array(list(range(1_000_000)))  # served under the raised threshold
        assert kept.to_pylist()[:2] == ["a", "b"] and big[-1].as_py() == 999_999
    finally:
        pa.set_memory_pool(before)


def test_trimming_finds_glibc_without_starting_a_process(monkeypatch):
    """``ctypes.util.find_library`` runs ``ldconfig`` in a forked child, resident as large as
    its parent for an instant (the audit trims the heap after each check): the C library is
    the process's own, found by its symbols, once."""
    import platform
    import subprocess as sp

    def no_child(*args, **kwargs):
        raise AssertionError("a process was started")

    monkeypatch.setattr(os, "fork", no_child)
    monkeypatch.setattr(sp, "Popen", no_child)
    memory._libc.cache_clear()
    for _ in range(3):
        memory.trim_heap()
    assert memory._libc.cache_info().misses == 1
    if platform.libc_ver()[0] == "glibc":
        assert memory._libc() is not None  # malloc_trim really runs


def test_arrow_allocates_from_the_system_unless_the_environment_chose():
    """Arrow's own C++ buffers (the Parquet reader's and writer's) come from the system's
    allocator once ``ent_audit`` is imported first (mimalloc kept 90 MB of freed pages after a
    Complet's staged frames were written); a choice in the environment wins."""
    code = "import ent_audit, pyarrow as pa\nprint(pa.default_memory_pool().backend_name)\n"
    env = {k: v for k, v in os.environ.items() if k != memory.ARROW_POOL_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "system"
    env[memory.ARROW_POOL_ENV] = "mimalloc"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "mimalloc"
