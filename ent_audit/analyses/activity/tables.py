"""What the activity report shows, built from an :class:`ActivityResult`: French prose
generated from the figures and thresholds actually used, and tables with people counts masked
(:func:`~ent_audit.analyses.activity.indicators.masked`)."""

from __future__ import annotations

import pandas as pd

from ent_audit.analyses.activity.indicators import (
    ALL,
    LABELS,
    PROFILE_NAMES,
    QUIET_DAYS,
    ActivityResult,
    masked,
)
from ent_audit.analyses.activity.inputs import DEVICE_NAMES, EVENT_NAMES, REASON_LABELS

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def _n(x) -> str:
    return f"{int(x):,}".replace(",", "\u202f")


def _pct(x: float) -> str:
    return f"{x:.0%}".replace("%", "\u00a0%")


def _date(d) -> str:
    return f"{d:%d/%m/%Y}"


def verdict(r: ActivityResult) -> str:
    """The first lines of the page: open schools against the target, and the period."""
    d = r.department
    total, opened = d["schools_total"], d["schools_open"]
    missing = max(0, -(-int(r.target * total * 1000) // 1000) - opened)
    ok = r.open_share >= r.target
    status = (
        f"la cible de {_pct(r.target)} est **atteinte**."
        if ok
        else f"la cible de {_pct(r.target)} **n'est pas atteinte** : il manque {_n(missing)} "
        "école(s) ouverte(s)."
    )
    who = "compte enseignant activé" if r.open_threshold == 1 else "comptes enseignants activés"
    return (
        "## Ouverture de l'ENT\n\n"
        f"**{_n(opened)} écoles sur {_n(total)} ont leur ENT ouvert ({_pct(r.open_share)})** : "
        f"{status}\n\n"
        f"Période du {_date(r.period.start)} au {_date(r.period.end)}. Une école est *ouverte* "
        f"quand au moins {r.open_threshold} {who} ({_source(r)}). "
        f"{d['schools_stopped']} école(s) n'ont plus aucune activité depuis {QUIET_DAYS} jours."
    )


def _source(r: ActivityResult) -> str:
    return {
        "accounts": "d'après l'export des comptes du prestataire",
        "daily": "d'après les derniers chiffres des statistiques quotidiennes",
        "none": "aucun export de comptes fourni : aucune école ne peut être dite ouverte",
    }[r.accounts_source]


def previous_known(r: ActivityResult) -> bool:
    """Whether any event falls in the previous period: with none (the events start with the
    period), it is unknown, not zero, and is not compared."""
    return any(int(r.previous[k]) > 0 for k in ("visits", "unique_visitors", "connections"))


def headline(r: ActivityResult) -> pd.DataFrame:
    """The département's figures, with the previous period where it means something."""
    d, p, m = r.department, r.previous, r.small_cell
    rows = [
        ("écoles dont l'ENT est ouvert", f"{_n(d['schools_open'])} / {_n(d['schools_total'])}", ""),
        ("comptes chargés (personnes de l'AAF)", d["loaded"], None),
        ("comptes activés", d["activated"], None),
        ("comptes actifs sur 7 jours", d["active_7d"], None),
        ("comptes actifs sur 30 jours", d["active_30d"], None),
        ("visites", d["visits"], p["visits"]),
        ("visiteurs uniques", d["unique_visitors"], p["unique_visitors"]),
        ("connexions", d["connections"], p["connections"]),
    ]
    people = {1, 2, 3, 4, 6}
    known = previous_known(r)
    if not known:
        rows = [
            (label, value, None if before is not None else before) for label, value, before in rows
        ]
    out = []
    for i, (label, value, before) in enumerate(rows):
        show = value
        if i in people and 0 < int(value) < m:
            show = f"<{m}"
        elif not isinstance(value, str):
            show = _n(value)
        prev = "" if before is None or before == "" else _n(before)
        if not known and i >= 5:
            prev = "inconnue"
        if i == 6 and before is not None and 0 < int(before) < m:
            prev = f"<{m}"
        change = ""
        if before not in (None, "") and int(before) > 0:
            change = f"{(int(value) - int(before)) / int(before):+.0%}".replace("%", "\u00a0%")
        out.append({"indicateur": label, "valeur": show, "période précédente": prev,
                    "évolution": change})  # fmt: skip
    visitors = d["unique_visitors"]
    out.append(
        {
            "indicateur": "visites par visiteur",
            "valeur": f"{d['visits'] / visitors:.1f}".replace(".", ",") if visitors else "—",
            "période précédente": "",
            "évolution": "",
        }
    )
    return pd.DataFrame(out)


def funnel(r: ActivityResult) -> pd.DataFrame:
    """Loaded → activated → active per profile, département level, with rates."""
    f = r.profiles[(r.profiles["level"] == "department")].copy()
    f["activation_rate"] = (f["activated"] / f["loaded"].where(f["loaded"] > 0)).map(_rate)
    f["active_rate"] = (f["active_30d"] / f["activated"].where(f["activated"] > 0)).map(_rate)
    f["profile"] = f["profile"].map(PROFILE_NAMES)
    order = list(PROFILE_NAMES.values())
    f = f.sort_values("profile", key=lambda s: s.map(order.index))
    f = masked(f, r.small_cell)
    cols = ["profile", "loaded", "activated", "active_7d", "active_30d", "activation_rate",
            "active_rate", "visits", "unique_visitors", "connections"]  # fmt: skip
    return f[cols].rename(columns=LABELS)


def _rate(x) -> str:
    return "—" if pd.isna(x) else _pct(float(x))


def circonscriptions(r: ActivityResult) -> pd.DataFrame:
    c = r.circonscriptions.copy()
    c["open_share"] = c["open_share"].map(_rate)
    c["activation_rate"] = c["activation_rate"].map(_rate)
    c["visits_change"] = c["visits_change"].map(lambda x: "—" if pd.isna(x) else f"{x:+.0%}")
    c = masked(c, r.small_cell)
    cols = ["circonscription", "schools_total", "schools_open", "open_share", "schools_stopped",
            "loaded", "activated", "activation_rate", "active_30d", "visits", "unique_visitors",
            "previous_visits", "visits_change"]  # fmt: skip
    if not previous_known(r):
        cols = cols[:-2]
    return c[cols].rename(columns=LABELS)


def departements(r: ActivityResult) -> pd.DataFrame:
    """One row per département of the store (UAI's first three characters): people counted
    once per département, so the rows do not add up to the store's total when someone is in
    two départements."""
    d = r.departements.copy()
    for c in ("open_share", "activation_rate", "active_rate"):
        d[c] = d[c].map(_rate)
    d = masked(d, r.small_cell)
    cols = ["departement", "schools_total", "schools_open", "open_share", "schools_stopped",
            "loaded", "activated", "activation_rate", "active_30d", "active_rate", "visits",
            "unique_visitors", "connections"]  # fmt: skip
    return d[cols].rename(columns=LABELS)


def not_open(r: ActivityResult) -> pd.DataFrame:
    """For the training team: schools whose ENT is not open yet."""
    s = r.schools[~r.schools["open"]]
    s = masked(s, r.small_cell, group="circonscription")
    return s[["circonscription", "uai", "name", "loaded", "activated", "visits"]].rename(
        columns=LABELS
    )


def stopped(r: ActivityResult) -> pd.DataFrame:
    """For the training team: schools with earlier activity and none for four weeks."""
    s = r.schools[r.schools["stopped"]].copy()
    s["last_activity"] = s["last_activity"].dt.strftime("%d/%m/%Y")
    s = masked(s, r.small_cell, group="circonscription")
    return s[["circonscription", "uai", "name", "last_activity", "activated", "visits"]].rename(
        columns=LABELS
    )


def weekly(r: ActivityResult) -> pd.DataFrame:
    w = r.weekly.copy()
    w["circonscription"] = w["circonscription"].replace(ALL, "département")
    return w


def heatmap(r: ActivityResult) -> pd.DataFrame:
    """Visits by weekday (rows, Monday first) and hour (columns 0–23)."""
    h = r.heatmap.pivot_table(index="weekday", columns="hour", values="visits", fill_value=0)
    h = h.reindex(index=range(7), columns=range(24), fill_value=0)
    h.index = list(WEEKDAYS)
    return h


def applications(r: ActivityResult, top: int = 20) -> pd.DataFrame:
    a = r.applications.head(top).copy()
    a["event"] = a["event"].map(lambda e: EVENT_NAMES.get(e, e))
    return masked(a, r.small_cell).rename(columns=LABELS)


def devices(r: ActivityResult) -> pd.DataFrame:
    d = r.devices.copy()
    d["device"] = d["device"].map(lambda x: DEVICE_NAMES.get(x, x))
    total = d["visits"].sum()
    d["part"] = (d["visits"] / total).map(_rate) if total else "—"
    return d.rename(columns=LABELS)


def inputs(r: ActivityResult) -> pd.DataFrame:
    """Each file read: rows kept, rows left out and the first of their lines."""
    kinds = {"events": "journal d'événements", "accounts": "export des comptes",
             "daily": "statistiques quotidiennes"}  # fmt: skip
    rows = []
    for f in r.inputs:
        first = ", ".join(f"l. {m.line} ({REASON_LABELS[m.reason]})" for m in f.malformed[:5])
        more = f" et {f.malformed_count - 5} autre(s)" if f.malformed_count > 5 else ""
        rows.append({"fichier": f.file, "type": kinds.get(f.kind, f.kind), "lignes lues": f.rows,
                     "lignes illisibles": f.malformed_count, "premières lignes écartées":
                     first + more})  # fmt: skip
    return pd.DataFrame(
        rows,
        columns=[
            "fichier",
            "type",
            "lignes lues",
            "lignes illisibles",
            "premières lignes écartées",
        ],
    )


def unknown_note(r: ActivityResult) -> str:
    u = r.unknown
    if not r.events:
        return "Aucun journal d'événements : visites, visiteurs et connexions ne sont pas calculés."
    return (
        f"Comptés à part et exclus des indicateurs : {u['events_unknown_user']} événement(s) de "
        f"{u['users_unknown']} personne(s) absente(s) de l'état AAF (comptes de test, personnes "
        f"parties), et {u['events_unknown_school']} événement(s) d'écoles absentes de l'état."
    )


def sources(r: ActivityResult) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "comparaison": s.what,
                "résultat": "non comparé (source absente)"
                if not s.checked
                else ("concordant" if s.agree else f"{s.mismatches} écart(s)"),
                "total A": s.total_a if s.checked else "",
                "total B": s.total_b if s.checked else "",
            }
            for s in r.sources
        ]
    )


def definitions(r: ActivityResult) -> str:
    return (
        "- **Comptes chargés** : personnes rattachées à une école dans la dernière extraction "
        "AAF (élèves, responsables, enseignants, directeurs, autres personnels) ; une personne "
        "présente dans deux écoles compte dans chacune, une fois au total.\n"
        "- **Compte activé** : première connexion faite, selon le prestataire.\n"
        f"- **ENT ouvert** : au moins {r.open_threshold} compte(s) enseignant(s) activé(s) dans "
        "l'école (un directeur qui enseigne compte).\n"
        "- **Actif sur 7 / 30 jours** : au moins un événement dans les 7 / 30 jours qui finissent "
        "le dernier jour de la période.\n"
        "- **Visite** : suite d'événements d'une personne sans pause de plus de 30 minutes ; "
        "elle compte dans l'école, le profil et le terminal de son premier événement.\n"
        "- **Visiteurs uniques** : personnes distinctes sur toute la période (jamais une somme "
        "de chiffres quotidiens).\n"
        "- **Connexion** : événement de connexion du journal.\n"
        f"- **École à l'arrêt** : activité passée, aucun événement depuis {QUIET_DAYS} jours.\n"
        f"- **Petits effectifs** : un nombre de personnes inférieur à {r.small_cell} s'affiche "
        f"« <{r.small_cell} », et un second nombre est masqué quand le premier pourrait se "
        "déduire d'un total."
    )
