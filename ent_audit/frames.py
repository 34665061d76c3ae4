"""Typed frames from one raw AAF part, as the schema declares them.

Single-valued attributes become columns of the entity frame with their declared dtype;
multi-valued ones become rows of link tables, split on ``$`` into the declared parts.
Attributes no kind declares are kept aside in ``extras``. Every value that cannot be typed,
every unexpected shape, is reported in ``issues``; nothing is dropped silently.
All conversions are vectorised: the per-record work was done once, by the reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import schema
from .aaf import RawPart, read_part
from .schema import Field, Kind

STRING = pd.StringDtype("pyarrow")
"""Arrow-backed strings with ``pd.NA`` for missing values."""

SOURCE_COLUMNS = ("source_file", "record", "line")
"""Every row of every frame says where it was read."""

ISSUE_COLUMNS = ("code", "kind", "jointure", "attribute", "value", "message", *SOURCE_COLUMNS)
EXTRA_COLUMNS = ("kind", "jointure", "attribute", "value", *SOURCE_COLUMNS)
SKIPPED_COLUMNS = ("source_file", "line", "column", "record_id", "message")


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


def _strings(values) -> pd.Series:
    return pd.Series(pd.array(values, dtype=STRING))


def _to_date(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    typed = pd.to_datetime(raw.astype(object), format=schema.DATE_FORMAT, errors="coerce")
    return typed.astype("datetime64[ns]"), (raw.notna() & typed.isna()).to_numpy()


def _to_bool(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    typed = raw.str.upper().map(schema.BOOL_VALUES).astype("boolean")
    return typed, (raw.notna() & typed.isna()).to_numpy()


def _to_level(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    typed = raw.str.upper().astype(STRING)
    return typed, (typed.notna() & ~typed.isin(schema.LEVELS)).to_numpy()


_CYCLE_WORDS = {"premiers": 1, "fondamentaux": 2, "consolidation": 3}
_CYCLE_RE = re.compile(r"^(?:c(?:ycle)?\s*)?([123])$|apprentissages\s+(premiers|fondamentaux)$"
                       r"|(consolidation)$")


def _to_cycle(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """``CYCLE 1``, ``Cycle 2``, ``C3``, ``3``, ``cycle des apprentissages premiers`` -> 1..3."""
    found = raw.str.strip().str.lower().str.extract(_CYCLE_RE)
    digit = pd.to_numeric(found[0].astype(object), errors="coerce")
    words = found[1].fillna(found[2]).map(_CYCLE_WORDS)
    typed = digit.fillna(words.astype("float64")).astype("Int8")
    return typed, (raw.notna() & typed.isna()).to_numpy()


def _to_string(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    return raw, np.zeros(len(raw), dtype=bool)


CONVERTERS: dict[str, Callable[[pd.Series], tuple[pd.Series, np.ndarray]]] = {
    "string": _to_string,
    "date": _to_date,
    "bool": _to_bool,
    "level": _to_level,
    "cycle": _to_cycle,
}
"""dtype -> converter returning (typed series, mask of values that could not be typed)."""

EMPTY_DTYPES = {"string": STRING, "date": "datetime64[ns]", "bool": "boolean",
                "level": STRING, "cycle": "Int8"}


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
        self.parts.append(pd.DataFrame({
            "code": code, "kind": self.kind,
            "jointure": self.jointures[records],
            "attribute": attribute,
            "value": values if values is not None else None,
            "message": message, "source_file": self.source,
            "record": records, "line": self.lines[records],
        }))

    def frame(self) -> pd.DataFrame:
        return finish(pd.concat(self.parts, ignore_index=True) if self.parts else None,
                      ISSUE_COLUMNS)


def finish(df: pd.DataFrame | None, columns: tuple[str, ...]) -> pd.DataFrame:
    """Give a frame its column order and standard dtypes (also builds the empty one)."""
    if df is None:
        df = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    df = df.reindex(columns=list(columns))
    for c in columns:
        if c in ("record", "line", "column"):
            df[c] = df[c].astype("Int64")
        elif df[c].dtype == object or df[c].dtype == "str":
            df[c] = df[c].astype(STRING)
    return df


def build(raw: RawPart, kind: Kind, source: str | None = None) -> PartFrames:
    """Turn one :class:`RawPart` of ``kind`` into typed frames."""
    source = source or Path(raw.path).name
    n = raw.n_records
    ids = np.array(raw.ids, dtype=object)
    lines = np.array(raw.lines, dtype=np.int64)
    ops = np.array(raw.ops, dtype=object)

    # Gather values per field (aliases merged), unknown attributes aside.
    by_field: dict[str, tuple[list[int], list[list]]] = {}
    unknown: dict[str, tuple[list[int], list[list]]] = {}
    for name, (idx, values) in raw.attrs.items():
        f = kind.by_attr.get(name)
        target = unknown.setdefault(name, ([], [])) if f is None else \
            by_field.setdefault(f.column, ([], []))
        target[0].extend(idx)
        target[1].extend(values)

    # Jointure: the id attribute; the record identifier when the attribute is absent.
    jointure = np.full(n, None, dtype=object)
    jf = kind.by_attr[kind.id_attr]
    if jf.column in by_field:
        idx, values = by_field[jf.column]
        jointure[np.asarray(idx, dtype=np.int64)] = [v[0] if v else None for v in values]
    missing_j = np.flatnonzero(pd.isna(jointure))
    jointure[missing_j] = ids[missing_j]
    issues = _Issues(kind.name, source, jointure, lines)
    _record_level_issues(issues, raw, kind, ids, jointure, ops, missing_j)

    columns: dict[str, pd.Series] = {"jointure": _strings(jointure)}
    extras = []
    for f in kind.single:
        if f.column == "jointure":
            continue
        if f.column not in by_field:
            columns[f.column] = pd.Series(pd.array([None] * n, dtype=EMPTY_DTYPES[f.dtype])) \
                if f.dtype != "date" else pd.Series(np.full(n, np.datetime64("NaT"), "M8[ns]"))
            continue
        idx, values = by_field[f.column]
        columns[f.column] = _single(f, idx, values, n, issues, extras)
    entity = pd.DataFrame(columns)
    entity["op"] = pd.Categorical(ops, categories=["add", "modify", "delete"])
    _add_source(entity, source, np.arange(n), lines)

    links = {}
    for f in kind.multi:
        idx, values = by_field.get(f.column, ([], []))
        links.setdefault(f.link, []).append(_link(f, kind, idx, values, jointure, lines,
                                                  source, issues))
    links = {name: pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
             for name, parts in links.items()}

    for name, (idx, values) in unknown.items():
        extras.append((name, idx, values))
        if name in schema.KNOWN_ATTRIBUTES:
            code, what = "unlisted_attribute", f"attribut {name!r} non prévu pour {kind.name}"
        else:
            code, what = "unknown_attribute", f"attribut inconnu {name!r}"
        issues.add(code, idx[:1], name, None,
                   f"{what} ({len(idx)} enregistrement(s)): valeurs conservées à part (extras)")
    return PartFrames(
        kind=kind.name, source=source, entity=entity, links=links,
        extras=_extras(extras, kind.name, jointure, lines, source),
        issues=issues.frame(), skipped=_skipped(raw, source),
        info=dict(source_file=source, path=raw.path, kind=kind.name, records=n,
                  encoding=raw.encoding, declared=raw.declared, metadata=raw.metadata,
                  skipped=len(raw.skipped)),
    )


def _record_level_issues(issues: _Issues, raw: RawPart, kind: Kind, ids: np.ndarray,
                         jointure: np.ndarray, ops: np.ndarray, missing_j: np.ndarray) -> None:
    for it in raw.issues:
        if it.record is not None:
            issues.add(it.code, [it.record], it.attribute, [it.value], it.message)
        else:  # file-level: kept even with no record to point at
            issues.parts.append(pd.DataFrame({
                "code": [it.code], "kind": [kind.name], "jointure": [None],
                "attribute": [it.attribute], "value": [it.value], "message": [it.message],
                "source_file": [issues.source], "record": [None], "line": [it.line]}))
    no_id = np.flatnonzero(pd.isna(ids))
    issues.add("missing_identifier", no_id, "identifier/id", None,
               "enregistrement sans identifier/id")
    not_delete = ops != "delete"
    lost = missing_j[not_delete[missing_j]]
    issues.add("missing_jointure", lost, kind.id_attr, None,
               f"{kind.id_attr} absent: identifier/id utilisé comme jointure")
    both = ~pd.isna(ids) & ~pd.isna(jointure)
    differ = np.flatnonzero(both & (ids.astype(str) != jointure.astype(str)))
    issues.add("id_mismatch", differ, "identifier/id", ids[differ],
               f"identifier/id différent de {kind.id_attr}")
    cats = np.array(raw.categories, dtype=object)
    wrong = np.flatnonzero(cats != kind.name)
    issues.add("wrong_category", wrong, kind.category_attr, cats[wrong],
               f"{kind.category_attr} différent de {kind.name!r}")


def _single(f: Field, idx: list[int], values: list[list], n: int, issues: _Issues,
            extras: list) -> pd.Series:
    idx_arr = np.asarray(idx, dtype=np.int64)
    counts = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    first = [v[0] if v else None for v in values]
    many = np.flatnonzero(counts > 1)
    if len(many):
        issues.add("multiple_values", idx_arr[many], f.attr,
                   ["$".join(str(x) for x in values[i]) for i in many],
                   f"{f.attr} est mono-valué: seule la première valeur est gardée, les autres "
                   "sont dans extras")
        extras.append((f.attr, [idx[i] for i in many for _ in values[i][1:]],
                       [[x] for i in many for x in values[i][1:]]))
    uniq, first_pos, seen = np.unique(idx_arr, return_index=True, return_counts=True)
    if len(uniq) != len(idx_arr):
        issues.add("repeated_attribute", uniq[seen > 1], f.attr, None,
                   f"{f.attr} apparaît plusieurs fois dans l'enregistrement: première occurrence "
                   "gardée")
        idx_arr = idx_arr[first_pos]
        first = [first[i] for i in first_pos]
    column = np.full(n, None, dtype=object)
    column[idx_arr] = first
    raw = _strings(column)
    typed, invalid = CONVERTERS[f.dtype](raw)
    bad = np.flatnonzero(invalid)
    issues.add("invalid_value", bad, f.attr, raw.to_numpy()[bad] if len(bad) else [],
               f"valeur de {f.attr} non conforme au type {f.dtype}")
    return typed.reset_index(drop=True)


def _link(f: Field, kind: Kind, idx: list[int], values: list[list], jointure: np.ndarray,
          lines: np.ndarray, source: str, issues: _Issues) -> pd.DataFrame:
    table = schema.LINK_TABLES[f.link]
    counts = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    records = np.repeat(np.asarray(idx, dtype=np.int64), counts)
    flat = [x for v in values for x in v]
    keep = ~pd.isna(np.array(flat, dtype=object)) if flat else np.zeros(0, dtype=bool)
    records = records[keep]
    raw = _strings(np.array(flat, dtype=object)[keep])
    out = {}
    if len(f.parts) == 1:
        out[f.parts[0]] = raw
    else:
        split = raw.str.split("$", n=len(f.parts) - 1, expand=True) if len(raw) else \
            pd.DataFrame(columns=range(len(f.parts)))
        split = split.reindex(columns=range(len(f.parts)))
        for i, col in enumerate(f.parts):
            part = split[i].astype(STRING).str.strip()
            out[col] = part.where(part != "", None).astype(STRING)
        ndollar = raw.str.count(r"\$").to_numpy(dtype=np.int64, na_value=0)
        bad = np.flatnonzero(ndollar != len(f.parts) - 1)
        issues.add("malformed_value", records[bad], f.attr, raw.to_numpy()[bad],
                   f"{f.attr} attend {len(f.parts)} champs séparés par $")
    out[f.owner] = _strings(jointure[records])
    frame = pd.DataFrame(out)
    if table.origin:
        frame[table.origin] = kind.entity
    for label, code, mapping in table.labels:
        if code in frame:
            frame[label] = frame[code].map(mapping).astype(STRING)
            unknown = np.flatnonzero((frame[code].notna() & frame[label].isna()).to_numpy())
            issues.add("invalid_value", records[unknown], f.attr,
                       frame[code].to_numpy()[unknown], f"code {code} inconnu dans {f.attr}")
    cols = list(table.columns) + ([table.origin] if table.origin else [])
    frame = frame.reindex(columns=cols)
    for c in cols:
        if frame[c].dtype != STRING:
            frame[c] = frame[c].astype(STRING)
    _add_source(frame, source, records, lines[records])
    return frame


def _add_source(frame: pd.DataFrame, source: str, records: np.ndarray,
                lines: np.ndarray) -> None:
    frame["source_file"] = pd.Categorical([source] * len(frame)) if len(frame) else \
        pd.Categorical([])
    frame["record"] = records.astype(np.int32)
    frame["line"] = lines.astype(np.int32)


def _extras(items: list, kind: str, jointure: np.ndarray, lines: np.ndarray,
            source: str) -> pd.DataFrame:
    parts = []
    for name, idx, values in items:
        counts = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
        records = np.repeat(np.asarray(idx, dtype=np.int64), counts)
        parts.append(pd.DataFrame({
            "kind": kind, "jointure": jointure[records], "attribute": name,
            "value": [x for v in values for x in v], "source_file": source,
            "record": records, "line": lines[records]}))
    return finish(pd.concat(parts, ignore_index=True) if parts else None, EXTRA_COLUMNS)


def _skipped(raw: RawPart, source: str) -> pd.DataFrame:
    if not raw.skipped:
        return finish(None, SKIPPED_COLUMNS)
    return finish(pd.DataFrame([
        dict(source_file=source, line=s.line, column=s.column, record_id=s.record_id,
             message=s.message) for s in raw.skipped]), SKIPPED_COLUMNS)


def read_frames(path: str | Path, kind: str, *, recover: bool = False,
                source: str | None = None) -> PartFrames:
    """Read one part and type it: the unit of work of a parallel load."""
    return build(read_part(path, recover=recover), schema.KINDS[kind], source)
