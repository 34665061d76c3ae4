"""What the report shows: the verdict, tables, timeline and findings, in French."""

from __future__ import annotations

import pandas as pd

from ent_audit.analyses.retention.evaluation import RetentionResult
from ent_audit.analyses.retention.rules import (
    GUARDIAN,
    PLACE_LABELS,
    RULES,
    STAFF,
    STATUS_LABELS,
    STUDENT,
    Place,
    Status,
)
from ent_audit.store.purge import PurgePlan

# -- what the report shows -----------------------------------------------------------------

LABELS = {
    "rule": "règle",
    "title": "intitulé",
    "place": "lieu",
    "pseudonym": "pseudonyme",
    "kind": "type",
    "uai": "école (UAI)",
    "event_date": "événement le",
    "deadline": "échéance",
    "days_overdue": "jours de retard",
    "days_left": "jours restants",
    "status": "statut",
    "detail": "détail",
    "overdue": "en retard",
    "upcoming": "à échéance",
    "reference": "référence",
}
KIND_LABELS = {STUDENT: "élève", GUARDIAN: "responsable", STAFF: "personnel"}


def verdict(result: RetentionResult) -> str:
    """The page's first lines: the verdict, in French."""
    f = result.figures()
    head = f"**Situation au {result.as_of:%d/%m/%Y}** : "
    if f["overdue_total"]:
        worst = result.overdue["days_overdue"].max()
        head += (
            f"**ÉCHEC : {f['overdue_total']} élément(s) en retard** "
            f"(dont {f['overdue_by_place']['provider']} chez le prestataire et "
            f"{f['overdue_by_place']['workbench']} dans l'atelier ; le plus ancien a "
            f"{worst} jour(s) de retard)."
        )
    else:
        head += "**conforme : aucun élément en retard.**"
    head += (
        f" {f['upcoming_total']} élément(s) arrivent à échéance dans les "
        f"{result.horizon_days} jours."
    )
    skipped = [c.id for c in result.checks() if c.status == "skipped"]
    if skipped:
        head += f" Non contrôlé faute d'entrée : {', '.join(skipped)}."
    return head


def rules_table(result: RetentionResult) -> pd.DataFrame:
    """One row per rule and place: title, reference, deadline, overdue and upcoming counts."""
    t = result.by_rule_place()
    ref = {str(r.id): r.reference for r in RULES}
    return t.assign(
        reference=t["rule"].map(ref), place=t["place"].map(lambda p: PLACE_LABELS[Place(p)])
    )[["rule", "title", "reference", "place", "overdue", "upcoming"]]


def timeline(result: RetentionResult) -> pd.DataFrame:
    """Items per deadline, rule and status (overdue and upcoming), for the timeline."""
    sel = result.items[result.items["status"].isin([str(Status.OVERDUE), str(Status.UPCOMING)])]
    out = (
        sel.groupby(["deadline", "rule", "status", "place"], observed=True)
        .size()
        .rename("éléments")
        .reset_index()
    )
    return out.assign(
        règle=out["rule"],
        statut=out["status"].map(lambda s: STATUS_LABELS[Status(s)]),
        lieu=out["place"].map(lambda p: PLACE_LABELS[Place(p)]),
    )


def _shown(items: pd.DataFrame) -> pd.DataFrame:
    days = items["days_overdue"]
    return pd.DataFrame(
        {
            "rule": items["rule"],
            "place": items["place"].map(lambda p: PLACE_LABELS[Place(p)]),
            "pseudonym": items["pseudonym"],
            "kind": items["kind"].astype(object).map(KIND_LABELS).fillna(""),
            "uai": items["uai"],
            "event_date": items["event_date"].dt.strftime("%d/%m/%Y"),
            "deadline": items["deadline"].dt.strftime("%d/%m/%Y"),
            "days_overdue": days.where(days > 0),
            "days_left": (-days).where(days <= 0),
            "status": items["status"].map(lambda s: STATUS_LABELS[Status(s)]),
            "detail": items["detail"],
        }
    )


def oldest(result: RetentionResult, n: int = 20) -> pd.DataFrame:
    """The ``n`` most overdue items (pseudonyms only)."""
    return _shown(result.overdue.head(n))


def findings(result: RetentionResult) -> pd.DataFrame:
    """``findings.csv``: every overdue and upcoming item, French headers, pseudonyms only."""
    sel = result.items[result.items["status"].isin([str(Status.OVERDUE), str(Status.UPCOMING)])]
    return _shown(sel).rename(columns=LABELS)


def plan_text(plan: PurgePlan) -> str:
    """What ``ent-audit purge --apply`` would delete, in French (counts only)."""
    n = sum(plan.counts.values())
    if plan.empty:
        return "La purge n'aurait rien à supprimer dans l'atelier."
    parts = [f"{rule} : {k}" for rule, k in plan.counts.items() if k]
    text = (
        f"`ent-audit purge --apply` supprimerait {n} élément(s) de l'atelier ("
        + ", ".join(parts)
        + ")"
    )
    if plan.everything:
        text += " : la convention a pris fin, **toutes** les données de l'atelier"
    return text + "."
