"""What changed between two snapshots, record by record and attribute by attribute.

``compare(a, b)`` is shaped like datacompy's comparison, but knows the AAF: records are paired
on their jointure, per kind; every attribute of the schema is compared, multi-valued ones
(classes, guardians, functions, attachments) as the set of their values. Duplicate or missing
jointures are refused with their ids before anything is paired: a silent mis-pairing is how
a comparison lies (datacompy #35, #7).

The values in a comparison are the snapshots' own, personal ones included: it is for a
coordinator in JupyterLab. Reports publish the store's pseudonymous change journal instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ent_audit.aaf import schema
from ent_audit.aaf.frames import STRING
from ent_audit.aaf.population import live
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot
from ent_audit.exceptions import CompareError

MULTI_SEPARATOR = " | "
"""Between the values of a multi-valued attribute, sorted, in a compared cell."""

CHANGED_COLUMNS = ("jointure", "attribute", "column", "before", "after")


def attribute_values(snapshot: Snapshot, kind: schema.Kind) -> pd.DataFrame:
    """One row per live record of ``kind``: its jointure and one text column per attribute of
    the schema (multi-valued ones as their sorted ``$``-joined values), named by column."""
    records = live(getattr(snapshot, kind.frame))
    out = pd.DataFrame({"jointure": records["jointure"].astype(STRING)})
    for f in kind.single:
        if f.column != "jointure" and f.column in records:
            out[f.column] = _text(records[f.column])
    for f in kind.multi:
        out[f.column] = out["jointure"].map(_multi_values(snapshot, kind, f)).astype(STRING)
    return out.reset_index(drop=True)


def _text(values: pd.Series) -> pd.Series:
    """Values as comparable text: dates ISO, flags O/N, missing stays missing."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d").astype(STRING)
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "O", False: "N"}).astype(STRING)
    return values.astype(STRING)


def _multi_values(snapshot: Snapshot, kind: schema.Kind, f: schema.Field) -> pd.Series:
    table = snapshot.links[f.link]
    origin = schema.LINK_TABLES[f.link].origin
    if origin is not None:
        table = table[(table[origin] == kind.entity).to_numpy()]
    parts = table[list(f.parts)].astype(STRING).fillna("")
    value = parts.iloc[:, 0].astype(str)
    for c in parts.columns[1:]:
        value = value + "$" + parts[c].astype(str)
    pairs = pd.DataFrame({"owner": table[f.owner].astype(str), "value": value.str.rstrip("$")})
    pairs = pairs.drop_duplicates().sort_values(["owner", "value"])
    return pairs.groupby("owner", sort=False)["value"].agg(MULTI_SEPARATOR.join)


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


def compare_kind(a: Snapshot, b: Snapshot, kind: schema.Kind) -> KindComparison:
    """Pair ``kind``'s records of ``a`` and ``b`` on their jointure and compare every
    attribute; duplicate or missing jointures are refused (:class:`CompareError`)."""
    va, vb = attribute_values(a, kind), attribute_values(b, kind)
    _refuse_bad_keys(va, kind, "a")
    _refuse_bad_keys(vb, kind, "b")
    in_b = va["jointure"].isin(vb["jointure"]).to_numpy()
    in_a = vb["jointure"].isin(va["jointure"]).to_numpy()
    left = va[in_b].set_index("jointure").sort_index()
    right = vb[in_a].set_index("jointure").sort_index()
    columns = [c for c in left.columns if c in right.columns]
    left, right = left[columns], right[columns]
    before = left.to_numpy(dtype=object, na_value=None)
    after = right.to_numpy(dtype=object, na_value=None)
    differs = (before != after) & ~(pd.isna(before) & pd.isna(after))
    rows, cols = np.nonzero(differs)
    attr = {f.column: f.attr for f in kind.fields}
    changed = pd.DataFrame(
        {
            "jointure": left.index.to_numpy()[rows],
            "attribute": [attr[columns[c]] for c in cols],
            "column": [columns[c] for c in cols],
            "before": before[rows, cols],
            "after": after[rows, cols],
        },
        columns=list(CHANGED_COLUMNS),
    ).astype(STRING)
    return KindComparison(
        kind=kind.name,
        frame=kind.frame,
        added=vb[~in_a].reset_index(drop=True),
        removed=va[~in_b].reset_index(drop=True),
        changed=changed,
        common=len(left),
    )


def compare(a: Snapshot, b: Snapshot) -> Comparison:
    """Every kind of ``a`` compared with ``b`` (``a`` the earlier state, ``b`` the later).

    Both are states (deleted records of a Delta are left out): to compare a state with what a
    Delta gives, apply it first (the store does).
    """
    kinds = {k.frame: compare_kind(a, b, k) for k in schema.KINDS.values()}
    return Comparison(a.extraction, b.extraction, kinds)
