"""What an auditor sees: verdict first, French throughout, small cells masked, provenance.

One small-school département (about one pupil a school, some levels missing), its overview
run once through the runner, then read in a real Chromium and as files.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import lxml.html
import nbformat
import pytest
from helpers import (
    CHROMIUM,
    browse,
    check_french_first_screen,
    check_rendered,
    english_words,
    probe,
)

from ent_audit import privacy
from ent_audit.analyses import overview
from ent_audit.reports import runner
from ent_audit.reports.notebook import PLOTLY_MIME
from ent_audit.store.store import Store
from ent_audit.synth import write

pytestmark = pytest.mark.slow
SMALL = 5


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """40 schools, 45 pupils (communes of 2 to 10 pupils), a third of the people missing a
    required attribute (some pupils their level)."""
    tmp = tmp_path_factory.mktemp("pages")
    synth = write(
        tmp / "synth",
        seed=11,
        schools=40,
        pupils=45,
        defects={"missing_required": 0.3, "level_cycle_mismatch": 0.05},
    )
    store = tmp / "store"
    Store(store).ingest(synth.archives[:1])
    outputs = tmp / "outputs"
    run = runner.run(
        "overview",
        {"store": str(store), "max_age_days": 100000},  # small_cell: the default, 5
        outputs=outputs,
    )
    assert run.status == "ok", run.message
    dom = None
    if CHROMIUM:
        dom, _ = check_rendered(run.html, tmp)
    return dict(tmp=tmp, store=store, outputs=outputs, run=run, dom=dom)


def _tables(page: Path) -> list[tuple[list[str], list[list[str]]]]:
    """(headers, rows of cell texts) of every table inside the notebook's outputs."""
    doc = lxml.html.fromstring(page.read_bytes())
    out = []
    for table in doc.xpath('//div[contains(@class, "ea-cells")]//table'):
        heads = [th.text_content().strip() for th in table.xpath(".//thead//th")]
        rows = [
            [td.text_content().strip() for td in tr.xpath("./td")]
            for tr in table.xpath(".//tbody/tr")
        ]
        out.append((heads, rows))
    return out


def _table(page: Path, *heads: str) -> tuple[list[str], list[list[str]]]:
    found = [t for t in _tables(page) if all(h in t[0] for h in heads)]
    assert len(found) == 1, [t[0] for t in _tables(page)]
    return found[0]


def _int(text: str) -> int | None:
    digits = text.replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    return int(digits) if digits.isdigit() else None


# -- first screen, French, charts -----------------------------------------------------------


@pytest.mark.skipif(CHROMIUM is None, reason="chromium absent: `make test` installs it")
def test_the_verdict_is_on_the_first_screen_and_the_page_is_french(small):
    p = check_french_first_screen(small["dom"])
    assert "CONFORME" in p["verdict"]["text"]
    assert p["title"].startswith("Vue d'ensemble du périmètre · état du ")
    assert len(p["figures"]) == 3


@pytest.mark.skipif(CHROMIUM is None, reason="chromium absent: `make test` installs it")
def test_the_level_and_cycle_charts_count_every_pupil_with_integer_cycles(small):
    figures = {f["title"]: f for f in probe(small["dom"])["figures"]}
    pupils = small["run"].summary["figures"]["pupils"]
    levels = figures["Élèves par niveau"]
    assert sum(sum(t["y"]) for t in levels["traces"]) == pupils
    assert "non renseigné" in {x for t in levels["traces"] for x in t["x"]}
    cycles = figures["Élèves par cycle"]
    assert sum(sum(t["y"]) for t in cycles["traces"]) == pupils
    names = {t["name"] for t in cycles["traces"]} | {t["name"] for t in levels["traces"]}
    assert names <= {"cycle 1", "cycle 2", "cycle 3", "non renseigné"}
    assert sum(small["run"].summary["figures"]["pupils_by_level"].values()) == pupils


@pytest.mark.skipif(CHROMIUM is None, reason="chromium absent: `make test` installs it")
def test_a_failed_check_shows_its_line_in_the_banner(small, tmp_path):
    r = runner.run(
        "overview",
        {"store": str(small["store"]), "max_age_days": 1, "today": "2030-01-01"},
        outputs=tmp_path / "out",
    )
    assert (r.status, r.exit_code, r.summary["verdict"]) == ("blocking", 1, "failed")
    dom, _, _, _ = browse(r.html, tmp_path)
    p = check_french_first_screen(dom)
    assert p["verdict"]["text"].startswith("ÉCHEC")
    assert "limite dépassée de 1 jours" in p["verdict"]["text"]


def test_numbers_and_dates_are_french_and_numbers_right_aligned(small):
    page = small["run"].html.read_text(encoding="utf-8")
    heads, rows = _table(small["run"].html, "archive", "date")
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", r[heads.index("date")]) for r in rows)
    assert all(r[heads.index("type")] in ("Complet", "Delta") for r in rows)
    assert "text-align: right" in page and 'lang="fr"' in page
    text = lxml.html.fromstring(page.encode()).xpath('//div[@class="ea-cells"]')[0].text_content()
    assert not english_words(text)


# -- small cells ----------------------------------------------------------------------------


def test_no_small_count_of_people_per_place_is_published_nor_recoverable(small):
    """Per circonscription and per commune: every count of people shown is 0 or at least
    the threshold, a masked cell never equals its total minus the visible cells, and
    ``summary.json`` and the index name no place."""
    page = small["run"].html
    snap = Store(small["store"]).latest()
    truth_circ = overview.by_circonscription(snap)
    truth_comm = overview.by_commune(snap).set_index("commune")
    assert ((truth_comm["pupils"] > 0) & (truth_comm["pupils"] < SMALL)).any()  # the case
    masked_seen = 0
    for (heads, rows), truth, total in (
        (_table(page, "circonscription", "élèves", "personnels"), truth_circ, "Total"),
        (_table(page, "commune", "élèves"), truth_comm, None),
    ):
        key = heads[0]
        for col, true_col in (("élèves", "pupils"), ("personnels", "staff")):
            if col not in heads:
                continue
            i = heads.index(col)
            shown = {r[0]: r[i] for r in rows}
            for place, cell in shown.items():
                value = _int(cell)
                assert value is None or value == 0 or value >= SMALL, (key, place, cell)
                if value is None:
                    assert cell in (f"<{SMALL}", privacy.SECONDARY), cell
            grand = int(truth[true_col].drop(index="Total", errors="ignore").sum())
            visible = sum(v for p, c in shown.items() if p != total and (v := _int(c)) is not None)
            hidden = [p for p, c in shown.items() if p != total and _int(c) is None]
            masked_seen += len(hidden)
            assert len(hidden) != 1
            for place in hidden:
                assert int(truth.loc[place, true_col]) != grand - visible
    assert masked_seen
    summary = (small["run"].run_dir / "summary.json").read_text(encoding="utf-8")
    index = (small["outputs"] / "index.html").read_text(encoding="utf-8")
    for place in [*truth_comm.index, *truth_circ.index.drop("Total")]:
        assert f'"{place}"' not in summary and place not in index
    assert f"inférieur à {SMALL}" in page.read_text(encoding="utf-8")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium absent: `make test` installs it")
def test_the_circonscription_chart_draws_no_masked_count(small):
    chart = next(f for f in probe(small["dom"])["figures"] if "circonscription" in f["title"])
    for trace in chart["traces"]:
        for y, text in zip(trace["y"], trace["text"], strict=True):
            assert y is None or y == 0 or y >= SMALL, (y, text)
            assert y is not None or text in (f"<{SMALL}", privacy.SECONDARY)


# -- lighter outputs, provenance ------------------------------------------------------------


def test_the_stored_notebook_is_light_and_the_page_embeds_plotly_once(small):
    run = small["run"]
    ipynb = run.run_dir / "overview.ipynb"
    assert ipynb.stat().st_size < 1_000_000
    text = ipynb.read_text(encoding="utf-8")
    assert "plotly.js v" not in text and PLOTLY_MIME not in text
    assert run.html.read_text(encoding="utf-8").count("plotly.js v") == 1
    nb = nbformat.read(ipynb, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert any("plotly-graph-div" in str(o.get("data", {})) for o in outputs)


def test_the_footer_and_manifest_trace_every_input_parameter_and_output(small):
    run = small["run"]
    m = json.loads((run.run_dir / "manifest.json").read_text(encoding="utf-8"))
    footer = lxml.html.fromstring(run.html.read_bytes()).xpath("//footer")[0].text_content()
    for i in m["inputs"]:
        assert i["sha256"][:12] in footer
    today = m["parameters_used"]["today"]  # resolved from ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", today) and m["parameters"].get("today") is None
    assert m["parameters_used"]["max_age_days"] == 100000
    assert m["parameters_used"]["small_cell"] == SMALL
    assert "résolu par le rapport" in footer and "défaut" in footer and "fourni" in footer
    if "commit" in m["code"]:
        assert m["code"]["commit"][:12] in footer
    assert m["verdict"] == "compliant" and "durée" in footer
    outputs = {o["path"]: o for o in m["outputs"]}
    assert set(outputs) == {"overview.html", "overview.ipynb", "summary.json"}
    for name, o in outputs.items():
        assert hashlib.sha256((run.run_dir / name).read_bytes()).hexdigest() == o["sha256"]
    links = lxml.html.fromstring(run.html.read_bytes()).xpath("//footer//a/@href")
    assert "manifest.json" in links


# -- index, keep, earlier runs --------------------------------------------------------------


def _copies(small, tmp_path, n: int) -> Path:
    """``n`` copies of the overview run, as if run on successive nights."""
    outputs = tmp_path / "outputs"
    for i in range(n):
        shutil.copytree(
            small["run"].run_dir, outputs / "overview" / f"2026010{i + 1}T000000000000Z"
        )
    (outputs / "overview" / "notes").mkdir()  # not a run: never touched
    return outputs


def test_keep_removes_only_the_oldest_runs(small, tmp_path):
    outputs = _copies(small, tmp_path, 4)
    removed = runner.prune(outputs, "overview", keep=2)
    assert [d.name[:8] for d in removed] == ["20260101", "20260102"]
    left = sorted(d.name for d in (outputs / "overview").iterdir())
    assert left == ["20260103T000000000000Z", "20260104T000000000000Z", "notes"]
    assert [s["run"][-22:-14] for s in runner.earlier_summaries(outputs, "overview")] == [
        "20260104",
        "20260103",
    ]


def test_keep_on_the_command_line(small, tmp_path, capsys):
    from ent_audit import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", "overview", "--keep", "0", "--outputs", str(tmp_path)])
    assert exit_.value.code == 2
    assert "attendu un entier >= 1" in capsys.readouterr().err


def test_the_index_shows_each_reports_latest_run_first_then_the_older_ones(small, tmp_path):
    outputs = _copies(small, tmp_path, 3)
    doc = lxml.html.fromstring(runner.write_index(outputs).read_bytes())
    assert doc.get("lang") == "fr"
    tables = doc.xpath("//table")
    latest = tables[0].xpath(".//tbody/tr")
    assert len(latest) == 1
    cells = [td.text_content() for td in latest[0].xpath("./td")]
    assert cells[0] == "Vue d'ensemble du périmètre" and cells[1] == "CONFORME"
    pupils = small["run"].summary["figures"]["pupils"]
    assert f"élèves : {pupils}" in cells[4]
    hrefs = latest[0].xpath(".//a/@href")
    assert "overview/20260103T000000000000Z/overview.html" in hrefs
    assert "overview/20260103T000000000000Z/manifest.json" in hrefs
    assert len(tables[1].xpath(".//tbody/tr")) == 2  # older runs, grouped under the report
    assert not english_words(doc.text_content())
    assert "pupils" not in doc.text_content() and "state_date" not in doc.text_content()
