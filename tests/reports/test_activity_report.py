"""The activity report end to end: runner, summary against the truth, Chromium, privacy."""

from __future__ import annotations

import json

import pytest
from activity_helpers import END, START, build
from helpers import CHROMIUM, check_rendered, leaks, page_text, personal_values

from ent_audit.reports import runner as report
from ent_audit.synth import activity as synth

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("activity-report")
    g = build(tmp)
    files = g["files"]
    base = {
        "store": str(g["store"]),
        "accounts": str(files.accounts),
        "daily": str(files.daily),
        "period_start": str(START),
        "period_end": str(END),
    }
    outputs = tmp / "outputs"
    g["good"] = report.run("activity", base, outputs=outputs)
    g["raw"] = report.run(
        "activity",
        {**base, "events": str(files.events_jsonl[1]), "columns": {"events": synth.JSONL_MAPPING},
         "period_start": "", "period_end": ""},
        outputs=outputs,
    )  # fmt: skip
    g["outputs"] = outputs
    g["truth"] = json.loads(files.truth.read_text())
    return g


def test_summary_equals_the_generators_truth(runs):
    r, truth = runs["good"], runs["truth"]
    assert (r.status, r.exit_code) == ("ok", 0), r.message
    f = r.summary["figures"]
    for k in ("schools_total", "schools_open", "visits", "unique_visitors", "connections"):
        assert f[k] == truth[k], k
    assert f["accounts"] == truth["accounts"]
    assert f["by_circonscription"] == {
        c: {k: t[k] for k in ("schools_total", "schools_open", "visits", "unique_visitors",
                              "connections")}
        for c, t in truth["by_circonscription"].items()
    }  # fmt: skip
    assert f["schools_stopped"] == len(truth["stopped_schools"])
    assert f["malformed_rows"] == 4 and f["unknown"]["events_unknown_user"] == 20
    checks = {c["id"]: c["status"] for c in r.summary["checks"]}
    assert checks["inputs_readable"] == "failed" and checks["sources_agree_1"] == "passed"


def test_a_raw_log_is_converted_into_the_run_folder_only(runs):
    r = runs["raw"]
    assert (r.status, r.exit_code) == ("ok", 0), r.message
    assert list((r.run_dir / "activity" / "events").glob("month=*/*.parquet"))
    months = {p.parent.name for p in (runs["store"] / "activity" / "events").glob("*/*")}
    assert len(months) == 4  # the store is unchanged
    assert r.summary["figures"]["period_start"].startswith("2026-10")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium absent: `make test` installs it")
def test_the_page_draws_every_figure_offline_in_french_with_the_verdict_first(runs, tmp_path):
    dom, plots = check_rendered(runs["good"].html, tmp_path)
    assert len(plots) == 6
    text = dom.text_content()
    first = dom.xpath("//h2")[0]
    t = runs["truth"]
    assert first.text_content().strip("¶ ") == "Ouverture de l'ENT"  # the banner alone is a verdict
    said = first.xpath("following::p[1]")[0].text_content()
    n = lambda x: f"{x:,}".replace(",", "\u202f")  # noqa: E731
    opened, total = n(t["schools_open"]), n(t["schools_total"])
    assert said.startswith(f"{opened} écoles sur {total} ont leur ENT"), said
    for words in ("Pour l'équipe de formation", "Écoles dont l'activité s'est arrêtée",
                  "Visites par jour de la semaine et par heure", "Définitions",
                  "nombre de champs incorrect"):  # fmt: skip
        assert words in text, words


def test_no_page_or_file_shows_personal_data_or_a_jointure(runs):
    values = personal_values(runs["synth"].perimeter)
    jointures = set(runs["files"].frames["events"]["user"].astype(str))
    jointures = {j for j in jointures if len(j) >= 7}
    for page in sorted(runs["outputs"].rglob("*.html")):
        text = page_text(page)
        assert not leaks(text, values), page.name
        assert not {j for j in jointures if f">{j}<" in text or f'"{j}"' in text}, page.name
    for summary in runs["outputs"].rglob("summary.json"):
        text = summary.read_text()
        assert not {j for j in jointures if f'"{j}"' in text}
