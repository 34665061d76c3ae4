"""Apply a Delta extraction to the current state: pure functions over snapshot frames.

A Delta carries ``addRequest`` (a new record), ``modifyRequest`` (DSML: per attribute,
``replace`` its values, ``add`` values, ``delete`` values or the attribute; attributes not
named keep theirs) and ``deleteRequest``. Before anything is applied, every anomaly
is listed: some make the delta impossible to apply consistently (it is then refused whole),
the others are applied in the one sensible way and reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ent_audit.aaf import schema
from ent_audit.aaf.frames import (
    CONVERTERS,
    OP_DTYPE,
    STRING,
    arrow_strings,
    concat,
    isin,
    link_rows,
)
from ent_audit.aaf.snapshot import ExtractionInfo, Snapshot

BLOCKING = frozenset(
    {"no_base_state", "perimeter_mismatch", "not_newer", "duplicate_in_delta", "not_a_delta"}
)
"""Anomalies that make a delta impossible to apply consistently: the delta is refused."""

MAX_GAP_DAYS = 31
"""A delta dated more than this after the state it applies to leaves a gap (a missed delta?)."""


@dataclass(frozen=True)
class Anomaly:
    """One thing a delta does that it should not; ``blocking`` ones refuse the whole delta."""

    code: str
    message: str
    kind: str | None = None
    jointure: str | None = None
    source_file: str | None = None
    line: int | None = None

    @property
    def blocking(self) -> bool:
        return self.code in BLOCKING

    def to_dict(self) -> dict:
        return {**asdict(self), "blocking": self.blocking}


def check_delta(
    state: Snapshot | None, delta: Snapshot, *, max_gap_days: int = MAX_GAP_DAYS
) -> list[Anomaly]:
    """Every anomaly of applying ``delta`` to ``state``, blocking ones first."""
    d = delta.extraction
    out: list[Anomaly] = []
    if d.extraction != "delta":
        return [Anomaly("not_a_delta", f"{d.extraction} n'est pas une extraction Delta")]
    if state is None:
        return [
            Anomaly(
                "no_base_state",
                "aucune extraction complète ingérée: un Delta ne s'applique qu'à un état complet",
            )
        ]
    s = state.extraction
    if s.perimeter != d.perimeter:
        out.append(
            Anomaly(
                "perimeter_mismatch",
                f"périmètre {d.perimeter!r} différent de l'état ({s.perimeter!r})",
            )
        )
    if d.date is None or s.date is None or d.date <= s.date:
        out.append(Anomaly("not_newer", f"Delta du {d.date} pas postérieur à l'état du {s.date}"))
    elif (d.date - s.date).days > max_gap_days:
        out.append(
            Anomaly(
                "gap",
                f"Delta du {d.date}: {(d.date - s.date).days} jours après "
                f"l'état du {s.date} (plus de {max_gap_days}): un Delta "
                "intermédiaire manque-t-il ?",
            )
        )
    for kind in schema.KINDS.values():
        rows = getattr(delta, kind.frame)[list(_ANOMALY_COLUMNS)]  # what an anomaly names
        known = getattr(state, kind.frame)["jointure"].dropna()
        dup = rows[rows["jointure"].duplicated(keep=False)]
        out += [
            _row_anomaly(
                "duplicate_in_delta", kind.name, r, "même identifiant plusieurs fois dans le Delta"
            )
            for r in dup.itertuples()
        ]
        rows = rows.drop_duplicates("jointure", keep=False)
        present = known_in(rows["jointure"], known)
        for op, mask, code, msg in (
            ("add", present, "add_existing", "ajout d'un identifiant déjà présent: remplacé"),
            ("modify", ~present, "modify_unknown", "modification d'un identifiant inconnu: ajouté"),
            ("delete", ~present, "delete_unknown", "suppression d'un identifiant inconnu: ignorée"),
        ):
            hit = rows[(rows["op"] == op) & mask]
            out += [_row_anomaly(code, kind.name, r, msg) for r in hit.itertuples()]
    return sorted(out, key=lambda a: not a.blocking)


def known_in(few: pd.Series, many: pd.Series) -> np.ndarray:
    """``isin(few, many)`` for a Delta's few ids against a state's many: Arrow hashes the
    value set, so the state's ids are first cut to those among the few (hashing the few)."""
    return isin(few, many[isin(many, few.dropna())])


_ANOMALY_COLUMNS = ("jointure", "op", "source_file", "line")
"""The columns of a Delta's records :func:`check_delta` reads (its rows are not copied whole)."""


def _row_anomaly(code: str, kind: str, row, message: str) -> Anomaly:
    return Anomaly(code, message, kind, row.jointure, str(row.source_file), int(row.line))


def _feeds(kind: schema.Kind) -> list[tuple[schema.Field, str, str, str | None]]:
    """(field, link table, owner column, origin value) of the rows this kind's records feed;
    within one kind each (table, origin) is fed by one field."""
    out = []
    for f in kind.multi:
        table = schema.LINK_TABLES[f.link]
        out.append((f, f.link, f.owner, kind.entity if table.origin else None))
    return out


def _names(f: schema.Field) -> list[str]:
    return [f.attr, *f.aliases]


class _ByAttribute:
    """A kind's modifications split by attribute once (``mods[mods["attribute"].isin(…)]``
    per field is a pass over every modification for each of a kind's fifty fields)."""

    COLUMNS = ("jointure", "op", "value", "line")
    """The columns the fields' changes read (each selection takes every column it holds)."""

    def __init__(self, mods: pd.DataFrame) -> None:
        self.mods = mods[list(self.COLUMNS)]
        self.replace = (mods["op"] == "replace").to_numpy(dtype=bool, na_value=False)
        codes = pc.dictionary_encode(arrow_strings(mods["attribute"]))
        indices = codes.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        order = np.argsort(indices, kind="stable")
        bounds = np.searchsorted(indices[order], np.arange(len(codes.dictionary) + 1))
        self.rows = {
            str(name): order[bounds[i] : bounds[i + 1]]
            for i, name in enumerate(codes.dictionary.to_pylist())
            if name is not None
        }

    def _positions(self, f: schema.Field) -> np.ndarray:
        parts = [self.rows[n] for n in _names(f) if n in self.rows]
        if not parts:
            return np.zeros(0, dtype=np.intp)
        return parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))

    def of(self, f: schema.Field) -> pd.DataFrame:
        """``mods[mods["attribute"].isin(_names(f))]``: same rows, same order, same labels."""
        return self.mods.take(self._positions(f))

    def replaced_only(self, f: schema.Field) -> bool:
        """Field ``f`` has modifications, all of them ``replace`` (a Delta's usual case: its
        ``add`` and ``delete`` steps select nothing)."""
        rows = self._positions(f)
        return bool(len(rows)) and bool(self.replace[rows].all())


def _restrict(frame: pd.DataFrame, table: str, origin: str | None) -> np.ndarray:
    """Rows of a link table stated by this kind (all rows when the table has one origin)."""
    if origin is None:
        return np.ones(len(frame), dtype=bool)
    return (frame[schema.LINK_TABLES[table].origin] == origin).to_numpy(dtype=bool, na_value=False)


def _merge_entities(
    kind: schema.Kind, old: pd.DataFrame, new: pd.DataFrame, by_attribute: _ByAttribute
) -> pd.DataFrame:
    """Known records modified attribute by attribute (DSML): ``replace`` sets the attribute
    (no value: removes it), ``add`` sets a single-valued one, ``delete`` removes it (with
    values: only if it holds one of them); attributes not mentioned keep their value."""
    base = old.set_index("jointure").loc[new["jointure"]]
    incoming = new.set_index("jointure")
    ids = pd.Series(base.index)  # Arrow's isin: pandas' builds a Python object per value
    for f in kind.single:
        if f.column == "jointure":
            continue
        m = by_attribute.of(f)
        if m.empty:
            continue
        col = base[f.column]
        if by_attribute.replaced_only(f):
            base[f.column] = col.mask(isin(ids, m["jointure"]), incoming[f.column])
            continue
        replaced = isin(ids, m.loc[m["op"] == "replace", "jointure"])
        col = col.mask(replaced, incoming[f.column])
        adds = m[(m["op"] == "add") & m["value"].notna()].drop_duplicates("jointure", keep="last")
        if len(adds):
            typed, _ = CONVERTERS[f.dtype](adds["value"].astype(STRING).reset_index(drop=True))
            typed.index = pd.Index(adds["jointure"].astype(object))
            col = col.mask(isin(ids, adds["jointure"]), typed)
        dels = m[m["op"] == "delete"]
        if len(dels):
            valued = dels[dels["value"].notna()]
            whole = set(dels["jointure"]) - set(valued["jointure"])
            gone = isin(ids, list(whole))
            if len(valued):
                raw = valued["value"].astype(STRING).reset_index(drop=True)
                typed, _ = CONVERTERS[f.dtype](raw)
                owners = pd.Index(valued["jointure"].astype(object))
                held = col.loc[owners].astype(str).to_numpy()
                gone |= isin(ids, owners[held == typed.astype(str).to_numpy()])
            col = col.mask(gone)
        base[f.column] = col
    for c in ("source_file", "record", "line"):  # where the record was last touched
        base[c] = incoming[c]
    base["op"] = pd.Categorical(["add"] * len(base), dtype=OP_DTYPE)
    return base.reset_index()[list(old.columns)]


def _link_changes(
    kind: schema.Kind,
    f: schema.Field,
    table: str,
    owner: str,
    origin: str | None,
    incoming: pd.DataFrame,
    by_attribute: _ByAttribute,
    whole_ids: list[str],
) -> tuple[list, pd.DataFrame | None, list[pd.DataFrame]]:
    r"""What one field of this kind does to its link table: the owners whose rows all go
    (records replaced whole, attributes ``replace``\ d or ``delete``\ d without values), the
    rows removed by value (``delete`` with values: owner and parts), and the rows that come
    (the Delta's rows of records replaced whole, of ``replace``\ d attributes, ``add``\ ed
    values), in that order."""
    mine_in = _restrict(incoming, table, origin)
    come = [incoming[mine_in & isin(incoming[owner], whole_ids)]]
    m = by_attribute.of(f)
    if m.empty:
        return list(whole_ids), None, come
    if by_attribute.replaced_only(f):  # nothing removed by value, cleared or added
        replaced = m["jointure"].unique()
        come.append(incoming[mine_in & isin(incoming[owner], replaced)])
        return [*whole_ids, *replaced], None, come
    replaced = m.loc[m["op"] == "replace", "jointure"].unique()
    dels = m[m["op"] == "delete"]
    valued = dels[dels["value"].notna()]
    cleared = list(set(dels["jointure"]) - set(valued["jointure"]))
    come.append(incoming[mine_in & isin(incoming[owner], replaced)])
    gone = None
    if len(valued):
        gone = link_rows(kind, f, valued["jointure"], valued["value"].tolist(), valued["line"])
    adds = m[(m["op"] == "add") & m["value"].notna()]
    if len(adds):
        come.append(link_rows(kind, f, adds["jointure"], adds["value"].tolist(), adds["line"]))
    return [*whole_ids, *replaced, *cleared], gone, come


def _dropped(
    current: pd.DataFrame,
    f: schema.Field,
    table: str,
    owner: str,
    origin: str | None,
    owners: list,
    gone: pd.DataFrame | None,
) -> np.ndarray:
    """Rows of ``current`` this field's changes remove: every row of ``owners``, and the
    rows equal (owner and parts) to one of ``gone``'s, compared on those owners' rows only."""
    mine = _restrict(current, table, origin)
    drop = mine & isin(current[owner], owners)
    if gone is not None and len(gone):
        cols = [owner, *f.parts]
        near = np.flatnonzero(mine & isin(current[owner], gone[owner].dropna().unique()))
        if len(near):
            keys = pd.MultiIndex.from_frame(gone[cols].astype(object))
            here = pd.MultiIndex.from_frame(current[cols].iloc[near].astype(object))
            drop[near[here.isin(keys)]] = True
    return drop


# Each table without an origin column is fed by one kind only, and each (table, origin) by
# one field: the rows one kind adds are never removed by another kind's changes, so a table's
# removals can be gathered over the kinds and applied once, to the state's table.
for _table in {f.link for k in schema.KINDS.values() for f in k.multi}:
    _fed = [(k.entity, f.attr) for k in schema.KINDS.values() for f in k.multi if f.link == _table]
    assert schema.LINK_TABLES[_table].origin or len(_fed) == 1, _table
    assert len({e for e, _ in _fed}) == len(_fed), _table


@dataclass
class _Edit:
    """A frame's pending change: its rows that go, the rows that come after them; a frame no
    kind of the Delta touched (``touched`` false) stays the state's own object."""

    frame: pd.DataFrame
    gone: np.ndarray
    coming: list[pd.DataFrame]
    touched: bool = False

    @classmethod
    def of(cls, frame: pd.DataFrame, touched: bool = False) -> _Edit:
        return cls(frame, np.zeros(len(frame), dtype=bool), [], touched)

    def result(self) -> pd.DataFrame:
        if not self.touched:
            return self.frame
        return _updated(self.frame, self.gone, self.coming)


def kept(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """``frame[keep]`` (a new RangeIndex), each Arrow-backed column filtered by Arrow itself:
    pandas' own row selection over Arrow strings costs several times more, and a Delta's
    state is mostly Arrow strings."""
    mask = pa.array(keep, type=pa.bool_())
    columns = {}
    for name, values in frame.items():
        arr = values.array
        if isinstance(arr, pd.arrays.ArrowStringArray):
            columns[name] = pd.arrays.ArrowStringArray(pc.filter(arr.__arrow_array__(), mask))
        else:
            columns[name] = arr[keep]
    return pd.DataFrame(columns, columns=frame.columns, copy=False)


def _updated(current: pd.DataFrame, gone: np.ndarray, coming: list[pd.DataFrame]) -> pd.DataFrame:
    """``current`` without the rows ``gone``, with ``coming`` after them; ``current`` itself
    (the same object) when nothing changes, so the store can reuse its file. The kept rows
    are one selection of ``current``, whatever the number of steps that removed rows."""
    if len(current) and not gone.any() and not any(len(c) for c in coming):
        return current
    return concat([kept(current, ~gone), *coming])


def apply_delta(state: Snapshot, delta: Snapshot) -> Snapshot:
    """The state after ``delta``.

    ``addRequest`` adds a record whole (replacing a known one); ``deleteRequest`` removes it
    with the links it stated; ``modifyRequest`` on a known record changes only the attributes
    it names, as DSML defines each operation (``replace``, ``add``, ``delete``), and on an
    unknown record adds what it carries. Call :func:`check_delta` first: this function
    assumes no blocking anomaly. A frame the Delta does not change is the state's own object
    (``new.staff is state.staff``): the store links its file instead of writing it again.
    """
    entities: dict[str, pd.DataFrame] = {}
    links = {name: _Edit.of(frame) for name, frame in state.links.items()}
    side = {name: _Edit.of(getattr(state, name), True) for name in ("extras", "issues")}
    all_mods = delta.modifications
    for kind in schema.KINDS.values():
        rows = getattr(delta, kind.frame)
        old = getattr(state, kind.frame)
        partial_mask = (rows["op"] == "modify").to_numpy(dtype=bool) & known_in(
            rows["jointure"], old["jointure"].dropna()
        )
        partial, whole = rows[partial_mask], rows[~partial_mask]
        whole_ids = whole["jointure"].dropna().unique()
        whole_list = whole_ids.tolist()  # once: each field lists them again
        partial_ids = partial["jointure"].dropna().unique()
        mods = all_mods[(all_mods["kind"] == kind.name) & isin(all_mods["jointure"], partial_ids)]
        if len(rows):
            new = whole[whole["op"] != "delete"]
            new = new.assign(op=pd.Categorical(["add"] * len(new), dtype=OP_DTYPE))
            named = pd.concat([pd.Series(whole_ids), pd.Series(partial_ids)])
            touched = np.flatnonzero(isin(old["jointure"], named))
            kept = old.take(touched)
            by_attribute = _ByAttribute(mods)
            partly = kept[isin(kept["jointure"], partial_ids)]
            merged = _merge_entities(kind, partly, partial, by_attribute)
            gone = np.zeros(len(old), dtype=bool)
            gone[touched] = True
            entities[kind.frame] = _updated(old, gone, [merged, new])
            for f, table, owner, origin in _feeds(kind):
                owners, removed, come = _link_changes(
                    kind, f, table, owner, origin, delta.links[table], by_attribute, whole_list
                )
                edit = links[table]
                edit.touched = True
                edit.gone |= _dropped(edit.frame, f, table, owner, origin, owners, removed)
                edit.coming += come
        else:  # a kind the Delta does not touch keeps its frames as they are (reused on disk)
            entities[kind.frame] = old
        if len(rows) and not mods["attribute"].isna().any():
            mentioned = set(by_attribute.rows)  # already split: not a Python pass over them
        else:
            mentioned = set(mods["attribute"])
        for name, edit in side.items():
            frame = edit.frame
            if len(frame):
                ours = (frame["kind"] == kind.name).to_numpy(dtype=bool, na_value=False)
                attr = frame["attribute"]
                edit.gone |= ours & isin(frame["jointure"], whole_ids)
                edit.gone |= (
                    ours
                    & isin(frame["jointure"], partial_ids)
                    & (attr.isin(mentioned) | ~attr.isin(schema.KNOWN_ATTRIBUTES)).to_numpy(
                        dtype=bool, na_value=True
                    )
                )
            incoming = getattr(delta, name)
            edit.coming.append(incoming[incoming["kind"] == kind.name])
    links = {name: edit.result() for name, edit in links.items()}
    side = {name: edit.result() for name, edit in side.items()}
    return replace(
        state,
        extraction=ExtractionInfo(state.extraction.perimeter, "complete", delta.extraction.date),
        links=links,
        **side,
        skipped=concat([state.skipped, delta.skipped]),
        files=concat([state.files, delta.files]),
        notes=[*state.notes, *delta.notes],
        **entities,
    )
