"""What a check sees: the snapshot's live frames, what several checks share (each computed
once), and the helpers that turn the records a check selects into finding rows.

Who belongs to which school, what a school and a teacher are: :mod:`ent_audit.aaf.population`
(the one definition); the context only caches its answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit import memory
from ent_audit.aaf import population, schema
from ent_audit.aaf.frames import STRING, arrow_strings, isin
from ent_audit.aaf.population import Profile
from ent_audit.aaf.schema import GUARDIAN, STAFF, STRUCTURE, STUDENT
from ent_audit.aaf.snapshot import Snapshot
from ent_audit.store.store import Columns, StateReader

PEOPLE = (STUDENT, GUARDIAN, STAFF)
AGE_TOLERANCE = 1
"""Years a pupil's age may differ from the level's usual age (a year ahead or held back is
common); ULIS pupils are exempt."""


def attr(kind: schema.Kind, column: str) -> str:
    """The AAF attribute of ``kind`` that fills ``column``."""
    return kind.field(column).attr


LEAN_FRAMES = (
    "students",
    "guardians",
    "person_structure",
    "person_other_name",
    "student_class",
    "student_class_entry",
    "student_class_exit",
    "student_group",
    "student_guardian",
)
"""The big frames of an académie (pupils, guardians and their links): read from a store
(:func:`Context.of_store`), a check gets the columns it asks for, read when it asks; the
other frames (structures, staff, reader findings…) are a few thousand rows, read whole."""
CORE = ("jointure", "op", "source_file", "line")
"""What every finding row needs of an entity record: held for the whole audit."""
LINK_CORE = ("source_file", "line")
MAIN_SCHOOL_COLUMNS = ("kind", "jointure", "structure", "uai", "primary")
"""The memberships' columns :func:`population.main_school` reads."""
RELEASE_BYTES = 32 << 20
"""Shared intermediate results (a link table without its empty ids, phone checks) are kept
from one check to the next while they hold less than this; above, dropped after the check
(on an académie the pupils' attachments, 12 MB, are kept; their guardian links, 46 MB, are
read again by each check that needs them rather than held through the guardians' checks)."""


def _lean_columns(columns: Columns, frames: Iterable[str]) -> dict[str, tuple[str, ...] | None]:
    """What a lean snapshot reads: the small frames whole, the big ones' ``columns`` only."""
    out: dict[str, tuple[str, ...] | None] = {n: None for n in frames if n not in LEAN_FRAMES}
    out.update({n: tuple(c) for n, c in columns.items() if n in LEAN_FRAMES})
    return out


class Context:
    """The snapshot's frames and what several checks share, each computed once.

    Over a :class:`Snapshot` every frame is in memory. Over a store (:meth:`of_store`) the
    big frames (:data:`LEAN_FRAMES`) are read column by column as the checks ask for them:
    a check names the columns it reads (``ctx.entity(STUDENT, "ine")``), and gets those and
    the :data:`CORE` columns only; what checks share is dropped once it passes
    :data:`RELEASE_BYTES` (:meth:`release`)."""

    def __init__(
        self,
        snapshot: Snapshot,
        perimeter: frozenset[str] | None,
        age_tolerance: int,
        *,
        reader: StateReader | None = None,
        members: pd.DataFrame | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.reader = reader
        self._given_members = members
        """The snapshot's memberships when the caller has them already (the roster
        explorer's), used once by :attr:`_memberships` instead of computing them again."""
        self.perimeter = perimeter
        self.age_tolerance = age_tolerance
        self.reference = snapshot.extraction.date
        """The extraction's date: a birth date after it is impossible."""
        ref = self.reference or dt.date.today()
        self.school_year = ref.year if ref.month >= 8 else ref.year - 1
        """First calendar year of the school year the extraction describes."""
        self._core: dict[str, pd.DataFrame] = {}
        self._shared: dict[Any, Any] = {}

    @classmethod
    def of_store(
        cls, reader: StateReader, perimeter: frozenset[str] | None, age_tolerance: int
    ) -> Context:
        """A context over a store's state: the small frames read whole, the big ones (their
        :data:`CORE` columns) as checks ask; the snapshot's memberships computed once."""
        frames = reader.meta.get("frames", [])
        lean = reader.snapshot(_lean_columns({}, frames))
        ctx = cls(lean, perimeter, age_tolerance, reader=reader)
        # First, while nothing else is held: their read and computation are the audit's
        # largest transient (an académie: +170 MB over the state's ids and links).
        ctx._memberships  # noqa: B018
        return ctx

    # -- frames ---------------------------------------------------------------------------

    def entity(self, kind: schema.Kind, *columns: str) -> pd.DataFrame:
        """The live records of ``kind`` (a Delta's deletions left out); over a store only
        the :data:`CORE` columns and ``columns``."""
        if self.reader is None or kind.frame not in LEAN_FRAMES:
            return self._whole(kind.frame)
        core = self._lean_core(kind.frame)
        wanted = [c for c in dict.fromkeys(columns) if c not in core.columns]
        if not wanted:
            return core
        extra = self.reader.frame(kind.frame, wanted)
        rows = core.index.to_numpy()
        out = core.copy(deep=False)
        for c in wanted:
            out[c] = extra[c].iloc[rows].array
        return out

    def _whole(self, frame: str) -> pd.DataFrame:
        key = ("live", frame)
        if key not in self._shared:
            self._shared[key] = population.live(getattr(self.snapshot, frame))
        return self._shared[key]

    def _lean_core(self, frame: str) -> pd.DataFrame:
        if frame not in self._core:
            assert self.reader is not None
            df = self.reader.frame(frame, CORE)
            self._core[frame] = population.live(df)
        return self._core[frame]

    def link(self, name: str, *columns: str) -> pd.DataFrame:
        """Link table ``name``; over a store only ``columns`` and :data:`LINK_CORE`."""
        if self.reader is None or name not in LEAN_FRAMES:
            return self.snapshot.links[name]
        return self.reader.frame(name, list(dict.fromkeys([*columns, *LINK_CORE])))

    def shared(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once while kept (:meth:`release`): what several checks share."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    def release(self, limit: int = RELEASE_BYTES) -> None:
        """Over a store: drop what checks share once it holds more than ``limit`` bytes (the
        next check that needs it computes it again, the same)."""
        if self.reader is None:
            return
        held = sum(_nbytes(v) for v in self._shared.values())
        if held > limit:
            self._shared.clear()
        memory.trim_heap()

    @property
    def structures(self) -> pd.DataFrame:
        return self._whole("structures")

    @property
    def students(self) -> pd.DataFrame:
        """The live pupils (over a store: their :data:`CORE` columns)."""
        return self.entity(STUDENT)

    @property
    def guardians(self) -> pd.DataFrame:
        """The live guardians (over a store: their :data:`CORE` columns)."""
        return self.entity(GUARDIAN)

    @property
    def staff(self) -> pd.DataFrame:
        return self._whole("staff")

    @cached_property
    def is_school(self) -> pd.Series:
        """Structures that are schools (:func:`population.is_school`)."""
        return population.is_school(self.structures).astype(bool)

    @cached_property
    def schools(self) -> pd.DataFrame:
        return self.structures[self.is_school.to_numpy()]

    # -- memberships: computed once, kept as the few answers the audit needs ---------------

    @cached_property
    def _memberships(self) -> dict[str, Any]:
        """From :func:`population.memberships` (the one definition), what the audit uses:
        the structures pupils and teachers belong to, and each record's school. The
        memberships themselves (a million rows on an académie) are not kept."""
        m, self._given_members = self._given_members, None
        if m is None:
            snapshot = (
                self.snapshot
                if self.reader is None
                # The links' ids as categoricals: each distinct id decoded and looked up
                # once (an académie: a million guardian links' ids otherwise held as strings).
                else self.reader.snapshot(population.NEEDS, dictionary=population.LINKS)
            )
            # Categoricals: the same values, a fifth of the memory (an académie: 93 -> 18 MB).
            m = population.memberships(snapshot, categorical=True)
            del snapshot
        pupil = (m["profile"] == Profile.PUPIL).fillna(False).to_numpy(dtype=bool)
        out: dict[str, Any] = {
            "pupil": _strings(m["structure"][pupil].dropna().unique()),
            "teacher": _strings(m["structure"][m["teacher"].to_numpy()].dropna().unique()),
        }
        m = m[[c for c in m.columns if c in MAIN_SCHOOL_COLUMNS]]  # the rest let go (no copy)
        people = population.main_school(m).dropna(subset=["structure"])
        del m
        people = people.astype({"kind": STRING, "structure": STRING, "uai": STRING})
        own = self.structures[["jointure"]].assign(
            kind=STRUCTURE.name, structure=lambda d: d["jointure"]
        )
        where = pd.concat([own, people], ignore_index=True)[["kind", "jointure", "structure"]]
        where = where.drop_duplicates(["kind", "jointure"])
        # Kinds and schools repeat over every person: held as categoricals (the same values).
        out["structure_of"] = where.astype({"kind": "category", "structure": "category"})
        return out

    @property
    def pupil_structures(self) -> np.ndarray:
        """Structures at least one pupil belongs to (:func:`population.memberships`)."""
        return self._memberships["pupil"]

    @property
    def teacher_structures(self) -> np.ndarray:
        """Structures at least one teacher belongs to: attached, directing or holding a
        function there, with ``ENTPersonCategorieEnseignant`` = O."""
        return self._memberships["teacher"]

    @property
    def structure_of(self) -> pd.DataFrame:
        """Each record's school (structure jointure), for a finding's ``uai`` and the
        per-school summaries: a structure is its own, a person's is their main school
        (:func:`population.main_school`); columns ``kind``, ``jointure``, ``structure``
        (``kind`` and ``structure`` as categoricals)."""
        return self._memberships["structure_of"]

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

    @property
    def attached(self) -> pd.DataFrame:
        """``person_structure`` rows: (person, structure, kind ``student``/``staff``)."""
        return self.shared(
            "attached",
            lambda: _present(
                self.link("person_structure", "person", "structure", "kind"), "person", "structure"
            ),
        )

    def attached_of(self, entity: str) -> pd.DataFrame:
        a = self.attached
        return a[(a["kind"] == entity).to_numpy()]

    @property
    def guardian_links(self) -> pd.DataFrame:
        """``student_guardian`` rows with both ids present, the ids as codes: ``student`` and
        ``guardian`` are positions in :attr:`guardian_ids` (a live pupil's or guardian's
        code is below the count of live ids, an unknown id's above). Read once and held
        while small (:meth:`release`): on an académie a million links of strings (46 MB)
        were read again by each of the guardians' checks, the codes take 8."""
        if "guardian_links" not in self._shared:
            links, ids = self._coded_guardian_links()
            self._shared["guardian_links"], self._shared["guardian_ids"] = links, ids
        return self._shared["guardian_links"]

    @property
    def guardian_ids(self) -> dict[str, tuple[pa.Array, int]]:
        """Per side (``student``, ``guardian``): the ids :attr:`guardian_links` codes point
        into, and how many of them are live records (they come first)."""
        self.guardian_links  # noqa: B018
        return self._shared["guardian_ids"]

    def _coded_guardian_links(self) -> tuple[pd.DataFrame, dict[str, tuple[pa.Array, int]]]:
        if self.reader is not None:
            return self._coded_store_links()
        g = _present(
            self.link("student_guardian", "student", "guardian", "seen_from"),
            "student",
            "guardian",
        )
        out = pd.DataFrame(index=pd.RangeIndex(len(g)))
        ids: dict[str, tuple[pa.Array, int]] = {}
        for side, people in (("student", self.students), ("guardian", self.guardians)):
            known = pc.unique(arrow_strings(people["jointure"]))
            linked = arrow_strings(g[side])
            every = pc.unique(pa.concat_arrays([known, linked]))  # the live ids first
            ids[side] = (every, len(known))
            out[side] = pc.index_in(linked, value_set=every).to_numpy().astype(np.int32)
        out["seen_from"] = g["seen_from"].astype("category").array
        out["source_file"] = g["source_file"].array
        out["line"] = g["line"].array
        return out, ids

    def _coded_store_links(self) -> tuple[pd.DataFrame, dict[str, tuple[pa.Array, int]]]:
        """:meth:`_coded_guardian_links` from the store's Parquet, one id column at a time:
        read plain (ids do not repeat enough for a dictionary, whose decoding hashes every
        value), looked up among the live ids, let go before the next (an académie: the
        million links' ids never held as pandas strings). The same codes' meaning; ids of
        no live record come after the live ones in another order, which no check reads."""
        assert self.reader is not None
        codes, ids = {}, {}
        for side, people in (("student", self.students), ("guardian", self.guardians)):
            codes[side], ids[side] = _coded_ids(
                self.reader.table("student_guardian", [side], dictionary=False).column(0),
                pc.unique(arrow_strings(people["jointure"])),
            )
        rest = self.reader.table("student_guardian", ["seen_from", *LINK_CORE])
        present = (codes["student"] >= 0) & (codes["guardian"] >= 0)
        keep = None if present.all() else present
        out: dict[str, Any] = {side: c if keep is None else c[keep] for side, c in codes.items()}
        del codes
        rest = rest if keep is None else rest.filter(pa.array(keep))
        for c in rest.column_names:  # seen_from, source_file: categoricals of a few values
            out[c] = rest.column(c).to_pandas().array
        return pd.DataFrame(out, index=pd.RangeIndex(len(out["student"]))), ids

    def id_codes(self, side: str, ids: pd.Series) -> np.ndarray:
        """Codes of ``ids`` among :attr:`guardian_ids` of ``side`` (-1: in no link, not live)."""
        every = self.guardian_ids[side][0]
        at = pc.index_in(arrow_strings(ids), value_set=every)
        return at.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def known(self, side: str, codes: np.ndarray) -> np.ndarray:
        """Codes of live pupils (``side`` ``student``) or guardians (``guardian``)."""
        return codes < self.guardian_ids[side][1]

    def decoded(self, links: pd.DataFrame) -> pd.DataFrame:
        """Rows of :attr:`guardian_links` with their ids as strings, first of each (pupil,
        guardian) pair only (the rows a finding names)."""
        links = links[~links.duplicated(["student", "guardian"]).to_numpy()]
        every = {
            side: self.guardian_ids[side][0].cast(pa.large_string())
            for side in ("student", "guardian")
        }
        return links.assign(
            **{
                side: pd.array(every[side].take(pa.array(links[side].to_numpy())), dtype=STRING)
                for side in every
            }
        )

    def formatted(
        self, formats: set[str], *, beside: Iterable[str] = ()
    ) -> Iterator[tuple[schema.Kind, str, pd.DataFrame, pd.Series]]:
        """(kind, column, records with a value, values) of every field whose format
        (:data:`schema.FIELD_FORMATS`) is in ``formats``; the records carry the ``beside``
        columns their kind has."""
        for (kind_name, column), fmt in schema.FIELD_FORMATS.items():
            if fmt in formats:
                kind = schema.KINDS[kind_name]
                has = {f.column for f in kind.single}
                df = self.entity(kind, column, *(c for c in beside if c in has))
                present = df[column].notna().to_numpy()
                if present.any():
                    yield kind, column, df[present], df[column][present]

    def phones(
        self, formats: set[str]
    ) -> Iterator[tuple[tuple[str, str], tuple[pd.DataFrame, pd.Series, np.ndarray, np.ndarray]]]:
        """Per phone field whose format is in ``formats``, keyed (kind, column): (records
        with a value, values, well formed, a mobile), for ``phone_malformed`` and
        ``mobile_not_mobile``. Numbers are compared without separators, ``+33`` read as
        ``0``: ``+33 5 61 84 55 55`` -> ``0561845555``. The two checks of a field are
        computed once while kept (:meth:`release`); the records are not kept."""
        for kind, column, df, values in self.formatted(formats):
            ok = self.shared(("phone", kind.name, column), lambda v=values: _phone_checks(v))
            yield (kind.name, column), (df, values, *ok)

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


def _coded_ids(linked: pa.ChunkedArray, known: pa.Array) -> tuple[np.ndarray, tuple[pa.Array, int]]:
    """Codes of the ids ``linked`` (-1: missing) into the live ids ``known`` followed by the
    linked ids not among them, and those ids with the count of live ones."""
    at = pc.index_in(linked, value_set=known)
    codes = at.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    other = np.flatnonzero((codes < 0) & linked.is_valid().to_numpy(zero_copy_only=False))
    every = known
    if len(other):
        strays = linked.take(pa.array(other)).combine_chunks().cast(pa.string())
        names = pc.unique(strays)
        every = pa.concat_arrays([known, names])
        codes[other] = len(known) + pc.index_in(strays, value_set=names).to_numpy(
            zero_copy_only=False
        ).astype(np.int32)
    return codes, (every, len(known))


def _strings(values: Any) -> Any:
    """A categorical's unique values as the strings they stand for (what the string
    memberships gave)."""
    return pd.array(np.asarray(values, dtype=object), dtype=STRING)


def _present(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``df.dropna(subset=columns)``, without a copy of a million rows when none is missing."""
    keep = np.ones(len(df), dtype=bool)
    for c in columns:
        keep &= df[c].notna().to_numpy()
    return df if keep.all() else df[keep]


BLOCK_ROWS = 1 << 16
"""Values a string test (:func:`by_blocks`) takes at a time."""


def by_blocks(
    values: pd.Series, test: Callable[[pd.Series], Any], width: int = 1, size: int = BLOCK_ROWS
) -> Any:
    """``test(values)``, one boolean array (or ``width`` of them, a tuple), computed
    ``size`` (:data:`BLOCK_ROWS`) values at a time: pandas' regular expressions over strings build a
    Python string per value (Python's ``re``, not Arrow's RE2: ``\\s`` and ``\\d`` are
    Unicode), so a whole column of guardians' phones or mails cost 100 MB at once; a block
    costs a few."""
    parts = [test(values.iloc[i : i + size]) for i in range(0, len(values), size)]
    if width == 1:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    return tuple(
        np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, dtype=bool)
        for k in range(width)
    )


def _phone_checks(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    return by_blocks(values, _phone_block, width=2)


def _phone_block(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    digits = values.str.replace(schema.PHONE_SEPARATORS, "", regex=True).str.replace(
        r"^\+33", "0", regex=True
    )
    phone = digits.str.fullmatch(schema.FORMATS["phone"]).fillna(False)
    mobile = digits.str.fullmatch(schema.FORMATS["mobile"]).fillna(False)
    return phone.to_numpy(dtype=bool), mobile.to_numpy(dtype=bool)


def _nbytes(value: Any) -> int:
    if isinstance(value, pd.DataFrame | pd.Series):
        return int(value.memory_usage(deep=False).sum()) if len(value) else 0
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, pa.Array):
        return value.nbytes
    if isinstance(value, tuple | dict):
        return sum(_nbytes(v) for v in (value.values() if isinstance(value, dict) else value))
    return 0


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
    df = ctx.entity(kind, column)
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


def pairs_in(a: pd.Series, b: pd.Series, in_a: pd.Series, in_b: pd.Series) -> np.ndarray:
    """``isin(pair(a, b), pair(in_a, in_b))`` for ids present on both sides (callers drop
    missing ones), on integer codes: the (a, b) pairs found among the (in_a, in_b) pairs,
    without building a million strings on each side. Each id column is hashed once, with
    its reference column (one dictionary, so equal ids get equal codes)."""

    def codes(left: pd.Series, right: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
        both = pc.dictionary_encode(pa.concat_arrays([arrow_strings(left), arrow_strings(right)]))
        at = both.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        return at[: len(left)], at[len(left) :], len(both.dictionary)

    left_a, right_a, _ = codes(a, in_a)
    left_b, right_b, width = codes(b, in_b)
    found = (left_a >= 0) & (left_b >= 0)
    right = right_a * (width + 1) + right_b
    right = right[(right_a >= 0) & (right_b >= 0)]
    keys = pa.array(left_a[found] * (width + 1) + left_b[found])
    out = np.zeros(len(a), dtype=bool)
    out[found] = pc.is_in(keys, value_set=pa.array(right)).to_numpy(zero_copy_only=False)
    return out


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
