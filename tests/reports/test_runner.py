"""The report runner end to end: a generated store, real kernels, real Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import lxml.html
import nbformat
import pytest
from helpers import CHROMIUM, check_rendered, leaks, page_text, personal_values

from ent_audit.reports import runner as report
from ent_audit.reports.page import verdict_label
from ent_audit.store.store import Store
from ent_audit.synth import write

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A store with a Complet and its Delta, and three runs of ``overview`` on it."""
    tmp = tmp_path_factory.mktemp("report")
    synth = write(tmp / "synth", seed=5, schools=6, pupils=300)
    store = tmp / "store"
    Store(store).ingest(synth.archives[:2])
    params = tmp / "params.yaml"
    params.write_text(f"store: {store}\nmax_age_days: 100000\ntoday: '2026-11-28'\n")
    outputs = tmp / "outputs"
    good = report.run(
        "overview",
        {"store": str(store), "max_age_days": 100000, "today": "2026-11-28"},
        param_files=[params],
        outputs=outputs,
    )
    stale = report.run(
        "overview",
        {"store": str(store), "max_age_days": 10, "today": "2026-11-28"},
        outputs=outputs,
    )
    return dict(synth=synth, store=store, outputs=outputs, good=good, stale=stale, params=params)


def test_a_good_run_writes_notebook_html_summary_and_manifest(runs):
    r = runs["good"]
    assert (r.status, r.exit_code) == ("ok", 0), r.message
    names = sorted(p.name for p in r.run_dir.iterdir())
    assert names == ["manifest.json", "overview.html", "overview.ipynb", "summary.json"]
    assert json.loads((r.run_dir / "summary.json").read_text()) == r.summary


def test_summary_figures_match_the_generators_truth(runs):
    """After Complet + Delta the state equals the generator's second Complet."""
    ext = runs["synth"].perimeter.extractions[2]
    figures = runs["good"].summary["figures"]
    pupils = ext.records["Eleve"]
    staff = ext.records["PersEducNat"]
    schools = [
        r for r in ext.records["EtabEducNat"] if r.attrs["ENTStructureTypeStruct"] == ["ECOLE"]
    ]
    assert figures["schools"] == len(schools) == 6
    assert figures["pupils"] == len(pupils)
    assert figures["guardians"] == len(ext.records["PersRelEleve"])
    assert figures["teachers"] == sum(
        r.attrs["ENTPersonCategorieEnseignant"] == ["O"] for r in staff
    )
    assert figures["other_staff"] == len(staff) - figures["teachers"]
    assert figures["pupils_by_level"] == dict(Counter(r.attrs["ENTEleveNiveau"][0] for r in pupils))
    assert figures["state_date"] == str(runs["synth"].perimeter.extractions[1].name.date)
    assert figures["extractions_ingested"] == 2


def test_manifest_lists_every_input_with_its_sha256_and_never_the_key(runs):
    m = json.loads((runs["good"].run_dir / "manifest.json").read_text())
    paths = [Path(i["path"]) for i in m["inputs"]]
    assert paths[0] == ROOT / "notebooks" / "overview.ipynb" and paths[1] == runs["params"]
    assert any(p.name == "students.parquet" for p in paths)
    assert any(p.name == "presence.parquet" for p in paths)
    assert not any(p.name == "key" or "logs" in p.parts for p in paths)
    for i in m["inputs"]:
        assert hashlib.sha256(Path(i["path"]).read_bytes()).hexdigest() == i["sha256"]
    assert m["parameters"]["max_age_days"] == 100000 and m["exit_code"] == 0
    assert {"python", "pandas", "papermill", "nbconvert", "plotly", "ent-audit"} <= set(
        m["versions"]
    )
    assert m["started"] <= m["ended"]


def test_a_failed_blocking_check_exits_1_and_still_renders(runs):
    r = runs["stale"]
    assert (r.status, r.exit_code) == ("blocking", 1)
    assert r.message.startswith("freshness : état du ") and r.html.exists()
    assert r.message.endswith("limite dépassée de 10 jours")
    m = json.loads((r.run_dir / "manifest.json").read_text())
    assert (m["status"], m["exit_code"]) == ("blocking", 1)


def test_unknown_or_mistyped_parameters_and_a_missing_store_exit_2_before_running(runs, tmp_path):
    store = str(runs["store"])
    for params, words in (
        ({"store": store, "max_age_dayz": 3}, "'max_age_dayz': inconnu"),
        ({"store": store, "max_age_days": "trois"}, "attendu int"),
        ({"store": str(tmp_path / "nope")}, "n'est pas un store"),
    ):
        r = report.run("overview", params, outputs=tmp_path / "out")
        assert (r.status, r.exit_code, r.run_dir) == ("error", 2, None)
        assert words in r.message
    assert not (tmp_path / "out").exists()


def test_the_cli_exit_codes(runs, tmp_path, capsys):
    from ent_audit import cli

    out = str(tmp_path / "o")
    base = ["report", "overview", "-p", str(runs["params"]), "--outputs", out]
    assert cli.main(base) == 0
    assert cli.main([*base, "-p", "max_age_days=1"]) == 1
    assert cli.main([*base, "-p", "couleur=bleu"]) == 2
    assert "paramètre 'couleur': inconnu" in capsys.readouterr().err
    assert cli.main(["report", "inexistant", "--outputs", out]) == 2


def test_index_lists_every_run_with_verdict_and_french_headline(runs):
    page = (runs["outputs"] / "index.html").read_text()
    assert page.count("<tr class=") == 2
    assert "ÉCHEC" in page and "CONFORME" in page  # the stale run is the latest
    assert page.index("ÉCHEC") < page.index("CONFORME")
    assert f"élèves : {runs['good'].summary['figures']['pupils']}" in page


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1, path.name
        assert nb.metadata["kernelspec"]["name"] == report.KERNEL_NAME


def test_plain_papermill_runs_the_same_notebook(runs, tmp_path):
    out = tmp_path / "plain.ipynb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(ROOT / "notebooks/overview.ipynb"),
            str(out),
            "-f",
            str(runs["params"]),
            "--no-progress-bar",
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    summary = report._summary(nbformat.read(out, as_version=4))
    assert summary["figures"] == runs["good"].summary["figures"]


# -- the rendered page, in a real browser ----------------------------------------------------


@pytest.mark.skipif(CHROMIUM is None, reason="chromium absent: `make test` installs it")
def test_rendered_html_draws_every_figure_offline_without_errors_or_code(runs, tmp_path):
    _, plots = check_rendered(runs["good"].html, tmp_path)
    assert len(plots) == 3


def test_no_rendered_page_shows_a_name_birth_date_mail_or_phone(runs):
    """Scan every HTML page the suite rendered for the synthetic people's personal data."""
    values = personal_values(runs["synth"].perimeter)
    pages = sorted(runs["outputs"].rglob("*.html"))
    assert len(pages) >= 3 and len(values) > 1000
    for page in pages:
        found = leaks(page_text(page), values)
        assert not found, (page.name, sorted(found)[:5])


# -- the CLI's verdict line -------------------------------------------------------------------


def test_the_cli_prints_each_page_verdict_as_its_summary_and_banner_say(runs, tmp_path):
    """``ent-audit report NAME`` run as a scheduler runs it: the word it prints is the page's
    verdict (summary.json and the banner), for a run that passes and one that fails."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    for extra, code, word in (([], 0, "CONFORME"), (["-p", "max_age_days=1"], 1, "ÉCHEC")):
        out = tmp_path / f"out{code}"
        proc = subprocess.run(
            [sys.executable, "-m", "ent_audit.cli", "report", "overview", "-p",
             str(runs["params"]), *extra, "--outputs", str(out)],
            capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip
        assert proc.returncode == code, proc.stdout + proc.stderr
        line = proc.stdout.splitlines()[0]
        printed, _, html = line.removeprefix("overview: ").partition(" — ")
        assert printed == word, line
        summary = json.loads((Path(html).parent / "summary.json").read_text(encoding="utf-8"))
        assert verdict_label(summary["verdict"]) == word
        page = lxml.html.parse(html).getroot()
        (banner,) = page.find_class("ea-verdict-label")
        assert banner.text_content().strip() == word
