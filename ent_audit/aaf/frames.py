"""Typed frames from one raw AAF part, as the schema declares them.

Single-valued attributes become columns of the entity frame with their declared dtype;
multi-valued ones become rows of link tables, split on ``$`` into the declared parts.
Attributes no kind declares are kept aside in ``extras``. Every value that cannot be typed,
every unexpected shape, is reported in ``issues``; nothing is dropped silently.
All conversions are vectorised: the per-record work was done once, by the reader.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit.aaf import schema
from ent_audit.aaf.reader import RawPart, read_part
from ent_audit.aaf.schema import Field, Kind

STRING = pd.StringDtype("pyarrow")
"""Arrow-backed strings with ``pd.NA`` for missing values."""

OP_DTYPE = pd.CategoricalDtype(["add", "modify", "delete"])
"""The request a row came from: ``addRequest``, ``modifyRequest``, ``deleteRequest``."""

SOURCE_COLUMNS = ("source_file", "record", "line")
"""Every row of every frame says where it was read."""

ISSUE_COLUMNS = ("code", "kind", "jointure", "attribute", "value", "message", *SOURCE_COLUMNS)
EXTRA_COLUMNS = ("kind", "jointure", "attribute", "value", *SOURCE_COLUMNS)
SKIPPED_COLUMNS = ("source_file", "line", "column", "record_id", "message")
MODIFICATION_COLUMNS = ("kind", "jointure", "attribute", "op", "value", *SOURCE_COLUMNS)
"""One row per ``<modification>`` of a modifyRequest (``value`` empty), plus one per value of
an ``add`` or ``delete`` modification: what a Delta changes attribute by attribute (DSML)."""


@dataclass
class PartFrames:
    """The typed frames of one XML part."""

    kind: str
    source: str
    entity: pd.DataFrame
    links: dict[str, pd.DataFrame]
    extras: pd.DataFrame
    issues: pd.DataFrame
    skipped: pd.DataFrame
    info: dict
    modifications: pd.DataFrame | None = None
    derived: pd.Series | None = None
    """``derive(kind, entity["jointure"])`` when :func:`read_frames` was given ``derive``
    (computed in the reader's worker, beside the parse)."""


def _strings(values) -> pd.Series:
    return pd.Series(pd.array(pa.array(values, type=pa.string()), dtype=STRING))


def _by_uniques(convert: Callable[[pd.Series], pd.Series]):
    """Run ``convert`` on the distinct values only, then spread the result back.

    Dates, flags, levels and cycles repeat a lot (a few thousand birth dates for a whole
    département): converting each distinct value once is much cheaper than every row.
    """

    def wrapper(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        typed_uniques = convert(pd.Series(uniques, dtype=STRING)).reset_index(drop=True)
        missing = pd.Series(pd.array([None], dtype=typed_uniques.dtype))
        typed = (
            pd.concat([typed_uniques, missing], ignore_index=True)
            .take(np.where(codes < 0, len(typed_uniques), codes))
            .reset_index(drop=True)
        )
        return typed, (raw.notna() & typed.isna()).to_numpy()

    return wrapper


@_by_uniques
def _to_date(raw: pd.Series) -> pd.Series:
    typed = pd.to_datetime(raw.astype(object), format=schema.DATE_FORMAT, errors="coerce")
    return typed.astype("datetime64[ns]")


@_by_uniques
def _to_bool(raw: pd.Series) -> pd.Series:
    return raw.str.upper().map(schema.BOOL_VALUES).astype("boolean")


@_by_uniques
def _to_level(raw: pd.Series) -> pd.Series:
    upper = raw.str.upper().astype(STRING)
    return upper.where(upper.isin(schema.LEVELS), None)


def _keep_level(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Levels outside TPS…CM2 are reported but kept (upper-cased) for the audit to show."""
    typed, invalid = _to_level(raw)
    return typed.fillna(raw.str.upper()).astype(STRING), invalid


_CYCLE_WORDS = {"premiers": 1, "fondamentaux": 2, "consolidation": 3}
_CYCLE_RE = re.compile(
    r"^(?:c(?:ycle)?\s*)?([123])$|apprentissages\s+(premiers|fondamentaux)$"
    r"|(consolidation)$"
)


@_by_uniques
def _to_cycle(raw: pd.Series) -> pd.Series:
    """``CYCLE 1``, ``Cycle 2``, ``C3``, ``3``, ``cycle des apprentissages premiers`` -> 1..3."""
    found = raw.str.strip().str.lower().str.extract(_CYCLE_RE)
    digit = pd.to_numeric(found[0].astype(object), errors="coerce")
    words = found[1].fillna(found[2]).map(_CYCLE_WORDS)
    return digit.fillna(words.astype("float64")).astype("Int8")


def _to_string(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    return raw, np.zeros(len(raw), dtype=bool)


CONVERTERS: dict[str, Callable[[pd.Series], tuple[pd.Series, np.ndarray]]] = {
    "string": _to_string,
    "date": _to_date,
    "bool": _to_bool,
    "level": _keep_level,
    "cycle": _to_cycle,
}
"""dtype -> converter returning (typed series, mask of values that could not be typed)."""


class _Issues:
    """Collects issue rows as small column dicts, turned into one frame at the end."""

    def __init__(self, kind: str, source: str, jointures: np.ndarray, lines: np.ndarray) -> None:
        self.kind, self.source = kind, source
        self.jointures, self.lines = jointures, lines
        self.parts: list[pd.DataFrame] = []

    def add(self, code: str, records, attribute: str | None, values, message: str) -> None:
        records = np.asarray(records, dtype=np.int64)
        if not len(records):
            return
        self.parts.append(
            pd.DataFrame(
                {
                    "code": code,
                    "kind": self.kind,
                    "jointure": self.jointures[records],
                    "attribute": attribute,
                    "value": values if values is not None else None,
                    "message": message,
                    "source_file": self.source,
                    "record": records,
                    "line": self.lines[records],
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        return finish(
            pd.concat(self.parts, ignore_index=True) if self.parts else None, ISSUE_COLUMNS
        )


def finish(df: pd.DataFrame | None, columns: tuple[str, ...]) -> pd.DataFrame:
    """Give a frame its column order and standard dtypes (also builds the empty one)."""
    if df is None:  # built once per columns (a Delta's parts have mostly empty ones)
        return _empty(columns).copy()
    return _finished(df, columns)


@functools.cache
def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return _finished(pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}), columns)


def _finished(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    df = df.reindex(columns=list(columns))
    out = {}
    for c in columns:  # gathered, then one frame: not a column re-inserted per dtype
        values = df[c]
        if c in ("record", "line", "column"):
            values = values.astype("Int64")
        elif values.dtype == object or values.dtype == "str":
            values = values.astype(STRING)
        out[c] = values
    return pd.DataFrame(out, index=df.index, columns=list(columns), copy=False)


def _clean(text: pa.Array) -> pa.Array:
    """Strip surrounding white space; an empty value is no value (``<value></value>``)."""
    text = pc.utf8_trim_whitespace(text)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def arrow_strings(values) -> pa.Array:
    """A string column (pandas, or Arrow: chunked, dictionary-encoded) as plain Arrow
    strings, without a Python object per value."""
    if isinstance(values, pd.Series | pd.Index):
        values = pa.array(values.astype(STRING).array, type=pa.string())
    elif not isinstance(values, pa.Array | pa.ChunkedArray):
        values = pa.array(list(values) if isinstance(values, set | frozenset) else values)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values.cast(pa.string())


def isin(column, values) -> np.ndarray:
    """``column.isin(values)`` for string columns (pandas or Arrow), computed by Arrow.

    pandas' own ``isin`` on Arrow strings builds one Python scalar per value: seconds for a
    whole département's ids.
    """
    found = pc.is_in(arrow_strings(column), value_set=arrow_strings(values))
    return found.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def first_rows(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``~df.duplicated(columns)`` (missing values equal to each other), computed on Arrow
    dictionary codes (a categorical's own codes): pandas factorises Arrow strings through
    Python objects. The codes of the columns are combined into one int64: up to three
    columns of a million values."""
    key = np.zeros(len(df), dtype=np.int64)
    for c in columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):  # its codes already (-1: missing)
            codes = df[c].cat.codes.to_numpy().astype(np.int64)
            key = key * (len(df[c].cat.categories) + 1) + (codes + 1)
            continue
        encoded = pc.dictionary_encode(pa.array(df[c].astype(STRING).array, type=pa.string()))
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        key = key * (len(encoded.dictionary) + 1) + (codes + 1)
    first = np.zeros(len(df), dtype=bool)
    first[np.unique(key, return_index=True)[1]] = True
    return first


def _dtypes(frame: pd.DataFrame) -> dict:
    """Column -> dtype (the last column of a name, as ``frame[col]`` would refuse two)."""
    return dict(zip(frame.columns, frame.dtypes, strict=True))


def _same_categories(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Give every categorical column one dtype across ``frames`` (the union of their
    categories, in order of appearance): pandas then concatenates the codes instead of
    turning the column into Python strings and back (seconds for a whole state)."""
    first = frames[0]
    union: dict[str, pd.CategoricalDtype] = {}
    kinds = [_dtypes(f) for f in frames]  # not a Series built per column and frame
    for col in first.columns:
        dtypes = [k.get(col) for k in kinds]
        if not all(isinstance(d, pd.CategoricalDtype) for d in dtypes):
            continue
        if all(d == dtypes[0] for d in dtypes):
            continue
        if col == "op":
            union[col] = OP_DTYPE
            continue
        seen = dict.fromkeys(c for d in dtypes for c in d.categories)
        union[col] = pd.CategoricalDtype(list(seen), ordered=dtypes[0].ordered)
    if not union:
        return frames
    return [
        f.assign(**{c: f[c].cat.set_categories(d.categories) for c, d in union.items()})
        for f in frames
    ]


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate frames of one kind keeping their dtypes.

    pandas turns categoricals whose categories differ (``source_file`` of two parts, or the
    same categories read back from Parquet) into plain objects: they are made categorical
    again, ``op`` with its fixed categories.
    """
    kept = [f for f in frames if len(f)] or frames[:1]
    if len(kept) > 1:
        kept = _same_categories(kept)
    out = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0].reset_index(drop=True)
    kinds = [_dtypes(f) for f in frames]
    for col in out.columns:
        dtypes = [k[col] for k in kinds if col in k]
        if not any(isinstance(d, pd.CategoricalDtype) for d in dtypes):
            continue
        if out[col].dtype != "category" or not len(out[col].cat.categories):
            if col == "op":
                out[col] = out[col].astype(OP_DTYPE)
                continue
            # The union of the inputs' categories, so an empty result keeps some (an empty
            # categorical without categories comes back from Parquet as plain objects).
            seen = dict.fromkeys(
                c for d in dtypes if isinstance(d, pd.CategoricalDtype) for c in d.categories
            )
            seen.update(dict.fromkeys(out[col].dropna().unique()))
            out[col] = out[col].astype(pd.CategoricalDtype(list(seen)))
    return out


@dataclass
class _Values:
    """The values of one attribute in one part: record index of each, and the cleaned text."""

    records: np.ndarray
    text: pa.Array
    """Stripped; empty -> null."""

    @classmethod
    def gather(cls, chunks: list[tuple[list[int], list[str | None]]]) -> _Values:
        idx = [i for c in chunks for i in c[0]] if len(chunks) > 1 else chunks[0][0]
        txt = [t for c in chunks for t in c[1]] if len(chunks) > 1 else chunks[0][1]
        records = np.asarray(idx, dtype=np.int64)
        text = _clean(pa.array(txt, type=pa.string()))
        if len(chunks) > 1:  # aliases merged: back to record order, stable
            order = np.argsort(records, kind="stable")
            records, text = records[order], text.take(pa.array(order))
        return cls(records, text)

    def present(self) -> _Values:
        keep = pc.is_valid(self.text)
        return _Values(self.records[keep.to_numpy(zero_copy_only=False)], self.text.filter(keep))


def build(raw: RawPart, kind: Kind, source: str | None = None) -> PartFrames:
    """Turn one :class:`RawPart` of ``kind`` into typed frames."""
    source = source or Path(raw.path).name
    n = raw.n_records
    ids = np.array(raw.ids, dtype=object)
    if len(ids):
        ids = pc.utf8_trim_whitespace(pa.array(ids, type=pa.string())).to_numpy(
            zero_copy_only=False
        )
    lines = np.array(raw.lines, dtype=np.int64)
    ops = np.array(raw.ops, dtype=object)

    # Gather values per field (aliases merged), unknown attributes aside.
    chunks: dict[str, list] = {}
    unknown: dict[str, list] = {}
    for name, chunk in raw.attrs.items():
        f = kind.by_attr.get(name)
        (unknown.setdefault(name, []) if f is None else chunks.setdefault(f.column, [])).append(
            chunk
        )
    by_field = {col: _Values.gather(c) for col, c in chunks.items()}

    # Jointure: the id attribute; the record identifier when the attribute is absent.
    jointure = np.full(n, None, dtype=object)
    if "jointure" in by_field:
        v = by_field["jointure"].present()
        uniq, first = np.unique(v.records, return_index=True)
        jointure[uniq] = v.text.take(pa.array(first)).to_numpy(zero_copy_only=False)
    missing_j = np.flatnonzero(pd.isna(jointure))
    jointure[missing_j] = ids[missing_j]
    issues = _Issues(kind.name, source, jointure, lines)
    _record_level_issues(issues, raw, kind, ids, jointure, ops, missing_j)

    columns: dict[str, pd.Series] = {"jointure": _strings(jointure)}
    extras: list[tuple[str, _Values]] = []
    for f in kind.single:
        if f.column == "jointure":
            continue
        values = by_field.get(f.column)
        text = (
            _single(f, values.present(), n, issues, extras) if values else pa.nulls(n, pa.string())
        )
        typed, invalid = CONVERTERS[f.dtype](_strings(text))
        bad = np.flatnonzero(invalid)
        issues.add(
            "invalid_value",
            bad,
            f.attr,
            text.take(pa.array(bad)).to_pylist(),
            f"valeur de {f.attr} non conforme au type {f.dtype}",
        )
        columns[f.column] = typed
    columns["op"] = pd.Categorical(ops, dtype=OP_DTYPE)
    entity = pd.DataFrame({**columns, **_source_columns(source, np.arange(n), lines)})

    links: dict[str, list[pd.DataFrame]] = {}
    for f in kind.multi:
        values = by_field.get(f.column)
        values = (
            values.present()
            if values
            else _Values(np.zeros(0, np.int64), pa.array([], pa.string()))
        )
        links.setdefault(f.link, []).append(_link(f, kind, values, jointure, lines, source, issues))
    link_frames = {
        name: pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        for name, parts in links.items()
    }

    for name, chunk in unknown.items():
        values = _Values.gather(chunk)
        extras.append((name, values))
        if name in schema.KNOWN_ATTRIBUTES:
            code, what = "unlisted_attribute", f"attribut {name!r} non prévu pour {kind.name}"
        else:
            code, what = "unknown_attribute", f"attribut inconnu {name!r}"
        nrec = len(np.unique(values.records))
        issues.add(
            code,
            values.records[:1],
            name,
            None,
            f"{what} ({nrec} enregistrement(s)): valeurs conservées à part (extras)",
        )
    return PartFrames(
        kind=kind.name,
        source=source,
        entity=entity,
        links=link_frames,
        extras=_extras(extras, kind.name, jointure, lines, source),
        issues=issues.frame(),
        skipped=_skipped(raw, source),
        modifications=_modifications(raw, kind.name, jointure, lines, source),
        info=dict(
            source_file=source,
            path=raw.path,
            kind=kind.name,
            records=n,
            encoding=raw.encoding,
            declared=raw.declared,
            metadata=raw.metadata,
            skipped=len(raw.skipped),
        ),
    )


def _record_level_issues(
    issues: _Issues,
    raw: RawPart,
    kind: Kind,
    ids: np.ndarray,
    jointure: np.ndarray,
    ops: np.ndarray,
    missing_j: np.ndarray,
) -> None:
    for it in raw.issues:
        if it.record is not None:
            issues.add(it.code, [it.record], it.attribute, [it.value], it.message)
        else:  # file-level: kept even with no record to point at
            issues.parts.append(
                pd.DataFrame(
                    {
                        "code": [it.code],
                        "kind": [kind.name],
                        "jointure": [None],
                        "attribute": [it.attribute],
                        "value": [it.value],
                        "message": [it.message],
                        "source_file": [issues.source],
                        "record": [None],
                        "line": [it.line],
                    }
                )
            )
    no_id = np.flatnonzero(pd.isna(ids))
    issues.add(
        "missing_identifier", no_id, "identifier/id", None, "enregistrement sans identifier/id"
    )
    full = ops == "add"  # a modify re-sends only what changes, a delete only its id
    lost = missing_j[full[missing_j]]
    issues.add(
        "missing_jointure",
        lost,
        kind.id_attr,
        None,
        f"{kind.id_attr} absent: identifier/id utilisé comme jointure",
    )
    both = ~pd.isna(ids) & ~pd.isna(jointure)
    differ = np.flatnonzero(both & (ids.astype(str) != jointure.astype(str)))
    issues.add(
        "id_mismatch",
        differ,
        "identifier/id",
        ids[differ],
        f"identifier/id différent de {kind.id_attr}",
    )
    cats = np.array(raw.categories, dtype=object)
    wrong = np.flatnonzero(cats != kind.name)
    issues.add(
        "wrong_category",
        wrong,
        kind.category_attr,
        cats[wrong],
        f"{kind.category_attr} différent de {kind.name!r}",
    )


def _single(
    f: Field, values: _Values, n: int, issues: _Issues, extras: list[tuple[str, _Values]]
) -> pa.Array:
    """One text per record: the first value; further values reported and kept in extras."""
    uniq, first, counts = np.unique(values.records, return_index=True, return_counts=True)
    if len(uniq) != len(values.records):
        rest = np.ones(len(values.records), dtype=bool)
        rest[first] = False
        extra = _Values(values.records[rest], values.text.filter(pa.array(rest)))
        extras.append((f.attr, extra))
        many = uniq[counts > 1]
        issues.add(
            "multiple_values",
            many,
            f.attr,
            None,
            f"{f.attr} est mono-valué: seule la première valeur est gardée, les autres "
            "sont dans extras",
        )
    position = np.full(n, -1, dtype=np.int64)
    position[uniq] = np.arange(len(uniq))
    firsts = values.text.take(pa.array(first))
    return firsts.take(pa.array(position, mask=position < 0))


def _link(
    f: Field,
    kind: Kind,
    values: _Values,
    jointure: np.ndarray,
    lines: np.ndarray,
    source: str,
    issues: _Issues,
) -> pd.DataFrame:
    table = schema.LINK_TABLES[f.link]
    records, raw = values.records, values.text
    out = {}
    if len(f.parts) == 1:
        out[f.parts[0]] = _strings(raw)
    else:
        for col, part in zip(f.parts, _split(raw, len(f.parts)), strict=False):
            out[col] = _strings(part)
        ndollar = pc.count_substring(raw, "$").to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(ndollar != len(f.parts) - 1)
        issues.add(
            "malformed_value",
            records[bad],
            f.attr,
            raw.take(pa.array(bad)).to_pylist(),
            f"{f.attr} attend {len(f.parts)} champs séparés par $",
        )
    out[f.owner] = _strings(jointure[records])
    if table.origin:
        out[table.origin] = pd.Series([kind.entity] * len(records), dtype=STRING)
    for label, code, mapping in table.labels:
        if code in out:
            out[label] = out[code].map(mapping).astype(STRING)
            unknown = np.flatnonzero((out[code].notna() & out[label].isna()).to_numpy())
            issues.add(
                "invalid_value",
                records[unknown],
                f.attr,
                out[code].to_numpy()[unknown],
                f"code {code} inconnu dans {f.attr}",
            )
    cols = list(table.columns) + ([table.origin] if table.origin else [])
    # columns gathered, then one frame (not a frame re-indexed, retyped and grown)
    frame = {c: out[c] if c in out else _strings(pa.nulls(len(records), pa.string())) for c in cols}
    frame.update(_source_columns(source, records, lines[records]))
    return pd.DataFrame(frame)


def link_rows(
    kind: Kind, f: Field, jointures: np.ndarray, values: list[str | None], lines: np.ndarray
) -> pd.DataFrame:
    """Link-table rows of ``f`` for loose values (a Delta's ``add``/``delete`` values), one
    owner jointure and line per value, built exactly as the reader's values are."""
    jointures = np.asarray(jointures, dtype=object)
    lines = np.asarray(lines, dtype=np.int64)
    v = _Values(np.arange(len(values)), _clean(pa.array(values, type=pa.string())))
    issues = _Issues(kind.name, "delta", jointures, lines)
    return _link(f, kind, v, jointures, lines, "delta", issues)


def _split(raw: pa.Array, n: int) -> list[pa.Array]:
    """Split ``a$b$c`` values in exactly ``n`` stripped fields (missing ones null, the last
    one keeping any extra ``$``)."""
    missing = pc.max_element_wise(pc.subtract(n - 1, pc.count_substring(raw, "$")), 0)
    padded = pc.binary_join_element_wise(raw, pc.binary_repeat("$", missing), "")
    flat = _clean(pc.list_flatten(pc.split_pattern(padded, "$", max_splits=n - 1)))
    return [flat.take(pa.array(np.arange(i, len(flat), n))) for i in range(n)]


def _source_columns(source: str, records: np.ndarray, lines: np.ndarray) -> dict:
    """Where each row comes from: its file (one category), its record and line there."""
    return {
        "source_file": pd.Categorical.from_codes(
            np.zeros(len(records), dtype=np.int8), categories=[source]
        ),
        "record": records.astype(np.int32),
        "line": lines.astype(np.int32),
    }


def _extras(
    items: list[tuple[str, _Values]],
    kind: str,
    jointure: np.ndarray,
    lines: np.ndarray,
    source: str,
) -> pd.DataFrame:
    parts = [
        pd.DataFrame(
            {
                "kind": kind,
                "jointure": jointure[v.records],
                "attribute": name,
                "value": v.text.to_pylist(),
                "source_file": source,
                "record": v.records,
                "line": lines[v.records],
            }
        )
        for name, v in items
    ]
    return finish(pd.concat(parts, ignore_index=True) if parts else None, EXTRA_COLUMNS)


def _modifications(
    raw: RawPart, kind: str, jointure: np.ndarray, lines: np.ndarray, source: str
) -> pd.DataFrame:
    """The ``modifications`` rows of one part (empty for a complete extraction)."""
    if not raw.modified:
        return finish(None, MODIFICATION_COLUMNS)
    records = [r for r, _, _ in raw.modified]
    parts = [
        pd.DataFrame(
            {
                "record": records,
                "attribute": [a for _, a, _ in raw.modified],
                "op": [o for _, _, o in raw.modified],
                "value": None,
            }
        )
    ]
    for (op, name), chunk in raw.changes.items():
        v = _Values.gather([chunk]).present()
        parts.append(
            pd.DataFrame(
                {"record": v.records, "attribute": name, "op": op, "value": v.text.to_pylist()}
            )
        )
    df = pd.concat(parts, ignore_index=True)
    rec = df["record"].to_numpy(dtype=np.int64)
    df = df.assign(kind=kind, jointure=jointure[rec], source_file=source, line=lines[rec])
    return finish(df, MODIFICATION_COLUMNS)


def _skipped(raw: RawPart, source: str) -> pd.DataFrame:
    if not raw.skipped:
        return finish(None, SKIPPED_COLUMNS)
    return finish(
        pd.DataFrame(
            [
                dict(
                    source_file=source,
                    line=s.line,
                    column=s.column,
                    record_id=s.record_id,
                    message=s.message,
                )
                for s in raw.skipped
            ]
        ),
        SKIPPED_COLUMNS,
    )


def read_frames(
    path: str | Path,
    kind: str,
    *,
    recover: bool = False,
    source: str | None = None,
    derive: Callable[[str, pd.Series], pd.Series] | None = None,
) -> PartFrames:
    """Read one part and type it: the unit of work of a parallel load.

    ``derive`` (picklable): a column computed from the part's jointures in the worker that
    parsed it, so that the main process does not compute it for the whole population after
    the parse (the store's pseudonyms: :func:`ent_audit.aaf.snapshot.load_stream`)."""
    part = build(read_part(path, recover=recover), schema.KINDS[kind], source)
    if derive is not None:
        part = replace(part, derived=derive(kind, part.entity["jointure"]))
    return part
