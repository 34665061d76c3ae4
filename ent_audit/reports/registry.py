"""The reports, listed explicitly: name, notebook, French title, whether ``report all`` runs it.

A new report is one line here and one notebook in ``notebooks/`` (README, "Development").
The notebooks live at the top of the checkout and are copied into the wheel
(``ent_audit/reports/notebooks``) by ``setup.py``, so an installed package runs them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ent_audit.exceptions import ReportNotFound

PACKAGED = Path(__file__).resolve().parent / "notebooks"
CHECKOUT = Path(__file__).resolve().parents[2] / "notebooks"
KEEP = 30
"""Runs of a report kept by ``ent-audit report`` (``--keep``): nightly runs do not pile up
(here, not in the runner: the command line reads it without importing papermill's side)."""


@dataclass(frozen=True)
class Report:
    name: str
    """What ``ent-audit report NAME`` and ``outputs/NAME/`` are called."""
    notebook: str
    """File name in the notebooks folder."""
    title: str
    """French title of the page and of its row in the index."""
    scheduled: bool = True
    """Run by ``report all`` (an interactive notebook is registered but never scheduled)."""


REPORTS: tuple[Report, ...] = (
    Report("overview", "overview.ipynb", "Vue d'ensemble du périmètre"),
    Report("quality", "quality.ipynb", "Audit de la qualité des données"),
    Report("delta", "delta.ipynb", "Inspection des deltas"),
    Report("roster_explorer", "roster_explorer.ipynb", "Explorateur d'une école", scheduled=False),
    Report("retention", "retention.ipynb", "Conservation des données et échéances de destruction"),
    Report("activity", "activity.ipynb", "Console de pilotage : ouverture et usage de l'ENT"),
)
BY_NAME = {r.name: r for r in REPORTS}


def notebooks_dir() -> Path:
    """The checkout's ``notebooks/`` when run from one, else the copy inside the package."""
    return CHECKOUT if CHECKOUT.is_dir() else PACKAGED


def get(name: str) -> Report:
    """The registered report called ``name`` (never a path: ``../x`` is just unknown)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ReportNotFound(name, list(BY_NAME)) from None


def scheduled() -> list[Report]:
    return [r for r in REPORTS if r.scheduled]


def notebook_path(report: Report, notebooks: Path | None = None) -> Path:
    """The report's notebook; a missing one is an error (exit 2), never "ran nothing"."""
    path = (notebooks or notebooks_dir()) / report.notebook
    if not path.is_file():
        raise ReportNotFound(report.name, list(BY_NAME), missing=path)
    return path
