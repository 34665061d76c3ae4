"""Hardening beyond the hostile table: pickling, worker processes, the key, broken pipes, a
full disk, verification, report parameters."""

from __future__ import annotations

import inspect
import json
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_store import make_base

from ent_audit import exceptions
from ent_audit.reports import registry, runner
from ent_audit.store import pseudonym
from ent_audit.store.store import Store
from ent_audit.synth import write

ROOT = Path(__file__).parents[2]


def _instances():
    """One instance of every exception class, built from its own signature."""
    values = {"line": 3, "column": 4, "port": 22, "committed": ["a.tar.gz"], "known": ["x"]}
    for name, cls in inspect.getmembers(exceptions, inspect.isclass):
        if not issubclass(cls, exceptions.EntAuditError):
            continue
        if "__init__" not in {k for c in cls.__mro__ if c is not Exception for k in vars(c)}:
            yield name, cls("message")
            continue
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        args = [
            values.get(p.name, f"{p.name}-value")
            for p in params
            if p.kind == p.POSITIONAL_OR_KEYWORD and p.default is p.empty
        ]
        yield name, cls(*args)


@pytest.mark.parametrize(
    "name, err", list(_instances()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_exception_pickles_with_its_message_and_attributes(name, err):
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and str(back) == str(err)
    assert back.__dict__ == err.__dict__


WATCHED_POOL = """
import os, sys, time
from ent_audit.aaf.snapshot import worker_pool
with worker_pool(2) as pool:
    futures = [pool.submit(time.sleep, 300) for _ in range(2)]
    time.sleep(1)
    print("ready", flush=True)
    time.sleep(300)
"""


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_reader_workers_end_when_the_main_process_is_killed():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WATCHED_POOL], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "ready"
    tree = _children(proc.pid)
    tree += [c for p in list(tree) for c in _children(p)]
    assert len(tree) >= 3  # the forkserver and two workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in tree):
        assert time.monotonic() < deadline, [p for p in tree if Path(f"/proc/{p}").exists()]
        time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _load_key(path: str, queue) -> None:
    queue.put(pseudonym.load_key(path).hex())


def test_the_key_is_created_atomically_and_every_process_reads_the_same(tmp_path, monkeypatch):
    monkeypatch.delenv("ENT_AUDIT_KEY", raising=False)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_load_key, args=(str(tmp_path / "key"), queue)) for _ in range(8)]
    for p in procs:
        p.start()
    keys = {queue.get(timeout=30) for _ in procs}
    for p in procs:
        p.join()
    assert len(keys) == 1 and len(keys.pop()) == 64
    assert oct((tmp_path / "key").stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["key"]  # no temporary file left


def test_status_into_a_closed_pipe_ends_quietly(tmp_path):
    store = make_base(tmp_path)
    read, write_end = os.pipe()
    os.close(read)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "ent_audit.cli", "status", "--store", str(store.path)],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == ""


def test_verify_finds_a_changed_file_and_a_missing_one(tmp_path):
    store = make_base(tmp_path)
    assert store.verify().ok
    state = store.current()
    (state / "snapshot" / "students.parquet").write_bytes(b"x")
    (state / "snapshot" / "files.parquet").unlink()
    problems = store.verify().problems
    assert any("students.parquet: SHA-256" in p for p in problems)
    assert any("files.parquet: absent" in p for p in problems)


def test_yaml_dates_are_accepted_where_a_date_is_expected(tmp_path):
    params, _ = runner.read_params(["today=2026-10-20", "max_age_days=3"])
    path = registry.notebook_path(registry.get("overview"))
    kept = runner.check_params("overview", path, params)
    assert kept["today"] == "2026-10-20"


def test_a_full_disk_is_said_and_the_archives_before_keep_their_result(tmp_path):
    res = write(tmp_path / "synth", seed=5, schools=4, pupils=150)
    disk = tmp_path / "disk"
    disk.mkdir()
    size = 2 << 20
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root?)")
    try:
        store = disk / "store"
        first = Store(store).ingest([res.archives[0]])
        assert first[0].status == "ingested"
        used = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
        filler = disk / "filler"
        filler.write_bytes(b"\0" * max(0, size - used - 3 * used // 2 - 64 * 1024))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ent_audit.cli",
                "ingest",
                *map(str, res.archives[1:]),
                "--store",
                str(store),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.splitlines()
        assert "disque plein" in line and "Traceback" not in proc.stderr
        filler.unlink()
        s = Store(store)
        assert s.verify().ok
        [log] = [p for p in (store / "logs").glob("ingest-*.json") if "error" in p.read_text()]
        entry = json.loads(log.read_text())
        assert entry["committed"] == list(s.history()["archive"][1:])
        assert not list(store.glob("tmp/*"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)
        shutil.rmtree(disk, ignore_errors=True)
