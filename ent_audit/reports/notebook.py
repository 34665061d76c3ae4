"""What a report notebook calls: set up figures, French tables and charts, publish the results.

Notebooks stay thin: a parameters cell, calls into the package, figures, short French prose,
and one :func:`publish` at the end. The published payload travels inside the executed notebook
(a display of its own MIME type, which HTML rendering skips), so a run by plain ``papermill``
carries it too; the runner turns it into ``summary.json``, the exit status and the page's first
screen (title, verdict banner, key figures, table of contents) and footer (provenance,
small-cell rule): a notebook gets them by publishing, not by writing HTML.

The calls, in a notebook's order::

    notebook.setup()                                  # French charts, plotly.js kept out
    notebook.table(frame, {"pupils": "élèves"})       # French headers, « 50 179 », aligned
    notebook.masked_table(frame, ["pupils"], small_cell, total_row="Total")
    notebook.bar(frame, x="level", y="pupils", color="cycle", title="…")  # checked titles
    notebook.chart(px.scatter(...))                   # any other figure, checked the same way
    notebook.checks_table(checks)
    notebook.publish(figures, checks, headline, parameters={"today": "2026-11-28"},
                     small_cell=small_cell, labels={"my_key": "mon libellé"})
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd

from ent_audit import memory, privacy
from ent_audit.checks import Check
from ent_audit.exceptions import ChartError
from ent_audit.reports import labels as fr

SUMMARY_MIME = "application/vnd.ent-audit.summary+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
RENDERER = "ent_audit"
TEMPLATE = "ent_audit"
CHART_HEIGHT = 450

PLOTLY_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
    "locale": "fr",
    "locales": {
        "fr": {
            "dictionary": {
                "Download plot as a png": "Enregistrer en PNG",
                "Zoom": "Zoom",
                "Pan": "Déplacer",
                "Zoom in": "Zoom avant",
                "Zoom out": "Zoom arrière",
                "Reset axes": "Réinitialiser les axes",
                "Double-click to zoom back out": "Double-clic pour revenir",
            },
            "format": {
                "days": [
                    "dimanche",
                    "lundi",
                    "mardi",
                    "mercredi",
                    "jeudi",
                    "vendredi",
                    "samedi",
                ],
                "shortDays": ["dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."],
                "months": [
                    "janvier",
                    "février",
                    "mars",
                    "avril",
                    "mai",
                    "juin",
                    "juillet",
                    "août",
                    "septembre",
                    "octobre",
                    "novembre",
                    "décembre",
                ],
                "shortMonths": [
                    "janv.",
                    "févr.",
                    "mars",
                    "avr.",
                    "mai",
                    "juin",
                    "juil.",
                    "août",
                    "sept.",
                    "oct.",
                    "nov.",
                    "déc.",
                ],
                "date": "%d/%m/%Y",
                "decimal": fr.DECIMAL,
                "thousands": fr.THOUSANDS,
            },
        }
    },
}
"""French modebar, months and number format in plotly.js itself (dates on axes, hovers)."""


def setup() -> None:
    """French charts: separators, fonts, colours; figures as HTML *without* plotly.js.

    plotly's ``notebook`` renderer stores the whole plotly.js (5 MB) in the ``.ipynb`` and
    adds a MathJax ``<script>`` from a CDN to every figure. Here each figure is a bare
    ``<div>`` plus plotly's own JSON (which JupyterLab draws); the runner puts plotly.js once
    in the page's ``<head>``, from the installed package, so the page works offline.
    Allocators that give freed memory back (:func:`memory.lean_allocators`): a report's kernel
    holds one académie's frames after another.
    """
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.io._base_renderers import MimetypeRenderer

    class OfflineRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            fig_dict = french(fig_dict)
            html = pio.to_html(
                fig_dict,
                config=PLOTLY_CONFIG,
                include_plotlyjs=False,
                include_mathjax=False,
                full_html=False,
                default_width="100%",
                default_height=CHART_HEIGHT,
                validate=False,
            )
            spec = json.loads(pio.to_json(fig_dict, validate=False))
            return {PLOTLY_MIME: {**spec, "config": PLOTLY_CONFIG}, "text/html": html}

    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.update(
        separators=fr.PLOTLY_SEPARATORS,
        font={"family": "Marianne, Arial, 'DejaVu Sans', sans-serif", "size": 13},
        title={"x": 0, "xanchor": "left", "font": {"size": 16}},
        hoverlabel={"font": {"size": 13}},
        colorway=["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#999999"],
        legend={"title": {"side": "top"}},
    )
    for axis in (template.layout.xaxis, template.layout.yaxis):
        # « 15 000 », never « 15k » (an SI suffix reads as English in a French page)
        axis.update(exponentformat="none", separatethousands=True, automargin=True)
    pio.templates[TEMPLATE] = template
    pio.templates.default = TEMPLATE
    pio.renderers[RENDERER] = OfflineRenderer()
    pio.renderers.default = RENDERER
    pd.set_option("display.max_rows", 60)
    memory.lean_allocators()


# -- tables ---------------------------------------------------------------------------------

_MASKED = (privacy.SECONDARY,)


def _is_count_like(values: pd.Series) -> bool:
    """Numbers, or numbers some of which are masked (« <5 », « masqué »): right-aligned."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    present = values.dropna()
    if present.empty or present.map(type).eq(str).all():
        return False
    return bool(
        present.map(
            lambda v: (
                (isinstance(v, (int, float)) and not isinstance(v, bool))
                or (isinstance(v, str) and (v.startswith("<") or v in _MASKED))
            )
        ).all()
    )


def _formatter(values: pd.Series, decimals: int | None):
    if pd.api.types.is_datetime64_any_dtype(values):
        return fr.date
    if pd.api.types.is_bool_dtype(values):
        return fr.number
    if pd.api.types.is_float_dtype(values):
        places = 1 if decimals is None else decimals
        return lambda v: fr.number(v, places)
    return lambda v: fr.number(v, decimals or 0) if not isinstance(v, str) else v


def table(
    df: pd.DataFrame,
    labels: dict[str, str] | None = None,
    *,
    decimals: dict[str, int] | None = None,
):
    """A frame as a coordinator reads it: French headers (``labels``, else the shared ones),
    no index, numbers « 50 179 » / « 97,5 » right-aligned, dates « 14/09/2026 », missing « — ».

    ``decimals`` sets the decimals of a float column (default 1).
    """
    decimals = decimals or {}
    numeric = [c for c in df.columns if _is_count_like(df[c])]
    formats = {c: _formatter(df[c], decimals.get(c)) for c in df.columns if c in numeric}
    formats |= {
        c: fr.date
        for c in df.columns
        if c not in formats and pd.api.types.is_datetime64_any_dtype(df[c])
    }
    shown = df.rename(columns={c: fr.label(c, labels) for c in df.columns})
    # rename may merge two equal labels: keep positions, not names, for styles
    styles = [
        {"selector": f"td.col{i}, th.col_heading.col{i}", "props": "text-align: right;"}
        for i, c in enumerate(df.columns)
        if c in numeric
    ]
    styler = shown.style.hide(axis="index").set_table_attributes('class="ea-table"')
    styler = styler.format(
        {fr.label(c, labels): f for c, f in formats.items()}, na_rep=fr.EMPTY
    ).set_table_styles(styles, overwrite=False)
    return styler


def masked(
    df: pd.DataFrame,
    people: list[str] | tuple[str, ...],
    small_cell: int = privacy.SMALL_CELL,
    *,
    total_row=None,
    head: int | None = None,
) -> pd.DataFrame:
    """Counts per school, class, commune or circonscription with the ``people`` columns masked
    by the one small-cell rule (:func:`ent_audit.privacy.mask_counts`), over every row, then
    the first ``head`` rows: masking a cut table would let the rows cut give a cell away."""
    out = privacy.mask_counts(df, people, small_cell, total_row=total_row)
    return out if head is None else out.head(head)


def masked_table(
    df: pd.DataFrame,
    people: list[str] | tuple[str, ...],
    small_cell: int = privacy.SMALL_CELL,
    labels: dict[str, str] | None = None,
    *,
    total_row=None,
    head: int | None = None,
):
    """:func:`table` of :func:`masked` counts (the index, a total row's label, kept as a
    column when ``total_row`` is given)."""
    out = masked(df, people, small_cell, total_row=total_row, head=head)
    return table(out.reset_index() if total_row is not None else out, labels)


def figures_table(figures: dict, labels: dict[str, str] | None = None, title: str = "effectif"):
    """Key figures as a two-column table: French label, value."""
    return table(
        pd.DataFrame(
            {"indicateur": [fr.label(k, labels) for k in figures], title: list(figures.values())}
        )
    )


def checks_table(checks: list[Check] | tuple[Check, ...]):
    """The checks as a table: title, blocking or not, result, detail."""
    return table(
        pd.DataFrame(
            [
                {
                    "contrôle": c.title,
                    "bloquant": "oui" if c.blocking else "non",
                    "résultat": c.label,
                    "détail": c.detail,
                }
                for c in checks
            ],
            columns=["contrôle", "bloquant", "résultat", "détail"],
        )
    )


# -- charts ---------------------------------------------------------------------------------

_HOVER_NAME = re.compile(r"(^|<br>)([A-Za-z_][A-Za-z0-9_]*)=")
_HOVER_PAIR = re.compile(r"(^|<br>)([^=<>%{}]+?)=")


def _french_title(text):
    if not isinstance(text, str):
        return text
    if text in fr.PLOTLY_DEFAULTS:
        return fr.PLOTLY_DEFAULTS[text]
    words = text.split(" of ", 1)  # « sum of pupils »
    if len(words) == 2 and words[0] in fr.PLOTLY_DEFAULTS:
        return f"{fr.PLOTLY_DEFAULTS[words[0]]} des {fr.label(words[1])}"
    return fr.COLUMNS.get(text, text)


def french(fig_dict: dict) -> dict:
    """The safety net every figure goes through when displayed: plotly express's English
    defaults (« count », « sum of … ») and raw column keys (« pupils ») in axis and legend
    titles and hover labels become French. Figures built with :func:`bar` or with French
    ``labels=`` are left as they are."""
    layout = fig_dict.get("layout", {})
    for key, axis in layout.items():
        if re.fullmatch(r"[xy]axis\d*|legend|coloraxis", key) and isinstance(axis, dict):
            title = axis.get("title")
            if isinstance(title, dict) and "text" in title:
                title["text"] = _french_title(title["text"])
    for trace in fig_dict.get("data", []):
        template = trace.get("hovertemplate")
        if isinstance(template, str):
            template = _HOVER_NAME.sub(
                lambda m: f"{m.group(1)}{_french_title(m.group(2))}=", template
            )
            # « élèves : 4 048 » rather than plotly express's « élèves=4 048 »
            trace["hovertemplate"] = _HOVER_PAIR.sub(r"\1\2 : ", template)
        if isinstance(trace.get("name"), str) and trace["name"] in fr.PLOTLY_DEFAULTS:
            trace["name"] = fr.PLOTLY_DEFAULTS[trace["name"]]
    return fig_dict


def _axis_titles(fig) -> list[tuple[str, str | None]]:
    """(axis name, title) of every cartesian axis a trace draws on."""
    layout = fig.layout
    used = set()
    for trace in fig.data:
        if hasattr(trace, "xaxis") and trace.type not in ("pie", "sunburst", "treemap"):
            used.add("xaxis" + (trace.xaxis or "x")[1:])
            used.add("yaxis" + (trace.yaxis or "y")[1:])
    return [(name, (layout[name].title.text if layout[name] else None)) for name in sorted(used)]


def chart(fig, *, x_title: str | None = None, y_title: str | None = None):
    """Check that a figure can be read alone (a title, a title on every axis) and give it the
    French layout; returns it, so a cell ends with ``notebook.chart(px.…)``."""
    if x_title is not None:
        fig.update_xaxes(title_text=x_title)
    if y_title is not None:
        fig.update_yaxes(title_text=y_title)
    title = fig.layout.title.text
    if not title:
        raise ChartError("(sans titre)", "titre du graphique")
    for axis, text in _axis_titles(fig):
        if not text:
            raise ChartError(title, f"titre de l'axe {axis[0]}")
    fig.update_layout(separators=fr.PLOTLY_SEPARATORS)
    return fig


def _px_defaults(kwargs: dict, labels: dict[str, str] | None) -> dict:
    columns = {kwargs.get(k) for k in ("x", "y", "color", "text", "names", "values", "facet_col")}
    columns |= set(kwargs.get("hover_data") or [])
    names = {c: fr.label(c, labels) for c in columns if isinstance(c, str)}
    return {
        "labels": {**names, **kwargs.pop("labels", {})},
        "category_orders": fr.CATEGORY_ORDERS,
        "color_discrete_map": fr.COLOURS,
        **kwargs,
    }


def bar(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    title: str,
    labels: dict[str, str] | None = None,
    masked: bool = False,
    **kwargs,
):
    """A bar chart with French labels, the shared category orders and colours, checked titles.

    ``masked``: ``y`` holds masked counts (:func:`masked_table`): masked bars are not drawn
    and carry their mask as text (« <5 »), so the chart never shows what the table hides.
    """
    import plotly.express as px

    if masked:
        frame = frame.assign(**{y: privacy.visible(frame[y]), "_shown": frame[y].map(fr.number)})
        kwargs.setdefault("text", "_shown")
        labels = {"_shown": fr.label(y, labels), **(labels or {})}
    fig = px.bar(frame, title=title, **_px_defaults({"x": x, "y": y, **kwargs}, labels))
    if masked:
        fig.update_traces(textposition="outside", cliponaxis=False)
    return chart(fig)


# -- publishing -----------------------------------------------------------------------------


def state_date(store) -> str | None:
    """The date of the store's live state (its latest extraction), ISO: what a report says
    its figures are « état du »; ``None`` before the first ingestion."""
    from ent_audit.store import Store

    st = Store(store, create=False)
    state = st.current()
    info = None if state is None else st.read_info(state)
    return info.date.isoformat() if info is not None and info.date else None


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def publish(
    figures: dict,
    checks: list[Check] | tuple[Check, ...] = (),
    headline: tuple[str, ...] = (),
    *,
    labels: dict[str, str] | None = None,
    parameters: dict[str, Any] | None = None,
    small_cell: int | None = None,
    state_date: str | None = None,
) -> None:
    """Publish the run's key figures and checks (call once, at the end of the notebook).

    ``headline`` names the figures the page's first screen and ``outputs/index.html`` show,
    labelled in French by ``labels`` (else :data:`labels.COLUMNS`). ``parameters`` are the
    values the notebook actually used where they differ from what was passed (a reference date
    resolved from an empty ``today``): the page's footer shows them. ``small_cell`` is the
    threshold the page applied; ``state_date`` the date of the data (default
    ``figures["state_date"]``). Keys stay English in ``summary.json``.
    """
    from IPython.display import display

    headline = list(headline) or list(figures)[:4]
    payload = {
        "figures": _plain(figures),
        "checks": [c.to_dict() for c in checks],
        "headline": headline,
        "labels": {k: fr.label(k, labels) for k in headline},
        "parameters": _plain(parameters or {}),
        "small_cell": small_cell,
        "state_date": state_date or figures.get("state_date"),
    }
    json.dumps(payload)  # fail here, in the notebook, on anything not JSON
    display({SUMMARY_MIME: payload}, raw=True)
