"""The helpers notebooks call: French tables and charts, checked titles."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import pytest

from ent_audit.exceptions import ChartError
from ent_audit.reports import notebook

NNBSP = "\u202f"


def test_plotly_express_defaults_and_raw_keys_become_french():
    fig = px.histogram(pd.DataFrame({"pupils": [1, 2, 2]}), x="pupils", title="t")
    spec = notebook.french(fig.to_dict())
    assert spec["layout"]["yaxis"]["title"]["text"] == "effectif"
    assert spec["layout"]["xaxis"]["title"]["text"] == "élèves"
    assert spec["data"][0]["hovertemplate"].startswith("élèves : %{x}<br>effectif : ")
    assert "count" not in spec["data"][0]["hovertemplate"]


def test_a_chart_without_a_title_or_an_axis_title_is_refused():
    frame = pd.DataFrame({"level": ["CP"], "pupils": [3]})
    with pytest.raises(ChartError, match="titre du graphique"):
        notebook.chart(px.bar(frame, x="level", y="pupils"))
    fig = px.bar(frame, x="level", y="pupils", title="Élèves")
    fig.update_yaxes(title_text="")
    with pytest.raises(ChartError, match="titre de l'axe y"):
        notebook.chart(fig)
    ok = notebook.bar(frame, x="level", y="pupils", title="Élèves par niveau")
    assert (ok.layout.xaxis.title.text, ok.layout.yaxis.title.text) == ("niveau", "élèves")
    assert ok.layout.separators == f",{NNBSP}"


def test_a_masked_bar_is_not_drawn_and_says_why():
    frame = pd.DataFrame({"commune": ["A", "B", "C"], "pupils": ["<5", "masqué", 1200]})
    fig = notebook.bar(frame, x="commune", y="pupils", masked=True, title="Élèves")
    ys = list(fig.data[0].y)
    assert pd.isna(ys[0]) and pd.isna(ys[1]) and ys[2] == 1200
    assert list(fig.data[0].text) == ["<5", "masqué", f"1{NNBSP}200"]


def test_tables_read_as_french_with_numbers_on_the_right():
    frame = pd.DataFrame(
        {
            "commune": ["Toulouse", "Muret"],
            "pupils": [50179, "<5"],
            "score": [97.5, None],
            "date": pd.to_datetime(["2026-09-14", "2026-10-05"]),
        }
    )
    html = notebook.table(frame).to_html()
    assert f"50{NNBSP}179" in html and "97,5" in html and "14/09/2026" in html
    assert ">élèves<" in html and ">score qualité<" in html and ">commune<" in html
    assert "td.col1" in html and "td.col2" in html and "td.col0" not in html
    assert "—" in html  # a missing score
