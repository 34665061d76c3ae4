"""What a report notebook calls: set up figures, publish key figures and checks.

Notebooks stay thin: a parameters cell, calls into the package, figures, short French prose,
and one :func:`publish` at the end. The published payload travels inside the executed notebook
(a display of its own MIME type, which HTML rendering skips), so a run by plain ``papermill``
carries it too; the runner turns it into ``summary.json`` and the exit status.
"""

from __future__ import annotations

import json

import pandas as pd

from ent_audit.checks import Check

SUMMARY_MIME = "application/vnd.ent-audit.summary+json"


RENDERER = "ent_audit"


def setup() -> None:
    """Figures as HTML with plotly.js embedded once and nothing from a CDN.

    plotly's own ``notebook`` renderer embeds plotly.js once but adds a MathJax ``<script>``
    from a CDN to every figure (plotly 7); auditors may read reports offline, so figures are
    rendered here without it.
    """
    import plotly.io as pio
    from plotly.io._base_renderers import NotebookRenderer

    class OfflineRenderer(NotebookRenderer):
        def to_mimebundle(self, fig_dict):
            html = pio.to_html(
                fig_dict,
                config=self.config,
                include_plotlyjs=False,
                include_mathjax=False,
                full_html=False,
                default_width="100%",
                default_height=525,
                validate=False,
            )
            return {"text/html": html}

    pio.renderers[RENDERER] = OfflineRenderer(connected=False)
    pio.renderers.default = RENDERER
    pd.set_option("display.max_rows", 60)


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def publish(
    figures: dict, checks: list[Check] | tuple[Check, ...] = (), headline: tuple[str, ...] = ()
) -> None:
    """Publish the run's key figures and checks (call once, at the end of the notebook).

    ``headline`` names the figures ``outputs/index.html`` shows for this run.
    """
    from IPython.display import display

    payload = {
        "figures": _plain(figures),
        "checks": [c.to_dict() for c in checks],
        "headline": list(headline) or list(figures)[:4],
    }
    json.dumps(payload)  # fail here, in the notebook, on anything not JSON
    display({SUMMARY_MIME: payload}, raw=True)


def table(df: pd.DataFrame, labels: dict[str, str] | None = None):
    """A frame with French column labels, no index: what a coordinator reads."""
    return df.rename(columns=labels or {}).style.hide(axis="index")


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
