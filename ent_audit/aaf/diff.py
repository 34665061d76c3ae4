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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING, isin
from ent_audit.aaf.population import live_mask
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
    values = _values(snapshot, kind, jointures=jointures, parts=parts, columns=columns)
    return _frame(values)


def _frame(values: pa.Table) -> pd.DataFrame:
    """Text columns as pandas' Arrow strings (:data:`STRING`)."""
    return values.to_pandas(types_mapper=_as_string, ignore_metadata=True)


def _as_string(arrow_type: pa.DataType):
    return STRING if arrow_type in (pa.string(), pa.large_string()) else None


def _values(
    snapshot: Snapshot,
    kind: schema.Kind,
    *,
    jointures: Iterable[str] | pd.Series | None = None,
    parts: dict[str, tuple[str, ...]] | None = None,
    columns: Iterable[str] | None = None,
) -> pa.Table:
    """:func:`attribute_values` as an Arrow table of strings: the records are picked once
    (one mask, one take of the columns compared), not frame by frame."""
    wanted_columns = None if columns is None else set(columns)
    records = getattr(snapshot, kind.frame)
    keep = live_mask(records)
    if jointures is not None:
        wanted = pd.Series(list(jointures) if not isinstance(jointures, pd.Series) else jointures)
        hit = isin(records["jointure"], wanted.dropna().astype(str))
        keep = hit if keep is None else keep & hit
    rows = None if keep is None else pa.array(np.flatnonzero(keep))
    names = ["jointure"] + [
        f.column
        for f in kind.single
        if f.column != "jointure"
        and f.column in records
        and (wanted_columns is None or f.column in wanted_columns)
    ]
    out = {}
    for name in names:
        column = pa.array(records[name].array, from_pandas=True)
        out[name] = text(column if rows is None else column.take(rows))
    keys = out["jointure"]
    restrict = keys if jointures is not None else None
    for f in kind.multi:
        if wanted_columns is not None and f.column not in wanted_columns:
            continue
        owners, values = _multi_values(snapshot, kind, f, (parts or {}).get(f.column), restrict)
        out[f.column] = pc.take(values, pc.index_in(keys, value_set=owners))
    return pa.table(out)


def text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Values as the diff compares them: dates ISO, flags O/N, the rest as strings (Arrow's
    cast, as pandas writes them for the schema's types); missing stays missing."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    t = values.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return pc.strftime(values, format="%Y-%m-%d")
    if pa.types.is_boolean(t):
        return pc.if_else(values, "O", "N")
    return values.cast(pa.string())


def joined(parts: Sequence[pa.Array | pa.ChunkedArray]) -> pa.Array:
    """A link row's value as compared: its parts' texts joined by ``$``, a missing part
    empty, trailing ``$`` dropped (``22690$2026-2027$$50452$CP-CE1``)."""
    value = pc.binary_join_element_wise(*parts, "$", null_handling="replace")
    return pc.utf8_rtrim(value, characters="$")


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
    value = joined([_arrow(table[c]) for c in (parts or f.parts)])
    pairs = pa.table({"owner": owner, "value": value})
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
    values = pc.binary_join(grouped["value_list"], MULTI_SEPARATOR)
    return grouped["owner"].combine_chunks(), values.combine_chunks()


def _refuse_bad_keys(values: pa.Table, kind: schema.Kind, side: str) -> None:
    keys = values["jointure"]
    if keys.null_count:
        raise CompareError(kind.name, side, "jointure absente", [])
    if pc.count_distinct(keys).as_py() < len(keys):
        counts = pc.value_counts(keys)
        dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
        raise CompareError(kind.name, side, "jointure en double", sorted(dup.to_pylist()))


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
    va = _values(a, kind, jointures=jointures)
    vb = _values(b, kind, jointures=jointures)
    _refuse_bad_keys(va, kind, "a")
    _refuse_bad_keys(vb, kind, "b")
    in_b = pc.is_in(va["jointure"], value_set=vb["jointure"])
    in_a = pc.is_in(vb["jointure"], value_set=va["jointure"])
    left, right = va.filter(in_b), vb.filter(in_a)
    left = left.take(pc.sort_indices(left["jointure"]))  # pandas' order: sort_values
    right = right.take(pc.sort_indices(right["jointure"]))
    columns = [c for c in left.column_names if c in right.column_names and c != "jointure"]
    attr = {f.column: f.attr for f in kind.fields}
    # The differing (row, column) pairs of every column, then one table in (row, column)
    # order: no frame per column, values taken for those rows only.
    at_rows, at_columns, before, after = [], [], [], []
    for i, c in enumerate(columns):
        x, y = left[c], right[c]
        differs = pc.fill_null(pc.not_equal(x, y), False)
        differs = pc.or_(differs, pc.xor(pc.is_null(x), pc.is_null(y)))
        rows = np.flatnonzero(differs.to_numpy(zero_copy_only=False))
        if len(rows):
            at = pa.array(rows)
            at_rows.append(rows)
            at_columns.append(np.full(len(rows), i))
            before.append(x.take(at).combine_chunks())
            after.append(y.take(at).combine_chunks())
    if at_rows:
        r, ci = np.concatenate(at_rows), np.concatenate(at_columns)
        order = np.lexsort((ci, r))  # by row, then the columns' order (pairs are unique)
        r, ci, by = r[order], ci[order], pa.array(order)
        changed = _frame(
            pa.table(
                {
                    "jointure": left["jointure"].take(pa.array(r)),
                    "attribute": pa.array([attr[c] for c in columns]).take(pa.array(ci)),
                    "column": pa.array(columns).take(pa.array(ci)),
                    "before": pa.concat_arrays(before).take(by),
                    "after": pa.concat_arrays(after).take(by),
                }
            )
        )
    else:
        changed = _frame(pa.table({c: pa.array([], pa.string()) for c in CHANGED_COLUMNS}))
    return KindComparison(
        kind=kind.name,
        frame=kind.frame,
        added=_frame(vb.filter(pc.invert(in_a))),
        removed=_frame(va.filter(pc.invert(in_b))),
        changed=changed,
        common=left.num_rows,
    )


def compare(a: Snapshot, b: Snapshot) -> Comparison:
    """Every kind of ``a`` compared with ``b`` (``a`` the earlier state, ``b`` the later).

    Both are states (deleted records of a Delta are left out): to compare a state with what a
    Delta gives, apply it first (the store does).
    """
    kinds = {k.frame: compare_kind(a, b, k) for k in schema.KINDS.values()}
    return Comparison(a.extraction, b.extraction, kinds)
