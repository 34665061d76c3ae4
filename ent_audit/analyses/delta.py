"""What changed between extractions, and whether the Deltas told the truth.

Two sources, one vocabulary:

- ``compare(a, b)`` pairs the records of any two snapshots (two archives loaded with
  ``ent_audit.load``, two states) and lists what is added, removed and changed, values
  included: for a coordinator in JupyterLab. It is :mod:`ent_audit.aaf.diff`, re-exported.
- the journal readers below read the store's pseudonymous change journal
  (:mod:`ent_audit.store.journal`, ``Store.journal()``): changes per school, level and week,
  pupils who moved between schools, the attribute ranking, the reconciliation divergences.
  Reports use these: the journal holds no personal value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.diff import (
    CHANGED_COLUMNS,
    MULTI_SEPARATOR,
    Comparison,
    KindComparison,
    attribute_values,
    compare,
    compare_kind,
)
from ent_audit.checks import Check
from ent_audit.io import write_csv
from ent_audit.privacy import small_cells

__all__ = [
    "CHANGED_COLUMNS",
    "MULTI_SEPARATOR",
    "Comparison",
    "DeltaInspection",
    "KindComparison",
    "attribute_values",
    "compare",
    "compare_kind",
    "inspect",
]

FRAMES = tuple(k.frame for k in schema.KINDS.values())
"""Kinds in the journal and in ``summary.json``: structures, students, guardians, staff."""
DELTA_OPERATIONS = ("add", "modify", "delete")
ARRIVAL = ("add", "appeared")
DEPARTURE = ("delete", "disappeared")
WHOLE_RECORD = {"appeared": "record_only_in_complete", "disappeared": "record_only_in_state"}
"""How a divergence about a whole record is named in ``divergences_by_attribute``."""

KIND_LABELS = {"structures": "structures", "students": "élèves", "guardians": "responsables",
               "staff": "personnels"}  # fmt: skip
OPERATION_LABELS = {
    "add": "ajout", "modify": "modification", "delete": "suppression",
    "appeared": "seulement dans le Complet", "disappeared": "seulement dans l'état",
    "changed": "valeur différente",
}  # fmt: skip
LABELS = {
    "kind": "type de fiche", "pseudonym": "pseudonyme", "operation": "opération",
    "attribute": "attribut", "school": "école (UAI)", "school_before": "école avant",
    "school_after": "école après", "date": "extraction du", "week": "semaine du",
    "arrivals": "arrivées", "departures": "départs", "moved_in": "venus d'une autre école",
    "moved_out": "partis vers une autre école", "changes": "changements", "level": "niveau",
    "add": "ajouts", "modify": "modifications", "delete": "suppressions",
    "modify_noop": "modifications sans effet", "before": "avant", "after": "après",
}  # fmt: skip


def _school(j: pd.DataFrame) -> pd.Series:
    """The school a row is about: after the change, else before."""
    return j["school_after"].fillna(j["school_before"])


def default_window(history: pd.DataFrame) -> tuple[dt.date | None, dt.date | None]:
    """Since the previous Complet (the day after it) until the latest extraction: the Deltas
    since that Complet and, when the latest is a Complet, its reconciliation."""
    if history.empty:
        return None, None
    dates = pd.to_datetime(history["date"])
    until = dates.max().date()
    earlier = dates[(history["extraction"] == "complete").to_numpy() & (dates < dates.max())]
    since = (earlier.max() + pd.Timedelta(days=1)).date() if len(earlier) else dates.min().date()
    return since, until


def in_window(frame: pd.DataFrame, since: dt.date | None, until: dt.date | None) -> pd.DataFrame:
    """Rows dated from ``since`` to ``until``, both included (None: no bound)."""
    dates = pd.to_datetime(frame["date"])
    keep = pd.Series(True, index=frame.index)
    if since is not None:
        keep &= dates >= pd.Timestamp(since)
    if until is not None:
        keep &= dates <= pd.Timestamp(until)
    return frame[keep.to_numpy()]


def reconciliations(history: pd.DataFrame) -> list[dt.date]:
    """Dates of the Complets ingested over a state built by Deltas (reconciled on ingestion)."""
    kinds = list(history["extraction"])
    dates = pd.to_datetime(history["date"]).dt.date.tolist()
    return [
        d for i, d in enumerate(dates) if i and kinds[i] == "complete" and kinds[i - 1] == "delta"
    ]


def change_counts(j: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per kind, the records the Deltas added, modified (no-op modifications included) and
    deleted: ``{kind: {"add": n, "modify": n, "delete": n}}``."""
    d = j[(j["extraction"] == "delta").to_numpy()]
    records = d.drop_duplicates(["date", "kind", "pseudonym", "operation"])
    n = records.groupby(["kind", "operation"], observed=True).size()
    return {k: {op: int(n.get((k, op), 0)) for op in DELTA_OPERATIONS} for k in FRAMES}


def by_school(j: pd.DataFrame, kind: str | None = None) -> pd.DataFrame:
    """Records changed per school and operation (one column per operation), most first."""
    d = j if kind is None else j[(j["kind"] == kind).to_numpy()]
    d = d.drop_duplicates(["date", "kind", "pseudonym", "operation"]).assign(school=_school(d))
    t = d.groupby(["school", "operation"], observed=True).size().unstack(fill_value=0)
    t = t.reindex(columns=[c for c in OPERATION_LABELS if c in t.columns])
    return t.assign(total=t.sum(axis=1)).sort_values("total", ascending=False).reset_index()


def by_level(j: pd.DataFrame) -> pd.DataFrame:
    """Pupils changed per level (their level after the change) and operation."""
    d = j[(j["kind"] == "students").to_numpy()]
    d = d.drop_duplicates(["date", "pseudonym", "operation"])
    t = d.groupby(["level", "operation"], observed=True).size().rename("changes").reset_index()
    order = {lv: i for i, lv in enumerate(schema.LEVELS)}
    return t.sort_values(
        ["level", "operation"], key=lambda s: s.map(order) if s.name == "level" else s
    )


def moved_pupils(j: pd.DataFrame) -> pd.DataFrame:
    """Pupils whose main school changed between two schools of the perimeter: date,
    pseudonym, school before, school after."""
    d = j[(j["kind"] == "students").to_numpy()]
    moved = d["school_before"].notna() & d["school_after"].notna()
    moved &= d["school_before"] != d["school_after"]
    out = d[moved.fillna(False).to_numpy(dtype=bool)].drop_duplicates(["date", "pseudonym"])
    return out[["date", "pseudonym", "school_before", "school_after", "level"]].reset_index(
        drop=True
    )


def movements(j: pd.DataFrame) -> pd.DataFrame:
    """Pupils' arrivals and departures per school and week (Monday), moves between schools
    counted on both sides: school, week, arrivals, departures, moved_in, moved_out."""
    d = j[(j["kind"] == "students").to_numpy()].drop_duplicates(["date", "pseudonym", "operation"])
    week = pd.to_datetime(d["date"]).dt.to_period("W-SUN").dt.start_time
    op = d["operation"].astype(str)
    moves = moved_pupils(j)
    moves_week = pd.to_datetime(moves["date"]).dt.to_period("W-SUN").dt.start_time
    arrive, leave = op.isin(ARRIVAL).to_numpy(), op.isin(DEPARTURE).to_numpy()
    parts = [
        pd.DataFrame({"school": d["school_after"], "week": week, "what": "arrivals"})[arrive],
        pd.DataFrame({"school": d["school_before"], "week": week, "what": "departures"})[leave],
        pd.DataFrame({"school": moves["school_after"], "week": moves_week, "what": "moved_in"}),
        pd.DataFrame({"school": moves["school_before"], "week": moves_week, "what": "moved_out"}),
    ]
    rows = pd.concat(parts, ignore_index=True).dropna(subset=["school"])
    t = rows.groupby(["school", "week", "what"]).size().unstack(fill_value=0)
    t = t.reindex(columns=["arrivals", "departures", "moved_in", "moved_out"], fill_value=0)
    return t.reset_index().sort_values(["week", "school"]).reset_index(drop=True)


def attribute_ranking(j: pd.DataFrame) -> pd.DataFrame:
    """Changed values per kind and attribute (modifications and Complet differences), most
    changed first."""
    d = j[j["attribute"].notna().to_numpy()]
    t = d.groupby(["kind", "attribute"], observed=True).size().rename("changes")
    return t.sort_values(ascending=False, kind="stable").reset_index()


def divergences(j: pd.DataFrame) -> pd.DataFrame:
    """The reconciliation divergences: date, kind, pseudonym, operation, attribute, school."""
    d = j[j["divergence"].to_numpy()]
    out = d.assign(school=_school(d))
    return out[["date", "kind", "pseudonym", "operation", "attribute", "school"]].reset_index(
        drop=True
    )


def divergences_by_attribute(j: pd.DataFrame) -> dict[str, int]:
    """Divergences per attribute; a whole record only on one side is
    ``record_only_in_complete`` or ``record_only_in_state``."""
    d = divergences(j)
    key = d["attribute"].fillna(d["operation"].astype(str).map(WHOLE_RECORD))
    return {str(k): int(v) for k, v in key.value_counts().sort_index().items()}


@dataclass(frozen=True)
class DeltaInspection:
    """What the journal says about one window of extractions."""

    since: dt.date | None
    until: dt.date | None
    journal: pd.DataFrame
    """The journal rows in the window (pseudonymous)."""
    extractions: pd.DataFrame
    """The ingested extractions in the window."""
    reconciled: tuple[dt.date, ...]
    """Complets of the window ingested over a state built by Deltas."""

    @property
    def divergences(self) -> pd.DataFrame:
        return divergences(self.journal)

    def counts(self) -> dict[str, dict[str, int]]:
        return change_counts(self.journal)

    def modify_noop(self) -> int:
        return int(self.journal["noop"].sum())

    def checks(self) -> list[Check]:
        n = len(self.divergences)
        title = "Les Delta mènent au Complet suivant"
        if not self.reconciled:
            none = "aucun Complet reçu après des Delta dans la période"
            return [Check.of("reconciliation", title, None, blocking=True, detail=none)]
        dates = ", ".join(d.strftime("%d/%m/%Y") for d in self.reconciled)
        detail = (
            f"{n} divergence(s) entre l'état construit par les Delta et le Complet du {dates}"
            if n
            else f"aucune divergence (Complet du {dates})"
        )
        return [Check.of("reconciliation", title, n == 0, blocking=True, detail=detail)]

    def to_dict(self) -> dict:
        """The key figures (``summary.json``): stable English keys."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "extractions": len(self.extractions),
            "deltas": int((self.extractions["extraction"] == "delta").sum()),
            "reconciliations": len(self.reconciled),
            "changes": self.counts(),
            "modify_noop": self.modify_noop(),
            "divergences": len(self.divergences),
            "divergences_by_attribute": divergences_by_attribute(self.journal),
            "pupils_moved": len(moved_pupils(self.journal)),
        }

    def write_findings(self, run_dir: str | Path) -> Path | None:
        """``findings.csv`` in ``run_dir``: the divergences, pseudonymous, French columns;
        nothing without ``run_dir`` (plain papermill)."""
        if not run_dir:
            return None
        return write_csv(Path(run_dir) / "findings.csv", divergence_table(self.journal))


def divergence_table(j: pd.DataFrame) -> pd.DataFrame:
    """The divergences as a coordinator reads them (French labels and values)."""
    d = divergences(j)
    return pd.DataFrame(
        {
            LABELS["date"]: pd.to_datetime(d["date"]).dt.strftime("%d/%m/%Y"),
            LABELS["kind"]: d["kind"].map(KIND_LABELS),
            LABELS["pseudonym"]: d["pseudonym"],
            LABELS["operation"]: d["operation"].astype(str).map(OPERATION_LABELS),
            LABELS["attribute"]: d["attribute"].fillna("(fiche entière)"),
            LABELS["school"]: d["school"].fillna("(aucune)"),
        }
    )


def masked(counts: pd.DataFrame, columns: list[str], threshold: int) -> pd.DataFrame:
    """``counts`` with those columns as text, counts under ``threshold`` shown ``<threshold``."""
    out = counts.copy()
    for c in columns:
        out[c] = small_cells(out[c], threshold)
    return out


def inspect(
    journal: pd.DataFrame,
    history: pd.DataFrame,
    since: dt.date | str | None = None,
    until: dt.date | str | None = None,
) -> DeltaInspection:
    """The journal between ``since`` and ``until`` (dates, included; empty or None: since
    the previous Complet, until the latest extraction)."""
    start, end = default_window(history)
    since = dt.date.fromisoformat(since) if isinstance(since, str) and since else since or start
    until = dt.date.fromisoformat(until) if isinstance(until, str) and until else until or end
    extractions = in_window(history, since, until)
    done = tuple(
        d
        for d in reconciliations(history)
        if (since is None or d >= since) and (until is None or d <= until)
    )
    rows = in_window(journal, since, until).reset_index(drop=True)
    return DeltaInspection(since, until, rows, extractions.reset_index(drop=True), done)


def verdict(result: DeltaInspection) -> str:
    """The first thing the page says (Markdown, French): divergences found or not."""
    window = _window_text(result)
    [check] = result.checks()
    if check.status == "skipped":
        return (
            f"**Réconciliation non contrôlée** ({window}) : {check.detail}. Les changements "
            "transmis par les Delta sont présentés ci-dessous ; leur exactitude sera vérifiée "
            "à la réception du prochain Complet."
        )
    if check.failed:
        return (
            f"**ÉCHEC : les Delta n'ont pas dit toute la vérité** ({window}). {check.detail} : "
            "des fiches ou des valeurs que les Delta n'ont pas transmises (ou ont transmises "
            "fausses). Le Complet l'a emporté et l'ENT est à jour, mais les comptes créés ou "
            "supprimés d'après ces Delta ont pu être faux entre-temps. La liste est en fin de "
            "page et dans `findings.csv`."
        )
    return (
        f"**Conforme : les Delta mènent exactement au Complet suivant** ({window}) : "
        f"{check.detail}."
    )


def _window_text(result: DeltaInspection) -> str:
    def fr(d: dt.date | None) -> str:
        return d.strftime("%d/%m/%Y") if d else "…"

    n = len(result.extractions)
    return f"du {fr(result.since)} au {fr(result.until)}, {n} extraction(s) ingérée(s)"


def headline_table(result: DeltaInspection) -> pd.DataFrame:
    """Key figures of the window as a two-column French table."""
    f = result.to_dict()
    totals = {op: sum(k[op] for k in f["changes"].values()) for op in DELTA_OPERATIONS}
    rows = [
        ("extractions ingérées dans la période", f["extractions"]),
        ("dont Delta", f["deltas"]),
        ("fiches ajoutées par les Delta", totals["add"]),
        ("fiches modifiées par les Delta", totals["modify"]),
        ("dont modifications sans effet", f["modify_noop"]),
        ("fiches supprimées par les Delta", totals["delete"]),
        ("élèves ayant changé d'école", f["pupils_moved"]),
        ("Complets réconciliés", f["reconciliations"]),
        ("divergences de réconciliation", f["divergences"]),
    ]
    return pd.DataFrame(rows, columns=["", "nombre"])


def kind_table(result: DeltaInspection) -> pd.DataFrame:
    """Adds, modifies (and no-op ones) and deletes per kind of record, French labels."""
    counts = result.counts()
    noop = result.journal[result.journal["noop"].to_numpy()].groupby("kind", observed=True).size()
    return pd.DataFrame(
        [
            {
                LABELS["kind"]: KIND_LABELS[k],
                LABELS["add"]: counts[k]["add"],
                LABELS["modify"]: counts[k]["modify"],
                LABELS["modify_noop"]: int(noop.get(k, 0)),
                LABELS["delete"]: counts[k]["delete"],
            }
            for k in FRAMES
        ]
    )


def weekly(j: pd.DataFrame) -> pd.DataFrame:
    """Arrivals, departures and moves of pupils per week over the whole perimeter (long
    form, French labels): what the chart draws."""
    m = movements(j)
    t = m.groupby("week")[["arrivals", "departures", "moved_in"]].sum().reset_index()
    long = t.melt(id_vars="week", var_name="what", value_name="pupils")
    names = {"arrivals": "arrivées", "departures": "départs", "moved_in": "changements d'école"}
    return long.assign(what=long["what"].map(names))
