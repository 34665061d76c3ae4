"""Every scheduled report, read as a French auditor reads it, in a real Chromium, offline.

One small generated département with defects (its Complet, Delta and later Complet in a store,
a term of ENT activity, destruction requests), each scheduled report run once through the
runner and opened once in Chromium: the verdict banner within the first 900 px of a 1400-px
window, ``lang="fr"``, no English word in the visible text nor in any chart's title, axes,
legend, trace names or hovers (read from the figures plotly drew), every chart and axis
titled, a state date on the page and in the index, the verdict said once.
"""

from __future__ import annotations

import datetime as dt

import lxml.html
import pytest
from helpers import CHROMIUM, check_french_first_screen, check_rendered, english_words

from ent_audit.analyses import activity
from ent_audit.reports import registry, runner
from ent_audit.store.store import Store
from ent_audit.synth import DEFECTS, write
from ent_audit.synth.activity import write_activity
from ent_audit.synth.retention import write_inputs

pytestmark = pytest.mark.slow
SCHEDULED = [r.name for r in registry.scheduled()]
START, END = dt.date(2026, 9, 1), dt.date(2026, 12, 18)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """12 schools, 600 pupils, every defect at 2 %; each scheduled report run once."""
    tmp = tmp_path_factory.mktemp("every-report")
    synth = write(tmp / "synth", seed=5, schools=12, pupils=600, defects={d: 0.02 for d in DEFECTS})
    store = tmp / "store"
    Store(store).ingest(synth.archives[:3], accept_mass_change=True)
    files = write_activity(
        synth.archives[-1], tmp / "activity", seed=5, start=START, end=END, events=4000
    )
    activity.import_logs(files.events_csv, store)
    requests = write_inputs(synth.perimeter, tmp / "synth", seed=5).requests
    outputs = tmp / "outputs"
    s = str(store)
    params = {
        "overview": {"store": s, "max_age_days": 100000},
        "quality": {"store": s},
        "delta": {"store": s},
        "retention": {
            "store": s,
            "as_of": "2027-01-05",
            "requests": str(requests),
            "convention_signed": "2026-09-01",
        },
        "activity": {
            "store": s,
            "accounts": str(files.accounts),
            "period_start": str(START),
            "period_end": str(END),
        },
    }
    assert set(params) == set(SCHEDULED)
    runs = {name: runner.run(name, params[name], outputs=outputs) for name in SCHEDULED}
    for name, run in runs.items():
        assert run.status in ("ok", "blocking"), (name, run.message)
    doms = {}
    if CHROMIUM:
        for name, run in runs.items():
            (tmp / "browser" / name).mkdir(parents=True)
            doms[name], _ = check_rendered(run.html, tmp / "browser" / name)
    return {"runs": runs, "doms": doms, "outputs": outputs, "state": Store(store).latest()}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium absent: `make test` installs it")
@pytest.mark.parametrize("name", SCHEDULED)
def test_each_report_is_french_with_its_verdict_on_the_first_screen(reports, name):
    p = check_french_first_screen(reports["doms"][name])
    assert p["title"].startswith(registry.get(name).title)
    for fig in p["figures"]:  # what plotly drew: nothing English, nothing untitled
        assert fig["title"] and all(a["title"] for a in fig["axes"]), (name, fig["title"])
        hovers = " ".join(t["hovertemplate"] + " " + t["name"] for t in fig["traces"])
        assert not english_words(hovers), (name, fig["title"], english_words(hovers))


@pytest.mark.parametrize("name", SCHEDULED)
def test_each_report_has_a_state_date_on_its_page_and_in_the_index(reports, name):
    run = reports["runs"][name]
    state = reports["state"].extraction.date
    assert run.summary["state_date"] == state.isoformat()
    doc = lxml.html.fromstring(run.html.read_bytes())
    meta = doc.xpath('//p[@class="ea-meta"]')[0].text_content()
    assert meta.startswith(f"État du {state:%d/%m/%Y}")
    index = lxml.html.fromstring((reports["outputs"] / "index.html").read_bytes())
    row = next(
        tr
        for tr in index.xpath("//table[1]/tbody/tr")
        if tr.xpath("./td")[0].text_content() == registry.get(name).title
    )
    assert row.xpath("./td")[3].text_content() == f"{state:%d/%m/%Y}"


@pytest.mark.parametrize("name", SCHEDULED)
def test_the_verdict_is_said_once_by_the_banner(reports, name):
    doc = lxml.html.fromstring(reports["runs"][name].html.read_bytes())
    for script in doc.xpath("//script"):  # plotly's own JSON is not read
        script.getparent().remove(script)
    cells = doc.xpath('//div[@class="ea-cells"]')[0].text_content()
    for own_verdict in ("ÉCHEC :", "Réconciliation non contrôlée", "conforme : aucun élément"):
        assert own_verdict not in cells, (name, own_verdict)
    assert not english_words(cells), (name, english_words(cells))
