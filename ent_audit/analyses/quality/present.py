"""What the report shows and writes: French tables (small cells hidden), the headline,
explanations, key figures for ``summary.json``, and the published files: ``findings.csv``
(keyed pseudonyms, masked values) and, on request only, per-school CSVs in clear for those
who correct the data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING, isin
from ent_audit.analyses.quality.audit import AuditResult
from ent_audit.analyses.quality.catalogue import (
    CORRECTOR_LABELS,
    ID_KIND,
    RULE_BY_ID,
    RULES,
    SEVERITY_LABELS,
    SEVERITY_RANK,
    Severity,
    ValuePolicy,
    catalogue,
)
from ent_audit.analyses.quality.context import PEOPLE, pair
from ent_audit.exceptions import QualityError
from ent_audit.io import private_dir, write_atomic, write_csv
from ent_audit.privacy import Pseudonymiser, small_cells

SEVERITY_COLOURS = {
    SEVERITY_LABELS[Severity.BLOCKING]: "#c0392b",
    SEVERITY_LABELS[Severity.WARNING]: "#e67e22",
    SEVERITY_LABELS[Severity.INFO]: "#2e86c1",
}
"""Chart colours by French severity label."""


def figures(result: AuditResult, trend_frame: pd.DataFrame | None = None) -> dict:
    """Key figures for ``summary.json`` (counts and UAIs, nothing personal)."""
    sev = result.findings["severity"].value_counts()
    s = result.summary
    scores = result.schools["score"]
    out = {
        "state_date": str(result.date),
        "findings": len(result.findings),
        **{f"{x.value}_findings": int(sev.get(x.value, 0)) for x in Severity},
        "rules_failed": len(result.failed),
        "rules_failed_ids": result.failed,
        "rules_over_warn": int(s["status"].isin(["warn", "fail"]).sum()),
        "perimeter_checked": result.parameters.get("perimeter") is not None,
        "schools": len(result.schools),
        "score_median": float(scores.median()) if len(scores) else None,
        "score_min": float(scores.min()) if len(scores) else None,
        "rules": result.counts(),
    }
    if trend_frame is not None and len(trend_frame):
        out["previous_date"] = str(trend_frame["previous_date"].iloc[0])
        out["change"] = {
            r: (None if pd.isna(c) else int(c))
            for r, c in zip(trend_frame["rule"], trend_frame["change"], strict=True)
        }
    return out


def _mask(values: pd.Series) -> pd.Series:
    """First character, then one ``*`` per character (vectorised :func:`privacy.mask_name`)."""
    v = values.astype(STRING)
    return v.str.slice(0, 1) + v.str.slice(1).str.replace(r"(?s).", "*", regex=True)


def _personal_attributes() -> set[tuple[str, str]]:
    """(kind, attribute) whose values are personal data or hold people's ids."""
    out = set()
    for kind in schema.KINDS.values():
        for f in kind.fields:
            if f.personal or f.link == "student_guardian":
                out |= {(kind.name, name) for name in (f.attr, *f.aliases)}
    return out


def published_findings(result: AuditResult, pseudonymiser: Pseudonymiser) -> pd.DataFrame:
    """``findings`` safe to publish: people's jointures as keyed pseudonyms, values masked
    (personal attributes and unknown ones) or pseudonymised (ids of people)."""
    f = result.findings.copy()
    personal = _personal_attributes()
    for kind in PEOPLE:
        mine = (f["kind"] == kind.name).fillna(False).to_numpy()
        if mine.any():
            f.loc[mine, "jointure"] = pseudonymiser.ids(kind.name, f.loc[mine, "jointure"])
    policy = f["rule"].map({r.id: r.value for r in RULES}).to_numpy(dtype=object)
    value = f["value"].copy()
    key = pair(f["kind"].fillna(""), f["attribute"].fillna(""))
    known = [f"{k.name}\x1f{a}" for k in schema.KINDS.values() for a in k.by_attr]
    is_personal = isin(key, [f"{k}\x1f{a}" for k, a in personal]) | ~isin(key, known)
    mask = (policy == ValuePolicy.MASKED) | (
        (policy == ValuePolicy.MASKED_IF_PERSONAL) & is_personal
    )
    value[mask] = _mask(value[mask])
    for kind in PEOPLE:
        own = (policy == ValuePolicy.OWN_ID) & (f["kind"] == kind.name).fillna(False).to_numpy()
        theirs = np.isin(policy, [p for p, k in ID_KIND.items() if k == kind.name])
        ids = own | theirs
        if ids.any():
            value[ids] = pseudonymiser.ids(kind.name, value[ids])
    f["value"] = value.astype(STRING)
    return f


def write_findings_csv(
    result: AuditResult, pseudonymiser: Pseudonymiser, folder: Path | str
) -> Path:
    """``findings.csv`` (pseudonymised, masked) in ``folder``; ``;``-separated, UTF-8 with BOM
    so that a spreadsheet opens it as is."""
    return write_csv(Path(folder) / "findings.csv", published_findings(result, pseudonymiser))


CLEAR_README = """Constats de l'audit qualité, en clair, par école (un fichier par UAI).

ATTENTION : ces fichiers contiennent des données personnelles (identifiants de jointure,
valeurs erronées en clair : noms, dates, adresses, téléphones). Ils sont destinés au seul
prestataire de l'ENT ou à l'école concernée pour corriger les fiches ; ne pas les publier,
ne pas les joindre aux rapports, les supprimer une fois les corrections faites.
"""


def write_clear_csvs(result: AuditResult, folder: Path | str) -> list[Path]:
    """One CSV per school with clear ids and values, for the provider to correct.

    Personal data: the folder is created 0700, every file 0600, with a ``LISEZMOI.txt``
    saying so. Findings with no school go to ``sans-ecole.csv``.
    """
    folder = private_dir(folder)
    titles = {r.id: r.title for r in RULES}
    corrections = {r.id: r.correction for r in RULES}
    f = result.findings.assign(
        title=result.findings["rule"].map(titles),
        correction=result.findings["rule"].map(corrections),
    )
    paths = [write_atomic(folder / "LISEZMOI.txt", CLEAR_README)]
    for uai, rows in f.groupby(f["uai"].fillna("sans-ecole"), sort=True):
        paths.append(write_csv(folder / f"{uai}.csv", rows))
    return paths


# ---------------------------------------------------------------------------------------------
# Tables for the report (French labels, small cells)
# ---------------------------------------------------------------------------------------------

STATUS_LABELS = {
    "ok": "conforme",
    "warn": "à surveiller",
    "fail": "ÉCHEC",
    "skipped": "non contrôlé",
}
LABELS = {
    "rule": "règle",
    "severity": "sévérité",
    "title": "constat",
    "count": "constats",
    "rate": "taux",
    "warn": "seuil d'alerte",
    "fail": "seuil d'échec",
    "status": "statut",
    "uai": "UAI",
    "name": "école",
    "circonscription": "circonscription",
    "commune": "commune",
    "records": "fiches",
    "blocking": "bloquants",
    "warning": "avertissements",
    "info": "informations",
    "findings": "constats",
    "score": "score",
    "schools": "écoles",
    "schools_with_blocking": "écoles avec un constat bloquant",
    "previous": "précédente",
    "current": "actuelle",
    "change": "évolution",
    "corrector": "correction par",
    "kinds": "fichiers",
    "attributes": "attributs AAF",
}


def rule_table(result: AuditResult) -> pd.DataFrame:
    """Per-rule summary for the report: rules with findings or not checked, worst first."""
    s = result.summary
    s = s[(s["count"] > 0) | (s["status"] == "skipped")]
    s = s.assign(
        _s=s["severity"].map({x.value: SEVERITY_RANK[x] for x in Severity}),
        _f=(s["status"] != "fail"),
    ).sort_values(["_s", "_f", "count"], ascending=[True, True, False], kind="stable")
    return pd.DataFrame(
        {
            "rule": s["rule"],
            "severity": s["severity"].map({x.value: SEVERITY_LABELS[x] for x in Severity}),
            "title": s["title"],
            "count": s["count"],
            "rate": (s["rate"] * 100).round(2).astype(str) + " %",
            "warn": s["warn"].fillna("—"),
            "fail": s["fail"].fillna("—"),
            "status": s["status"].map(STATUS_LABELS),
        }
    ).reset_index(drop=True)


def headline(result: AuditResult) -> pd.DataFrame:
    """Rules, rules over their thresholds and findings, per severity."""
    s = result.summary
    rows = []
    for sev in Severity:
        mine = s[s["severity"] == sev.value]
        rows.append(
            {
                "severity": SEVERITY_LABELS[sev],
                "rules": len(mine),
                "checked": int((mine["status"] != "skipped").sum()),
                "with_findings": int((mine["count"] > 0).sum()),
                "fail": int((mine["status"] == "fail").sum()),
                "findings": int(mine["count"].sum()),
            }
        )
    return pd.DataFrame(rows).rename(
        columns={
            "severity": "sévérité",
            "rules": "règles",
            "checked": "contrôlées",
            "with_findings": "avec constats",
            "fail": "en échec",
            "findings": "constats",
        }
    )


def worst_schools(result: AuditResult, n: int = 20, small_cell: int = 5) -> pd.DataFrame:
    """The ``n`` lowest scores, counts under ``small_cell`` shown as ``<small_cell``."""
    w = result.schools.head(n).copy()
    for c in ("records", "blocking", "warning", "info", "findings"):
        w[c] = small_cells(w[c], small_cell)
    w["score"] = w["score"].map("{:.1f}".format)
    return w[["uai", "name", "circonscription", "records", "blocking", "warning", "info", "score"]]


def circonscription_table(result: AuditResult, small_cell: int = 5) -> pd.DataFrame:
    c = result.circonscriptions.copy()
    for col in ("blocking", "warning", "info", "findings", "schools_with_blocking"):
        c[col] = small_cells(c[col], small_cell)
    c["score"] = c["score"].map("{:.1f}".format)
    return c[
        [
            "circonscription",
            "schools",
            "records",
            "blocking",
            "warning",
            "info",
            "schools_with_blocking",
            "score",
        ]
    ]


def explanations(result: AuditResult) -> str:
    """Markdown: each rule with findings (worst first), what it means and how to correct."""
    s = result.summary
    out = []
    for row in s[s["count"] > 0].itertuples():
        rule = RULE_BY_ID[row.rule]
        out.append(
            f"### {rule.title}\n\n`{rule.id}` · {SEVERITY_LABELS[rule.severity]} · "
            f"{row.count} constat(s) · {STATUS_LABELS[row.status]} · attributs : "
            f"{', '.join(rule.attributes)}\n\n{rule.explanation}\n\n"
            f"**Qui corrige** : {CORRECTOR_LABELS[rule.corrector]}. {rule.correction}\n"
        )
    return "\n".join(out) if out else "Aucun constat : rien à corriger."


def trend_table(changes: pd.DataFrame) -> pd.DataFrame:
    """Rules whose count is or was above zero, biggest rise first (report table)."""
    if changes.empty:
        return changes
    moved = changes[(changes["current"].fillna(0) > 0) | (changes["previous"].fillna(0) > 0)]
    return (
        moved.assign(
            severity=moved["severity"].map({x.value: SEVERITY_LABELS[x] for x in Severity})
        )
        .sort_values(["change", "rule"], ascending=[False, True], na_position="last")[
            ["rule", "severity", "title", "previous", "current", "change"]
        ]
        .reset_index(drop=True)
    )


CLEAR_FOLDER = "a-corriger"


def write_outputs(
    result: AuditResult,
    pseudonymiser: Pseudonymiser,
    *,
    run_dir: str | Path,
    clear_csv: bool = False,
    clear_csv_dir: str | Path = "",
) -> list[Path]:
    """The report's files: ``findings.csv`` (pseudonymised) in ``run_dir`` and, when
    ``clear_csv``, the per-school CSVs in clear in ``clear_csv_dir`` (default
    ``run_dir/a-corriger``). Without ``run_dir`` (plain papermill) no ``findings.csv``."""
    written = []
    if run_dir:
        written.append(write_findings_csv(result, pseudonymiser, run_dir))
    if clear_csv:
        folder = clear_csv_dir or (Path(run_dir) / CLEAR_FOLDER if run_dir else "")
        if not folder:
            raise QualityError(
                "clear_csv_dir",
                "clear_csv demandé sans dossier : donnez "
                "clear_csv_dir (ou lancez par ent-audit report)",
            )
        written += write_clear_csvs(result, folder)
    return written


def outputs_note(result: AuditResult, written: list[Path]) -> str:
    """Markdown saying which files were written (names only, no content)."""
    if not written:
        return "Aucun fichier écrit : `run_dir` est vide (exécution hors de `ent-audit report`)."
    lines = []
    clear = [p for p in written if p.name != "findings.csv"]
    if any(p.name == "findings.csv" for p in written):
        lines.append(
            f"- `findings.csv` : {len(result.findings)} constat(s), "
            "identifiants pseudonymisés (clé du store) et valeurs masquées."
        )
    if clear:
        csvs = [p for p in clear if p.suffix == ".csv"]
        lines.append(
            f"- `{clear[0].parent.name}/` : {len(csvs)} fichier(s) CSV par école "
            "**en clair, avec des données personnelles** (fichiers 0600) : pour le "
            "seul prestataire ou l'école concernée, à supprimer après correction."
        )
    return "\n".join(lines)


def context_note(result: AuditResult) -> str:
    """Markdown: which state was audited, the school year, whether the perimeter was checked."""
    p = result.parameters
    perimeter = (
        f"contrôlé sur la liste de {p['perimeter_schools']} école(s) de la convention"
        if p.get("perimeter")
        else "**non contrôlé** (aucune liste d'écoles fournie : paramètre `perimeter`) ; "
        "les règles `school_outside_perimeter` et `person_outside_perimeter` ne sont "
        "pas appliquées"
    )
    return (
        f"État du store : extraction {result.perimeter} du {result.date}, année scolaire "
        f"{p['school_year']} ; {len(result.schools)} école(s). Périmètre : {perimeter}. "
        f"{len(result.findings)} constat(s) au total."
    )


def catalogue_table() -> pd.DataFrame:
    """The catalogue for the report's appendix (French severity labels)."""
    c = catalogue()
    c["severity"] = c["severity"].map({x.value: SEVERITY_LABELS[x] for x in Severity})
    return c[["rule", "severity", "title", "kinds", "attributes", "corrector"]]
