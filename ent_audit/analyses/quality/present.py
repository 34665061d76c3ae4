"""What the report shows and writes: French tables (small cells hidden), the headline,
explanations, key figures for ``summary.json``, and the published files: ``findings.csv``
(keyed pseudonyms, masked values) and, on request only, per-school CSVs in clear for those
who correct the data.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING, isin
from ent_audit.analyses.quality.audit import (
    DEFAULT_THRESHOLDS,
    AuditResult,
    Threshold,
    resolve_thresholds,
)
from ent_audit.analyses.quality.catalogue import (
    CORRECTOR_LABELS,
    ID_KIND,
    RULE_BY_ID,
    RULES,
    SEVERITY_LABELS,
    SEVERITY_RANK,
    Population,
    Severity,
    ValuePolicy,
    catalogue,
)
from ent_audit.analyses.quality.context import PEOPLE, pair
from ent_audit.exceptions import QualityError
from ent_audit.io import private_dir, write_atomic, write_csv
from ent_audit.privacy import Pseudonymiser, small_cells

if TYPE_CHECKING:
    from ent_audit.analyses.quality.trend import Trend

SEVERITY_COLOURS = {
    SEVERITY_LABELS[Severity.BLOCKING]: "#c0392b",
    SEVERITY_LABELS[Severity.WARNING]: "#e67e22",
    SEVERITY_LABELS[Severity.INFO]: "#2e86c1",
}
"""Chart colours by French severity label."""


def figures(result: AuditResult, trend: Trend | None = None) -> dict:
    """Key figures for ``summary.json`` (counts and UAIs, nothing personal): per-rule counts
    (``rules``), and against the previous run its id, state date and, per rule that
    changed, the counts of new, persistent and corrected findings."""
    sev = result.findings["severity"].value_counts()
    scores = result.schools["score"]
    s = result.summary
    out = {
        "state_date": str(result.date),
        "perimeter": result.perimeter,
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
    if trend is not None and trend.previous is not None:
        out |= trend.to_dict()
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


FINDINGS_CSV = "findings.csv"
FINDING_HEADERS = {
    "rule": "règle",
    "title": "constat",
    "severity": "sévérité",
    "kind": "fichier AAF",
    "jointure": "identifiant (pseudonyme)",
    "uai": "UAI de l'école",
    "attribute": "attribut AAF",
    "value": "valeur (masquée)",
    "source": "fichier:ligne",
}
"""French headers of ``findings.csv`` (the file is for people; ``summary.json`` keeps
English keys). :func:`read_findings_csv` reads them back."""
CLEAR_HEADERS = {
    **FINDING_HEADERS,
    "jointure": "jointure",
    "value": "valeur",
    "correction": "comment corriger",
}
"""The clear CSVs' headers: ``ent_audit.store.purge`` finds the people through the
« fichier AAF » and « jointure » columns."""


def _for_people(f: pd.DataFrame, headers: dict[str, str]) -> pd.DataFrame:
    """Findings as a French spreadsheet shows them: the rule's title beside its id, the
    severity in French, French headers."""
    f = f.assign(
        title=f["rule"].map({r.id: r.title for r in RULES}),
        severity=f["severity"].map({x.value: SEVERITY_LABELS[x] for x in Severity}),
    )
    return f[[c for c in headers if c in f.columns]].rename(columns=headers)


def read_findings_csv(path: Path | str) -> pd.DataFrame | None:
    """A run's ``findings.csv`` back with the English column names (``None`` when absent:
    not written, or purged)."""
    try:
        df = pd.read_csv(path, sep=";", dtype=str, encoding="utf-8-sig", keep_default_na=False)
    except FileNotFoundError:
        return None
    return df.rename(columns={v: k for k, v in FINDING_HEADERS.items()}).replace("", pd.NA)


def write_findings_csv(
    result: AuditResult, pseudonymiser: Pseudonymiser, folder: Path | str
) -> Path:
    """``findings.csv`` (pseudonymised, masked) in ``folder``; ``;``-separated, UTF-8 with BOM
    so that a spreadsheet opens it as is."""
    return write_csv(
        Path(folder) / FINDINGS_CSV,
        _for_people(published_findings(result, pseudonymiser), FINDING_HEADERS),
    )


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
    corrections = {r.id: r.correction for r in RULES}
    f = _for_people(
        result.findings.assign(correction=result.findings["rule"].map(corrections)),
        CLEAR_HEADERS,
    )
    school = CLEAR_HEADERS["uai"]
    paths = [write_atomic(folder / "LISEZMOI.txt", CLEAR_README)]
    for uai, rows in f.groupby(f[school].fillna("sans-ecole"), sort=True):
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


STATUS_RANK = {"fail": 0, "warn": 1, "ok": 2, "skipped": 3}
"""Within a severity: failed rules first, then those over their warning threshold."""
POPULATION_LABELS = {
    Population.STRUCTURES: "structures",
    Population.SCHOOLS: "écoles",
    Population.PUPILS: "élèves",
    Population.GUARDIANS: "responsables",
    Population.STAFF: "personnels",
    Population.PEOPLE: "personnes",
    Population.RECORDS: "fiches",
}
EXAMPLES = 3
"""Findings shown per rule in the report's table (the rest are in ``findings.csv``)."""


def _n(value: int) -> str:
    """« 1 500 »: the French thousands separator (narrow no-break space)."""
    return f"{int(value):,}".replace(",", "\u202f")


def anchor(rule_id: str) -> str:
    """The id of a rule's « que corriger » explanation: the table links to it."""
    return f"corriger-{rule_id}"


def ordered(result: AuditResult) -> pd.DataFrame:
    """The summary's rules with findings, as the report reads them: blocking first, then
    warnings and infos; within a severity failed rules, then rules over their warning
    threshold, then the most findings."""
    s = result.summary
    s = s[s["count"] > 0]
    return (
        s.assign(
            _s=s["severity"].map({x.value: SEVERITY_RANK[x] for x in Severity}),
            _st=s["status"].map(STATUS_RANK),
        )
        .sort_values(["_s", "_st", "count", "rule"], ascending=[True, True, False, True])
        .drop(columns=["_s", "_st"])
        .reset_index(drop=True)
    )


def threshold_text(spec, population: Population) -> str:
    """A threshold as a coordinator reads it: « dès 1 constat », « dès 5 % des élèves »."""
    if spec is None or (isinstance(spec, float) and np.isnan(spec)):
        return "aucun"
    spec = str(spec)
    if spec.endswith("%"):
        return f"dès {spec[:-1].replace('.', ',')}\u202f% des {POPULATION_LABELS[population]}"
    n = int(spec)
    return f"dès {_n(n)} constat{'s' if n > 1 else ''}"


def examples(published: pd.DataFrame, n: int = EXAMPLES) -> pd.Series:
    """Up to ``n`` published findings per rule, one per line: school UAI, pseudonym, masked
    value, ``file:line`` (HTML-escaped, for the report's table)."""
    head = published.groupby("rule", sort=False, observed=True).head(n)
    if head.empty:
        return pd.Series(dtype=object)
    source = head["source"].astype(STRING).str.replace(r"^.*_(\w+_\d+\.xml:)", r"\1", regex=True)
    parts = [
        head["uai"].astype(STRING).fillna("sans école"),
        head["jointure"].astype(STRING).fillna("—"),
        head["value"].astype(STRING).fillna("—"),
        source.fillna("—"),
    ]
    line = parts[0]
    for part in parts[1:]:
        line = line + " · " + part
    line = line.map(lambda t: html.escape(t, quote=False)).astype(object)
    return line.groupby(head["rule"].astype(object), sort=False).agg("<br>".join)


def rule_table(result: AuditResult, published: pd.DataFrame) -> pd.DataFrame:
    """The report's core table: one row per rule with findings (:func:`ordered`): status,
    rule (linking to its « que corriger » explanation), findings, population, rate,
    thresholds, up to :data:`EXAMPLES` published findings. ``published`` is
    :func:`published_findings` (pseudonyms, masked values): never the clear findings."""
    s = ordered(result)
    rules = [RULE_BY_ID[r] for r in s["rule"]]
    ex = examples(published[published["rule"].isin(s["rule"])])
    return pd.DataFrame(
        {
            "status": s["status"].map(STATUS_LABELS),
            "severity": [SEVERITY_LABELS[r.severity] for r in rules],
            "rule": [
                f'<a href="#{anchor(r.id)}">{html.escape(r.title)}</a><br><code>{r.id}</code>'
                for r in rules
            ],
            "count": s["count"].astype(int),
            "population": [
                f"{_n(n)} {POPULATION_LABELS[r.population]}"
                for n, r in zip(s["population"], rules, strict=True)
            ],
            "rate": (s["rate"].astype(float) * 100).round(2),
            "thresholds": [
                f"alerte {threshold_text(w, r.population)}<br>"
                f"échec {threshold_text(f, r.population)}"
                for w, f, r in zip(s["warn"], s["fail"], rules, strict=True)
            ],
            "examples": s["rule"].map(ex).fillna("—"),
        }
    )


RULE_TABLE_LABELS = {
    "status": "statut",
    "severity": "sévérité",
    "rule": "règle",
    "count": "constats",
    "population": "population",
    "rate": "taux (%)",
    "thresholds": "seuils",
    "examples": "exemples (UAI · pseudonyme · valeur masquée · fichier:ligne)",
}


def thresholds_note(result: AuditResult) -> str:
    """Markdown: the thresholds this audit used (defaults, then the ``thresholds``
    parameter by severity and by rule), written from them, never by hand."""
    given = result.parameters.get("thresholds") or {}
    lines = []
    for sev in Severity:
        spec = {**DEFAULT_THRESHOLDS[sev], **given.get(sev.value, {})}
        warn = Threshold.parse(spec["warn"], sev.value)
        fail = Threshold.parse(spec["fail"], sev.value)
        origin = " (paramètre `thresholds`)" if sev.value in given else " (par défaut)"
        lines.append(
            f"- **{SEVERITY_LABELS[sev]}** : alerte {_generic(warn)}, "
            + (f"échec {_generic(fail)}" if fail else "jamais en échec")
            + origin
        )
    own = [k for k in given if k in RULE_BY_ID]
    for rule_id in own:
        warn, fail = resolve_thresholds(given)[rule_id]
        lines.append(
            f"- règle `{rule_id}` (paramètre `thresholds`) : alerte {_generic(warn)}, "
            + (f"échec {_generic(fail)}" if fail else "jamais en échec")
        )
    return (
        "Seuils appliqués par sévérité, puis règle par règle ; un taux est une part de la "
        "population de la règle (élèves, responsables, écoles…) :\n\n" + "\n".join(lines)
    )


def _generic(threshold: Threshold | None) -> str:
    if threshold is None:
        return "jamais"
    if threshold.count is not None:
        return f"dès {_n(threshold.count)} constat{'s' if threshold.count > 1 else ''}"
    return f"dès {str(threshold)[:-1].replace('.', ',')}\u202f% de sa population"


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


def _small(counts: pd.Series, small_cell: int) -> pd.Series:
    """Counts kept as numbers (the table formats and right-aligns them), those under
    ``small_cell`` (but above zero) as ``<small_cell`` (:func:`privacy.small_cells`)."""
    text = small_cells(counts, small_cell)
    return counts.astype(object).where(~text.str.startswith("<"), text)


def worst_schools(result: AuditResult, n: int = 20, small_cell: int = 5) -> pd.DataFrame:
    """The ``n`` lowest scores, counts under ``small_cell`` shown as ``<small_cell``."""
    w = result.schools.head(n).copy()
    for c in ("records", "blocking", "warning", "info", "findings"):
        w[c] = _small(w[c], small_cell)
    return w[["uai", "name", "circonscription", "records", "blocking", "warning", "info", "score"]]


def circonscription_table(result: AuditResult, small_cell: int = 5) -> pd.DataFrame:
    c = result.circonscriptions.copy()
    for col in ("blocking", "warning", "info", "findings", "schools_with_blocking"):
        c[col] = _small(c[col], small_cell)
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


def blocking_share(result: AuditResult) -> pd.DataFrame:
    """Per circonscription, the share of its schools with at least one blocking finding (a
    share of schools, not a count of people), highest first; circonscriptions at zero are
    left out (a chart of them would draw nothing): :func:`clean_circonscriptions` names
    them."""
    c = result.circonscriptions
    share = (c["schools_with_blocking"] / c["schools"].where(c["schools"] > 0)).fillna(0)
    out = pd.DataFrame({"circonscription": c["circonscription"], "share": (share * 100).round(1)})
    return (
        out[out["share"] > 0]
        .sort_values(["share", "circonscription"], ascending=[False, True])
        .reset_index(drop=True)
    )


def clean_circonscriptions(result: AuditResult) -> list[str]:
    """Circonscriptions none of whose schools has a blocking finding."""
    c = result.circonscriptions
    return sorted(c.loc[c["schools_with_blocking"] == 0, "circonscription"].astype(str))


def explanations(result: AuditResult) -> str:
    """Markdown: each rule with findings, in the table's order (blocking first), what it
    means and how to correct it, each under the anchor the table links to."""
    out = []
    for row in ordered(result).itertuples():
        rule = RULE_BY_ID[row.rule]
        n = f"{_n(row.count)} constat{'s' if row.count > 1 else ''}"
        out.append(
            f'<h3 id="{anchor(rule.id)}">{html.escape(rule.title)}</h3>\n\n'
            f"`{rule.id}` · {SEVERITY_LABELS[rule.severity]} · {n} · "
            f"{STATUS_LABELS[row.status]} · attributs : {', '.join(rule.attributes)}\n\n"
            f"{rule.explanation}\n\n"
            f"**Qui corrige** : {CORRECTOR_LABELS[rule.corrector]}. {rule.correction}\n"
        )
    return "\n".join(out) if out else "Aucun constat : rien à corriger."


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
        return (
            "Aucun fichier écrit : le paramètre `run_dir` est vide (exécution hors de "
            "`ent-audit report`)."
        )
    lines = []
    clear = [p for p in written if p.name != FINDINGS_CSV]
    if any(p.name == FINDINGS_CSV for p in written):
        lines.append(
            f'- <a href="{FINDINGS_CSV}">fichier des constats (CSV)</a> : '
            f"{_n(len(result.findings))} constat(s), identifiants pseudonymisés (clé du "
            "store) et valeurs masquées ; séparateur « ; », UTF-8 avec BOM : il s'ouvre tel "
            "quel dans un tableur."
        )
    if clear:
        csvs = [p for p in clear if p.suffix == ".csv"]
        lines.append(
            f"- dossier `{clear[0].parent.name}/` : {len(csvs)} fichier(s) CSV par école "
            "**en clair, avec des données personnelles** (fichiers 0600) : pour le "
            "seul prestataire ou l'école concernée, à supprimer après correction."
        )
    return "\n".join(lines)


def context_note(result: AuditResult) -> str:
    """Markdown: which state was audited, the school year, whether the perimeter was checked."""
    p = result.parameters
    perimeter = (
        f"contrôlé sur la liste de {_n(p['perimeter_schools'])} école(s) de la convention"
        if p.get("perimeter")
        else "**non contrôlé** (aucune liste d'écoles fournie : paramètre `perimeter`) ; "
        "les règles `school_outside_perimeter` et `person_outside_perimeter` ne sont "
        "pas appliquées"
    )
    date = f"{result.date:%d/%m/%Y}" if result.date else "date inconnue"
    return (
        f"État du store : extraction {result.perimeter} du {date}, année scolaire "
        f"{p['school_year']} ; {_n(len(result.schools))} école(s). Périmètre : {perimeter}. "
        f"{_n(len(result.findings))} constat(s) au total."
    )


def catalogue_table() -> pd.DataFrame:
    """The catalogue for the report's appendix (French severity labels)."""
    c = catalogue()
    c["severity"] = c["severity"].map({x.value: SEVERITY_LABELS[x] for x in Severity})
    return c[["rule", "severity", "title", "kinds", "attributes", "corrector"]]
