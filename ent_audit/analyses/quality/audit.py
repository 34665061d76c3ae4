"""The audit: run the catalogue over a complete state, then judge each rule against its
thresholds and score each school.

:func:`audit` returns an :class:`AuditResult`: the ``findings`` frame (columns
:data:`FINDING_COLUMNS`, values in clear: it stays in memory; publish it only through
:func:`present.published_findings`), a summary per rule with its warn and fail thresholds,
and summaries per school (with a quality score) and per circonscription. :func:`checks` turns
it into one :class:`Check` per blocking rule, which sets the run's exit code.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING, isin
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot
from ent_audit.analyses.quality.catalogue import (
    RULE_BY_ID,
    RULES,
    SEVERITY_LABELS,
    SEVERITY_RANK,
    Population,
    Rule,
    Severity,
)
from ent_audit.analyses.quality.context import (
    AGE_TOLERANCE,
    STRUCTURE,
    Context,
    concat,
    none,
)
from ent_audit.checks import Check
from ent_audit.exceptions import QualityError
from ent_audit.store.store import Store

FINDING_COLUMNS = ("rule", "severity", "kind", "jointure", "uai", "attribute", "value", "source")
"""Columns of :attr:`AuditResult.findings`; ``source`` is ``file:line`` of the record."""

RECORD_WEIGHTS = {Severity.BLOCKING: 1.0, Severity.WARNING: 0.5, Severity.INFO: 0.1}
"""Score: weight of a person's record by its worst finding."""
SCHOOL_PENALTIES = {Severity.BLOCKING: 50.0, Severity.WARNING: 10.0, Severity.INFO: 2.0}
"""Score: points a school loses per rule with a finding on the school's own record."""


def _fr(x: float) -> str:
    return f"{x:g}".replace(".", ",")


SCORE_FORMULA = (
    "score = 100 × (1 − P / N) − S, borné à 0 (100 : aucun constat). N : fiches rattachées à "
    "l'école (élèves, responsables de ses élèves, personnels) ; P : somme, sur ces fiches, du "
    "poids de leur constat le plus grave ("
    + ", ".join(f"{SEVERITY_LABELS[s]} {_fr(w)}" for s, w in RECORD_WEIGHTS.items())
    + ") ; S : "
    + f"{_fr(SCHOOL_PENALTIES[Severity.BLOCKING])} points par règle bloquante, "
    + f"{_fr(SCHOOL_PENALTIES[Severity.WARNING])} par avertissement, "
    + f"{_fr(SCHOOL_PENALTIES[Severity.INFO])} par information constatés sur la fiche de "
    "l'école elle-même (UAI, directeur, enseignants…)."
)
"""The score, in French, written from the weights actually used."""


# ---------------------------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """A count (``3``: three findings or more) or a rate (``"2%"``: 2 % of the rule's
    population or more). Zero findings never reach a threshold."""

    count: int | None = None
    rate: float | None = None

    @classmethod
    def parse(cls, spec: Any, where: str) -> Threshold | None:
        """``None`` (no threshold), an int >= 1 (a count) or a string ``"N%"`` (a rate)."""
        if spec is None:
            return None
        if isinstance(spec, int) and not isinstance(spec, bool) and spec >= 1:
            return cls(count=spec)
        if isinstance(spec, str) and spec.strip().endswith("%"):
            try:
                rate = float(spec.strip()[:-1].replace(",", ".")) / 100
            except ValueError:
                rate = -1.0
            if 0 < rate <= 1:
                return cls(rate=rate)
        raise QualityError(
            "thresholds",
            f"{where}: {spec!r} n'est ni un nombre entier ≥ 1 "
            "(constats) ni un taux « N% » (0 < N ≤ 100)",
        )

    def reached(self, count: int, population: int) -> bool:
        if count <= 0:
            return False
        if self.count is not None:
            return count >= self.count
        return population > 0 and count / population >= (self.rate or 0)

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{(self.rate or 0) * 100:g}%"


DEFAULT_THRESHOLDS: dict[Severity, dict[str, int | str | None]] = {
    Severity.BLOCKING: {"warn": 1, "fail": 1},
    Severity.WARNING: {"warn": 1, "fail": "5%"},
    Severity.INFO: {"warn": 1, "fail": None},
}
"""A blocking rule fails on its first finding; a warning rule fails when 5 % of its
population is concerned; an info rule never fails. ``thresholds`` overrides them by
severity (``{"warning": {"fail": "2%"}}``) and by rule (``{"mojibake": {"warn": 10}}``)."""


def resolve_thresholds(
    thresholds: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, tuple[Threshold | None, Threshold | None]]:
    """(warn, fail) per rule id: defaults, then severity-wide, then per-rule overrides."""
    thresholds = dict(thresholds or {})
    severities = {s.value for s in Severity}
    for key, spec in thresholds.items():
        if key not in RULE_BY_ID and key not in severities:
            raise QualityError(
                "thresholds",
                f"{key!r}: ni une règle ni une sévérité ({', '.join(sorted(severities))})",
            )
        if not isinstance(spec, Mapping) or set(spec) - {"warn", "fail"}:
            raise QualityError("thresholds", f"{key}: attendu {{warn: …, fail: …}}, reçu {spec!r}")
    out = {}
    for rule in RULES:
        spec = {
            **DEFAULT_THRESHOLDS[rule.severity],
            **thresholds.get(rule.severity.value, {}),
            **thresholds.get(rule.id, {}),
        }
        out[rule.id] = (
            Threshold.parse(spec["warn"], f"{rule.id}.warn"),
            Threshold.parse(spec["fail"], f"{rule.id}.fail"),
        )
    return out


# ---------------------------------------------------------------------------------------------
# The perimeter
# ---------------------------------------------------------------------------------------------


def read_perimeter(spec: str | Path | Iterable[str] | None) -> frozenset[str] | None:
    """The perimeter's school UAIs from a list, or from a file (one UAI at the start of each
    line; ``#`` comments, blank lines, and anything after ``;``, ``,``, a tab or a space are
    ignored, so a CSV export whose first column is the UAI works). ``None`` or empty: no
    perimeter given (the perimeter rules are not checked)."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_file():
            raise QualityError("perimeter", f"{path}: fichier introuvable (une UAI par ligne)")
        entries = []
        for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            text = line.split("#", 1)[0].strip()
            first = text.replace(";", " ").replace(",", " ").split()[:1]
            if first and not (n == 1 and first[0].upper() in ("UAI", "RNE")):
                entries.append((f"{path}:{n}", first[0]))
    else:
        entries = [(f"élément {n}", str(u)) for n, u in enumerate(spec, 1)]
    uais = set()
    for where, raw in entries:
        uai = raw.strip().upper()
        if not pd.Series([uai]).str.fullmatch(schema.FORMATS["uai"]).iloc[0]:
            raise QualityError(
                "perimeter", f"{where}: {raw!r} n'est pas une UAI (7 chiffres et une lettre)"
            )
        uais.add(uai)
    if not uais:
        raise QualityError("perimeter", "liste d'écoles vide")
    return frozenset(uais)


# ---------------------------------------------------------------------------------------------
# The audit
# ---------------------------------------------------------------------------------------------


def _populations(ctx: Context) -> dict[Population, int]:
    n = {
        Population.STRUCTURES: len(ctx.structures),
        Population.SCHOOLS: len(ctx.schools),
        Population.PUPILS: len(ctx.students),
        Population.GUARDIANS: len(ctx.guardians),
        Population.STAFF: len(ctx.staff),
    }
    n[Population.PEOPLE] = n[Population.PUPILS] + n[Population.GUARDIANS] + n[Population.STAFF]
    n[Population.RECORDS] = n[Population.PEOPLE] + n[Population.STRUCTURES]
    return n


@dataclass(frozen=True)
class AuditResult:
    """What :func:`audit` found. ``findings`` holds clear values: publish it only through
    :func:`published_findings`."""

    findings: pd.DataFrame
    """One row per finding, columns :data:`FINDING_COLUMNS`, most severe rules first."""
    summary: pd.DataFrame
    """One row per rule: count, population, rate, thresholds, status (``ok``, ``warn``,
    ``fail``, ``skipped`` when not checked)."""
    schools: pd.DataFrame
    """One row per school: records, findings by severity, penalty, score; worst first."""
    circonscriptions: pd.DataFrame
    """One row per circonscription: schools, records, findings by severity, mean score."""
    perimeter: str
    date: dt.date | None
    parameters: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    """Seconds per rule (the benchmark reads them)."""

    @property
    def failed(self) -> list[str]:
        """Blocking rules over their fail threshold: the run fails (exit 1)."""
        s = self.summary
        return s.loc[
            (s["severity"] == Severity.BLOCKING) & (s["status"] == "fail"), "rule"
        ].tolist()

    def counts(self) -> dict[str, int | None]:
        """Findings per rule (``None``: not checked)."""
        return {
            r: (None if st == "skipped" else int(c))
            for r, c, st in zip(
                self.summary["rule"], self.summary["count"], self.summary["status"], strict=True
            )
        }

    def to_dict(self) -> dict:
        """JSON-ready, without any finding row (counts, thresholds, per school and
        circonscription)."""
        return {
            "perimeter": self.perimeter,
            "date": self.date.isoformat() if self.date else None,
            "parameters": self.parameters,
            "findings": len(self.findings),
            "by_severity": self.findings["severity"].value_counts().to_dict(),
            "failed": self.failed,
            "rules": _records(self.summary),
            "schools": _records(self.schools),
            "circonscriptions": _records(self.circonscriptions),
            "score_formula": SCORE_FORMULA,
        }


def _records(df: pd.DataFrame) -> list[dict]:
    out = df.astype(object).where(df.notna(), None)
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in out.to_dict("records")
    ]


def _run(
    rule: Rule, ctx: Context, limits: tuple[Threshold | None, Threshold | None], population: int
) -> tuple[pd.DataFrame, dict]:
    """One rule's finding rows and its summary line (count, rate, thresholds, status)."""
    checked = ctx.perimeter is not None or not rule.needs_perimeter
    rows = (rule.check(ctx) if checked else none()).assign(
        rule=rule.id, severity=rule.severity.value
    )
    warn, fail = limits
    n = len(rows)
    status = (
        "skipped"
        if not checked
        else "fail"
        if fail and fail.reached(n, population)
        else "warn"
        if warn and warn.reached(n, population)
        else "ok"
    )
    return rows, {
        "rule": rule.id,
        "severity": rule.severity.value,
        "title": rule.title,
        "kinds": ", ".join(rule.kinds),
        "attributes": ", ".join(rule.attributes),
        "corrector": rule.corrector.value,
        "count": n,
        "population": population,
        "rate": n / population if population else 0.0,
        "warn": str(warn) if warn else None,
        "fail": str(fail) if fail else None,
        "status": status,
    }


def audit(
    snapshot: Snapshot,
    *,
    perimeter: str | Path | Iterable[str] | None = None,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    age_tolerance: int = AGE_TOLERANCE,
    rules: Iterable[str] | None = None,
    members: pd.DataFrame | None = None,
) -> AuditResult:
    """Run the rule catalogue (or the ``rules`` named) over a complete state.

    ``perimeter``: the convention's school UAIs (a list or a file, see :func:`read_perimeter`);
    without it the perimeter rules are not checked. ``thresholds``: warn and fail thresholds
    by severity or rule (see :data:`DEFAULT_THRESHOLDS`). ``age_tolerance``: years a pupil's
    age may differ from their level's usual age. ``members``: the snapshot's
    :func:`~ent_audit.aaf.population.memberships` when the caller has them already (the
    roster explorer), so they are not computed twice.
    """
    _complete(snapshot.extraction)
    limits, chosen = _chosen(thresholds, rules)
    uais = _uais(perimeter)
    ctx = Context(snapshot, uais, age_tolerance, members=members)
    return _audit(ctx, limits, chosen, thresholds)


def audit_store(
    store: Store | str | Path,
    *,
    perimeter: str | Path | Iterable[str] | None = None,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    age_tolerance: int = AGE_TOLERANCE,
    rules: Iterable[str] | None = None,
) -> AuditResult:
    """:func:`audit` of a store's current state, in bounded memory: the same result as
    ``audit(store.latest(), …)``, but each check reads the columns it needs from the state's
    Parquet when it runs (:meth:`Context.of_store`) instead of the whole state being held;
    the state is held for the audit's length (an ingestion's switch waits)."""
    store = store if isinstance(store, Store) else Store(store, create=False)
    limits, chosen = _chosen(thresholds, rules)
    uais = _uais(perimeter)
    with store.reading() as reader:
        ctx = Context.of_store(reader, uais, age_tolerance)
        _complete(ctx.snapshot.extraction)
        return _audit(ctx, limits, chosen, thresholds)


def _complete(extraction: ExtractionInfo) -> None:
    if extraction.extraction != "complete":
        raise QualityError(
            "snapshot",
            "l'audit porte sur un état complet (un Complet, ou le "
            "store après ses Delta), pas sur un Delta seul",
        )


def _chosen(
    thresholds: Mapping[str, Mapping[str, Any]] | None, rules: Iterable[str] | None
) -> tuple[dict[str, tuple[Threshold | None, Threshold | None]], list[str]]:
    limits = resolve_thresholds(thresholds)
    chosen = list(rules) if rules is not None else [r.id for r in RULES]
    unknown = sorted(set(chosen) - set(RULE_BY_ID))
    if unknown:
        raise QualityError("rules", f"règles inconnues: {', '.join(unknown)}")
    return limits, chosen


def _uais(perimeter: str | Path | Iterable[str] | None) -> frozenset[str] | None:
    return read_perimeter(perimeter) if not isinstance(perimeter, frozenset) else perimeter


def _audit(
    ctx: Context,
    limits: dict[str, tuple[Threshold | None, Threshold | None]],
    chosen: list[str],
    thresholds: Mapping[str, Mapping[str, Any]] | None,
) -> AuditResult:
    populations = _populations(ctx)
    parts, timings, summary = [], {}, []
    for rule in (r for r in RULES if r.id in chosen):
        t0 = time.perf_counter()
        rows, line = _run(rule, ctx, limits[rule.id], populations[rule.population])
        ctx.release()
        timings[rule.id] = time.perf_counter() - t0
        parts.append(rows)
        summary.append(line)
    t0 = time.perf_counter()
    raw = concat(parts) if parts else none()
    del parts
    if "rule" not in raw:
        raw = raw.assign(rule=pd.Series([], dtype=object), severity=pd.Series([], dtype=object))
    raw = _locate(raw, ctx)
    findings = _finish(raw)
    schools = _per_school(raw, ctx)
    timings["(summaries)"] = time.perf_counter() - t0
    uais = ctx.perimeter
    snapshot = ctx.snapshot
    return AuditResult(
        findings=findings,
        summary=pd.DataFrame(summary),
        schools=schools,
        circonscriptions=_per_circonscription(schools),
        perimeter=snapshot.extraction.perimeter,
        date=snapshot.extraction.date,
        parameters={
            "perimeter": sorted(uais) if uais else None,
            "perimeter_schools": len(uais) if uais else None,
            "thresholds": dict(thresholds or {}),
            "age_tolerance": ctx.age_tolerance,
            "school_year": f"{ctx.school_year}-{ctx.school_year + 1}",
        },
        timings=timings,
    )


def _locate(raw: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Fill each finding's school (structure jointure, when the check did not say) and UAI."""
    where = ctx.structure_of  # only the findings' records: a merge with every person costs
    where = where[isin(where["jointure"], raw["jointure"].dropna().unique())]
    where = where.astype({"kind": STRING, "structure": STRING})
    known = raw.merge(
        where.rename(columns={"structure": "_where"}), on=["kind", "jointure"], how="left"
    )
    structure = known["structure"].where(known["structure"].notna(), known["_where"])
    uai = ctx.structures.drop_duplicates("jointure").set_index("jointure")["uai"]
    out = raw.assign(structure=structure.to_numpy(dtype=object))
    out["uai"] = out["structure"].map(uai).to_numpy(dtype=object)
    return out


def _finish(raw: pd.DataFrame) -> pd.DataFrame:
    """The public shape: :data:`FINDING_COLUMNS`, string dtypes, most severe first."""
    line = raw["line"].astype("Int64").astype(str).replace("<NA>", "")
    source = raw["source_file"].astype(str) + np.where(line == "", "", ":" + line)
    out = raw.assign(source=source)[list(FINDING_COLUMNS)].astype(STRING)
    rank = out["severity"].map({s.value: SEVERITY_RANK[s] for s in Severity})
    order = {r.id: i for i, r in enumerate(RULES)}
    return (
        out.assign(_s=rank.to_numpy(), _r=out["rule"].map(order).to_numpy())
        .sort_values(["_s", "_r"], kind="stable")
        .drop(columns=["_s", "_r"])
        .reset_index(drop=True)
    )


def _penalties(f: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per school: P, the weights of its people's worst findings summed, and S, the points of
    the rules that fail on the school's own record (:data:`SCORE_FORMULA`)."""
    own = (f["kind"].eq(STRUCTURE.name) & f["jointure"].eq(f["structure"])).to_numpy(dtype=bool)
    people = f[~own].assign(
        w=f.loc[~own, "severity"].map({s.value: RECORD_WEIGHTS[s] for s in Severity})
    )
    p = (
        (
            people.groupby(["structure", "kind", "jointure"])["w"]
            .max()
            .groupby(level="structure")
            .sum()
        )
        if len(people)
        else pd.Series(dtype=float)
    )
    rules = f[own].drop_duplicates(["structure", "rule"])
    s = (
        (
            rules["severity"]
            .map({x.value: SCHOOL_PENALTIES[x] for x in Severity})
            .groupby(rules["structure"])
            .sum()
        )
        if len(rules)
        else pd.Series(dtype=float)
    )
    return p, s


def _per_school(raw: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Records, findings by severity and score per school (:data:`SCORE_FORMULA`), worst
    first."""
    out = (
        ctx.schools.drop_duplicates("jointure")[
            ["jointure", "uai", "name", "circonscription", "commune"]
        ]
        .rename(columns={"jointure": "structure"})
        .reset_index(drop=True)
    )
    where = ctx.structure_of
    records = (
        where[(where["kind"] != STRUCTURE.name).to_numpy()]
        .groupby("structure", observed=True)["jointure"]
        .size()
    )
    records.index = records.index.astype(STRING)
    f = raw[isin(raw["structure"].astype(STRING), out["structure"])] if len(raw) else raw
    counts = f.groupby(["structure", "severity"]).size() if len(f) else pd.Series(dtype="int64")
    out["records"] = out["structure"].map(records).fillna(0).astype("int64")
    for s in Severity:
        mine = (
            counts.xs(s.value, level="severity")
            if s.value in counts.index.get_level_values(-1)
            else pd.Series(dtype="int64")
        )
        out[s.value] = out["structure"].map(mine).fillna(0).astype("int64")
    out["findings"] = out[[s.value for s in Severity]].sum(axis=1)
    penalty, school_penalty = _penalties(f)
    out["penalty"] = out["structure"].map(penalty).fillna(0.0)
    out["school_penalty"] = out["structure"].map(school_penalty).fillna(0.0)
    share = np.where(out["records"] > 0, out["penalty"] / out["records"].clip(lower=1), 0.0)
    out["score"] = (100 * (1 - np.minimum(share, 1.0)) - out["school_penalty"]).clip(lower=0)
    out["score"] = out["score"].round(1)
    return (
        out.drop(columns=["structure"])
        .sort_values(["score", "blocking", "findings", "uai"], ascending=[True, False, False, True])
        .reset_index(drop=True)
    )


def _per_circonscription(schools: pd.DataFrame) -> pd.DataFrame:
    sev = [s.value for s in Severity]
    g = schools.assign(
        circonscription=schools["circonscription"].fillna("(non renseignée)"),
        with_blocking=schools["blocking"] > 0,
    ).groupby("circonscription")
    out = g.agg(
        schools=("uai", "size"),
        records=("records", "sum"),
        **{s: (s, "sum") for s in sev},
        findings=("findings", "sum"),
        schools_with_blocking=("with_blocking", "sum"),
        score=("score", "mean"),
    )
    out["score"] = out["score"].round(1)
    return out.reset_index().sort_values(["score", "circonscription"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# What a report publishes
# ---------------------------------------------------------------------------------------------


def checks(result: AuditResult) -> list[Check]:
    """One check per blocking rule: failed at the rule's fail threshold (exit 1); skipped when
    it could not run (the perimeter rules without a list of the perimeter's schools)."""
    out = []
    for row in result.summary.itertuples():
        if row.severity != Severity.BLOCKING:
            continue
        n = f"{row.count} constat{'s' if row.count > 1 else ''}"
        if row.status == "skipped":
            ok, detail = None, "non contrôlé : aucune liste d'écoles du périmètre fournie"
        elif row.status == "fail":
            ok, detail = False, f"{n}, seuil d'échec {row.fail} atteint"
        else:
            limit = f"seuil d'échec {row.fail}" if row.fail else "aucun seuil d'échec"
            ok, detail = True, f"{n}, {limit}"
        out.append(Check.of(row.rule, row.title, ok, blocking=True, detail=detail))
    return out
