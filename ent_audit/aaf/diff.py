"""What changed between two snapshots, record by record and attribute by attribute.

``compare(a, b)`` is shaped like datacompy's comparison, but knows the AAF: records are paired
on their jointure, per kind; every attribute of the schema is compared, multi-valued ones
(classes, guardians, functions, attachments) as the set of their values. Duplicate or missing
jointures are refused with their ids before anything is paired: a silent mis-pairing is how
a comparison lies (datacompy #35, #7).

It lives beside the reader, upstream of the store and of the analyses, because both use it:
the store's change journal and reconciliation (:mod:`ent_audit.store.journal`) and the
coordinator's comparison of any two snapshots (:mod:`ent_audit.analyses.delta`) are one diff.

Everything is columnar (Arrow): the values of a multi-valued attribute are deduplicated,
sorted and joined per record by Arrow's group-by, never by a Python function per record, and
``jointures=`` restricts the work to the records a Delta touched.

The values in a comparison are the snapshots' own, personal ones included: it is for a
coordinator in JupyterLab. Reports publish the store's pseudonymous change journal instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING, isin
from ent_audit.aaf.population import live
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot
from ent_audit.exceptions import CompareError

MULTI_SEPARATOR = " | "
"""Between the values of a multi-valued attribute, sorted, in a compared cell."""

CHANGED_COLUMNS = ("jointure", "attribute", "column", "before", "after")


def _arrow(values: pd.Series) -> pa.ChunkedArray | pa.Array:
    return pa.array(values, type=pa.string(), from_pandas=True)


def attribute_values(
    snapshot: Snapshot,
    kind: schema.Kind,
    *,
    jointures: Iterable[str] | pd.Series | None = None,
    parts: dict[str, tuple[str, ...]] | None = None,
    columns: Iterable[str] | None = None,
) -> pd.DataFrame:
    """One row per live record of ``kind``: its jointure and one text column per attribute of
    the schema (multi-valued ones as their sorted, deduplicated values joined by
    :data:`MULTI_SEPARATOR`, each value its ``$``-joined parts), named by column.

    ``jointures`` keeps only those records (a Delta's); ``parts`` replaces, per multi-valued
    column, the link columns a value is made of (the journal shows only a class's id);
    ``columns`` computes only those attributes.
    """
    wanted_columns = None if columns is None else set(columns)
    records = live(getattr(snapshot, kind.frame))
    if jointures is not None:
        wanted = pd.Series(list(jointures) if not isinstance(jointures, pd.Series) else jointures)
        records = records[isin(records["jointure"], wanted.dropna().astype(str))]
    records = records.reset_index(drop=True)
    # Columns gathered, then one frame: inserting them one by one costs more than their values.
    out = {"jointure": records["jointure"].astype(STRING)}
    for f in kind.single:
        if f.column != "jointure" and f.column in records:
            if wanted_columns is None or f.column in wanted_columns:
                out[f.column] = _text(records[f.column])
    keys = _arrow(out["jointure"])
    restrict = keys if jointures is not None else None
    for f in kind.multi:
        if wanted_columns is not None and f.column not in wanted_columns:
            continue
        owners, joined = _multi_values(snapshot, kind, f, (parts or {}).get(f.column), restrict)
        taken = pc.take(joined, pc.index_in(keys, value_set=owners))
        out[f.column] = pd.Series(taken.to_pandas(types_mapper=pd.ArrowDtype), dtype=STRING)
    return pd.DataFrame(out).reset_index(drop=True)


def _text(values: pd.Series) -> pd.Series:
    """Values as comparable text: dates ISO, flags O/N, missing stays missing."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d").astype(STRING)
    if pd.api.types.is_bool_dtype(values):  # by Arrow: pandas' map hashes through objects
        flags = pa.array(values, type=pa.bool_(), from_pandas=True)
        text = pc.if_else(flags, "O", "N")
        return pd.Series(pd.arrays.ArrowStringArray(text), index=values.index, name=values.name)
    return values.astype(STRING)


def _multi_values(
    snapshot: Snapshot,
    kind: schema.Kind,
    f: schema.Field,
    parts: tuple[str, ...] | None,
    owners: pa.Array | None,
) -> tuple[pa.Array, pa.Array]:
    """(owner, joined values) of field ``f``, for the records in ``owners`` (None: all).

    Sorted by (owner, value), adjacent duplicates dropped (a set; a projection on ``parts``
    keeps them: two guardians with link code 20 read ``20 | 20``), then one ordered list per owner:
    a sort and a group-by in Arrow, whatever the number of records.
    """
    table = snapshot.links[f.link]
    origin = schema.LINK_TABLES[f.link].origin
    owner = _arrow(table[f.owner])
    keep = None if owners is None else pc.is_in(owner, value_set=owners)
    if origin is not None:
        mine = pc.equal(_arrow(table[origin]), kind.entity)
        keep = mine if keep is None else pc.and_(keep, mine)
    cols = [_arrow(table[c]) for c in (parts or f.parts)]
    value = pc.binary_join_element_wise(*cols, "$", null_handling="replace")
    pairs = pa.table({"owner": owner, "value": pc.utf8_rtrim(value, characters="$")})
    if keep is not None:
        pairs = pairs.filter(pc.fill_null(keep, False))
    pairs = pairs.take(pc.sort_indices(pairs, [("owner", "ascending"), ("value", "ascending")]))
    o, v = pairs["owner"].combine_chunks(), pairs["value"].combine_chunks()
    if len(pairs) > 1 and parts is None:  # a projection keeps its repeats ("20 | 20")
        same = pc.and_(
            pc.fill_null(pc.equal(o[1:], o[:-1]), False),
            pc.fill_null(pc.equal(v[1:], v[:-1]), False),
        )
        first = pa.concat_arrays([pa.array([True]), pc.invert(same)])
        pairs = pa.table({"owner": o, "value": v}).filter(first)
    grouped = pairs.group_by("owner", use_threads=False).aggregate([("value", "list")])
    joined = pc.binary_join(grouped["value_list"], MULTI_SEPARATOR)
    return grouped["owner"].combine_chunks(), joined.combine_chunks()


def _refuse_bad_keys(values: pd.DataFrame, kind: schema.Kind, side: str) -> None:
    keys = values["jointure"]
    if keys.isna().any():
        raise CompareError(kind.name, side, "jointure absente", [])
    dup = keys[keys.duplicated(keep=False)].drop_duplicates()
    if len(dup):
        raise CompareError(kind.name, side, "jointure en double", sorted(dup.astype(str)))


@dataclass(frozen=True)
class KindComparison:
    """The comparison of one kind's records."""

    kind: str
    frame: str
    added: pd.DataFrame
    """Records only in ``b`` (their attribute values)."""
    removed: pd.DataFrame
    """Records only in ``a``."""
    changed: pd.DataFrame
    """One row per record and attribute whose value differs: :data:`CHANGED_COLUMNS`."""
    common: int
    """Records in both."""

    @property
    def changed_records(self) -> int:
        return int(self.changed["jointure"].nunique())

    def matches(self) -> bool:
        return self.added.empty and self.removed.empty and self.changed.empty

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": self.changed_records,
            "changed_values": len(self.changed),
            "unchanged": self.common - self.changed_records,
        }


@dataclass(frozen=True)
class Comparison:
    """``compare(a, b)``: per kind (by frame name), what is added, removed and changed."""

    a: ExtractionInfo
    b: ExtractionInfo
    kinds: dict[str, KindComparison] = field(default_factory=dict)

    def __getitem__(self, frame: str) -> KindComparison:
        return self.kinds[frame]

    def matches(self) -> bool:
        """True when the two snapshots hold the same records with the same values."""
        return all(k.matches() for k in self.kinds.values())

    def counts(self) -> dict[str, dict[str, int]]:
        return {frame: k.counts() for frame, k in self.kinds.items()}

    def to_frame(self) -> pd.DataFrame:
        """The counts as a table, one row per kind."""
        return pd.DataFrame.from_dict(self.counts(), orient="index").rename_axis("frame")

    def attribute_ranking(self) -> pd.DataFrame:
        """Changed values per kind and attribute, most changed first."""
        parts = [k.changed.assign(frame=frame) for frame, k in self.kinds.items()]
        changed = pd.concat(parts, ignore_index=True)
        ranking = changed.groupby(["frame", "attribute"]).size().rename("changes")
        return ranking.sort_values(ascending=False).reset_index()

    def to_dict(self) -> dict:
        return {
            "a": {"perimeter": self.a.perimeter, "extraction": self.a.extraction,
                  "date": str(self.a.date)},
            "b": {"perimeter": self.b.perimeter, "extraction": self.b.extraction,
                  "date": str(self.b.date)},
            "matches": self.matches(),
            "counts": self.counts(),
        }  # fmt: skip


def compare_kind(
    a: Snapshot,
    b: Snapshot,
    kind: schema.Kind,
    *,
    jointures: Iterable[str] | pd.Series | None = None,
) -> KindComparison:
    """Pair ``kind``'s records of ``a`` and ``b`` on their jointure and compare every
    attribute; duplicate or missing jointures are refused (:class:`CompareError`).

    ``jointures`` compares only those records (what a Delta touched): the rest is not read.
    """
    va = attribute_values(a, kind, jointures=jointures)
    vb = attribute_values(b, kind, jointures=jointures)
    _refuse_bad_keys(va, kind, "a")
    _refuse_bad_keys(vb, kind, "b")
    in_b = isin(va["jointure"], vb["jointure"])
    in_a = isin(vb["jointure"], va["jointure"])
    left = va[in_b].sort_values("jointure").reset_index(drop=True)
    right = vb[in_a].sort_values("jointure").reset_index(drop=True)
    columns = [c for c in left.columns if c in right.columns and c != "jointure"]
    attr = {f.column: f.attr for f in kind.fields}
    keys = left["jointure"].to_numpy(dtype=object)
    # The differing (row, column) pairs of every column, then one frame in (row, column)
    # order: no frame per column, values taken for those rows only.
    at_rows, at_columns, before, after = [], [], [], []
    for i, c in enumerate(columns):
        x, y = _arrow(left[c]), _arrow(right[c])
        differs = pc.fill_null(pc.not_equal(x, y), False)
        differs = pc.or_(differs, pc.xor(pc.is_null(x), pc.is_null(y)))
        rows = np.flatnonzero(differs.to_numpy(zero_copy_only=False))
        if len(rows):
            at_rows.append(rows)
            at_columns.append(np.full(len(rows), i))
            before += x.take(pa.array(rows)).to_pylist()
            after += y.take(pa.array(rows)).to_pylist()
    if at_rows:
        r, ci = np.concatenate(at_rows), np.concatenate(at_columns)
        order = np.lexsort((ci, r))  # by row, then the columns' order (pairs are unique)
        r, ci = r[order], ci[order]
        changed = pd.DataFrame(
            {
                "jointure": keys[r],
                "attribute": np.array([attr[c] for c in columns], dtype=object)[ci],
                "column": np.array(columns, dtype=object)[ci],
                "before": np.array(before, dtype=object)[order],
                "after": np.array(after, dtype=object)[order],
            }
        )
    else:
        changed = pd.DataFrame({c: [] for c in CHANGED_COLUMNS})
    return KindComparison(
        kind=kind.name,
        frame=kind.frame,
        added=vb[~in_a].reset_index(drop=True),
        removed=va[~in_b].reset_index(drop=True),
        changed=changed.astype(STRING).reset_index(drop=True),
        common=len(left),
    )


def compare(a: Snapshot, b: Snapshot) -> Comparison:
    """Every kind of ``a`` compared with ``b`` (``a`` the earlier state, ``b`` the later).

    Both are states (deleted records of a Delta are left out): to compare a state with what a
    Delta gives, apply it first (the store does).
    """
    kinds = {k.frame: compare_kind(a, b, k) for k in schema.KINDS.values()}
    return Comparison(a.extraction, b.extraction, kinds)
