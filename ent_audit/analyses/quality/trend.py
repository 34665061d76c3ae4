"""Trend: this audit against the report's earlier runs, read from their run folders.

A report reads the store and writes only under its run folder, so the history is not kept
anywhere else: each run's ``summary.json`` holds its per-rule counts (counts only) and its
``findings.csv`` the findings' keyed pseudonyms. The report hands the earlier summaries in
(``ent_audit.reports.runner.earlier_summaries``, each with its ``run`` folder): the
comparison is with the newest earlier run of an older state of the same perimeter, and a
finding is *new*, *persistent* or *corrected* by its pseudonym (rule, kind, pseudonymised
jointure, attribute). Every figure names the run it comes from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ent_audit.aaf.frames import STRING
from ent_audit.analyses.quality.audit import AuditResult
from ent_audit.analyses.quality.catalogue import RULE_BY_ID, SEVERITY_LABELS, Severity
from ent_audit.analyses.quality.present import FINDINGS_CSV, read_findings_csv

KEY = ("rule", "kind", "jointure", "attribute")
"""What identifies a finding from one run to the next: published columns only (the
jointure is a keyed pseudonym for people)."""
COLUMNS = (
    "rule",
    "title",
    "severity",
    "previous",
    "current",
    "change",
    "new",
    "persistent",
    "corrected",
)


@dataclass(frozen=True)
class Trend:
    """This audit against the previous run (``previous`` is ``None`` when there is none)."""

    previous: dict | None
    """The run compared with: ``run`` (its folder's name), ``state_date``, ``started``."""
    rules: pd.DataFrame
    """Rules whose findings changed, one row each (:data:`COLUMNS`); ``new``,
    ``persistent`` and ``corrected`` are empty when the previous run's ``findings.csv`` is
    gone (purged) or was never written."""
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The changed rules' counts per earlier state (one point per state: its newest run)
    and this one: ``run``, ``state_date`` (and ``state``, « 14/09/2026 »), ``rule``,
    ``title``, ``count``."""
    pseudonyms_compared: bool = False

    def to_dict(self) -> dict:
        """For ``summary.json``: stable English keys, counts and run names only."""
        if self.previous is None:
            return {}
        r = self.rules.astype(object).where(self.rules.notna(), None)
        return {
            "previous_run": self.previous["run"],
            "previous_date": self.previous["state_date"],
            "change": {
                row["rule"]: row["change"] for row in r[["rule", "change"]].to_dict("records")
            },
            "trend": {
                row["rule"]: {k: row[k] for k in ("previous", "current", "new", "corrected")}
                for row in r.to_dict("records")
            },
        }


def _keys(findings: pd.DataFrame) -> pd.Series:
    """One string per finding from :data:`KEY` (vectorised)."""
    out = findings["rule"].astype(STRING).fillna("")
    for col in KEY[1:]:
        out = out + "\x1f" + findings[col].astype(STRING).fillna("")
    return out


def _same_perimeter(summary: Mapping, result: AuditResult) -> bool:
    figures = summary.get("figures", {})
    return (
        figures.get("perimeter") in (None, result.perimeter)
        and isinstance(figures.get("rules"), dict)
        and bool(figures.get("state_date"))
        and figures["state_date"] < str(result.date)
    )


def _run_info(summary: Mapping) -> dict:
    run = Path(summary.get("run", ""))
    return {
        "run": run.name,
        "state_date": summary["figures"]["state_date"],
        "folder": str(run),
    }


def trend(result: AuditResult, published: pd.DataFrame, earlier: Sequence[Mapping]) -> Trend:
    """Compare ``result`` (its ``published`` findings: pseudonyms) with the newest of the
    ``earlier`` run summaries (newest first, each with its ``run`` folder) that audited an
    older state of the same perimeter."""
    candidates = [s for s in earlier if _same_perimeter(s, result)]
    empty = pd.DataFrame(columns=list(COLUMNS))
    if not candidates:
        return Trend(None, empty)
    last = candidates[0]
    previous = _run_info(last)
    before = last["figures"]["rules"]
    now = result.counts()
    frame = pd.DataFrame(
        {
            "rule": list(now),
            "previous": pd.array([before.get(r) for r in now], dtype="Int64"),
            "current": pd.array(list(now.values()), dtype="Int64"),
        }
    )
    frame["change"] = frame["current"] - frame["previous"]
    old = read_findings_csv(Path(previous["folder"]) / FINDINGS_CSV)
    compared = old is not None and set(KEY) <= set(old.columns)
    if compared:
        new_keys, old_keys = _keys(published), _keys(old)
        is_new = ~new_keys.isin(old_keys)
        is_gone = ~old_keys.isin(new_keys)
        counts = {
            "new": published["rule"][is_new.to_numpy()].value_counts(),
            "persistent": published["rule"][~is_new.to_numpy()].value_counts(),
            "corrected": old["rule"][is_gone.to_numpy()].value_counts(),
        }
        for name, c in counts.items():
            frame[name] = frame["rule"].map(c).fillna(0).astype("Int64")
    else:
        for name in ("new", "persistent", "corrected"):
            frame[name] = pd.array([pd.NA] * len(frame), dtype="Int64")
    moved = (
        (frame["current"].fillna(0) != frame["previous"].fillna(0))
        | (frame["new"].fillna(0) > 0)
        | (frame["corrected"].fillna(0) > 0)
    )
    frame = frame[moved.to_numpy()].copy()
    frame["title"] = frame["rule"].map(lambda r: RULE_BY_ID[r].title)
    frame["severity"] = frame["rule"].map(lambda r: RULE_BY_ID[r].severity.value)
    rank = {s.value: i for i, s in enumerate(Severity)}
    frame = frame.assign(_s=frame["severity"].map(rank)).sort_values(
        ["_s", "change", "rule"], ascending=[True, False, True], na_position="last"
    )
    rules = frame[list(COLUMNS)].reset_index(drop=True)
    return Trend(previous, rules, _history(result, candidates, rules), compared)


def _history(result: AuditResult, candidates: Sequence[Mapping], rules: pd.DataFrame):
    """One point per earlier state (its newest run) and this audit, for the changed rules."""
    seen: dict[str, Mapping] = {}
    for s in candidates:  # newest first: the first run of a state is its newest
        seen.setdefault(s["figures"]["state_date"], s)
    now = result.counts()
    rows = []
    for state, s in sorted(seen.items()):
        for rule in rules["rule"]:
            rows.append(
                {
                    "run": Path(s.get("run", "")).name,
                    "state_date": state,
                    "rule": rule,
                    "count": s["figures"]["rules"].get(rule),
                }
            )
    for rule in rules["rule"]:
        rows.append(
            {"run": "", "state_date": str(result.date), "rule": rule, "count": now.get(rule)}
        )
    out = pd.DataFrame(rows, columns=["run", "state_date", "rule", "count"])
    out["title"] = out["rule"].map(lambda r: RULE_BY_ID[r].title)
    out["count"] = out["count"].astype("Int64")
    out["state"] = out["state_date"].map(_fr_date)
    out["run"] = out["run"].mask(out["run"] == "", "cette exécution")
    return out


TREND_LABELS = {
    "title": "règle",
    "severity": "sévérité",
    "previous": "constats avant",
    "current": "constats maintenant",
    "change": "évolution",
    "new": "nouveaux",
    "persistent": "persistants",
    "corrected": "corrigés",
}


def trend_table(t: Trend) -> pd.DataFrame:
    """The changed rules as the report shows them (severity in French, no rule id column:
    the title reads)."""
    r = t.rules
    return r.assign(
        severity=r["severity"].map({x.value: SEVERITY_LABELS[x] for x in Severity}),
        title=r["title"] + " (" + r["rule"] + ")",
    )[["title", "severity", "previous", "current", "change", "new", "persistent", "corrected"]]


def _fr_date(iso: str) -> str:
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}"


def trend_note(t: Trend, report: str = "quality") -> str:
    """Markdown: which run this audit is compared with (a link to its page), how findings
    are matched, and what changed."""
    if t.previous is None:
        return (
            "Aucune exécution antérieure de ce rapport sur un état plus ancien du même "
            "périmètre (dans ce dossier de rapports) : pas encore d'évolution à montrer."
        )
    p = t.previous
    link = f"[exécution {p['run']}](../{p['run']}/{report}.html)"
    how = (
        "Un constat est *nouveau*, *persistant* ou *corrigé* selon que sa fiche (pseudonyme), "
        "sa règle et son attribut figuraient ou non dans le fichier des constats de cette "
        "exécution."
        if t.pseudonyms_compared
        else "Le fichier des constats de cette exécution n'existe plus (purgé) ou n'a pas été "
        "écrit : seuls les nombres de constats sont comparés."
    )
    what = (
        f"{len(t.rules)} règle(s) ont changé ; les autres sont identiques."
        if len(t.rules)
        else "Aucune règle n'a changé : mêmes constats que lors de cette exécution."
    )
    return (
        f"Comparaison avec l'état du {_fr_date(p['state_date'])}, audité par l'{link}. {how} {what}"
    )
