"""What a check sees: the snapshot's live frames, what several checks share (each computed
once), and the helpers that turn the records a check selects into finding rows.

Who belongs to which school, what a school and a teacher are: :mod:`ent_audit.aaf.population`
(the one definition); the context only caches its answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ent_audit.aaf import population, schema
from ent_audit.aaf.frames import STRING, isin
from ent_audit.aaf.schema import GUARDIAN, STAFF, STRUCTURE, STUDENT
from ent_audit.aaf.snapshot import Snapshot

PEOPLE = (STUDENT, GUARDIAN, STAFF)
AGE_TOLERANCE = 1
"""Years a pupil's age may differ from the level's usual age (a year ahead or held back is
common); ULIS pupils are exempt."""


def attr(kind: schema.Kind, column: str) -> str:
    """The AAF attribute of ``kind`` that fills ``column``."""
    return kind.field(column).attr


class Context:
    """The snapshot's frames and what several checks share, each computed once."""

    def __init__(
        self,
        snapshot: Snapshot,
        perimeter: frozenset[str] | None,
        age_tolerance: int,
        *,
        members: pd.DataFrame | None = None,
    ) -> None:
        self.snapshot = snapshot
        if members is not None:
            self.__dict__["members"] = members  # the cached property, given
        self.perimeter = perimeter
        self.age_tolerance = age_tolerance
        self.reference = snapshot.extraction.date
        """The extraction's date: a birth date after it is impossible."""
        ref = self.reference or dt.date.today()
        self.school_year = ref.year if ref.month >= 8 else ref.year - 1
        """First calendar year of the school year the extraction describes."""

    def entity(self, kind: schema.Kind) -> pd.DataFrame:
        """The live records of ``kind`` (a Delta's deletions left out)."""
        return getattr(self, kind.frame)

    def link(self, name: str) -> pd.DataFrame:
        return self.snapshot.links[name]

    @cached_property
    def structures(self) -> pd.DataFrame:
        return population.live(self.snapshot.structures)

    @cached_property
    def students(self) -> pd.DataFrame:
        return population.live(self.snapshot.students)

    @cached_property
    def guardians(self) -> pd.DataFrame:
        return population.live(self.snapshot.guardians)

    @cached_property
    def staff(self) -> pd.DataFrame:
        return population.live(self.snapshot.staff)

    @cached_property
    def is_school(self) -> pd.Series:
        """Structures that are schools (:func:`population.is_school`)."""
        return population.is_school(self.structures).astype(bool)

    @cached_property
    def schools(self) -> pd.DataFrame:
        return self.structures[self.is_school.to_numpy()]

    @cached_property
    def members(self) -> pd.DataFrame:
        """Every (person, structure) membership with its profile
        (:func:`population.memberships`)."""
        return population.memberships(self.snapshot)

    @cached_property
    def structure_of(self) -> pd.DataFrame:
        """Each record's school (structure jointure), for a finding's ``uai`` and the
        per-school summaries: a structure is its own, a person's is their main school
        (:func:`population.main_school`); columns ``kind``, ``jointure``, ``structure``."""
        own = self.structures[["jointure"]].assign(
            kind=STRUCTURE.name, structure=lambda d: d["jointure"]
        )
        people = population.main_school(self.members).dropna(subset=["structure"])
        out = pd.concat([own, people], ignore_index=True)[["kind", "jointure", "structure"]]
        return out.drop_duplicates(["kind", "jointure"])

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

    def formatted(
        self, formats: set[str]
    ) -> Iterator[tuple[schema.Kind, str, pd.DataFrame, pd.Series]]:
        """(kind, column, records with a value, values) of every field whose format
        (:data:`schema.FIELD_FORMATS`) is in ``formats``."""
        for (kind_name, column), fmt in schema.FIELD_FORMATS.items():
            if fmt in formats:
                kind = schema.KINDS[kind_name]
                df = self.entity(kind)
                present = df[column].notna().to_numpy()
                if present.any():
                    yield kind, column, df[present], df[column][present]

    @cached_property
    def phones(
        self,
    ) -> dict[tuple[str, str], tuple[pd.DataFrame, pd.Series, np.ndarray, np.ndarray]]:
        """Per phone field, keyed (kind, column): (records with a value, values, well formed,
        a mobile), for ``phone_malformed`` and ``mobile_not_mobile``. Numbers are compared
        without separators, ``+33`` read as ``0``: ``+33 5 61 84 55 55`` -> ``0561845555``."""
        out = {}
        for kind, column, df, values in self.formatted({"phone", "mobile"}):
            digits = values.str.replace(schema.PHONE_SEPARATORS, "", regex=True).str.replace(
                r"^\+33", "0", regex=True
            )
            phone = digits.str.fullmatch(schema.FORMATS["phone"]).fillna(False)
            mobile = digits.str.fullmatch(schema.FORMATS["mobile"]).fillna(False)
            out[(kind.name, column)] = (
                df,
                values,
                phone.to_numpy(dtype=bool),
                mobile.to_numpy(dtype=bool),
            )
        return out

    @cached_property
    def invalid(self) -> pd.DataFrame:
        """Reader's ``invalid_value`` findings: a value was there but could not be typed."""
        i = self.snapshot.issues
        return i[(i["code"] == "invalid_value").to_numpy()]

    def typed_but_invalid(self, kind: schema.Kind, df: pd.DataFrame, column: str) -> np.ndarray:
        """Rows of ``df`` whose ``column`` had a value the reader could not type."""
        i = self.invalid
        bad = i.loc[
            ((i["kind"] == kind.name) & (i["attribute"] == attr(kind, column))).to_numpy(),
            "jointure",
        ].dropna()
        return isin(df["jointure"], bad) if len(bad) else np.zeros(len(df), dtype=bool)


# ---------------------------------------------------------------------------------------------
# Finding rows
# ---------------------------------------------------------------------------------------------

ROW_COLUMNS = ("kind", "jointure", "attribute", "value", "structure", "source_file", "line")
"""What a check returns, one row per finding (the audit adds rule, severity and school)."""


def _col(x: Any) -> Any:
    return x.to_numpy(dtype=object, na_value=None) if isinstance(x, pd.Series) else x


def rows(
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
        return none()
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
        columns=list(ROW_COLUMNS),
    )


def none() -> pd.DataFrame:
    """No finding."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in ROW_COLUMNS})


def concat(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    kept = [p for p in parts if len(p)]
    return pd.concat(kept, ignore_index=True) if kept else none()


def missing(ctx: Context, kind: schema.Kind, column: str) -> pd.DataFrame:
    """Records whose ``column`` holds no value (an untypable value is not missing)."""
    df = ctx.entity(kind)
    empty = df[column].isna().to_numpy() & ~ctx.typed_but_invalid(kind, df, column)
    return rows(df[empty], kind.name, attr(kind, column))


def not_in(column: pd.Series, values: pd.Series | np.ndarray) -> np.ndarray:
    return (
        ~isin(column, pd.Series(values).dropna().unique())
        if len(values)
        else np.ones(len(column), dtype=bool)
    )


def pair(a: pd.Series, b: pd.Series) -> pd.Series:
    """Two id columns as one key (for ``isin`` on pairs)."""
    return a.astype(STRING) + "\x1f" + b.astype(STRING)


def issues(
    ctx: Context, codes: Iterable[str], *, exclude: Iterable[tuple[str, str]] = ()
) -> pd.DataFrame:
    """The reader's findings of ``codes`` as finding rows (``exclude``: (kind, attribute))."""
    i = ctx.snapshot.issues
    keep = i["code"].isin(list(codes)).to_numpy(dtype=bool)
    for kind, attribute in exclude:
        keep = keep & ~((i["kind"] == kind) & (i["attribute"] == attribute)).fillna(False).to_numpy(
            dtype=bool
        )
    i = i[keep]
    return rows(i.assign(line=i["line"].astype("Int64")), i["kind"], i["attribute"], i["value"])
