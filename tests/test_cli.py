"""The command line mirrors the library; every command is documented in the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import document, pupil, record

from ent_audit import cli
from ent_audit.store.store import Store
from ent_audit.synth import write

README = Path(__file__).parents[1] / "README.md"
COMMANDS = sorted(cli.parser()._subparsers._group_actions[0].choices)


@pytest.mark.slow
def test_every_command_has_help_and_is_in_the_readme():
    readme = README.read_text(encoding="utf-8")
    assert COMMANDS
    for name in COMMANDS:
        out = subprocess.run(
            [sys.executable, "-m", "ent_audit.cli", name, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.startswith(f"usage: ent-audit {name}")
        assert re.search(rf"ent-audit {name}\b", readme), f"{name} missing from README.md"


def test_load_prints_counts_and_reader_findings(tmp_path, capsys):
    d = tmp_path / "x"
    d.mkdir()
    (d / "ENT1D_T_Complet_20240916_Eleve_0000.xml").write_bytes(
        document([record("Eleve", "9", pupil("1"))])
    )
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


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--schools", "0"], "'schools'"),
        (["--schools", "3", "--pupils", "2"], "'pupils'"),
        (["--seed", "-5"], "'seed'"),
        (["--all-defects", "2"], "'defects': taux 2 hors de [0, 1]"),
        (["--perimeter", "../evade"], "'perimeter'"),
    ],
)
def test_synth_refuses_a_bad_argument_in_one_line_writing_nothing(
    tmp_path, capsys, arguments, named
):
    """A tired operator's value: exit 2, one line naming the parameter (never « erreur
    inattendue »), and no file written, in the output folder or beside it."""
    out = tmp_path / "sortie"
    assert cli.main(["synth", *arguments, str(out)]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and "inattendue" not in err[0], err
    assert err[0].startswith("erreur: générateur synthétique: paramètre ")
    assert list(tmp_path.rglob("*")) == []


def test_synth_writes_three_archives_and_the_truth(tmp_path, capsys):
    out = tmp_path / "perimetre"
    assert (
        cli.main(
            [
                "synth",
                str(out),
                "--schools",
                "3",
                "--pupils",
                "60",
                "--defect",
                "duplicate_ine=0.05",
            ]
        )
        == cli.EXIT_OK
    )
    names = sorted(p.name for p in out.glob("*.tar.gz"))
    assert names == [
        "ENT1D_DEMO31_Complet_20260914.tar.gz",
        "ENT1D_DEMO31_Complet_20261012.tar.gz",
        "ENT1D_DEMO31_Delta_20261005.tar.gz",
    ]
    assert (out / "truth.json").exists()
    assert cli.main(["synth", str(out), "--defect", "no_such_defect"]) == cli.EXIT_BAD_INPUT
    assert "défaut inconnu 'no_such_defect'" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_generates_loads_and_prints_counts_per_circonscription(tmp_path, capsys):
    store = tmp_path / "store"
    argv = [
        "demo",
        "--out",
        str(tmp_path / "demo"),
        "--store",
        str(store),
        "--schools",
        "4",
        "--pupils",
        "200",
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Département synthétique généré" in out
    assert re.search(r"élèves \(Eleve\)\s+200\n", out)
    assert re.search(r"Total\s+4\s+200\s+\d+", out)
    assert "ENT1D_DEMO31_Delta_20261005.tar.gz: ingérée" in out
    assert cli.main(argv) == 0  # a second demo rebuilds its own store
    assert (
        cli.main(
            [
                "ingest",
                str(tmp_path / "demo" / "ENT1D_DEMO31_Complet_20261012.tar.gz"),
                "--store",
                str(store),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        cli.main(
            [
                "demo",
                "--out",
                str(tmp_path / "other"),
                "--store",
                str(store),
                "--perimeter",
                "ENT1D_AUTRE",
                "--schools",
                "4",
                "--pupils",
                "200",
            ]
        )
        == 2
    )
    assert "n'est pas un store de démonstration" in capsys.readouterr().err
    assert len(Store(store).history()) == 3


def test_ingest_and_status(tmp_path, capsys):
    res = write(tmp_path / "synth", schools=3, pupils=90)
    store = str(tmp_path / "store")
    assert cli.main(["ingest", *map(str, res.archives[:2]), "--store", store]) == cli.EXIT_OK
    assert cli.main(["ingest", str(res.archives[0]), "--store", store]) == cli.EXIT_OK
    assert "déjà ingérée" in capsys.readouterr().out
    assert cli.main(["status", "--store", store]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "état du 2026-10-05" in out and "ENT1D_DEMO31_Delta_20261005.tar.gz" in out
    bad = tmp_path / "ENT1D_DEMO31_Complet_20270101.tar.gz"
    bad.write_bytes(b"not a gzip")
    assert cli.main(["ingest", str(bad), "--store", store]) == cli.EXIT_BAD_INPUT
    assert "REFUSÉE" in capsys.readouterr().err
