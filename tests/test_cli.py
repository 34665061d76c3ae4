"""The command line mirrors the library; every command is documented in the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ent_audit import cli

from conftest import document, pupil, record

README = Path(__file__).parents[1] / "README.md"
COMMANDS = sorted(cli.parser()._subparsers._group_actions[0].choices)  # noqa: SLF001


def test_every_command_has_help_and_is_in_the_readme():
    readme = README.read_text(encoding="utf-8")
    assert COMMANDS
    for name in COMMANDS:
        out = subprocess.run([sys.executable, "-m", "ent_audit.cli", name, "--help"],
                             capture_output=True, text=True, check=True).stdout
        assert out.startswith(f"usage: ent-audit {name}")
        assert re.search(rf"ent-audit {name}\b", readme), f"{name} missing from README.md"


def test_load_prints_counts_and_reader_findings(tmp_path, capsys):
    d = tmp_path / "x"
    d.mkdir()
    (d / "ENT1D_T_Complet_20240916_Eleve_0000.xml").write_bytes(
        document([record("Eleve", "9", pupil("1"))]))
    assert cli.main(["load", str(d)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "Extraction ENT1D_T complete 2024-09-16: 1 fichier(s)" in out
    assert re.search(r"élèves \(Eleve\)\s+1", out) and re.search(r"id_mismatch\s+1", out)


def test_bad_input_exits_2_with_a_message_and_debug_reraises(tmp_path, capsys):
    bad = tmp_path / "ENT1D_T_Complet_20240916_Eleve_0000.xml"
    bad.write_bytes(b"<ficAlimMENESR><addRequest></ficAlimMENESR>")
    assert cli.main(["load", str(bad)]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"erreur: {bad}:1:")
    with pytest.raises(Exception, match="mismatch"):
        cli.main(["--debug", "load", str(bad)])
