"""Data-quality audit of one extraction: a catalogue of rules, each a vectorised check.

The académie guarantees its data "at the date of transmission"; the town and its provider
must notice what is wrong and get it corrected (convention, art. 2). :data:`RULES` lists
every rule: a stable id, a severity (``blocking`` breaks the ENT or the convention,
``warning`` is wrong data an account still works with, ``info`` is worth knowing), French
text for the coordinator (what it means, who corrects it and how), the AAF attributes
concerned and a check, a pure function over the snapshot frames (merges, ``isin``, string
methods: no Python loop over records) that returns one row per finding.

:func:`audit` runs the catalogue and returns an :class:`AuditResult`: the ``findings`` frame
(columns :data:`FINDING_COLUMNS`, values in clear: it stays in memory), a summary per rule
with warn and fail thresholds, per school (with a quality score) and per circonscription.
Everything published from it goes through :func:`published_findings` (keyed pseudonyms,
masked values). :func:`record_trend` / :func:`trend` keep per-rule counts by extraction date
so that each audit is compared with the previous audited extraction.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING, isin
from ent_audit.aaf.snapshot import Snapshot
from ent_audit.checks import Check
from ent_audit.exceptions import QualityError
from ent_audit.io import private_dir, write_atomic, write_csv, write_json
from ent_audit.privacy import Pseudonymiser, small_cells

__all__ = [
    "FINDING_COLUMNS",
    "RULES",
    "RULE_BY_ID",
    "SCORE_FORMULA",
    "TREND_FILE",
    "AuditResult",
    "Corrector",
    "QualityError",
    "Rule",
    "Severity",
    "Threshold",
    "audit",
    "catalogue",
    "catalogue_table",
    "checks",
    "circonscription_table",
    "context_note",
    "explanations",
    "figures",
    "headline",
    "load_trend",
    "outputs_note",
    "published_findings",
    "read_perimeter",
    "record_trend",
    "resolve_thresholds",
    "rule_table",
    "trend",
    "trend_table",
    "worst_schools",
    "write_clear_csvs",
    "write_findings_csv",
    "write_outputs",
]


class Severity(StrEnum):
    """How much a finding breaks the ENT: ranks the report."""

    BLOCKING = "blocking"
    """The record cannot be provisioned, the school cannot use the ENT, or the data may not be
    held (outside the perimeter)."""
    WARNING = "warning"
    """Wrong or missing data an account still works with, or data beyond the convention."""
    INFO = "info"
    """Worth knowing; nothing breaks."""


SEVERITY_LABELS = {
    Severity.BLOCKING: "bloquant",
    Severity.WARNING: "avertissement",
    Severity.INFO: "information",
}
SEVERITY_RANK = {Severity.BLOCKING: 0, Severity.WARNING: 1, Severity.INFO: 2}
SEVERITY_COLOURS = {
    label: colour
    for label, colour in (
        ("bloquant", "#c0392b"),
        ("avertissement", "#e67e22"),
        ("information", "#2e86c1"),
    )
}
"""Chart colours by French severity label."""
RECORD_WEIGHTS = {Severity.BLOCKING: 1.0, Severity.WARNING: 0.5, Severity.INFO: 0.1}
"""Score: weight of a person's record by its worst finding."""
SCHOOL_PENALTIES = {Severity.BLOCKING: 50.0, Severity.WARNING: 10.0, Severity.INFO: 2.0}
"""Score: points a school loses per rule with a finding on the school's own record."""

SCORE_FORMULA = (
    "score = 100 × (1 − P / N) − S, borné à 0 (100 : aucun constat). N : fiches rattachées à "
    "l'école (élèves, responsables de ses élèves, personnels) ; P : somme, sur ces fiches, du "
    "poids de leur constat le plus grave (bloquant 1, avertissement 0,5, information 0,1) ; "
    "S : 50 points par règle bloquante, 10 par avertissement, 2 par information constatés sur "
    "la fiche de l'école elle-même (UAI, directeur, enseignants…)."
)


class Corrector(StrEnum):
    """Who gets a finding corrected."""

    SCHOOL = "school"
    ACADEMY = "academy"
    PROVIDER = "provider"


CORRECTOR_LABELS = {
    Corrector.SCHOOL: "l'école, dans ONDE ; la DSDEN relaie auprès de l'académie",
    Corrector.ACADEMY: "l'académie : DSDEN, service des personnels ou de l'export AAF",
    Corrector.PROVIDER: "le prestataire de l'ENT",
}

Population = Literal["structures", "schools", "students", "guardians", "staff", "people", "records"]
ValuePolicy = Literal["clear", "mask", "auto", "ref:self", "ref:Eleve", "ref:PersRelEleve"]
"""How a finding's value is published: as is (``clear``), masked to its first character
(``mask``), masked when the attribute holds personal data or ids (``auto``), or pseudonymised
as a jointure of the finding's own kind (``ref:self``) or of another kind."""

FINDING_COLUMNS = ("rule", "severity", "kind", "jointure", "uai", "attribute", "value", "source")
"""Columns of :attr:`AuditResult.findings`; ``source`` is ``file:line`` of the record."""

STRUCTURE, STUDENT, GUARDIAN, STAFF = (
    schema.KINDS[k] for k in ("EtabEducNat", "Eleve", "PersRelEleve", "PersEducNat")
)
PEOPLE = (STUDENT, GUARDIAN, STAFF)
SCHOOL_TYPE = "ECOLE"
ULIS = "ULIS"
AGE_TOLERANCE = 1
"""Years a pupil's age may differ from the level's usual age (a year ahead or held back is
common); ULIS pupils are exempt."""
TREND_FILE = "quality-trend.json"

MOJIBAKE = "[ÃÂÅâ][" + "".join(map(chr, range(0x80, 0xC0))) + "ŒœŠšŸŽžƒˆ˜–—‘’‚“”„†‡•…‰‹›€™]"
"""UTF-8 read as Windows-1252 or Latin-1: ``é`` -> ``Ã©``, ``É`` -> ``Ã‰``, ``œ`` -> ``Å“``."""

# Reader findings (snapshot.issues codes) that dedicated rules report; the others go to
# ``reader_other``. Unknown and unlisted attributes are read per record from ``extras``.
_ISSUE_RULES = {
    "id_mismatch",
    "invalid_value",
    "malformed_value",
    "multiple_values",
    "missing_jointure",
    "unknown_attribute",
    "unlisted_attribute",
    "malformed_file",
}


def _attr(kind: schema.Kind, column: str) -> str:
    return kind.field(column).attr


# ---------------------------------------------------------------------------------------------
# The frames a check sees
# ---------------------------------------------------------------------------------------------


class Context:
    """The snapshot's frames and what several checks share, each computed once."""

    def __init__(
        self, snapshot: Snapshot, perimeter: frozenset[str] | None, age_tolerance: int
    ) -> None:
        self.snapshot = snapshot
        self.perimeter = perimeter
        self.age_tolerance = age_tolerance
        self.reference = snapshot.extraction.date
        """The extraction's date: a birth date after it is impossible."""
        ref = self.reference or dt.date.today()
        self.school_year = ref.year if ref.month >= 8 else ref.year - 1
        """First calendar year of the school year the extraction describes."""
        self.cache: dict[str, Any] = {}
        """What several checks share beyond the cached properties."""

    def entity(self, kind: schema.Kind) -> pd.DataFrame:
        """The records of ``kind`` (a complete state has no deleted record; one that does
        has them left out)."""
        return getattr(self, kind.frame)

    def _live(self, kind: schema.Kind) -> pd.DataFrame:
        df = getattr(self.snapshot, kind.frame)
        return df[df["op"] != "delete"] if (df["op"] == "delete").any() else df

    def link(self, name: str) -> pd.DataFrame:
        return self.snapshot.links[name]

    @cached_property
    def structures(self) -> pd.DataFrame:
        return self._live(STRUCTURE)

    @cached_property
    def students(self) -> pd.DataFrame:
        return self._live(STUDENT)

    @cached_property
    def guardians(self) -> pd.DataFrame:
        return self._live(GUARDIAN)

    @cached_property
    def staff(self) -> pd.DataFrame:
        return self._live(STAFF)

    @cached_property
    def is_school(self) -> pd.Series:
        """Structures that are schools (not circonscription offices, not the DSDEN)."""
        return (
            (self.structures["struct_type"].str.strip().str.upper() == SCHOOL_TYPE)
            .fillna(False)
            .astype(bool)
        )

    @cached_property
    def schools(self) -> pd.DataFrame:
        return self.structures[self.is_school.to_numpy()]

    @cached_property
    def uai_valid(self) -> pd.Series:
        """UAI well formed and with the right check letter."""
        uai = self.structures["uai"]
        ok = uai.str.fullmatch(schema.FORMATS["uai"]).fillna(False).to_numpy(dtype=bool).copy()
        key = np.full(len(uai), "", dtype=object)
        digits = uai[ok].str.slice(0, 7).astype("int64").to_numpy()
        key[ok] = np.array(list(schema.UAI_KEYS))[digits % 23]
        ok[ok] = uai[ok].str.slice(7, 8).to_numpy(dtype=object) == key[ok]
        return pd.Series(ok, index=uai.index)

    @cached_property
    def attached(self) -> pd.DataFrame:
        """``person_structure`` rows: (person, structure, kind ``student``/``staff``)."""
        return self.link("person_structure").dropna(subset=["person", "structure"])

    def attached_of(self, entity: str) -> pd.DataFrame:
        a = self.attached
        return a[(a["kind"] == entity).to_numpy()]

    @cached_property
    def guardian_links(self) -> pd.DataFrame:
        """``student_guardian`` rows with both ids present."""
        return self.link("student_guardian").dropna(subset=["student", "guardian"])

    @cached_property
    def structure_of(self) -> pd.DataFrame:
        """Each record's school (structure jointure), for the ``uai`` column and per-school
        summaries: a structure is its own; a pupil's is its first attachment (else its first
        class's); a staff member's is the first attachment (else the school they direct, else
        the first function's); a guardian's is the school of their first pupil."""
        s = self.structures[["jointure"]].assign(
            kind=STRUCTURE.name, structure=lambda d: d["jointure"]
        )
        st = self._first(
            [
                self.attached_of("student")[["person", "structure"]],
                self.link("student_class")[["student", "structure"]].rename(
                    columns={"student": "person"}
                ),
            ],
            STUDENT.name,
        )
        sf = self._first(
            [
                self.attached_of("staff")[["person", "structure"]],
                self.link("staff_director")[["staff", "structure"]].rename(
                    columns={"staff": "person"}
                ),
                self.link("staff_function")[["staff", "structure"]].rename(
                    columns={"staff": "person"}
                ),
            ],
            STAFF.name,
        )
        g = self.guardian_links[["guardian", "student"]].merge(
            st[["jointure", "structure"]], left_on="student", right_on="jointure"
        )
        g = (
            g.drop_duplicates("guardian")[["guardian", "structure"]]
            .rename(columns={"guardian": "jointure"})
            .assign(kind=GUARDIAN.name)
        )
        out = pd.concat([s, st, sf, g], ignore_index=True)[["kind", "jointure", "structure"]]
        return out.drop_duplicates(["kind", "jointure"])

    @staticmethod
    def _first(sources: list[pd.DataFrame], kind: str) -> pd.DataFrame:
        rows = pd.concat(sources, ignore_index=True).dropna()
        return (
            rows.drop_duplicates("person").rename(columns={"person": "jointure"}).assign(kind=kind)
        )

    @cached_property
    def invalid(self) -> pd.DataFrame:
        """Reader's ``invalid_value`` findings: a value was there but could not be typed."""
        i = self.snapshot.issues
        return i[(i["code"] == "invalid_value").to_numpy()]

    def typed_but_invalid(self, kind: schema.Kind, df: pd.DataFrame, column: str) -> np.ndarray:
        """Rows of ``df`` whose ``column`` had a value the reader could not type."""
        i = self.invalid
        bad = i.loc[
            ((i["kind"] == kind.name) & (i["attribute"] == _attr(kind, column))).to_numpy(),
            "jointure",
        ].dropna()
        return isin(df["jointure"], bad) if len(bad) else np.zeros(len(df), dtype=bool)


# ---------------------------------------------------------------------------------------------
# Finding rows
# ---------------------------------------------------------------------------------------------

_ROW_COLUMNS = ("kind", "jointure", "attribute", "value", "structure", "source_file", "line")


def _col(x: Any) -> Any:
    return x.to_numpy(dtype=object, na_value=None) if isinstance(x, pd.Series) else x


def _rows(
    df: pd.DataFrame,
    kind: str | pd.Series,
    attribute: str | pd.Series | None,
    value: str | pd.Series | None = None,
    *,
    jointure: str = "jointure",
    structure: str | pd.Series | None = None,
) -> pd.DataFrame:
    """Finding rows for the records of ``df`` (which carries ``source_file`` and ``line``)."""
    if not len(df):
        return _none()
    return pd.DataFrame(
        {
            "kind": _col(kind),
            "jointure": _col(df[jointure]),
            "attribute": _col(attribute),
            "value": _col(value),
            "structure": _col(structure),
            "source_file": df["source_file"].astype(str).to_numpy(dtype=object),
            "line": df["line"].to_numpy(),
        },
        index=pd.RangeIndex(len(df)),
        columns=list(_ROW_COLUMNS),
    )


def _none() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in _ROW_COLUMNS})


def _concat(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    kept = [p for p in parts if len(p)]
    return pd.concat(kept, ignore_index=True) if kept else _none()


def _missing(ctx: Context, kind: schema.Kind, column: str) -> pd.DataFrame:
    """Records whose ``column`` holds no value (an untypable value is not missing)."""
    df = ctx.entity(kind)
    empty = df[column].isna().to_numpy() & ~ctx.typed_but_invalid(kind, df, column)
    return _rows(df[empty], kind.name, _attr(kind, column))


def _not_in(column: pd.Series, values: pd.Series | np.ndarray) -> np.ndarray:
    return (
        ~isin(column, pd.Series(values).dropna().unique())
        if len(values)
        else np.ones(len(column), dtype=bool)
    )


def _pair(a: pd.Series, b: pd.Series) -> pd.Series:
    return a.astype(STRING) + "\x1f" + b.astype(STRING)


def _issues(
    ctx: Context, codes: Iterable[str], *, exclude: Iterable[tuple[str, str]] = ()
) -> pd.DataFrame:
    i = ctx.snapshot.issues
    keep = i["code"].isin(list(codes)).to_numpy(dtype=bool)
    for kind, attr in exclude:
        keep = keep & ~((i["kind"] == kind) & (i["attribute"] == attr)).fillna(False).to_numpy(
            dtype=bool
        )
    i = i[keep]
    return _rows(i.assign(line=i["line"].astype("Int64")), i["kind"], i["attribute"], i["value"])


# ---------------------------------------------------------------------------------------------
# Checks: structures
# ---------------------------------------------------------------------------------------------


def _uai_invalid(ctx: Context) -> pd.DataFrame:
    s = ctx.structures
    bad = s[~ctx.uai_valid.to_numpy()]
    return _rows(bad, STRUCTURE.name, _attr(STRUCTURE, "uai"), bad["uai"])


def _uai_duplicate(ctx: Context) -> pd.DataFrame:
    s = ctx.structures.dropna(subset=["uai"])
    dup = s[s["uai"].duplicated(keep=False).to_numpy()]
    return _rows(dup, STRUCTURE.name, _attr(STRUCTURE, "uai"), dup["uai"])


def _structure_incomplete(ctx: Context) -> pd.DataFrame:
    s = ctx.structures
    parts = [_rows(s[s["name"].isna().to_numpy()], STRUCTURE.name, _attr(STRUCTURE, "name"))]
    for column in ("commune", "circonscription"):
        sch = ctx.schools
        parts.append(
            _rows(sch[sch[column].isna().to_numpy()], STRUCTURE.name, _attr(STRUCTURE, column))
        )
    return _concat(parts)


def _school_without_pupils(ctx: Context) -> pd.DataFrame:
    pupils = ctx.students["jointure"]
    a = ctx.attached_of("student")
    c = ctx.link("student_class")
    used = pd.concat(
        [
            a.loc[isin(a["person"], pupils), "structure"],
            c.loc[isin(c["student"], pupils), "structure"],
        ]
    )
    sch = ctx.schools
    return _rows(sch[_not_in(sch["jointure"], used)], STRUCTURE.name, _attr(STUDENT, "structures"))


def _teacher_structures(ctx: Context) -> pd.Series:
    """Structures where a teacher (``ENTPersonCategorieEnseignant`` = O) is attached or
    teaches (an ``ENS`` function)."""
    teachers = ctx.staff.loc[
        ctx.staff["is_teacher"].fillna(False).astype(bool).to_numpy(), "jointure"
    ]
    a = ctx.attached_of("staff")
    f = ctx.link("staff_function")
    f = f[(f["code"] == "ENS").fillna(False).to_numpy()]
    return pd.concat(
        [
            a.loc[isin(a["person"], teachers), "structure"],
            f.loc[isin(f["staff"], teachers), "structure"],
        ]
    )


def _school_without_teacher(ctx: Context) -> pd.DataFrame:
    sch = ctx.schools
    return _rows(
        sch[_not_in(sch["jointure"], _teacher_structures(ctx))],
        STRUCTURE.name,
        _attr(STAFF, "is_teacher"),
    )


def _directors(ctx: Context) -> pd.DataFrame:
    d = ctx.link("staff_director").dropna(subset=["staff", "structure"])
    return d[isin(d["staff"], ctx.staff["jointure"])].drop_duplicates(["staff", "structure"])


def _school_without_director(ctx: Context) -> pd.DataFrame:
    sch = ctx.schools
    return _rows(
        sch[_not_in(sch["jointure"], _directors(ctx)["structure"])],
        STRUCTURE.name,
        _attr(STAFF, "director_of"),
    )


def _school_several_directors(ctx: Context) -> pd.DataFrame:
    n = _directors(ctx).groupby("structure", observed=True).size()
    many = n[n > 1]
    sch = ctx.schools
    hit = sch[isin(sch["jointure"], many.index)] if len(many) else sch.iloc[:0]
    count = hit["jointure"].map(many).astype("Int64").astype(str) + " directeurs"
    return _rows(hit, STRUCTURE.name, _attr(STAFF, "director_of"), count)


def _school_outside_perimeter(ctx: Context) -> pd.DataFrame:
    sch = ctx.schools
    valid = ctx.uai_valid[ctx.is_school.to_numpy()].to_numpy()
    assert ctx.perimeter is not None
    out = sch[valid & ~isin(sch["uai"].fillna(""), ctx.perimeter)]
    return _rows(out, STRUCTURE.name, _attr(STRUCTURE, "uai"), out["uai"])


# ---------------------------------------------------------------------------------------------
# Checks: pupils
# ---------------------------------------------------------------------------------------------


def _ine_missing(ctx: Context) -> pd.DataFrame:
    return _missing(ctx, STUDENT, "ine")


def _ine_malformed(ctx: Context) -> pd.DataFrame:
    st = ctx.students
    ine = st["ine"]
    bad = (ine.notna() & ~ine.str.fullmatch(schema.FORMATS["ine"]).fillna(False)).to_numpy()
    return _rows(st[bad], STUDENT.name, _attr(STUDENT, "ine"), ine[bad])


def _ine_duplicate(ctx: Context) -> pd.DataFrame:
    st = ctx.students.dropna(subset=["ine"]).drop_duplicates(["jointure", "ine"])
    dup = st[st["ine"].duplicated(keep=False).to_numpy()]
    return _rows(dup, STUDENT.name, _attr(STUDENT, "ine"), dup["ine"])


def _birth_date_missing(ctx: Context) -> pd.DataFrame:
    return _missing(ctx, STUDENT, "birth_date")


def _date_text(dates: pd.Series) -> pd.Series:
    return dates.dt.strftime("%d/%m/%Y")


def _birth_date_invalid(ctx: Context) -> pd.DataFrame:
    i = ctx.invalid
    attr = _attr(STUDENT, "birth_date")
    untypable = i[((i["kind"] == STUDENT.name) & (i["attribute"] == attr)).to_numpy()]
    parts = [
        _rows(
            untypable.assign(line=untypable["line"].astype("Int64")),
            STUDENT.name,
            attr,
            untypable["value"],
        )
    ]
    if ctx.reference is not None:
        st = ctx.students
        future = (st["birth_date"] > pd.Timestamp(ctx.reference)).fillna(False).to_numpy()
        parts.append(_rows(st[future], STUDENT.name, attr, _date_text(st["birth_date"][future])))
    return _concat(parts)


def _age_level_mismatch(ctx: Context) -> pd.DataFrame:
    st = ctx.students
    usual = st["level"].map(schema.LEVEL_AGE).astype("Float64")
    age = ctx.school_year - st["birth_date"].dt.year.astype("Float64")
    ulis = st["class_type"].str.upper().str.contains(ULIS, regex=False).fillna(False)
    born = st["birth_date"] <= pd.Timestamp(ctx.reference or dt.date.today())
    bad = ((age - usual).abs() > ctx.age_tolerance) & born & ~ulis
    bad = bad.fillna(False).to_numpy(dtype=bool)
    hit = st[bad]
    text = (
        age[bad].astype("Int64").astype(str)
        + " ans au 31/12/"
        + str(ctx.school_year)
        + " en "
        + hit["level"].astype(str)
        + " (âge usuel "
        + usual[bad].astype("Int64").astype(str)
        + ")"
    )
    return _rows(hit, STUDENT.name, _attr(STUDENT, "birth_date"), text)


def _level_cycle_mismatch(ctx: Context) -> pd.DataFrame:
    st = ctx.students
    expected = st["level"].map(schema.LEVEL_CYCLE).astype("Int64")
    stated = st["cycle"].astype("Int64")
    bad = (expected.notna() & stated.notna() & (expected != stated)).fillna(False)
    bad = bad.to_numpy(dtype=bool)
    hit = st[bad]
    text = hit["level"].astype(str) + " / cycle " + stated[bad].astype(str)
    return _rows(hit, STUDENT.name, _attr(STUDENT, "cycle"), text)


def _pupil_without_structure(ctx: Context) -> pd.DataFrame:
    st = ctx.students
    return _rows(
        st[_not_in(st["jointure"], ctx.attached_of("student")["person"])],
        STUDENT.name,
        _attr(STUDENT, "structures"),
    )


def _unknown_structure(ctx: Context) -> pd.DataFrame:
    a = ctx.attached
    hit = a[~isin(a["structure"], ctx.structures["jointure"])]
    kind = hit["kind"].map({"student": STUDENT.name, "staff": STAFF.name})
    return _rows(hit, kind, _attr(STUDENT, "structures"), hit["structure"], jointure="person")


def _class_other_structure(ctx: Context) -> pd.DataFrame:
    c = ctx.link("student_class").dropna(subset=["student", "structure"])
    a = ctx.attached_of("student")
    c = c[isin(c["student"], a["person"]) & isin(c["student"], ctx.students["jointure"])]
    hit = c[~isin(_pair(c["student"], c["structure"]), _pair(a["person"], a["structure"]))]
    return _rows(hit, STUDENT.name, _attr(STUDENT, "classes"), hit["structure"], jointure="student")


def _pupil_without_class(ctx: Context) -> pd.DataFrame:
    st = ctx.students
    c = ctx.link("student_class")
    return _rows(st[_not_in(st["jointure"], c["student"])], STUDENT.name, _attr(STUDENT, "classes"))


def _pupil_several_classes(ctx: Context) -> pd.DataFrame:
    c = ctx.link("student_class").dropna(subset=["student"])
    c = c[isin(c["student"], ctx.students["jointure"])]
    distinct = c.drop_duplicates(["student", "structure", "class_id"])
    n = distinct.groupby(["student", "structure"], dropna=False, observed=True).size()
    many = n[n > 1].reset_index(name="classes")
    hit = distinct.drop_duplicates(["student", "structure"]).merge(
        many, on=["student", "structure"]
    )
    return _rows(
        hit,
        STUDENT.name,
        _attr(STUDENT, "classes"),
        hit["classes"].astype(str) + " classes",
        jointure="student",
        structure=hit["structure"],
    )


def _pupil_several_schools(ctx: Context) -> pd.DataFrame:
    a = ctx.attached_of("student").drop_duplicates(["person", "structure"])
    a = a[isin(a["person"], ctx.students["jointure"])]
    n = a.groupby("person", observed=True).size()
    many = n[n > 1]
    hit = a.drop_duplicates("person")
    hit = hit[isin(hit["person"], many.index)] if len(many) else hit.iloc[:0]
    return _rows(
        hit,
        STUDENT.name,
        _attr(STUDENT, "structures"),
        hit["person"].map(many).astype(str) + " structures",
        jointure="person",
    )


def _pupil_without_guardian(ctx: Context) -> pd.DataFrame:
    st = ctx.students
    g = ctx.guardian_links
    stated = g.loc[(g["seen_from"] == "student").to_numpy(), "student"]
    return _rows(st[_not_in(st["jointure"], stated)], STUDENT.name, _attr(STUDENT, "guardians"))


def _links_from(ctx: Context, side: str) -> pd.DataFrame:
    g = ctx.guardian_links
    return g[(g["seen_from"] == side).to_numpy()]


def _guardian_unknown(ctx: Context) -> pd.DataFrame:
    g = _links_from(ctx, "student")
    g = g[isin(g["student"], ctx.students["jointure"])]
    hit = g[~isin(g["guardian"], ctx.guardians["jointure"])].drop_duplicates(
        ["student", "guardian"]
    )
    return _rows(
        hit, STUDENT.name, _attr(STUDENT, "guardians"), hit["guardian"], jointure="student"
    )


def _name_key(names: pd.Series) -> pd.Series:
    """Names compared without case, accents, spaces, hyphens or apostrophes."""
    return names.str.normalize("NFKD").str.replace(r"\p{Mn}|[^\p{L}]", "", regex=True).str.lower()


def _duplicate_person(ctx: Context) -> pd.DataFrame:
    parts = []
    for kind in (STUDENT, STAFF):
        df = ctx.entity(kind).dropna(subset=["last_name", "first_name", "birth_date"])
        key = (
            _name_key(df["last_name"])
            + "\x1f"
            + _name_key(df["first_name"])
            + "\x1f"
            + _date_text(df["birth_date"])
        )
        people = pd.DataFrame({"key": key, "jointure": df["jointure"]}).drop_duplicates()
        shared = people.loc[people["key"].duplicated(keep=False).to_numpy(), "key"]
        hit = df[isin(key, shared.unique())] if len(shared) else df.iloc[:0]
        parts.append(
            _rows(
                hit, kind.name, _attr(kind, "last_name"), hit["last_name"] + " " + hit["first_name"]
            )
        )
    return _concat(parts)


def _people_inside(ctx: Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attachments of pupils and staff to schools, and those to a school inside the perimeter
    (or whose UAI is invalid: membership cannot be decided, ``uai_invalid`` says so)."""
    assert ctx.perimeter is not None
    sch = ctx.schools
    valid = ctx.uai_valid[ctx.is_school.to_numpy()].to_numpy()
    inside = sch.loc[~valid | isin(sch["uai"].fillna(""), ctx.perimeter), "jointure"]
    a = ctx.attached
    at_school = a[isin(a["structure"], sch["jointure"])]
    return at_school, at_school[isin(at_school["structure"], inside)]


def _person_outside_perimeter(ctx: Context) -> pd.DataFrame:
    at_school, ok = _people_inside(ctx)
    out = at_school[~isin(at_school["person"], ok["person"])].drop_duplicates("person")
    kind = out["kind"].map({"student": STUDENT.name, "staff": STAFF.name})
    parts = [
        _rows(
            out,
            kind,
            _attr(STUDENT, "structures"),
            out["structure"],
            jointure="person",
            structure=out["structure"],
        )
    ]
    # Guardians whose every (known) pupil is outside.
    pupils_out = out.loc[(out["kind"] == "student").to_numpy(), "person"]
    g = ctx.guardian_links
    g = g[isin(g["student"], ctx.students["jointure"])]
    outside = isin(g["student"], pupils_out)
    all_out = pd.Series(outside, index=g.index).groupby(g["guardian"], observed=True).all()
    gone = all_out[all_out].index
    gd = ctx.guardians
    hit = gd[isin(gd["jointure"], gone)] if len(gone) else gd.iloc[:0]
    parts.append(_rows(hit, GUARDIAN.name, _attr(GUARDIAN, "students")))
    return _concat(parts)


# ---------------------------------------------------------------------------------------------
# Checks: guardians
# ---------------------------------------------------------------------------------------------


def _guardian_without_pupil(ctx: Context) -> pd.DataFrame:
    gd = ctx.guardians
    return _rows(
        gd[_not_in(gd["jointure"], ctx.guardian_links["guardian"])],
        GUARDIAN.name,
        _attr(GUARDIAN, "students"),
    )


def _guardian_pupil_unknown(ctx: Context) -> pd.DataFrame:
    g = _links_from(ctx, "guardian")
    g = g[isin(g["guardian"], ctx.guardians["jointure"])]
    hit = g[~isin(g["student"], ctx.students["jointure"])].drop_duplicates(["guardian", "student"])
    return _rows(
        hit, GUARDIAN.name, _attr(GUARDIAN, "students"), hit["student"], jointure="guardian"
    )


def _one_side(ctx: Context, side: str) -> pd.DataFrame:
    """Links stated by ``side`` only, both people being in the extraction."""
    mine, theirs = (
        _links_from(ctx, side),
        _links_from(ctx, "guardian" if side == "student" else "student"),
    )
    mine = mine[
        isin(mine["student"], ctx.students["jointure"])
        & isin(mine["guardian"], ctx.guardians["jointure"])
    ]
    return mine[
        ~isin(
            _pair(mine["student"], mine["guardian"]), _pair(theirs["student"], theirs["guardian"])
        )
    ].drop_duplicates(["student", "guardian"])


def _link_pupil_side_only(ctx: Context) -> pd.DataFrame:
    hit = _one_side(ctx, "student")
    return _rows(
        hit, STUDENT.name, _attr(STUDENT, "guardians"), hit["guardian"], jointure="student"
    )


def _link_guardian_side_only(ctx: Context) -> pd.DataFrame:
    hit = _one_side(ctx, "guardian")
    return _rows(
        hit, GUARDIAN.name, _attr(GUARDIAN, "students"), hit["student"], jointure="guardian"
    )


def _formatted(
    ctx: Context, formats: set[str]
) -> Iterable[tuple[schema.Kind, str, pd.DataFrame, pd.Series]]:
    """(kind, column, frame, values present) of every field whose format is in ``formats``."""
    for (kind_name, column), fmt in schema.FIELD_FORMATS.items():
        if fmt in formats:
            kind = schema.KINDS[kind_name]
            df = ctx.entity(kind)
            present = df[column].notna().to_numpy()
            if present.any():
                yield kind, column, df[present], df[column][present]


def _phone_digits(values: pd.Series) -> pd.Series:
    """``05 61 84 55 55``, ``+33 5 61 84 55 55``, ``05.61.84.55.55`` -> ``0561845555``."""
    return values.str.replace(schema.PHONE_SEPARATORS, "", regex=True).str.replace(
        r"^\+33", "0", regex=True
    )


def _phone_checks(
    ctx: Context,
) -> dict[tuple[str, str], tuple[pd.DataFrame, pd.Series, np.ndarray, np.ndarray]]:
    """Per phone field: (records with a value, values, well formed, a mobile), computed once
    for ``phone_malformed`` and ``mobile_not_mobile``."""
    if "phones" not in ctx.cache:
        out = {}
        for kind, column, df, values in _formatted(ctx, {"phone", "mobile"}):
            digits = _phone_digits(values)
            phone = digits.str.fullmatch(schema.FORMATS["phone"]).fillna(False)
            mobile = digits.str.fullmatch(schema.FORMATS["mobile"]).fillna(False)
            out[(kind.name, column)] = (
                df,
                values,
                phone.to_numpy(dtype=bool),
                mobile.to_numpy(dtype=bool),
            )
        ctx.cache["phones"] = out
    return ctx.cache["phones"]


def _format_errors(
    ctx: Context,
    formats: set[str],
    pattern: str,
    prepare: Callable[[pd.Series], pd.Series] = lambda s: s,
    where: Callable[[schema.Kind, pd.DataFrame], np.ndarray] | None = None,
) -> pd.DataFrame:
    parts = []
    for kind, column, df, values in _formatted(ctx, formats):
        bad = ~prepare(values).str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)
        if where is not None:
            bad &= where(kind, df)
        if bad.any():
            parts.append(_rows(df[bad], kind.name, _attr(kind, column), values[bad]))
    return _concat(parts)


def _mail_malformed(ctx: Context) -> pd.DataFrame:
    return _format_errors(ctx, {"mail"}, schema.FORMATS["mail"])


def _phone_malformed(ctx: Context) -> pd.DataFrame:
    return _concat(
        _rows(df[~ok], kind, _attr(schema.KINDS[kind], column), values[~ok])
        for (kind, column), (df, values, ok, _) in _phone_checks(ctx).items()
    )


def _in_france(kind: schema.Kind, df: pd.DataFrame) -> np.ndarray:
    if "country" not in df:
        return np.ones(len(df), dtype=bool)
    country = df["country"].str.strip().str.upper()
    return (country.isna() | country.isin(["FRANCE", "FR"])).fillna(True).to_numpy(dtype=bool)


def _postal_code_malformed(ctx: Context) -> pd.DataFrame:
    return _format_errors(
        ctx, {"postal_code"}, schema.FORMATS["postal_code"], lambda s: s.str.strip(), _in_france
    )


def _mobile_not_mobile(ctx: Context) -> pd.DataFrame:
    parts = []
    for (kind, column), (df, values, phone, mobile) in _phone_checks(ctx).items():
        if schema.FIELD_FORMATS[(kind, column)] == "mobile":
            bad = phone & ~mobile
            parts.append(_rows(df[bad], kind, _attr(schema.KINDS[kind], column), values[bad]))
    return _concat(parts)


# ---------------------------------------------------------------------------------------------
# Checks: staff
# ---------------------------------------------------------------------------------------------


def _staff_without_structure(ctx: Context) -> pd.DataFrame:
    sf = ctx.staff
    return _rows(
        sf[_not_in(sf["jointure"], ctx.attached_of("staff")["person"])],
        STAFF.name,
        _attr(STAFF, "structures"),
    )


def _director_not_attached(ctx: Context) -> pd.DataFrame:
    d = _directors(ctx)
    a = ctx.attached_of("staff")
    hit = d[~isin(_pair(d["staff"], d["structure"]), _pair(a["person"], a["structure"]))]
    return _rows(
        hit,
        STAFF.name,
        _attr(STAFF, "director_of"),
        hit["structure"],
        jointure="staff",
        structure=hit["structure"],
    )


def _teacher_flag_missing(ctx: Context) -> pd.DataFrame:
    return _missing(ctx, STAFF, "is_teacher")


# ---------------------------------------------------------------------------------------------
# Checks: every file
# ---------------------------------------------------------------------------------------------


def _id_mismatch(ctx: Context) -> pd.DataFrame:
    return _issues(ctx, ["id_mismatch"])


DEDICATED_MISSING = {
    (STRUCTURE.name, "uai"),
    (STRUCTURE.name, "name"),
    (STUDENT.name, "ine"),
    (STUDENT.name, "birth_date"),
}
"""Required attributes whose absence a dedicated rule reports (not ``required_empty``)."""


def _required_empty(ctx: Context) -> pd.DataFrame:
    parts = [
        _missing(ctx, kind, f.column)
        for kind in schema.KINDS.values()
        for f in kind.single
        if f.required and f.column != "jointure" and (kind.name, f.column) not in DEDICATED_MISSING
    ]
    parts.append(_issues(ctx, ["missing_jointure"]))
    return _concat(parts)


def _extras_of(ctx: Context, known: bool) -> pd.DataFrame:
    """Extra values whose attribute no kind declares (``known=False``) or another kind
    declares (``known=True``); a second value of a declared attribute is not one of them."""
    e = ctx.snapshot.extras
    if e.empty:
        return e
    declared = pd.Series(e["kind"].astype(str) + "\x1f" + e["attribute"].astype(str))
    own = isin(declared, [f"{k.name}\x1f{a}" for k in schema.KINDS.values() for a in k.by_attr])
    everywhere = isin(e["attribute"], schema.KNOWN_ATTRIBUTES)
    keep = ~own & (everywhere if known else ~everywhere)
    return e[keep].drop_duplicates(["kind", "jointure", "attribute"])


def _unknown_attribute(ctx: Context) -> pd.DataFrame:
    e = _extras_of(ctx, known=False)
    return _rows(e, e["kind"], e["attribute"], e["value"]) if len(e) else _none()


def _attribute_not_in_convention(ctx: Context) -> pd.DataFrame:
    e = _extras_of(ctx, known=True)
    parts = [_rows(e, e["kind"], e["attribute"], e["value"])] if len(e) else []
    for kind in schema.KINDS.values():
        for f in kind.fields:
            if f.in_convention:
                continue
            if f.multi:
                rows = ctx.link(f.link).dropna(subset=[f.owner])
                rows = rows[isin(rows[f.owner], ctx.entity(kind)["jointure"])]
                rows = rows.drop_duplicates(f.owner)
                parts.append(_rows(rows, kind.name, f.attr, rows[f.parts[-1]], jointure=f.owner))
            else:
                df = ctx.entity(kind)
                hit = df[df[f.column].notna().to_numpy()]
                parts.append(_rows(hit, kind.name, f.attr, hit[f.column].astype(str)))
    return _concat(parts)


def _mojibake(ctx: Context) -> pd.DataFrame:
    parts = []
    for kind in schema.KINDS.values():
        df = ctx.entity(kind)
        for f in kind.single:
            if f.dtype != "string" or f.column == "jointure":
                continue
            bad = df[f.column].str.contains(MOJIBAKE, regex=True).fillna(False).to_numpy(dtype=bool)
            if bad.any():
                hit = df[bad]
                parts.append(_rows(hit, kind.name, f.attr, hit[f.column]))
    names = ctx.link("person_other_name")
    hit = names[
        names["other_first_name"]
        .str.contains(MOJIBAKE, regex=True)
        .fillna(False)
        .to_numpy(dtype=bool)
    ]
    kinds = {k.entity: k.name for k in PEOPLE}
    parts.append(
        _rows(
            hit,
            hit["kind"].map(kinds),
            _attr(STUDENT, "other_first_names"),
            hit["other_first_name"],
            jointure="person",
        )
    )
    return _concat(parts)


def _invalid_value(ctx: Context) -> pd.DataFrame:
    return _issues(ctx, ["invalid_value"], exclude=[(STUDENT.name, _attr(STUDENT, "birth_date"))])


def _malformed_value(ctx: Context) -> pd.DataFrame:
    return _issues(ctx, ["malformed_value"])


def _multiple_values(ctx: Context) -> pd.DataFrame:
    return _issues(ctx, ["multiple_values"])


def _skipped_record(ctx: Context) -> pd.DataFrame:
    """Each record a malformed file lost (``recover=True``), and a malformed file that lost
    none (its ``malformed_file`` reader finding)."""
    sk = ctx.snapshot.skipped
    parts = []
    if len(sk):
        kinds = ctx.snapshot.files.drop_duplicates("source_file").set_index("source_file")
        parts.append(
            _rows(
                sk.assign(line=sk["line"].astype("Int64")),
                sk["source_file"].astype(str).map(kinds["kind"]),
                None,
                sk["message"],
                jointure="record_id",
            )
        )
    files = _issues(ctx, ["malformed_file"])
    lost = sk["source_file"].astype(str).unique() if len(sk) else []
    parts.append(files[~files["source_file"].isin(lost).to_numpy()])
    return _concat(parts)


def _reader_other(ctx: Context) -> pd.DataFrame:
    i = ctx.snapshot.issues
    codes = sorted(set(i["code"].dropna().unique()) - _ISSUE_RULES)
    out = _issues(ctx, codes)
    if len(out):
        code = i.loc[i["code"].isin(codes).to_numpy(), "code"].to_numpy(dtype=object)
        out["attribute"] = np.where(
            pd.isna(out["attribute"]), code, code + ": " + out["attribute"].astype(str)
        )
    return out


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One data-quality rule: what it checks, how bad it is, and how to get it corrected."""

    id: str
    """Stable identifier (``findings.csv``, thresholds, trend)."""
    severity: Severity
    kinds: tuple[str, ...]
    """AAF kinds (file-name tokens) whose records it reports."""
    attributes: tuple[str, ...]
    """AAF attributes concerned (``*``: any)."""
    title: str
    """French, one line."""
    explanation: str
    """French: what it means for the ENT."""
    correction: str
    """French: how to get it corrected."""
    corrector: Corrector
    population: Population
    """What a rate is a share of."""
    check: Callable[[Context], pd.DataFrame] = field(repr=False, compare=False)
    value: ValuePolicy = "auto"
    needs_perimeter: bool = False
    """Checked only when the perimeter's school list is given."""


B, W, I = Severity.BLOCKING, Severity.WARNING, Severity.INFO  # noqa: E741
ST, EL, PR, PE = "EtabEducNat", "Eleve", "PersRelEleve", "PersEducNat"
_SCHOOL, _ACADEMY, _PROVIDER = Corrector.SCHOOL, Corrector.ACADEMY, Corrector.PROVIDER

RULES: tuple[Rule, ...] = (
    # -- structures ------------------------------------------------------------------------
    Rule(
        "uai_invalid",
        B,
        (ST,),
        ("ENTStructureUAI",),
        "UAI absente, mal formée ou de lettre clé fausse",
        "L'UAI (code RNE) identifie l'école dans l'ENT et dans toutes les applications "
        "nationales ; elle compte 7 chiffres et une lettre clé calculée sur ces chiffres. "
        "Une UAI fausse empêche de créer ou de retrouver l'école.",
        "Signaler la structure à la DSDEN, qui fait corriger l'UAI dans la base des "
        "établissements (RAMSESE) avant la prochaine extraction.",
        _ACADEMY,
        "structures",
        _uai_invalid,
        "clear",
    ),
    Rule(
        "uai_duplicate",
        B,
        (ST,),
        ("ENTStructureUAI",),
        "Même UAI sur plusieurs structures",
        "Deux structures portent la même UAI : l'ENT ne peut en créer qu'une, les élèves et "
        "personnels de l'autre seraient rattachés à la mauvaise école.",
        "Signaler les deux structures à la DSDEN (export AAF de l'académie).",
        _ACADEMY,
        "structures",
        _uai_duplicate,
        "clear",
    ),
    Rule(
        "structure_incomplete",
        W,
        (ST,),
        ("ENTStructureNomCourant", "ENTEcoleCommune", "ENTEcoleCirconscription"),
        "Structure sans nom, école sans commune ou sans circonscription",
        "Sans nom, la structure est illisible dans l'ENT ; sans commune ni circonscription, "
        "l'école manque aux tableaux de pilotage par circonscription et par commune.",
        "Demander à la DSDEN de compléter la fiche de l'école dans la base des établissements.",
        _ACADEMY,
        "structures",
        _structure_incomplete,
    ),
    Rule(
        "school_without_pupils",
        W,
        (ST,),
        ("ENTPersonStructRattach",),
        "École sans élève",
        "Aucun élève n'est rattaché à l'école ni inscrit dans l'une de ses classes : "
        "extraction partielle, école fermée ou élèves rattachés ailleurs.",
        "Vérifier avec l'école que ses élèves sont admis dans ONDE ; sinon signaler "
        "l'extraction incomplète à la DSDEN.",
        _SCHOOL,
        "schools",
        _school_without_pupils,
    ),
    Rule(
        "school_without_teacher",
        B,
        (ST,),
        ("ENTPersonCategorieEnseignant",),
        "École sans enseignant",
        "Aucun personnel « catégorie enseignant » n'est rattaché à l'école ni n'y enseigne : "
        "personne ne peut ouvrir l'ENT de l'école ni animer ses classes.",
        "Signaler à la DSDEN (service des personnels) : affectations manquantes dans l'extraction.",
        _ACADEMY,
        "schools",
        _school_without_teacher,
    ),
    Rule(
        "school_without_director",
        W,
        (ST,),
        ("ENTEnsFonctionDir",),
        "École sans directeur",
        "Aucun personnel n'est déclaré directeur de l'école (ENTEnsFonctionDir) : "
        "l'administrateur naturel de l'ENT de l'école manque.",
        "Signaler à la DSDEN (service des personnels) : la fonction de direction doit figurer "
        "dans l'annuaire académique.",
        _ACADEMY,
        "schools",
        _school_without_director,
    ),
    Rule(
        "school_several_directors",
        W,
        (ST,),
        ("ENTEnsFonctionDir",),
        "École avec plusieurs directeurs",
        "Plusieurs personnels sont déclarés directeurs de la même école : une ancienne "
        "direction n'a sans doute pas été retirée.",
        "Signaler à la DSDEN (service des personnels) la fonction de direction à retirer.",
        _ACADEMY,
        "schools",
        _school_several_directors,
        "clear",
    ),
    Rule(
        "school_outside_perimeter",
        B,
        (ST,),
        ("ENTStructureUAI",),
        "École hors du périmètre de la convention",
        "L'extraction contient une école qui n'est pas dans la liste des écoles de la "
        "convention : ces données ne doivent pas être reçues ni chargées dans l'ENT.",
        "Ne pas charger ces données ; signaler l'extraction à l'académie (périmètre de "
        "l'export) et les détruire.",
        _ACADEMY,
        "schools",
        _school_outside_perimeter,
        "clear",
        needs_perimeter=True,
    ),
    # -- pupils --------------------------------------------------------------------------------
    Rule(
        "ine_missing",
        W,
        (EL,),
        ("ENTEleveINE",),
        "Élève sans INE",
        "L'identifiant national élève manque : l'élève ne peut pas être suivi d'une école à "
        "l'autre ni rapproché des autres applications.",
        "L'école complète l'INE dans ONDE (immatriculation de l'élève).",
        _SCHOOL,
        "students",
        _ine_missing,
    ),
    Rule(
        "ine_malformed",
        W,
        (EL,),
        ("ENTEleveINE",),
        "INE mal formé",
        "L'INE n'a pas la forme attendue (11 caractères : 10 chiffres ou lettres et une "
        "lettre clé, ou 9 chiffres et 2 lettres).",
        "L'école vérifie l'INE dans ONDE ; la DSDEN relaie si l'erreur vient de l'export.",
        _SCHOOL,
        "students",
        _ine_malformed,
    ),
    Rule(
        "ine_duplicate",
        B,
        (EL,),
        ("ENTEleveINE",),
        "Même INE pour plusieurs élèves",
        "Deux fiches élèves différentes portent le même INE : l'ENT risque de fusionner deux "
        "enfants ou de donner à l'un l'accès aux données de l'autre.",
        "Signaler les fiches à la DSDEN, qui fait corriger l'immatriculation dans ONDE.",
        _SCHOOL,
        "students",
        _ine_duplicate,
    ),
    Rule(
        "birth_date_missing",
        W,
        (EL,),
        ("ENTPersonDateNaissance",),
        "Élève sans date de naissance",
        "La date de naissance manque : l'ENT s'en sert pour distinguer les homonymes et pour "
        "les services en ligne adaptés à l'âge.",
        "L'école complète la fiche de l'élève dans ONDE.",
        _SCHOOL,
        "students",
        _birth_date_missing,
    ),
    Rule(
        "birth_date_invalid",
        W,
        (EL,),
        ("ENTPersonDateNaissance",),
        "Date de naissance impossible",
        "La date de naissance n'est pas une date du calendrier (31/02…) ou elle est "
        "postérieure à l'extraction.",
        "L'école corrige la date dans ONDE.",
        _SCHOOL,
        "students",
        _birth_date_invalid,
    ),
    Rule(
        "age_level_mismatch",
        W,
        (EL,),
        ("ENTPersonDateNaissance", "ENTEleveNiveau"),
        "Âge incompatible avec le niveau",
        "L'âge de l'élève au 31 décembre de l'année scolaire s'écarte de plus d'un an de "
        "l'âge usuel du niveau (TPS 2 ans … CM2 10 ans) ; les élèves d'ULIS ne sont pas "
        "concernés. La date de naissance ou le niveau est probablement faux.",
        "L'école vérifie la date de naissance et le niveau dans ONDE.",
        _SCHOOL,
        "students",
        _age_level_mismatch,
        "clear",
    ),
    Rule(
        "level_cycle_mismatch",
        W,
        (EL,),
        ("ENTEleveNiveau", "ENTEleveCycle"),
        "Cycle incohérent avec le niveau",
        "Le cycle transmis ne correspond pas au niveau (cycle 1 : TPS à GS, cycle 2 : CP à "
        "CE2, cycle 3 : CM1 et CM2) : les ressources par cycle seront mal attribuées.",
        "Signaler à la DSDEN (l'export calcule le cycle) ou à l'école si le niveau est faux.",
        _ACADEMY,
        "students",
        _level_cycle_mismatch,
        "clear",
    ),
    Rule(
        "pupil_without_structure",
        B,
        (EL,),
        ("ENTPersonStructRattach",),
        "Élève sans structure de rattachement",
        "L'élève n'est rattaché à aucune école : son compte ne peut pas être créé dans une école.",
        "L'école vérifie l'admission de l'élève dans ONDE ; la DSDEN relaie.",
        _SCHOOL,
        "students",
        _pupil_without_structure,
    ),
    Rule(
        "unknown_structure",
        B,
        (EL, PE),
        ("ENTPersonStructRattach",),
        "Rattachement à une structure absente de l'extraction",
        "La personne est rattachée à une structure (jointure) qui n'est pas dans le fichier "
        "des structures : son compte ne peut pas être placé.",
        "Signaler à la DSDEN : structure manquante dans l'extraction ou rattachement erroné.",
        _ACADEMY,
        "people",
        _unknown_structure,
        "clear",
    ),
    Rule(
        "class_other_structure",
        W,
        (EL,),
        ("ENTPersonClasses",),
        "Classe déclarée dans une autre école que celle de l'élève",
        "La classe de l'élève (ENTPersonClasses) appartient à une structure à laquelle "
        "l'élève n'est pas rattaché : l'élève apparaîtrait dans la classe d'une autre école.",
        "L'école vérifie la répartition de l'élève dans ONDE.",
        _SCHOOL,
        "students",
        _class_other_structure,
        "clear",
    ),
    Rule(
        "pupil_without_class",
        W,
        (EL,),
        ("ENTPersonClasses",),
        "Élève sans classe",
        "L'élève n'est dans aucune classe : il n'apparaît dans aucun espace de classe de l'ENT.",
        "L'école répartit l'élève dans une classe dans ONDE.",
        _SCHOOL,
        "students",
        _pupil_without_class,
    ),
    Rule(
        "pupil_several_classes",
        W,
        (EL,),
        ("ENTPersonClasses",),
        "Élève dans plusieurs classes d'une même école",
        "Un élève du premier degré est dans une seule classe : une ancienne répartition n'a "
        "sans doute pas été retirée.",
        "L'école corrige la répartition dans ONDE.",
        _SCHOOL,
        "students",
        _pupil_several_classes,
        "clear",
    ),
    Rule(
        "pupil_several_schools",
        W,
        (EL,),
        ("ENTPersonStructRattach",),
        "Élève rattaché à plusieurs écoles",
        "L'élève est rattaché à plusieurs structures : une radiation n'a sans doute pas été "
        "faite après un changement d'école ; il aurait un compte dans chacune.",
        "L'ancienne école radie l'élève dans ONDE ; la DSDEN relaie.",
        _SCHOOL,
        "students",
        _pupil_several_schools,
        "clear",
    ),
    Rule(
        "pupil_without_guardian",
        W,
        (EL,),
        ("ENTEleveAutoriteParentale",),
        "Élève sans responsable légal",
        "Aucune personne ayant l'autorité parentale n'est indiquée : aucun compte parent ne "
        "sera relié à l'élève.",
        "L'école saisit les responsables légaux dans ONDE.",
        _SCHOOL,
        "students",
        _pupil_without_guardian,
    ),
    Rule(
        "guardian_unknown",
        W,
        (EL,),
        ("ENTEleveAutoriteParentale",),
        "Responsable désigné mais absent du fichier des responsables",
        "L'élève désigne un responsable (autorité parentale) qui n'est pas dans le fichier "
        "PersRelEleve (« PARENT NOT FOUND ») : ce parent n'aura pas de compte.",
        "Signaler à la DSDEN (export incomplet) ; l'école vérifie la fiche du responsable "
        "dans ONDE.",
        _ACADEMY,
        "students",
        _guardian_unknown,
        "ref:PersRelEleve",
    ),
    Rule(
        "duplicate_person",
        W,
        (EL, PE),
        ("ENTPersonNom", "ENTPersonPrenom", "ENTPersonDateNaissance"),
        "Doublon probable (mêmes nom, prénom et date de naissance)",
        "Deux fiches de jointures différentes portent les mêmes nom, prénom et date de "
        "naissance (sans tenir compte des accents ni de la casse) : la même personne aurait "
        "deux comptes.",
        "L'école (élèves) ou la DSDEN (personnels) vérifie et fusionne les fiches.",
        _SCHOOL,
        "people",
        _duplicate_person,
        "mask",
    ),
    Rule(
        "person_outside_perimeter",
        B,
        (EL, PR, PE),
        ("ENTPersonStructRattach",),
        "Personne hors du périmètre de la convention",
        "Élève ou personnel rattaché uniquement à des écoles hors de la liste de la "
        "convention, ou responsable dont tous les élèves le sont : ces données ne doivent "
        "pas être reçues.",
        "Ne pas charger ces données ; signaler l'extraction à l'académie et les détruire.",
        _ACADEMY,
        "people",
        _person_outside_perimeter,
        "clear",
        needs_perimeter=True,
    ),
    # -- guardians -----------------------------------------------------------------------------
    Rule(
        "guardian_without_pupil",
        W,
        (PR,),
        ("ENTPersRelEleveEleve",),
        "Responsable sans élève",
        "Aucun élève n'est relié au responsable, dans un sens ou dans l'autre : son compte "
        "serait inutile (certains ENT l'ignorent, d'autres le créent).",
        "Signaler à la DSDEN (export) ; l'école vérifie les responsables dans ONDE.",
        _ACADEMY,
        "guardians",
        _guardian_without_pupil,
    ),
    Rule(
        "guardian_pupil_unknown",
        W,
        (PR,),
        ("ENTPersRelEleveEleve",),
        "Élève désigné par un responsable mais absent du fichier des élèves",
        "Le responsable cite un élève (ENTPersRelEleveEleve) qui n'est pas dans le fichier Eleve.",
        "Signaler à la DSDEN (export incomplet).",
        _ACADEMY,
        "guardians",
        _guardian_pupil_unknown,
        "ref:Eleve",
    ),
    Rule(
        "link_pupil_side_only",
        W,
        (EL,),
        ("ENTEleveAutoriteParentale", "ENTPersRelEleveEleve"),
        "Lien élève → responsable non réciproque",
        "L'élève désigne le responsable, mais le responsable ne cite pas l'élève : selon "
        "l'ENT, le lien parent-enfant sera créé ou non.",
        "Signaler à la DSDEN (cohérence de l'export).",
        _ACADEMY,
        "students",
        _link_pupil_side_only,
        "ref:PersRelEleve",
    ),
    Rule(
        "link_guardian_side_only",
        W,
        (PR,),
        ("ENTPersRelEleveEleve", "ENTEleveAutoriteParentale"),
        "Lien responsable → élève non réciproque",
        "Le responsable cite l'élève, mais l'élève ne le désigne pas comme ayant l'autorité "
        "parentale : le parent pourrait voir un enfant sur lequel il n'a pas d'autorité.",
        "L'école vérifie les responsables légaux de l'élève dans ONDE ; la DSDEN relaie.",
        _SCHOOL,
        "guardians",
        _link_guardian_side_only,
        "ref:Eleve",
    ),
    Rule(
        "mail_malformed",
        W,
        (ST, PR, PE),
        ("ENTPersonMail", "ENTStructureMailSI"),
        "Adresse mail mal formée",
        "L'adresse mail n'a pas la forme nom@domaine.tld : les notifications et la "
        "récupération de mot de passe échouent.",
        "Le responsable corrige sa fiche auprès de l'école (ONDE) ; la DSDEN pour les "
        "personnels et les écoles.",
        _SCHOOL,
        "records",
        _mail_malformed,
    ),
    Rule(
        "phone_malformed",
        W,
        (ST, PR),
        (
            "ENTPersonTelPerso",
            "ENTPersRelEleveTelMobile",
            "ENTPersRelEleveTelPro",
            "ENTStructureTelephone",
            "ENTStructureFax",
        ),
        "Numéro de téléphone mal formé",
        "Le numéro n'est pas un numéro français à 10 chiffres (ou international en +…) : "
        "il ne pourra pas être appelé ni recevoir de SMS.",
        "Le responsable corrige ses coordonnées auprès de l'école (ONDE).",
        _SCHOOL,
        "records",
        _phone_malformed,
    ),
    Rule(
        "postal_code_malformed",
        W,
        (ST, PR),
        ("ENTPersonCodePostal", "ENTStructureCodePostal"),
        "Code postal mal formé",
        "Le code postal d'une adresse en France n'a pas 5 chiffres : courriers et "
        "statistiques par commune sont faussés.",
        "L'école corrige l'adresse dans ONDE (la DSDEN pour une école).",
        _SCHOOL,
        "records",
        _postal_code_malformed,
    ),
    Rule(
        "mobile_not_mobile",
        W,
        (PR,),
        ("ENTPersRelEleveTelMobile",),
        "Numéro fixe dans le champ téléphone mobile",
        "Le champ mobile contient un numéro français qui ne commence pas par 06 ou 07 : les "
        "SMS de l'ENT (codes d'activation, alertes) n'arriveront pas.",
        "Le responsable corrige ses coordonnées auprès de l'école (ONDE).",
        _SCHOOL,
        "guardians",
        _mobile_not_mobile,
    ),
    # -- staff -------------------------------------------------------------------------------
    Rule(
        "staff_without_structure",
        B,
        (PE,),
        ("ENTPersonStructRattach",),
        "Personnel sans structure de rattachement",
        "Le personnel n'est rattaché à aucune structure : son compte ne peut être placé dans "
        "aucune école.",
        "Signaler à la DSDEN (service des personnels) : affectation manquante.",
        _ACADEMY,
        "staff",
        _staff_without_structure,
    ),
    Rule(
        "director_not_attached",
        W,
        (PE,),
        ("ENTEnsFonctionDir", "ENTPersonStructRattach"),
        "Directeur d'une école à laquelle il n'est pas rattaché",
        "Le personnel est déclaré directeur d'une école qui ne figure pas parmi ses "
        "structures de rattachement : il n'aura pas les droits de direction dans l'ENT de "
        "cette école.",
        "Signaler à la DSDEN (service des personnels).",
        _ACADEMY,
        "staff",
        _director_not_attached,
        "clear",
    ),
    Rule(
        "teacher_flag_missing",
        W,
        (PE,),
        ("ENTPersonCategorieEnseignant",),
        "Catégorie enseignant non renseignée",
        "L'indicateur « catégorie enseignant » manque : l'ENT ne sait pas s'il doit créer un "
        "profil enseignant ou personnel.",
        "Signaler à la DSDEN (service des personnels).",
        _ACADEMY,
        "staff",
        _teacher_flag_missing,
    ),
    # -- every file --------------------------------------------------------------------------
    Rule(
        "id_mismatch",
        B,
        (ST, EL, PR, PE),
        ("identifier/id",),
        "Identifiant d'enregistrement différent de la jointure",
        "L'identifiant de l'enregistrement (identifier/id) diffère de sa clé de jointure : "
        "certains ENT rejettent l'enregistrement, d'autres créent un second compte.",
        "Signaler à l'académie (export AAF).",
        _ACADEMY,
        "records",
        _id_mismatch,
        "ref:self",
    ),
    Rule(
        "required_empty",
        B,
        (ST, EL, PR, PE),
        ("*",),
        "Attribut obligatoire vide",
        "Un attribut obligatoire pour créer le compte est vide (nom, prénom, niveau, type "
        "de structure, jointure…) : l'ENT rejette ou crée mal l'enregistrement.",
        "L'école complète la fiche dans ONDE ; la DSDEN pour les personnels et les structures.",
        _SCHOOL,
        "records",
        _required_empty,
    ),
    Rule(
        "unknown_attribute",
        I,
        (ST, EL, PR, PE),
        ("*",),
        "Attribut inconnu",
        "L'enregistrement porte un attribut qu'aucun type AAF ne déclare (nouvelle version "
        "du format ?) : il est conservé à part, pas chargé ; il n'est pas listé dans "
        "l'annexe 1 de la convention.",
        "Demander à l'académie s'il s'agit d'une évolution du format ; sinon de ne plus l'envoyer.",
        _ACADEMY,
        "records",
        _unknown_attribute,
    ),
    Rule(
        "attribute_not_in_convention",
        W,
        (ST, EL, PR, PE),
        ("*",),
        "Donnée non prévue par la convention (minimisation)",
        "L'attribut existe dans l'AAF mais l'annexe 1 de la convention ne le prévoit pas "
        "pour ce type de fiche (par exemple les dates d'entrée en classe, ou un attribut "
        "d'un autre type) : la commune ne doit recevoir que les données prévues.",
        "Demander à l'académie de ne plus l'envoyer ; le prestataire ne le charge pas dans l'ENT.",
        _PROVIDER,
        "records",
        _attribute_not_in_convention,
    ),
    Rule(
        "mojibake",
        W,
        (ST, EL, PR, PE),
        ("*",),
        "Texte mal encodé (« Ã© » au lieu de « é »)",
        "Le texte a été encodé deux fois (UTF-8 relu en Latin-1) : noms et prénoms "
        "s'affichent abîmés dans l'ENT.",
        "Si la valeur est aussi abîmée dans ONDE, l'école la corrige ; sinon signaler "
        "l'encodage du fichier à l'académie (export) ou au prestataire (import).",
        _PROVIDER,
        "records",
        _mojibake,
    ),
    Rule(
        "invalid_value",
        W,
        (ST, EL, PR, PE),
        ("*",),
        "Valeur non conforme à son type",
        "Une date, un indicateur O/N, un niveau, un cycle ou un code de lien de parenté "
        "n'a pas une valeur permise : elle n'est pas chargée.",
        "Signaler à la DSDEN (export) ; l'école vérifie la fiche dans ONDE.",
        _ACADEMY,
        "records",
        _invalid_value,
    ),
    Rule(
        "malformed_value",
        W,
        (EL, PR, PE),
        ("*",),
        "Valeur composée mal formée",
        "Une valeur composée (classe, groupe, fonction, autorité parentale) n'a pas le bon "
        "nombre de champs séparés par $ : elle est lue au mieux.",
        "Signaler à l'académie (export AAF).",
        _ACADEMY,
        "records",
        _malformed_value,
    ),
    Rule(
        "multiple_values",
        I,
        (ST, EL, PR, PE),
        ("*",),
        "Plusieurs valeurs pour un attribut mono-valué",
        "Un attribut qui n'a qu'une valeur en a plusieurs : seule la première est gardée.",
        "Signaler à l'académie (export AAF).",
        _ACADEMY,
        "records",
        _multiple_values,
    ),
    Rule(
        "skipped_record",
        B,
        (ST, EL, PR, PE),
        ("*",),
        "Enregistrement illisible écarté",
        "Un enregistrement mal formé (XML) a été écarté à la lecture : la personne ou la "
        "structure manque à l'extraction.",
        "Signaler le fichier, la ligne et le message à l'académie (export AAF).",
        _ACADEMY,
        "records",
        _skipped_record,
        "clear",
    ),
    Rule(
        "reader_other",
        W,
        (ST, EL, PR, PE),
        ("*",),
        "Autre anomalie de lecture",
        "Le lecteur a relevé une anomalie de structure du fichier (catégorie erronée, "
        "identifiant absent, opération inattendue…).",
        "Signaler le fichier et la ligne à l'académie (export AAF).",
        _ACADEMY,
        "records",
        _reader_other,
    ),
)
"""Every rule, in report order within each severity."""

RULE_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
assert len(RULE_BY_ID) == len(RULES), "rule ids must be unique"


def catalogue(rules: Iterable[Rule] = RULES) -> pd.DataFrame:
    """The rules as a table (README, report appendix)."""
    return pd.DataFrame(
        [
            {
                "rule": r.id,
                "severity": r.severity.value,
                "kinds": ", ".join(r.kinds),
                "attributes": ", ".join(r.attributes),
                "title": r.title,
                "explanation": r.explanation,
                "correction": r.correction,
                "corrector": CORRECTOR_LABELS[r.corrector],
            }
            for r in rules
        ]
    )


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


def _populations(ctx: Context) -> dict[str, int]:
    n = {
        "structures": len(ctx.structures),
        "schools": len(ctx.schools),
        "students": len(ctx.students),
        "guardians": len(ctx.guardians),
        "staff": len(ctx.staff),
    }
    n["people"] = n["students"] + n["guardians"] + n["staff"]
    n["records"] = n["people"] + n["structures"]
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
    rows = (rule.check(ctx) if checked else _none()).assign(
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
) -> AuditResult:
    """Run the rule catalogue (or the ``rules`` named) over a complete state.

    ``perimeter``: the convention's school UAIs (a list or a file, see :func:`read_perimeter`);
    without it the perimeter rules are not checked. ``thresholds``: warn and fail thresholds
    by severity or rule (see :data:`DEFAULT_THRESHOLDS`). ``age_tolerance``: years a pupil's
    age may differ from their level's usual age.
    """
    if snapshot.extraction.extraction != "complete":
        raise QualityError(
            "snapshot",
            "l'audit porte sur un état complet (un Complet, ou le "
            "store après ses Delta), pas sur un Delta seul",
        )
    limits = resolve_thresholds(thresholds)
    chosen = list(rules) if rules is not None else [r.id for r in RULES]
    unknown = sorted(set(chosen) - set(RULE_BY_ID))
    if unknown:
        raise QualityError("rules", f"règles inconnues: {', '.join(unknown)}")
    uais = read_perimeter(perimeter) if not isinstance(perimeter, frozenset) else perimeter
    ctx = Context(snapshot, uais, age_tolerance)
    populations = _populations(ctx)
    parts, timings, summary = [], {}, []
    for rule in (r for r in RULES if r.id in chosen):
        t0 = time.perf_counter()
        rows, line = _run(rule, ctx, limits[rule.id], populations[rule.population])
        timings[rule.id] = time.perf_counter() - t0
        parts.append(rows)
        summary.append(line)
    t0 = time.perf_counter()
    raw = _concat(parts) if parts else _none()
    if "rule" not in raw:
        raw = raw.assign(rule=pd.Series([], dtype=object), severity=pd.Series([], dtype=object))
    raw = _locate(raw, ctx)
    findings = _finish(raw)
    schools = _per_school(raw, ctx)
    timings["(summaries)"] = time.perf_counter() - t0
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
            "age_tolerance": age_tolerance,
            "school_year": f"{ctx.school_year}-{ctx.school_year + 1}",
        },
        timings=timings,
    )


def _locate(raw: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Fill each finding's school (structure jointure, when the check did not say) and UAI."""
    where = ctx.structure_of
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
    records = where[where["kind"] != STRUCTURE.name].groupby("structure").size()
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
    pair = _pair(f["kind"].fillna(""), f["attribute"].fillna(""))
    known = [f"{k.name}\x1f{a}" for k in schema.KINDS.values() for a in k.by_attr]
    is_personal = isin(pair, [f"{k}\x1f{a}" for k, a in personal]) | ~isin(pair, known)
    mask = (policy == "mask") | ((policy == "auto") & is_personal)
    value[mask] = _mask(value[mask])
    for target in ("self", *[k.name for k in PEOPLE]):
        chosen = policy == f"ref:{target}"
        for kind in PEOPLE:
            rows = chosen & (
                (f["kind"] == kind.name).fillna(False).to_numpy()
                if target == "self"
                else target == kind.name
            )
            if rows.any():
                value[rows] = pseudonymiser.ids(kind.name, value[rows])
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
# Trend: per-rule counts by extraction date
# ---------------------------------------------------------------------------------------------


def load_trend(path: Path | str) -> dict:
    """The per-rule counts recorded by earlier audits (empty when none)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"version": 1, "perimeter": None, "extractions": {}}


def record_trend(path: Path | str, result: AuditResult, audited_at: dt.date) -> dict:
    """Record this audit's per-rule counts under its extraction date (replacing an earlier
    audit of the same extraction), atomically, 0600. Counts only: nothing personal."""
    path = Path(path)
    history = load_trend(path)
    if history.get("perimeter") not in (None, result.perimeter):
        history = {"version": 1, "perimeter": None, "extractions": {}}
    history["perimeter"] = result.perimeter
    history["extractions"][str(result.date)] = {
        "audited_at": audited_at.isoformat(),
        "counts": result.counts(),
    }
    history["extractions"] = dict(sorted(history["extractions"].items()))
    write_json(path, history)
    return history


def trend(result: AuditResult, history: dict) -> pd.DataFrame:
    """Each rule's count against the latest audited extraction before this one (empty frame
    when there is none): rule, title, severity, previous_date, previous, current, change."""
    columns = ["rule", "title", "severity", "previous_date", "previous", "current", "change"]
    if history.get("perimeter") != result.perimeter:
        return pd.DataFrame(columns=columns)
    earlier = [d for d in history.get("extractions", {}) if d < str(result.date)]
    if not earlier:
        return pd.DataFrame(columns=columns)
    previous_date = max(earlier)
    before = history["extractions"][previous_date]["counts"]
    rows = []
    for rule, now in result.counts().items():
        was = before.get(rule)
        change = None if now is None or was is None else now - was
        rows.append(
            {
                "rule": rule,
                "title": RULE_BY_ID[rule].title,
                "severity": RULE_BY_ID[rule].severity.value,
                "previous_date": previous_date,
                "previous": was,
                "current": now,
                "change": change,
            }
        )
    out = pd.DataFrame(rows, columns=columns)
    for c in ("previous", "current", "change"):
        out[c] = out[c].astype("Int64")
    return out


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
