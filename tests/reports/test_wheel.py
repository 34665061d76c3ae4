"""A built wheel, installed outside the checkout, runs every report as the checkout does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from ent_audit.reports import registry
from ent_audit.store.store import Store
from ent_audit.synth import write

ROOT = Path(__file__).parents[2]


def _env() -> dict[str, str]:
    """The environment without anything pointing at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.mark.slow
def test_the_installed_wheel_runs_report_all_like_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(dist), str(ROOT)],
        check=True, env=_env(), cwd=tmp_path,
    )  # fmt: skip
    wheel = next(dist.glob("ent_audit-*.whl"))

    # A fresh virtualenv outside the checkout. Its dependencies are this environment's
    # (a path entry, which does not run this environment's .pth files, so the checkout's
    # editable install is not seen); ent-audit itself comes only from the wheel.
    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, env=_env(),
    ).stdout.strip()  # fmt: skip
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheel)],
        check=True, env=_env(), cwd=tmp_path,
    )  # fmt: skip
    where = subprocess.run(
        [python, "-c", "import ent_audit; print(ent_audit.__file__)"],
        check=True, capture_output=True, text=True, env=_env(), cwd=tmp_path,
    ).stdout  # fmt: skip
    assert where.startswith(str(fresh)), where

    synth = write(tmp_path / "synth", seed=2, schools=5, pupils=250)
    store = tmp_path / "store"
    Store(store).ingest(synth.archives[:1])
    args = ["report", "all", "-p", f"store={store}", "-p", "today='2026-09-20'"]

    # The dependencies' data files (nbconvert's base templates) are this environment's too.
    deps_data = {"JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}

    def run(executable: Path, outputs: Path, cwd: Path) -> tuple[int, dict]:
        proc = subprocess.run(
            [executable, *args, "--outputs", str(outputs)],
            capture_output=True, text=True, env={**_env(), **deps_data}, cwd=cwd, timeout=600,
        )  # fmt: skip
        assert "Traceback" not in proc.stderr, proc.stderr
        published = {
            m.parent.parent.name: json.loads(m.read_text())["status"]
            for m in outputs.glob("*/*/manifest.json")
        }
        return proc.returncode, published

    installed = run(fresh / "bin" / "ent-audit", tmp_path / "out-wheel", tmp_path)
    checkout = run(Path(sys.executable).parent / "ent-audit", tmp_path / "out-checkout", ROOT)
    assert installed == checkout
    assert set(installed[1]) == {r.name for r in registry.scheduled()}
    assert all(status in ("ok", "blocking") for status in installed[1].values()), installed
