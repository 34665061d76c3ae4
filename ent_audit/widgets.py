"""The roster explorer: one school's people, classes, data-quality findings and activity, in
JupyterLab or as a Voilà page, without code.

Wiring only: every frame comes from :mod:`ent_audit.analyses.roster` (tested without a
browser); this module lays out the selectors, tabs, paging and CSV exports. Tests drive it as
the coordinator does, by setting the selectors' ``value`` (ipywidgets has no test harness), or
call :meth:`RosterExplorer.select`.

Masked by default (keyed pseudonyms, no birth date, no contact). With
``show_personal_data=True`` each school shown, and each CSV exported, first appends one line to
the store's access journal (:mod:`ent_audit.store.access`).
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

import ipywidgets as w
import pandas as pd

from ent_audit import memory
from ent_audit.analyses import quality, roster
from ent_audit.analyses.roster import PERSONAL_SHOWN, TAB_TITLES, SchoolView, Tab
from ent_audit.io import private_dir, write_csv
from ent_audit.privacy import Pseudonymiser
from ent_audit.store import Store, access

PAGE_SIZE = 50
ANY = "(toutes)"
NOUNS = {
    Tab.CLASSES: "classe(s)",
    Tab.PUPILS: "élève(s)",
    Tab.STAFF: "personnel(s)",
    Tab.FINDINGS: "constat(s)",
    Tab.ACTIVITY: "ligne(s) d'activité",
}
"""What a tab's count counts: « 55 élève(s) — page 1 / 2 »."""
PLACEHOLDER = "— choisir une école —"
STORE_ENV = "ENT_AUDIT_STORE"
"""The store ``make lab`` and ``make explorer`` give the notebook (its ``store`` left empty)."""
CHECKOUT = Path(__file__).resolve().parents[1]
DEMO_STORE = CHECKOUT / "outputs" / "demo-store"
EXPORTS = "exports"
"""Folder of CSV exports inside the store (0700, files 0600) unless ``export_dir`` is given."""

MASKED_BANNER = (
    "<b>Données masquées.</b> Les personnes apparaissent sous un pseudonyme (clé du store) : "
    "ni nom, ni date de naissance, ni coordonnées."
)
PERSONAL_BANNER = (
    "<b>Données personnelles affichées.</b> Chaque école consultée et chaque export sont "
    "inscrits au journal des accès du store (date, heure, utilisateur, UAI, nature des données)."
)
STYLE = """<style>
.ent-table table { border-collapse: collapse; font-size: 0.9em; }
.ent-table th, .ent-table td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
.ent-table th { background: #f0f0f0; }
.ent-spark { font-size: 1.4em; letter-spacing: 1px; }
</style>"""


def resolve_store(store: Path | str = "") -> Path:
    """The store to open: ``store`` (a relative path is tried from the current folder, then
    from the checkout, since Jupyter runs a notebook in ``notebooks/``), else
    ``$ENT_AUDIT_STORE``, else the demo store (``make demo``)."""
    chosen = Path(store or os.environ.get(STORE_ENV) or DEMO_STORE)
    if not chosen.is_absolute() and not chosen.exists() and (CHECKOUT / chosen).exists():
        return CHECKOUT / chosen
    return chosen


def _table(df: pd.DataFrame) -> str:
    return STYLE + '<div class="ent-table">' + df.to_html(index=False, na_rep="") + "</div>"


class TablePane:
    """One tab's table: a page of rows, previous/next buttons, and a CSV export."""

    def __init__(self, explorer: RosterExplorer, tab: Tab, page_size: int) -> None:
        self.explorer = explorer
        self.tab = tab
        self.page_size = page_size
        self.page = 0
        self.frame = pd.DataFrame()
        self.note = w.HTML()
        self.header = w.HTML()
        self.header.add_class("ent-count")
        self.table = w.HTML()
        self.previous = w.Button(description="◀ précédente", layout=w.Layout(width="auto"))
        self.next = w.Button(description="suivante ▶", layout=w.Layout(width="auto"))
        self.export = w.Button(description="Exporter en CSV")
        self.download = w.HTML()
        self.previous.on_click(lambda _: self.turn(-1))
        self.next.on_click(lambda _: self.turn(+1))
        self.export.on_click(lambda _: self.export_csv())
        self.box = w.VBox(
            [
                self.note,
                self.header,
                w.HBox([self.previous, self.next, self.export, self.download]),
                self.table,
            ]
        )
        self.box.add_class(f"ent-tab-{tab.value}")

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.frame) // self.page_size))

    def show(self, frame: pd.DataFrame, note: str = "") -> None:
        self.frame = frame
        self.page = 0
        self.note.value = f"<i>{html.escape(note)}</i>" if note else ""
        self.download.value = ""
        self.render()

    def turn(self, step: int) -> None:
        self.page = min(max(self.page + step, 0), self.pages - 1)
        self.render()

    def render(self) -> None:
        n = len(self.frame)
        start = self.page * self.page_size
        rows = self.frame.iloc[start : start + self.page_size]
        self.header.value = f"<b>{n} {NOUNS[self.tab]}</b> — page {self.page + 1} / {self.pages}"
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1
        self.table.value = _table(roster.labelled(rows)) if n else "<i>aucune ligne</i>"

    def export_csv(self) -> Path | None:
        """Write the whole table (every page) as a French spreadsheet CSV and offer it for
        download; an unmasked export is journaled first."""
        view = self.explorer.view
        if view is None:
            return None
        if view.personal:
            self.explorer.journal([f"export CSV ({TAB_TITLES[self.tab]})"], view.uai)
        path = self.explorer.export_dir / f"{view.uai}-{self.tab.value}.csv"
        write_csv(path, roster.labelled(self.frame))
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.download.value = (
            f'<a download="{path.name}" href="data:text/csv;charset=utf-8;base64,{data}">'
            f"télécharger {html.escape(path.name)}</a> (copie : {html.escape(str(path))})"
        )
        return path


class RosterExplorer:
    """Circonscription → commune → school selectors, then one tab per frame of the school.

    ``explorer.select(uai)`` selects a school programmatically; ``explorer.frames`` holds the
    frames the tabs show (``classes``, ``pupils``, ``staff``, ``findings``, ``activity``);
    ``explorer.view`` the whole :class:`~ent_audit.analyses.roster.SchoolView`. ``activity``:
    the per-school daily frame of :data:`ent_audit.analyses.roster.ACTIVITY_COLUMNS`, if any;
    ``audit``: the quality audit of the store's state when already run (else it runs here,
    over the whole state: :func:`ent_audit.analyses.roster.load`).
    """

    def __init__(
        self,
        store: Store | Path | str,
        show_personal_data: bool = False,
        *,
        activity: pd.DataFrame | None = None,
        audit: quality.AuditResult | None = None,
        export_dir: Path | str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        # Opening: freed memory goes back as the audit and the tables are read; then the
        # state stays open for small repeated switches (memory.keep_for_reuse).
        memory.lean_allocators()
        self.store = store if isinstance(store, Store) else Store(store, create=False)
        self.show_personal_data = bool(show_personal_data)
        self._export_dir = Path(export_dir) if export_dir else self.store.path / EXPORTS
        self.roster = roster.load(
            self.store,
            Pseudonymiser.for_store(self.store.path),
            show_personal_data=self.show_personal_data,
            audit=audit,
            activity=activity,
        )
        memory.keep_for_reuse()
        self.view: SchoolView | None = None
        self._quiet = False
        options = self.roster.options

        self.circonscription = w.Dropdown(
            description="Circonscription",
            options=[ANY, *roster.circonscriptions(options)],
            style={"description_width": "initial"},
        )
        self.commune = w.Dropdown(description="Commune", style={"description_width": "initial"})
        self.search = w.Text(
            description="Recherche",
            placeholder="UAI ou nom de l'école",
            continuous_update=True,
            style={"description_width": "initial"},
        )
        self.school = w.Dropdown(
            description="École",
            layout=w.Layout(width="42em"),
            style={"description_width": "initial"},
        )
        self.school.add_class("ent-school")
        self.title = w.HTML()
        banner = PERSONAL_BANNER if self.show_personal_data else MASKED_BANNER
        self.banner = w.HTML(f"<div>{banner}</div>")
        self.summary = w.HTML()
        self.panes = {t: TablePane(self, t, page_size) for t in Tab if t is not Tab.SUMMARY}
        self.tabs = w.Tab(
            children=[self.summary, *(p.box for p in self.panes.values())],
            titles=[TAB_TITLES[t] for t in Tab],
        )
        self.widget = w.VBox(
            [
                self.banner,
                w.HBox([self.circonscription, self.commune]),
                w.HBox([self.search, self.school]),
                self.title,
                self.tabs,
            ]
        )
        self._communes()
        self._schools()
        self.circonscription.observe(self._on_circonscription, "value")
        self.commune.observe(lambda _: self._schools(), "value")
        self.search.observe(lambda _: self._schools(), "value")
        self.school.observe(self._on_school, "value")

    @classmethod
    def open(
        cls,
        store: Path | str = "",
        *,
        show_personal_data: bool = False,
        daily: Path | str = "",
        uai: str = "",
    ) -> RosterExplorer:
        """What the notebook calls: the explorer on :func:`resolve_store` (``store``), with
        the provider's daily CSV when given, else the events the store imported, if any;
        school ``uai`` selected when given."""
        path = resolve_store(store)
        activity = roster.read_daily(daily) if daily else roster.store_activity(path)
        explorer = cls(path, show_personal_data, activity=activity)
        if uai:
            explorer.select(uai)
        return explorer

    # -- display --------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """The frames the tabs show (empty before a school is chosen)."""
        return self.view.frames() if self.view else {}

    @property
    def export_dir(self) -> Path:
        return private_dir(self._export_dir)

    # -- selectors ------------------------------------------------------------------------

    def _value(self, dropdown: w.Dropdown) -> str | None:
        return None if dropdown.value in (None, ANY) else dropdown.value

    def _on_circonscription(self, _change) -> None:
        self._communes()
        self._schools()

    def _communes(self) -> None:
        was = self.commune.value
        choices = [ANY, *roster.communes(self.roster.options, self._value(self.circonscription))]
        quiet, self._quiet = self._quiet, True
        try:
            self.commune.options = choices
            self.commune.value = was if was in choices else ANY
        finally:
            self._quiet = quiet

    def _schools(self) -> None:
        found = roster.find(
            self.roster.options,
            self._value(self.circonscription),
            self._value(self.commune),
            self.search.value,
        )
        was = self.school.value
        options = [(PLACEHOLDER, None), *zip(found["label"], found["uai"], strict=True)]
        quiet, self._quiet = self._quiet, True
        try:
            self.school.options = options
            self.school.value = was if was in set(found["uai"]) else None
        finally:
            self._quiet = quiet

    def select(self, uai: str) -> SchoolView:
        """Select school ``uai`` as a coordinator would: its circonscription and commune,
        then the school (one view, one journal line when unmasked)."""
        row = self.roster.options[self.roster.options["uai"] == uai]
        if row.empty:
            roster.school(self.roster, uai)  # raises the one-line French error
        quiet, self._quiet = self._quiet, True
        try:
            self.search.value = ""
            self.circonscription.value = row["circonscription"].iloc[0]
            self.commune.value = row["commune"].iloc[0]
            self._communes()
            self._schools()
        finally:
            self._quiet = quiet
        if self.school.value == uai:  # already selected: no change event, show it again
            self.show(uai)
        else:
            self.school.value = uai
        assert self.view is not None
        return self.view

    def _on_school(self, change) -> None:
        if self._quiet or change["new"] is None:
            return
        self.show(change["new"])

    # -- one school -----------------------------------------------------------------------

    def journal(self, shown: list[str], uai: str) -> dict:
        return access.record(self.store.path, uai, shown)

    def show(self, uai: str) -> SchoolView:
        """Compute and show school ``uai``; an unmasked view is journaled first."""
        view = roster.school(self.roster, uai)
        if view.personal:
            self.journal(list(PERSONAL_SHOWN.values()), uai)
        self.view = view
        self.title.value = (
            f"<h3>{html.escape(view.name)} ({view.uai})</h3>"
            f"<div>{html.escape(view.commune)}, circonscription "
            f"{html.escape(view.circonscription)}</div>"
        )
        spark = (
            f'<div class="ent-spark" title="connexions par semaine">{view.sparkline}</div>'
            if view.sparkline
            else ""
        )
        self.summary.value = (
            _table(roster.labelled(view.summary))
            + "<h4>Élèves par niveau</h4>"
            + _table(roster.labelled(view.levels))
            + spark
        )
        notes = dict.fromkeys(Tab, "")
        for note in view.notes:
            notes[Tab.ACTIVITY] = note
        for tab, pane in self.panes.items():
            pane.show(getattr(view, tab.value), notes[tab])
        self.tabs.titles = [
            TAB_TITLES[Tab.SUMMARY],
            *(f"{TAB_TITLES[t]} ({len(p.frame)})" for t, p in self.panes.items()),
        ]
        return view
