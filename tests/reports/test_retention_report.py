"""The retention report end to end: runner, real kernel, Chromium, privacy scan."""

from __future__ import annotations

import json

import pytest
from helpers import (
    CHROMIUM,
    check_french_first_screen,
    check_rendered,
    leaks,
    page_text,
    personal_values,
)

from ent_audit.reports import runner as report
from ent_audit.store.store import Store
from ent_audit.synth import write
from ent_audit.synth.retention import write_inputs

RULE_IDS = {
    "pupil_left",
    "destruction_request",
    "staff_left",
    "guardian_orphaned",
    "old_copies",
    "convention_end",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retention-report")
    synth = write(tmp / "synth", seed=7, schools=5, pupils=300)
    store = tmp / "store"
    Store(store).ingest(synth.archives[:2])
    inputs = write_inputs(synth.perimeter, tmp / "synth", seed=7)
    outputs = tmp / "outputs"
    base = {
        "store": str(store),
        "accounts": str(inputs.accounts),
        "requests": str(inputs.requests),
        "archives": str(tmp / "synth"),
        "outputs": str(outputs),
        "convention_signed": "2026-09-01",
    }
    overdue = report.run("retention", {**base, "as_of": "2027-01-01"}, outputs=outputs)
    clean = report.run(
        "retention",
        {"store": str(store), "as_of": "2026-10-06", "convention_signed": "2026-09-01"},
        outputs=outputs,
    )
    return dict(synth=synth, outputs=outputs, overdue=overdue, clean=clean, inputs=inputs)


@pytest.mark.slow
def test_overdue_items_fail_the_run_and_the_summary_has_every_rule(runs):
    r = runs["overdue"]
    assert (r.status, r.exit_code) == ("blocking", 1), r.message
    f = r.summary["figures"]
    assert f["as_of"] == "2027-01-01"
    assert set(f["overdue"]) == set(f["upcoming"]) == RULE_IDS
    truth = json.loads(runs["inputs"].truth.read_text())
    provider_pupils = sum(a["rule"] == "pupil_left" for a in truth["forgotten_accounts"])
    assert f["overdue"]["pupil_left"] >= provider_pupils >= 1
    assert f["overdue"]["staff_left"] == sum(
        a["rule"] == "staff_left" for a in truth["forgotten_accounts"]
    )
    assert f["overdue"]["old_copies"] >= 2  # the ingested archives, past 5 working days
    assert "pupil_left : " in r.message
    assert (r.run_dir / "findings.csv").read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.slow
def test_a_store_with_nothing_due_passes(runs):
    r = runs["clean"]
    assert (r.status, r.exit_code) == ("ok", 0), r.message
    assert sum(r.summary["figures"]["overdue"].values()) == 0
    skipped = {c["id"] for c in r.summary["checks"] if c["status"] == "skipped"}
    assert skipped == {"destruction_request"}  # no requests file; the store is always audited


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium absent: `make test` installs it")
def test_the_page_renders_offline_in_french_verdict_first(runs, tmp_path):
    dom, plots = check_rendered(runs["overdue"].html, tmp_path)
    assert len(plots) == 1
    text = " ".join(dom.text_content().split())
    p = check_french_first_screen(dom)
    # The shared banner is the verdict, said once; then the reference date, then the checks.
    assert p["verdict"]["text"].startswith("ÉCHEC")
    assert "Situation au 01/01/2027 :" not in text
    first = text.index("situation au")
    assert "01/01/2027" in text[first : first + 30]
    assert text.index("ÉCHEC") < first < text.rindex("Contrôles")
    for words in ("en retard", "à échéance", "prestataire", "préavis de non-reconduction"):
        assert words in text


@pytest.mark.slow
def test_no_page_or_file_shows_a_name_birth_date_mail_or_phone(runs):
    values = personal_values(runs["synth"].perimeter)
    jointures = {
        r.id for e in runs["synth"].perimeter.extractions for k in e.records.values() for r in k
    }
    for run in (runs["overdue"], runs["clean"]):
        found = leaks(page_text(run.html), values)
        assert not found, sorted(found)[:5]
        for path in run.run_dir.iterdir():
            if path.suffix in (".csv", ".json"):
                text = path.read_text(encoding="utf-8-sig")
                assert not leaks(text, values), path.name
    findings = (runs["overdue"].run_dir / "findings.csv").read_text(encoding="utf-8-sig")
    ids = {line.split(";")[2] for line in findings.splitlines()[1:]}
    assert not ids & jointures
