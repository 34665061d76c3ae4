"""The report registry, and how failed and skipped checks reach summary, CLI and index."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pytest

from ent_audit import cli
from ent_audit.checks import Check, Status, failure_message
from ent_audit.exceptions import ReportNotFound
from ent_audit.reports import registry
from ent_audit.store.store import Store
from ent_audit.synth import write

FAILURE_LINE = re.compile(r"^[a-z_]+ : \d+ constats?, seuil d'échec \d+ atteint$")


def test_every_registered_report_has_its_notebook_and_a_french_title():
    for r in registry.REPORTS:
        assert registry.notebook_path(r).is_file()
        assert r.title and r.title[0].isupper()
    assert {r.name for r in registry.scheduled()} <= set(registry.BY_NAME)


def test_a_name_is_a_registered_report_never_a_path():
    for name in ("../overview", "notebooks/overview.ipynb", "overview.ipynb", "nope"):
        with pytest.raises(ReportNotFound, match="rapport inconnu"):
            registry.get(name)


def test_a_missing_notebook_is_an_error_not_an_empty_run(tmp_path):
    with pytest.raises(ReportNotFound, match="notebook introuvable") as err:
        registry.notebook_path(registry.get("overview"), tmp_path)
    assert err.value.path == str(tmp_path / "overview.ipynb")


def test_report_of_an_unknown_name_exits_2(tmp_path, capsys):
    code = cli.main(["report", "nope", "-p", f"store={tmp_path}", "--outputs", str(tmp_path)])
    assert code == 2
    assert "rapport inconnu 'nope'" in capsys.readouterr().err


def test_a_failure_message_has_one_line_per_failed_blocking_check():
    checks = [
        Check.of("a", "A", False, blocking=True, detail="2 constats, seuil d'échec 1 atteint"),
        Check.of("b", "B", False, detail="9 constats"),  # not blocking
        Check.of("c", "C", None, blocking=True, detail="non contrôlé"),  # skipped
        Check.of("d", "D", True, blocking=True),
    ]
    assert failure_message(checks) == "a : 2 constats, seuil d'échec 1 atteint"
    assert [c.status for c in checks] == [
        Status.FAILED,
        Status.FAILED,
        Status.SKIPPED,
        Status.PASSED,
    ]


@pytest.mark.slow
def test_without_a_perimeter_the_perimeter_checks_are_skipped_and_failures_are_named(tmp_path):
    synth = write(
        tmp_path / "synth",
        seed=4,
        schools=6,
        pupils=400,
        defects={"duplicate_ine": 0.02, "wrong_uai_key": 0.2},
    )
    store = tmp_path / "store"
    Store(store).ingest(synth.archives[:1])
    outputs = tmp_path / "outputs"
    proc = subprocess.run(
        [sys.executable, "-m", "ent_audit.cli", "report", "quality", "-p", f"store={store}",
         "-p", "today='2026-09-15'", "--outputs", str(outputs)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = json.loads(next(outputs.glob("quality/*/summary.json")).read_text())
    status = {c["id"]: c["status"] for c in summary["checks"]}
    assert status["school_outside_perimeter"] == status["person_outside_perimeter"] == "skipped"
    failed = [c for c in summary["checks"] if c["status"] == "failed"]
    assert {c["id"] for c in failed} >= {"ine_duplicate", "uai_invalid"}
    printed = [line.strip() for line in proc.stdout.splitlines()[1:] if " : " in line]
    assert printed and all(FAILURE_LINE.match(line) for line in printed), proc.stdout
    assert {line.split(" : ")[0] for line in printed} == {c["id"] for c in failed}
    index = (outputs / "index.html").read_text(encoding="utf-8")
    assert all(html.escape(line) in index for line in printed)
